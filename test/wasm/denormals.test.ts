/**
 * Denormal-proof kernels on the wasm backend (issue: x86 cores compute on float32 denormals
 * 10–100× slower, and WebAssembly cannot set flush-to-zero). What the kernels carry from one
 * step to the next is flushed to exact zeros below a small threshold, at places that do not
 * depend on how a stream is split, and the results stay within SPEC's float32 tolerance of the
 * float64 reference. Timing is the bench's business (`npm run bench -- --only memoryScan`);
 * these tests check the values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  add,
  attention,
  grad,
  type MemoryScanInputs,
  memoryScan,
  mul,
  Rng,
  sum,
  type Tensor,
  tensor,
  tidy,
  wasmBackend,
} from '../../src/index.js';
import { relError } from '../helpers/compare.js';

/** The smallest normal float32. */
const FLT_MIN = 2 ** -126;
/** Carried memory state below this is flushed at chunk boundaries (assembly/memory.ts). */
const FLUSH_BELOW = 2 ** -60;

function onBackend(t: Tensor, backend: 'wasm' | 'reference', dtype: 'float32' | 'float64'): Tensor {
  const data = dtype === 'float32' ? Float32Array.from(t.dataSync()) : Float64Array.from(t.dataSync());
  return tensor(data, t.shape, { dtype, backend });
}

/** A head's inputs with strong forgetting: the memory decays towards zero through every range. */
function forgettingInputs(rng: Rng, T: number, alpha: [number, number]): MemoryScanInputs {
  const opts = { dtype: 'float64', backend: 'reference' } as const;
  const [H, d, h] = [2, 8, 16];
  return {
    q: rng.normal([H, T, d], { std: 1 / Math.sqrt(d), ...opts }),
    k: rng.normal([H, T, d], { std: 1 / Math.sqrt(d), ...opts }),
    v: rng.normal([H, T, d], opts),
    alpha: rng.uniform([H, T], { low: alpha[0], high: alpha[1], ...opts }),
    eta: rng.uniform([H, T], { low: 0.3, high: 0.6, ...opts }),
    theta: rng.uniform([H, T], { low: 0.01, high: 0.05, ...opts }),
    weights: [
      rng.normal([H, d, h], { std: 1 / Math.sqrt(d), ...opts }),
      rng.normal([H, h, d], { std: 1 / Math.sqrt(h), ...opts }),
    ],
  };
}

function mapInputs(x: MemoryScanInputs, f: (t: Tensor) => Tensor): MemoryScanInputs {
  return {
    ...x,
    q: f(x.q),
    k: f(x.k),
    v: f(x.v),
    alpha: f(x.alpha),
    eta: f(x.eta),
    theta: f(x.theta),
    weights: x.weights.map(f),
    ...(x.momentum ? { momentum: x.momentum.map(f) } : {}),
    ...(x.chunkStartWeights ? { chunkStartWeights: x.chunkStartWeights.map(f) } : {}),
  };
}

/** Entries with 0 < |x| < limit. */
function tinyEntries(t: Tensor, limit: number): number {
  let n = 0;
  for (const x of t.dataSync()) if (x !== 0 && Math.abs(x) < limit) n++;
  return n;
}

