/**
 * The memory model M_W of SPEC §1 and the pieces of its analytic gradient.
 *
 * Axis legend: … leading batch/head axes, n tokens, d = d_h, h = hidden width.
 * Row-vector convention: a token is a row, `x W` applies a weight. Depth L = weights.length:
 *   L = 1:  M(z) = z W₁
 *   L ≥ 2:  M(z) = φ(… φ(φ(z W₁) W₂) …) W_L        (φ between layers, none after the last)
 *   residual: M(z) = z + (the above)
 */
import type { MemoryReadParams } from '../engine/backend.js';
import { customOp } from '../engine/custom.js';
import { activation, add, matmul, mul, sub, type Tensor } from '../engine/index.js';
import { wrapBuffer } from '../engine/tensor.js';

export type MemoryActivation = 'silu' | 'gelu';

export interface MemoryModelOptions {
  activation: MemoryActivation;
  residual: boolean;
}

/**
 * Applies M_W to rows z (…, n, d). `weights[l]` is (…, d_in, d_out) and broadcasts over the
 * leading axes.
 */
export function memoryForward(z: Tensor, weights: readonly Tensor[], options: MemoryModelOptions): Tensor {
  const fused = fusedMemoryRead(z, weights, options);
  if (fused) return fused;
  let x = z;
  weights.forEach((w, l) => {
    const pre = matmul(x, w);
    x = l < weights.length - 1 ? activation(options.activation, pre) : pre;
  });
  return options.residual ? add(x, z) : x;
}

/**
 * memoryForward on the backend's fused kernel (`Backend.fusedMemoryRead`) as one tape node, for
 * rows z (B, H, T, d) and depth 2 with weights (B or 1, H, d, h) and (B or 1, H, h, d); null where
 * the shapes differ from that, or the backend has no such kernel or declines (then ops compose).
 */
function fusedMemoryRead(z: Tensor, weights: readonly Tensor[], options: MemoryModelOptions): Tensor | null {
  const kernels = z.backend.fusedMemoryRead;
  const [w1, w2] = weights;
  if (!kernels || weights.length !== 2 || z.rank !== 4 || w1!.rank !== 4 || w2!.rank !== 4) return null;
  if ([w1!, w2!].some((w) => w.backend !== z.backend || w.dtype !== z.dtype)) return null;
  const [B, H, T, d] = z.shape as [number, number, number, number];
  const [Bw, h] = [w1!.shape[0]!, w1!.shape[3]!];
  const fits = (w: Tensor, rows: number, cols: number) =>
    w.shape[0] === Bw && w.shape[1] === H && w.shape[2] === rows && w.shape[3] === cols;
  if (!fits(w1!, d, h) || !fits(w2!, h, d)) return null;
  const params: MemoryReadParams = {
    batch: B,
    heads: H,
    tokens: T,
    d,
    hidden: h,
    weightBatch: Bw,
    activation: options.activation,
    residual: options.residual,
  };
  if (z.size === 0 || !kernels.supports(params, z.dtype)) return null;
  const { backend, dtype } = z;
  const [y] = customOp({
    name: 'memoryRead',
    inputs: [z, w1!, w2!],
    outputShapes: [z.shape],
    forward: () =>
      wrapBuffer(backend, kernels.forward(z.buffer, w1!.buffer, w2!.buffer, params, dtype), [z.size], dtype),
    backward: (g) => {
      const grads = kernels.backward(z.buffer, w1!.buffer, w2!.buffer, g.buffer, params, dtype);
      return grads.map((buffer, i) => wrapBuffer(backend, buffer, [z, w1!, w2!][i]!.shape, dtype));
    },
  });
  return y!;
}

/**
 * The gradient of ℓ(W; k, v) = ‖M_W(k) − v‖² (eq. 12: summed, no ½) for every row at once, in
 * factored form: for each layer l, the per-token gradient is the outer product
 * u_l[s] = inputs[l][s]ᵀ · deltas[l][s], with inputs[l] (…, n, d_in) the layer's input rows and
 * deltas[l] (…, n, d_out) the loss gradient at the layer's output (before φ). Written with
 * differentiable ops, so an outer tape differentiates through it (second order via φ'').
 */
export function memoryGradientFactors(
  k: Tensor,
  v: Tensor,
  weights: readonly Tensor[],
  options: MemoryModelOptions,
): { inputs: Tensor[]; deltas: Tensor[] } {
  const depth = weights.length;
  const inputs: Tensor[] = [k];
  const preActivations: Tensor[] = [];
  for (let l = 0; l < depth; l++) {
    const pre = matmul(inputs[l]!, weights[l]!);
    preActivations.push(pre);
    if (l < depth - 1) inputs.push(activation(options.activation, pre));
  }
  let out = preActivations[depth - 1]!;
  if (options.residual) out = add(out, k);
  const deltas = new Array<Tensor>(depth);
  deltas[depth - 1] = mul(sub(out, v), 2); // ∂ℓ/∂out = 2 (M(k) − v)
  for (let l = depth - 2; l >= 0; l--) {
    // back through W_{l+1} and φ: δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ φ'(z_l)
    const back = matmul(deltas[l + 1]!, weights[l + 1]!, { transposeB: true });
    deltas[l] = mul(back, activation(options.activation, preActivations[l]!, 1));
  }
  return { inputs, deltas };
}
