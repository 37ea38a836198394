/**
 * Every differentiable op's backward rule against central finite differences in float64, as
 * property tests over random shapes (ranks 0–4, dimensions 1–4, broadcasting, size-1 axes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import {
  type ActivationFn,
  abs,
  activation,
  add,
  broadcastTo,
  cast,
  clamp,
  concat,
  crossEntropy,
  cumprod,
  cumsum,
  derivative,
  div,
  exp,
  expandDims,
  gather,
  gelu,
  grad,
  l2Normalize,
  linearScan,
  log,
  log1p,
  logSoftmax,
  logSumExp,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  neg,
  pad,
  pow,
  reciprocal,
  reshape,
  rmsNorm,
  rsqrt,
  sigmoid,
  silu,
  slice,
  softmax,
  softplus,
  split,
  sqrt,
  square,
  squeeze,
  stack,
  sub,
  sum,
  type Tensor,
  tanh,
  tensor,
  tidy,
  transpose,
  where,
  withBackend,
} from '../../src/index.js';
import { checkGradients } from '../helpers/finite-diff.js';
import {
  awayFromZero,
  axesArb,
  axisArb,
  broadcastFrom,
  broadcastPairArb,
  broadcastTripleArb,
  dimArb,
  distinctValues,
  fill,
  float64Backends,
  gradCheck,
  gridValues,
  Rng,
  RUNS,
  seedArb,
  shapeArb,
  sizeOf,
  uniform,
} from './util.js';

const ACTIVATIONS: ActivationFn[] = ['sigmoid', 'tanh', 'silu', 'gelu', 'softplus'];

type Maker = (rng: Rng, shape: number[]) => Tensor;
const anyValue: Maker = (rng, shape) => uniform(rng, shape, -2, 2);
const positive: Maker = (rng, shape) => uniform(rng, shape, 0.5, 3);
const nonZero: Maker = (rng, shape) => awayFromZero(rng, shape, 0.5, 2);

const UNARY: [string, (x: Tensor) => Tensor, Maker][] = [
  ['neg', neg, anyValue],
  ['exp', exp, anyValue],
  ['log', log, positive],
  ['log1p', log1p, (rng, shape) => uniform(rng, shape, -0.6, 3)],
  ['sqrt', sqrt, positive],
  ['rsqrt', rsqrt, positive],
  ['abs', abs, (rng, shape) => awayFromZero(rng, shape, 0.1, 2)],
  ['reciprocal', reciprocal, nonZero],
  ['square', square, anyValue],
  ['sigmoid', sigmoid, (rng, shape) => uniform(rng, shape, -4, 4)],
  ['tanh', tanh, (rng, shape) => uniform(rng, shape, -3, 3)],
  ['silu', silu, (rng, shape) => uniform(rng, shape, -4, 4)],
  ['gelu', gelu, (rng, shape) => uniform(rng, shape, -4, 4)],
  ['softplus', softplus, (rng, shape) => uniform(rng, shape, -4, 4)],
];

const BINARY: [string, (a: Tensor, b: Tensor) => Tensor, Maker, Maker][] = [
  ['add', add, anyValue, anyValue],
  ['sub', sub, anyValue, anyValue],
  ['mul', mul, anyValue, anyValue],
  ['div', div, anyValue, nonZero],
  ['pow', pow, positive, anyValue],
  ['maximum', maximum, (r, s) => gridValues(r, s, 0), (r, s) => gridValues(r, s, 1)],
  ['minimum', minimum, (r, s) => gridValues(r, s, 0), (r, s) => gridValues(r, s, 1)],
];

/** Runs a property once per float64 backend, each run inside its own `tidy`. */
function prop<Ts extends [unknown, ...unknown[]]>(
  backend: string,
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  body: (rng: Rng, ...args: Ts) => void,
  runs: { numRuns: number } = RUNS,
): void {
  fc.assert(
    fc.property(seedArb, ...arbs, (seed: number, ...args: Ts) =>
      withBackend(backend, () => tidy(() => body(new Rng(seed), ...args))),
    ),
    runs,
  );
}

