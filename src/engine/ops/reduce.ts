import type { ReduceOp } from '../backend.js';
import { isFloat } from '../dtype.js';
import { normalizeAxes, normalizeAxis, sizeOf } from '../shape.js';
import { isRecording, record } from '../tape.js';
import { type Tensor, wrapBuffer } from '../tensor.js';
import { add, div, equal, exp, log, mul, sub } from './elementwise.js';
import { broadcastTo, reshape, stopGradient } from './shape.js';

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function reduce(
  op: ReduceOp,
  x: Tensor,
  axesArg: number | readonly number[] | undefined,
  keepDims: boolean,
): Tensor {
  if (!isFloat(x.dtype)) throw new TypeError(`${op}: expected a float tensor, got ${x.dtype}`);
  const axes = normalizeAxes(axesArg, x.rank, op);
  if (op !== 'sum' && axes.some((a) => x.shape[a] === 0)) {
    throw new RangeError(`${op}: cannot reduce over an empty axis`);
  }
  const kept = keptShape(x.shape, axes);
  const keptOut = wrapBuffer(
    x.backend,
    x.backend.reduce(op, x.buffer, x.shape, axes, x.dtype),
    kept,
    x.dtype,
  );
  if (isRecording([x])) {
    record(op, [x], keptOut, (g) => {
      if (op === 'sum') return [broadcastTo(g, x.shape)];
      // max/min: the gradient is shared equally among the positions that attain the extremum.
      const hit = equal(x, keptOut);
      const count = reduce('sum', hit, axes, true);
      return [mul(broadcastTo(div(g, count), x.shape), hit)];
    });
  }
  return keepDims
    ? keptOut
    : reshape(
        keptOut,
        x.shape.filter((_, i) => !axes.includes(i)),
      );
}

/**
 * Sum over `axes` (all when omitted).
 * @example sum(x, -1, true) // (B, T, d) → (B, T, 1)
 */
export const sum = (x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor =>
  reduce('sum', x, axes, keepDims);
/** Maximum over `axes`; the gradient is split equally among ties. */
export const max = (x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor =>
  reduce('max', x, axes, keepDims);
/** Minimum over `axes`; the gradient is split equally among ties. */
export const min = (x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor =>
  reduce('min', x, axes, keepDims);

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const list = normalizeAxes(axes, x.rank, 'mean');
  const n = sizeOf(list.map((a) => x.shape[a]!));
  return div(sum(x, list, keepDims), n);
}

/** log Σ exp(x) over one axis, stable for large values. */
export function logSumExp(x: Tensor, axis = -1, keepDims = false): Tensor {
  const m = stopGradient(max(x, axis, true));
  const out = add(log(sum(exp(sub(x, m)), axis, true)), m);
  return keepDims
    ? out
    : reshape(
        out,
        x.shape.filter((_, i) => i !== normalizeAxis(axis, x.rank, 'logSumExp')),
      );
}

/** Index of the maximum along `axis` (first on ties), int32, axis removed. No gradient. */
export function argMax(x: Tensor, axis = -1): Tensor {
  const a = normalizeAxis(axis, x.rank, 'argMax');
  const out = wrapBuffer(
    x.backend,
    x.backend.argMax(x.buffer, x.shape, a, x.dtype),
    x.shape.map((d, i) => (i === a ? 1 : d)),
    'int32',
  );
  return reshape(
    out,
    x.shape.filter((_, i) => i !== a),
  );
}
