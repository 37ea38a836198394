/**
 * The wasm backend's elementwise / reduction / data-movement kernels (src/backends/wasm/elementwise.ts
 * and assembly/elementwise.ts) against the float64 reference backend: random shapes with broadcasting
 * and size-1 axes, special values (NaN, ±inf, large |x|), and the shape collapsing itself. Inputs are
 * float32 values, so both backends see the same numbers; results are compared after rounding the
 * reference's to float32.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { collapseAxes } from '../../src/backends/wasm/elementwise.js';
import { broadcastShapes } from '../../src/engine/shape.js';
import {
  type ActivationFn,
  abs,
  activation,
  add,
  argMax,
  broadcastTo,
  cast,
  concat,
  div,
  equal,
  exp,
  full,
  gather,
  greater,
  greaterEqual,
  less,
  lessEqual,
  linearScan,
  log,
  log1p,
  max,
  maximum,
  min,
  minimum,
  mul,
  neg,
  notEqual,
  pad,
  pow,
  reciprocal,
  referenceBackend,
  rsqrt,
  sign,
  slice,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
  tensor,
  tidy,
  transpose,
  wasmBackend,
  where,
} from '../../src/index.js';

const skip = wasmBackend ? false : 'the wasm backend is unavailable in this runtime';
const RUNS = { numRuns: 30 };

// ---- inputs -------------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** float32 values: uniform in [−3, 3), with some small integers (ties, exact powers) mixed in. */
function values(n: number, seed: number, integers = 0.25): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.fround(r() < integers ? Math.floor(r() * 7) - 3 : 6 * r() - 3));
}

const size = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

/** The same float32 values on the wasm backend (float32) and the reference backend (float64). */
function pair(data: readonly number[], shape: readonly number[]): [Tensor, Tensor] {
  return [
    tensor(Float32Array.from(data), shape, { backend: 'wasm' }),
    tensor(Float64Array.from(data), shape, { backend: 'reference', dtype: 'float64' }),
  ];
}

/** Asserts wasm ≈ reference rounded to float32: NaN where NaN, equal infinities, else within tolerance. */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol = 4e-7,
  atol = 0,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = Math.fround(expected[i]!);
    if (Number.isNaN(e)) {
      if (!Number.isNaN(a)) assert.fail(`${what}[${i}]: ${a}, want NaN`);
    } else if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) assert.fail(`${what}[${i}]: ${a}, want ${e}`);
    } else if (Math.abs(a - e) > atol + rtol * Math.abs(e)) {
      assert.fail(`${what}[${i}]: ${a}, want ${e} (reference ${expected[i]})`);
    }
  }
}

/** Runs `f` on both backends' tensors and compares. */
function compare(
  what: string,
  inputs: readonly (readonly [readonly number[], readonly number[]])[],
  f: (...xs: Tensor[]) => Tensor,
  rtol?: number,
  atol?: number,
): void {
  tidy(() => {
    const pairs = inputs.map(([data, shape]) => pair(data, shape));
    const w = f(...pairs.map((p) => p[0]));
    const r = f(...pairs.map((p) => p[1]));
    assert.equal(w.backend.name, 'wasm');
    assert.deepEqual(w.shape, r.shape, `${what}: shape`);
    assertClose(w.dataSync(), r.dataSync(), what, rtol, atol);
  });
}

// ---- shapes -------------------------------------------------------------------------------------

const dim = fc.oneof(
  { arbitrary: fc.constant(1), weight: 2 },
  { arbitrary: fc.integer({ min: 2, max: 6 }), weight: 3 },
  { arbitrary: fc.integer({ min: 7, max: 37 }), weight: 1 },
);
const shapeArb = (minRank: number, maxRank: number, maxSize = 3000) =>
  fc.array(dim, { minLength: minRank, maxLength: maxRank }).filter((s) => size(s) <= maxSize);

