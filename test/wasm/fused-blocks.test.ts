/**
 * The wasm backend's fused blocks (engine/backend.ts `FusedBlocks`, src/backends/wasm/fused.ts)
 * against their composed engine-op fallbacks: the reference backend in float64 for values, finite
 * differences for backward rules, and bit-for-bit equality where the fused kernel performs the same
 * float32 operations in the same order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  adamwStep,
  crossEntropy,
  grad,
  mul,
  Rng,
  rmsNorm,
  silu,
  sum,
  swigluGate,
  type Tensor,
  tensor,
  tidy,
  wasmBackend,
} from '../../src/index.js';
import { relError } from '../helpers/compare.js';

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

/** Values and gradients of f on wasm (float32, fused) against the reference backend in float64. */
function againstFloat64(
  label: string,
  f: (xs: Tensor[]) => Tensor,
  inputs64: Tensor[],
  cotangent64: Tensor,
  tol = { value: 1e-5, grad: 1e-4 },
): void {
  tidy(() => {
    const inputs32 = inputs64.map((t) => on(t, 'wasm'));
    const cot32 = on(cotangent64, 'wasm');
    const want = f(inputs64);
    const got = f(inputs32);
    assert.equal(got.backend.name, 'wasm');
    assert.ok(relError(got, want) < tol.value, `${label}: values differ by ${relError(got, want)}`);
    const g64 = grad((xs: Tensor[]) => sum(mul(f(xs), cotangent64)))(inputs64);
    const g32 = grad((xs: Tensor[]) => sum(mul(f(xs), cot32)))(inputs32);
    g64.forEach((g, i) => {
      const e = relError(g32[i]!, g);
      assert.ok(e < tol.grad, `${label}: gradient ${i} differs by ${e}`);
    });
  });
}

describe('fused RMSNorm, SwiGLU and cross-entropy (wasm)', {
  skip: wasmBackend === null && 'no wasm backend',
}, () => {
  const rng = new Rng(11);
  const ref = { dtype: 'float64', backend: 'reference' } as const;

  it('the backend has them', () => {
    assert.ok(wasmBackend!.fusedRmsNorm && wasmBackend!.fusedSwiGLU && wasmBackend!.fusedCrossEntropy);
  });

  it('RMSNorm with a (d) scale, a per-head (H, 1, dh) scale, and none matches float64', () => {
    const x = rng.normal([2, 3, 5, 12], ref);
    const cot = rng.normal([2, 3, 5, 12], ref);
    againstFloat64('(d) scale', ([a, s]) => rmsNorm(a!, s!, 1e-6), [x, rng.normal([12], ref)], cot);
    againstFloat64(
      '(H, 1, dh) scale',
      ([a, s]) => rmsNorm(a!, s!, 1e-6),
      [x, rng.normal([3, 1, 12], ref)],
      cot,
    );
    againstFloat64('no scale', ([a]) => rmsNorm(a!, null, 1e-5), [x], cot);
  });

  it('SwiGLU silu(a) ⊙ b matches float64, including large negative a', () => {
    const a = rng.normal([7, 33], { std: 4, ...ref });
    const b = rng.normal([7, 33], ref);
    againstFloat64('swiglu', ([p, q]) => swigluGate(p!, q!), [a, b], rng.normal([7, 33], ref));
    // and equals the composed silu ⊙ b it replaces, in float32
    tidy(() => {
      const [pa, pb] = [on(a, 'wasm'), on(b, 'wasm')];
      assert.ok(relError(swigluGate(pa, pb), mul(silu(pa), pb)) < 1e-6);
    });
  });

  it('cross-entropy (mean, sum, none, ignored targets) matches float64, values and gradients', () => {
    const logits = rng.normal([4, 9, 31], { std: 3, ...ref });
    const ids = Int32Array.from({ length: 36 }, (_, i) => (i % 7 === 3 ? -1 : (i * 5) % 31));
    const targets = (backend: 'wasm' | 'reference') => tensor(ids, [4, 9], { dtype: 'int32', backend });
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      const cot = reduction === 'none' ? rng.normal([4, 9], ref) : tensor(new Float64Array([1.7]), [], ref);
      againstFloat64(
        reduction,
        ([l]) =>
          crossEntropy(l!, targets(l!.backend.name as 'wasm' | 'reference'), { ignoreIndex: -1, reduction }),
        [logits],
        cot,
      );
    }
  });
});