describe('denormal-proof memory scan (wasm)', { skip: wasmBackend === null && 'no wasm backend' }, () => {
  it('a decaying memory ends with exact zeros, never denormals, and stays within tolerance', () => {
    tidy(() => {
      // α ∈ [0.2, 0.5]: the state shrinks by ~1e−3 per chunk of 16, through 1e−38 within 400 tokens.
      const x = forgettingInputs(new Rng(1), 400, [0.2, 0.5]);
      const options = { chunkSize: 16 };
      const fused = memoryScan(
        mapInputs(x, (t) => onBackend(t, 'wasm', 'float32')),
        options,
      );
      const ref = memoryScan(x, options);
      for (const [name, list] of [
        ['W', fused.state.weights],
        ['S', fused.state.momentum],
      ] as const) {
        list.forEach((t, l) => {
          assert.equal(tinyEntries(t, FLUSH_BELOW), 0, `${name}${l} keeps entries below 2^-60`);
          assert.equal(tinyEntries(t, FLT_MIN), 0, `${name}${l} keeps denormals`);
        });
      }
      // The reference decayed below float32's range as well; y agrees where it is not negligible.
      assert.ok(relError(fused.y, ref.y) < 1e-4, `y differs by ${relError(fused.y, ref.y)}`);
      fused.state.weights.forEach((t, l) => {
        const maxRef = Math.max(...Array.from(ref.state.weights[l]!.dataSync(), Math.abs));
        const maxGot = Math.max(...Array.from(t.dataSync(), Math.abs));
        assert.ok(maxGot <= Math.max(maxRef * 1.001, FLUSH_BELOW), `W${l}: ${maxGot} vs ${maxRef}`);
      });
    });
  });

  it('gradients of a decaying memory match float64 (state and dy cotangents flushed)', () => {
    tidy(() => {
      const x = forgettingInputs(new Rng(4), 300, [0, 0.3]);
      const options = { chunkSize: 16 };
      const loss = (p: MemoryScanInputs) => {
        const r = memoryScan(p, options);
        return add(sum(mul(r.y, r.y)), sum(r.state.weights[0]!));
      };
      const want = grad(loss)(x);
      const got = grad(loss)(mapInputs(x, (t) => onBackend(t, 'wasm', 'float32')));
      for (const key of ['q', 'k', 'v', 'alpha', 'eta', 'theta'] as const) {
        const e = relError(got[key], want[key]);
        assert.ok(e < 1e-3, `grad ${key} differs by ${e}`);
      }
      got.weights.forEach((g, l) => {
        const e = relError(g, want.weights[l]!);
        assert.ok(e < 1e-3, `grad W${l} differs by ${e}`);
      });
    });
  });

  it('flushes at chunk boundaries only: a stream split mid-chunk equals the whole stream', () => {
    tidy(() => {
      const x = forgettingInputs(new Rng(2), 160, [0.1, 0.3]);
      const options = { chunkSize: 16 };
      const wasm = mapInputs(x, (t) => onBackend(t, 'wasm', 'float32'));
      const whole = memoryScan(wasm, options);
      // Tokens [start, start + n) of a (H, T, …) tensor.
      const slice = (t: Tensor, start: number, n: number) => {
        const [H, T] = [t.shape[0]!, t.shape[1]!];
        const inner = t.size / (H * T);
        const data = t.dataSync();
        const out = new Float32Array(H * n * inner);
        for (let head = 0; head < H; head++) {
          const from = (head * T + start) * inner;
          out.set(data.subarray(from, from + n * inner), head * n * inner);
        }
        return tensor(out, [H, n, ...t.shape.slice(2)], { dtype: 'float32', backend: 'wasm' });
      };
      const part = (start: number, n: number): MemoryScanInputs => ({
        ...wasm,
        q: slice(wasm.q, start, n),
        k: slice(wasm.k, start, n),
        v: slice(wasm.v, start, n),
        alpha: slice(wasm.alpha, start, n),
        eta: slice(wasm.eta, start, n),
        theta: slice(wasm.theta, start, n),
      });
      const first = memoryScan(part(0, 57), options); // ends mid-chunk: not flushed there
      const second = memoryScan({ ...part(57, 103), ...first.state }, options);
      const [H, d] = [2, 8];
      const joined = new Float32Array(H * 160 * d);
      const a = first.y.dataSync();
      const b = second.y.dataSync();
      for (let head = 0; head < H; head++) {
        joined.set(a.subarray(head * 57 * d, (head + 1) * 57 * d), head * 160 * d);
        joined.set(b.subarray(head * 103 * d, (head + 1) * 103 * d), (head * 160 + 57) * d);
      }
      assert.ok(relError(joined, whole.y) < 1e-5, 'y');
      second.state.weights.forEach((t, l) => {
        assert.ok(relError(t, whole.state.weights[l]!) < 1e-5, `W${l}`);
      });
    });
  });

  it('keeps NaN and infinities (a diverged memory is reported, not flushed)', () => {
    tidy(() => {
      const x = forgettingInputs(new Rng(3), 32, [0, 0.05]);
      const w0 = Float64Array.from(x.weights[0]!.dataSync());
      w0[5] = Number.NaN;
      const weights = [
        tensor(w0, x.weights[0]!.shape, { dtype: 'float64', backend: 'reference' }),
        x.weights[1]!,
      ];
      const fused = memoryScan(
        mapInputs({ ...x, weights }, (t) => onBackend(t, 'wasm', 'float32')),
        {
          chunkSize: 16,
        },
      );
      assert.ok(
        fused.state.weights[0]!.dataSync().some((u) => Number.isNaN(u)),
        'NaN survives',
      );
    });
  });
});

describe('denormal-proof attention (wasm)', { skip: wasmBackend === null && 'no wasm backend' }, () => {
  it('softmax weights far below the row maximum (down to e^-90) match float64, values and gradients', () => {
    tidy(() => {
      const rng = new Rng(5);
      const opts = { dtype: 'float64', backend: 'reference' } as const;
      // Scores spread over ~±90: most weights of a row are between 1e−20 and 1e−40.
      const q = rng.normal([1, 2, 40, 8], { std: 6, ...opts });
      const k = rng.normal([1, 2, 40, 8], { std: 6 / Math.sqrt(8), ...opts });
      const v = rng.normal([1, 2, 40, 8], opts);
      const options = { scale: 1 };
      const f32 = (t: Tensor) => onBackend(t, 'wasm', 'float32');
      const want = attention(q, k, v, options);
      const got = attention(f32(q), f32(k), f32(v), options);
      assert.ok(relError(got, want) < 1e-4, `values differ by ${relError(got, want)}`);
      const w = rng.normal([1, 2, 40, 8], opts); // a cotangent
      const gradients = (x: Tensor[], weights: Tensor) =>
        grad((y: Tensor[]) => sum(mul(attention(y[0]!, y[1]!, y[2]!, options), weights)))(x);
      const gWant = gradients([q, k, v], w);
      const gGot = gradients([q, k, v].map(f32), f32(w));
      ['q', 'k', 'v'].forEach((name, i) => {
        const e = relError(gGot[i]!, gWant[i]!);
        assert.ok(e < 1e-3, `grad ${name} differs by ${e}`);
      });
    });
  });
});
