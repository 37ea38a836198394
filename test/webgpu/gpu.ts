/**
 * Helpers for the WebGPU tests: the backend (loaded once per test process; the tests skip where
 * no adapter is found or webgpu is not among TITANS_TEST_BACKENDS), and running one Backend kernel
 * on both the reference and the webgpu backend on the same float32 inputs.
 */
import assert from 'node:assert/strict';
import { loadWebGpuBackend, type WebGpuBackend } from '../../src/backends/webgpu/load.js';
import { type Backend, type BackendBuffer, Rng, referenceBackend, type TypedArray } from '../../src/index.js';

const wanted = process.env.TITANS_TEST_BACKENDS?.split(',').map((s) => s.trim());

/** The webgpu backend, or null (then `skipReason` says why). */
export const gpu: WebGpuBackend | null = wanted?.includes('webgpu') ? await loadWebGpuBackend() : null;

export const skipReason: string | false = gpu
  ? false
  : wanted?.includes('webgpu')
    ? 'no WebGPU adapter (run `npm run test:webgpu`, which installs a software Vulkan driver)'
    : 'webgpu is not in TITANS_TEST_BACKENDS (`npm run test:webgpu` runs these)';

/** Float32 values uniform in [lo, hi) from a seed. */
export function randomF32(rng: Rng, n: number, lo = -2, hi = 2): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng.next();
  return out;
}

export const seeded = (seed: number) => new Rng(seed);

/**
 * Uploads `inputs` to both backends, runs `kernel` on each and returns both results read back
 * (the reference's computed in float64 and rounded to float32 on store).
 */
export async function both(
  inputs: readonly TypedArray[],
  kernel: (b: Backend, xs: BackendBuffer[]) => BackendBuffer,
  dtype: 'float32' | 'int32' = 'float32',
): Promise<[TypedArray, TypedArray]> {
  const run = async (b: Backend) => {
    const xs = inputs.map((x) => b.upload(x, x instanceof Int32Array ? 'int32' : 'float32'));
    const out = kernel(b, xs);
    const data = await b.read(out, dtype);
    for (const x of xs) b.release(x);
    b.release(out);
    return data;
  };
  return [await run(gpu!), await run(referenceBackend)];
}

/** Asserts |got − want| ≤ atol + rtol·|want| everywhere, with NaN matching NaN and ±∞ exact. */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol = 2e-6,
  atol = 1e-6,
  what = '',
): void {
  assert.equal(got.length, want.length, `${what}: sizes differ`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w)) {
      assert.ok(Number.isNaN(g), `${what}[${i}]: got ${g}, want NaN`);
      continue;
    }
    if (!Number.isFinite(w)) {
      assert.equal(g, w, `${what}[${i}]`);
      continue;
    }
    assert.ok(Math.abs(g - w) <= atol + rtol * Math.abs(w), `${what}[${i}]: got ${g}, want ${w}`);
  }
}
