/**
 * attention (position-masked softmax attention) and rope against plain-JS loops on every backend,
 * their gradients against finite differences in float64, and argument validation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AttentionOptions,
  attention,
  attentionMask,
  grad,
  mul,
  Rng,
  rope,
  ropeHeads,
  sum,
  type Tensor,
  tensor,
} from '../../src/index.js';
import { backendsUnderTest, tolerance } from '../helpers/backends.js';
import { relError } from '../helpers/compare.js';
import { readAll, valuesOf } from '../helpers/read.js';
import { bestFloat, float64Backends, gradCheck, uniform } from './util.js';

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

function randomData(rng: Rng, n: number, lo = -1.5, hi = 1.5): Float64Array {
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * rng.next();
  return d;
}

/** The contract's rule, written out independently of the library. */
function visibleTo(qp: number, kp: number, j: number, window: number, prefix: number): boolean {
  if (j < prefix) return true;
  return kp <= qp && qp - kp < window;
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

/** Plain-JS float64 attention: out (B, H, Tq, dh). Rows with no visible key are 0. */
function naiveAttention(c: Case, q: Float64Array, k: Float64Array, v: Float64Array): Float64Array {
  const { b, h, tq, tk, dh } = c;
  const qpos = c.opts.queryPositions ?? range(tq, tk - tq);
  const kpos = c.opts.keyPositions ?? range(tk);
  const window = c.opts.window ?? Number.POSITIVE_INFINITY;
  const prefix = c.opts.prefix ?? 0;
  const scale = c.opts.scale ?? 1 / Math.sqrt(dh);
  const out = new Float64Array(b * h * tq * dh);
  for (let bh = 0; bh < b * h; bh++) {
    for (let i = 0; i < tq; i++) {
      const scores: number[] = [];
      const keys: number[] = [];
      for (let j = 0; j < tk; j++) {
        if (!visibleTo(qpos[i]!, kpos[j]!, j, window, prefix)) continue;
        let s = 0;
        for (let d = 0; d < dh; d++) s += q[(bh * tq + i) * dh + d]! * k[(bh * tk + j) * dh + d]!;
        scores.push(s * scale);
        keys.push(j);
      }
      if (keys.length === 0) continue;
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, x) => a + x, 0);
      for (let n = 0; n < keys.length; n++) {
        for (let d = 0; d < dh; d++) {
          out[(bh * tq + i) * dh + d]! += (e[n]! / z) * v[(bh * tk + keys[n]!) * dh + d]!;
        }
      }
    }
  }
  return out;
}

// MAC: [P; h; n] with N_p = 2 persistent rows and a segment of C = 4: h_j and n_j both at position j.
const MAC_POSITIONS = [0, 0, ...range(4), ...range(4)];

const cases: Case[] = [
  { name: 'causal', b: 1, h: 1, tq: 7, tk: 7, dh: 4, opts: {} },
  { name: 'causal, B = H = 2', b: 2, h: 2, tq: 5, tk: 5, dh: 8, opts: {} },
  { name: 'sliding window 3', b: 1, h: 2, tq: 9, tk: 9, dh: 4, opts: { window: 3 } },
  { name: 'window 1 (only itself)', b: 1, h: 1, tq: 5, tk: 5, dh: 4, opts: { window: 1 } },
  {
    name: 'persistent prefix under a window',
    b: 1,
    h: 1,
    tq: 6,
    tk: 9,
    dh: 4,
    opts: { prefix: 3, window: 2, queryPositions: range(6), keyPositions: [0, 0, 0, ...range(6)] },
  },
  {
    name: 'MAC [P; h; n] positions',
    b: 1,
    h: 2,
    tq: 10,
    tk: 10,
    dh: 4,
    opts: { prefix: 2, queryPositions: MAC_POSITIONS, keyPositions: MAC_POSITIONS },
  },
  { name: 'KV cache (Tq < Tk, default positions)', b: 1, h: 1, tq: 3, tk: 8, dh: 4, opts: {} },
  {
    name: 'rows with no visible key',
    b: 1,
    h: 1,
    tq: 4,
    tk: 5,
    dh: 4,
    opts: { queryPositions: [-1, 0, 10, 2], window: 3 },
  },
  {
    name: 'custom scale, dh = 6 (composed on every backend)',
    b: 1,
    h: 1,
    tq: 5,
    tk: 5,
    dh: 6,
    opts: { scale: 0.9 },
  },
];

