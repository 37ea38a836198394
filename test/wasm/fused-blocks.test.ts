/**
 * The wasm backend's fused blocks (engine/backend.ts `FusedBlocks`, src/backends/wasm/fused.ts)
 * against their composed engine-op fallbacks: the reference backend in float64 for values, finite
 * differences for backward rules, and bit-for-bit equality where the fused kernel performs the same
 * float32 operations in the same order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adamwStep, Rng, type Tensor, tensor, tidy, wasmBackend } from '../../src/index.js';

function on(t: Tensor, backend: 'wasm' | 'reference', dtype: 'float32' | 'float64' = 'float32'): Tensor {
  const data = dtype === 'float32' ? Float32Array.from(t.dataSync()) : Float64Array.from(t.dataSync());
  return tensor(data, t.shape, { dtype, backend });
}

describe('fused AdamW (wasm)', { skip: wasmBackend === null && 'no wasm backend' }, () => {
  const step = { beta1: 0.9, beta2: 0.95, eps: 1e-8, stepSize: 3e-3 / 0.1, invSqrtBc2: 1 / Math.sqrt(0.05) };

  it('equals the composed update bit for bit (float32, with and without weight decay)', () => {
    tidy(() => {
      const rng = new Rng(1);
      const shape = [37, 5];
      const p = rng.normal(shape, { backend: 'reference' });
      const g = rng.normal(shape, { std: 0.01, backend: 'reference' });
      const m = rng.normal(shape, { std: 0.001, backend: 'reference' });
      const v = rng.uniform(shape, { low: 0, high: 1e-4, backend: 'reference' });
      for (const shrink of [1, 1 - 3e-4]) {
        const want = adamwStep(p, g, m, v, { ...step, shrink }); // reference: composed ops
        const got = adamwStep(on(p, 'wasm'), on(g, 'wasm'), on(m, 'wasm'), on(v, 'wasm'), {
          ...step,
          shrink,
        });
        for (const key of ['p', 'm', 'v'] as const) {
          assert.deepEqual(got[key].dataSync(), want[key].dataSync(), `${key} (shrink ${shrink})`);
        }
      }
    });
  });

  it('keeps the moments out of the denormals (a gradient that stays 0 for many steps)', () => {
    tidy(() => {
      const shape = [8];
      let p = tensor(new Float32Array(8).fill(1), shape, { backend: 'wasm' });
      let m = tensor(new Float32Array(8).fill(1e-3), shape, { backend: 'wasm' });
      let v = tensor(new Float32Array(8).fill(1e-6), shape, { backend: 'wasm' });
      const g = tensor(new Float32Array([0, 1e-20, -1e-25, 0, 0, 0, 0, 1e-3]), shape, { backend: 'wasm' });
      for (let i = 0; i < 800; i++) ({ p, m, v } = adamwStep(p, g, m, v, { ...step, shrink: 1 }));
      for (const [name, t] of [
        ['m', m],
        ['v', v],
      ] as const) {
        for (const x of t.dataSync()) {
          assert.ok(x === 0 || Math.abs(x) >= 2 ** -126, `${name} holds the denormal ${x}`);
        }
      }
      assert.ok(p.dataSync().every((x) => Number.isFinite(x)));
    });
  });
});
