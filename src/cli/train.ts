/**
 * `titans train`, `titans generate` and `titans eval ppl`: the Node wiring around the training
 * loop (src/train/trainer.ts) — data and tokenizer, checkpoints, a progress bar, the loss curve.
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
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { enableWasmThreads } from '../backends/wasm/threads-node.js';
import { loadText } from '../data/corpus.js';
import { splitTokens } from '../data/dataset.js';
import { dispose, Rng } from '../engine/index.js';
import { wasmBackend } from '../index.js';
import { removeStaleTemps, writeFileAtomic } from '../io/atomic.js';
import { CONFIG_FILE, recoverCheckpoint } from '../io/checkpoint.js';
import { nodeFileSystem, prepareOutputDirectory } from '../io/fs.js';
import { MANIFEST_FILE } from '../io/manifest.js';
import {
  checkpointTokenizer,
  loadModelCheckpoint,
  loadTrainingCheckpoint,
  saveTrainingCheckpoint,
} from '../io/model-checkpoint.js';
import type { TitansConfig } from '../models/config.js';
import { generate } from '../models/generate.js';
import { countParameters, initModel, type ModelParams } from '../models/model.js';
import { modelStream } from '../models/stream.js';
import { stderrSink } from '../report/node-sink.js';
import { lineChartSvg } from '../report/plot.js';
import { Progress } from '../report/progress.js';
import { trainBpe } from '../tokenizer/bpe.js';
import { byteTokenizer, type Tokenizer } from '../tokenizer/tokenizer.js';
import {
  evaluateLoss,
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

/**
 * The checkpoint directory inside a run folder, or the folder itself when it is one — after
 * recovering an interrupted save at either place, so a checkpoint caught between its renames is
 * found (and put back) rather than reported missing.
 *
 * @example
 * await checkpointDir('runs/mag'); // 'runs/mag/checkpoint'
 */
export async function checkpointDir(path: string): Promise<string> {
  await recoverCheckpoint(path);
  if (!existsSync(path))
    throw new Error(`${path}: not found (expected a run folder or a checkpoint directory)`);
  if (existsSync(join(path, CONFIG_FILE)) || existsSync(join(path, MANIFEST_FILE))) return path;
  const inside = join(path, 'checkpoint');
  await recoverCheckpoint(inside);
  return inside;
}

/** The loader options the CLI flags give. */
function loadOptions(o: { allowNonfinite?: boolean; maxMemory?: number }) {
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
    const { text } = await loadText(dataSource);
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
  const { text } = await loadText(dataSource);
  const ids = tokenizer.encode(text);
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

  const progress = new Progress({ total: options.steps, label: 'train', sink: stderrSink() });
  progress.update(state.step);
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
  try {
    final = await trainLanguageModel(config, data, options, state, {
      onStep: (r) =>
        progress.update(r.step, { loss: r.loss, lr: r.lr, 'tok/s': Math.round(r.tokensPerSecond) }),
      onEval: (step, loss) => progress.log(`step ${step}: validation loss ${loss.toFixed(4)}`),
      onBadStep: (step, reason) =>
        progress.log(`warning: step ${step}: non-finite ${reason}; this step's update was not applied`),
      checkpoint: save,
      shouldStop: () => signals.received !== null,
    });
  } catch (e) {
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
  progress.finish();
  const seconds = (performance.now() - started) / 1000;
  const recent = final.history.slice(-20);
  const trainLoss = recent.length > 0 ? recent.reduce((a, r) => a + r.loss, 0) / recent.length : null;
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
  console.log(
    `${config.variant}: ${final.step} steps in ${seconds.toFixed(0)} s (${summary.tokensPerSecond.toFixed(0)} tokens/s) · train loss ${trainLoss === null ? 'n/a' : trainLoss.toFixed(4)} · validation loss ${lastEval ? lastEval.loss.toFixed(4) : 'n/a'} · non-finite steps ${summary.badSteps} · ${out}`,
  );
}

function pick<T extends object>(o: T, keys: (keyof T)[]): Partial<T> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as Partial<T>;
}

/** The loss-curve picture: training loss per step, validation loss per evaluation. */
export function lossCurve(state: TrainerState, config: TitansConfig): string {
  return lineChartSvg(
    [
      { name: 'training loss', points: state.history.map((r) => [r.step, r.loss] as const) },
      { name: 'validation loss', points: state.evals.map((e) => [e.step, e.loss] as const), dashed: true },
    ],
    { title: `${config.variant}: next-token loss (nats)`, xLabel: 'step', yLabel: 'loss' },
  );
}

