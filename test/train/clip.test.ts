import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dispose, memory, tensor, withBackend } from '../../src/index.js';
import { clipByGlobalNorm, globalNorm } from '../../src/train/index.js';
import { tolerance } from '../helpers/backends.js';
import { assertClose, floatCases, values } from './util.js';

for (const { backend, dtype } of floatCases()) {
  const tol = tolerance(dtype);
  const run = (fn: () => Promise<void>) => () => withBackend(backend, fn);

  describe(`clipByGlobalNorm on ${backend} (${dtype})`, () => {
    // ‖(3, 4, 12)‖ = 13 exactly, spread over leaves of different ranks and a non-tensor leaf.
    const grads = () => ({
      a: tensor([3, 4], [2], { dtype }),
      nested: [{ b: tensor([12], [1, 1], { dtype }) }],
      c: null,
    });

    it(
      'reports the exact global norm over all leaves',
      run(async () => {
        const g = grads();
        assert.equal(await globalNorm(g), 13);
        assert.equal((await clipByGlobalNorm(g, 100)).norm, 13);
        dispose(g);
      }),
    );

    it(
      'scales every leaf by maxNorm/norm when the norm is above maxNorm',
      run(async () => {
        const g = grads();
        const { grads: clipped, norm } = await clipByGlobalNorm(g, 6.5);
        assert.equal(norm, 13);
        assertClose(await values(clipped.a), [1.5, 2], tol, 'a');
        assertClose(await values(clipped.nested[0]!.b), [6], tol, 'b');
        assert.deepEqual(clipped.nested[0]!.b.shape, [1, 1]);
        assert.equal(clipped.c, null);
        assert.ok(Math.abs((await globalNorm(clipped)) - 6.5) <= tol * 6.5);
        assertClose(await values(g.a), [3, 4], 0, 'input untouched');
        dispose([g, clipped]);
      }),
    );

    it(
      'returns the very same tensors at or below maxNorm',
      run(async () => {
        const g = grads();
        for (const maxNorm of [13, 20, Number.POSITIVE_INFINITY]) {
          const r = await clipByGlobalNorm(g, maxNorm);
          assert.equal(r.grads.a, g.a);
          assert.equal(r.grads.nested[0]!.b, g.nested[0]!.b);
        }
        dispose(g);
      }),
    );

    it(
      'reports a non-finite norm and does not scale by it',
      run(async () => {
        for (const [bad, expected] of [
          [Number.NaN, Number.NaN],
          [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
        ] as const) {
          const g = { a: tensor([1, bad], [2], { dtype }), b: tensor([2], [1], { dtype }) };
          const r = await clipByGlobalNorm(g, 1);
          assert.ok(Object.is(r.norm, expected), `norm ${r.norm}`);
          assert.equal(r.grads, g);
          assertClose(await values(g.b), [2], 0, 'b');
          dispose(g);
        }
      }),
    );

    it(
      'creates no tensors beyond the scaled grads',
      run(async () => {
        const g = grads();
        const before = memory().tensors;
        await globalNorm(g);
        await clipByGlobalNorm(g, 20);
        assert.equal(memory().tensors, before);
        const r = await clipByGlobalNorm(g, 1);
        assert.equal(memory().tensors, before + 2);
        dispose([g, r.grads]);
      }),
    );
  });
}

describe('clipByGlobalNorm arguments', () => {
  it('rejects a maxNorm that is not > 0', async () => {
    const g = { a: tensor([1], [1]) };
    for (const bad of [0, -1, Number.NaN]) {
      await assert.rejects(clipByGlobalNorm(g, bad), new RegExp(`maxNorm must be > 0, got ${bad}`));
    }
    dispose(g);
  });
});
