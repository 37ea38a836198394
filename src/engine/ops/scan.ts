import { isFloat } from '../dtype.js';
import { broadcastShapes, normalizeAxis } from '../shape.js';
import { isRecording, record } from '../tape.js';
import { type Tensor, wrapBuffer } from '../tensor.js';
import { onesLike } from './create.js';
import { mul } from './elementwise.js';
import { broadcastTo, pad, slice } from './shape.js';

export interface ScanOptions {
  /** Run from the last position to the first. */
  reverse?: boolean;
}

/** Shifts along `axis` by one position (towards the end when `forward`), filling with 0. */
function shiftByOne(x: Tensor, axis: number, forward: boolean): Tensor {
  const n = x.shape[axis]!;
  const begin = x.shape.map((_, i) => (i === axis && !forward ? 1 : 0));
  const size = x.shape.map((d, i) => (i === axis ? Math.max(n - 1, 0) : d));
  const kept = slice(x, begin, size);
  return pad(
    kept,
    x.shape.map((_, i) => (i === axis ? (forward ? [1, 0] : [0, 1]) : [0, 0]) as [number, number]),
  );
}

/**
 * The first-order linear recurrence h_t = a_t · h_{t−1} + b_t along `axis`, with h_{−1} = 0
 * (reverse: h_t = a_t · h_{t+1} + b_t from the end). a and b broadcast together.
 * It needs no logarithms and no division, so gates of exactly 0 stay exact and differentiable.
 * Backward is the same recurrence run the other way: λ_t = g_t + a_{t+1} λ_{t+1},
 * ∂/∂b_t = λ_t, ∂/∂a_t = λ_t · h_{t−1}.
 *
 * @example
 * // momentum S_t = η_t S_{t−1} − θ_t u_t (eq. 14) along the token axis:
 * const S = linearScan(eta, neg(mul(theta, u)), 0);
 */
export function linearScan(a: Tensor, b: Tensor, axis: number, options: ScanOptions = {}): Tensor {
  const reverse = options.reverse ?? false;
  if (!isFloat(a.dtype) || a.dtype !== b.dtype) {
    throw new TypeError(`linearScan: expected float tensors of one dtype, got ${a.dtype} and ${b.dtype}`);
  }
  const shape = broadcastShapes(a.shape, b.shape, 'linearScan');
  const ax = normalizeAxis(axis, shape.length, 'linearScan');
  const fa = broadcastTo(a, shape);
  const fb = broadcastTo(b, shape);
  const h = wrapBuffer(
    a.backend,
    a.backend.linearScan(fa.buffer, fb.buffer, shape, ax, reverse, a.dtype),
    shape,
    a.dtype,
  );
  if (isRecording([fa, fb])) {
    record('linearScan', [fa, fb], h, (g, needs) => {
      const aNext = shiftByOne(fa, ax, reverse); // a_{t+1} (forward scan) or a_{t−1} (reverse)
      const lambda = linearScan(aNext, g, ax, { reverse: !reverse });
      const hPrev = shiftByOne(h, ax, !reverse); // h_{t−1} (forward scan) or h_{t+1} (reverse)
      return [needs[0] ? mul(lambda, hPrev) : null, needs[1] ? lambda : null];
    });
  }
  return h;
}

/** Cumulative sum along `axis`; `exclusive` leaves out the current position. */
export function cumsum(x: Tensor, axis: number, options: ScanOptions & { exclusive?: boolean } = {}): Tensor {
  const ax = normalizeAxis(axis, x.rank, 'cumsum');
  const s = linearScan(onesLike(x), x, ax, options);
  return options.exclusive ? shiftByOne(s, ax, !options.reverse) : s;
}

/**
 * Cumulative product along `axis`, exact with zeros (no division, no logarithms) and with an
 * exact gradient there.
 */
export function cumprod(x: Tensor, axis: number, options: ScanOptions = {}): Tensor {
  const ax = normalizeAxis(axis, x.rank, 'cumprod');
  const n = x.shape[ax]!;
  if (n === 0) return x;
  // b = x at the first position of the scan, zero elsewhere; then h_t = x_t · h_{t−1} + b_t.
  const first = options.reverse ? n - 1 : 0;
  const begin = x.shape.map((_, i) => (i === ax ? first : 0));
  const size = x.shape.map((d, i) => (i === ax ? 1 : d));
  const b = pad(
    slice(x, begin, size),
    x.shape.map((_, i) => (i === ax ? [first, n - 1 - first] : [0, 0]) as [number, number]),
  );
  return linearScan(x, b, ax, options);
}
