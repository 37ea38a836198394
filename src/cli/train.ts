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
import { resolveConfig, type TitansConfig, type TitansConfigInput } from '../models/config.js';
import { generate } from '../models/generate.js';
import { countParameters, initModel, type ModelParams } from '../models/model.js';
import { checkModelSize, ModelTooLargeError } from '../models/resources.js';
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
import { loadPreset, type Preset } from './presets.js';

/** Defaults of the flags that --resume compares against the checkpoint (undefined = not given). */
const DEFAULT_PRESET = 'small';
const DEFAULT_DATA = 'builtin:sotu';
const DEFAULT_TOKENIZER = 'byte';

export interface TrainCommandOptions {
  preset?: string;
  variant?: string;
  data?: string;
  out?: string;
  tokenizer?: string;
  steps?: number;
  batchSize?: number;
  seqLen?: number;
  accumulate?: number;
  lr?: number;
  seed?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  threads?: number;
  set: string[];
  resume?: boolean;
  /** Load a checkpoint whose weights are not all finite (--allow-nonfinite). */
  allowNonfinite?: boolean;
  /** The memory limit in bytes (--max-memory); default 8 GiB. */
  maxMemory?: number;
}

/**
 * A command that ended because of a signal, after saving: main() prints the message and exits
 * with `exitCode` (130 for SIGINT, 143 for SIGTERM, as a shell reports a signal's death).
 *
 * @example
 * throw new InterruptedError('interrupted at step 12', 130);
 */
export class InterruptedError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'InterruptedError';
  }
}

/** Starts the wasm worker threads (all cores unless told otherwise). */
export function useThreads(threads: number | undefined): void {
  const n = threads ?? (process.env.CI ? 2 : undefined);
  if (wasmBackend && (n === undefined || n > 1)) enableWasmThreads(wasmBackend, n);
}

/** Keys that could reach an object's prototype through a dotted path. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Applies `key=value` overrides (dotted paths, JSON values, else the text itself) to a config
 * object, checked against `schema` (a complete config, e.g. the resolved defaults): every key of
 * the path must be a field there, a field that is an object there takes only an object (merged
 * field by field, so `memory={"thetaMax":0.05}` keeps the other memory settings) and a scalar
 * field takes no sub-path; `__proto__`, `constructor` and `prototype` are refused. Errors start
 * with `--set <setting>`.
 *
 * @example
 * applySettings({ variant: 'mag', memory: { heads: 2 } }, ['memory.thetaMax=0.05'], schema);
 * // { variant: 'mag', memory: { heads: 2, thetaMax: 0.05 } }
 */
