/**
 * Model and training checkpoints as the CLI writes them: the agreed config.json fields, a model
 * without its tokenizer, absurd configs and edited trainer.json refused before anything is
 * allocated or trusted, non-finite weights refused unless allowed, and a crash between the two
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

  it('refuses a step that disagrees with the optimizer and the history (e.g. 1e9)', async () => {
    const dir = await trained();
    const good = await loadTrainingCheckpoint(dir);
    assert.equal(good.state.step, 3);
    dispose([good.state.params, good.state.optimizer]);
    await editJson(dir, 'trainer.json', (t) => ({ ...t, step: 1e9 }));
    await assert.rejects(
      loadTrainingCheckpoint(dir),
      /trainer\.json: step 1000000000 does not agree with the rest of the record: 0 non-finite steps, 3 history records and optimizer step 3 \(expected 1000000000 of each\)/,
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