describe('attention: forward against a plain-JS loop', () => {
  for (const backend of backendsUnderTest()) {
    const dtype = bestFloat(backend);
    for (const c of cases) {
      it(`${backend} (${dtype}): ${c.name}`, async () => {
        const rng = new Rng(11);
        const [q, k, v] = [c.tq, c.tk, c.tk].map((t) => randomData(rng, c.b * c.h * t * c.dh));
        const expected = naiveAttention(c, q!, k!, v!);
        const actual = await valuesOf(() => {
          const opts = { dtype, backend };
          const out = attention(
            tensor(q!, [c.b, c.h, c.tq, c.dh], opts),
            tensor(k!, [c.b, c.h, c.tk, c.dh], opts),
            tensor(v!, [c.b, c.h, c.tk, c.dh], opts),
            c.opts,
          );
          assert.deepEqual(out.shape, [c.b, c.h, c.tq, c.dh]);
          return out;
        });
        const err = relError(actual, expected);
        assert.ok(err <= tolerance(dtype), `relative error ${err.toExponential(2)}`);
      });
    }
  }

  it('rows with no visible key are exactly 0', async () => {
    for (const backend of backendsUnderTest()) {
      const opts = { dtype: bestFloat(backend), backend };
      const rng = new Rng(3);
      const out = await valuesOf(() =>
        attention(
          tensor(randomData(rng, 4 * 4), [1, 1, 4, 4], opts),
          tensor(randomData(rng, 5 * 4), [1, 1, 5, 4], opts),
          tensor(randomData(rng, 5 * 4), [1, 1, 5, 4], opts),
          { queryPositions: [-1, 0, 10, 2], window: 3 },
        ),
      );
      for (const row of [0, 2]) {
        assert.deepEqual(Array.from(out.slice(row * 4, row * 4 + 4)), [0, 0, 0, 0], `${backend} row ${row}`);
      }
      assert.ok(out.slice(4, 8).some((x) => x !== 0));
    }
  });
});

describe('attention: gradients against finite differences (float64)', () => {
  const gradCases = cases.filter((c) => c.name !== 'causal, B = H = 2');
  for (const backend of float64Backends()) {
    for (const c of gradCases) {
      it(`${backend}: ${c.name}`, () => {
        const rng = new Rng(5);
        const opts = { backend };
        const q = tensor(randomData(rng, c.b * c.h * c.tq * c.dh), [c.b, c.h, c.tq, c.dh], opts);
        const k = tensor(randomData(rng, c.b * c.h * c.tk * c.dh), [c.b, c.h, c.tk, c.dh], opts);
        const v = tensor(randomData(rng, c.b * c.h * c.tk * c.dh), [c.b, c.h, c.tk, c.dh], opts);
        gradCheck(rng, ([a, b2, d]) => attention(a!, b2!, d!, c.opts), [q, k, v], { maxEntries: 40 });
      });
    }

    it(`${backend}: second derivative (the composed path differentiates twice)`, () => {
      const rng = new Rng(9);
      const shape = [1, 1, 5, 4];
      const [q, k, v] = [0, 1, 2].map(() => tensor(randomData(rng, 20), shape, { backend })) as Tensor[];
      const w = uniform(rng, shape, -1, 1);
      const loss = (a: Tensor): Tensor => sum(mul(attention(a, k!, v!, { window: 3 }), w));
      gradCheck(rng, ([a]) => grad((x: Tensor) => loss(x))(a!), [q!]);
    });
  }
});

