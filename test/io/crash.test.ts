/**
 * Crash consistency of checkpoint saves, by fault injection at every step.
 *
 * A file-system layer stops the world at its k-th mutating operation (a file written half, a
 * rename not done, a tree half deleted) and fails everything after it, as a killed process would.
 * For every k of a save of a training checkpoint over an older one, a fresh "process" then
 * recovers and loads: it must find the newest complete checkpoint (the old one until the new
 * one's manifest is written, the new one after), and resuming from it must end byte-identical to
 * an uninterrupted run. Recovery itself is then crashed at each of its steps, from each of those
 * states, and must still end at the same checkpoint.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dispose, Rng } from '../../src/engine/index.js';
import { flattenTree } from '../../src/engine/tree.js';
import { recoverCheckpoint } from '../../src/io/checkpoint.js';
import { type FileSystem, nodeFileSystem } from '../../src/io/fs.js';
import { loadTrainingCheckpoint, saveTrainingCheckpoint } from '../../src/io/model-checkpoint.js';
import { initModel } from '../../src/models/model.js';
import { byteTokenizer } from '../../src/tokenizer/tokenizer.js';
import {
  initialTrainerState,
  resolveTrainOptions,
  type TrainerState,
  trainLanguageModel,
} from '../../src/train/trainer.js';
import { tinyConfig } from '../models/util.js';

/** A pid no process can have: the crashed writer's temp copies count as abandoned. */
const DEAD = 4194303;

class Crash extends Error {}

/**
 * The real file system, until its `crashAt`-th mutating call: that call leaves a partial effect
 * (half a file, one entry of a tree removed) and throws, and so does every call after it.
 */
function crashingFileSystem(crashAt: number, base: string) {
  const log: string[] = [];
  let count = 0;
  let crashed = false;
  const name = (path: string) =>
    (relative(base, path) || '.').replace(/\.(tmp|old)-\d+-\d+-[0-9a-f]+/g, '.$1-…');
  const step = async (what: string, partial?: () => Promise<void>) => {
    if (crashed) throw new Crash('the process is gone');
    count++;
    log.push(what);
    if (count === crashAt) {
      crashed = true;
      await partial?.();
      throw new Crash(`crashed at step ${count}: ${what}`);
    }
  };
  const alive = () => {
    if (crashed) throw new Crash('the process is gone');
  };
  const fs: FileSystem = {
    pid: DEAD,
    async createFile(path, bytes) {
      await step(`write ${name(path)}`, () => writeFile(path, bytes.subarray(0, bytes.length >> 1)));
      await nodeFileSystem.createFile(path, bytes);
    },
    async syncFile(path) {
      await step(`fsync ${name(path)}`);
      await nodeFileSystem.syncFile(path);
    },
    async syncDirectory(path) {
      await step(`fsync dir ${name(path)}`);
      await nodeFileSystem.syncDirectory(path);
    },
    async makeDirectory(path) {
      await step(`mkdir ${name(path)}`);
      await nodeFileSystem.makeDirectory(path);
    },
    async rename(from, to) {
      await step(`rename ${name(from)} → ${name(to)}`);
      await nodeFileSystem.rename(from, to);
    },
    async remove(path) {
      await step(`rm -r ${name(path)}`, async () => {
        const inside = await readdir(path).catch(() => []);
        if (inside.length > 0) await rm(join(path, inside.sort()[0]!));
      });
      await nodeFileSystem.remove(path);
    },
    readDirectory: async (path) => {
      alive();
      return nodeFileSystem.readDirectory(path);
    },
    stat: async (path) => {
      alive();
      return nodeFileSystem.stat(path);
    },
    readFile: async (path, maxBytes) => {
      alive();
      return nodeFileSystem.readFile(path, maxBytes);
    },
  };
  return {
    fs,
    log,
    get steps() {
      return count;
    },
    get crashed() {
      return crashed;
    },
  };
}

