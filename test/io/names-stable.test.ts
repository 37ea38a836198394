/**
 * Tensor names are a file format: checkpoints name every tensor by its dotted path in the
 * parameter / optimizer tree (engine/tree.ts). These tests hold today's names and loading to
 * fixtures written by main at 6838bc1, before the tree walkers were merged into one module
 * (test/io/fixtures/make-pre-tree-checkpoints.mjs made them): every variant's parameter and AdamW
 * state names, and a MAC checkpoint with its optimizer state that must load and save back with
 * the same names and values.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  adamw,
  dispose,
  flattenTree,
  initModel,
  type ModelVariant,
  Rng,
  resolveConfig,
  type TitansConfigInput,
} from '../../src/index.js';
import { loadModelCheckpoint, readSafetensorsFile, saveModelCheckpoint } from '../../src/node.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../../test/io/fixtures');
const pinned = JSON.parse(readFileSync(join(fixtures, 'pre-tree-names.json'), 'utf8')) as Record<
  ModelVariant,
  { config: TitansConfigInput; params: string[]; optimizer: string[] }
>;
const checkpointDir = join(fixtures, 'pre-tree-checkpoint');

describe('tensor names stay as main wrote them', () => {
  it('every variant names its parameters and AdamW state as before, in the same order', () => {
    assert.equal(Object.keys(pinned).length, 8, 'all eight variants are pinned');
    for (const [variant, want] of Object.entries(pinned)) {
      const params = initModel(resolveConfig(want.config), new Rng(1), 'float32');
      const state = adamw({ lr: 1e-3 }).init(params);
      assert.deepEqual(Object.keys(flattenTree(params)), want.params, `${variant} parameters`);
      assert.deepEqual(Object.keys(flattenTree(state, 'opt')), want.optimizer, `${variant} optimizer`);
      dispose([params, state]);
    }
  });

  it('loads a checkpoint written before the change and saves it back with the same tensors', async () => {
    const loaded = await loadModelCheckpoint(checkpointDir);
    const dir = mkdtempSync(join(tmpdir(), 'titans-names-'));
    try {
      assert.equal(loaded.config.variant, 'mac');
      assert.equal(loaded.optimizer?.step, 1);
      await saveModelCheckpoint(dir, loaded);
      for (const file of ['model.safetensors', 'optimizer.safetensors']) {
        const before = (await readSafetensorsFile(join(checkpointDir, file))).tensors;
        const after = (await readSafetensorsFile(join(dir, file))).tensors;
        assert.deepEqual(Object.keys(after), Object.keys(before), `${file}: names`);
        for (const [name, array] of Object.entries(before)) {
          assert.deepEqual(after[name]!.shape, array.shape, `${file}: ${name} shape`);
          assert.deepEqual(after[name]!.data, array.data, `${file}: ${name} values`);
        }
      }
    } finally {
      dispose([loaded.params, loaded.optimizer]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