/** `count` shapes that broadcast together: each drops some leading axes of `out` and sets some to 1. */
const broadcastArb = (count: number, maxRank = 5) =>
  shapeArb(0, maxRank).chain((out) =>
    fc
      .array(
        fc.record({
          drop: fc.integer({ min: 0, max: out.length }),
          ones: fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
        }),
        { minLength: count, maxLength: count },
      )
      .map((ops) => ops.map(({ drop, ones }) => out.map((d, i) => (ones[i] ? 1 : d)).slice(drop))),
  );

// ---- tests --------------------------------------------------------------------------------------

describe('wasm elementwise: shape collapsing', () => {
  it('merges axes contiguous for every operand and drops size-1 axes', () => {
    // (4, 16, 256) + (4, 16, 1): one row axis of 64 and the inner 256.
    assert.deepEqual(
      collapseAxes(
        [4, 16, 256],
        [
          [4096, 256, 1],
          [16, 1, 0],
        ],
        4,
      ),
      [1, 1, 64, 256, 0, 0, 256, 1, 0, 0, 1, 0],
    );
    // Same shapes: one axis.
    assert.deepEqual(collapseAxes([2, 1, 3], [[3, 3, 1]], 2), [1, 6, 0, 1]);
    // Scalars: all ones.
    assert.deepEqual(collapseAxes([], [[], []], 2), [1, 1, 0, 0, 0, 0]);
    // Too many axes left.
    assert.equal(
      collapseAxes(
        [2, 2, 2],
        [
          [4, 2, 1],
          [0, 1, 0],
        ],
        2,
      ),
      null,
    );
  });

  it('visits the same elements as the uncollapsed strides', () => {
    fc.assert(
      fc.property(broadcastArb(2, 6), ([a, b]) => {
        const out = broadcastShapes(a!, b!);
        const strides = [a!, b!].map((s) => {
          const st: number[] = [];
          let acc = 1;
          for (let i = s.length - 1; i >= 0; i--) {
            st[i] = s[i] === 1 ? 0 : acc;
            acc *= s[i]!;
          }
          return [...new Array<number>(out.length - s.length).fill(0), ...st];
        });
        const flat = collapseAxes(out, strides, 6)!;
        const offsets = (dims: readonly number[], st: readonly (readonly number[])[]) => {
          const list: number[][] = [];
          const n = size(dims);
          for (let i = 0; i < n; i++) {
            let rest = i;
            const o = st.map(() => 0);
            for (let ax = dims.length - 1; ax >= 0; ax--) {
              const j = rest % dims[ax]!;
              rest = (rest - j) / dims[ax]!;
              st.forEach((s, k) => {
                o[k]! += j * s[ax]!;
              });
            }
            list.push(o);
          }
          return list;
        };
        assert.deepEqual(
          offsets(flat.slice(0, 6), [flat.slice(6, 12), flat.slice(12, 18)]),
          offsets(out, strides),
        );
      }),
      RUNS,
    );
  });
});

const BINARY: [string, (a: Tensor, b: Tensor) => Tensor][] = [
  ['add', add],
  ['sub', sub],
  ['mul', mul],
  ['div', div],
  ['pow', pow],
  ['maximum', maximum],
  ['minimum', minimum],
  ['greater', greater],
  ['greaterEqual', greaterEqual],
  ['less', less],
  ['lessEqual', lessEqual],
  ['equal', equal],
  ['notEqual', notEqual],
];

