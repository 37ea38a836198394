/**
 * Fused blocks as engine ops: RMSNorm, SwiGLU's nonlinearity, softmax cross-entropy, and the memory
 * layer's input block (conv + SiLU + per-head L2 norm) and gates, each one tape node over a
 * backend's fused kernels (`Backend.fusedRmsNorm`, `fusedSwiGLU`, `fusedCrossEntropy`,
 * `fusedConvSiluNorm`, `fusedGate`) instead of a chain of elementwise ops and their backward rules.
 * Where the backend has no such kernel or declines, `rmsNorm` and `crossEntropy` (nn.ts) compose
 * ops as before, `swigluGate` composes silu and mul, and memory/layer.ts composes the input block
 * and the gates. A fused block has no second derivative (customOp says so when asked); the float64
 * reference backend, which differentiates twice, composes.
 */
import type { BackendBuffer, ConvSiluNormParams, RmsNormParams } from '../backend.js';
import { customOp } from '../custom.js';
import type { Shape } from '../shape.js';
import { type Tensor, wrapBuffer } from '../tensor.js';
import { mul, silu } from './elementwise.js';

/**
 * For a scale (…, n) broadcast against x (…, n): [scaleRows, scaleRepeat] such that row i of x
 * uses scale row ⌊i / scaleRepeat⌋ mod scaleRows, or null when the axes the scale keeps are not
 * one contiguous run (then the composed path handles it).
 */
function scaleLayout(x: Shape, scale: Shape): [number, number] | null {
  const rank = x.length;
  if (scale.length > rank || scale[scale.length - 1] !== x[rank - 1]) return null;
  const padded = [...new Array<number>(rank - scale.length).fill(1), ...scale];
  let first = -1;
  let last = -1;
  for (let a = 0; a < rank - 1; a++) {
    if (padded[a] === x[a] && x[a]! > 1) {
      if (first >= 0 && last !== a - 1) return null;
      if (first < 0) first = a;
      last = a;
    } else if (padded[a] !== 1) return null;
  }
  if (first < 0) return [1, 1];
  let rows = 1;
  for (let a = first; a <= last; a++) rows *= x[a]!;
  let repeat = 1;
  for (let a = last + 1; a < rank - 1; a++) repeat *= x[a]!;
  return [rows, repeat];
}

/**
 * RMSNorm over the last axis, x / √(mean(x²) + eps) ⊙ scale, on the backend's fused kernel; null
 * where it has none or declines (nn.ts `rmsNorm` then composes ops).
 */
export function fusedRmsNorm(x: Tensor, scale: Tensor | null, eps: number): Tensor | null {
  const kernels = x.backend.fusedRmsNorm;
  if (!kernels || x.rank < 1 || x.size === 0) return null;
  if (scale && (scale.backend !== x.backend || scale.dtype !== x.dtype)) return null;
  const layout = scale ? scaleLayout(x.shape, scale.shape) : [1, 1];
  if (!layout) return null;
  const n = x.shape[x.rank - 1]!;
  const params: RmsNormParams = { rows: x.size / n, n, scaleRows: layout[0]!, scaleRepeat: layout[1]!, eps };
  if (!kernels.supports(params, x.dtype)) return null;
  const { backend, dtype } = x;
  let r: Tensor | null = null; // each row's 1/rms, kept for the backward
  const [y] = customOp({
    name: 'rmsNorm',
    inputs: scale ? [x, scale] : [x],
    outputShapes: [x.shape],
    forward: () => {
      const [yb, rb] = kernels.forward(x.buffer, scale?.buffer ?? null, params, dtype);
      r = wrapBuffer(backend, rb, [params.rows], dtype);
      return { flat: wrapBuffer(backend, yb, [x.size], dtype), saved: [r] };
    },
    backward: (g) => {
      const [dx, ds] = kernels.backward(x.buffer, scale?.buffer ?? null, r!.buffer, g.buffer, params, dtype);
      return [
        wrapBuffer(backend, dx, x.shape, dtype),
        ds && scale ? wrapBuffer(backend, ds, scale.shape, dtype) : null,
      ];
    },
  });
  return y!;
}

/**
 * SwiGLU's nonlinearity silu(a) ⊙ b (a, b of one shape): the backend's fused kernel as one tape
 * node, else silu and mul composed.
 *
 * @example
 * const hidden = swigluGate(matmul(x, wGate), matmul(x, wUp)); // (…, f)
 */
export function swigluGate(a: Tensor, b: Tensor): Tensor {
  const kernels = a.backend.fusedSwiGLU;
  const same = b.backend === a.backend && b.dtype === a.dtype && b.size === a.size && b.rank === a.rank;
  if (!kernels || !same || !kernels.supports(a.dtype) || a.shape.some((d, i) => d !== b.shape[i])) {
    return mul(silu(a), b);
  }
  const { backend, dtype, size } = a;
  const [out] = customOp({
    name: 'swiglu',
    inputs: [a, b],
    outputShapes: [a.shape],
    forward: () => wrapBuffer(backend, kernels.forward(a.buffer, b.buffer, size, dtype), [size], dtype),
    backward: (g) => {
      const [da, db] = kernels.backward(a.buffer, b.buffer, g.buffer, size, dtype);
      return [wrapBuffer(backend, da, a.shape, dtype), wrapBuffer(backend, db, b.shape, dtype)];
    },
  });
  return out!;
}

