/**
 * Shape rules: `broadcastsTo` is the broadcasting rule of `broadcastShapes` seen from one side —
 * a shape broadcasts to another exactly when broadcasting the two gives the other unchanged; and
 * `mergeAxes` walks the same elements, in the same order, on fewer axes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  broadcastShapes,
  broadcastStrides,
  broadcastsTo,
  mergeAxes,
  stridesOf,
} from '../../src/engine/shape.js';

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

/** The element offsets a walk of `dims` with `strides` visits, in row-major order. */
function offsets(dims: number[], strides: number[]): number[] {
  const out: number[] = [];
  const walk = (axis: number, at: number) => {
    if (axis === dims.length) out.push(at);
    else for (let i = 0; i < dims[axis]!; i++) walk(axis + 1, at + i * strides[axis]!);
  };
  walk(0, 0);
  return out;
}

describe('mergeAxes', () => {
  it('visits the same offsets of every operand, in order, with no size-1 axis left', () => {
    const shape = fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 5 });
    fc.assert(
      fc.property(shape, fc.array(fc.boolean(), { maxLength: 5 }), fc.nat(4), (out, ones, rotate) => {
        // Operands: contiguous, broadcast along some axes, and permuted (transposed) strides.
        const bcast = out.map((n, i) => (ones[i] ? 1 : n));
        const order = out.map((_, i) => (i + rotate) % Math.max(1, out.length));
        const permuted = stridesOf(order.map((i) => out[i]!));
        const transposed = out.map((_, i) => permuted[order.indexOf(i)]!);
        const operands = [stridesOf(out), broadcastStrides(bcast, out), transposed];
        const [dims, merged] = mergeAxes(out, operands);
        assert.ok(dims.every((n) => n > 1));
        operands.forEach((st, k) => {
          assert.deepEqual(offsets(dims, merged[k]!), offsets(out, st), `operand ${k} of [${out}]`);
        });
      }),
      { numRuns: 500 },
    );
  });
});