describe('wasm elementwise: binary and where', { skip }, () => {
  for (const [name, op] of BINARY) {
    it(`${name} broadcasts like the reference`, () => {
      fc.assert(
        fc.property(broadcastArb(2), fc.integer(), ([a, b], seed) => {
          const x = values(size(a!), seed);
          const y = values(size(b!), seed + 1);
          // pow: e^(b ln a) in f64 on both sides, a few ulps apart.
          compare(
            `${name} ${JSON.stringify([a, b])}`,
            [
              [x, a!],
              [y, b!],
            ],
            op,
            name === 'pow' ? 2e-6 : 4e-7,
          );
        }),
        RUNS,
      );
    });
  }

  it('covers rank-6 broadcasts that do not collapse (reference fallback)', () => {
    const a = [2, 1, 3, 1, 2, 1];
    const b = [1, 2, 1, 3, 1, 2];
    compare(
      'add rank 6',
      [
        [values(size(a), 1), a],
        [values(size(b), 2), b],
      ],
      add,
    );
  });

  it('propagates NaN; comparisons with NaN are false (notEqual true); ±inf arithmetic', () => {
    const specials = [Number.NaN, 1, -2, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0, 3.5];
    const x: number[] = [];
    const y: number[] = [];
    for (const s of specials) {
      for (const t of specials) {
        x.push(s);
        y.push(t);
      }
    }
    // 64 elements: the SIMD body and a long row; the (1, 0) and (0, 1) paths via a broadcast scalar.
    for (const [name, op] of BINARY) {
      compare(
        `${name} specials`,
        [
          [x, [64]],
          [y, [64]],
        ],
        op,
      );
      compare(
        `${name} specials, scalar b`,
        [
          [x, [64]],
          [[Number.NaN], [1]],
        ],
        op,
      );
      compare(
        `${name} specials, scalar a`,
        [
          [[Number.NaN], [1]],
          [y, [64]],
        ],
        op,
      );
    }
    tidy(() => {
      const [a] = pair(x, [64]);
      const [nan] = pair([Number.NaN], [1]);
      for (const op of [add, mul, maximum, minimum]) {
        const out = op(a!, nan!).dataSync();
        assert.ok(out.every((v) => Number.isNaN(v)));
      }
      assert.ok(
        greater(a!, nan!)
          .dataSync()
          .every((v) => v === 0),
      );
      assert.ok(
        notEqual(a!, nan!)
          .dataSync()
          .every((v) => v === 1),
      );
    });
  });

  it('where selects with broadcasting; NaN conditions count as true', () => {
    fc.assert(
      fc.property(broadcastArb(3), fc.integer(), ([c, a, b], seed) => {
        const r = rng(seed);
        const cond = Array.from({ length: size(c!) }, () => {
          const u = r();
          return u < 0.45 ? 0 : u < 0.9 ? 1 : u < 0.95 ? Number.NaN : -0;
        });
        compare(
          `where ${JSON.stringify([c, a, b])}`,
          [
            [cond, c!],
            [values(size(a!), seed + 1), a!],
            [values(size(b!), seed + 2), b!],
          ],
          (m, x, y) => where(m!, x!, y!),
        );
      }),
      RUNS,
    );
  });
});

const UNARY: [string, (x: Tensor) => Tensor][] = [
  ['neg', neg],
  ['exp', exp],
  ['log', log],
  ['log1p', log1p],
  ['sqrt', sqrt],
  ['rsqrt', rsqrt],
  ['abs', abs],
  ['sign', sign],
  ['reciprocal', reciprocal],
  ['square', square],
];