/**
 * Per-position softmax cross-entropy of logits (…, V) against int32 targets (…) on the same
 * backend (0 where a target equals `ignoreIndex`), on the backend's fused kernel; null where it has
 * none or declines (nn.ts `crossEntropy` then composes ops). The caller has validated the targets.
 */
export function fusedCrossEntropy(
  logits: Tensor,
  targets: Tensor,
  ignoreIndex: number | undefined,
): Tensor | null {
  const kernels = logits.backend.fusedCrossEntropy;
  const classes = logits.shape[logits.rank - 1]!;
  const rows = targets.size;
  if (!kernels || targets.backend !== logits.backend || !kernels.supports(rows, classes, logits.dtype))
    return null;
  const { backend, dtype } = logits;
  let lse: Tensor | null = null; // each row's log-sum-exp, kept for the backward
  const [losses] = customOp({
    name: 'crossEntropy',
    inputs: [logits, targets], // targets: kept for the backward (no gradient)
    outputShapes: [targets.shape],
    forward: () => {
      const [lossBuffer, lseBuffer] = kernels.forward(
        logits.buffer,
        targets.buffer,
        rows,
        classes,
        ignoreIndex,
        dtype,
      );
      lse = wrapBuffer(backend, lseBuffer, [rows], dtype);
      return { flat: wrapBuffer(backend, lossBuffer, [rows], dtype), saved: [lse] };
    },
    backward: (g) => {
      const d = kernels.backward(
        logits.buffer,
        targets.buffer,
        lse!.buffer,
        g.buffer,
        rows,
        classes,
        ignoreIndex,
        dtype,
      );
      return [wrapBuffer(backend, d, logits.shape, dtype), null];
    },
  });
  return losses!;
}

/**
 * The memory layer's input block on the backend's fused kernel: z (B, T, H·dh) → (B, H, T, dh),
 * a_t = Σ_{i<K} taps_i ⊙ z_{t−i} continuing from tail (B, K−1, H·dh) (taps and tail null: no
 * convolution), SiLU, heads split, and per head and token y = s / √(Σ s² + eps) when `normalize`.
 * Null where the backend has no such kernel or declines (memory/layer.ts then composes ops).
 */
export function fusedConvSiluNorm(
  z: Tensor,
  taps: Tensor | null,
  tail: Tensor | null,
  heads: number,
  normalize: boolean,
  eps: number,
): Tensor | null {
  const kernels = z.backend.fusedConvSiluNorm;
  if (!kernels || z.rank !== 3 || (taps === null) !== (tail === null)) return null;
  const [B, T, C] = z.shape as [number, number, number];
  const K = taps ? taps.shape[0]! : 0;
  const others = [taps, tail].filter((t): t is Tensor => t !== null);
  if (others.some((t) => t.backend !== z.backend || t.dtype !== z.dtype)) return null;
  if (C % heads !== 0 || (taps && (taps.rank !== 2 || taps.shape[1] !== C))) return null;
  if (tail && (tail.rank !== 3 || tail.shape[0] !== B || tail.shape[1] !== K - 1 || tail.shape[2] !== C))
    return null;
  const params: ConvSiluNormParams = {
    batch: B,
    tokens: T,
    heads,
    headDim: C / heads,
    kernel: K,
    normalize,
    eps,
  };
  if (!kernels.supports(params, z.dtype)) return null;
  const { backend, dtype } = z;
  const [y] = customOp({
    name: 'convSiluNorm',
    inputs: [z, ...others],
    outputShapes: [[B, heads, T, C / heads]],
    forward: () =>
      wrapBuffer(
        backend,
        kernels.forward(z.buffer, taps?.buffer ?? null, tail?.buffer ?? null, params, dtype),
        [z.size],
        dtype,
      ),
    backward: (g, needs) => {
      const [dz, dtaps, dtail] = kernels.backward(
        z.buffer,
        taps?.buffer ?? null,
        tail?.buffer ?? null,
        g.buffer,
        params,
        needs[2] ?? false,
        dtype,
      );
      const wrap = (b: BackendBuffer | null, like: Tensor | null) =>
        b && like ? wrapBuffer(backend, b, like.shape, dtype) : null;
      return [wrapBuffer(backend, dz, z.shape, dtype), wrap(dtaps, taps), wrap(dtail, tail)];
    },
  });
  return y!;
}

/**
 * A memory-layer gate on the backend's fused kernel: cap · σ(z + bias) for z (B, T, H) and bias
 * (H), moved to (B, H, T). Null where the backend has no such kernel or declines (memory/layer.ts
 * then composes ops).
 */
export function fusedGate(z: Tensor, bias: Tensor, cap: number): Tensor | null {
  const kernels = z.backend.fusedGate;
  if (!kernels || z.rank !== 3 || bias.rank !== 1 || bias.shape[0] !== z.shape[2]) return null;
  if (bias.backend !== z.backend || bias.dtype !== z.dtype || !kernels.supports(z.dtype)) return null;
  const [B, T, H] = z.shape as [number, number, number];
  const { backend, dtype } = z;
  const [out] = customOp({
    name: 'gate',
    inputs: [z, bias],
    outputShapes: [[B, H, T]],
    forward: () =>
      wrapBuffer(backend, kernels.forward(z.buffer, bias.buffer, B, T, H, cap, dtype), [z.size], dtype),
    backward: (g) => {
      const [dz, db] = kernels.backward(z.buffer, bias.buffer, g.buffer, B, T, H, cap, dtype);
      return [wrapBuffer(backend, dz, z.shape, dtype), wrapBuffer(backend, db, bias.shape, dtype)];
    },
  });
  return out!;
}
