import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dispose, memory, tensor, tidy, withBackend } from '../../src/index.js';
import { clipByGlobalNorm, globalNorm } from '../../src/train/index.js';
import { tolerance } from '../helpers/backends.js';
import { assertClose, floatCases, values } from './util.js';

for (const { backend, dtype } of floatCases()) {
  const tol = tolerance(dtype);
  const run = (fn: () => void) => () => withBackend(backend, fn);

  describe(`clipByGlobalNorm on ${backend} (${dtype})`, () => {
    // ‖(3, 4, 12)‖ = 13 exactly, spread over leaves of different ranks and a non-tensor leaf.
    const grads = () => ({
      a: tensor([3, 4], [2], { dtype }),
      nested: [{ b: tensor([12], [1, 1], { dtype }) }],
      c: null,
    });

    it(
      'reports the exact global norm over all leaves',
      run(() => {
        const g = grads();
        assert.equal(globalNorm(g), 13);
        assert.equal(clipByGlobalNorm(g, 100).norm, 13);
        dispose(g);
      }),
    );

    it(
      'scales every leaf by maxNorm/norm when the norm is above maxNorm',
      run(() => {
        const g = grads();
        const { grads: clipped, norm } = tidy(() => clipByGlobalNorm(g, 6.5));
        assert.equal(norm, 13);
        assertClose(values(clipped.a), [1.5, 2], tol, 'a');
        assertClose(values(clipped.nested[0]!.b), [6], tol, 'b');
        assert.deepEqual(clipped.nested[0]!.b.shape, [1, 1]);
        assert.equal(clipped.c, null);
        assert.ok(Math.abs(globalNorm(clipped) - 6.5) <= tol * 6.5);
        assertClose(values(g.a), [3, 4], 0, 'input untouched');
        dispose([g, clipped]);
      }),
    );

    it(
      'returns the very same tensors at or below maxNorm',
      run(() => {
        const g = grads();
        for (const maxNorm of [13, 20, Number.POSITIVE_INFINITY]) {
          const r = clipByGlobalNorm(g, maxNorm);
          assert.equal(r.grads.a, g.a);
          assert.equal(r.grads.nested[0]!.b, g.nested[0]!.b);
        }
        dispose(g);
      }),
    );

    it(
      'reports a non-finite norm and does not scale by it',
      run(() => {
        for (const [bad, expected] of [
          [Number.NaN, Number.NaN],
          [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
        ] as const) {
          const g = { a: tensor([1, bad], [2], { dtype }), b: tensor([2], [1], { dtype }) };
          const r = clipByGlobalNorm(g, 1);
          assert.ok(Object.is(r.norm, expected), `norm ${r.norm}`);
          assert.equal(r.grads, g);
          assertClose(values(g.b), [2], 0, 'b');
          dispose(g);
        }
      }),
    );

    it(
      'creates no tensors beyond the scaled grads',
      run(() => {
        const g = grads();
        const before = memory().tensors;
        globalNorm(g);
        clipByGlobalNorm(g, 20);
        assert.equal(memory().tensors, before);
        const r = clipByGlobalNorm(g, 1);
        assert.equal(memory().tensors, before + 2);
        dispose([g, r.grads]);
      }),
    );
  });
}

describe('clipByGlobalNorm arguments', () => {
  it('rejects a maxNorm that is not > 0', () => {
    const g = { a: tensor([1], [1]) };
    for (const bad of [0, -1, Number.NaN]) {
      assert.throws(() => clipByGlobalNorm(g, bad), new RegExp(`maxNorm must be > 0, got ${bad}`));
    }
    dispose(g);
  });
});
