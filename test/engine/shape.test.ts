/**
 * Shape rules: `broadcastsTo` is the broadcasting rule of `broadcastShapes` seen from one side —
 * a shape broadcasts to another exactly when broadcasting the two gives the other unchanged.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { broadcastShapes, broadcastsTo } from '../../src/engine/shape.js';

describe('broadcastsTo', () => {
  it('is true exactly when broadcastShapes(a, b) is b', () => {
    const shape = fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 4 });
    fc.assert(
      fc.property(shape, shape, (a, b) => {
        let joined: number[] | null;
        try {
          joined = broadcastShapes(a, b);
        } catch {
          joined = null;
        }
        const same = joined !== null && joined.length === b.length && joined.every((n, i) => n === b[i]);
        assert.equal(broadcastsTo(a, b), same, `[${a}] → [${b}]`);
      }),
      { numRuns: 500 },
    );
  });

  it('accepts size-1 and missing axes, refuses other sizes and extra axes', () => {
    assert.equal(broadcastsTo([], [2, 3]), true);
    assert.equal(broadcastsTo([1, 3], [2, 3]), true);
    assert.equal(broadcastsTo([3], [2, 3]), true);
    assert.equal(broadcastsTo([2], [2, 3]), false);
    assert.equal(broadcastsTo([1, 2, 3], [2, 3]), false);
  });
});