describe('wasm elementwise: unary and activations', { skip }, () => {
  const specials = [
    0,
    -0,
    1,
    -1,
    1e-30,
    -1e-30,
    1e-45,
    1e-7,
    -1e-7,
    0.5,
    -0.9999999,
    88,
    89,
    -87,
    -104,
    -110,
    1e30,
    -1e30,
    3.4e38,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  ].map(Math.fround);

  for (const [name, op] of UNARY) {
    it(`${name} matches the reference (random and special values)`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 300 }), fc.integer(), (n, seed) => {
          const r = rng(seed);
          const x = Array.from({ length: n }, () => Math.fround((r() - 0.5) * 10 ** (8 * r() - 4)));
          compare(`${name} random`, [[x, [n]]], op, 2e-7, 3e-45);
        }),
        RUNS,
      );
      compare(`${name} specials`, [[specials, [specials.length]]], op, 2e-7, 3e-45);
    });
  }

  const FNS: ActivationFn[] = ['sigmoid', 'tanh', 'silu', 'gelu', 'softplus'];
  const grid: number[] = [];
  for (let x = -12; x <= 12; x += 0.173) grid.push(Math.fround(x));
  grid.push(
    ...[
      0, -0, 1e-30, -1e-20, 1e-12, 1e-6, -1e-6, 1e-4, -3e-4, 2e-3, 0.49, 1.5, 1.99, 2, 2.01, -1.41, -1.42,
      -2.9, 2.9,
    ],
  );
  const far = [30, -30, 100, -100, 1e4, -1e4, 1e30, -1e30];

  for (const fn of FNS) {
    it(`${fn}: orders 0–4 match the reference; ±30, ±100 and beyond stay finite`, () => {
      const xs = [...grid, ...far].map(Math.fround);
      for (let order = 0; order <= 4; order++) {
        tidy(() => {
          const [w, r] = pair(xs, [xs.length]);
          const got = activation(fn, w, order).dataSync();
          const want = activation(fn, r, order).dataSync();
          // Absolute slack for the values near a zero of a derivative, where the reference's f64
          // result itself carries an absolute error of order 1e-16 times the terms' size.
          assertClose(got, want, `${fn} order ${order}`, 1e-6, 1e-12);
          got.forEach((v, i) => {
            assert.ok(Number.isFinite(v), `${fn} order ${order} at ${xs[i]} is ${v}`);
          });
        });
      }
    });
  }

  it('small |x|: values and first derivatives (all orders of tanh) to float32 relative accuracy', () => {
    // No absolute slack here: tanh(1e-30) must be 1e-30, not 0 (the series branch near 0).
    const xs = [1e-30, -1e-30, 1e-20, -1e-12, 3e-9, -1e-6, 2e-4, -9e-4, 1.1e-3].map(Math.fround);
    for (const fn of FNS) {
      for (let order = 0; order <= (fn === 'tanh' ? 4 : 1); order++) {
        compare(`${fn} order ${order} near 0`, [[xs, [xs.length]]], (t) => activation(fn, t, order), 1e-6);
      }
    }
  });

  it('activation(NaN) is NaN', () => {
    for (const fn of FNS) {
      tidy(() => {
        const [w] = pair([Number.NaN, 1, Number.NaN, 2, Number.NaN], [5]);
        for (let order = 0; order <= 4; order++) {
          const v = activation(fn, w!, order).dataSync();
          assert.ok(Number.isNaN(v[0]!) && Number.isNaN(v[4]!), `${fn} order ${order}`);
        }
      });
    }
  });
});

