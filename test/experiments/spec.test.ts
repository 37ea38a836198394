/**
 * The experiment presets (presets/experiments/*.json) are the experiments: built with the options
 * each recorded run was made with, they give its experiment.json byte for byte — so the folders
 * in experiments/ still resume, and the files hold every setting the old code did.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { demoSpec } from '../../src/experiments/demo.js';
import { experimentSpec, listExperimentPresets, loadExperimentPreset } from '../../src/experiments/spec.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

async function recorded(folder: string): Promise<string> {
  return (await readFile(join(root, 'experiments', folder, 'experiment.json'), 'utf8')).trim();
}

describe('experiment presets', () => {
  it('list the experiments the CLI runs', async () => {
    assert.deepEqual(await listExperimentPresets(), ['ablation', 'babilong', 'demo', 'mqar', 'niah']);
  });

  it("rebuild every recorded experiment's experiment.json exactly", async () => {
    const runs: [folder: string, preset: string, steps?: number][] = [
      ['niah', 'niah'],
      ['niah-1200', 'niah', 1200],
      ['niah-mac-2400', 'niah', 2400],
      ['ablation', 'ablation'],
      ['mqar', 'mqar', 1500],
      ['babilong', 'babilong', 500],
    ];
    for (const [folder, name, steps] of runs) {
      const spec = experimentSpec(await loadExperimentPreset(name), steps === undefined ? {} : { steps });
      assert.equal(JSON.stringify(spec, null, 2), await recorded(folder), folder);
    }
    assert.equal(JSON.stringify(await demoSpec({ out: 'x' }), null, 2), await recorded('demo-run'));
  });

  it('merge a model over the base model and name bad files and unknown experiments', async () => {
    const ablation = await loadExperimentPreset('ablation');
    assert.deepEqual(ablation.models['linear memory']!.memory, {
      heads: 2,
      headDim: 32,
      expansion: 2,
      chunkSize: 16,
      depth: 1,
    });
    assert.equal(ablation.models['no persistent memory']!.persistentTokens, 0);
    await assert.rejects(
      loadExperimentPreset('nope'),
      /unknown experiment 'nope' \(experiments: ablation, babilong, demo, mqar, niah\)/,
    );
    await assert.rejects(loadExperimentPreset('base'), /unknown experiment 'base'/);
    await assert.rejects(loadExperimentPreset('../presets/tiny'), /unknown experiment/);
  });
});