/** Saves the step-4 state through a crashing layer; the crash is expected, any other error is not. */
async function saveCrashing(ckpt: string, fs: FileSystem): Promise<void> {
  await saveTrainingCheckpoint(
    ckpt,
    { config, state: state4, tokenizer: byteTokenizer(), extra },
    { fs },
  ).catch((error) => {
    if (!(error instanceof Crash)) throw error;
  });
}

/** The names in the run folder, with the random parts of temp names shortened. */
async function listing(run: string): Promise<string> {
  const names = (await readdir(run)).sort();
  return names.map((n) => n.replace(/\.(tmp|old)-\d+-\d+-[0-9a-f]+$/, '.$1-…')).join(' ');
}

const config = tinyConfig('mag', { vocabSize: 256 });
const text = 'the memory learns at test time; the gate forgets; attention sees only the window. ';
const ids = byteTokenizer().encode(text.repeat(6));
const data = { train: ids, validation: ids };
const options = resolveTrainOptions({ steps: 6, batchSize: 2, seqLen: 8, evalEvery: 3, checkpointEvery: 2 });
const extra = { options };

let root: string;
/** A complete checkpoint at step 2 (copied into each case) and one at step 4 (its state is re-saved). */
let base2: string;
let state4: TrainerState;
/** The parameters of an uninterrupted run to step 6, as bytes per tensor. */
let reference: Record<string, number[]>;

async function paramBytes(state: TrainerState): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(flattenTree(state.params))) {
    const values = await t.data();
    out[name] = Array.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return out;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-crash-'));
  base2 = join(root, 'base2');
  const full4 = join(root, 'full4');
  const straight = await trainLanguageModel(
    config,
    data,
    options,
    initialTrainerState(initModel(config, new Rng(0)), options),
    {
      checkpoint: async (s) => {
        if (s.step === 2 || s.step === 4) {
          await saveTrainingCheckpoint(s.step === 2 ? base2 : full4, {
            config,
            state: s,
            tokenizer: byteTokenizer(),
            extra,
          });
        }
      },
    },
  );
  reference = await paramBytes(straight);
  dispose([straight.params, straight.optimizer]);
  state4 = (await loadTrainingCheckpoint(full4)).state;
});
after(async () => {
  dispose([state4.params, state4.optimizer]);
  await rm(root, { recursive: true, force: true });
});