describe('wasm elementwise: reductions', { skip }, () => {
  const axesArb = (rank: number) => fc.subarray(Array.from({ length: rank }, (_, i) => i));

  for (const [name, op] of [
    ['sum', sum],
    ['max', max],
    ['min', min],
  ] as const) {
    it(`${name} over random axis sets (none, some, all) matches the reference`, () => {
      fc.assert(
        fc.property(
          shapeArb(0, 5).chain((s) => fc.tuple(fc.constant(s), axesArb(s.length))),
          fc.integer(),
          ([shape, axes], seed) => {
            const x = values(size(shape), seed, 0.5);
            compare(
              `${name} ${JSON.stringify(shape)} axes ${JSON.stringify(axes)}`,
              [[x, shape]],
              (t) => op(t, axes, true),
              name === 'sum' ? 1e-6 : 0,
              name === 'sum' ? 1e-6 : 0,
            );
          },
        ),
        RUNS,
      );
    });
  }

  it('sum over an empty axis set copies; over all axes gives one value; over a size-0 axis gives 0', () => {
    const shape = [3, 5, 7];
    const x = values(size(shape), 7);
    compare('sum none', [[x, shape]], (t) => sum(t, [], true), 0);
    compare('max none', [[x, shape]], (t) => max(t, [], true), 0);
    compare('sum all', [[x, shape]], (t) => sum(t), 1e-6, 1e-6);
    compare('max all', [[x, shape]], (t) => max(t), 0);
    compare('min all', [[x, shape]], (t) => min(t), 0);
    compare('sum size 0', [[[], [3, 0, 2]]], (t) => sum(t, [1], true), 0);
    compare('sum of nothing', [[[], [0, 4]]], (t) => sum(t, [1], true), 0);
  });

  it('sums accumulate in float64 (1 + many small terms)', () => {
    const n = 4099;
    const x = [1, ...new Array<number>(n - 1).fill(2 ** -25)];
    compare('sum row', [[x, [n]]], (t) => sum(t), 0);
    // Columns: 9 copies of x side by side (the 8-wide f64x2 block and a remainder column).
    const columns = x.flatMap((v) => new Array<number>(9).fill(v));
    compare('sum columns', [[columns, [n, 9]]], (t) => sum(t, [0]), 0);
    tidy(() => {
      const [w] = pair(x, [n]);
      assert.equal(sum(w!).item(), Math.fround(1 + (n - 1) * 2 ** -25));
    });
  });

  it('max/min propagate NaN', () => {
    const x = values(40, 3);
    x[17] = Number.NaN;
    compare('max NaN', [[x, [40]]], (t) => max(t), 0);
    compare('min NaN', [[x, [4, 10]]], (t) => min(t, [0]), 0);
    compare('max NaN rows', [[x, [4, 10]]], (t) => max(t, [1]), 0);
  });

  it('argMax matches the reference (first of ties)', () => {
    fc.assert(
      fc.property(
        shapeArb(1, 4).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 }))),
        fc.integer(),
        ([shape, axis], seed) => {
          tidy(() => {
            const [w, r] = pair(values(size(shape), seed, 0.9), shape);
            assert.deepEqual(Array.from(argMax(w, axis).dataSync()), Array.from(argMax(r, axis).dataSync()));
          });
        },
      ),
      RUNS,
    );
  });
});

