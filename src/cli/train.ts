/**
 * `titans train`, `titans generate` and `titans eval ppl`: the Node wiring around the training
 * loop (src/train/trainer.ts) — data and tokenizer, checkpoints, a progress bar, the loss curve.
 *
 * A run folder (`--out`) holds:
 *   checkpoint/   config.json, model.safetensors, tokenizer.json, optimizer.safetensors, trainer.json
 *   loss.svg      training and validation loss, redrawn at every checkpoint
 *   summary.json  parameters, steps, losses and throughput at the end
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { enableWasmThreads } from '../backends/wasm/threads-node.js';
import { loadText } from '../data/corpus.js';
import { splitTokens } from '../data/dataset.js';
import { dispose, Rng } from '../engine/index.js';
import { wasmBackend } from '../index.js';
import { writeFileAtomic } from '../io/atomic.js';
import {
  loadModelCheckpoint,
  loadTrainingCheckpoint,
  saveTrainingCheckpoint,
} from '../io/model-checkpoint.js';
import { resolveConfig, type TitansConfig, type TitansConfigInput } from '../models/config.js';
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

export interface TrainCommandOptions {
  preset: string;
  variant?: string;
  data: string;
  out?: string;
  tokenizer: string;
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
}

/** Starts the wasm worker threads (all cores unless told otherwise). */
export function useThreads(threads: number | undefined): void {
  const n = threads ?? (process.env.CI ? 2 : undefined);
  if (wasmBackend && (n === undefined || n > 1)) enableWasmThreads(wasmBackend, n);
}