describe('checkpoint saves under fault injection', () => {
  it('every intermediate state recovers to the newest complete checkpoint, and resume is exact', async (t) => {
    const outcomes: string[] = [];
    let manifestStep = 0;
    let total = 0;
    for (let k = 1; ; k++) {
      const run = join(root, `case-${k}`);
      const ckpt = join(run, 'checkpoint');
      await cp(base2, ckpt, { recursive: true });
      const crash = crashingFileSystem(k, run);
      const save = saveTrainingCheckpoint(
        ckpt,
        { config, state: state4, tokenizer: byteTokenizer(), extra },
        { fs: crash.fs },
      );
      try {
        await save;
      } catch (error) {
        if (!(error instanceof Crash)) throw error;
      }
      const finished = !crash.crashed;
      const what = finished ? 'no crash (save complete)' : crash.log[k - 1]!;
      if (what.startsWith('write ') && what.endsWith('manifest.json')) manifestStep = k;
      const onDisk = await listing(run);

      // A new process: recover and load, with the real file system.
      const loaded = await loadTrainingCheckpoint(ckpt);
      const expected = manifestStep > 0 && k > manifestStep ? 4 : 2;
      assert.equal(
        loaded.state.step,
        expected,
        `crash at step ${k} (${what}): loaded step ${loaded.state.step}`,
      );
      assert.deepEqual(await readdir(run), ['checkpoint'], `crash at step ${k}: leftovers after recovery`);
      const resumed = await trainLanguageModel(config, data, options, loaded.state);
      assert.deepEqual(await paramBytes(resumed), reference, `crash at step ${k}: resume differs`);
      dispose([resumed.params, resumed.optimizer]);
      outcomes.push(`${k}. ${what} | on disk: ${onDisk} | loads step ${expected} | resume to 6 identical`);
      total = k;
      await rm(run, { recursive: true, force: true });
      if (finished) break;
    }
    assert.ok(manifestStep > 0, 'the manifest was written');
    assert.ok(total >= 15, `a save should have many steps, saw ${total}`);
    t.diagnostic(
      `${total} states (${total - 1} crash points + the complete save), all recovered and resumed exactly:`,
    );
    for (const line of outcomes) t.diagnostic(line);
  });

  it('a crash during recovery is itself recovered, from every state a crashed save leaves', async (t) => {
    let cases = 0;
    for (let k = 1; ; k++) {
      const run = join(root, `rec-${k}`);
      const ckpt = join(run, 'checkpoint');
      await cp(base2, ckpt, { recursive: true });
      const crash = crashingFileSystem(k, run);
      await saveCrashing(ckpt, crash.fs);
      if (!crash.crashed) break;
      // The step a clean recovery reaches from this state.
      const probe = join(root, `probe-${k}`);
      await cp(run, probe, { recursive: true });
      const want = (await loadTrainingCheckpoint(join(probe, 'checkpoint'))).state;
      const wantStep = want.step;
      dispose([want.params, want.optimizer]);
      await rm(probe, { recursive: true, force: true });
      for (let j = 1; ; j++) {
        const copy = join(root, `rec-${k}-${j}`);
        await cp(run, copy, { recursive: true });
        const inner = crashingFileSystem(j, copy);
        await recoverCheckpoint(join(copy, 'checkpoint'), inner.fs).catch((error) => {
          if (!(error instanceof Crash)) throw error;
        });
        const got = await loadTrainingCheckpoint(join(copy, 'checkpoint'));
        assert.equal(got.state.step, wantStep, `save crash ${k}, recovery crash ${j} (${inner.log[j - 1]})`);
        assert.deepEqual(await readdir(copy), ['checkpoint']);
        dispose([got.state.params, got.state.optimizer]);
        await rm(copy, { recursive: true, force: true });
        cases++;
        if (!inner.crashed) break;
      }
      await rm(run, { recursive: true, force: true });
    }
    t.diagnostic(
      `${cases} (save crash, recovery crash) pairs, each recovered to the newest complete checkpoint`,
    );
  });

  it('a crashed save never leaves its temp copy passing for newer than a later save', async () => {
    // Crash right after the new copy's manifest is written (complete, not renamed in), then save
    // an older state normally: the next load must see that later save, not the stale copy.
    const run = join(root, 'later');
    const ckpt = join(run, 'checkpoint');
    await cp(base2, ckpt, { recursive: true });
    const full = crashingFileSystem(Number.POSITIVE_INFINITY, run);
    await saveTrainingCheckpoint(
      ckpt,
      { config, state: state4, tokenizer: byteTokenizer(), extra },
      { fs: full.fs },
    );
    const afterManifest =
      full.log.findIndex((op) => op.startsWith('write ') && op.endsWith('manifest.json')) + 2;
    await rm(run, { recursive: true, force: true });
    await cp(base2, ckpt, { recursive: true });
    const crash = crashingFileSystem(afterManifest, run);
    await saveCrashing(ckpt, crash.fs);
    assert.ok(crash.crashed);
    assert.ok(
      (await readdir(run)).some((n) => n.startsWith('checkpoint.tmp-')),
      'a finished temp copy is left',
    );
    const older = (await loadTrainingCheckpoint(base2)).state;
    await saveTrainingCheckpoint(ckpt, { config, state: older, tokenizer: byteTokenizer(), extra });
    dispose([older.params, older.optimizer]);
    const loaded = await loadTrainingCheckpoint(ckpt);
    assert.equal(loaded.state.step, 2, 'the later save wins');
    assert.deepEqual(await readdir(run), ['checkpoint']);
    dispose([loaded.state.params, loaded.state.optimizer]);
  });
});
