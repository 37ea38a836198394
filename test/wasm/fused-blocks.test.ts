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
  add,
  attention,
  causalConv,
  concat,
  crossEntropy,
  defaultMemoryLayerConfig,
  dispose,
  fusedConvSiluNorm,
  fusedGate,
  grad,
  initMemoryLayer,
  l2Normalize,
  type MemoryLayerParams,
  mapTensors,
  memory,
  memoryForward,
  memoryLayer,
  mul,
  Rng,
  reshape,
  rmsNorm,
  rope,
  ropeHeads,
  sigmoid,
  silu,
  slice,
  sub,
  sum,
  swigluGate,
  type Tensor,
  tensor,
  tidy,
  transpose,
  wasmBackend,
  zeros,
} from '../../src/index.js';
import { relError } from '../helpers/compare.js';

/** Wraps obj[name] to call `seen` first; returns the undo. */
function spyOn<T extends object>(obj: T, name: keyof T & string, seen: () => void): () => void {
  const original = obj[name] as unknown as (...a: unknown[]) => unknown;
  (obj as Record<string, unknown>)[name] = (...a: unknown[]) => {
    seen();
    return original.apply(obj, a);
  };
  return () => {
    (obj as Record<string, unknown>)[name] = original;
  };
}

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

  it('RMSNorm over more rows than a backward block (the scale gradient summed block by block) matches float64', () => {
    // 3·7·41 = 861 rows: 4 blocks of 256 rows (the last one short); per-head scale: period 3·41
    const x = rng.normal([3, 7, 41, 12], ref);
    const cot = rng.normal([3, 7, 41, 12], ref);
    againstFloat64('(d) scale', ([a, s]) => rmsNorm(a!, s!, 1e-6), [x, rng.normal([12], ref)], cot);
    const perHead = rng.normal([7, 1, 12], ref);
    againstFloat64('(H, 1, dh) scale', ([a, s]) => rmsNorm(a!, s!, 1e-6), [x, perHead], cot);
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

describe('fused ops with saved side data (attention, RMSNorm, cross-entropy on wasm)', {
  skip: wasmBackend === null && 'no wasm backend',
}, () => {
  // Each keeps its rows' log-sum-exps or 1/rms in a buffer of its own beside its one output: freed
  // at once without a tape, kept by a tape until its gradient is done, never handed out.
  const f = (x: Tensor, scale: Tensor, ids: Tensor) => {
    const n = rmsNorm(x, scale, 1e-6); // (2, 8, 16)
    const heads = transpose(reshape(n, [2, 8, 2, 8]), [0, 2, 1, 3]); // (2, 2, 8, 8)
    const a = reshape(transpose(attention(heads, heads, heads, { window: 3 }), [0, 2, 1, 3]), [2, 8, 16]);
    return crossEntropy(add(a, n), ids);
  };
  const inputs = () => {
    const rng = new Rng(5);
    return {
      x: rng.normal([2, 8, 16], { backend: 'wasm' }),
      scale: rng.normal([16], { backend: 'wasm' }),
      ids: tensor(
        Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 16),
        [2, 8],
        { dtype: 'int32', backend: 'wasm' },
      ),
    };
  };

  it('the fused kernels run, and each forward without a tape keeps one buffer: its output', () => {
    const { x, scale, ids } = inputs();
    const calls = { attention: 0, rms: 0, ce: 0 };
    const restore = [
      spyOn(wasmBackend!.fusedAttention!, 'forward', () => calls.attention++),
      spyOn(wasmBackend!.fusedRmsNorm!, 'forward', () => calls.rms++),
      spyOn(wasmBackend!.fusedCrossEntropy!, 'forward', () => calls.ce++),
    ];
    try {
      tidy(() => {
        const kept = (op: () => Tensor) => {
          const before = memory().buffers;
          const out = op();
          return [memory().buffers - before, out] as const;
        };
        const [rmsBuffers, n] = kept(() => rmsNorm(x, scale, 1e-6));
        const heads = reshape(n, [2, 2, 8, 8]);
        const [attentionBuffers] = kept(() => attention(heads, heads, heads, { window: 3 }));
        const [ceBuffers, losses] = kept(() => crossEntropy(n, ids, { reduction: 'none' }));
        assert.deepEqual(calls, { attention: 1, rms: 1, ce: 1 });
        assert.deepEqual([rmsBuffers, attentionBuffers, ceBuffers], [1, 1, 1], 'no side data left behind');
        assert.ok(losses.dataSync().every(Number.isFinite));
      });
    } finally {
      for (const r of restore) r();
      dispose([x, scale, ids]);
    }
  });

  it('a gradient through them leaves only the gradients, which match the composed path', () => {
    const { x, scale, ids } = inputs();
    const before = memory();
    const g = grad((p: Tensor[]) => f(p[0]!, p[1]!, ids))([x, scale]);
    assert.deepEqual(memory().tensors - before.tensors, 2, 'dx and dscale only');
    const composed = tidy(() => {
      const [cx, cs] = [on(x, 'reference', 'float64'), on(scale, 'reference', 'float64')];
      const cids = tensor(ids.dataSync() as Int32Array, [2, 8], { dtype: 'int32', backend: 'reference' });
      return grad((p: Tensor[]) => f(p[0]!, p[1]!, cids))([cx, cs]);
    });
    assert.ok(relError(g[0]!, composed[0]!) < 1e-4, 'dx');
    assert.ok(relError(g[1]!, composed[1]!) < 1e-4, 'dscale');
    dispose([g, composed, x, scale, ids]);
    assert.deepEqual(memory().tensors, before.tensors - 3);
  });
});

describe('fused memory-layer blocks: conv + SiLU + per-head L2 norm, and the gates (wasm)', {
  skip: wasmBackend === null && 'no wasm backend',
}, () => {
  const rng = new Rng(12);
  const ref = { dtype: 'float64', backend: 'reference' } as const;

  /** The block composed of engine ops (the reference path of memory/layer.ts). */
  function composed(
    z: Tensor,
    taps: Tensor | null,
    tail: Tensor | null,
    H: number,
    normalize: boolean,
  ): Tensor {
    const a = taps && tail ? causalConv(z, taps, tail).out : z;
    const [B, T] = [z.shape[0]!, z.shape[1]!];
    const s = transpose(reshape(silu(a), [B, T, H, -1]), [0, 2, 1, 3]);
    return normalize ? l2Normalize(s, -1, 1e-6) : s;
  }

  /** The fused op where the backend has it (wasm), composed ops elsewhere (reference, float64). */
  function block(z: Tensor, taps: Tensor | null, tail: Tensor | null, H: number, normalize: boolean): Tensor {
    if (z.backend.name === 'reference') {
      assert.equal(fusedConvSiluNorm(z, taps, tail, H, normalize, 1e-6), null); // it composes
      return composed(z, taps, tail, H, normalize);
    }
    const y = fusedConvSiluNorm(z, taps, tail, H, normalize, 1e-6);
    assert.ok(y, 'the wasm backend runs the fused block');
    return y;
  }

  it('the backend has it', () => assert.ok(wasmBackend!.fusedConvSiluNorm));

  for (const { K, T, normalize } of [
    { K: 4, T: 9, normalize: true },
    { K: 4, T: 2, normalize: true }, // fewer tokens than the tail: the conv reaches back into it
    { K: 3, T: 7, normalize: false }, // values left unnormalised (normalizeValues: false)
    { K: 1, T: 5, normalize: true }, // one tap, an empty tail
  ]) {
    it(`K = ${K}, T = ${T}, ${normalize ? '' : 'not '}normalised: values and gradients (z, taps, tail) match float64`, () => {
      const [B, H, dh] = [2, 3, 6]; // dh = 6: four SIMD lanes and a scalar rest
      const z = rng.normal([B, T, H * dh], ref);
      const taps = rng.uniform([K, H * dh], { low: -0.6, high: 0.6, ...ref });
      const tail = rng.normal([B, K - 1, H * dh], ref);
      againstFloat64(
        'conv block',
        // K = 1: an empty tail (B, 0, C), nothing to differentiate
        ([a, w, t]) =>
          block(
            a!,
            w!,
            t ?? zeros([B, 0, H * dh], { dtype: a!.dtype, backend: a!.backend.name }),
            H,
            normalize,
          ),
        K > 1 ? [z, taps, tail] : [z, taps],
        rng.normal([B, H, T, dh], ref),
      );
    });
  }

  it('without a convolution (K = 0): values and the gradient of z match float64', () => {
    const z = rng.normal([3, 5, 8], { std: 3, ...ref });
    againstFloat64('no conv', ([a]) => block(a!, null, null, 2, true), [z], rng.normal([3, 2, 5, 4], ref));
  });

  it('declines what it does not cover: mismatched tails, heads that do not divide C, operands on another backend', () => {
    tidy(() => {
      const z = tensor(new Float32Array(2 * 4 * 6), [2, 4, 6], { backend: 'wasm' });
      const taps = tensor(new Float32Array(3 * 6), [3, 6], { backend: 'wasm' });
      assert.equal(
        fusedConvSiluNorm(
          z,
          taps,
          tensor(new Float32Array(2 * 6), [1, 2, 6], { backend: 'wasm' }),
          2,
          true,
          1e-6,
        ),
        null,
      );
      assert.equal(fusedConvSiluNorm(z, null, null, 4, true, 1e-6), null);
      const elsewhere = tensor(new Float32Array(3 * 6), [3, 6], { backend: 'reference' });
      const tail = tensor(new Float32Array(2 * 2 * 6), [2, 2, 6], { backend: 'wasm' });
      assert.equal(fusedConvSiluNorm(z, elsewhere, tail, 2, true, 1e-6), null);
      assert.ok(fusedConvSiluNorm(z, taps, tail, 2, true, 1e-6)); // the same call with its taps on wasm
    });
  });

  it('gates cap · σ(z + bias) moved to (B, H, T): values and gradients (z, bias) match float64', () => {
    const z = rng.normal([2, 7, 3], { std: 4, ...ref });
    const bias = rng.normal([3], ref);
    const gateOf =
      (cap: number) =>
      ([a, b]: Tensor[]) => {
        if (a!.backend.name === 'reference') {
          assert.equal(fusedGate(a!, b!, cap), null); // it composes
          return transpose(mul(sigmoid(add(a!, b!)), cap), [0, 2, 1]);
        }
        const out = fusedGate(a!, b!, cap);
        assert.ok(out, 'the wasm backend runs the fused gate');
        return out;
      };
    for (const cap of [1, 0.5, 0.02]) {
      againstFloat64(`gate cap ${cap}`, gateOf(cap), [z, bias], rng.normal([2, 3, 7], ref));
    }
  });

  it('a memory layer streamed in pieces on wasm follows the float64 reference (the layer takes the fused path)', () => {
    const config = defaultMemoryLayerConfig({ dModel: 12, heads: 2, headDim: 6, chunkSize: 4 });
    tidy(() => {
      const params64 = initMemoryLayer(config, new Rng(3), 'float64');
      const params32 = mapTensors(params64, (t) => on(t, 'wasm')) as MemoryLayerParams;
      const x64 = rng.normal([2, 11, 12], ref);
      const run = (p: MemoryLayerParams, x: Tensor) => {
        const first = memoryLayer(p, config, slice(x, [0, 0, 0], [-1, 2, -1])); // 2 < K − 1 = 3 tokens
        const second = memoryLayer(p, config, slice(x, [0, 2, 0], [-1, -1, -1]), first.state);
        return concat([first.y, second.y], 1);
      };
      const want = run(params64, x64);
      const got = run(params32, on(x64, 'wasm'));
      assert.ok(relError(got, want) < 1e-4, `streamed outputs differ by ${relError(got, want)}`);
      assert.ok(relError(memoryLayer(params32, config, on(x64, 'wasm')).y, want) < 1e-4, 'whole = pieces');
    });
  });
});

describe('fused memory read M_W(q) at fixed weights (wasm)', {
  skip: wasmBackend === null && 'no wasm backend',
}, () => {
  const rng = new Rng(17);
  const ref = { dtype: 'float64', backend: 'reference' } as const;

  /** Runs f counting the calls of the backend's fused read (forward, backward). */
  function counting(f: () => void): [number, number] {
    const kernels = wasmBackend!.fusedMemoryRead! as {
      forward: (...a: never[]) => unknown;
      backward: (...a: never[]) => unknown;
    };
    const [forward, backward] = [kernels.forward, kernels.backward];
    const calls: [number, number] = [0, 0];
    kernels.forward = (...a) => {
      calls[0]++;
      return forward(...a);
    };
    kernels.backward = (...a) => {
      calls[1]++;
      return backward(...a);
    };
    try {
      f();
    } finally {
      [kernels.forward, kernels.backward] = [forward, backward];
    }
    return calls;
  }

  const cases = [
    // T = 70: a block of 64 tokens and one of 6; h = 12: an 8-wide and a 4-wide register tile
    { B: 3, Bw: 1, T: 70, d: 8, h: 12, activation: 'silu', residual: true },
    { B: 3, Bw: 3, T: 5, d: 4, h: 16, activation: 'silu', residual: false },
    { B: 2, Bw: 2, T: 9, d: 8, h: 8, activation: 'gelu', residual: true },
  ] as const;
  for (const { B, Bw, T, d, h, activation, residual } of cases) {
    it(`B = ${B}, weights for ${Bw}, T = ${T}, d = ${d}, h = ${h}, ${activation}${residual ? ', residual' : ''}: values and gradients (q, W₁, W₂) match float64 on the fused kernel`, () => {
      const H = 2;
      const q = rng.normal([B, H, T, d], { std: 1.5, ...ref });
      const w1 = rng.normal([Bw, H, d, h], { std: 1 / Math.sqrt(d), ...ref });
      const w2 = rng.normal([Bw, H, h, d], { std: 1 / Math.sqrt(h), ...ref });
      const read = ([z, a, b]: Tensor[]) => memoryForward(z!, [a!, b!], { activation, residual });
      const calls = counting(() => againstFloat64('read', read, [q, w1, w2], rng.normal([B, H, T, d], ref)));
      assert.deepEqual(
        calls,
        [2, 1],
        'one forward for the values, one forward and backward for the gradients',
      );
    });
  }

  it('declines what it does not cover (d not a multiple of 4, depth 1, other ranks): those compose', () => {
    tidy(() => {
      const options = { activation: 'silu', residual: true } as const;
      const q = rng.normal([2, 2, 5, 6], ref);
      const [w1, w2] = [rng.normal([1, 2, 6, 8], ref), rng.normal([1, 2, 8, 6], ref)];
      const wide = rng.normal([1, 2, 6, 6], ref);
      const rows = rng.normal([5, 6], ref);
      const [r1, r2] = [rng.normal([6, 8], ref), rng.normal([8, 6], ref)];
      const calls = counting(() => {
        for (const [z, ws] of [
          [q, [w1, w2]],
          [q, [wide]],
          [rows, [r1, r2]],
        ] as [Tensor, Tensor[]][]) {
          const got = memoryForward(
            on(z, 'wasm'),
            ws.map((w) => on(w, 'wasm')),
            options,
          );
          const e = relError(got, memoryForward(z, ws, options));
          assert.ok(e < 1e-5, `composed read differs by ${e}`);
        }
      });
      assert.deepEqual(calls, [0, 0]);
    });
  });
});

describe('fused RoPE (wasm)', { skip: wasmBackend === null && 'no wasm backend' }, () => {
  const rng = new Rng(13);
  const ref = { dtype: 'float64', backend: 'reference' } as const;
  const positions = [0, 3, 4, 9, 17, 100, 2];

  it('the backend has it, and the forward equals the composed float32 ops bit for bit', () => {
    assert.ok(wasmBackend!.fusedRope);
    tidy(() => {
      const x = on(rng.normal([2, 3, 7, 10], ref), 'wasm'); // d/2 = 5: four SIMD lanes and a scalar rest
      const half = 5;
      const cos = tensor(
        Float32Array.from({ length: 7 * half }, (_, k) =>
          Math.cos(positions[Math.floor(k / half)]! * 10000 ** ((-2 * (k % half)) / 10)),
        ),
        [7, half],
        { backend: 'wasm' },
      );
      const sin = tensor(
        Float32Array.from({ length: 7 * half }, (_, k) =>
          Math.sin(positions[Math.floor(k / half)]! * 10000 ** ((-2 * (k % half)) / 10)),
        ),
        [7, half],
        { backend: 'wasm' },
      );
      const x1 = slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
      const x2 = slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
      const composed = concat([sub(mul(x1, cos), mul(x2, sin)), add(mul(x1, sin), mul(x2, cos))], -1);
      assert.deepEqual(rope(x, positions).dataSync(), composed.dataSync());
    });
  });

  it('values and gradients match float64', () => {
    const x = rng.normal([2, 3, 7, 10], ref);
    againstFloat64('rope', ([a]) => rope(a!, positions), [x], rng.normal([2, 3, 7, 10], ref));
  });

  it('ropeHeads runs its kernel and equals rope of the transposed heads bit for bit, gradient too', () => {
    const kernels = wasmBackend!.fusedRope!;
    const applyHeads = kernels.applyHeads!;
    let calls = 0;
    Object.assign(kernels, {
      applyHeads: (...a: Parameters<typeof applyHeads>) => {
        calls++;
        return applyHeads(...a);
      },
    });
    try {
      tidy(() => {
        const x = on(rng.normal([2, 7, 30], ref), 'wasm'); // 3 heads of 10
        const w = on(rng.normal([2, 3, 7, 10], ref), 'wasm');
        const split = (t: Tensor) => transpose(reshape(t, [2, 7, 3, 10]), [0, 2, 1, 3]);
        const fused = (t: Tensor) => ropeHeads(t, 3, positions);
        const composed = (t: Tensor) => rope(split(t), positions);
        assert.deepEqual(fused(x).dataSync(), composed(x).dataSync());
        const g = (f: (t: Tensor) => Tensor) => grad((t: Tensor) => sum(mul(f(t), w)))(x).dataSync();
        assert.deepEqual(g(fused), g(composed));
      });
      assert.equal(calls, 3, 'two forwards and one backward through applyHeads');
    } finally {
      Object.assign(kernels, { applyHeads });
    }
  });

  it('ropeHeads: values and gradients match float64', () => {
    const x = rng.normal([2, 7, 30], ref);
    againstFloat64('ropeHeads', ([a]) => ropeHeads(a!, 3, positions), [x], rng.normal([2, 3, 7, 10], ref));
  });
});
