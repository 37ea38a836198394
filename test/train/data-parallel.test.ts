/**
 * Data-parallel gradients (src/train/data-parallel*.ts): the batch shared by the calling thread and
 * worker threads gives the loss and gradient of the whole batch — in float64 to rounding, in
 * float32 to float32 rounding — with uneven shards and ignored targets; a worker's error reaches
 * the caller by name and the next step still runs; training with it follows training without.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { flattenTree, tensorLeaves } from '../../src/engine/tree.js';
import { dispose, Rng, tidy, valueAndGrad, wasmBackend, withBackend } from '../../src/index.js';
import type { TitansConfig } from '../../src/models/config.js';
import { initModel, type ModelParams } from '../../src/models/model.js';
import { enableWasmThreads, startDataParallel } from '../../src/node.js';
import type { DataParallel } from '../../src/train/data-parallel.js';
import { shardSizes } from '../../src/train/data-parallel.js';
import {
  initialTrainerState,
  languageModelLoss,
  resolveTrainOptions,
  trainLanguageModel,
} from '../../src/train/trainer.js';
import { relError } from '../helpers/compare.js';
import { randomTokens, tinyConfig } from '../models/util.js';

const clients: DataParallel[] = [];
after(() => {
  for (const c of clients) c.close();
});

function start(config: TitansConfig, params: ModelParams, threads: number): DataParallel {
  const client = startDataParallel(config, params, threads);
  clients.push(client);
  return client;
}

/** The single-thread loss and gradients, flattened by name. */
function reference(
  config: TitansConfig,
  params: ModelParams,
  inputs: Int32Array,
  targets: Int32Array,
  rows: number,
  seqLen: number,
) {
  return tidy(() => {
    const { value, grads } = valueAndGrad((p: ModelParams) =>
      languageModelLoss(p, config, inputs, targets, rows, seqLen),
    )(params);
    const flat = flattenTree(grads);
    return {
      loss: value.item(),
      grads: Object.fromEntries(Object.entries(flat).map(([k, g]) => [k, Float64Array.from(g.dataSync())])),
    };
  });
}

function batch(rows: number, seqLen: number, vocab: number, seed: number) {
  const inputs = Int32Array.from(randomTokens(rows * seqLen, vocab, seed));
  const targets = Int32Array.from(randomTokens(rows * seqLen, vocab, seed + 1));
  return { inputs, targets };
}

async function assertMatches(
  config: TitansConfig,
  params: ModelParams,
  client: DataParallel,
  inputs: Int32Array,
  targets: Int32Array,
  rows: number,
  seqLen: number,
  tol: number,
) {
  const want = reference(config, params, inputs, targets, rows, seqLen);
  const got = await client.lossAndGrads(params, inputs, targets, rows, seqLen);
  const flat = flattenTree(got.grads);
  assert.deepEqual(Object.keys(flat).sort(), Object.keys(want.grads).sort());
  assert.ok(Math.abs(got.loss - want.loss) <= tol * Math.abs(want.loss), `loss ${got.loss} vs ${want.loss}`);
  for (const [name, g] of Object.entries(flat)) {
    const err = relError(g, want.grads[name]!);
    assert.ok(err <= tol, `${name}: relative error ${err}`);
  }
  dispose(got.grads);
}

