import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { fusedCrossEntropy, fusedRmsNorm } from './blocks.js';
import { arange, cast, toBackend } from './create.js';
import { add, div, equal, exp, maximum, mul, neg, rsqrt, sub } from './elementwise.js';
import { logSumExp, max, mean, sum } from './reduce.js';
import { expandDims, stopGradient } from './shape.js';

/** softmax along `axis` (default last), stable for large logits. */
export function softmax(x: Tensor, axis = -1): Tensor {
  const shifted = sub(x, stopGradient(max(x, axis, true)));
  const e = exp(shifted);
  return div(e, sum(e, axis, true));
}

/** log softmax along `axis` (default last). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return sub(x, logSumExp(x, axis, true));
}

/** One-hot rows (…, n) of int32 indices (…), in a float dtype. No gradient. */
export function oneHot(indices: Tensor, n: number, dtype: 'float32' | 'float64' = 'float32'): Tensor {
  if (indices.dtype !== 'int32') throw new TypeError(`oneHot: indices must be int32, got ${indices.dtype}`);
  const asFloat = cast(indices, dtype);
  const classes = arange(n, { dtype, backend: asFloat.backend.name });
  return equal(expandDims(asFloat, -1), classes);
}

export interface CrossEntropyOptions {
  /** Targets equal to this value contribute nothing (and are left out of the mean). */
  ignoreIndex?: number;
  /** 'mean' (default) over counted targets, 'sum', or 'none' (per position). */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * Softmax cross-entropy of logits (…, V) against int32 targets (…).
 * @example crossEntropy(logits, targets) // (B, T, V), (B, T) → scalar mean loss in nats
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const v = logits.shape[logits.rank - 1]!;
  if (targets.dtype !== 'int32')
    throw new TypeError(`crossEntropy: targets must be int32, got ${targets.dtype}`);
  if (targets.rank !== logits.rank - 1 || targets.shape.some((d, i) => d !== logits.shape[i])) {
    throw new RangeError(
      `crossEntropy: targets ${formatShape(targets.shape)} do not match logits ${formatShape(logits.shape)} without the class axis`,
    );
  }
  // Checked where the values are known without a read-back (uploaded from the host, or a CPU
  // backend); targets computed on an asynchronous device are not (out of range they count 0).
  const t = targets.knownValues();
  for (let i = 0; t && i < t.length; i++) {
    if ((t[i]! < 0 || t[i]! >= v) && t[i] !== options.ignoreIndex) {
      throw new RangeError(`crossEntropy: target ${t[i]} at position ${i} is outside [0, ${v})`);
    }
  }
  const dtype = logits.dtype as 'float32' | 'float64';
  if (targets.backend !== logits.backend) targets = toBackend(targets, logits.backend.name);
  const fused = fusedCrossEntropy(logits, targets, options.ignoreIndex); // blocks.ts, one pass
  if (fused) return reduceLosses(fused, countTargets(targets, t, options.ignoreIndex, dtype), options);
  const logp = logSoftmax(logits, -1);
  const picked = sum(mul(logp, oneHot(targets, v, dtype)), -1); // (…)
  let losses = neg(picked);
  if (options.ignoreIndex !== undefined) {
    const keepMask = sub(1, equal(cast(targets, dtype), options.ignoreIndex));
    losses = mul(losses, keepMask);
  }
  return reduceLosses(losses, countTargets(targets, t, options.ignoreIndex, dtype), options);
}

/**
 * How many targets are not `ignoreIndex`: counted on the host where the values are known,
 * otherwise on the device (exact below 2^24 targets).
 */
function countTargets(
  targets: Tensor,
  known: ArrayLike<number> | null,
  ignoreIndex: number | undefined,
  dtype: 'float32' | 'float64',
): number | Tensor {
  if (ignoreIndex === undefined) return targets.size;
  if (!known) return sum(sub(1, equal(cast(targets, dtype), ignoreIndex)));
  let count = 0;
  for (let i = 0; i < known.length; i++) if (known[i] !== ignoreIndex) count++;
  return count;
}

/** The reduction of per-position losses (0 at ignored targets) that crossEntropy asks for. */
function reduceLosses(losses: Tensor, count: number | Tensor, options: CrossEntropyOptions): Tensor {
  switch (options.reduction ?? 'mean') {
    case 'none':
      return losses;
    case 'sum':
      return sum(losses);
    case 'mean':
      return div(sum(losses), typeof count === 'number' ? Math.max(count, 1) : maximum(count, 1));
  }
}

/**
 * RMSNorm over the last axis with a learned scale: x / √(mean(x²) + ε) ⊙ scale.
 * @example rmsNorm(x, g) // (B, T, d), (d) → (B, T, d)
 */
export function rmsNorm(x: Tensor, scale: Tensor | null, eps = 1e-6): Tensor {
  const fused = fusedRmsNorm(x, scale, eps); // blocks.ts: one tape node where the backend has it
  if (fused) return fused;
  const normed = mul(x, rsqrt(add(mean(mul(x, x), -1, true), eps)));
  return scale ? mul(normed, scale) : normed;
}

/** Normalises vectors along `axis` to unit L2 norm: z / √(Σ z² + ε) (SPEC §2, ε = 1e−6). */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-6): Tensor {
  return mul(x, rsqrt(add(sum(mul(x, x), axis, true), eps)));
}
