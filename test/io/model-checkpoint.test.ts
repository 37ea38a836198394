/**
 * Model and training checkpoints as the CLI writes them: the agreed config.json fields, a model
 * without its tokenizer, absurd configs and edited trainer.json refused before anything is
 * allocated or trusted, summarised and one-record-per-step histories loaded, non-finite weights refused unless allowed, and a crash between the two
 * renames of a save recovered by every loader.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dispose, full, Rng } from '../../src/index.js';
import {
  checkpointTokenizer,
  loadModelCheckpoint,
  loadTrainingCheckpoint,
  saveModelCheckpoint,
} from '../../src/io/model-checkpoint.js';
import { initModel } from '../../src/models/model.js';
import { byteTokenizer } from '../../src/tokenizer/tokenizer.js';
import { historySteps, MAX_HISTORY_RECORDS } from '../../src/train/history.js';
import { makeTrainingCheckpoint } from '../helpers/checkpoint-fuzz.js';
import { tinyConfig } from '../models/util.js';

let root: string;
let counter = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-model-ckpt-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
const fresh = () => join(root, `ckpt-${counter++}`);
const config = tinyConfig('mag', { vocabSize: 256 });

/** Edits a JSON file of a checkpoint (after dropping the manifest, which would catch the edit first). */
async function editJson(dir: string, name: string, edit: (json: Record<string, unknown>) => unknown) {
  await rm(join(dir, 'manifest.json'), { force: true });
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(edit(JSON.parse(await readFile(path, 'utf8')))));
}

describe('model checkpoints', () => {
  it('write model_type and architectures into config.json, and read them back as the same config', async () => {
    const dir = fresh();
    const params = initModel(config, new Rng(1));
    await saveModelCheckpoint(dir, { config, params, tokenizer: byteTokenizer() });
    const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.equal(json.model_type, 'titans');
    assert.deepEqual(json.architectures, ['TitansForCausalLM']);
    const loaded = await loadModelCheckpoint(dir);
    assert.deepEqual(loaded.config, config);
    dispose([params, loaded.params]);
  });

  it('refuse a model with another vocabulary and no tokenizer.json, rather than reading it as bytes', async () => {
    const dir = fresh();
    const bpeConfig = tinyConfig('mag', { vocabSize: 300 });
    const params = initModel(bpeConfig, new Rng(1));
    await saveModelCheckpoint(dir, { config: bpeConfig, params, tokenizer: null });
    const loaded = await loadModelCheckpoint(dir);
    assert.equal(loaded.tokenizer, null);
    assert.throws(
      () => checkpointTokenizer(loaded, dir),
      /tokenizer\.json: missing, and the model's vocabulary has 300 tokens, not the byte tokenizer's 256/,
    );
    assert.equal(checkpointTokenizer({ config, tokenizer: null }, dir).kind, 'byte');
    dispose([params, loaded.params]);
  });

  it('refuse an absurd config.json at once, naming the file and the field', async () => {
    const dir = fresh();
    const params = initModel(config, new Rng(1));
    await saveModelCheckpoint(dir, { config, params, tokenizer: null });
    dispose(params);
    for (const [field, value] of [
      ['layers', 1_000_000_000],
      ['vocabSize', 1_000_000_000],
      ['mlpHidden', 1_000_000_000],
      ['persistentTokens', 1_000_000_000],
    ] as const) {
      await editJson(dir, 'config.json', (c) => ({ ...c, ...config, [field]: value }));
      const started = performance.now();
      await assert.rejects(
        loadModelCheckpoint(dir),
        new RegExp(`config\\.json: config: ${field} = ${value} makes the model too large`),
      );
      assert.ok(performance.now() - started < 2000, `${field}: refused before allocating`);
    }
    await editJson(dir, 'config.json', () => ({ ...config, layers: 3 }));
    await assert.rejects(loadModelCheckpoint(dir, { maxBytes: 100 }), /more than the limit of 100 bytes/);
  });

  it('refuse non-finite weights with how many and where, unless allowNonFinite', async () => {
    const dir = fresh();
    const params = initModel(config, new Rng(1));
    params.finalNorm.dispose();
    params.finalNorm = full([config.dModel], Number.NaN);
    await saveModelCheckpoint(dir, { config, params, tokenizer: null });
    dispose(params);
    await assert.rejects(
      loadModelCheckpoint(dir),
      /model\.safetensors: 8 non-finite values \(8 NaN, 0 ±Infinity\) in 1 tensor: "finalNorm" \(8, first at index 0\)/,
    );
    const loaded = await loadModelCheckpoint(dir, { allowNonFinite: true });
    assert.ok(Number.isNaN((await loaded.params.finalNorm.data())[0]!));
    dispose(loaded.params);
  });

  it('are found by every loader after a crash between the two renames of a save', async () => {
    const dir = fresh();
    const params = initModel(config, new Rng(1));
    await saveModelCheckpoint(dir, { config, params, tokenizer: byteTokenizer() });
    dispose(params);
    // The state of issue 15's report: checkpoint renamed aside, the new copy never renamed in.
    await rename(dir, `${dir}.old-4194303-1700000000000-ab`);
    const loaded = await loadModelCheckpoint(dir);
    assert.deepEqual(loaded.config, config);
    dispose(loaded.params);
  });
});

