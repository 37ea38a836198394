/**
 * Model-level benchmarks for `npm run bench` (bench/run.ts): a full training step of the small
 * preset (forward, cross-entropy, backward, AdamW) and token-by-token generation. Streams in
 * pieces run in a fresh process each (bench/fresh.ts), so their resident memory is their own.
 */
import { readFileSync } from 'node:fs';
import {
  adamw,
  countParameters,
  dispose,
  generate,
  initModel,
  Rng,
  resolveConfig,
  type TitansConfig,
  tensorLeaves,
  tidy,
  valueAndGrad,
} from '../src/index.js';
import type { ModelParams } from '../src/models/model.js';
import { startDataParallel } from '../src/node.js';
import { languageModelLoss } from '../src/train/trainer.js';

export interface BenchRow {
  bench: string;
  shape: string;
  backend: string;
  value: number;
  unit: string;
  torch?: number;
}

/** The small preset's model config for a variant (byte vocabulary). */
export function smallConfig(variant: string): TitansConfig {
  const preset = JSON.parse(readFileSync(new URL('../../presets/small.json', import.meta.url), 'utf8'));
  return resolveConfig({ ...preset.model, variant, vocabSize: 256 });
}

/** Median seconds of `runs` timed calls after `warmup` untimed ones (bench/run.ts times with it too). */
export function time(fn: () => void, runs: number, warmup: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/** `time` awaiting each call (a function returning a promise, or not). */
async function timeAsync(fn: () => unknown, runs: number, warmup: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

function median(times: number[]): number {
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/**
 * Training steps of the small preset's `variant` on batch × seq random bytes (forward,
 * cross-entropy, backward, AdamW at lr 3e-3): `step` runs one, `dispose` frees the model and the
 * optimizer state. bench/profile.ts profiles the same steps.
 */
export function trainSteps(
  variant: string,
  batch: number,
  seq: number,
): { step: () => void; parameters: number; dispose: () => void } {
  const run = trainRun(variant);
  const lossAndGrads = valueAndGrad((p: ModelParams, inputs: Int32Array, targets: Int32Array) =>
    languageModelLoss(p, run.config, inputs, targets, batch, seq),
  );
  return {
    step() {
      const { inputs, targets } = run.batch(batch, seq);
      run.update(tidy(() => lossAndGrads(run.params(), inputs, targets).grads));
    },
    parameters: countParameters(run.params()),
    dispose: run.dispose,
  };
}

/**
 * The same steps with each batch shared by rows between `threads` threads, each with its own copy
 * of the model (src/train/data-parallel.ts): what `titans train --data-parallel` runs.
 */
export function parallelTrainSteps(
  variant: string,
  batch: number,
  seq: number,
  threads: number,
): { step: () => Promise<void>; parameters: number; dispose: () => void } {
  const run = trainRun(variant);
  const parallel = startDataParallel(run.config, run.params(), threads);
  return {
    async step() {
      const { inputs, targets } = run.batch(batch, seq);
      run.update((await parallel.lossAndGrads(run.params(), inputs, targets, batch, seq)).grads);
    },
    parameters: countParameters(run.params()),
    dispose: () => {
      parallel.close();
      run.dispose();
    },
  };
}

/** The small preset's model, AdamW (lr 3e-3) and random byte batches: what both step kinds share. */
function trainRun(variant: string) {
  const config = smallConfig(variant);
  let params: ModelParams = initModel(config, new Rng(0));
  const optimizer = adamw({ weightDecay: 0.1, beta2: 0.95 });
  let state = optimizer.init(params);
  const rng = new Rng(1);
  return {
    config,
    params: () => params,
    batch(rows: number, seq: number) {
      const inputs = Int32Array.from({ length: rows * seq }, () => rng.int(256));
      const targets = Int32Array.from({ length: rows * seq }, () => rng.int(256));
      return { inputs, targets };
    },
    /** Applies the gradients and frees them (the update frees the parameters and moments it replaces). */
    update(grads: ModelParams) {
      const next = tidy(() => optimizer.update(params, grads, state, 3e-3));
      dispose(grads);
      params = next.params;
      state = next.state;
    },
    dispose: () => dispose([params, state]),
  };
}

/**
 * Timed training steps per row (the median is reported) and untimed ones before them (the workers'
 * code warms up too). Steps of 80–400 ms on a shared 2-core host vary by ±10 %; 9 keep the median
 * steady where 5 did not.
 */
export const TRAIN_RUNS = 9;
export const TRAIN_WARMUP = 3;

/**
 * Tokens/s of a full training step (batch × seq random bytes) of the small preset's `variant`:
 * each kernel split across the wasm threads, or with `threads` > 1 the batch shared by rows between
 * that many threads (`parallelTrainSteps`; the row `train step <variant> data-parallel`).
 */
export async function benchTrainStep(
  variant: string,
  batch: number,
  seq: number,
  report: (r: BenchRow) => void,
  threads = 1,
): Promise<void> {
  const parallel = threads > 1;
  const run = parallel ? parallelTrainSteps(variant, batch, seq, threads) : trainSteps(variant, batch, seq);
  const seconds = await timeAsync(run.step, TRAIN_RUNS, TRAIN_WARMUP);
  report({
    bench: `train step ${variant}${parallel ? ' data-parallel' : ''}`,
    shape: `small preset, ${run.parameters} params, ${batch}×${seq}${parallel ? `, ${threads} threads by rows` : ''}`,
    backend: 'wasm',
    value: (batch * seq) / seconds,
    unit: 'tokens/s',
  });
  run.dispose();
}

/** Tokens/s of token-by-token generation (greedy) after a 64-token prompt, small preset. */
export async function benchGeneration(variant: string, report: (r: BenchRow) => void): Promise<void> {
  const config = smallConfig(variant);
  const params = initModel(config, new Rng(0));
  const rng = new Rng(2);
  const prompt = Array.from({ length: 64 }, () => rng.int(256));
  const decode = 512;
  // warm-up: long enough for V8 to tier the decoding kernels up from its baseline compiler
  dispose(tensorLeaves((await generate(params, config, prompt, { maxTokens: 256, temperature: 0 })).state));
  const t0 = performance.now();
  const out = await generate(params, config, prompt, { maxTokens: decode, temperature: 0 });
  const seconds = (performance.now() - t0) / 1000;
  dispose(tensorLeaves(out.state));
  report({
    bench: `stream ${variant} token-by-token`,
    shape: `small preset, 64-token prompt + ${decode} generated`,
    backend: 'wasm',
    value: (64 + decode) / seconds,
    unit: 'tokens/s',
  });
  dispose(params);
}
