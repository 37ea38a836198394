/**
 * Soak test (a benchmark script, not a test): trains the tiny preset for many steps with a
 * checkpoint every `--every` steps, exactly as `titans train` saves (checkpoint directory with
 * manifest, then loss.svg), and prints at each checkpoint the process's memory after a full GC:
 * V8 heap used, resident set, ArrayBuffers (typed arrays and the wasm heap), and the engine's
 * live tensor bytes. Flat columns mean nothing accumulates step to step.
 *
 *   node --expose-gc dist/bench/soak.js [--steps 100000] [--every 1000] [--out DIR] [--json FILE]
 *
 * The trainer's history is bounded (src/train/history.ts: at most MAX_HISTORY_RECORDS records,
 * adjacent ones merged as the run grows), so trainer.json and loss.svg stay flat too; the
 * "history" column shows its record count.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPreset } from '../src/cli/presets.js';
import { lossCurve } from '../src/cli/train.js';
import { loadText } from '../src/data/corpus.js';
import { splitTokens } from '../src/data/dataset.js';
import { memory, Rng } from '../src/engine/index.js';
import { writeFileAtomic } from '../src/io/atomic.js';
import { saveTrainingCheckpoint } from '../src/io/model-checkpoint.js';
import { resolveConfig, type TitansConfigInput } from '../src/models/config.js';
import { initModel } from '../src/models/model.js';
import { byteTokenizer } from '../src/tokenizer/tokenizer.js';
import { initialTrainerState, resolveTrainOptions, trainLanguageModel } from '../src/train/trainer.js';

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}

const MiB = 2 ** 20;
const steps = Number(flag('steps', '100000'));
const every = Number(flag('every', '1000'));
const jsonPath = flag('json', '');
const keepOut = flag('out', '');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('soak: run with node --expose-gc so the figures are taken after a full collection');
  process.exit(2);
}

const preset = await loadPreset('tiny');
const tokenizer = byteTokenizer();
const config = resolveConfig({ ...preset.model, vocabSize: tokenizer.vocabSize } as TitansConfigInput);
const options = resolveTrainOptions({ ...preset.train, steps, checkpointEvery: every });
const { text } = await loadText('builtin:sotu-small');
const data = splitTokens(tokenizer.encode(text), { validationFraction: 0.05 });
const out = keepOut || (await mkdtemp(join(tmpdir(), 'titans-soak-')));
const ckptDir = join(out, 'checkpoint');

interface Row {
  step: number;
  seconds: number;
  heapUsedMiB: number;
  rssMiB: number;
  arrayBuffersMiB: number;
  liveTensors: number;
  liveTensorMiB: number;
  historyRecords: number;
  trainerJsonKiB: number;
  saveMs: number;
}
const rows: Row[] = [];
const started = performance.now();
console.log(
  `soak: tiny preset (${config.variant}), ${steps} steps of ${options.batchSize}×${options.seqLen}, checkpoint every ${every} → ${out}`,
);
console.log(
  'step      time s   heap MiB   rss MiB   arrayBuf MiB   tensors   tensor MiB   history   trainer.json KiB   save ms',
);
const final = await trainLanguageModel(
  config,
  data,
  options,
  initialTrainerState(initModel(config, new Rng(options.seed)), options),
  {
    checkpoint: async (s) => {
      const began = performance.now();
      await saveTrainingCheckpoint(ckptDir, {
        config,
        state: s,
        tokenizer,
        extra: { options, data: 'builtin:sotu-small' },
      });
      await writeFileAtomic(join(out, 'loss.svg'), lossCurve(s, config));
      const saveMs = performance.now() - began;
      gc();
      const usage = process.memoryUsage();
      const live = memory();
      const row: Row = {
        step: s.step,
        seconds: (performance.now() - started) / 1000,
        heapUsedMiB: usage.heapUsed / MiB,
        rssMiB: usage.rss / MiB,
        arrayBuffersMiB: usage.arrayBuffers / MiB,
        liveTensors: live.tensors,
        liveTensorMiB: live.bytes / MiB,
        historyRecords: s.history.length,
        trainerJsonKiB: (await stat(join(ckptDir, 'trainer.json'))).size / 1024,
        saveMs,
      };
      rows.push(row);
      console.log(
        `${String(row.step).padEnd(9)} ${row.seconds.toFixed(0).padStart(7)} ${row.heapUsedMiB.toFixed(1).padStart(10)} ${row.rssMiB.toFixed(1).padStart(9)} ${row.arrayBuffersMiB.toFixed(1).padStart(14)} ${String(row.liveTensors).padStart(9)} ${row.liveTensorMiB.toFixed(2).padStart(12)} ${String(row.historyRecords).padStart(9)} ${row.trainerJsonKiB.toFixed(0).padStart(18)} ${row.saveMs.toFixed(0).padStart(9)}`,
      );
      if (jsonPath) await writeFile(jsonPath, `${JSON.stringify({ steps, every, rows }, null, 2)}\n`);
    },
  },
);
const first = rows[0]!;
const last = rows[rows.length - 1]!;
const spread = (key: keyof Row) => {
  const values = rows.map((r) => r[key]);
  return `${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)}`;
};
console.log(
  `\n${final.step} steps in ${((performance.now() - started) / 1000).toFixed(0)} s · ${rows.length} checkpoints · heap ${spread('heapUsedMiB')} MiB · rss ${spread('rssMiB')} MiB · arrayBuffers ${spread('arrayBuffersMiB')} MiB · live tensors ${first.liveTensors}→${last.liveTensors} (${spread('liveTensorMiB')} MiB)`,
);
if (!keepOut) await rm(out, { recursive: true, force: true });
