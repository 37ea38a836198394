/**
 * The language-model training loop: AdamW, warm-up + cosine, clipping, gradient accumulation,
 * periodic evaluation, checkpoints through a hook, and exact resume (the data sampler's RNG, the
 * optimizer state and the step are all in `TrainerState`). Browser-safe: files, progress bars
 * and pictures are the caller's hooks (the CLI's are in src/cli/train.ts).
 *
 * A non-finite loss or gradient norm is never skipped silently: the step's update is not
 * applied, `onBadStep` reports it with the step number, and after `maxBadSteps` such steps in a
 * row training stops with a `TrainingDivergedError` (the last checkpoint written stays intact).
 *
 * The loop gives the event loop a turn between steps (`yieldToEventLoop`) and reads values back
 * only through the asynchronous `data()`, so signal handlers and timers run while it trains (a
 * Ctrl-C handler sets `shouldStop`, and the run ends with a checkpoint within one step), and it
 * runs on backends that cannot read synchronously (WebGPU).
 */

import { sampleBatch, sequentialBatches, type TokenBatch } from '../data/dataset.js';
import {
  crossEntropy,
  dispose,
  keep,
  noGrad,
  Rng,
  reshape,
  tensor,
  tensorLeaves,
  tidy,
  valueAndGrad,
} from '../engine/index.js';
import { add, div, mul } from '../engine/ops/elementwise.js';
import { Tensor } from '../engine/tensor.js';
import { mapLeavesWith, mapTensors } from '../engine/tree.js';
import type { TitansConfig } from '../models/config.js';
import { type ModelParams, modelForward, tokenTensor } from '../models/model.js';
import { globalNorm } from './clip.js';
import type { DataParallel } from './data-parallel.js';
import { appendRecord, type HistoryRecord, type StepRecord } from './history.js';
import { adamw, type OptimizerState } from './optimizer.js';
import { warmupCosine } from './schedule.js';

export type { HistoryRecord, StepRecord } from './history.js';

/** Hyper-parameters of a run; every field has a default (`DEFAULT_TRAIN_OPTIONS`). */
export interface TrainOptions {
  /** Optimizer updates in all. */
  steps: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Tokens per sequence. */
  seqLen: number;
  /** Micro-batches per update (gradient accumulation): an update sees batchSize·accumulate sequences. */
  accumulate: number;
  /** Peak learning rate, reached after the warm-up. */
  lr: number;
  /** Final learning rate of the cosine decay. */
  minLr: number;
  /** Linear warm-up steps. */
  warmupSteps: number;
  /** AdamW decoupled weight decay (matrices only). */
  weightDecay: number;
  /** AdamW β₂. */
  beta2: number;
  /** Clip the global gradient norm to this (0 = off). */
  clipNorm: number;
  /** Evaluate on the validation split every this many steps (0 = never). */
  evalEvery: number;
  /** Validation batches per evaluation. */
  evalBatches: number;
  /** Call the checkpoint hook every this many steps (and at the end). */
  checkpointEvery: number;
  /** Seeds the parameters' initialisation and the data sampler. */
  seed: number;
  /** Consecutive non-finite steps tolerated (each reported, none applied) before stopping. */
  maxBadSteps: number;
}

export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  steps: 600,
  batchSize: 16,
  seqLen: 256,
  accumulate: 1,
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 50,
  weightDecay: 0.1,
  beta2: 0.95,
  clipNorm: 1,
  evalEvery: 100,
  evalBatches: 8,
  checkpointEvery: 200,
  seed: 0,
  maxBadSteps: 5,
};