describe('data-parallel gradients', () => {
  it('cuts rows into nearly equal, non-empty shards', () => {
    assert.deepEqual(shardSizes(16, 2), [8, 8]);
    assert.deepEqual(shardSizes(5, 3), [1, 2, 2]);
    assert.deepEqual(shardSizes(2, 4), [1, 1]);
    assert.deepEqual(shardSizes(7, 1), [7]);
  });

  for (const variant of ['mac', 'mag'] as const) {
    it(`${variant}, float64: three threads on 5 uneven rows with ignored targets = one thread, to rounding`, async () => {
      const config = tinyConfig(variant);
      const params = initModel(config, new Rng(3), 'float64');
      const client = start(config, params, 3);
      const { inputs, targets } = batch(5, 12, config.vocabSize, 7);
      for (let i = 0; i < 20; i++) targets[i] = -1; // the first row and a bit of the second count less
      await assertMatches(config, params, client, inputs, targets, 5, 12, 1e-12);
      // a shard whose targets are all ignored has no mean loss: it weighs nothing
      targets.fill(-1, 0, 12);
      await assertMatches(config, params, client, inputs, targets, 5, 12, 1e-12);
      dispose(params);
    });
  }

  it('float32 on wasm (the thread pool detached for the calling thread) = one thread, to float32 rounding', async () => {
    const backend = wasmBackend!;
    const pool = enableWasmThreads(backend, 2);
    try {
      await withBackend('wasm', async () => {
        const config = tinyConfig('mac');
        const params = initModel(config, new Rng(4));
        const client = start(config, params, 2);
        const { inputs, targets } = batch(4, 16, config.vocabSize, 9);
        await assertMatches(config, params, client, inputs, targets, 4, 16, 1e-5);
        assert.equal(backend.threadPool, pool, 'the pool is attached again after the step');
        dispose(params);
      });
    } finally {
      enableWasmThreads(backend, 1);
    }
  });

  it("names a worker's error and still runs the next step; a closed client says so", async () => {
    const config = tinyConfig('mag');
    const params = initModel(config, new Rng(5), 'float64');
    const client = start(config, params, 2);
    const { inputs, targets } = batch(4, 8, config.vocabSize, 11);
    const bad = inputs.slice();
    bad[bad.length - 1] = config.vocabSize + 3; // only the worker's shard holds it
    await assert.rejects(client.lossAndGrads(params, bad, targets, 4, 8), /data parallel worker 1: .*gather/);
    await assertMatches(config, params, client, inputs, targets, 4, 8, 1e-12);
    await assert.rejects(client.lossAndGrads(params, inputs, targets, 4, 9), /rows × seqLen = 36 tokens/);
    client.close();
    await assert.rejects(client.lossAndGrads(params, inputs, targets, 4, 8), /closed/);
    dispose(params);
  });

  it('trains as the single-thread loop does (float64, 3 steps, AdamW, clipping)', async () => {
    const config = tinyConfig('mag', { vocabSize: 256 });
    const ids = Int32Array.from(randomTokens(400, 256, 13));
    const options = resolveTrainOptions({ steps: 3, batchSize: 4, seqLen: 12, evalEvery: 0, warmupSteps: 1 });
    const run = async (parallel: DataParallel | null) => {
      const params = initModel(config, new Rng(6), 'float64');
      return trainLanguageModel(
        config,
        { train: ids, validation: ids },
        options,
        initialTrainerState(params, options),
        {},
        parallel,
      );
    };
    const single = await run(null);
    const probe = initModel(config, new Rng(6), 'float64');
    const parallel = await run(start(config, probe, 2));
    const a = flattenTree(parallel.params);
    const b = flattenTree(single.params);
    for (const name of Object.keys(b)) assert.ok(relError(a[name]!, b[name]!) < 1e-9, name);
    assert.deepEqual(
      parallel.history.map((r) => r.step),
      single.history.map((r) => r.step),
    );
    for (const [i, r] of parallel.history.entries())
      assert.ok(Math.abs(r.loss - single.history[i]!.loss) < 1e-9);
    dispose([tensorLeaves(single), tensorLeaves(parallel), probe]);
  });

  it('refuses parameters the workers cannot rebuild', () => {
    const config = tinyConfig('mag');
    const params = initModel(config, new Rng(5), 'float64');
    const shared = { ...params, head: params.embedding };
    assert.throws(() => startDataParallel(config, shared, 2), /'head' is a tensor that appears twice/);
    dispose(params);
  });
});