describe('wasm elementwise: data movement', { skip }, () => {
  const permArb = (rank: number) =>
    fc.shuffledSubarray(
      Array.from({ length: rank }, (_, i) => i),
      { minLength: rank, maxLength: rank },
    );

  it('transpose matches the reference and round-trips exactly', () => {
    fc.assert(
      fc.property(
        shapeArb(1, 6).chain((s) => fc.tuple(fc.constant(s), permArb(s.length))),
        fc.integer(),
        ([shape, perm], seed) => {
          const x = values(size(shape), seed);
          compare(`transpose ${JSON.stringify([shape, perm])}`, [[x, shape]], (t) => transpose(t, perm), 0);
          tidy(() => {
            const [w] = pair(x, shape);
            const inverse = perm.map((_, i) => perm.indexOf(i));
            assert.deepEqual(Array.from(transpose(transpose(w!, perm), inverse).dataSync()), x);
          });
        },
      ),
      RUNS,
    );
  });

  it('transposes batches of matrices (the 4x4 block kernel, with ragged edges)', () => {
    for (const [b, r, c] of [
      [4, 16, 256],
      [3, 5, 9],
      [1, 4, 4],
      [2, 7, 4],
      [2, 33, 6],
    ] as const) {
      const shape = [b, r, c];
      compare(`transpose ${shape}`, [[values(b * r * c, r), shape]], (t) => transpose(t, [0, 2, 1]), 0);
    }
  });

  it('broadcastTo matches the reference', () => {
    fc.assert(
      fc.property(broadcastArb(1, 6), fc.integer(), ([s], seed) => {
        const out = s!.map((d, i) => (d === 1 ? 1 + (Math.abs(seed + i) % 5) : d));
        const lead = Math.abs(seed) % 2;
        const target = [...new Array<number>(lead).fill(3), ...out];
        if (size(target) > 5000) return;
        compare(
          `broadcastTo ${JSON.stringify([s, target])}`,
          [[values(size(s!), seed), s!]],
          (t) => broadcastTo(t, target),
          0,
        );
      }),
      RUNS,
    );
  });

  it('slice and pad match the reference; slicing the padding off gives back the input', () => {
    fc.assert(
      fc.property(
        shapeArb(1, 5, 1500).chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.tuple(
              ...s.map((d) => fc.tuple(fc.integer({ min: 0, max: d - 1 }), fc.integer({ min: 0, max: d }))),
            ),
            fc.tuple(
              ...s.map(() => fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }))),
            ),
          ),
        ),
        fc.integer(),
        fc.constantFrom(0, -1.5, Number.NaN),
        ([shape, box, padding], seed, value) => {
          const x = values(size(shape), seed);
          const begin = box.map(([b]) => b);
          const sizes = box.map(([b, n], i) => Math.min(n, shape[i]! - b));
          compare(
            `slice ${JSON.stringify([shape, begin, sizes])}`,
            [[x, shape]],
            (t) => slice(t, begin, sizes),
            0,
          );
          compare(`pad ${JSON.stringify([shape, padding])}`, [[x, shape]], (t) => pad(t, padding, value), 0);
          tidy(() => {
            const [w] = pair(x, shape);
            const back = slice(
              pad(w!, padding, value),
              padding.map(([before]) => before),
              shape,
            );
            assert.deepEqual(Array.from(back.dataSync()), x);
          });
        },
      ),
      RUNS,
    );
  });

  it('concat matches the reference', () => {
    fc.assert(
      fc.property(
        shapeArb(1, 4, 800).chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.integer({ min: 0, max: s.length - 1 }),
            fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }),
          ),
        ),
        fc.integer(),
        ([shape, axis, lengths], seed) => {
          const shapes = lengths.map((n) => shape.map((d, i) => (i === axis ? n : d)));
          compare(
            `concat ${JSON.stringify([shapes, axis])}`,
            shapes.map((s, i) => [values(size(s), seed + i), s] as const),
            (...xs) => concat(xs, axis),
            0,
          );
        },
      ),
      RUNS,
    );
  });

  it('gather matches the reference; scatterAdd (its adjoint) sums repeated rows', () => {
    fc.assert(
      fc.property(
        shapeArb(1, 4, 800).chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.integer({ min: 0, max: s.length - 1 }),
            fc.array(fc.nat(), { minLength: 0, maxLength: 9 }),
          ),
        ),
        fc.integer(),
        ([shape, axis, picks], seed) => {
          const idx = picks.map((p) => p % shape[axis]!);
          const x = values(size(shape), seed);
          tidy(() => {
            const [w, r] = pair(x, shape);
            const iw = tensor(Int32Array.from(idx), [idx.length], { backend: 'wasm' });
            const ir = tensor(Int32Array.from(idx), [idx.length], { backend: 'reference' });
            assertClose(gather(w, iw, axis).dataSync(), gather(r, ir, axis).dataSync(), 'gather', 0);
            // scatterAdd through the backends directly: g (outer, count, inner) into outShape.
            const gShape = shape.map((d, i) => (i === axis ? idx.length : d));
            const [gw, gr] = pair(values(size(gShape), seed + 1), gShape);
            const bw = wasmBackend!.scatterAdd(gw.buffer, iw.buffer, idx.length, shape, axis, 'float32');
            const br = referenceBackend.scatterAdd(gr.buffer, ir.buffer, idx.length, shape, axis, 'float64');
            try {
              assertClose(
                wasmBackend!.readSync!(bw, 'float32'),
                referenceBackend.readSync!(br, 'float64'),
                'scatterAdd',
                1e-6,
                1e-6,
              );
            } finally {
              wasmBackend!.release(bw);
              referenceBackend.release(br);
            }
          });
        },
      ),
      RUNS,
    );
  });

  it('cast float32 ↔ int32 like typed-array stores (truncation, wrap-around, NaN → 0)', () => {
    const xs = [
      0,
      -0,
      0.9,
      -0.9,
      1.5,
      -1.5,
      2.5,
      7,
      -7,
      123456.7,
      2147483520,
      -2147483648,
      3e9,
      -3e9,
      1e10,
      5e18,
      1e20,
      3.4e38,
      -3.4e38,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ].map(Math.fround);
    tidy(() => {
      const [w, r] = pair(xs, [xs.length]);
      const iw = cast(w, 'int32');
      assert.equal(iw.backend.name, 'wasm');
      assert.deepEqual(Array.from(iw.dataSync()), Array.from(cast(r, 'int32').dataSync()));
      assert.deepEqual(Array.from(iw.dataSync()), Array.from(Int32Array.from(xs, Math.trunc)));
      const ints = [0, 1, -1, 16777217, -16777219, 2147483647, -2147483648, 123, 5, 6, 7];
      const back = cast(tensor(Int32Array.from(ints), [ints.length], { backend: 'wasm' }), 'float32');
      assert.deepEqual(Array.from(back.dataSync()), Array.from(Float32Array.from(ints)));
    });
  });

  it('fill writes float32 and int32 values', () => {
    tidy(() => {
      for (const v of [0, -0, 1.5, Number.NaN, -3e38, 1e-40]) {
        const got = full([37], v, { backend: 'wasm' }).dataSync();
        assert.ok(
          got.every((g) => Object.is(g, Math.fround(v))),
          `${v}`,
        );
      }
      const ints = full([9], -7, { backend: 'wasm', dtype: 'int32' }).dataSync();
      assert.deepEqual(Array.from(ints), new Array(9).fill(-7));
    });
  });
});