/** Fills defaults and validates, naming the first bad field. */
export function resolveTrainOptions(input: Partial<TrainOptions> = {}): TrainOptions {
  const o: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, ...input };
  if (input.lr !== undefined && input.minLr === undefined) o.minLr = input.lr / 10;
  for (const key of Object.keys(o) as (keyof TrainOptions)[]) {
    if (!(key in DEFAULT_TRAIN_OPTIONS)) throw new RangeError(`train options: unknown field '${key}'`);
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new RangeError(`train options: ${key} must be a finite number, got ${JSON.stringify(v)}`);
    }
  }
  const positive = [
    'steps',
    'batchSize',
    'seqLen',
    'accumulate',
    'evalBatches',
    'checkpointEvery',
    'maxBadSteps',
  ] as const;
  for (const key of positive) {
    if (!Number.isInteger(o[key]) || o[key] < 1)
      throw new RangeError(`train options: ${key} must be an integer ≥ 1, got ${o[key]}`);
  }
  for (const key of ['warmupSteps', 'evalEvery', 'seed'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 0)
      throw new RangeError(`train options: ${key} must be an integer ≥ 0, got ${o[key]}`);
  }
  if (!(o.lr > 0)) throw new RangeError(`train options: lr must be > 0, got ${o.lr}`);
  if (!(o.minLr >= 0 && o.minLr <= o.lr))
    throw new RangeError(`train options: minLr must be in [0, lr], got ${o.minLr}`);
  if (!(o.weightDecay >= 0))
    throw new RangeError(`train options: weightDecay must be ≥ 0, got ${o.weightDecay}`);
  if (!(o.beta2 > 0 && o.beta2 < 1))
    throw new RangeError(`train options: beta2 must be in (0, 1), got ${o.beta2}`);
  if (!(o.clipNorm >= 0)) throw new RangeError(`train options: clipNorm must be ≥ 0, got ${o.clipNorm}`);
  return o;
}

/** Everything needed to continue a run exactly. Plain data plus tensors. */
export interface TrainerState {
  /** Updates taken so far. */
  step: number;
  params: ModelParams;
  optimizer: OptimizerState<ModelParams>;
  /** The data sampler's generator state. */
  rng: number[];
  /** The updates applied, summarised in at most MAX_HISTORY_RECORDS records (history.ts). */
  history: HistoryRecord[];
  evals: { step: number; loss: number }[];
  /** Steps whose loss or gradient was not finite (reported, not applied). */
  badSteps: { step: number; reason: string }[];
}

/** Training tokens: the sampler draws windows of seqLen + 1 from `train`; evaluation reads `validation`. */
export interface TrainData {
  train: Int32Array;
  validation: Int32Array;
}

/**
 * Batches from a generator instead of a token stream (synthetic tasks): `sample` returns inputs and
 * targets (B·T each); a target of −1 is ignored by the loss (e.g. everything but the answer).
 * Evaluation averages the loss over `validation` when given.
 */
export interface BatchSource {
  sample: (rng: Rng, batch: number, seqLen: number) => TokenBatch;
  validation?: TokenBatch[];
}

export interface TrainHooks {
  /** Every applied update's own record (the stored `state.history` summarises older ones). */
  onStep?: (record: StepRecord, state: TrainerState) => void;
  onEval?: (step: number, loss: number) => void;
  /** A step whose loss or gradient norm is NaN/Inf: its update was not applied. */
  onBadStep?: (step: number, reason: string) => void;
  /** Persist `state` (every checkpointEvery steps and at the end). */
  checkpoint?: (state: TrainerState) => Promise<void>;
  /** Polled between steps; true ends the run after a final checkpoint. */
  shouldStop?: () => boolean;
}

/** Training stopped because the loss or gradients stayed NaN/Inf. */
export class TrainingDivergedError extends Error {
  constructor(
    message: string,
    readonly step: number,
  ) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}

/** A fresh run's state: initial parameters are the caller's (initModel with options.seed). */
export function initialTrainerState(params: ModelParams, options: TrainOptions): TrainerState {
  return {
    step: 0,
    params,
    optimizer: makeOptimizer(options).init(params),
    rng: new Rng(options.seed + 1).state(),
    history: [],
    evals: [],
    badSteps: [],
  };
}

/**
 * Weight decay on weight matrices and embeddings only: not on norm scales (the memory's per-head
 * `normScale` is rank 2 but a scale), conv taps, gate biases or other vectors.
 */
export function decayWeightsOnly(path: string, t: Tensor): boolean {
  return t.rank >= 2 && !/(normScale|conv[QKV])$/.test(path);
}

function makeOptimizer(o: TrainOptions) {
  return adamw({ weightDecay: o.weightDecay, beta2: o.beta2, decayMask: decayWeightsOnly });
}

/** Mean next-token cross-entropy (nats) of one batch; targets of −1 are left out. */
export function languageModelLoss(
  params: ModelParams,
  config: TitansConfig,
  inputs: Int32Array,
  targets: Int32Array,
  batch: number,
  seqLen: number,
): Tensor {
  const { logits } = modelForward(params, config, tokenTensor(inputs, batch, seqLen), null, {
    keepState: false,
  });
  const flat = reshape(logits, [batch * seqLen, config.vocabSize]);
  return crossEntropy(flat, tensor(targets, [batch * seqLen], { dtype: 'int32' }), { ignoreIndex: -1 });
}