/** Applies `key=value` overrides (dotted paths, JSON values) to a config object. */
export function applySettings(
  base: Record<string, unknown>,
  settings: readonly string[],
): Record<string, unknown> {
  const out = structuredClone(base);
  for (const setting of settings) {
    const eq = setting.indexOf('=');
    if (eq < 1) throw new Error(`--set expects key=value, got '${setting}'`);
    const path = setting.slice(0, eq).split('.');
    const raw = setting.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    let node = out;
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return out;
}

/** Parses `byte` or `bpe:N`. */
function tokenizerSpec(spec: string): { kind: 'byte' } | { kind: 'bpe'; vocabSize: number } {
  if (spec === 'byte') return { kind: 'byte' };
  const m = /^bpe:(\d+)$/.exec(spec);
  if (m) return { kind: 'bpe', vocabSize: Number(m[1]) };
  throw new Error(`--tokenizer must be 'byte' or 'bpe:N' (e.g. bpe:1024), got '${spec}'`);
}

/** The checkpoint directory inside a run folder, or the folder itself when it is one. */
export function checkpointDir(path: string): string {
  if (existsSync(join(path, 'config.json'))) return path;
  return join(path, 'checkpoint');
}

export async function trainCommand(o: TrainCommandOptions): Promise<void> {
  useThreads(o.threads);
  const preset = await loadPreset(o.preset);
  const variant = o.variant ?? String(preset.model.variant ?? 'mag');
  const out = o.out ?? join('runs', `${preset.name.replace(/[^\w-]/g, '_')}-${variant}`);
  const ckptDir = join(out, 'checkpoint');
  const log = (line: string) => process.stderr.write(`${line}\n`);
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

  let config: TitansConfig;
  let options: TrainOptions;
  let tokenizer: Tokenizer;
  let state: TrainerState;
  let dataSource = o.data;
  if (existsSync(join(ckptDir, 'config.json'))) {
    if (!o.resume) {
      throw new Error(
        `${ckptDir} already holds a checkpoint: pass --resume to continue it, or choose another --out`,
      );
    }
    const saved = await loadTrainingCheckpoint(ckptDir);
    config = saved.config;
    options = resolveTrainOptions({
      ...(saved.extra.options as Partial<TrainOptions>),
      ...pick(cliTrain, ['steps']),
    });
    dataSource = String(saved.extra.data ?? o.data);
    tokenizer = saved.tokenizer ?? byteTokenizer();
    state = saved.state;
    log(`resuming ${ckptDir} at step ${state.step} of ${options.steps}`);
  } else {
    options = resolveTrainOptions({ ...preset.train, ...cliTrain });
    const spec = tokenizerSpec(o.tokenizer);
    const { text } = await loadText(dataSource);
    if (spec.kind === 'bpe') {
      log(`training a BPE tokenizer (vocabulary ${spec.vocabSize}) on ${text.length} characters…`);
      tokenizer = trainBpe(text.slice(0, Math.floor(text.length * 0.95)), { vocabSize: spec.vocabSize });
    } else tokenizer = byteTokenizer();
    const modelInput = applySettings(
      { ...preset.model, variant, vocabSize: tokenizer.vocabSize },
      o.set,
    ) as unknown as TitansConfigInput;
    config = resolveConfig(modelInput);
    state = initialTrainerState(initModel(config, new Rng(options.seed)), options);
  }
  const { text } = await loadText(dataSource);
  const ids = tokenizer.encode(text);
  const data = splitTokens(ids, { validationFraction: 0.05 });
  const parameters = countParameters(state.params);
  log(
    `${config.variant} · ${parameters.toLocaleString('en-US')} parameters · ${data.train.length.toLocaleString('en-US')} training tokens (${dataSource}, ${tokenizer.kind} tokenizer) · ${options.steps} steps of ${options.batchSize}×${options.seqLen}${options.accumulate > 1 ? `×${options.accumulate}` : ''} tokens → ${out}`,
  );

  const progress = new Progress({ total: options.steps, label: 'train', sink: stderrSink() });
  progress.update(state.step);
  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
    progress.log('interrupted: saving a checkpoint before stopping (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSignal);
  const started = performance.now();
  const startStep = state.step;
  let lastSaved: number | null = o.resume ? state.step : null;
  const save = async (s: TrainerState) => {
    await saveTrainingCheckpoint(ckptDir, {
      config,
      state: s,
      tokenizer,
      extra: { options, data: dataSource },
    });
    await writeFileAtomic(join(out, 'loss.svg'), lossCurve(s, config));
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
      shouldStop: () => stop,
    });
  } catch (e) {
    progress.finish();
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
  } finally {
    process.off('SIGINT', onSignal);
  }
  progress.finish();
  const seconds = (performance.now() - started) / 1000;
  const recent = final.history.slice(-20);
  const trainLoss = recent.reduce((a, r) => a + r.loss, 0) / Math.max(1, recent.length);
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
  console.log(
    `${config.variant}: ${final.step} steps in ${seconds.toFixed(0)} s (${summary.tokensPerSecond.toFixed(0)} tokens/s) · train loss ${trainLoss.toFixed(4)} · validation loss ${lastEval ? lastEval.loss.toFixed(4) : 'n/a'} · non-finite steps ${summary.badSteps} · ${out}`,
  );
  dispose([final.params, final.optimizer]);
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
}): Promise<void> {
  useThreads(o.threads);
  const { config, params, tokenizer } = await loadModelCheckpoint(checkpointDir(o.checkpoint));
  const tok = tokenizer ?? byteTokenizer();
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
}): Promise<void> {
  useThreads(o.threads);
  const { config, params, tokenizer } = await loadModelCheckpoint(checkpointDir(o.checkpoint));
  const tok = tokenizer ?? byteTokenizer();
  const { text, name } = await loadText(o.data);
  let ids = tok.encode(text);
  if (o.maxTokens !== undefined && ids.length > o.maxTokens + 1) ids = ids.subarray(0, o.maxTokens + 1);
  const bytes = new TextEncoder().encode(tok.decode(ids.subarray(1))).length;
  const { loss, tokens } = o.stream
    ? await streamingLoss(params, config, ids, o.seqLen)
    : windowLoss(params, config, ids, o.batchSize, o.seqLen);
  const bitsPerByte = (loss * tokens) / Math.LN2 / Math.max(1, bytes);
  console.log(
    `${name}: ${tokens} tokens · loss ${loss.toFixed(4)} nats/token · perplexity ${Math.exp(loss).toFixed(3)} · ${bitsPerByte.toFixed(4)} bits/byte (${o.stream ? 'one stream, state carried' : `independent windows of ${o.seqLen}`})`,
  );
  dispose(params);
}

/** Mean loss over non-overlapping windows, each from a fresh state (as in training). */
function windowLoss(
  params: ModelParams,
  config: TitansConfig,
  ids: Int32Array,
  batch: number,
  seqLen: number,
) {
  const windows = Math.floor((ids.length - 1) / seqLen);
  if (windows < 1)
    throw new Error(`the data has ${ids.length} tokens, fewer than one window of ${seqLen + 1}`);
  const progress = new Progress({ total: windows, label: 'eval', sink: stderrSink() });
  const loss = evaluateLoss(params, config, ids, batch, seqLen, Number.POSITIVE_INFINITY, (done) =>
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
