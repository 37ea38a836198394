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
  const config = smallConfig(variant);
  let params = initModel(config, new Rng(0));
  const optimizer = adamw({ weightDecay: 0.1, beta2: 0.95 });
  let state = optimizer.init(params);
  const rng = new Rng(1);
  const lossAndGrads = valueAndGrad((p: typeof params, inputs: Int32Array, targets: Int32Array) =>
    languageModelLoss(p, config, inputs, targets, batch, seq),
  );
  return {
    step() {
      const inputs = Int32Array.from({ length: batch * seq }, () => rng.int(256));
      const targets = Int32Array.from({ length: batch * seq }, () => rng.int(256));
      const next = tidy(() => {
        const { grads } = lossAndGrads(params, inputs, targets);
        return optimizer.update(params, grads, state, 3e-3);
      });
      params = next.params;
      state = next.state;
    },
    parameters: countParameters(params),
    dispose: () => dispose([params, state]),
  };
}

/** Tokens/s of a full training step (batch × seq random bytes) of the small preset's `variant`. */
export function benchTrainStep(
  variant: string,
  batch: number,
  seq: number,
  report: (r: BenchRow) => void,
): void {
  const run = trainSteps(variant, batch, seq);
  const seconds = time(run.step, 5, 2);
  report({
    bench: `train step ${variant}`,
    shape: `small preset, ${run.parameters} params, ${batch}×${seq}`,
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