describe('wasm elementwise: linearScan', { skip }, () => {
  it('matches the reference over random shapes, axes and directions', () => {
    fc.assert(
      fc.property(
        shapeArb(1, 4, 2000).chain((s) =>
          fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 })),
        ),
        fc.boolean(),
        fc.integer(),
        ([shape, axis], reverse, seed) => {
          const r = rng(seed);
          // Gates in [0, 1] with exact 0s and 1s.
          const a = Array.from({ length: size(shape) }, () => {
            const u = r();
            return u < 0.1 ? 0 : u < 0.2 ? 1 : Math.fround(r());
          });
          const b = values(size(shape), seed + 1);
          compare(
            `linearScan ${JSON.stringify([shape, axis, reverse])}`,
            [
              [a, shape],
              [b, shape],
            ],
            (x, y) => linearScan(x!, y!, axis, { reverse }),
            1e-5,
            1e-5 * shape[axis]!,
          );
        },
      ),
      RUNS,
    );
  });

  it('gates of exactly 0 reset and exactly 1 add, exactly', () => {
    for (const inner of [1, 3, 8]) {
      const n = 9;
      const shape = [2, n, inner];
      const b = Array.from({ length: size(shape) }, (_, i) => (i % 7) - 3);
      tidy(() => {
        const [zeros] = pair(new Array<number>(size(shape)).fill(0), shape);
        const [ones] = pair(new Array<number>(size(shape)).fill(1), shape);
        const [bw] = pair(b, shape);
        assert.deepEqual(Array.from(linearScan(zeros!, bw!, 1).dataSync()), b);
        const cum = linearScan(ones!, bw!, 1, { reverse: true }).dataSync();
        for (let o = 0; o < 2; o++) {
          for (let j = 0; j < inner; j++) {
            let h = 0;
            for (let t = n - 1; t >= 0; t--) {
              const i = (o * n + t) * inner + j;
              h += b[i]!;
              assert.equal(cum[i], h);
            }
          }
        }
      });
    }
  });

  it('accumulates in float32 (the wasm kernel, not the float64 reference loop, is installed)', () => {
    // 1 + 2^-24 rounds back to 1 in float32 at every step; a float64 accumulator would reach 1 + 2^-23.
    const n = 8;
    const b = [1, ...new Array<number>(n - 1).fill(2 ** -24)];
    tidy(() => {
      const [a] = pair(new Array<number>(n).fill(1), [n]);
      const [bw] = pair(b, [n]);
      assert.deepEqual(Array.from(linearScan(a!, bw!, 0).dataSync()), new Array(n).fill(1));
    });
  });
});
