/**
 * The wasm backend's fused attention kernels (src/backends/wasm/assembly/attention.ts): forward
 * and gradients against the reference backend's composed attention in float64, the fallback for
 * unsupported head sizes, the kernels' own exp, and memory that stays O(T·dh).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attentionKernels } from '../../src/backends/wasm/attention.js';
import type { FusedAttention } from '../../src/engine/backend.js';
import {
  type AttentionOptions,
  attention,
  grad,
  mul,
  Rng,
  sum,
  type Tensor,
  tensor,
  tidy,
  wasmBackend,
} from '../../src/index.js';
import { relError } from '../helpers/compare.js';

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** Uniform float32-representable values, so both backends see identical inputs. */
function randomData(rng: Rng, n: number, lo: number, hi: number): Float64Array {
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.fround(lo + (hi - lo) * rng.next());
  return d;
}

/** Counts the fused kernel's calls (to prove the fused path ran). */
function spy(fa: FusedAttention): { forwards: number; backwards: number } {
  const counts = { forwards: 0, backwards: 0 };
  const forward = fa.forward.bind(fa);
  const backward = fa.backward.bind(fa);
  fa.forward = (...args) => {
    counts.forwards++;
    return forward(...args);
  };
  fa.backward = (...args) => {
    counts.backwards++;
    return backward(...args);
  };
  return counts;
}

interface Case {
  name: string;
  b: number;
  h: number;
  tq: number;
  tk: number;
  dh: number;
  opts: AttentionOptions;
}

/** Output and gradients (of Σ w ⊙ out) on one backend in one dtype. */
function run(c: Case, data: Float64Array[], backend: string, dtype: 'float32' | 'float64'): Float64Array[] {
  return tidy(() => {
    const opts = { backend, dtype };
    const q = tensor(data[0]!, [c.b, c.h, c.tq, c.dh], opts);
    const k = tensor(data[1]!, [c.b, c.h, c.tk, c.dh], opts);
    const v = tensor(data[2]!, [c.b, c.h, c.tk, c.dh], opts);
    const w = tensor(data[3]!, [c.b, c.h, c.tq, c.dh], opts);
    const out = attention(q, k, v, c.opts);
    const grads = grad((p: Tensor[]) => sum(mul(attention(p[0]!, p[1]!, p[2]!, c.opts), w)))([q, k, v]);
    return [out, ...grads].map((t) => Float64Array.from(t.dataSync()));
  });
}

function inputs(c: Case, seed: number): Float64Array[] {
  const rng = new Rng(seed);
  const n = c.b * c.h;
  return [
    randomData(rng, n * c.tq * c.dh, -2, 2), // q: sharp enough softmaxes
    randomData(rng, n * c.tk * c.dh, -1, 1),
    randomData(rng, n * c.tk * c.dh, -1, 1),
    randomData(rng, n * c.tq * c.dh, -1, 1),
  ];
}

