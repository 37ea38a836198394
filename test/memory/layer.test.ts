/**
 * SPEC §2 memory layer: causality, split stream = whole stream (memory state and conv tails),
 * gradients of every parameter against finite differences, the ablation switches, and errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  causalConv,
  concat,
  defaultMemoryLayerConfig,
  dispose,
  getBackend,
  initialMemoryLayerState,
  initMemoryLayer,
  type MemoryLayerConfig,
  type MemoryLayerParams,
  memoryLayer,
  mul,
  Rng,
  slice,
  sum,
  type Tensor,
  tensor,
  tensorLeaves,
  tidy,
  withBackend,
} from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { checkGradients } from '../helpers/finite-diff.js';
import { readAll, valuesOf } from '../helpers/read.js';

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

const small = (overrides: Partial<MemoryLayerConfig> = {}) =>
  defaultMemoryLayerConfig({ dModel: 6, heads: 2, headDim: 3, expansion: 2, chunkSize: 3, ...overrides });

for (const backend of backendsUnderTest()) {
  const hasF64 = getBackend(backend).floatDTypes.includes('float64');
  const dtype = hasF64 ? 'float64' : 'float32';
  describe(`memory layer on ${backend}`, () => {
    it('causal depthwise conv: c_t = Σ_i w_i z_{t−i}, zeros before the stream, tails carried', async () => {
      await withBackend(backend, async () => {
        const { out, tail } = await readAll(() => {
          const z = tensor(Float64Array.from([1, 2, 3, 4, 5]), [1, 5, 1], { dtype });
          const taps = tensor(Float64Array.from([1, 10, 100]), [3, 1], { dtype });
          return causalConv(z, taps, tensor(new Float64Array(2), [1, 2, 1], { dtype }));
        });
        assert.deepEqual([...out], [1, 12, 123, 234, 345]);
        assert.deepEqual([...tail], [4, 5]);
      });
    });

    for (const variant of [
      { name: 'default (depth 2, momentum, forgetting, conv)', config: {} },
      {
        name: 'linear memory without momentum (DeltaNet-like)',
        config: { depth: 1, momentum: false, forgetting: false },
      },
      {
        name: 'no conv, GELU, residual memory',
        config: { convKernel: 0, activation: 'gelu' as const, residual: true },
      },
      { name: "SPEC's unnormalised values (normalizeValues: false)", config: { normalizeValues: false } },
    ]) {
      it(`${variant.name}: split stream = whole stream and causal`, async () => {
        await withBackend(backend, async () => {
          const rng = new Rng(4);
          const config = small(variant.config);
          const params = initMemoryLayer(config, rng, dtype);
          const x = rng.normal([2, 11, 6], { dtype });
          const cutsList = [[4], [1, 5, 9], [7, 8]];
          const read = await readAll(() => ({
            x,
            whole: memoryLayer(params, config, x).y,
            split: cutsList.map((cuts) => {
              let state: ReturnType<typeof memoryLayer>['state'] | undefined;
              const ys: Tensor[] = [];
              const bounds = [0, ...cuts, 11];
              for (let i = 0; i + 1 < bounds.length; i++) {
                const part = slice(x, [0, bounds[i]!, 0], [-1, bounds[i + 1]! - bounds[i]!, -1]);
                const r = memoryLayer(params, config, part, state);
                ys.push(r.y);
                state = r.state;
              }
              return concat(ys, 1);
            }),
          }));
          cutsList.forEach((cuts, c) => {
            assert.ok(maxAbsDiff(read.split[c]!, read.whole) < (hasF64 ? 1e-12 : 1e-5), `cuts ${cuts}`);
          });
          // causality: change token 6 only
          const data = read.x.slice();
          for (let j = 0; j < 6; j++) data[6 * 6 + j]! += 0.5;
          const changed = await valuesOf(
            () => memoryLayer(params, config, tensor(data, x.shape, { dtype })).y,
          );
          const base = read.whole;
          for (let b = 0; b < 2; b++) {
            for (let t = 0; t < 11; t++) {
              for (let j = 0; j < 6; j++) {
                const i = (b * 11 + t) * 6 + j;
                if (b === 0 && t < 6) assert.equal(changed[i], base[i], `output ${t} changed`);
                if (b === 1) assert.equal(changed[i], base[i], 'another batch row changed');
              }
            }
          }
          dispose([params, x]);
        });
      });
    }

    it('the streaming state does not grow with the stream (as many values after 1k as after 16k tokens)', () => {
      withBackend(backend, () => {
        const rng = new Rng(9);
        const config = small({ chunkSize: 16 });
        const params = initMemoryLayer(config, rng, dtype);
        // Every field counted on its own (at a chunk boundary chunkStartWeights *is* weights, so
        // distinct buffers would shrink there): the state's size whatever the position.
        const stateBytes = (state: ReturnType<typeof memoryLayer>['state']) => {
          const { weights, momentum, chunkStartWeights } = state.memory;
          const tails = state.convTails ? [state.convTails.q, state.convTails.k, state.convTails.v] : [];
          return [...weights, ...momentum, ...chunkStartWeights, ...tails].reduce((n, t) => n + t.size, 0);
        };
        let state: ReturnType<typeof memoryLayer>['state'] | undefined;
        const sizes: number[] = [];
        for (let tokens = 0; tokens < 16384; ) {
          const piece = 1000 + (tokens % 7); // uneven pieces, mid-chunk boundaries
          state = tidy(() => {
            const r = memoryLayer(params, config, rng.normal([1, piece, 6], { dtype }), state);
            return r.state;
          });
          tokens += piece;
          if (sizes.length === 0 || tokens >= 16384) sizes.push(stateBytes(state));
        }
        assert.equal(sizes.length, 2);
        assert.equal(sizes[1], sizes[0], `state values ${sizes}`);
        assert.ok(state!.memory.position >= 16384);
      });
    });

    for (const normalizeValues of [true, false])
      it(`gradients of every parameter and the input match finite differences (normalizeValues ${normalizeValues})`, {
        skip: !hasF64 && 'finite differences need float64',
      }, () => {
        withBackend(backend, () => {
          const rng = new Rng(7);
          const config = small({
            dModel: 4,
            heads: 2,
            headDim: 2,
            convKernel: 2,
            thetaMax: 0.5,
            normalizeValues,
          });
          const params = initMemoryLayer(config, rng, 'float64');
          const x = rng.normal([1, 5, 4], { dtype: 'float64' });
          const cot = rng.normal([1, 5, 4], { dtype: 'float64' });
          const leaves = tensorLeaves(params);
          const rebuild = (xs: Tensor[]): MemoryLayerParams => {
            const map = new Map(leaves.map((l, i) => [l, xs[i]!]));
            const swap = (t: Tensor | null) => (t ? map.get(t)! : null);
            return {
              ...params,
              ...Object.fromEntries(
                Object.entries(params).map(([k, v]) => [
                  k,
                  Array.isArray(v) ? v.map((t) => swap(t)) : swap(v as Tensor),
                ]),
              ),
            } as MemoryLayerParams;
          };
          const f = (xs: Tensor[]) => sum(mul(memoryLayer(rebuild(xs.slice(1)), config, xs[0]!).y, cot));
          checkGradients(f, [x, ...leaves], { rtol: 1e-6, maxEntries: 12 });
        });
      });

    it('switches remove their parameters: no momentum → no η gate, no forgetting → no α gate, no conv → no taps', () => {
      withBackend(backend, () => {
        const p = initMemoryLayer(small({ momentum: false, forgetting: false, convKernel: 0 }), new Rng(1));
        assert.equal(p.wEta, null);
        assert.equal(p.wAlpha, null);
        assert.equal(p.convQ, null);
        const q = initMemoryLayer(small({ depth: 3 }), new Rng(1));
        assert.deepEqual(
          q.memory.map((w) => w.shape),
          [
            [2, 3, 6],
            [2, 6, 6],
            [2, 6, 3],
          ],
        );
      });
    });

    it('rejects bad configs and inputs naming the field', () => {
      withBackend(backend, () => {
        assert.throws(() => small({ heads: 0 }), /heads must be an integer ≥ 1/);
        assert.throws(() => small({ thetaMax: -1 }), /thetaMax must be > 0/);
        assert.throws(() => small({ etaMax: 2 }), /etaMax must be in \[0, 1\]/);
        assert.throws(() => small({ activation: 'relu' as 'silu' }), /activation/);
        const config = small();
        const params = initMemoryLayer(config, new Rng(0));
        assert.throws(
          () => memoryLayer(params, config, tensor(new Float32Array(10), [1, 2, 5])),
          /\(B, T, 6\)/,
        );
      });
    });
  });
}

describe("memory layer: a fresh state on the parameters' backend", () => {
  it('conv tails and disabled gates live where the parameters live, whatever the default backend', () => {
    const config = small({ forgetting: false });
    const params = withBackend('reference', () => initMemoryLayer(config, new Rng(2)));
    const x = withBackend('reference', () => tensor(new Float32Array(2 * 4 * 6).fill(0.1), [2, 4, 6]));
    const other = getBackend().name === 'reference' ? null : getBackend().name;
    // the default backend differs from the parameters' one wherever a second backend is registered
    withBackend(other ?? 'reference', () => {
      const state = initialMemoryLayerState(params, config, 2);
      assert.equal(state.convTails!.q.backend.name, 'reference');
      const { y } = memoryLayer(params, config, x, state); // mixing backends would throw here
      assert.equal(y.backend.name, 'reference');
      dispose([state, y]);
    });
    dispose([params, x]);
  });
});
