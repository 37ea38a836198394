/**
 * Helpers shared by the engine tests: backend selection, random float64 inputs drawn from a
 * seed, fast-check shape generators (with broadcasting) and a weighted gradient check.
 */
import * as fc from 'fast-check';
import { getBackend, mul, noGrad, Rng, sum, type Tensor, tensor, tidy } from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { checkGradients, type GradCheckOptions } from '../helpers/finite-diff.js';

/** The backends under test that compute in float64 (finite differences need it). */
export function float64Backends(): string[] {
  return backendsUnderTest().filter((b) => getBackend(b).floatDTypes.includes('float64'));
}

/** The most precise float dtype a backend offers. */
export function bestFloat(backend: string): 'float32' | 'float64' {
  return getBackend(backend).floatDTypes.includes('float64') ? 'float64' : 'float32';
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** A float64 tensor whose values are `f(rng, flatIndex)`. */
export function fill(rng: Rng, shape: readonly number[], f: (rng: Rng, i: number) => number): Tensor {
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = f(rng, i);
  return tensor(data, shape);
}

/** Uniform float64 values in [lo, hi). */
export function uniform(rng: Rng, shape: readonly number[], lo = -2, hi = 2): Tensor {
  return fill(rng, shape, (r) => lo + (hi - lo) * r.next());
}

/** Uniform values with |x| in [lo, hi) and a random sign (away from zero). */
export function awayFromZero(rng: Rng, shape: readonly number[], lo = 0.5, hi = 2): Tensor {
  return fill(rng, shape, (r) => (r.next() < 0.5 ? -1 : 1) * (lo + (hi - lo) * r.next()));
}

/**
 * Values on two interleaved grids, so that a value of grid 0 and one of grid 1 are always at
 * least 0.05 apart (for maximum/minimum away from ties).
 */
export function gridValues(rng: Rng, shape: readonly number[], grid: 0 | 1): Tensor {
  return fill(rng, shape, (r) => 0.2 * (r.int(21) - 10) + (grid === 0 ? 0.05 : 0.15) + 0.05 * r.next());
}

/** Distinct values (a shuffled grid with small jitter): no ties for max/min reductions. */
export function distinctValues(rng: Rng, shape: readonly number[]): Tensor {
  const n = sizeOf(shape);
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  return fill(rng, shape, (r, i) => 0.1 * (order[i]! - n / 2) + 0.03 * r.next());
}

export const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
export const dimArb = fc.integer({ min: 1, max: 4 });

/** A shape of rank minRank…maxRank with dimensions 1…4. */
export function shapeArb(minRank = 0, maxRank = 4): fc.Arbitrary<number[]> {
  return fc.array(dimArb, { minLength: minRank, maxLength: maxRank });
}

/** A shape that broadcasts to `out`: some leading axes dropped, some axes set to 1. */
export function broadcastFrom(out: readonly number[]): fc.Arbitrary<number[]> {
  return fc
    .tuple(
      fc.integer({ min: 0, max: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    )
    .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
}

/** Two shapes that broadcast together (either may be the larger one on any axis). */
export const broadcastPairArb: fc.Arbitrary<[number[], number[]]> = shapeArb(0, 4).chain((out) =>
  fc.tuple(broadcastFrom(out), broadcastFrom(out)),
);

/** Three shapes that broadcast together. */
export const broadcastTripleArb: fc.Arbitrary<[number[], number[], number[]]> = shapeArb(0, 4).chain((out) =>
  fc.tuple(broadcastFrom(out), broadcastFrom(out), broadcastFrom(out)),
);

/** A subset of the axes of a rank (each possibly written negative). */
export function axesArb(rank: number): fc.Arbitrary<number[]> {
  return fc
    .tuple(
      fc.array(fc.boolean(), { minLength: rank, maxLength: rank }),
      fc.array(fc.boolean(), { minLength: rank, maxLength: rank }),
    )
    .map(([pick, negative]) => {
      const axes: number[] = [];
      for (let i = 0; i < rank; i++) if (pick[i]) axes.push(negative[i] ? i - rank : i);
      return axes;
    });
}

/** An axis of a rank ≥ 1, possibly negative. */
export function axisArb(rank: number): fc.Arbitrary<number> {
  return fc.integer({ min: -rank, max: rank - 1 });
}

export const RUNS = { numRuns: 20 } as const;

/**
 * Gradient check of a tensor-valued `f`: the scalar checked is Σ w ⊙ f(inputs) with fixed random
 * weights w, so every output entry gets its own cotangent.
 */
export function gradCheck(
  rng: Rng,
  f: (xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: GradCheckOptions = {},
): void {
  tidy(() => {
    const probe = noGrad(() => f(inputs));
    const w = uniform(rng, probe.shape, -1, 1);
    checkGradients((xs) => sum(mul(f(xs), w)), inputs, { maxEntries: 24, ...options });
  });
}

/**
 * A float64 tensor's values, read synchronously: for the float64-only tests (finite
 * differences, second order), which run only where float64 is computed — CPU backends.
 */
export function values64(t: Tensor): number[] {
  return Array.from(t.dataSync());
}

/** Reads a tensor into a plain number array, asynchronously (every backend). */
export async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** Asserts two number lists agree to a relative tolerance (relative to max(|expected|, 1)). */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  what = '',
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} differs from expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= rtol * Math.max(Math.abs(e), 1))) {
      throw new Error(`${what}: at flat index ${i} got ${a}, expected ${e} (rtol ${rtol})`);
    }
  }
}

export { Rng };
