/**
 * SPEC §1 invariants of memoryScan: conformance vectors, chunk-parallel = token-by-token,
 * split stream = whole stream, causality, b = T uses W⁰ for every gradient, gradients against
 * finite differences, and extreme gates.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  add,
  cast,
  type FloatDType,
  getBackend,
  grad,
  type MemoryScanInputs,
  memoryForward,
  memoryScan,
  memoryScanReference,
  mul,
  Rng,
  slice,
  sliceTokens,
  sub,
  sum,
  type Tensor,
  tensor,
  withBackend,
} from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { relError } from '../helpers/compare.js';
import { CONFORMANCE_CASES, loadConformanceCase, type StoredArray } from '../helpers/conformance.js';
import { checkGradients } from '../helpers/finite-diff.js';
import { readAll, valuesOf } from '../helpers/read.js';

const TOKEN_KEYS = ['q', 'k', 'v', 'alpha', 'eta', 'theta'] as const;

interface CaseSpec {
  lead?: number[];
  T: number;
  d: number;
  depth: number;
  expansion?: number;
  dtype?: FloatDType;
  alpha?: [number, number];
  eta?: [number, number];
  theta?: [number, number];
}

/** Random well-scaled inputs: unit-ish keys/queries, gates in the given ranges. */
function randomInputs(rng: Rng, spec: CaseSpec): MemoryScanInputs {
  const lead = spec.lead ?? [];
  const dtype = spec.dtype ?? 'float64';
  const { T, d, depth } = spec;
  const h = depth === 1 ? d : d * (spec.expansion ?? 2);
  const dims = [d, ...Array.from({ length: depth - 1 }, () => h), d];
  const gate = ([lo, hi]: [number, number]) => rng.uniform([...lead, T], { low: lo, high: hi, dtype });
  return {
    q: rng.normal([...lead, T, d], { std: 1 / Math.sqrt(d), dtype }),
    k: rng.normal([...lead, T, d], { std: 1 / Math.sqrt(d), dtype }),
    v: rng.normal([...lead, T, d], { dtype }),
    alpha: gate(spec.alpha ?? [0, 0.2]),
    eta: gate(spec.eta ?? [0.3, 0.9]),
    theta: gate(spec.theta ?? [0.02, 0.2]),
    weights: dims
      .slice(0, -1)
      .map((din, l) => rng.normal([din, dims[l + 1]!], { std: 1 / Math.sqrt(din), dtype })),
    momentum: dims.slice(0, -1).map((din, l) => rng.normal([din, dims[l + 1]!], { std: 0.1, dtype })),
  };
}

