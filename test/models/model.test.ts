/**
 * SPEC §3–§5 invariants for every variant: causality, streaming in pieces = one pass (float64,
 * 1e-9), cached generation = uncached, constant inference-state size, and gradients against
 * finite differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flattenTree, unflattenInto } from '../../src/engine/tree.js';
import {
  crossEntropy,
  dispose,
  getBackend,
  memory,
  noGrad,
  Rng,
  reshape,
  type Tensor,
  tensor,
  tensorLeaves,
  tidy,
} from '../../src/index.js';
import { MODEL_VARIANTS, type ModelVariant, resolveConfig } from '../../src/models/config.js';
import { generate, greedyTokens, stateBytes } from '../../src/models/generate.js';
import {
  blockKind,
  countParameters,
  initialModelState,
  initModel,
  type ModelParams,
  type ModelState,
  modelForward,
  releaseState,
  tokenTensor,
} from '../../src/models/model.js';
import { modelStream } from '../../src/models/stream.js';
import { checkGradients } from '../helpers/finite-diff.js';
import { columns, randomTokens, tinyConfig, tinyModel } from './util.js';

const B = 2;
const T = 13; // crosses windows (4), MAC segments (4) and memory chunks (2) mid-way

function logitsOf1(params: ModelParams, config: ReturnType<typeof tinyConfig>, ids: number[]): Float64Array {
  return noGrad(() =>
    tidy(() =>
      Float64Array.from(modelForward(params, config, tokenTensor(ids, 1, ids.length)).logits.dataSync()),
    ),
  );
}

function logitsOf(params: ModelParams, variant: ModelVariant, ids: number[], length: number): Float64Array {
  const config = tinyConfig(variant);
  return noGrad(() =>
    tidy(() =>
      Float64Array.from(modelForward(params, config, tokenTensor(ids, B, length)).logits.dataSync()),
    ),
  );
}

for (const variant of MODEL_VARIANTS) {
  describe(`${variant} model`, () => {
    it('is causal: changing token t+1 changes no logit at positions ≤ t (exactly)', () => {
      const { config, params } = tinyModel(variant);
      const ids = randomTokens(B * T, config.vocabSize, 3);
      const base = logitsOf(params, variant, ids, T);
      for (const t of [0, 4, 9]) {
        const changed = ids.slice();
        for (let b = 0; b < B; b++) changed[b * T + t + 1] = (changed[b * T + t + 1]! + 5) % config.vocabSize;
        const other = logitsOf(params, variant, changed, T);
        const V = config.vocabSize;
        for (let b = 0; b < B; b++) {
          for (let s = 0; s <= t; s++) {
            for (let v = 0; v < V; v++) {
              const i = (b * T + s) * V + v;
              assert.equal(other[i], base[i], `logit changed at row ${b}, position ${s} ≤ ${t}`);
            }
          }
          // and the change is seen downstream (the test would be vacuous otherwise)
          const after = (b * T + t + 1) * V;
          assert.notDeepEqual(other.subarray(after, after + V), base.subarray(after, after + V));
        }
      }
      dispose(params);
    });

    it('streams in pieces of random sizes exactly as one pass (float64, 1e-9)', () => {
      const { config, params } = tinyModel(variant);
      const ids = randomTokens(B * T, config.vocabSize, 4);
      const whole = logitsOf(params, variant, ids, T);
      const V = config.vocabSize;
      for (const seed of [1, 2, 3]) {
        const rng = new Rng(seed);
        let state: ModelState | null = null;
        let done = 0;
        let worst = 0;
        while (done < T) {
          const n = Math.min(T - done, 1 + rng.int(5));
          const piece = columns(ids, B, T, done, done + n);
          const out = noGrad(() => modelForward(params, config, tokenTensor(piece, B, n), state));
          state = out.state;
          const got = out.logits.dataSync();
          for (let b = 0; b < B; b++) {
            for (let s = 0; s < n; s++) {
              for (let v = 0; v < V; v++) {
                const a = got[(b * n + s) * V + v]!;
                const e = whole[(b * T + done + s) * V + v]!;
                worst = Math.max(worst, Math.abs(a - e) / Math.max(1, Math.abs(e)));
              }
            }
          }
          done += n;
        }
        assert.ok(worst < 1e-9, `pieces differ from the whole by ${worst} (seed ${seed})`);
        assert.equal(state!.position, T);
      }
      dispose(params);
    });

    it('generates with its cache exactly what uncached forward passes predict', async () => {
      const { config, params } = tinyModel(variant);
      const prompt = randomTokens(5, config.vocabSize, 5);
      const { tokens, state } = await generate(params, config, prompt, { maxTokens: 10, temperature: 0 });
      assert.equal(state.position, 15, 'the state holds every prompt and generated token');
      dispose(state);
      assert.equal(tokens.length, 10);
      const sequence = [...prompt, ...tokens];
      const n = sequence.length - 1; // the uncached pass over everything but the last token
      const logits = noGrad(() =>
        tidy(() => modelForward(params, config, tokenTensor(sequence.slice(0, n), 1, n)).logits),
      );
      const predicted = await greedyTokens(logits);
      logits.dispose();
      for (let i = 0; i < tokens.length; i++) {
        assert.equal(
          tokens[i],
          predicted[prompt.length - 1 + i],
          `generated token ${i} differs from the uncached argmax`,
        );
      }
      dispose(params);
    });

    it('has a gradient that matches finite differences (float64)', () => {
      const config = resolveConfig({ ...tinyConfig(variant), layers: 1 });
      const template = initModel(config, new Rng(2), 'float64');
      const names = Object.keys(flattenTree(template));
      const leaves = Object.values(flattenTree(template));
      const ids = randomTokens(9, config.vocabSize, 6);
      const inputs = ids.slice(0, 8);
      const targets = tensor(Int32Array.from(ids.slice(1)), [8], { dtype: 'int32' });
      const loss = (xs: Tensor[]) => {
        const params = unflattenInto(template, Object.fromEntries(names.map((n, i) => [n, xs[i]!])));
        const { logits } = modelForward(params, config, tokenTensor(inputs, 1, 8), null, {
          keepState: false,
        });
        return crossEntropy(reshape(logits, [8, config.vocabSize]), targets);
      };
      checkGradients(loss, leaves, { maxEntries: 3, rtol: 1e-5, atol: 1e-8 });
      dispose([template, targets]);
    });
  });
}

describe('inference state size (SPEC §5)', () => {
  // A GPU backend (no synchronous reads) streams a shorter text in shorter pieces: dawn.node makes
  // a bind group per new buffer and frees none, and a 1024-token MAC piece holds ~60k buffers at
  // once (its segments run one after another). 512 → 4096 tokens is still far past every window.
  const gpu = getBackend().readSync === undefined;
  const [piece, short, long] = gpu ? [128, 512, 4096] : [1024, 1024, 16384];
  const measure = (variant: ModelVariant) => {
    const { config, params } = tinyModel(variant, 'float32');
    const sizes = new Map<number, number>();
    let state: ModelState | null = null;
    const rng = new Rng(9);
    for (let done = 0; done < long; done += piece) {
      const ids = Array.from({ length: piece }, () => rng.int(config.vocabSize));
      const out = noGrad(() =>
        tidy(() => {
          const { logits: _, state: next } = modelForward(params, config, tokenTensor(ids, 1, piece), state);
          return next!;
        }),
      );
      if (state) releaseState(state, out);
      state = out;
      if (done + piece === short || done + piece === long) sizes.set(done + piece, stateBytes(state));
    }
    dispose([params, state]);
    return sizes;
  };
  for (const variant of ['mac', 'mag', 'mal', 'lmm', 'swa', 'deltanet', 'gated-deltanet'] as const) {
    it(`${variant}: the same number of bytes after ${short} and ${long} tokens`, () => {
      const sizes = measure(variant);
      assert.ok(sizes.get(short)! > 0);
      assert.equal(sizes.get(long), sizes.get(short));
    });
  }
  it('transformer++ (full attention): its cache grows with the stream, as it must', () => {
    const sizes = measure('transformer');
    // Pages of 1024 rows (engine/ops/kv-cache.ts): one page at 512 tokens, four at 4096, sixteen at 16K.
    assert.ok(sizes.get(long)! > 3 * sizes.get(short)!, `${sizes.get(short)} → ${sizes.get(long)} bytes`);
  });
});

describe('model structure', () => {
  it('builds the blocks SPEC §4 names, with memory only where configured', () => {
    const kinds = (variant: ModelVariant, memoryLayers: 'all' | number[] = 'all') =>
      [0, 1].map((i) => blockKind(tinyConfig(variant, { memoryLayers }), i));
    assert.deepEqual(kinds('mac'), ['mac', 'mac']);
    assert.deepEqual(kinds('mag', [1]), ['attention', 'mag']);
    assert.deepEqual(kinds('mal', []), ['attention', 'attention']);
    assert.deepEqual(kinds('lmm'), ['memory', 'memory']);
    assert.deepEqual(kinds('deltanet'), ['memory', 'memory']);
    assert.deepEqual(kinds('transformer'), ['attention', 'attention']);
    const delta = tinyConfig('deltanet');
    assert.equal(delta.memory.depth, 1);
    assert.equal(delta.memory.momentum, false);
    assert.equal(delta.memory.forgetting, false);
    assert.equal(tinyConfig('gated-deltanet').memory.forgetting, true);
  });

  it('writes the persistent rows into the memory of MAG/MAL/LMM at the start of a stream (SPEC §3)', () => {
    for (const variant of ['mag', 'mal', 'lmm'] as const) {
      const { config, params } = tinyModel(variant);
      const state = initialModelState(params, config, 1);
      assert.equal(state.blocks[0]!.memory!.memory.position, config.persistentTokens);
      dispose(params);
    }
    const { config, params } = tinyModel('mac');
    assert.equal(initialModelState(params, config, 1).blocks[0]!.memory!.memory.position, 0);
    dispose(params);
  });

  it('rejects bad configs naming the field', () => {
    assert.throws(() => resolveConfig({ variant: 'mag', vocabSize: 0 }), /vocabSize/);
    assert.throws(() => resolveConfig({ variant: 'nope' as ModelVariant, vocabSize: 10 }), /variant/);
    assert.throws(() => resolveConfig({ variant: 'mag', vocabSize: 10, dModel: 10, heads: 4 }), /divisible/);
    assert.throws(
      () => resolveConfig({ variant: 'mag', vocabSize: 10, layers: 2, memoryLayers: [2] }),
      /memoryLayers/,
    );
    assert.throws(
      () => resolveConfig({ variant: 'mag', vocabSize: 10, memory: { thetaMax: -1 } }),
      /thetaMax/,
    );
    assert.throws(
      () => resolveConfig({ variant: 'mag', vocabSize: 10, windw: 3 } as never),
      /unknown field 'windw'/,
    );
  });

  it('modelStream reads pieces as one pass, frees replaced states, and refuses use after close', async () => {
    const { config, params } = tinyModel('mac');
    const ids = randomTokens(T, config.vocabSize, 5);
    const whole = logitsOf1(params, config, ids);
    const stream = modelStream(params, config);
    const rows: number[] = [];
    let first: ModelState | null = null;
    for (const [a, b] of [
      [0, 5],
      [5, 6],
      [6, T],
    ] as const) {
      rows.push(...(await stream.feed(ids.slice(a, b), (logits) => logits))!);
      first ??= stream.state;
    }
    assert.equal(rows.length, whole.length);
    for (let i = 0; i < rows.length; i++) assert.ok(Math.abs(rows[i]! - whole[i]!) < 1e-9, `logit ${i}`);
    const leaves = tensorLeaves(stream.state);
    assert.ok(
      tensorLeaves(first).some((t) => t.disposed),
      'the first state was not freed',
    );
    stream.close();
    assert.ok(
      leaves.every((t) => t.disposed),
      'close left state tensors alive',
    );
    await assert.rejects(stream.feed([1]), /after close/);
    await assert.rejects(modelStream(params, config).feed([]), /at least one token/);
    dispose(params);
  });

  it('modelStream.feedPieces cuts a sequence into pieces that read as one pass, one read each', async () => {
    const { config, params } = tinyModel('mal');
    const ids = randomTokens(T, config.vocabSize, 6);
    const whole = logitsOf1(params, config, ids);
    const stream = modelStream(params, config);
    const seen: [number, number][] = [];
    const used: number[] = [];
    const before = memory().tensors;
    const rows = (
      await stream.feedPieces(
        Array.from(ids),
        3,
        (logits, start, length) => {
          seen.push([start, length]);
          return logits;
        },
        (values, start) => {
          used.push(start);
          return [...values];
        },
      )
    ).flat();
    assert.deepEqual(
      used,
      seen.map(([start]) => start),
      'use sees every piece, in order',
    );
    assert.equal(memory().tensors - before, tensorLeaves(stream.state).length, 'only the state stays alive');
    const cuts = Array.from({ length: Math.ceil(T / 3) }, (_, i) => [3 * i, Math.min(3, T - 3 * i)]);
    assert.deepEqual(seen, cuts);
    assert.equal(rows.length, whole.length);
    for (let i = 0; i < rows.length; i++) assert.ok(Math.abs(rows[i]! - whole[i]!) < 1e-9, `logit ${i}`);
    assert.deepEqual(await stream.feedPieces([], 3, (logits) => logits), []);
    assert.deepEqual(await stream.feedPieces([1, 2], 1), [], 'nothing selected, nothing read');
    await assert.rejects(stream.feedPieces([1], 0), /piece must be an integer >= 1, got 0/);
    stream.close();
    dispose(params);
  });

  it('rejects bad tokens and mismatched states', () => {
    const { config, params } = tinyModel('mag');
    assert.throws(() => modelForward(params, config, tensor([1, 2], [2])), /int32 \(B, T\)/);
    const state = initialModelState(params, config, 2);
    assert.throws(() => modelForward(params, config, tokenTensor([1], 1, 1), state), /batch of 2/);
    assert.throws(() => modelForward(params, config, tokenTensor([99], 1, 1)), /out of range/);
    assert.ok(countParameters(params) > 0);
    dispose(params);
  });
});