describe('attentionMask', () => {
  it('follows the visibility rule: prefix, causality, window', () => {
    const mask = attentionMask([0, 1, 2, 5], [0, 0, 1, 2, 3], 2, 1);
    // rows: query positions 0, 1, 2, 5; key 0 is the prefix
    assert.deepEqual(Array.from(mask), [1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0]);
  });
});

describe('attention: validation', () => {
  const t = (shape: number[]) => tensor(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  const [q, k, v] = [t([1, 2, 3, 4]), t([1, 2, 5, 4]), t([1, 2, 5, 4])] as [Tensor, Tensor, Tensor];
  it('rejects mismatched shapes', () => {
    assert.throws(() => attention(q, t([1, 2, 5, 3]), v), /shapes do not match/);
    assert.throws(() => attention(q, k, t([1, 2, 4, 4])), /shapes do not match/);
    assert.throws(() => attention(t([2, 3, 4]), k, v), /must be \(B, H, T, dh\)/);
  });
  it('rejects bad positions, windows and prefixes', () => {
    assert.throws(() => attention(q, k, v, { queryPositions: [0, 1] }), /queryPositions has length 2/);
    assert.throws(() => attention(q, k, v, { keyPositions: [0, 1, 2, 3, 4.5] }), /not an integer/);
    assert.throws(() => attention(q, k, v, { keyPositions: [0, 1, 2, 3, 2 ** 31] }), /not an integer/);
    assert.throws(() => attention(q, k, v, { window: 0 }), /window/);
    assert.throws(() => attention(q, k, v, { window: 2.5 }), /window/);
    assert.throws(() => attention(q, k, v, { prefix: 6 }), /prefix/);
    assert.throws(() => attention(q, k, v, { scale: Number.NaN }), /scale/);
  });
});

/** Plain-JS rope, halves convention. */
function naiveRope(x: Float64Array, t: number, d: number, positions: number[], base: number): Float64Array {
  const out = new Float64Array(x.length);
  const half = d / 2;
  for (let row = 0; row < x.length / d; row++) {
    const p = positions[row % t]!;
    for (let i = 0; i < half; i++) {
      const theta = p * base ** ((-2 * i) / d);
      const a = x[row * d + i]!;
      const b = x[row * d + i + half]!;
      out[row * d + i] = a * Math.cos(theta) - b * Math.sin(theta);
      out[row * d + i + half] = a * Math.sin(theta) + b * Math.cos(theta);
    }
  }
  return out;
}

describe('rope', () => {
  for (const backend of backendsUnderTest()) {
    const dtype = bestFloat(backend);
    it(`${backend} (${dtype}): matches a plain-JS loop (pairs i, i + d/2)`, async () => {
      const rng = new Rng(2);
      const positions = [0, 3, 1, 17, 1000];
      const x = randomData(rng, 2 * 5 * 8);
      const expected = naiveRope(x, 5, 8, positions, 500);
      const actual = await valuesOf(() => rope(tensor(x, [2, 5, 8], { dtype, backend }), positions, 500));
      assert.ok(relError(actual, expected) <= tolerance(dtype));
    });

    it(`${backend} (${dtype}): preserves each token's norm`, async () => {
      const rng = new Rng(4);
      const x = randomData(rng, 3 * 6 * 16);
      const y = await valuesOf(() =>
        rope(tensor(x, [3, 6, 16], { dtype, backend }), [0, 1, 2, 50, 7, 123456]),
      );
      for (let row = 0; row < 18; row++) {
        let nx = 0;
        let ny = 0;
        for (let i = 0; i < 16; i++) {
          nx += x[row * 16 + i]! ** 2;
          ny += y[row * 16 + i]! ** 2;
        }
        assert.ok(Math.abs(Math.sqrt(ny) - Math.sqrt(nx)) <= 10 * tolerance(dtype) * Math.sqrt(nx));
      }
    });

    it(`${backend} (${dtype}): ⟨rope(q, i), rope(k, j)⟩ depends only on i − j`, async () => {
      const rng = new Rng(6);
      const d = 12;
      const qd = randomData(rng, d);
      const kd = randomData(rng, d);
      const dot = async (i: number, j: number): Promise<number> => {
        const opts = { dtype, backend };
        const [a, b] = await readAll(() => [
          rope(tensor(qd, [1, d], opts), [i]),
          rope(tensor(kd, [1, d], opts), [j]),
        ]);
        let s = 0;
        for (let n = 0; n < d; n++) s += a![n]! * b![n]!;
        return s;
      };
      for (const [i, j] of [
        [5, 2],
        [2, 5],
        [0, 0],
        [40, 7],
      ] as const) {
        const base = await dot(i, j);
        for (const shift of [1, 13, 300]) {
          const shifted = await dot(i + shift, j + shift);
          assert.ok(Math.abs(shifted - base) <= 20 * tolerance(dtype), `(${i}, ${j}) + ${shift}`);
        }
      }
      // and it does depend on the offset
      assert.ok(Math.abs((await dot(5, 2)) - (await dot(2, 5))) > 1e-3);
    });
  }

  for (const backend of float64Backends()) {
    it(`${backend}: gradient against finite differences`, () => {
      const rng = new Rng(8);
      const x = tensor(randomData(rng, 2 * 4 * 6), [2, 4, 6], { backend });
      gradCheck(rng, ([a]) => rope(a!, [0, 2, 9, 31]), [x]);
    });
  }

  it('rejects odd sizes and wrong position counts', () => {
    assert.throws(() => rope(tensor(new Float64Array(6), [2, 3]), [0, 1]), /even/);
    assert.throws(() => rope(tensor(new Float64Array(8), [2, 4]), [0]), /1 positions for 2 tokens/);
  });
});

/** x (B, T, H·d) → (B, H, T, d), written out. */
function naiveSplitHeads(x: Float64Array, b: number, t: number, h: number, d: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < b; i++) {
    for (let s = 0; s < t; s++) {
      for (let j = 0; j < h; j++) {
        for (let f = 0; f < d; f++) out[((i * h + j) * t + s) * d + f] = x[((i * t + s) * h + j) * d + f]!;
      }
    }
  }
  return out;
}