/** 0 … n−1 in a fixed shuffled order. */
function shuffled(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  const a = range(n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

const MAC = (np: number, chunk: number) => [...range(np).map(() => 0), ...range(chunk), ...range(chunk)];

const cases: Case[] = [
  { name: 'causal T = 1', b: 1, h: 1, tq: 1, tk: 1, dh: 8, opts: {} },
  { name: 'causal T = 7', b: 1, h: 1, tq: 7, tk: 7, dh: 4, opts: {} },
  { name: 'causal T = 33, dh = 12', b: 1, h: 1, tq: 33, tk: 33, dh: 12, opts: {} },
  { name: 'causal T = 130, B = 2, H = 3', b: 2, h: 3, tq: 130, tk: 130, dh: 16, opts: {} },
  { name: 'causal T = 130, dh = 64', b: 1, h: 1, tq: 130, tk: 130, dh: 64, opts: {} },
  { name: 'window 1', b: 1, h: 2, tq: 130, tk: 130, dh: 8, opts: { window: 1 } },
  { name: 'window 3', b: 1, h: 1, tq: 130, tk: 130, dh: 8, opts: { window: 3 } },
  {
    name: 'window 40 (partial tiles at both edges)',
    b: 1,
    h: 1,
    tq: 200,
    tk: 200,
    dh: 8,
    opts: { window: 40 },
  },
  { name: 'window larger than T', b: 1, h: 1, tq: 33, tk: 33, dh: 8, opts: { window: 1000 } },
  {
    name: 'persistent prefix (N_p = 5) under window 16',
    b: 1,
    h: 2,
    tq: 130,
    tk: 135,
    dh: 8,
    opts: {
      prefix: 5,
      window: 16,
      queryPositions: range(130),
      keyPositions: [...range(5).map(() => 0), ...range(130)],
    },
  },
  {
    name: 'prefix of 70 keys (a whole key tile and part of the next)',
    b: 1,
    h: 1,
    tq: 33,
    tk: 103,
    dh: 4,
    opts: {
      prefix: 70,
      window: 4,
      queryPositions: range(33),
      keyPositions: [...range(70).map(() => 0), ...range(33)],
    },
  },
  {
    name: 'MAC [P; h; n] (N_p = 4, C = 40)',
    b: 1,
    h: 2,
    tq: 84,
    tk: 84,
    dh: 8,
    opts: { prefix: 4, queryPositions: MAC(4, 40), keyPositions: MAC(4, 40) },
  },
  {
    name: 'KV cache: 7 queries after 130 keys',
    b: 1,
    h: 2,
    tq: 7,
    tk: 137,
    dh: 8,
    opts: {},
  },
  {
    // more than 256 keys without a window: the kernel's wider key tiles (64 keys; 32 below)
    name: 'KV cache: 40 queries after 300 keys, 64-key tiles',
    b: 1,
    h: 2,
    tq: 40,
    tk: 340,
    dh: 8,
    opts: {},
  },
  {
    name: 'persistent prefix (N_p = 3) before 300 keys, no window (64-key tiles after the prefix)',
    b: 1,
    h: 1,
    tq: 300,
    tk: 303,
    dh: 4,
    opts: { prefix: 3, queryPositions: range(300), keyPositions: [...range(3).map(() => 0), ...range(300)] },
  },
  {
    name: 'cache with a window: queries at 200…206, keys at 0…136',
    b: 1,
    h: 1,
    tq: 7,
    tk: 137,
    dh: 8,
    opts: { queryPositions: range(7, 130), keyPositions: range(137), window: 5 },
  },
  {
    name: 'rows with no visible key',
    b: 1,
    h: 1,
    tq: 40,
    tk: 33,
    dh: 8,
    opts: { queryPositions: [...range(20, -20), ...range(20, 100)], keyPositions: range(33), window: 50 },
  },
  {
    // unsorted positions: the kernel's per-row-group key ranges hold every visible key whatever the order
    name: 'shuffled positions under window 20 and prefix 3 (T = 70)',
    b: 2,
    h: 1,
    tq: 70,
    tk: 73,
    dh: 8,
    opts: {
      prefix: 3,
      window: 20,
      queryPositions: shuffled(70, 5),
      keyPositions: [0, 0, 0, ...shuffled(70, 6)],
    },
  },
  {
    name: 'queries in sorted runs, keys sorted, window 9 (T = 62)',
    b: 1,
    h: 2,
    tq: 62,
    tk: 62,
    dh: 4,
    opts: { window: 9, queryPositions: [...range(31, 31), ...range(31)], keyPositions: range(62) },
  },
  { name: 'odd T with a window, B = 3', b: 3, h: 1, tq: 33, tk: 33, dh: 4, opts: { window: 7, scale: 0.3 } },
];

describe('wasm fused attention vs the reference backend (float64)', { skip: !wasmBackend }, () => {
  for (const c of cases) {
    it(c.name, () => {
      const counts = spy(wasmBackend!.fusedAttention!);
      const data = inputs(c, c.tq * 31 + c.tk);
      const expected = run(c, data, 'reference', 'float64');
      const actual = run(c, data, 'wasm', 'float32');
      assert.equal(counts.forwards, 2, 'the fused forward ran');
      assert.equal(counts.backwards, 1, 'the fused backward ran');
      const names = ['out', 'dq', 'dk', 'dv'];
      actual.forEach((a, i) => {
        const err = relError(a, expected[i]!);
        assert.ok(err <= (i === 0 ? 1e-4 : 1e-3), `${names[i]}: relative error ${err.toExponential(2)}`);
      });
    });
  }

  it('rows with no visible key output exactly 0 and pass no gradient', () => {
    const c = cases.find((x) => x.name === 'rows with no visible key')!;
    const [out, dq] = run(c, inputs(c, 1), 'wasm', 'float32');
    for (let i = 0; i < 20 * c.dh; i++) {
      assert.equal(out![i], 0);
      assert.equal(dq![i], 0);
    }
  });

  it('falls back to the composed path when dh is not a multiple of 4', () => {
    const c: Case = { name: 'dh 6', b: 1, h: 2, tq: 9, tk: 9, dh: 6, opts: { window: 4 } };
    const counts = spy(wasmBackend!.fusedAttention!);
    const data = inputs(c, 2);
    const expected = run(c, data, 'reference', 'float64');
    const actual = run(c, data, 'wasm', 'float32');
    assert.equal(counts.forwards, 0);
    actual.forEach((a, i) => {
      assert.ok(relError(a, expected[i]!) <= 1e-4);
    });
  });

  it('agrees with the composed path on the wasm backend (fused: false)', () => {
    const c = cases.find((x) => x.name.startsWith('MAC'))!;
    const data = inputs(c, 3);
    const fused = run(c, data, 'wasm', 'float32');
    const composed = run({ ...c, opts: { ...c.opts, fused: false } }, data, 'wasm', 'float32');
    fused.forEach((a, i) => {
      assert.ok(relError(a, composed[i]!) <= 1e-4);
    });
  });

  it('refuses a second derivative through the fused op', () => {
    const [q, k, v] = inputs(cases[1]!, 4).map((d) =>
      tensor(d, [1, 1, 7, 4], { dtype: 'float32', backend: 'wasm' }),
    );
    const inner = (x: Tensor) => sum(mul(attention(x, k!, v!), x));
    assert.throws(
      () => tidy(() => grad((x: Tensor) => sum(mul(grad(inner)(x), x)))(q!)),
      /no second derivative/,
    );
  });

  it('differentiates twice with fused: false (matches the reference backend)', () => {
    const shape = [1, 2, 9, 4];
    const data = inputs({ name: '', b: 1, h: 2, tq: 9, tk: 9, dh: 4, opts: {} }, 4);
    const second = (backend: string, dtype: 'float32' | 'float64') =>
      tidy(() => {
        const [q, k, v, w] = data.map((d) => tensor(d, shape, { backend, dtype }));
        const inner = (x: Tensor) => sum(mul(attention(x, k!, v!, { window: 3, fused: false }), w!));
        return grad((x: Tensor) => sum(mul(grad(inner)(x), x)))(q!).dataSync();
      });
    assert.ok(relError(second('wasm', 'float32'), second('reference', 'float64')) <= 1e-3);
  });
});

describe('wasm fused attention: NaN', { skip: !wasmBackend }, () => {
  it('a NaN in a query or a key makes exactly the outputs that see it NaN, as the composed ops do', () => {
    const [T, dh] = [6, 4];
    const nanRows = (which: 0 | 1, at: number, fused: boolean) =>
      tidy(() => {
        const d = [0, 1, 2].map((s) =>
          Float32Array.from({ length: T * dh }, (_, i) => Math.sin(i * 1.7 + s)),
        );
        d[which]![at * dh] = Number.NaN;
        const [q, k, v] = d.map((x) => tensor(x, [1, 1, T, dh], { backend: 'wasm' }));
        const out = attention(q!, k!, v!, { window: 2, fused }).dataSync();
        return range(T).map((r) => out.slice(r * dh, (r + 1) * dh).some(Number.isNaN));
      });
    const counts = spy(wasmBackend!.fusedAttention!);
    // query 2: its own row; key 1 with a window of 2: the rows of queries 1 and 2
    assert.deepEqual(nanRows(0, 2, true), [false, false, true, false, false, false]);
    assert.deepEqual(nanRows(1, 1, true), [false, true, true, false, false, false]);
    assert.ok(counts.forwards >= 2, 'the fused kernel ran');
    assert.deepEqual(nanRows(0, 2, false), nanRows(0, 2, true));
    assert.deepEqual(nanRows(1, 1, false), nanRows(1, 1, true));
  });
});

describe('wasm attention kernels: exp', { skip: !wasmBackend }, () => {
  it('is within 2 ulp of exp over [-87, 88] and handles ±inf, underflow, overflow and NaN', () => {
    const kx = attentionKernels(wasmBackend!.kernels)!;
    const heap = wasmBackend!.heap;
    const xs: number[] = [];
    for (let i = 0; i <= 100000; i++) xs.push(Math.fround(-87 + (175 * i) / 100000));
    xs.push(0, -0, 1, -1, Math.fround(Math.LN2), -100, Number.NEGATIVE_INFINITY, Number.NaN, 5);
    const overflow = [88.8, 100, 300, 1e30, Number.POSITIVE_INFINITY]; // e^x > 3.4e38: +inf
    xs.push(...overflow);
    const n = xs.length;
    const [src, srcBytes] = heap.allocBytes(4 * n);
    const [dst, dstBytes] = heap.allocBytes(4 * n);
    try {
      new Float32Array(heap.memory.buffer, src, n).set(xs);
      kx.attentionExp(src, dst, n);
      const out = new Float32Array(heap.memory.buffer, dst, n);
      let worst = 0;
      for (let i = 0; i <= 100000; i++) {
        const exact = Math.exp(xs[i]!);
        const ulp = Math.fround(exact) * 2 ** -23;
        worst = Math.max(worst, Math.abs(out[i]! - exact) / ulp);
      }
      assert.ok(worst <= 2, `max error ${worst.toFixed(2)} ulp`);
      const tail = Array.from(out.slice(n - 9 - overflow.length, n - overflow.length));
      assert.deepEqual(
        Array.from(out.slice(n - overflow.length)),
        overflow.map(() => Number.POSITIVE_INFINITY),
      );
      assert.deepEqual(tail.slice(0, 3), [1, 1, Math.fround(Math.E)]);
      assert.equal(tail[6], 0); // -inf
      assert.equal(tail[5], 0); // below the float32 normal range: flushed to 0
      assert.ok(Number.isNaN(tail[7]));
    } finally {
      heap.freeBytes(src, srcBytes);
      heap.freeBytes(dst, dstBytes);
    }
  });
});

describe('wasm fused attention memory', { skip: !wasmBackend }, () => {
  it('T = 8192, window 64: forward + backward never hold O(T²) bytes', () => {
    const T = 8192;
    const dh = 16;
    const heap = wasmBackend!.heap;
    const rng = new Rng(12);
    const opts = { backend: 'wasm', dtype: 'float32' as const };
    const [qd, kd, vd] = [0, 1, 2].map(() => randomData(rng, T * dh, -1, 1));
    const q = tensor(qd!, [1, 1, T, dh], opts);
    const k = tensor(kd!, [1, 1, T, dh], opts);
    const v = tensor(vd!, [1, 1, T, dh], opts);
    const baseline = heap.inUse;
    let peak = baseline;
    const allocBytes = heap.allocBytes.bind(heap);
    heap.allocBytes = (bytes: number) => {
      const r = allocBytes(bytes);
      peak = Math.max(peak, heap.inUse);
      return r;
    };
    let rows: Float32Array;
    let dqNorm = 0;
    try {
      rows = tidy(() => {
        const [gq] = grad((p: Tensor[]) => sum(attention(p[0]!, p[1]!, p[2]!, { window: 64 })))([q, k, v]);
        for (const x of gq!.dataSync()) dqNorm += x * x;
        return attention(q, k, v, { window: 64 }).dataSync() as Float32Array;
      });
    } finally {
      heap.allocBytes = allocBytes;
    }
    const used = peak - baseline;
    assert.ok(used < (T * T * 4) / 32, `peak ${used} bytes vs T²·4 = ${T * T * 4}`);
    assert.ok(used < 40 * T * dh * 4, `peak ${used} bytes is not O(T·dh)`);
    assert.ok(Number.isFinite(dqNorm) && dqNorm > 0);
    // spot-check a few rows against a plain loop
    for (const i of [0, 1, 63, 64, 4000, T - 1]) {
      const scores: number[] = [];
      for (let j = Math.max(0, i - 63); j <= i; j++) {
        let s = 0;
        for (let d = 0; d < dh; d++) s += qd![i * dh + d]! * kd![j * dh + d]!;
        scores.push(s / Math.sqrt(dh));
      }
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < dh; d++) {
        let want = 0;
        e.forEach((x, n) => {
          want += (x / z) * vd![(Math.max(0, i - 63) + n) * dh + d]!;
        });
        assert.ok(Math.abs(rows![i * dh + d]! - want) < 1e-5, `row ${i}`);
      }
    }
    for (const t of [q, k, v]) t.dispose();
  });
});