describe('training checkpoints: trainer.json is checked', () => {
  async function trained(): Promise<string> {
    const dir = fresh();
    await makeTrainingCheckpoint(dir);
    return dir;
  }
  /** A history record of steps first..last, all applied unless `steps` says fewer. */
  const record = (first: number, last: number, steps = last - first + 1) => ({
    firstStep: first,
    step: last,
    steps,
    loss: 5,
    lr: 1e-3,
    gradNorm: 1,
    tokensPerSecond: 100,
  });

  it('loads a history summarised in records of several steps, and one written a record per step', async () => {
    const dir = await trained();
    const good = await loadTrainingCheckpoint(dir);
    assert.deepEqual(
      good.state.history.map((r) => [r.firstStep, r.step, r.steps]),
      [
        [1, 1, 1],
        [2, 2, 1],
        [3, 3, 1],
      ],
    );
    dispose([good.state.params, good.state.optimizer]);
    await editJson(dir, 'trainer.json', (t) => ({ ...t, history: [record(1, 2), record(3, 3)] }));
    const merged = await loadTrainingCheckpoint(dir);
    assert.deepEqual(merged.state.history, [record(1, 2), record(3, 3)]);
    dispose([merged.state.params, merged.state.optimizer]);
    // Before the history was bounded: no firstStep and steps, one record per step, any number.
    const legacy = Array.from({ length: 5000 }, (_, i) => ({
      step: i + 1,
      loss: 5 - i / 5000,
      lr: 1e-3,
      gradNorm: 1,
      tokensPerSecond: 100,
    }));
    await editJson(dir, 'trainer.json', (t) => ({ ...t, step: 5000, optimizerStep: 5000, history: legacy }));
    const old = await loadTrainingCheckpoint(dir);
    assert.equal(old.state.step, 5000);
    assert.equal(old.state.history.length, Math.ceil(5000 / 4));
    assert.ok(old.state.history.length <= MAX_HISTORY_RECORDS);
    const { loss, ...first } = old.state.history[0]!;
    assert.deepEqual(first, { firstStep: 1, step: 4, steps: 4, lr: 1e-3, gradNorm: 1, tokensPerSecond: 100 });
    assert.ok(Math.abs(loss - (5 - 1.5 / 5000)) < 1e-12, `mean loss of steps 1–4: ${loss}`);
    assert.equal(historySteps(old.state.history), 5000);
    dispose([old.state.params, old.state.optimizer]);
  });

  it('refuses a step that disagrees with the optimizer and the history (e.g. 1e9)', async () => {
    const dir = await trained();
    const good = await loadTrainingCheckpoint(dir);
    assert.equal(good.state.step, 3);
    dispose([good.state.params, good.state.optimizer]);
    await editJson(dir, 'trainer.json', (t) => ({ ...t, step: 1e9 }));
    await assert.rejects(
      loadTrainingCheckpoint(dir),
      /trainer\.json: step 1000000000 does not agree with the rest of the record: 0 non-finite steps, a history of 3 steps and optimizer step 3 \(expected 1000000000 of each\)/,
    );
  });

  it('refuses malformed fields, naming them', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ step: -1 }, /step must be a non-negative integer, got -1/],
      [{ step: 2.5 }, /step must be a non-negative integer/],
      [{ rng: [1, 2, 3] }, /rng must be four 32-bit unsigned integers/],
      [{ rng: [0, 0, 0, 0] }, /not all zero/],
      [{ history: 'lots' }, /history must be an array/],
      [
        { history: [{ step: 1, loss: 'low' }] },
        /history\[0\] must be \{step, loss, lr, gradNorm, tokensPerSecond\}/,
      ],
      [{ badSteps: [{ step: 1 }] }, /badSteps\[0\] must be \{step, reason\}/],
      // Summarised records: counts that fit their span, in order, summing to the applied steps.
      [
        { history: [{ ...record(1, 3), steps: 4 }] },
        /history\[0\] must summarise 1 ≤ steps ≤ step − firstStep \+ 1/,
      ],
      [{ history: [{ ...record(1, 3), firstStep: undefined }] }, /history\[0\] must summarise/],
      [{ history: [{ ...record(1, 3), steps: 0 }] }, /history\[0\] must summarise/],
      [
        { history: [record(1, 2), record(2, 3, 1)] },
        /history\[1\] starts at step 2, not after history\[0\] \(step 2\)/,
      ],
      [{ history: [record(1, 2), record(3, 3, 2)] }, /history\[1\] must summarise/],
      [{ history: [record(1, 2)] }, /a history of 2 steps and optimizer step 3 \(expected 3 of each\)/],
      [{ history: [record(1, 2), record(3, 4)] }, /a history of 4 steps/],
      [{ optimizerStep: 7 }, /does not agree|optimizerStep/],
    ];
    for (const [change, problem] of cases) {
      const dir = await trained();
      await editJson(dir, 'trainer.json', (t) => ({ ...t, ...change }));
      await assert.rejects(loadTrainingCheckpoint(dir), (e: unknown) => {
        assert.match(String(e), /trainer\.json: /);
        assert.match(String(e), problem);
        return true;
      });
    }
  });
});
