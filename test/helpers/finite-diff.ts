import assert from 'node:assert/strict';
import { grad, type Tensor, tensor, tidy } from '../../src/index.js';

export interface GradCheckOptions {
  /** Step of the central difference. */
  eps?: number;
  /** Allowed error relative to the largest gradient entry (max-abs normalised). */
  rtol?: number;
  /** Allowed absolute error (for gradients that are all tiny). */
  atol?: number;
  /** Check at most this many entries per input (chosen evenly), to bound the cost. */
  maxEntries?: number;
}

/**
 * Checks the tape's gradient of the scalar f(inputs) against central finite differences in
 * float64, entry by entry. Returns the worst error relative to the gradient's scale.
 */
export function checkGradients(
  f: (inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: GradCheckOptions = {},
): number {
  const eps = options.eps ?? 1e-6;
  const rtol = options.rtol ?? 1e-6;
  const atol = options.atol ?? 1e-9;
  for (const x of inputs) assert.equal(x.dtype, 'float64', 'finite differences need float64 inputs');
  const analytic = tidy(() => grad((p: Tensor[]) => f(p))(inputs)).map((g) => {
    const d = g.dataSync();
    g.dispose();
    return d;
  });
  const evaluate = (perturbed: Tensor[]): number => tidy(() => f(perturbed).item());
  let worst = 0;
  inputs.forEach((x, which) => {
    const base = x.dataSync();
    const g = analytic[which]!;
    let scale = 0;
    for (const v of g) scale = Math.max(scale, Math.abs(v));
    const step = Math.max(1, Math.floor(base.length / (options.maxEntries ?? 64)));
    for (let i = 0; i < base.length; i += step) {
      const shifted = (delta: number): number => {
        const data = base.slice();
        data[i]! += delta;
        const t = tensor(data, x.shape);
        const args = inputs.map((y, k) => (k === which ? t : y));
        const v = evaluate(args);
        t.dispose();
        return v;
      };
      const numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
      const err = Math.abs(numeric - g[i]!);
      const rel = err / Math.max(scale, 1e-300);
      if (err > atol && rel > rtol) {
        assert.fail(
          `gradient of input ${which} (shape [${x.shape}]) at flat index ${i}: tape ${g[i]} vs finite difference ${numeric} (rel. error ${rel.toExponential(2)})`,
        );
      }
      worst = Math.max(worst, err <= atol ? 0 : rel);
    }
  });
  return worst;
}
