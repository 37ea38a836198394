/**
 * `titans train`: the Node wiring around the training loop (src/train/trainer.ts) — data and
 * tokenizer, checkpoints, a progress bar, the loss curve. (`generate` and `eval ppl`: generate.ts.)
 *
 * A run folder (`--out`) holds:
 *   checkpoint/   config.json, model.safetensors, tokenizer.json, optimizer.safetensors, trainer.json,
 *                 manifest.json (see src/io/checkpoint.ts)
 *   loss.svg      training and validation loss, redrawn at every checkpoint
 *   summary.json  parameters, steps, losses and throughput at the end
 *
 * Everything that can be checked is checked before the work starts (the output folder, the
 * config and its memory estimate, --resume against the checkpoint), and a crash leaves nothing
 * half-written: the run folder is recovered first. SIGINT / SIGTERM end the run with a checkpoint
 * after the current step and exit 130 / 143; further signals wait for that save.
 */
import { join } from 'node:path';
import type { ModelLoadOptions } from '../api/load.js';
import { enableWasmThreads } from '../backends/wasm/threads-node.js';
import { loadText } from '../data/corpus.js';
import { splitTokens } from '../data/dataset.js';
import { dispose, Rng } from '../engine/index.js';
import { wasmBackend } from '../index.js';
import { removeStaleTemps, writeFileAtomic } from '../io/atomic.js';
import { CONFIG_FILE, recoverCheckpoint } from '../io/checkpoint.js';
import { nodeFileSystem, prepareOutputDirectory } from '../io/fs.js';
import {
  checkpointTokenizer,
  loadTrainingCheckpoint,
  saveTrainingCheckpoint,
} from '../io/model-checkpoint.js';
import type { TitansConfig } from '../models/config.js';
import { countParameters, initModel } from '../models/model.js';
import { stderrSink } from '../report/node-sink.js';
import { lineChartSvg } from '../report/plot.js';
import { Progress } from '../report/progress.js';
import { trainBpe } from '../tokenizer/bpe.js';
import { byteTokenizer, type Tokenizer } from '../tokenizer/tokenizer.js';
import type { DataParallel } from '../train/data-parallel.js';
import { startDataParallel } from '../train/data-parallel-node.js';
import { recentLoss } from '../train/history.js';
import {
  initialTrainerState,
  resolveTrainOptions,
  type TrainerState,
  TrainingDivergedError,
  type TrainOptions,
  trainLanguageModel,
} from '../train/trainer.js';
import { loadPreset } from './presets.js';
import {
  checkResumeFlags,
  checkTrainingSize,
  InterruptedError,
  resolvedModelConfig,
  stopOnSignals,
  type TrainCommandOptions,
} from './train-guards.js';

export { checkpointDir } from '../io/model-checkpoint.js';
export { applySettings, InterruptedError, type TrainCommandOptions } from './train-guards.js';

/** Defaults of the flags that --resume compares against the checkpoint (undefined = not given). */
const DEFAULT_PRESET = 'small';
const DEFAULT_DATA = 'builtin:sotu';
const DEFAULT_TOKENIZER = 'byte';

/** Starts the wasm worker threads (all cores unless told otherwise). */
export function useThreads(threads: number | undefined): void {
  const n = threads ?? (process.env.CI ? 2 : undefined);
  if (wasmBackend && (n === undefined || n > 1)) enableWasmThreads(wasmBackend, n);
}

/** Parses `byte` or `bpe:N`. */
function tokenizerSpec(spec: string): { kind: 'byte' } | { kind: 'bpe'; vocabSize: number } {
  if (spec === 'byte') return { kind: 'byte' };
  const m = /^bpe:(\d+)$/.exec(spec);
  if (m) return { kind: 'bpe', vocabSize: Number(m[1]) };
  throw new Error(`--tokenizer must be 'byte' or 'bpe:N' (e.g. bpe:1024), got '${spec}'`);
}

/** The loader options the CLI flags give (--allow-nonfinite, --max-memory). */
export function loadOptions(o: { allowNonfinite?: boolean; maxMemory?: number }): ModelLoadOptions {
  return {
    ...(o.allowNonfinite ? { allowNonFinite: true } : {}),
    ...(o.maxMemory === undefined ? {} : { maxBytes: o.maxMemory }),
  };
}