export function applySettings(
  base: Record<string, unknown>,
  settings: readonly string[],
  schema: Record<string, unknown>,
): Record<string, unknown> {
  const out = structuredClone(base);
  for (const setting of settings) {
    const fail = (problem: string): never => {
      throw new Error(`--set ${setting}: ${problem}`);
    };
    const eq = setting.indexOf('=');
    if (eq < 1) fail('expected key=value, e.g. memory.thetaMax=0.05');
    const path = setting.slice(0, eq).split('.');
    const raw = setting.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    let node = out;
    let shape: unknown = schema;
    for (let i = 0; i < path.length; i++) {
      const key = path[i]!;
      const here = path.slice(0, i + 1).join('.');
      if (FORBIDDEN_KEYS.has(key)) fail(`'${key}' is not a config field`);
      if (!isRecord(shape) || !Object.hasOwn(shape, key)) {
        const known = isRecord(shape) ? Object.keys(shape).join(', ') : '';
        fail(
          i === 0 || isRecord(shape)
            ? `'${here}' is not a config field (fields here: ${known})`
            : `'${path.slice(0, i).join('.')}' is not an object`,
        );
      }
      shape = (shape as Record<string, unknown>)[key];
      if (i === path.length - 1) {
        if (isRecord(shape)) {
          if (!isRecord(value)) {
            fail(
              `'${here}' is an object of settings; set one of its fields (e.g. ${here}.${Object.keys(shape)[0]}=…) or give a JSON object`,
            );
          }
          const current = isRecord(node[key]) ? (node[key] as Record<string, unknown>) : {};
          const merged = applySettings(
            current,
            Object.entries(value as Record<string, unknown>).map(([k, v]) => `${k}=${JSON.stringify(v)}`),
            shape,
          );
          node[key] = merged;
        } else {
          if (isRecord(value)) fail(`'${here}' takes a single value, not an object`);
          node[key] = value;
        }
      } else {
        if (!isRecord(shape)) fail(`'${here}' is a single value, so '${path.join('.')}' does not exist`);
        if (!isRecord(node[key])) node[key] = {};
        node = node[key] as Record<string, unknown>;
      }
    }
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A complete config of `variant`: the shape `--set` paths are checked against. */
function configSchema(variant: string): Record<string, unknown> {
  const defaults = resolveConfig({ variant: variant as TitansConfig['variant'], vocabSize: 256 });
  return defaults as unknown as Record<string, unknown>;
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

/**
 * SIGINT and SIGTERM handlers for a training run: the first signal asks the loop to stop (it
 * saves a checkpoint after the current step); any further one only says that the save is under
 * way and will finish — the process never exits halfway through a save. `release` restores the
 * default handlers; after a signal they are kept until the process exits.
 */
function stopOnSignals(say: (line: string) => void) {
  let received: NodeJS.Signals | null = null;
  let saving = false;
  let stopped = false;
  const handler = (signal: NodeJS.Signals) => {
    if (received === null) {
      received = signal;
      say(
        `${signal}: stopping after the current step with a checkpoint (further ${signal === 'SIGINT' ? 'Ctrl-C' : 'signals'} wait for it)`,
      );
    } else {
      say(
        saving
          ? `${signal}: the checkpoint is being written; exiting as soon as it is complete`
          : stopped
            ? `${signal}: the checkpoint is saved; exiting`
            : `${signal}: already stopping; the checkpoint follows the current step`,
      );
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    get received() {
      return received;
    },
    async whileSaving(save: () => Promise<void>) {
      saving = true;
      try {
        await save();
      } finally {
        saving = false;
        if (received !== null) stopped = true;
      }
    },
    release() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * The model config of a new run: the preset's model, the variant and vocabulary, then --set,
 * validated (with the training memory estimate). Errors name --set when a setting is at fault,
 * else the preset file.
 */
function resolvedModelConfig(
  preset: Preset,
  variant: string,
  vocabSize: number,
  o: TrainCommandOptions,
  options: TrainOptions,
): TitansConfig {
  const input = applySettings({ ...preset.model, variant, vocabSize }, o.set, configSchema(variant));
  let config: TitansConfig;
  try {
    config = resolveConfig(input as unknown as TitansConfigInput, { maxBytes: Number.POSITIVE_INFINITY });
  } catch (error) {
    throw new Error(`${blame(error, o, `preset ${preset.name}`)}${(error as Error).message}`);
  }
  checkTrainingSize(config, options, o, `preset ${preset.name}`);
  return config;
}

/** The training memory estimate against --max-memory, naming the flag or file at fault. */
function checkTrainingSize(
  config: TitansConfig,
  options: TrainOptions,
  o: TrainCommandOptions,
  source: string,
) {
  try {
    checkModelSize(config, {
      ...(o.maxMemory === undefined ? {} : { maxBytes: o.maxMemory }),
      training: { batchSize: options.batchSize, seqLen: options.seqLen },
    });
  } catch (error) {
    throw new Error(`${blame(error, o, source)}${(error as Error).message}`);
  }
}

/** `--set layers=…: `, `--seq-len: ` or `<source>: ` for a config error, by the field it names. */
function blame(error: unknown, o: TrainCommandOptions, source: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const field =
    error instanceof ModelTooLargeError
      ? error.field
      : (/^config: (?:unknown field ')?([\w.]+)/.exec(message)?.[1] ?? '');
  if (field === 'batchSize' && o.batchSize !== undefined) return '--batch-size: ';
  if (field === 'seqLen' && o.seqLen !== undefined) return '--seq-len: ';
  const setting = o.set.find((s) => {
    const key = s.slice(0, Math.max(0, s.indexOf('=')));
    return key === field || field.startsWith(`${key}.`) || key.startsWith(`${field}.`);
  });
  return setting ? `--set ${setting}: ` : `${source}: `;
}

/**
 * --resume continues a run as it was: flags that would change it (model, data, tokenizer, batch,
 * learning rate, seed) must agree with the checkpoint; --steps, --eval-every and
 * --checkpoint-every may change. Every contradiction is listed in one error.
 */
function checkResumeFlags(
  o: TrainCommandOptions,
  preset: Preset,
  saved: Awaited<ReturnType<typeof loadTrainingCheckpoint>>,
  ckptDir: string,
): void {
  const problems: string[] = [];
  const extra = saved.extra;
  const savedOptions = (extra.options ?? {}) as Partial<TrainOptions>;
  if (o.preset !== undefined) {
    if (typeof extra.preset === 'string') {
      if (extra.preset !== preset.name)
        problems.push(`--preset ${o.preset} (it was trained with ${extra.preset})`);
    } else {
      // Older checkpoints do not record the preset: compare the model it gives.
      const fromPreset = resolveConfig(
        {
          ...preset.model,
          variant: saved.config.variant,
          vocabSize: saved.config.vocabSize,
        } as TitansConfigInput,
        { maxBytes: Number.POSITIVE_INFINITY },
      );
      if (!sameJson(fromPreset, saved.config))
        problems.push(`--preset ${o.preset} (its model is not the checkpoint's)`);
    }
  }
  if (o.variant !== undefined && o.variant !== saved.config.variant) {
    problems.push(`--variant ${o.variant} (it is ${saved.config.variant})`);
  }
  if (o.data !== undefined && extra.data !== undefined && o.data !== extra.data) {
    problems.push(`--data ${o.data} (it was trained on ${String(extra.data)})`);
  }
  if (o.tokenizer !== undefined) {
    const was =
      typeof extra.tokenizer === 'string'
        ? extra.tokenizer
        : saved.tokenizer?.kind === 'bpe'
          ? `bpe:${saved.tokenizer.vocabSize}`
          : 'byte';
    if (o.tokenizer !== was) problems.push(`--tokenizer ${o.tokenizer} (it uses ${was})`);
  }
  const flags: [keyof TrainOptions, string][] = [
    ['batchSize', '--batch-size'],
    ['seqLen', '--seq-len'],
    ['accumulate', '--accumulate'],
    ['lr', '--lr'],
    ['seed', '--seed'],
  ];
  for (const [key, flag] of flags) {
    const given = o[key as keyof TrainCommandOptions];
    if (given !== undefined && savedOptions[key] !== undefined && given !== savedOptions[key]) {
      problems.push(`${flag} ${given} (it used ${savedOptions[key]})`);
    }
  }
  for (const setting of o.set) {
    let changed: Record<string, unknown>;
    try {
      changed = applySettings(
        saved.config as unknown as Record<string, unknown>,
        [setting],
        configSchema(saved.config.variant),
      );
    } catch (error) {
      problems.push((error as Error).message);
      continue;
    }
    if (!sameJson(changed, saved.config)) problems.push(`--set ${setting} (the checkpoint's config differs)`);
  }
  if (problems.length > 0) {
    dispose([saved.state.params, saved.state.optimizer]);
    throw new Error(
      `--resume: ${problems.length === 1 ? 'this flag contradicts' : 'these flags contradict'} the checkpoint in ${ckptDir}: ${problems.join('; ')}. Drop ${problems.length === 1 ? 'it' : 'them'} to continue the run as it was, or start a new run with another --out`,
    );
  }
}

/** Equality of two JSON-like values (key order ignored). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]))
    );
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]))
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
  const { state } = generate(params, config, prompt, {
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
    ? streamingLoss(params, config, ids, o.seqLen)
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

/** Mean loss over the whole data read as one stream, the state carried from piece to piece. */
function streamingLoss(params: ModelParams, config: TitansConfig, ids: Int32Array, piece: number) {
  const n = ids.length - 1;
  const progress = new Progress({ total: n, label: 'eval', sink: stderrSink() });
  const stream = modelStream(params, config);
  const V = config.vocabSize;
  const sums = stream.feedPieces(ids.subarray(0, n), piece, (logits, start, len) => {
    const targets = ids.subarray(start + 1, start + len + 1);
    const lp = logits.dataSync();
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
  });
  const total = sums.reduce((a, b) => a + b, 0);
  progress.finish();
  stream.close();
  return { loss: total / n, tokens: n };
}
