/**
 * Forward values against independent plain-JS computations (nothing here goes through the
 * engine's ops to compute an expected value). Runs in each backend's most precise float dtype.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import {
  add,
  argMax,
  broadcastTo,
  concat,
  crossEntropy,
  cumprod,
  cumsum,
  dispose,
  div,
  gather,
  gelu,
  l2Normalize,
  linearScan,
  logSoftmax,
  logSumExp,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  pad,
  pow,
  rmsNorm,
  slice,
  softmax,
  sub,
  sum,
  type Tensor,
  type TypedArray,
  tensor,
  tidy,
  transpose,
  where,
  withBackend,
} from '../../src/index.js';
import { backendsUnderTest, tolerance } from '../helpers/backends.js';
import {
  axesArb,
  axisArb,
  bestFloat,
  broadcastFrom,
  broadcastPairArb,
  dimArb,
  Rng,
  seedArb,
  shapeArb,
  sizeOf,
} from './util.js';

// ---- a tiny plain-JS n-d array --------------------------------------------------------------

interface Nd {
  shape: number[];
  data: number[];
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    idx[a] = i % shape[a]!;
    i = Math.floor(i / shape[a]!);
  }
  return idx;
}

/** Reads x at an index of a (possibly higher-rank) output shape, broadcasting NumPy-style. */
function at(x: Nd, idx: readonly number[]): number {
  const st = stridesOf(x.shape);
  const off = idx.length - x.shape.length;
  let flat = 0;
  for (let a = 0; a < x.shape.length; a++) flat += (x.shape[a] === 1 ? 0 : idx[a + off]!) * st[a]!;
  return x.data[flat]!;
}

function build(shape: readonly number[], f: (idx: number[]) => number): Nd {
  const data = Array.from({ length: sizeOf(shape) }, (_, i) => f(unravel(i, shape)));
  return { shape: [...shape], data };
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    return da === 1 ? db : da;
  });
}

function randomNd(rng: Rng, shape: readonly number[], lo = -2, hi = 2): Nd {
  return {
    shape: [...shape],
    data: Array.from({ length: sizeOf(shape) }, () => lo + (hi - lo) * rng.next()),
  };
}

// ---- comparing --------------------------------------------------------------------------------

let dtype: 'float32' | 'float64' = 'float64';

/** The engine tensor of a plain array, in the dtype under test. */
function T(x: Nd): Tensor {
  return tensor(x.data, x.shape, { dtype });
}

/** Rounds plain values the way the tensor stored them (so float32 expectations start equal). */
function stored(x: Nd): Nd {
  return { shape: x.shape, data: dtype === 'float32' ? Array.from(Float32Array.from(x.data)) : x.data };
}

/** Checks of values, deferred until the body that made the tensors has run and they are read. */
interface Check {
  t: Tensor;
  check: (got: TypedArray) => void;
}
let pending: Check[] = [];

/** Checks `t`'s values once they are read back (asynchronously, after the body). */
function expectValues(t: Tensor, check: (got: TypedArray) => void): void {
  pending.push({ t, check });
}

function expectClose(actual: Tensor, expected: Nd, what: string, rtol = tolerance(dtype)): void {
  assert.deepEqual([...actual.shape], expected.shape, `${what}: shape`);
  expectValues(actual, (got) => {
    for (let i = 0; i < expected.data.length; i++) {
      const e = expected.data[i]!;
      const g = got[i]!;
      if (!(Math.abs(g - e) <= rtol * Math.max(Math.abs(e), 1))) {
        assert.fail(`${what}: flat index ${i} of [${expected.shape}]: got ${g}, expected ${e}`);
      }
    }
  });
}

/**
 * Runs `body` on `backend` inside a scope, then reads back every tensor it asked to check (one
 * batch of asynchronous reads, so it works on a backend without synchronous reads), runs the
 * checks and frees the tensors.
 */