export async function trainCommand(o: TrainCommandOptions): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const preset = await loadPreset(o.preset ?? DEFAULT_PRESET);
  const variant = o.variant ?? String(preset.model.variant ?? 'mag');
  const out = o.out ?? join('runs', `${preset.name.replace(/[^\w-]/g, '_')}-${variant}`);
  const ckptDir = join(out, 'checkpoint');
  const cliTrain: Partial<TrainOptions> = {
    ...(o.steps !== undefined ? { steps: o.steps } : {}),
    ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
    ...(o.seqLen !== undefined ? { seqLen: o.seqLen } : {}),
    ...(o.accumulate !== undefined ? { accumulate: o.accumulate } : {}),
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.evalEvery !== undefined ? { evalEvery: o.evalEvery } : {}),
    ...(o.checkpointEvery !== undefined ? { checkpointEvery: o.checkpointEvery } : {}),
  };

  // Before any work: the run folder, what a crash left in it, and whether --resume fits it.
  await prepareOutputDirectory(out, '--out');
  await recoverCheckpoint(ckptDir);
  await removeStaleTemps(out);
  const hasCheckpoint = (await nodeFileSystem.stat(ckptDir))?.kind === 'directory';
  if (hasCheckpoint && !o.resume) {
    throw new Error(
      `${ckptDir} already holds a checkpoint: pass --resume to continue it, or choose another --out`,
    );
  }
  if (!hasCheckpoint && o.resume) {
    throw new Error(
      `--resume: ${out} holds no checkpoint to continue; drop --resume to start a new run there`,
    );
  }

  let config: TitansConfig;
  let options: TrainOptions;
  let tokenizer: Tokenizer;
  let state: TrainerState;
  let dataSource: string;
  let record: Record<string, unknown>;
  let text: string | undefined; // read once
  if (hasCheckpoint) {
    const saved = await loadTrainingCheckpoint(ckptDir, loadOptions(o));
    checkResumeFlags(o, preset, saved, ckptDir);
    config = saved.config;
    options = resolveTrainOptions({
      ...(saved.extra.options as Partial<TrainOptions>),
      ...pick(cliTrain, ['steps', 'evalEvery', 'checkpointEvery']),
    });
    if (saved.state.step > options.steps) {
      dispose([saved.state.params, saved.state.optimizer]);
      throw new Error(
        `--steps ${options.steps}: the checkpoint in ${ckptDir} is already at step ${saved.state.step}`,
      );
    }
    dataSource = String(saved.extra.data ?? o.data ?? DEFAULT_DATA);
    tokenizer = checkpointTokenizer(saved, ckptDir);
    state = saved.state;
    record = { ...saved.extra, options };
    checkTrainingSize(config, options, o, `${ckptDir}/${CONFIG_FILE}`);
    log(`resuming ${ckptDir} at step ${state.step} of ${options.steps}`);
  } else {
    options = resolveTrainOptions({ ...preset.train, ...cliTrain });
    dataSource = o.data ?? DEFAULT_DATA;
    const spec = tokenizerSpec(o.tokenizer ?? DEFAULT_TOKENIZER);
    const modelConfig = (vocabSize: number) => resolvedModelConfig(preset, variant, vocabSize, o, options);
    modelConfig(spec.kind === 'bpe' ? spec.vocabSize : 256); // checked before the data is read
    text = (await loadText(dataSource)).text;
    if (spec.kind === 'bpe') {
      log(`training a BPE tokenizer (vocabulary ${spec.vocabSize}) on ${text.length} characters…`);
      tokenizer = trainBpe(text.slice(0, Math.floor(text.length * 0.95)), { vocabSize: spec.vocabSize });
    } else tokenizer = byteTokenizer();
    config = modelConfig(tokenizer.vocabSize);
    state = initialTrainerState(initModel(config, new Rng(options.seed)), options);
    record = {
      options,
      data: dataSource,
      preset: preset.name,
      variant,
      tokenizer: o.tokenizer ?? DEFAULT_TOKENIZER,
      set: o.set,
    };
  }
  useThreads(o.threads);
  const ids = tokenizer.encode(text ?? (await loadText(dataSource)).text);
  const data = splitTokens(ids, { validationFraction: 0.05 });
  const window = options.seqLen + 1;
  if (data.train.length < window) {
    throw new Error(
      `${dataSource}: the training split has ${data.train.length} tokens, fewer than one window of --seq-len ${options.seqLen} + 1; use more text or a shorter --seq-len`,
    );
  }
  if (options.evalEvery > 0 && data.validation.length < window) {
    throw new Error(
      `${dataSource}: the validation split (the last 5%) has ${data.validation.length} tokens, fewer than one window of ${window}; use more text, a shorter --seq-len, or --eval-every 0`,
    );
  }
  const parameters = countParameters(state.params);
  log(
    `${config.variant} · ${parameters.toLocaleString('en-US')} parameters · ${data.train.length.toLocaleString('en-US')} training tokens (${dataSource}, ${tokenizer.kind} tokenizer) · ${options.steps} steps of ${options.batchSize}×${options.seqLen}${options.accumulate > 1 ? `×${options.accumulate}` : ''} tokens → ${out}`,
  );

  const progress = new Progress({
    total: options.steps,
    start: state.step,
    label: 'train',
    sink: stderrSink(),
  });
  const signals = stopOnSignals((line) => progress.log(line));
  const started = performance.now();
  const startStep = state.step;
  let lastSaved: number | null = hasCheckpoint ? state.step : null;
  const save = async (s: TrainerState) => {
    await signals.whileSaving(async () => {
      await saveTrainingCheckpoint(ckptDir, { config, state: s, tokenizer, extra: record });
      await writeFileAtomic(join(out, 'loss.svg'), lossCurve(s, config));
    });
    lastSaved = s.step;
    progress.log(`step ${s.step}: checkpoint saved to ${ckptDir}`);
  };
  let final: TrainerState;
  let parallel: DataParallel | null = null;
  try {
    if ((o.dataParallel ?? 1) > 1) {
      parallel = startDataParallel(config, state.params, o.dataParallel);
      log(
        `data parallel: each batch shared by ${parallel.threads} threads, each with its own copy of the model`,
      );
    }
    final = await trainLanguageModel(
      config,
      data,
      options,
      state,
      {
        onStep: (r) =>
          progress.update(r.step, { loss: r.loss, lr: r.lr, 'tok/s': Math.round(r.tokensPerSecond) }),
        onEval: (step, loss) => progress.log(`step ${step}: validation loss ${loss.toFixed(4)}`),
        onBadStep: (step, reason) =>
          progress.log(`warning: step ${step}: non-finite ${reason}; this step's update was not applied`),
        checkpoint: save,
        shouldStop: () => signals.received !== null,
      },
      parallel,
    );
  } catch (e) {
    parallel?.close();
    progress.finish();
    signals.release();
    if (e instanceof TrainingDivergedError) {
      const where =
        lastSaved === null
          ? 'no checkpoint had been written yet'
          : `the last good checkpoint (step ${lastSaved}) is intact in ${ckptDir}`;
      throw new Error(
        `${e.message}; ${where}. Lower memory.thetaMax / memory.etaMax (--set) or the learning rate.`,
      );
    }
    throw e;
  }
  parallel?.close();
  progress.finish();
  const seconds = (performance.now() - started) / 1000;
  const trainLoss = recentLoss(final.history, 20);
  const lastEval = final.evals[final.evals.length - 1];
  const summary = {
    variant: config.variant,
    parameters,
    steps: final.step,
    tokensSeen: final.step * options.batchSize * options.seqLen * options.accumulate,
    trainLoss,
    validationLoss: lastEval?.loss ?? null,
    tokensPerSecond:
      ((final.step - startStep) * options.batchSize * options.seqLen * options.accumulate) / seconds,
    seconds,
    badSteps: final.badSteps.length,
  };
  await writeFileAtomic(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  dispose([final.params, final.optimizer]);
  const received = signals.received;
  if (received !== null) {
    // The handlers stay: a signal now would kill the process before its last words reach stderr.
    throw new InterruptedError(
      `${received === 'SIGINT' ? 'interrupted' : 'terminated'} (${received}) at step ${final.step} of ${options.steps}; the checkpoint is saved in ${ckptDir}: continue with --resume`,
      received === 'SIGINT' ? 130 : 143,
    );
  }
  signals.release();
  // A resumed run reports the steps it ran, not the steps the checkpoint already had.
  const ran = final.step - startStep;
  const steps =
    ran === 0
      ? `no step run (at step ${final.step})`
      : `${ran} steps${startStep > 0 ? ` (${startStep + 1}–${final.step})` : ''}`;
  console.log(
    `${config.variant}: ${steps} in ${seconds.toFixed(0)} s (${summary.tokensPerSecond.toFixed(0)} tokens/s) · train loss ${trainLoss === null ? 'n/a' : trainLoss.toFixed(4)} · validation loss ${lastEval ? lastEval.loss.toFixed(4) : 'n/a'} · non-finite steps ${summary.badSteps} · ${out}`,
  );
}

function pick<T extends object>(o: T, keys: (keyof T)[]): Partial<T> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as Partial<T>;
}

/**
 * The loss-curve picture: training loss per history record (one per step until the history is
 * full, then the mean of a run of steps), validation loss per evaluation.
 */
export function lossCurve(state: TrainerState, config: TitansConfig): string {
  return lineChartSvg(
    [
      // A record summarising several steps is drawn at their middle.
      {
        name: 'training loss',
        points: state.history.map((r) => [(r.firstStep + r.step) / 2, r.loss] as const),
      },
      { name: 'validation loss', points: state.evals.map((e) => [e.step, e.loss] as const), dashed: true },
    ],
    { title: `${config.variant}: next-token loss (nats)`, xLabel: 'step', yLabel: 'loss' },
  );
}
