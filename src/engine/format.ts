/**
 * Tensors as text for people: nested brackets like NumPy, long axes cut to their first and last
 * three entries, numbers with up to 4 significant digits. Browser-safe.
 */
import type { TypedArray } from './dtype.js';

/** Axes longer than this are shown as their first and last EDGE entries. */
const SUMMARY_LENGTH = 8;
const EDGE = 3;

/** A number compactly: integers in full, others with 4 significant digits. */
function formatNumber(v: number, integer: boolean): string {
  if (integer || Number.isInteger(v) || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(4)));
}

/**
 * The values of a row-major array of `shape` as nested brackets.
 *
 * @example
 * formatValues(new Float32Array([1, 2, 3, 4]), [2, 2], 'float32'); // '[[1, 2],\n [3, 4]]'
 */
export function formatValues(data: TypedArray, shape: readonly number[], dtype: string): string {
  const integer = dtype === 'int32';
  if (shape.length === 0) return formatNumber(data[0]!, integer);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const render = (axis: number, offset: number, indent: string): string => {
    const n = shape[axis]!;
    const shown =
      n > SUMMARY_LENGTH
        ? [
            ...Array.from({ length: EDGE }, (_, i) => i),
            -1,
            ...Array.from({ length: EDGE }, (_, i) => n - EDGE + i),
          ]
        : Array.from({ length: n }, (_, i) => i);
    if (axis === shape.length - 1) {
      const cells = shown.map((i) => (i < 0 ? '…' : formatNumber(data[offset + i]!, integer)));
      return `[${cells.join(', ')}]`;
    }
    const gap = `,${'\n'.repeat(shape.length - 1 - axis)}${indent} `;
    const rows = shown.map((i) =>
      i < 0 ? '…' : render(axis + 1, offset + i * strides[axis]!, `${indent} `),
    );
    return `[${rows.join(gap)}]`;
  };
  return render(0, 0, '');
}
