import assert from 'node:assert/strict';
import { add, getBackend, matmul, mul, type Rng, type Tensor, tanh, tidy, zeros } from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';

/** float64 where the backend computes it (exact reference comparisons), else float32. */
export function floatOf(backend: string): 'float32' | 'float64' {
  return getBackend(backend).floatDTypes.includes('float64') ? 'float64' : 'float32';
}

/** Elementwise |a − e| ≤ tol · max(1, |e|), naming the first offending index. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what = 'values',
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(
      Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)),
      `${what}[${i}]: got ${a}, expected ${e} (tolerance ${tol})`,
    );
  }
}

/** The values of a tensor as a plain array, read back asynchronously (every backend). */
export async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** A copy of a float tensor with its own buffer (so disposing one leaves the other); no read-back. */
export function copyOf(t: Tensor): Tensor {
  return tidy(() => mul(t, 1));
}

/** A two-layer tanh perceptron's parameters. */
export interface Mlp {
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

/** Random weights scaled by 1/√fan-in, zero biases. */
export function initMlp(rng: Rng, sizes: [number, number, number], dtype: 'float32' | 'float64'): Mlp {
  const [d, h, o] = sizes;
  return {
    w1: rng.normal([d, h], { std: 1 / Math.sqrt(d), dtype }),
    b1: zeros([h], { dtype }),
    w2: rng.normal([h, o], { std: 1 / Math.sqrt(h), dtype }),
    b2: zeros([o], { dtype }),
  };
}

/** tanh(x·W₁ + b₁)·W₂ + b₂ for x of shape (batch, d). */
export function mlp(p: Mlp, x: Tensor): Tensor {
  return add(matmul(tanh(add(matmul(x, p.w1), p.b1)), p.w2), p.b2);
}

/** A fixed regression problem: inputs (n, d) and random targets (n, o) in [−1, 1). */
export function problem(
  rng: Rng,
  n: number,
  d: number,
  o: number,
  dtype: 'float32' | 'float64',
): { x: Tensor; y: Tensor } {
  return { x: rng.normal([n, d], { dtype }), y: rng.uniform([n, o], { low: -1, high: 1, dtype }) };
}

/** Every (backend under test, float dtype it computes in) pair: float32 paths get checked too. */
export function floatCases(): { backend: string; dtype: 'float32' | 'float64' }[] {
  return backendsUnderTest().flatMap((backend) =>
    getBackend(backend)
      .floatDTypes.filter((d): d is 'float32' | 'float64' => d === 'float32' || d === 'float64')
      .map((dtype) => ({ backend, dtype })),
  );
}