async function checked(backend: string, body: () => void): Promise<void> {
  await withBackend(backend, async () => {
    const checks = tidy(() => {
      pending = [];
      body();
      const made = pending;
      pending = [];
      return made;
    });
    try {
      const got = await Promise.all(checks.map((c) => c.t.data()));
      checks.forEach((c, i) => {
        c.check(got[i]!);
      });
    } finally {
      dispose(checks.map((c) => c.t));
    }
  });
}

async function prop<Ts extends [unknown, ...unknown[]]>(
  backend: string,
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  body: (rng: Rng, ...args: Ts) => void,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(seedArb, ...arbs, (seed: number, ...args: Ts) =>
      checked(backend, () => body(new Rng(seed), ...args)),
    ),
    { numRuns: 25 },
  );
}

// ---- plain-JS references ----------------------------------------------------------------------

function refMatmul(a: Nd, b: Nd, ta: boolean, tb: boolean): Nd {
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [m, k] = ta ? [ac, ar] : [ar, ac];
  const n = tb ? br : bc;
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return build([...batch, m, n], (idx) => {
    const bi = idx.slice(0, -2);
    const [i, j] = idx.slice(-2) as [number, number];
    let s = 0;
    for (let p = 0; p < k; p++) {
      s += at(a, [...bi, ...(ta ? [p, i] : [i, p])]) * at(b, [...bi, ...(tb ? [j, p] : [p, j])]);
    }
    return s;
  });
}

function refReduce(
  x: Nd,
  axes: readonly number[] | undefined,
  keepDims: boolean,
  op: 'sum' | 'max' | 'min' | 'mean',
): Nd {
  const rank = x.shape.length;
  const list = axes === undefined ? x.shape.map((_, i) => i) : axes.map((a) => (a < 0 ? a + rank : a));
  const kept = x.shape.map((d, i) => (list.includes(i) ? 1 : d));
  const acc = new Array<number>(sizeOf(kept)).fill(op === 'max' ? -Infinity : op === 'min' ? Infinity : 0);
  const ks = stridesOf(kept);
  x.data.forEach((v, i) => {
    const idx = unravel(i, x.shape);
    let j = 0;
    idx.forEach((c, a) => {
      if (!list.includes(a)) j += c * ks[a]!;
    });
    acc[j] = op === 'max' ? Math.max(acc[j]!, v) : op === 'min' ? Math.min(acc[j]!, v) : acc[j]! + v;
  });
  const count = sizeOf(x.shape) / sizeOf(kept);
  const data = op === 'mean' ? acc.map((v) => v / count) : acc;
  return { shape: keepDims ? kept : x.shape.filter((_, i) => !list.includes(i)), data };
}

/** Applies `f` to every 1-D fibre along `axis` (returns a fibre of the same length). */
function alongAxis(x: Nd, axis: number, f: (fibre: number[]) => number[]): Nd {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const out = { shape: [...x.shape], data: new Array<number>(x.data.length) };
  const st = stridesOf(x.shape);
  x.data.forEach((_, i) => {
    const idx = unravel(i, x.shape);
    if (idx[ax] !== 0) return;
    const offs = Array.from({ length: x.shape[ax]! }, (_, t) => i + t * st[ax]!);
    const res = f(offs.map((o) => x.data[o]!));
    offs.forEach((o, t) => {
      out.data[o] = res[t]!;
    });
  });
  return out;
}

function refSoftmax(fibre: number[]): number[] {
  const m = Math.max(...fibre);
  const e = fibre.map((v) => Math.exp(v - m));
  const s = e.reduce((p, v) => p + v, 0);
  return e.map((v) => v / s);
}

