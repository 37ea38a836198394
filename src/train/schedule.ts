/**
 * A learning-rate schedule: the rate for the update numbered `step` (0 for the first update).
 * Pure functions of the step, so a resumed run only needs the step count.
 *
 * @example
 * const lr: LrSchedule = warmupCosine({ peakLr: 3e-4, warmupSteps: 100, totalSteps: 10_000 });
 * ({ params, state } = opt.update(params, grads, state, lr(state.step)));
 */
export type LrSchedule = (step: number) => number;

function checkRate(value: number, name: string, who: string): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${who}: ${name} must be finite and ≥ 0, got ${value}`);
  }
}

function checkSteps(value: number, name: string, who: string, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${who}: ${name} must be an integer ≥ ${min}, got ${value}`);
  }
}

function checkStep(step: number, who: string): void {
  // A NaN or negative step is a bug in the caller's loop; returning NaN would corrupt the weights.
  if (!Number.isFinite(step) || step < 0) {
    throw new RangeError(`${who}: step must be finite and ≥ 0, got ${step}`);
  }
}

/**
 * The same rate at every step.
 * @example constantLr(1e-3)(12345); // 0.001
 */
export function constantLr(lr: number): LrSchedule {
  checkRate(lr, 'lr', 'constantLr');
  return (step) => {
    checkStep(step, 'constantLr');
    return lr;
  };
}

/**
 * Options of `warmupCosine`.
 * @example
 * const options: WarmupCosineOptions = { peakLr: 1e-3, warmupSteps: 200, totalSteps: 20_000, minLr: 1e-5 };
 */
export interface WarmupCosineOptions {
  /** The rate reached at the end of warm-up. */
  peakLr: number;
  /** Updates spent ramping up linearly (0: start at peakLr). */
  warmupSteps: number;
  /** The step at which the cosine reaches `minLr`; the rate stays there afterwards. */
  totalSteps: number;
  /** Floor of the decay (default 0); must not exceed peakLr. */
  minLr?: number;
}

/**
 * Linear warm-up then cosine decay, the usual transformer schedule:
 *
 *   step < W:       peakLr · (step + 1) / W       (step 0 already moves, by peakLr/W)
 *   W ≤ step < T:   minLr + (peakLr − minLr) · ½(1 + cos(π · (step − W) / (T − W)))
 *   step ≥ T:       minLr
 *
 * Warm-up matters for Adam-type optimizers: their second-moment estimates are noisy over the
 * first updates, and full-size steps then can throw the weights far off.
 *
 * @example
 * const lr = warmupCosine({ peakLr: 1e-3, warmupSteps: 10, totalSteps: 110, minLr: 1e-5 });
 * lr(0); // 1e-4;  lr(9) and lr(10): 1e-3;  lr(60): ≈ 5.05e-4;  lr(110), lr(500): 1e-5
 */
export function warmupCosine(options: WarmupCosineOptions): LrSchedule {
  const who = 'warmupCosine';
  const { peakLr, warmupSteps, totalSteps } = options;
  const minLr = options.minLr ?? 0;
  checkRate(peakLr, 'peakLr', who);
  checkRate(minLr, 'minLr', who);
  if (minLr > peakLr) throw new RangeError(`${who}: minLr ${minLr} exceeds peakLr ${peakLr}`);
  checkSteps(warmupSteps, 'warmupSteps', who, 0);
  checkSteps(totalSteps, 'totalSteps', who, 1);
  if (warmupSteps > totalSteps) {
    throw new RangeError(`${who}: warmupSteps ${warmupSteps} exceeds totalSteps ${totalSteps}`);
  }
  const decaySteps = totalSteps - warmupSteps;
  return (step) => {
    checkStep(step, who);
    if (step < warmupSteps) return (peakLr * (step + 1)) / warmupSteps;
    if (step >= totalSteps) return minLr;
    const progress = (step - warmupSteps) / decaySteps; // decaySteps > 0 here since step < totalSteps
    return minLr + (peakLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
