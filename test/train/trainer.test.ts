/**
 * The language-model training loop: exact resume through a checkpoint on disk, gradient
 * accumulation = one big batch, and NaN/Inf reported and stopped, never applied.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { flattenTree } from '../../src/engine/tree.js';
import { dispose, full, Rng } from '../../src/index.js';
import {
  loadModelCheckpoint,
  loadTrainingCheckpoint,
  saveModelCheckpoint,
  saveTrainingCheckpoint,
} from '../../src/io/model-checkpoint.js';
import { initModel } from '../../src/models/model.js';
import { byteTokenizer } from '../../src/tokenizer/tokenizer.js';
import {
  initialTrainerState,
  resolveTrainOptions,
  type TrainerState,
  TrainingDivergedError,
  trainLanguageModel,
} from '../../src/train/trainer.js';
import { tinyConfig } from '../models/util.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-trainer-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const text = 'the memory learns at test time; the gate forgets; attention sees only the window. ';
const ids = byteTokenizer().encode(text.repeat(6));
const data = { train: ids, validation: ids };
const config = tinyConfig('mag', { vocabSize: 256 });

function paramsEqual(a: unknown, b: unknown): boolean {
  const fa = flattenTree(a);
  const fb = flattenTree(b);
  return Object.keys(fa).every((k) => {
    const x = fa[k]!.dataSync();
    const y = fb[k]!.dataSync();
    return x.length === y.length && x.every((v, i) => v === y[i]);
  });
}

describe('trainLanguageModel', () => {
  it('resumes from a checkpoint on disk and takes exactly the same next steps', async () => {
    const options = resolveTrainOptions({
      steps: 8,
      batchSize: 2,
      seqLen: 16,
      evalEvery: 4,
      checkpointEvery: 4,
    });
    const dir = join(root, 'resume');
    let saved = false;
    const straight = await trainLanguageModel(
      config,
      data,
      options,
      initialTrainerState(initModel(config, new Rng(0)), options),
      {
        checkpoint: async (s: TrainerState) => {
          if (s.step !== 4) return;
          await saveTrainingCheckpoint(dir, { config, state: s, tokenizer: byteTokenizer() });
          saved = true;
        },
      },
    );
    assert.ok(saved);
    const ckpt = await loadTrainingCheckpoint(dir);
    assert.equal(ckpt.state.step, 4);
    const resumed = await trainLanguageModel(config, data, options, ckpt.state);
    assert.deepEqual(
      resumed.history.map((r) => r.loss),
      straight.history.map((r) => r.loss),
    );
    assert.deepEqual(resumed.evals, straight.evals);
    assert.ok(paramsEqual(resumed.params, straight.params), 'parameters after resume differ');
    dispose([straight.params, straight.optimizer, resumed.params, resumed.optimizer]);
  });

  it('accumulating 2 micro-batches of 2 equals one batch of 4 (float64)', async () => {
    const config64 = tinyConfig('lmm', { vocabSize: 256 });
    const run = async (batchSize: number, accumulate: number) => {
      const options = resolveTrainOptions({ steps: 2, batchSize, accumulate, seqLen: 12, evalEvery: 0 });
      return trainLanguageModel(
        config64,
        data,
        options,
        initialTrainerState(initModel(config64, new Rng(3), 'float64'), options),
      );
    };
    const one = await run(4, 1);
    const two = await run(2, 2);
    const a = flattenTree(one.params);
    const b = flattenTree(two.params);
    for (const k of Object.keys(a)) {
      const x = a[k]!.dataSync();
      const y = b[k]!.dataSync();
      for (let i = 0; i < x.length; i++)
        assert.ok(Math.abs(x[i]! - y[i]!) < 1e-10, `${k}[${i}]: ${x[i]} vs ${y[i]}`);
    }
    for (let s = 0; s < 2; s++) assert.ok(Math.abs(one.history[s]!.loss - two.history[s]!.loss) < 1e-12);
    dispose([one.params, one.optimizer, two.params, two.optimizer]);
  });

  it('reports every non-finite step, applies none, and stops with a clear error if they persist', async () => {
    const options = resolveTrainOptions({
      steps: 20,
      batchSize: 2,
      seqLen: 8,
      evalEvery: 0,
      maxBadSteps: 3,
      checkpointEvery: 1,
    });
    const params = initModel(config, new Rng(0));
    params.embedding.dispose();
    params.embedding = full([256, config.dModel], Number.NaN);
    const bad: number[] = [];
    let checkpoints = 0;
    await assert.rejects(
      trainLanguageModel(config, data, options, initialTrainerState(params, options), {
        onBadStep: (step, reason) => {
          bad.push(step);
          assert.match(reason, /NaN/);
        },
        checkpoint: async () => {
          checkpoints++;
        },
      }),
      (e: unknown) => e instanceof TrainingDivergedError && /step 3: 3 consecutive steps/.test(e.message),
    );
    assert.deepEqual(bad, [1, 2, 3]);
    assert.equal(checkpoints, 0, 'no checkpoint may be written from a diverged state');
    dispose(params);
  });

  it('rejects bad options naming the field', () => {
    assert.throws(() => resolveTrainOptions({ steps: 0 }), /steps/);
    assert.throws(() => resolveTrainOptions({ lr: -1 }), /lr/);
    assert.throws(() => resolveTrainOptions({ stepz: 3 } as never), /unknown field 'stepz'/);
  });
});

describe('model checkpoints', () => {
  it('save → load gives identical logits, and the tokenizer comes back', async () => {
    const { modelForward, tokenTensor } = await import('../../src/models/model.js');
    const params = initModel(config, new Rng(4));
    const dir = join(root, 'roundtrip');
    await saveModelCheckpoint(dir, { config, params, tokenizer: byteTokenizer() });
    const loaded = await loadModelCheckpoint(dir);
    const tokens = tokenTensor([1, 5, 200, 7, 9], 1, 5);
    const a = modelForward(params, config, tokens).logits.dataSync();
    const b = modelForward(loaded.params, loaded.config, tokens).logits.dataSync();
    assert.deepEqual(b, a);
    assert.deepEqual(loaded.config, config);
    assert.equal(loaded.tokenizer?.decode(loaded.tokenizer.encode('héllo')), 'héllo');
    const names = Object.keys(JSON.parse((await readFile(join(dir, 'config.json'), 'utf8')) as string));
    assert.ok(names.includes('variant') && names.includes('memory'));
    dispose([params, loaded.params]);
  });

  it('rejects a corrupt config or mismatched weights with a message naming the file and problem', async () => {
    const { writeFile } = await import('node:fs/promises');
    const params = initModel(config, new Rng(4));
    const dir = join(root, 'corrupt');
    await saveModelCheckpoint(dir, { config, params, tokenizer: null });
    const { rm } = await import('node:fs/promises');
    await rm(join(dir, 'manifest.json')); // as written before manifests: the per-file checks below apply
    const configPath = join(dir, 'config.json');
    const good = await readFile(configPath, 'utf8');
    await writeFile(configPath, '{ "variant": "mag", ');
    await assert.rejects(loadModelCheckpoint(dir), /config\.json: .*JSON/);
    await writeFile(configPath, JSON.stringify({ ...config, variant: 'maq' }));
    await assert.rejects(loadModelCheckpoint(dir), /config\.json: config: variant must be one of/);
    await writeFile(configPath, JSON.stringify({ ...config, dModel: 16 }));
    await assert.rejects(loadModelCheckpoint(dir), /model\.safetensors.*embedding/);
    await writeFile(configPath, good);
    const weights = join(dir, 'model.safetensors');
    const bytes = await readFile(weights);
    await writeFile(weights, bytes.subarray(0, bytes.length - 10));
    await assert.rejects(loadModelCheckpoint(dir), /model\.safetensors/);
    await assert.rejects(
      loadModelCheckpoint(join(root, 'nowhere')),
      /nowhere: checkpoint directory does not exist/,
    );
    dispose(params);
  });
});