export async function generateCommand(o: {
  checkpoint: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  seed: number;
  threads?: number;
  allowNonfinite?: boolean;
  maxMemory?: number;
}): Promise<void> {
  const dir = await checkpointDir(o.checkpoint);
  const checkpoint = await loadModelCheckpoint(dir, loadOptions(o));
  const { config, params } = checkpoint;
  const tok = checkpointTokenizer(checkpoint, dir);
  useThreads(o.threads);
  const prompt = tok.encode(o.prompt);
  if (prompt.length === 0) throw new Error('--prompt must not be empty');
  process.stdout.write(o.prompt);
  const produced: number[] = [];
  let printed = '';
  const started = performance.now();
  const { state } = await generate(params, config, prompt, {
    maxTokens: o.maxTokens,
    temperature: o.temperature,
    topK: o.topK,
    rng: new Rng(o.seed),
    onToken: (t) => {
      produced.push(t);
      const text = tok.decode(produced);
      // Print only what is settled: an incomplete UTF-8 sequence at the end decodes as U+FFFD.
      const settled = text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
      if (settled.startsWith(printed)) {
        process.stdout.write(settled.slice(printed.length));
        printed = settled;
      }
    },
  });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write('\n');
  process.stderr.write(
    `${produced.length} tokens in ${seconds.toFixed(2)} s (${(produced.length / seconds).toFixed(1)} tokens/s, prompt included in the time)\n`,
  );
  dispose([params, state]);
}

export async function evalPplCommand(o: {
  checkpoint: string;
  data: string;
  seqLen: number;
  batchSize: number;
  maxTokens?: number;
  stream?: boolean;
  threads?: number;
  allowNonfinite?: boolean;
  maxMemory?: number;
}): Promise<void> {
  const dir = await checkpointDir(o.checkpoint);
  const checkpoint = await loadModelCheckpoint(dir, loadOptions(o));
  const { config, params } = checkpoint;
  const tok = checkpointTokenizer(checkpoint, dir);
  const { text, name } = await loadText(o.data);
  let ids = tok.encode(text);
  if (o.maxTokens !== undefined && ids.length > o.maxTokens + 1) ids = ids.subarray(0, o.maxTokens + 1);
  if (ids.length < 2) {
    dispose(params);
    throw new Error(
      `${o.data}: ${ids.length} token${ids.length === 1 ? '' : 's'} of text; scoring needs at least 2 (a token and the one that follows it)`,
    );
  }
  useThreads(o.threads);
  const bytes = new TextEncoder().encode(tok.decode(ids.subarray(1))).length;
  const { loss, tokens } = o.stream
    ? await streamingLoss(params, config, ids, o.seqLen)
    : await windowLoss(params, config, ids, o.batchSize, o.seqLen);
  dispose(params);
  if (!Number.isFinite(loss)) {
    throw new Error(
      `the loss on ${name} is ${loss}: the model's outputs are not finite${o.allowNonfinite ? ' (its weights were loaded with --allow-nonfinite)' : ''}, so there is no perplexity to report`,
    );
  }
  const bitsPerByte = (loss * tokens) / Math.LN2 / Math.max(1, bytes);
  console.log(
    `${name}: ${tokens} tokens · loss ${loss.toFixed(4)} nats/token · perplexity ${Math.exp(loss).toFixed(3)} · ${bitsPerByte.toFixed(4)} bits/byte (${o.stream ? 'one stream, state carried' : `independent windows of ${o.seqLen}`})`,
  );
}

/** Mean loss over non-overlapping windows, each from a fresh state (as in training). */
async function windowLoss(
  params: ModelParams,
  config: TitansConfig,
  ids: Int32Array,
  batch: number,
  seqLen: number,
) {
  const windows = Math.floor((ids.length - 1) / seqLen);
  if (windows < 1)
    throw new Error(
      `the data has ${ids.length} tokens, fewer than one window of --seq-len ${seqLen} + 1; use a shorter --seq-len or --stream`,
    );
  const progress = new Progress({ total: windows, label: 'eval', sink: stderrSink() });
  const loss = await evaluateLoss(params, config, ids, batch, seqLen, Number.POSITIVE_INFINITY, (done) =>
    progress.update(done),
  );
  progress.finish();
  return { loss, tokens: windows * seqLen };
}

/**
 * Mean loss over the whole data read as one stream, the state carried from piece to piece (each
 * piece's logits read back once).
 */
async function streamingLoss(params: ModelParams, config: TitansConfig, ids: Int32Array, piece: number) {
  const n = ids.length - 1;
  const progress = new Progress({ total: n, label: 'eval', sink: stderrSink() });
  const stream = modelStream(params, config);
  const V = config.vocabSize;
  const sums = await stream.feedPieces(
    ids.subarray(0, n),
    piece,
    (logits) => logits,
    (lp, start, len) => {
      const targets = ids.subarray(start + 1, start + len + 1);
      let sum = 0;
      for (let t = 0; t < len; t++) {
        let max = Number.NEGATIVE_INFINITY;
        for (let v = 0; v < V; v++) max = Math.max(max, lp[t * V + v]!);
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(lp[t * V + v]! - max);
        sum += max + Math.log(z) - lp[t * V + targets[t]!]!;
      }
      progress.update(start + len);
      return sum;
    },
  );
  const total = sums.reduce((a, b) => a + b, 0);
  progress.finish();
  stream.close();
  return { loss: total / n, tokens: n };
}