for (const backend of backendsUnderTest()) {
  describe(`forward values vs plain JS (${backend}, ${bestFloat(backend)})`, () => {
    dtype = bestFloat(backend);
    const setDType = () => {
      dtype = bestFloat(backend);
    };

    it('elementwise binary ops with broadcasting', async () => {
      setDType();
      await prop(backend, [broadcastPairArb], (rng, [sa, sb]) => {
        const a = stored(randomNd(rng, sa, 0.5, 2));
        const b = stored(randomNd(rng, sb, -2, 2));
        const out = broadcastShape(sa, sb);
        const ref = (f: (x: number, y: number) => number) => build(out, (i) => f(at(a, i), at(b, i)));
        expectClose(
          add(T(a), T(b)),
          ref((x, y) => x + y),
          'add',
        );
        expectClose(
          sub(T(a), T(b)),
          ref((x, y) => x - y),
          'sub',
        );
        expectClose(
          mul(T(a), T(b)),
          ref((x, y) => x * y),
          'mul',
        );
        expectClose(
          div(T(b), T(a)),
          build(out, (i) => at(b, i) / at(a, i)),
          'div',
        );
        expectClose(
          pow(T(a), T(b)),
          ref((x, y) => x ** y),
          'pow',
        );
        expectClose(maximum(T(a), T(b)), ref(Math.max), 'maximum');
        expectClose(minimum(T(a), T(b)), ref(Math.min), 'minimum');
        const cond = stored(randomNd(rng, sb, 0, 1));
        const mask = { shape: cond.shape, data: cond.data.map((v) => (v < 0.5 ? 0 : 1)) };
        expectClose(
          where(T(mask), T(a), T(b)),
          build(out, (i) => (at(mask, i) !== 0 ? at(a, i) : at(b, i))),
          'where',
        );
      });
    });

    it('matmul with transposes and broadcast batch axes', async () => {
      setDType();
      const arb = fc
        .record({
          batch: shapeArb(0, 3),
          m: dimArb,
          k: dimArb,
          n: dimArb,
          ta: fc.boolean(),
          tb: fc.boolean(),
        })
        .chain((c) => fc.tuple(fc.constant(c), broadcastFrom(c.batch), broadcastFrom(c.batch)));
      await prop(backend, [arb], (rng, [c, ba, bb]) => {
        const a = stored(randomNd(rng, [...ba, ...(c.ta ? [c.k, c.m] : [c.m, c.k])]));
        const b = stored(randomNd(rng, [...bb, ...(c.tb ? [c.n, c.k] : [c.k, c.n])]));
        expectClose(
          matmul(T(a), T(b), { transposeA: c.ta, transposeB: c.tb }),
          refMatmul(a, b, c.ta, c.tb),
          `matmul ta=${c.ta} tb=${c.tb}`,
        );
      });
    });

    it('matmul (2,1,3,4) @ (5,4,2) → (2,5,3,2), hand-checked entry', async () => {
      setDType();
      await checked(backend, () => {
        const a = { shape: [2, 1, 3, 4], data: Array.from({ length: 24 }, (_, i) => i) };
        const b = { shape: [5, 4, 2], data: Array.from({ length: 40 }, (_, i) => (i % 7) - 3) };
        const out = matmul(T(a), T(b));
        assert.deepEqual([...out.shape], [2, 5, 3, 2]);
        expectClose(out, refMatmul(a, b, false, false), 'matmul');
        // out[1, 4, 2, 1] = Σ_p a[1, 0, 2, p] · b[4, p, 1] = Σ_p (20 + p) · ((33 + 2p) % 7 − 3)
        let s = 0;
        for (let p = 0; p < 4; p++) s += (20 + p) * (((33 + 2 * p) % 7) - 3);
        expectValues(out, (got) => assert.equal(got[((1 * 5 + 4) * 3 + 2) * 2 + 1], s));
      });
    });

    it('reductions sum/mean/max/min over axis subsets, keepDims on/off', async () => {
      setDType();
      const arb = shapeArb().chain((s) =>
        fc.tuple(fc.constant(s), fc.option(axesArb(s.length), { nil: undefined }), fc.boolean()),
      );
      await prop(backend, [arb], (rng, [shape, axes, keepDims]) => {
        const x = stored(randomNd(rng, shape));
        expectClose(sum(T(x), axes, keepDims), refReduce(x, axes, keepDims, 'sum'), 'sum');
        expectClose(mean(T(x), axes, keepDims), refReduce(x, axes, keepDims, 'mean'), 'mean');
        expectClose(max(T(x), axes, keepDims), refReduce(x, axes, keepDims, 'max'), 'max');
        expectClose(min(T(x), axes, keepDims), refReduce(x, axes, keepDims, 'min'), 'min');
      });
    });

    it('argMax picks the first maximum', async () => {
      setDType();
      await checked(backend, () => {
        const x = T({ shape: [2, 4], data: [1, 5, 5, 0, -3, -2, -2, -9] });
        expectValues(argMax(x), (got) => assert.deepEqual([...got], [1, 1]));
        expectValues(argMax(x, 0), (got) => assert.deepEqual([...got], [0, 0, 0, 0]));
      });
    });

    it('softmax, logSoftmax and logSumExp along an axis (stable for large logits)', async () => {
      setDType();
      const arb = shapeArb(1, 4).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length), fc.boolean()));
      await prop(backend, [arb], (rng, [shape, axis, large]) => {
        const x = stored(randomNd(rng, shape, large ? 500 : -3, large ? 510 : 3));
        const sm = alongAxis(x, axis, refSoftmax);
        expectClose(softmax(T(x), axis), sm, 'softmax');
        const lsm = alongAxis(x, axis, (f) => {
          const m = Math.max(...f);
          const lse = m + Math.log(f.reduce((p, v) => p + Math.exp(v - m), 0));
          return f.map((v) => v - lse);
        });
        expectClose(logSoftmax(T(x), axis), lsm, 'logSoftmax', tolerance(dtype) * (large ? 1000 : 1));
        const lse = alongAxis(x, axis, (f) => {
          const m = Math.max(...f);
          return f.map(() => m + Math.log(f.reduce((p, v) => p + Math.exp(v - m), 0)));
        });
        const ax = axis < 0 ? axis + shape.length : axis;
        const lseKept = refReduce(lse, [ax], true, 'max');
        expectClose(logSumExp(T(x), axis, true), lseKept, 'logSumExp');
      });
    });

    it('linearScan forward and reverse with broadcast gates (including exact 0 and 1)', async () => {
      setDType();
      const arb = shapeArb(1, 3).chain((out) =>
        fc.tuple(fc.constant(out), broadcastFrom(out), axisArb(out.length), fc.boolean()),
      );
      await prop(backend, [arb], (rng, [shape, aShapeRaw, axis, reverse]) => {
        const aShape = [...Array(shape.length - aShapeRaw.length).fill(1), ...aShapeRaw];
        const a = {
          shape: aShape,
          data: Array.from({ length: sizeOf(aShape) }, () => [0, 1, 0.5, -0.75][rng.int(4)]!),
        };
        const b = stored(randomNd(rng, shape));
        const full = build(shape, (i) => at(a, i));
        const ax = axis < 0 ? axis + shape.length : axis;
        // scan over a and b fibres together: pack them side by side
        const st = stridesOf(shape);
        const expected = { shape: [...shape], data: new Array<number>(b.data.length) };
        b.data.forEach((_, i) => {
          if (unravel(i, shape)[ax] !== 0) return;
          const n = shape[ax]!;
          let h = 0;
          for (let s = 0; s < n; s++) {
            const t = reverse ? n - 1 - s : s;
            const o = i + t * st[ax]!;
            h = full.data[o]! * h + b.data[o]!;
            expected.data[o] = h;
          }
        });
        expectClose(linearScan(T(a), T(b), axis, { reverse }), expected, 'linearScan');
      });
    });

    it('cumsum (exclusive/reverse) and cumprod with exact zeros', async () => {
      setDType();
      const arb = shapeArb(1, 4).chain((s) =>
        fc.tuple(fc.constant(s), axisArb(s.length), fc.boolean(), fc.boolean()),
      );
      await prop(backend, [arb], (rng, [shape, axis, exclusive, reverse]) => {
        const x = {
          shape,
          data: Array.from({ length: sizeOf(shape) }, () => (rng.next() < 0.3 ? 0 : rng.int(7) - 3)),
        };
        const order = (f: number[]) => (reverse ? [...f].reverse() : f);
        const cs = alongAxis(x, axis, (f) => {
          let s = 0;
          const out = order(f).map((v) => {
            const before = s;
            s += v;
            return exclusive ? before : s;
          });
          return order(out);
        });
        expectClose(cumsum(T(x), axis, { exclusive, reverse }), cs, 'cumsum');
        const cp = alongAxis(x, axis, (f) => {
          let p = 1;
          return order(order(f).map((v) => (p *= v)));
        });
        const got = cumprod(T(x), axis, { reverse });
        expectClose(got, cp, 'cumprod');
        // integers and zeros: exact
        expectValues(got, (values) =>
          assert.deepEqual(
            Array.from(values as Float64Array, (v) => v + 0), // +0 folds −0 into 0
            cp.data.map((v) => v + 0),
            'cumprod is exact on integers',
          ),
        );
      });
    });

    it('gather along axis 0 and axis 1 with repeated indices', async () => {
      setDType();
      await checked(backend, () => {
        const x = { shape: [3, 4, 2], data: Array.from({ length: 24 }, (_, i) => i * 0.5) };
        const idx = tensor(new Int32Array([2, 0, 2, 1, 1, 3]), [2, 3]);
        expectClose(
          gather(T(x), tensor(new Int32Array([2, 0, 2, 1, 1, 0]), [2, 3])),
          build([2, 3, 4, 2], ([i, j, r, c]) => at(x, [[2, 0, 2, 1, 1, 0][i! * 3 + j!]!, r!, c!])),
          'gather axis 0',
        );
        expectClose(
          gather(T(x), idx, 1),
          build([3, 2, 3, 2], ([o, i, j, c]) => at(x, [o!, [2, 0, 2, 1, 1, 3][i! * 3 + j!]!, c!])),
          'gather axis 1',
        );
        expectClose(
          gather(T(x), tensor(new Int32Array([1]), [])),
          build([4, 2], ([r, c]) => at(x, [1, r!, c!])),
          'gather with a scalar index',
        );
      });
    });

    it('pad, slice and concat', async () => {
      setDType();
      const arb = shapeArb(1, 4).chain((s) =>
        fc.tuple(
          fc.constant(s),
          fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { minLength: s.length, maxLength: s.length }),
          axisArb(s.length),
        ),
      );
      await prop(backend, [arb], (rng, [shape, padding, axis]) => {
        const x = stored(randomNd(rng, shape));
        const padded = pad(T(x), padding, 7);
        const pshape = shape.map((d, i) => d + padding[i]![0] + padding[i]![1]);
        const expectedPad = build(pshape, (idx) => {
          const src = idx.map((c, i) => c - padding[i]![0]);
          return src.every((c, i) => c >= 0 && c < shape[i]!) ? at(x, src) : 7;
        });
        expectClose(padded, expectedPad, 'pad');
        expectClose(
          slice(
            padded,
            padding.map(([b]) => b),
            shape,
          ),
          x,
          'slice undoes pad',
        );
        const begin = shape.map((d) => rng.int(d));
        const size = shape.map((d, i) => 1 + rng.int(d - begin[i]!));
        expectClose(
          slice(T(x), begin, size),
          build(size, (idx) =>
            at(
              x,
              idx.map((c, i) => c + begin[i]!),
            ),
          ),
          'slice',
        );
        const ax = axis < 0 ? axis + shape.length : axis;
        const yShape = shape.map((d, i) => (i === ax ? 2 : d));
        const y = stored(randomNd(rng, yShape));
        const cshape = shape.map((d, i) => (i === ax ? d + 2 : d));
        expectClose(
          concat([T(x), T(y)], axis),
          build(cshape, (idx) =>
            idx[ax]! < shape[ax]!
              ? at(x, idx)
              : at(
                  y,
                  idx.map((c, i) => (i === ax ? c - shape[ax]! : c)),
                ),
          ),
          'concat',
        );
      });
    });

    it('transpose with a random permutation and broadcastTo', async () => {
      setDType();
      const arb = shapeArb().chain((s) =>
        fc.tuple(
          fc.constant(s),
          fc.shuffledSubarray(
            s.map((_, i) => i),
            { minLength: s.length, maxLength: s.length },
          ),
          broadcastFrom(s),
        ),
      );
      await prop(backend, [arb], (rng, [shape, perm, from]) => {
        const x = stored(randomNd(rng, shape));
        const outShape = perm.map((p) => shape[p]!);
        expectClose(
          transpose(T(x), perm),
          build(outShape, (idx) => {
            const src = new Array<number>(shape.length);
            perm.forEach((p, i) => {
              src[p] = idx[i]!;
            });
            return at(x, src);
          }),
          'transpose',
        );
        const small = stored(randomNd(rng, from));
        expectClose(
          broadcastTo(T(small), shape),
          build(shape, (idx) => at(small, idx)),
          'broadcastTo',
        );
      });
    });

    it('crossEntropy (mean, sum, none; ignoreIndex), rmsNorm and l2Normalize', async () => {
      setDType();
      await checked(backend, () => {
        const rng = new Rng(3);
        const logits = stored(randomNd(rng, [2, 3, 5], -3, 3));
        const t = [4, 0, -1, 2, -1, 1];
        const targets = tensor(new Int32Array(t), [2, 3]);
        const losses = t.map((c, p) => {
          if (c === -1) return 0;
          const row = logits.data.slice(p * 5, p * 5 + 5);
          const m = Math.max(...row);
          return m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[c]!;
        });
        const total = losses.reduce((s, v) => s + v, 0);
        const opts = { ignoreIndex: -1 };
        expectClose(crossEntropy(T(logits), targets, opts), { shape: [], data: [total / 4] }, 'ce mean');
        expectClose(
          crossEntropy(T(logits), targets, { ...opts, reduction: 'sum' }),
          { shape: [], data: [total] },
          'sum',
        );
        expectClose(
          crossEntropy(T(logits), targets, { ...opts, reduction: 'none' }),
          { shape: [2, 3], data: losses },
          'none',
        );

        const x = stored(randomNd(rng, [3, 4]));
        const g = stored(randomNd(rng, [4]));
        const rms = build([3, 4], ([r, c]) => {
          const row = x.data.slice(r! * 4, r! * 4 + 4);
          const ms = row.reduce((s, v) => s + v * v, 0) / 4;
          return (row[c!]! / Math.sqrt(ms + 1e-6)) * g.data[c!]!;
        });
        expectClose(rmsNorm(T(x), T(g)), rms, 'rmsNorm');
        const l2 = build([3, 4], ([r, c]) => {
          let s = 0;
          for (let i = 0; i < 3; i++) s += x.data[i * 4 + c!]! ** 2;
          return x.data[r! * 4 + c!]! / Math.sqrt(s + 1e-6);
        });
        expectClose(l2Normalize(T(x), 0), l2, 'l2Normalize axis 0');
      });
    });

    if (bestFloat(backend) === 'float64') {
      it('gelu known values and erf accuracy (through gelu) to ~1e-14 relative', async () => {
        dtype = 'float64';
        await checked(backend, () => {
          // x·Φ(x), reference values from mpmath at 40 digits
          const cases: [number, number][] = [
            [1, 0.8413447460685429],
            [-0.5, -0.15426876936299344],
            [0.5, 0.34573123063700656],
            [2, 1.9544997361036416],
            [-2, -0.04550026389635842],
            [4, 3.9998733150326675],
            [-4, -0.0001266849673324797],
            [-3.5, -0.0008142017766243376],
            [-3, -0.0040496940948902835],
            [3.5, 3.4991857982233756],
            [-0.1, -0.0460172162722971],
            [0.1, 0.053982783727702904],
          ];
          expectValues(gelu(tensor(new Float64Array(cases.map(([x]) => x)))), (got) => {
            cases.forEach(([x, e], i) => {
              const rel = Math.abs(got[i]! - e) / Math.abs(e);
              assert.ok(
                rel < 2e-14,
                `gelu(${x}) = ${got[i]}, expected ${e} (rel. error ${rel.toExponential(2)})`,
              );
            });
            assert.equal(got[0], 0.8413447460685429);
            assert.equal(got[1], -0.15426876936299344);
          });
        });
      });
    }
  });
}