/**
 * Gives the event loop one turn (a macrotask, not a microtask), so that signal handlers, timers
 * and I/O callbacks queued meanwhile run: `setImmediate` in Node, a zero timeout in browsers.
 *
 * @example
 * for (let step = 0; step < steps; step++) { await yieldToEventLoop(); if (stop) break; train(); }
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof globalThis.setImmediate === 'function') globalThis.setImmediate(resolve);
    else setTimeout(resolve, 0);
  });
}

/** One batch's mean loss, without a tape, read back asynchronously. */
async function batchLoss(
  params: ModelParams,
  config: TitansConfig,
  inputs: Int32Array,
  targets: Int32Array,
  rows: number,
  seqLen: number,
): Promise<number> {
  const loss = noGrad(() => tidy(() => languageModelLoss(params, config, inputs, targets, rows, seqLen)));
  const [value] = await loss.data();
  dispose(loss);
  return value!;
}

/**
 * Mean loss over up to `maxBatches` consecutive, non-overlapping windows of `ids` (each sequence
 * read from a fresh state, as in training). Returns NaN when `ids` is shorter than one window.
 * Yields to the event loop between batches.
 *
 * @example
 * const loss = await evaluateLoss(params, config, ids, 8, 256, Number.POSITIVE_INFINITY);
 */
export async function evaluateLoss(
  params: ModelParams,
  config: TitansConfig,
  ids: Int32Array,
  batch: number,
  seqLen: number,
  maxBatches: number,
  onBatch?: (windowsDone: number) => void,
): Promise<number> {
  if (Math.floor((ids.length - 1) / seqLen) < 1) return Number.NaN;
  let total = 0;
  let count = 0;
  let batches = 0;
  for (const { inputs, targets, rows } of sequentialBatches(ids, batch, seqLen)) {
    if (batches++ >= maxBatches) break;
    await yieldToEventLoop();
    total += (await batchLoss(params, config, inputs, targets, rows, seqLen)) * rows;
    count += rows;
    onBatch?.(count);
  }
  return total / count;
}

/** Mean loss over fixed batches (NaN when there are none). */
async function batchesLoss(
  params: ModelParams,
  config: TitansConfig,
  batches: TokenBatch[],
  batch: number,
  seqLen: number,
): Promise<number> {
  if (batches.length === 0) return Number.NaN;
  let total = 0;
  for (const b of batches) {
    await yieldToEventLoop();
    total += await batchLoss(params, config, b.inputs, b.targets, batch, seqLen);
  }
  return total / batches.length;
}

/**
 * Runs (or continues) training until `options.steps` updates. `state` is consumed: use the
 * returned one. Checkpoints go through `hooks.checkpoint`: every `checkpointEvery` applied steps,
 * at the last step (even when that step was non-finite and not applied: the earlier updates are
 * saved), and when `shouldStop` ends the run early. Between steps the loop yields to the event loop, so
 * a signal handler that sets `shouldStop` is seen before the next step begins.
 *
 * @example
 * const params = initModel(config, new Rng(options.seed));
 * const final = await trainLanguageModel(config, data, options, initialTrainerState(params, options), hooks);
 */