for (const backend of backendsUnderTest()) {
  // float64 with SPEC's 1e−9 where the backend computes it; float32 with 1e−4-level tolerances elsewhere.
  const hasF64 = getBackend(backend).floatDTypes.includes('float64');
  const dtype: FloatDType = hasF64 ? 'float64' : 'float32';
  const tight = hasF64 ? 1e-9 : 2e-5;
  describe(`memoryScan on ${backend}`, () => {
    it(`matches the published conformance vectors (values and gradients), both implementations, in ${dtype}`, async () => {
      await withBackend(backend, async () => {
        for (const c of CONFORMANCE_CASES) {
          const t = (o: StoredArray) => tensor(Float64Array.from(o.data), o.shape, { dtype });
          const tol = hasF64 ? 1e-9 : 1e-4;
          const gradTol = hasF64 ? 1e-9 : 2e-3;
          const { depth, inputs, options, data } = loadConformanceCase(c, t);
          const layers = Array.from({ length: depth }, (_, i) => i);
          for (const scan of [memoryScan, memoryScanReference]) {
            const label = `case ${c} ${scan.name}`;
            const got = await readAll(() => {
              const { y, state } = scan(inputs, options);
              const loss = (p: MemoryScanInputs) => {
                const r = scan(p, options);
                let l = sum(mul(r.y, t(data.cotangents.y)));
                for (const i of layers)
                  l = add(l, sum(mul(r.state.weights[i]!, t(data.cotangents[`W_${i}`]))));
                return l;
              };
              const g = grad(loss)(inputs);
              return {
                y,
                W: layers.map((i) => state.weights[i]!),
                S: layers.map((i) => state.momentum[i]!),
                grads: TOKEN_KEYS.map((key) => g[key]),
                gW: layers.map((i) => g.weights[i]!),
                gS: layers.map((i) => g.momentum![i]!),
              };
            });
            assert.ok(relError(got.y, data.expected.y.data) < tol, `${label}: y`);
            for (const i of layers) {
              assert.ok(relError(got.W[i]!, data.expected[`W_${i}`].data) < tol, `${label}: W_${i}`);
              assert.ok(relError(got.S[i]!, data.expected[`S_${i}`].data) < tol, `${label}: S_${i}`);
            }
            TOKEN_KEYS.forEach((key, j) => {
              assert.ok(relError(got.grads[j]!, data.grads[key].data) < gradTol, `${label}: grad ${key}`);
            });
            for (const i of layers) {
              assert.ok(relError(got.gW[i]!, data.grads[`W0_${i}`].data) < gradTol, `${label}: grad W0_${i}`);
              assert.ok(relError(got.gS[i]!, data.grads[`S0_${i}`].data) < gradTol, `${label}: grad S0_${i}`);
            }
          }
        }
      });
    });

    for (const precision of hasF64 ? (['float64', 'float32'] as const) : (['float32'] as const)) {
      const tol = precision === 'float64' ? 1e-9 : 1e-4;
      it(`chunk-parallel = token-by-token in ${precision} (depth 1–3, residual, SiLU/GELU, chunk 1 / non-divisor / T)`, async () => {
        await withBackend(backend, async () => {
          const rng = new Rng(11);
          const T = 11;
          for (const depth of [1, 2, 3]) {
            for (const residual of [false, true]) {
              for (const activation of ['silu', 'gelu'] as const) {
                for (const chunkSize of [1, 4, T]) {
                  const { fast, slow } = await readAll(() => {
                    const inputs = randomInputs(rng, { lead: [2], T, d: 3, depth, dtype: precision });
                    const options = { chunkSize, activation, residual };
                    const pick = (r: ReturnType<typeof memoryScan>) => ({
                      y: r.y,
                      W: r.state.weights,
                      S: r.state.momentum,
                    });
                    return {
                      fast: pick(memoryScan(inputs, options)),
                      slow: pick(memoryScanReference(inputs, options)),
                    };
                  });
                  const label = `depth ${depth} residual ${residual} ${activation} chunk ${chunkSize}`;
                  assert.ok(relError(fast.y, slow.y) < tol, `${label}: y ${relError(fast.y, slow.y)}`);
                  for (let l = 0; l < depth; l++) {
                    assert.ok(relError(fast.W[l]!, slow.W[l]!) < tol, `${label}: W${l}`);
                    assert.ok(relError(fast.S[l]!, slow.S[l]!) < tol, `${label}: S${l}`);
                  }
                }
              }
            }
          }
        });
      });
    }

    it('a split stream equals the whole stream, at random split points (also mid-chunk)', async () => {
      await withBackend(backend, async () => {
        const rng = new Rng(5);
        for (let trial = 0; trial < 8; trial++) {
          let label = '';
          const got = await readAll(() => {
            const T = 13 + rng.int(8);
            const chunkSize = 1 + rng.int(5);
            const options = { chunkSize, activation: 'silu' as const, residual: trial % 2 === 1 };
            const inputs = randomInputs(rng, { lead: [2], T, d: 3, depth: 1 + (trial % 3), dtype });
            const whole = memoryScan(inputs, options);
            const cuts = [0, ...new Set(Array.from({ length: 3 }, () => 1 + rng.int(T - 1)))].sort(
              (a, b) => a - b,
            );
            cuts.push(T);
            let state: Partial<MemoryScanInputs> = { weights: inputs.weights, momentum: inputs.momentum! };
            const pairs: [Tensor, Tensor][] = [];
            let offset = 0;
            for (let i = 0; i + 1 < cuts.length; i++) {
              const part = sliceTokens(inputs, cuts[i]!, cuts[i + 1]! - cuts[i]!);
              const r = memoryScan({ ...part, ...state } as MemoryScanInputs, options);
              const n = r.y.shape[1]!;
              pairs.push([r.y, slice(whole.y, [0, offset], [-1, n])]);
              offset += n;
              state = r.state;
            }
            label = `T ${T} chunk ${chunkSize} cuts ${cuts}`;
            const weights = whole.state.weights.map((w, l): [Tensor, Tensor] => [
              (state as { weights: Tensor[] }).weights[l]!,
              w,
            ]);
            return { pairs, weights };
          });
          for (const [piece, whole] of got.pairs) assert.ok(relError(piece, whole) < tight, label);
          got.weights.forEach(([split, whole], l) => {
            assert.ok(relError(split, whole) < tight, `${label}: W${l}`);
          });
        }
      });
    });

    it('is causal: changing any input at t+1 leaves every output ≤ t unchanged', async () => {
      await withBackend(backend, async () => {
        const rng = new Rng(8);
        const T = 9;
        const options = { chunkSize: 4, activation: 'silu' as const, residual: false };
        const inputs = randomInputs(rng, { lead: [1], T, d: 3, depth: 2, dtype });
        const base = await valuesOf(() => memoryScan(inputs, options).y);
        for (const key of TOKEN_KEYS) {
          for (const t1 of [1, 4, 6]) {
            const x = inputs[key];
            const data = (await x.data()).slice();
            const perToken = key === 'q' || key === 'k' || key === 'v' ? 3 : 1;
            for (let j = 0; j < perToken; j++) data[t1 * perToken + j]! += 0.3;
            const changed = await valuesOf(
              () => memoryScan({ ...inputs, [key]: tensor(data, x.shape, { dtype }) }, options).y,
            );
            for (let i = 0; i < t1 * 3; i++)
              assert.equal(changed[i], base[i], `${key} at ${t1} changed output ${i}`);
            let differs = false;
            for (let i = t1 * 3; i < T * 3; i++) differs ||= changed[i] !== base[i];
            assert.ok(differs || key === 'q', `${key} at ${t1} should change some later output`);
          }
        }
      });
    });

    it('with b = T every gradient is taken at W⁰ (η = α = 0: W^T = W⁰ − Σ θ_s ∇ℓ(W⁰; k_s, v_s))', async () => {
      await withBackend(backend, async () => {
        const rng = new Rng(3);
        const T = 6;
        const inputs = randomInputs(rng, { T, d: 3, depth: 2, alpha: [0, 0], eta: [0, 0], dtype });
        const theta = await inputs.theta.data();
        const pairs = await readAll(() => {
          const { state } = memoryScan({ ...inputs, momentum: undefined }, { chunkSize: T });
          const weightedLoss = (ws: Tensor[]) => {
            let total: Tensor | null = null;
            for (let s = 0; s < T; s++) {
              const one = sliceTokens(inputs, s, 1);
              const e = sub(memoryForward(one.k, ws, { activation: 'silu', residual: false }), one.v);
              const term = mul(sum(mul(e, e)), theta[s]!);
              total = total ? add(total, term) : term;
            }
            return total!;
          };
          const g = grad(weightedLoss)([...inputs.weights]);
          return inputs.weights.map((w, l) => [state.weights[l]!, sub(w, g[l]!)]);
        });
        pairs.forEach(([got, expected], l) => {
          assert.ok(relError(got!, expected!) < (hasF64 ? 1e-12 : 1e-5), `W${l}`);
        });
      });
    });

    it('gradients w.r.t. q, k, v, gates, initial weights, momentum and chunk-start weights match finite differences', {
      skip: !hasF64 && 'finite differences need float64',
    }, () => {
      withBackend(backend, () => {
        const rng = new Rng(21);
        const inputs = randomInputs(rng, { lead: [2], T: 7, d: 2, depth: 2 });
        const options = { chunkSize: 3, activation: 'silu' as const, residual: true };
        // continue mid-chunk so chunkStartWeights matter too
        const prefix = memoryScan(sliceTokens(inputs, 0, 2), options).state;
        const cot = rng.normal([2, 5, 2], { dtype: 'float64' });
        const cotW = prefix.weights.map((w) => rng.normal(w.shape, { dtype: 'float64' }));
        const names = ['q', 'k', 'v', 'alpha', 'eta', 'theta'] as const;
        const rest = sliceTokens(inputs, 2, 5);
        const flat = [
          ...names.map((n) => rest[n]),
          ...prefix.weights,
          ...prefix.momentum,
          ...prefix.chunkStartWeights,
        ];
        const depth = 2;
        const f = (xs: Tensor[]) => {
          const r = memoryScan(
            {
              q: xs[0]!,
              k: xs[1]!,
              v: xs[2]!,
              alpha: xs[3]!,
              eta: xs[4]!,
              theta: xs[5]!,
              weights: xs.slice(6, 6 + depth),
              momentum: xs.slice(6 + depth, 6 + 2 * depth),
              chunkStartWeights: xs.slice(6 + 2 * depth),
              position: prefix.position,
            },
            options,
          );
          let l = sum(mul(r.y, cot));
          r.state.weights.forEach((w, i) => {
            l = add(l, sum(mul(w, cotW[i]!)));
          });
          return l;
        };
        checkGradients(f, flat, { rtol: 1e-6 });
      });
    });

    it('stays finite and accurate with gates at 1e−6 and 1 − 1e−6 over 4096 tokens', async () => {
      await withBackend(backend, async () => {
        const T = 4096;
        for (const [a, e] of [
          [1e-6, 1 - 1e-6],
          [1 - 1e-6, 1e-6],
          [0, 0],
        ] as const) {
          const got = await readAll(() => {
            const rng = new Rng(99);
            const inputs = randomInputs(rng, {
              T,
              d: 2,
              depth: 1,
              alpha: [a, a],
              eta: [e, e],
              theta: [0.001, 0.001],
            });
            const options = { chunkSize: 64 };
            const f32 = memoryScan(
              {
                ...inputs,
                ...Object.fromEntries(TOKEN_KEYS.map((k) => [k, castTo32(inputs[k])])),
                weights: inputs.weights.map(castTo32),
                momentum: inputs.momentum!.map(castTo32),
              } as MemoryScanInputs,
              options,
            );
            return {
              fast: memoryScan(inputs, options).y,
              slow: memoryScanReference(inputs, options).y,
              f32: f32.y,
            };
          });
          assert.ok(
            got.fast.every((v) => Number.isFinite(v)),
            `α=${a} η=${e}: non-finite output`,
          );
          assert.ok(
            relError(got.fast, got.slow) < 1e-9,
            `α=${a} η=${e}: y differs ${relError(got.fast, got.slow)}`,
          );
          assert.ok(
            relError(got.f32, got.slow) < 1e-3,
            `α=${a} η=${e}: float32 y differs ${relError(got.f32, got.slow)}`,
          );
        }
      });
    });

    it('rejects bad inputs with errors that name the problem', () => {
      withBackend(backend, () => {
        const inputs = randomInputs(new Rng(1), { T: 4, d: 3, depth: 2, dtype });
        assert.throws(() => memoryScan(inputs, { chunkSize: 0 }), /chunkSize must be an integer ≥ 1/);
        assert.throws(
          () => memoryScan({ ...inputs, alpha: sliceTokens(inputs, 0, 3).alpha }, { chunkSize: 2 }),
          /alpha/,
        );
        assert.throws(
          () => memoryScan({ ...inputs, k: sliceTokens(inputs, 0, 3).k }, { chunkSize: 2 }),
          /k \[3, 3\] must have q's shape/,
        );
        assert.throws(
          () =>
            memoryScan({ ...inputs, weights: [inputs.weights[1]!, inputs.weights[0]!] }, { chunkSize: 2 }),
          /weights\[0\]/,
        );
        assert.throws(
          () => memoryScan({ ...inputs, position: 1 }, { chunkSize: 2 }),
          /needs chunkStartWeights/,
        );
        assert.throws(
          () => memoryScan({ ...inputs, chunkSize: 3 }, { chunkSize: 2 }),
          /built with chunkSize 3/,
        );
        assert.throws(
          () => memoryScan(inputs, { chunkSize: 2, activation: 'relu' as 'silu' }),
          /activation must be 'silu' or 'gelu'/,
        );
      });
    });
  });
}

function castTo32(t: Tensor): Tensor {
  return cast(t, 'float32');
}
