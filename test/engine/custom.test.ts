/**
 * Custom ops with several outputs (engine/custom.ts): each output is a piece of one flat result, and
 * the backward receives one flat cotangent assembled from the pieces' cotangents — zeros where an
 * output was unused, sums where one was used twice — whatever the order of use.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { add, customOp, grad, mul, sum, type Tensor, tensor } from '../../src/index.js';

/** y = 2x, split into outputs of shapes (2, 3), (4) and (5); backward 2g. Counts its backward calls. */
function doubled(x: Tensor, calls: { n: number }): Tensor[] {
  return customOp({
    name: 'doubled',
    inputs: [x],
    outputShapes: [[2, 3], [4], [5]],
    forward: () => mul(x, 2),
    backward: (g) => {
      calls.n++;
      assert.deepEqual(g.shape, [15], 'one flat cotangent');
      return [mul(g, 2)];
    },
  });
}

const x = tensor(
  Float64Array.from({ length: 15 }, (_, i) => i / 7),
  [15],
  { dtype: 'float64', backend: 'reference' },
);

describe('customOp: several outputs', () => {
  it('outputs are the pieces of the flat result', () => {
    const [a, b, c] = doubled(x, { n: 0 });
    assert.deepEqual(
      [...a!.dataSync()],
      [...x.dataSync()].slice(0, 6).map((v) => 2 * v),
    );
    assert.deepEqual(
      [...b!.dataSync()],
      [...x.dataSync()].slice(6, 10).map((v) => 2 * v),
    );
    assert.deepEqual(
      [...c!.dataSync()],
      [...x.dataSync()].slice(10).map((v) => 2 * v),
    );
  });

  const cases: [string, (o: Tensor[]) => Tensor, number[]][] = [
    ['only the middle output', (o) => sum(o[1]!), [0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 0]],
    [
      'the last, then the first',
      (o) => add(sum(o[2]!), sum(mul(o[0]!, 3))),
      [6, 6, 6, 6, 6, 6, 0, 0, 0, 0, 2, 2, 2, 2, 2],
    ],
    [
      'one output used twice',
      (o) => add(sum(o[1]!), sum(mul(o[1]!, o[1]!))),
      [0, 0, 0, 0, 0, 0, ...[6, 7, 8, 9].map((i) => 2 + 8 * (i / 7)), 0, 0, 0, 0, 0],
    ],
    ['all three', (o) => add(add(sum(o[0]!), sum(o[1]!)), sum(o[2]!)), new Array<number>(15).fill(2)],
  ];
  for (const [name, loss, want] of cases) {
    it(`${name}: the gradient places each cotangent at its output, one backward call`, () => {
      const calls = { n: 0 };
      const g = grad((t: Tensor) => loss(doubled(t, calls)))(x);
      assert.equal(calls.n, 1);
      const got = [...g.dataSync()];
      for (const [i, v] of got.entries()) {
        assert.ok(Math.abs(v - want[i]!) < 1e-12, `element ${i}: ${v} vs ${want[i]}`);
      }
    });
  }
});