export async function trainLanguageModel(
  config: TitansConfig,
  data: TrainData | BatchSource,
  options: TrainOptions,
  start: TrainerState,
  hooks: TrainHooks = {},
  parallel: DataParallel | null = null,
): Promise<TrainerState> {
  const o = options;
  const optimizer = makeOptimizer(o);
  const schedule = warmupCosine({
    peakLr: o.lr,
    warmupSteps: Math.min(o.warmupSteps, o.steps), // a run shorter than the warm-up warms up throughout
    totalSteps: o.steps,
    minLr: o.minLr,
  });
  const lossAndGrads = valueAndGrad((p: ModelParams, inputs: Int32Array, targets: Int32Array) =>
    languageModelLoss(p, config, inputs, targets, o.batchSize, o.seqLen),
  );
  let state = start;
  const rng = new Rng(state.rng);
  let consecutiveBad = 0;
  let savedStep = start.step; // the state we began from is a checkpoint already, or the initial one
  const checkpoint = async () => {
    if (!hooks.checkpoint || state.step === savedStep) return;
    await hooks.checkpoint(state);
    savedStep = state.step;
  };
  while (state.step < o.steps) {
    await yieldToEventLoop();
    if (hooks.shouldStop?.()) break;
    const began = performance.now();
    const lr = schedule(state.step);
    // Gradients summed over micro-batches, then averaged (one update per `accumulate` batches).
    let lossSum = 0;
    let grads: ModelParams | null = null;
    for (let m = 0; m < o.accumulate; m++) {
      const { inputs, targets } =
        'sample' in data
          ? data.sample(rng, o.batchSize, o.seqLen)
          : sampleBatch(data.train, o.batchSize, o.seqLen, rng);
      let micro: { loss: number; grads: ModelParams };
      if (parallel) {
        micro = await parallel.lossAndGrads(state.params, inputs, targets, o.batchSize, o.seqLen);
      } else {
        const { value, grads: g } = lossAndGrads(state.params, inputs, targets); // tidies its intermediates
        micro = { loss: (await value.data())[0]!, grads: g };
        dispose(value);
      }
      if (grads) {
        const sum = grads;
        grads = tidy(() => {
          const total = mapLeavesWith(sum, [micro.grads], (a, [b]) =>
            a instanceof Tensor ? add(a, b as Tensor) : a,
          ) as ModelParams;
          for (const t of tensorLeaves(total)) keep(t);
          return total;
        });
        dispose([sum, micro.grads]);
      } else grads = micro.grads;
      lossSum += micro.loss;
    }
    const averaged = tidy(() =>
      o.accumulate === 1 ? grads! : (mapTensors(grads!, (g) => div(g, o.accumulate)) as ModelParams),
    );
    if (averaged !== grads) dispose(grads);
    const loss = lossSum / o.accumulate;
    const norm = await globalNorm(averaged);
    const step = state.step + 1;
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      dispose(averaged);
      const reason = `loss ${loss}, gradient norm ${norm}`;
      consecutiveBad++;
      hooks.onBadStep?.(step, reason);
      // The batch is consumed and the step counted, so a resumed run sees the same data.
      state = { ...state, step, rng: rng.state(), badSteps: [...state.badSteps, { step, reason }] };
      if (consecutiveBad >= o.maxBadSteps) {
        throw new TrainingDivergedError(
          `training stopped at step ${step}: ${consecutiveBad} consecutive steps with a non-finite loss or gradient (${reason}); no update was applied on those steps, and no checkpoint is written from them`,
          step,
        );
      }
    } else {
      consecutiveBad = 0;
      const scale = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1;
      const updated = tidy(() => {
        const clipped = scale === 1 ? averaged : (mapTensors(averaged, (g) => mul(g, scale)) as ModelParams);
        const next = optimizer.update(state.params, clipped, state.optimizer, lr);
        for (const t of tensorLeaves(next)) keep(t);
        return next;
      });
      dispose(averaged);
      const seconds = (performance.now() - began) / 1000;
      const record: StepRecord = {
        step,
        loss,
        lr,
        gradNorm: norm,
        tokensPerSecond: (o.batchSize * o.seqLen * o.accumulate) / seconds,
      };
      state = {
        ...state,
        step,
        params: updated.params,
        optimizer: updated.state,
        rng: rng.state(),
        history: appendRecord(state.history, record),
      };
      hooks.onStep?.(record, state);
      if (o.evalEvery > 0 && (step % o.evalEvery === 0 || step === o.steps)) {
        const evalLoss =
          'sample' in data
            ? await batchesLoss(state.params, config, data.validation ?? [], o.batchSize, o.seqLen)
            : await evaluateLoss(state.params, config, data.validation, o.batchSize, o.seqLen, o.evalBatches);
        state = { ...state, evals: [...state.evals, { step, loss: evalLoss }] };
        hooks.onEval?.(step, evalLoss);
      }
    }
    // The last step is saved even when it was non-finite: the updates before it must not be lost.
    const applied = state.history[state.history.length - 1]?.step === step;
    if (step === o.steps || (applied && step % o.checkpointEvery === 0)) await checkpoint();
  }
  await checkpoint(); // stopped early: save where it stopped
  return state;
}
