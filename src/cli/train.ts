/**
 * `titans train`: the Node wiring around the training loop (src/train/trainer.ts) — data and
 * tokenizer, checkpoints, a progress bar, the loss curve. (`generate` and `eval ppl`: generate.ts.)
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
import { loadTrainingCheckpoint, saveTrainingCheckpoint } from '../io/model-checkpoint.js';
import { resolveConfig, type TitansConfig, type TitansConfigInput } from '../models/config.js';
import { countParameters, initModel } from '../models/model.js';
import { stderrSink } from '../report/node-sink.js';
import { lineChartSvg } from '../report/plot.js';
import { Progress } from '../report/progress.js';
import { trainBpe } from '../tokenizer/bpe.js';
import { byteTokenizer, type Tokenizer } from '../tokenizer/tokenizer.js';
import {
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
  let text: string | undefined;
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
    text = (await loadText(dataSource)).text;
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
  const ids = tokenizer.encode(text ?? (await loadText(dataSource)).text);
  const data = splitTokens(ids, { validationFraction: 0.05 });
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
  // A resumed run reports the steps it ran, not the steps the checkpoint already had.
  const ran = final.step - startStep;
  const steps =
    ran === 0
      ? `no step run (at step ${final.step})`
      : `${ran} steps${startStep > 0 ? ` (${startStep + 1}–${final.step})` : ''}`;
  console.log(
    `${config.variant}: ${steps} in ${seconds.toFixed(0)} s (${summary.tokensPerSecond.toFixed(0)} tokens/s) · train loss ${trainLoss.toFixed(4)} · validation loss ${lastEval ? lastEval.loss.toFixed(4) : 'n/a'} · non-finite steps ${summary.badSteps} · ${out}`,
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
