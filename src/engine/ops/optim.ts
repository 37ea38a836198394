/**
 * Optimizer steps as engine ops: one call per parameter tensor instead of a dozen elementwise ops,
 * on a backend's fused kernel where it has one (`Backend.fusedAdamW`: the wasm backend's, which
 * also keeps the moments out of the float32 denormals), composed from elementwise ops otherwise.
 * Updates are not differentiated: these ops record nothing on a tape.
 */
import type { AdamWParams } from '../backend.js';
import { formatShape } from '../shape.js';
import { noGrad } from '../tape.js';
import { type Tensor, wrapBuffer } from '../tensor.js';
import { add, div, mul, sqrt, square, sub } from './elementwise.js';

/** The scalars of one AdamW step (t = step + 1), as `adamw` in train/optimizer.ts folds them. */
export interface AdamWStep {
  beta1: number;
  beta2: number;
  eps: number;
  /** lr / (1 − β₁ᵗ). */
  stepSize: number;
  /** 1 / √(1 − β₂ᵗ). */
  invSqrtBc2: number;
  /** 1 − lr·λ for a parameter with weight decay, 1 without. */
  shrink: number;
}

/**
 * One AdamW update of a parameter p with gradient g and moments m, v (all one shape and float
 * dtype, on one backend):
 *   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← shrink·p − stepSize·m/(√v·invSqrtBc2 + ε).
 * Returns new tensors; the inputs are untouched.
 *
 * @example
 * const next = adamwStep(p, g, m, v, { beta1: 0.9, beta2: 0.95, eps: 1e-8, stepSize: 3e-3,
 *   invSqrtBc2: 1, shrink: 1 - 3e-3 * 0.1 });
 */
export function adamwStep(
  p: Tensor,
  g: Tensor,
  m: Tensor,
  v: Tensor,
  h: AdamWStep,
): { p: Tensor; m: Tensor; v: Tensor } {
  for (const [name, t] of [
    ['g', g],
    ['m', m],
    ['v', v],
  ] as const) {
    if (t.dtype !== p.dtype || formatShape(t.shape) !== formatShape(p.shape) || t.backend !== p.backend) {
      throw new RangeError(
        `adamwStep: ${name} ${t.dtype}${formatShape(t.shape)} on '${t.backend.name}' does not match p ${p.dtype}${formatShape(p.shape)} on '${p.backend.name}'`,
      );
    }
  }
  return noGrad(() => {
    const fused = p.backend.fusedAdamW;
    if (fused?.supports(p.dtype)) {
      const params: AdamWParams = { size: p.size, ...h };
      const [np, nm, nv] = fused.step(p.buffer, g.buffer, m.buffer, v.buffer, params, p.dtype);
      const wrap = (b: typeof np) => wrapBuffer(p.backend, b, p.shape, p.dtype);
      return { p: wrap(np), m: wrap(nm), v: wrap(nv) };
    }
    const nm = add(mul(m, h.beta1), mul(g, 1 - h.beta1));
    const nv = add(mul(v, h.beta2), mul(square(g), 1 - h.beta2));
    const direction = div(nm, add(mul(sqrt(nv), h.invSqrtBc2), h.eps));
    const decayed = h.shrink === 1 ? p : mul(p, h.shrink);
    return { p: sub(decayed, mul(direction, h.stepSize)), m: nm, v: nv };
  });
}
