/**
 * split (engine/ops/shape.ts): the pieces' cotangents are assembled into the input's in one concat
 * along the axis — zeros where a piece is unused, sums where one is used twice, whatever the order
 * of use — for a split leaf and a split intermediate, and a second derivative flows through it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { add, grad, mul, Rng, slice, split, sum, type Tensor, tanh } from '../../src/index.js';
import { checkGradients } from '../helpers/finite-diff.js';

const rng = new Rng(3);
const x = rng.normal([2, 7, 3], { dtype: 'float64' });
const w = rng.normal([2, 7, 3], { dtype: 'float64' });

/** A loss that uses the middle piece twice, the last once, the first not at all. */
function pieces(input: Tensor, axis: number, sizes: number[]): Tensor {
  const [, b, c] = split(input, sizes, axis);
  return add(sum(mul(tanh(c!), c!)), add(sum(mul(b!, b!)), sum(tanh(b!))));
}

/** The same loss with slices (the rule split replaces). */
function slices(input: Tensor, axis: number, sizes: number[]): Tensor {
  const box = (from: number, n: number) =>
    slice(
      input,
      input.shape.map((_, i) => (i === axis ? from : 0)),
      input.shape.map((d, i) => (i === axis ? n : d)),
    );
  const b = box(sizes[0]!, sizes[1]!);
  const c = box(sizes[0]! + sizes[1]!, sizes[2]!);
  return add(sum(mul(tanh(c), c)), add(sum(mul(b, b)), sum(tanh(b))));
}

describe('split: pieces assembled into one cotangent', () => {
  for (const [axis, sizes] of [
    [1, [2, 4, 1]],
    [2, [1, 1, 1]],
    [0, [0, 1, 1]],
  ] as const) {
    it(`axis ${axis}, sizes ${sizes.join('/')}: the gradient of a split leaf = the slices' = finite differences`, () => {
      const g = grad((p: Tensor) => pieces(p, axis, [...sizes]))(x);
      const want = grad((p: Tensor) => slices(p, axis, [...sizes]))(x);
      assert.deepEqual(g.shape, x.shape);
      const a = g.dataSync();
      const b = want.dataSync();
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-12, `entry ${i}`);
      assert.ok(checkGradients(([p]) => pieces(p!, axis, [...sizes]), [x]) < 1e-6);
    });
  }

  it('an intermediate split on axis 1, its pieces used out of order and the whole used too; a second derivative', () => {
    const f = (p: Tensor) => {
      const whole = mul(p, w);
      const [a, b] = split(whole, [3, 4], 1);
      return add(add(sum(tanh(mul(b!, b!))), sum(mul(tanh(a!), a!))), sum(mul(whole, whole)));
    };
    assert.ok(checkGradients(([p]) => f(p!), [x]) < 1e-6);
    // d/dx of sum(grad f): the assembled cotangent is itself differentiable
    assert.ok(checkGradients(([p]) => sum(grad(f)(p!)), [x], { rtol: 1e-5 }) < 1e-5);
  });

  it('records no piece of a single-piece split (the input itself) and checks the sizes', () => {
    assert.equal(split(x, [7], 1)[0], x);
    assert.throws(() => split(x, [3, 3], 1), /do not add up to axis 1/);
    assert.throws(() => split(x, [8, -1], 1), /do not add up to axis 1/);
  });
});