describe('ropeHeads', () => {
  for (const backend of backendsUnderTest()) {
    const dtype = bestFloat(backend);
    it(`${backend} (${dtype}): rope of the split heads (B, H, T, dh), as a plain-JS loop`, async () => {
      const rng = new Rng(3);
      const positions = [4, 0, 9, 2, 1000];
      const x = randomData(rng, 2 * 5 * 3 * 10); // B = 2, T = 5, H = 3, dh = 10 (d/2 = 5: a scalar rest)
      const expected = naiveRope(naiveSplitHeads(x, 2, 5, 3, 10), 5, 10, positions, 500);
      const out = ropeHeads(tensor(x, [2, 5, 30], { dtype, backend }), 3, positions, 500);
      assert.deepEqual(out.shape, [2, 3, 5, 10]);
      assert.ok(relError(await valuesOf(() => out), expected) <= tolerance(dtype));
    });
  }

  for (const backend of float64Backends()) {
    it(`${backend}: gradient against finite differences`, () => {
      const rng = new Rng(9);
      const x = tensor(randomData(rng, 2 * 4 * 12), [2, 4, 12], { backend });
      gradCheck(rng, ([a]) => ropeHeads(a!, 2, [0, 2, 9, 31]), [x]);
    });
  }

  it('rejects a bad rank, heads that do not divide the features, and odd head sizes', () => {
    const x = tensor(new Float64Array(24), [2, 2, 6]);
    assert.throws(() => ropeHeads(tensor(new Float64Array(12), [2, 6]), 1, [0, 1]), /needs \(B, T, H·dh\)/);
    assert.throws(() => ropeHeads(x, 4, [0, 1]), /6 features do not split into 4 heads/);
    assert.throws(() => ropeHeads(x, 2, [0, 1]), /even/);
    assert.throws(() => ropeHeads(x, 3, [0]), /1 positions for 2 tokens/);
  });
});