for (const backend of float64Backends()) {
  describe(`op gradients vs finite differences (${backend}, float64)`, () => {
    describe('unary', () => {
      for (const [name, op, make] of UNARY) {
        it(name, () => {
          prop(backend, [shapeArb()], (rng, shape) => gradCheck(rng, ([x]) => op(x!), [make(rng, shape)]));
        });
      }
      it('with number operands: add(x, 2), sub(1, x), pow(x, 3), pow(2, x), div(1, x)', () => {
        prop(backend, [shapeArb()], (rng, shape) => {
          gradCheck(rng, ([x]) => add(x!, 2), [anyValue(rng, shape)]);
          gradCheck(rng, ([x]) => sub(1, x!), [anyValue(rng, shape)]);
          gradCheck(rng, ([x]) => pow(x!, 3), [anyValue(rng, shape)]);
          gradCheck(rng, ([x]) => pow(2, x!), [anyValue(rng, shape)]);
          gradCheck(rng, ([x]) => div(1, x!), [nonZero(rng, shape)]);
        });
      });
    });

    describe('activation(fn, x, order) and derivative()', () => {
      for (const fn of ACTIVATIONS) {
        it(`activation('${fn}', x, 0…3)`, () => {
          prop(backend, [shapeArb()], (rng, shape) => {
            for (let order = 0; order <= 3; order++) {
              gradCheck(rng, ([x]) => activation(fn, x!, order), [uniform(rng, shape, -3, 3)]);
            }
          });
        });
      }
      for (const fn of ['exp', 'log', 'sqrt', 'rsqrt'] as const) {
        it(`derivative('${fn}', x, 1…3)`, () => {
          prop(backend, [shapeArb()], (rng, shape) => {
            for (const order of [1, 2, 3] as const) {
              gradCheck(rng, ([x]) => derivative(fn, x!, order), [positive(rng, shape)]);
            }
          });
        });
      }
    });

    describe('binary with broadcasting both ways', () => {
      for (const [name, op, makeA, makeB] of BINARY) {
        it(name, () => {
          prop(backend, [broadcastPairArb], (rng, [sa, sb]) =>
            gradCheck(rng, ([a, b]) => op(a!, b!), [makeA(rng, sa), makeB(rng, sb)]),
          );
        });
      }
      it('the same tensor on both sides: mul(x, x), div(x, x), pow(x, x)', () => {
        prop(backend, [shapeArb()], (rng, shape) => {
          gradCheck(rng, ([x]) => mul(x!, x!), [anyValue(rng, shape)]);
          gradCheck(rng, ([x]) => div(x!, x!), [nonZero(rng, shape)], { atol: 1e-8 });
          gradCheck(rng, ([x]) => pow(x!, x!), [positive(rng, shape)]);
        });
      });
      it('where (cond, a, b all broadcast)', () => {
        prop(backend, [broadcastTripleArb], (rng, [sc, sa, sb]) => {
          const cond = fill(rng, sc, (r) => (r.next() < 0.5 ? 0 : 1));
          gradCheck(rng, ([a, b]) => where(cond, a!, b!), [anyValue(rng, sa), anyValue(rng, sb)]);
          gradCheck(rng, ([a]) => where(cond, a!, 0.5), [anyValue(rng, sa)]);
        });
      });
      it('clamp (away from the bounds)', () => {
        prop(backend, [shapeArb()], (rng, shape) => {
          // values ≡ 0.10…0.12 (mod 0.2); the bounds ≡ 0.15 (mod 0.2)
          const x = fill(rng, shape, (r) => 0.2 * (r.int(21) - 10) + 0.1 + 0.02 * r.next());
          gradCheck(rng, ([t]) => clamp(t!, -0.45, 0.75), [x]);
        });
      });
      it('cast float64 → float32 → float64 (loose: float32 rounding)', () => {
        prop(backend, [shapeArb()], (rng, shape) =>
          gradCheck(rng, ([x]) => cast(cast(x!, 'float32'), 'float64'), [anyValue(rng, shape)], {
            eps: 1e-2,
            rtol: 1e-4,
          }),
        );
      });
    });

    describe('reductions', () => {
      const reductionArb = shapeArb().chain((shape) =>
        fc.tuple(fc.constant(shape), fc.option(axesArb(shape.length), { nil: undefined }), fc.boolean()),
      );
      for (const [name, op] of [
        ['sum', sum],
        ['mean', mean],
        ['max', max],
        ['min', min],
      ] as const) {
        it(`${name} over random axis subsets, keepDims on/off`, () => {
          prop(backend, [reductionArb], (rng, [shape, axes, keepDims]) =>
            gradCheck(rng, ([x]) => op(x!, axes, keepDims), [distinctValues(rng, shape)]),
          );
        });
      }
      it('max/min split the gradient equally among ties (checked against hand values)', () => {
        withBackend(backend, () =>
          tidy(() => {
            // central differences at a two-way tie also give ½ to each side
            const x = tensor(new Float64Array([1, 3, 3, 2, -1, -1]), [2, 3]);
            const w = tensor(new Float64Array([2, 6]), [2]);
            const g = checkGradientsValues(([t]) => sum(mul(max(t!, 1), w)), [x]);
            assertArray(g[0]!, [0, 1, 1, 6, 0, 0]);
            const gm = checkGradientsValues(([t]) => sum(mul(min(t!, 1), w)), [x]);
            assertArray(gm[0]!, [2, 0, 0, 0, 3, 3]);
          }),
        );
      });
      it('logSumExp over a random axis, keepDims on/off', () => {
        const arb = shapeArb(1, 4).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length), fc.boolean()));
        prop(backend, [arb], (rng, [shape, axis, keepDims]) =>
          gradCheck(rng, ([x]) => logSumExp(x!, axis, keepDims), [uniform(rng, shape, -3, 3)]),
        );
      });
    });

    describe('matmul', () => {
      const matmulArb = fc.record({
        batch: shapeArb(0, 2),
        m: dimArb,
        k: dimArb,
        n: dimArb,
        ta: fc.boolean(),
        tb: fc.boolean(),
      });
      it('all four transpose combinations with broadcast batch axes', () => {
        prop(
          backend,
          [matmulArb.chain((c) => fc.tuple(fc.constant(c), broadcastFrom(c.batch), broadcastFrom(c.batch)))],
          (rng, [c, ba, bb]) => {
            // both operands need rank ≥ 2: the batch shapes may be empty
            const aShape = [...ba, ...(c.ta ? [c.k, c.m] : [c.m, c.k])];
            const bShape = [...bb, ...(c.tb ? [c.n, c.k] : [c.k, c.n])];
            gradCheck(rng, ([a, b]) => matmul(a!, b!, { transposeA: c.ta, transposeB: c.tb }), [
              anyValue(rng, aShape),
              anyValue(rng, bShape),
            ]);
          },
        );
      });
      it('(2,1,3,4) @ (5,4,2) with every transpose combination', () => {
        withBackend(backend, () =>
          tidy(() => {
            const rng = new Rng(7);
            for (const ta of [false, true]) {
              for (const tb of [false, true]) {
                const a = anyValue(rng, ta ? [2, 1, 4, 3] : [2, 1, 3, 4]);
                const b = anyValue(rng, tb ? [5, 2, 4] : [5, 4, 2]);
                gradCheck(rng, ([x, y]) => matmul(x!, y!, { transposeA: ta, transposeB: tb }), [a, b], {
                  maxEntries: 1000,
                });
              }
            }
          }),
        );
      });
      it('(2,3,4) @ a shared (4,5) matrix (one product over all rows): values per batch, gradients', () => {
        withBackend(backend, () =>
          tidy(() => {
            const rng = new Rng(8);
            for (const tb of [false, true]) {
              const a = anyValue(rng, [2, 3, 4]);
              const b = anyValue(rng, tb ? [5, 4] : [4, 5]);
              const out = matmul(a, b, { transposeB: tb });
              for (let i = 0; i < 2; i++) {
                const row = matmul(reshape(slice(a, [i, 0, 0], [1, -1, -1]), [3, 4]), b, { transposeB: tb });
                assert.deepEqual(
                  [...reshape(slice(out, [i, 0, 0], [1, -1, -1]), [3, 5]).dataSync()],
                  [...row.dataSync()],
                );
              }
              gradCheck(rng, ([x, y]) => matmul(x!, y!, { transposeB: tb }), [a, b], { maxEntries: 1000 });
            }
          }),
        );
      });
    });

    describe('shape ops', () => {
      it('reshape (shuffled dims, inserted 1s, an inferred −1)', () => {
        const arb = shapeArb().chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.shuffledSubarray(s, { minLength: s.length, maxLength: s.length }),
            fc.array(fc.nat(4), { maxLength: 2 }),
            fc.boolean(),
          ),
        );
        prop(backend, [arb], (rng, [shape, shuffled, ones, infer]) => {
          const target = [...shuffled];
          for (const at of ones) target.splice(Math.min(at, target.length), 0, 1);
          if (infer && target.length > 0) target[rng.int(target.length)] = -1;
          gradCheck(rng, ([x]) => reshape(x!, target), [anyValue(rng, shape)]);
        });
      });
      it('transpose (random permutations, and the default last-two swap)', () => {
        const arb = shapeArb().chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.shuffledSubarray(
              s.map((_, i) => i),
              { minLength: s.length, maxLength: s.length },
            ),
          ),
        );
        prop(backend, [arb], (rng, [shape, perm]) => {
          gradCheck(rng, ([x]) => transpose(x!, perm), [anyValue(rng, shape)]);
          if (shape.length >= 2) gradCheck(rng, ([x]) => transpose(x!), [anyValue(rng, shape)]);
        });
      });
      it('broadcastTo', () => {
        const arb = shapeArb().chain((out) => fc.tuple(fc.constant(out), broadcastFrom(out)));
        prop(backend, [arb], (rng, [out, from]) =>
          gradCheck(rng, ([x]) => broadcastTo(x!, out), [anyValue(rng, from)]),
        );
      });
      it('slice', () => {
        const arb = shapeArb().chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.tuple(...s.map((d) => fc.integer({ min: 0, max: d - 1 }))),
            fc.array(fc.nat(), { minLength: s.length, maxLength: s.length }),
            fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }),
          ),
        );
        prop(backend, [arb], (rng, [shape, begin, sizeSeeds, toEnd]) => {
          const size = shape.map((d, i) => (toEnd[i] ? -1 : 1 + (sizeSeeds[i]! % (d - begin[i]!))));
          gradCheck(rng, ([x]) => slice(x!, begin, size), [anyValue(rng, shape)]);
        });
      });
      it('pad', () => {
        const arb = shapeArb().chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { minLength: s.length, maxLength: s.length }),
            fc.double({ min: -2, max: 2, noNaN: true }),
          ),
        );
        prop(backend, [arb], (rng, [shape, padding, value]) =>
          gradCheck(rng, ([x]) => pad(x!, padding, value), [anyValue(rng, shape)]),
        );
      });
      it('concat', () => {
        const arb = shapeArb(1, 4).chain((s) =>
          fc.tuple(fc.constant(s), axisArb(s.length), fc.array(dimArb, { minLength: 1, maxLength: 3 })),
        );
        prop(backend, [arb], (rng, [shape, axis, sizes]) => {
          const a = axis < 0 ? axis + shape.length : axis;
          const parts = sizes.map((n) =>
            anyValue(
              rng,
              shape.map((d, i) => (i === a ? n : d)),
            ),
          );
          gradCheck(rng, (xs) => concat(xs, axis), parts);
        });
      });
      it('stack', () => {
        const arb = shapeArb(0, 3).chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.integer({ min: -(s.length + 1), max: s.length }),
            fc.integer({ min: 1, max: 3 }),
          ),
        );
        prop(backend, [arb], (rng, [shape, axis, count]) => {
          const parts = Array.from({ length: count }, () => anyValue(rng, shape));
          gradCheck(rng, (xs) => stack(xs, axis), parts);
        });
      });
      it('split (every piece weighted)', () => {
        const arb = shapeArb(1, 4).chain((s) =>
          fc.tuple(fc.constant(s), axisArb(s.length), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 })),
        );
        prop(backend, [arb], (rng, [shape, axis, cuts]) => {
          const a = axis < 0 ? axis + shape.length : axis;
          const sizes: number[] = [];
          let run = 1;
          for (let i = 1; i < shape[a]!; i++) {
            if (cuts[i - 1]) {
              sizes.push(run);
              run = 1;
            } else run++;
          }
          sizes.push(run);
          const weights = sizes.map((n) =>
            uniform(
              rng,
              shape.map((d, i) => (i === a ? n : d)),
              -1,
              1,
            ),
          );
          const x = anyValue(rng, shape);
          checkGradients(
            ([t]) =>
              split(t!, sizes, axis)
                .map((piece, i) => sum(mul(piece, weights[i]!)))
                .reduce((acc, v) => add(acc, v)),
            [x],
            { maxEntries: 24 },
          );
        });
      });
      it('expandDims and squeeze', () => {
        const arb = shapeArb(0, 3).chain((s) =>
          fc.tuple(fc.constant(s), fc.integer({ min: -(s.length + 1), max: s.length }), fc.boolean()),
        );
        prop(backend, [arb], (rng, [shape, axis, all]) => {
          gradCheck(rng, ([x]) => expandDims(x!, axis), [anyValue(rng, shape)]);
          const withOne = [...shape];
          withOne.splice(axis < 0 ? axis + shape.length + 1 : axis, 0, 1);
          const squeezeAxes = all ? undefined : [axis];
          gradCheck(rng, ([x]) => squeeze(x!, squeezeAxes), [anyValue(rng, withOne)]);
        });
      });
    });

    describe('gather', () => {
      it('embedding-style (axis 0) with repeated indices', () => {
        const arb = fc.tuple(fc.integer({ min: 1, max: 5 }), dimArb, shapeArb(0, 2));
        prop(backend, [arb], (rng, [vocab, d, indexShape]) => {
          const idx = randomIndices(rng, indexShape, vocab);
          gradCheck(rng, ([x]) => gather(x!, idx), [anyValue(rng, [vocab, d])]);
        });
      });
      it('axis 1 (and −1) with repeated indices', () => {
        const arb = fc.tuple(dimArb, fc.integer({ min: 1, max: 5 }), dimArb, shapeArb(1, 2));
        prop(backend, [arb], (rng, [outer, n, inner, indexShape]) => {
          const idx = randomIndices(rng, indexShape, n);
          gradCheck(rng, ([x]) => gather(x!, idx, 1), [anyValue(rng, [outer, n, inner])]);
          gradCheck(rng, ([x]) => gather(x!, idx, -1), [anyValue(rng, [outer, n])]);
        });
      });
    });

    describe('scans', () => {
      const scanArb = shapeArb(1, 3).chain((out) =>
        fc.tuple(fc.constant(out), broadcastFrom(out), broadcastFrom(out), axisArb(out.length), fc.boolean()),
      );
      it('linearScan forward and reverse, with gates of exactly 0 and 1, broadcast a and b', () => {
        prop(backend, [scanArb], (rng, [out, sa, sb, axis, reverse]) => {
          // keep the rank of the broadcast result so that `axis` stays valid
          const aShape = [...Array(out.length - sa.length).fill(1), ...sa];
          const a = fill(rng, aShape, (r) => {
            const u = r.next();
            return u < 0.25 ? 0 : u < 0.5 ? 1 : -1.5 + 3 * r.next();
          });
          gradCheck(rng, ([ta, tb]) => linearScan(ta!, tb!, axis, { reverse }), [a, anyValue(rng, sb)]);
        });
      });
      it('cumsum (inclusive/exclusive, forward/reverse)', () => {
        const arb = shapeArb(1, 4).chain((s) =>
          fc.tuple(fc.constant(s), axisArb(s.length), fc.boolean(), fc.boolean()),
        );
        prop(backend, [arb], (rng, [shape, axis, exclusive, reverse]) =>
          gradCheck(rng, ([x]) => cumsum(x!, axis, { exclusive, reverse }), [anyValue(rng, shape)]),
        );
      });
      it('cumprod with exact zeros (forward/reverse)', () => {
        const arb = shapeArb(1, 4).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length), fc.boolean()));
        prop(backend, [arb], (rng, [shape, axis, reverse]) => {
          const x = fill(rng, shape, (r) => (r.next() < 0.3 ? 0 : -1.5 + 3 * r.next()));
          gradCheck(rng, ([t]) => cumprod(t!, axis, { reverse }), [x]);
        });
      });
      it('cumprod gradient at a single zero is the product of the others (hand value)', () => {
        withBackend(backend, () =>
          tidy(() => {
            const x = tensor(new Float64Array([2, 0, 3, 5]), [4]);
            const [g] = checkGradientsValues(([t]) => sum(cumprod(t!, 0)), [x]);
            // Σ_t Π_{s≤t} x_s = 2 + 0 + 0 + 0; ∂/∂x1 = 2 + 2·3 + 2·3·5, ∂/∂x0 = 1, others 0
            assertArray(g!, [1, 38, 0, 0]);
          }),
        );
      });
    });

    describe('nn ops', () => {
      const axisShapeArb = shapeArb(1, 4).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length)));
      it('softmax', () => {
        prop(backend, [axisShapeArb], (rng, [shape, axis]) =>
          gradCheck(rng, ([x]) => softmax(x!, axis), [uniform(rng, shape, -3, 3)]),
        );
      });
      it('logSoftmax', () => {
        prop(backend, [axisShapeArb], (rng, [shape, axis]) =>
          gradCheck(rng, ([x]) => logSoftmax(x!, axis), [uniform(rng, shape, -3, 3)]),
        );
      });
      it('crossEntropy with ignoreIndex and every reduction', () => {
        const arb = fc.tuple(
          shapeArb(0, 2),
          fc.integer({ min: 2, max: 5 }),
          fc.constantFrom('mean' as const, 'sum' as const, 'none' as const),
          fc.boolean(),
        );
        prop(backend, [arb], (rng, [lead, classes, reduction, ignore]) => {
          const t = new Int32Array(sizeOf(lead));
          for (let i = 0; i < t.length; i++) t[i] = ignore && rng.next() < 0.3 ? -100 : rng.int(classes);
          const targets = tensor(t, lead);
          const options = ignore ? { ignoreIndex: -100, reduction } : { reduction };
          gradCheck(rng, ([x]) => crossEntropy(x!, targets, options), [
            uniform(rng, [...lead, classes], -3, 3),
          ]);
        });
      });
      it('rmsNorm with and without a scale', () => {
        prop(backend, [shapeArb(1, 4)], (rng, shape) => {
          const d = shape[shape.length - 1]!;
          gradCheck(rng, ([x, s]) => rmsNorm(x!, s!), [anyValue(rng, shape), anyValue(rng, [d])]);
          gradCheck(rng, ([x]) => rmsNorm(x!, null), [anyValue(rng, shape)]);
        });
      });
      it('l2Normalize over a random axis', () => {
        prop(backend, [axisShapeArb], (rng, [shape, axis]) =>
          gradCheck(rng, ([x]) => l2Normalize(x!, axis), [anyValue(rng, shape)]),
        );
      });
    });
  });
}

/** Random int32 indices in [0, n), with a repeat whenever there are at least two. */
function randomIndices(rng: Rng, shape: readonly number[], n: number): Tensor {
  const data = new Int32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.int(n);
  if (data.length >= 2) data[data.length - 1] = data[0]!;
  return tensor(data, shape);
}

/** The tape gradient (checked against finite differences first) as plain arrays. */
function checkGradientsValues(f: (xs: Tensor[]) => Tensor, inputs: Tensor[]): number[][] {
  checkGradients(f, inputs);
  return tidy(() => {
    const out: number[][] = [];
    const vg = gradOf(f, inputs);
    for (const g of vg) out.push(Array.from(g.dataSync()));
    return out;
  });
}

function gradOf(f: (xs: Tensor[]) => Tensor, inputs: Tensor[]): Tensor[] {
  return grad((p: Tensor[]) => f(p))(inputs);
}

function assertArray(actual: readonly number[], expected: readonly number[]): void {
  const ok = actual.length === expected.length && actual.every((v, i) => Math.abs(v - expected[i]!) < 1e-12);
  if (!ok) throw new Error(`expected [${expected}], got [${actual}]`);
}
