/**
 * Model-level benchmarks for `npm run bench` (bench/run.ts): a full training step of the small
 * preset (forward, cross-entropy, backward, AdamW), and streaming inference — token by token and
 * in pieces — with the resident memory after 64K tokens and after the whole stream (2M default).
 */
import { readFileSync } from 'node:fs';
import {
  adamw,
  countParameters,
  dispose,
  generate,
  initModel,
  type ModelState,
  memory,
  modelForward,
  noGrad,
  Rng,
  releaseState,
  resolveConfig,
  stateBytes,
  type TitansConfig,
  tensorLeaves,
  tidy,
  tokenTensor,
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

/** Tokens/s of a full training step (batch × seq random bytes) of the small preset's `variant`. */
export function benchTrainStep(
  variant: string,
  batch: number,
  seq: number,
  report: (r: BenchRow) => void,
): void {
  const config = smallConfig(variant);
  let params = initModel(config, new Rng(0));
  const optimizer = adamw({ weightDecay: 0.1, beta2: 0.95 });
  let state = optimizer.init(params);
  const rng = new Rng(1);
  const lossAndGrads = valueAndGrad((p: typeof params, inputs: Int32Array, targets: Int32Array) =>
    languageModelLoss(p, config, inputs, targets, batch, seq),
  );
  const step = () => {
    const inputs = Int32Array.from({ length: batch * seq }, () => rng.int(256));
    const targets = Int32Array.from({ length: batch * seq }, () => rng.int(256));
    const next = tidy(() => {
      const { grads } = lossAndGrads(params, inputs, targets);
      return optimizer.update(params, grads, state, 3e-3);
    });
    params = next.params;
    state = next.state;
  };
  const seconds = time(step, 5, 2);
  report({
    bench: `train step ${variant}`,
    shape: `small preset, ${countParameters(params)} params, ${batch}×${seq}`,
    backend: 'wasm',
    value: (batch * seq) / seconds,
    unit: 'tokens/s',
  });
  dispose([params, state]);
}

/**
 * Streaming inference of the small preset's `variant`: token-by-token generation, then a stream of
 * `total` tokens fed in pieces of `piece`, with resident memory (RSS), the engine's live bytes and
 * the model state's bytes after 64K tokens and at the end.
 */
export function benchStreaming(
  variant: string,
  total: number,
  piece: number,
  report: (r: BenchRow) => void,
): void {
  const config = smallConfig(variant);
  const params = initModel(config, new Rng(0));
  const rng = new Rng(2);
  const prompt = Array.from({ length: 64 }, () => rng.int(256));
  const decode = 256;
  generate(params, config, prompt, { maxTokens: 16, temperature: 0 }); // warm-up
  const t0 = performance.now();
  const out = generate(params, config, prompt, { maxTokens: decode, temperature: 0 });
  const seconds = (performance.now() - t0) / 1000;
  dispose(tensorLeaves(out.state));
  report({
    bench: `stream ${variant} token-by-token`,
    shape: `small preset, 64-token prompt + ${decode} generated`,
    backend: 'wasm',
    value: (64 + decode) / seconds,
    unit: 'tokens/s',
  });

  let state: ModelState | null = null;
  const marks = new Map<number, { rss: number; live: number; state: number }>();
  const mark = (n: number) => {
    (globalThis as { gc?: () => void }).gc?.();
    marks.set(n, { rss: process.memoryUsage().rss, live: memory().bytes, state: stateBytes(state!) });
  };
  const started = performance.now();
  let done = 0;
  let lastLog = started;
  // Tokens/s over the first and the last tenth of the stream: flat when nothing decays into
  // slow arithmetic (denormals) and nothing grows.
  const tenth = Math.max(piece, Math.floor(total / 10));
  const tenths: { first?: number; lastStart?: number; lastFrom?: number } = {};
  while (done < total) {
    if (tenths.lastStart === undefined && done >= total - tenth) {
      tenths.lastStart = performance.now();
      tenths.lastFrom = done;
    }
    const n = Math.min(piece, total - done);
    const ids = Array.from({ length: n }, () => rng.int(256));
    const next: ModelState = noGrad(() =>
      tidy(() => {
        const r = modelForward(params, config, tokenTensor(ids, 1, n), state);
        r.logits.dataSync(); // the logits are computed and read, as a consumer would
        return r.state!;
      }),
    );
    if (state) releaseState(state, next);
    state = next;
    done += n;
    if (tenths.first === undefined && done >= tenth)
      tenths.first = done / ((performance.now() - started) / 1000);
    if (done === 65536 || done === total) mark(done);
    if (performance.now() - lastLog > 10000) {
      process.stderr.write(
        `  stream ${variant}: ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} tokens\n`,
      );
      lastLog = performance.now();
    }
  }
  const streamSeconds = (performance.now() - started) / 1000;
  report({
    bench: `stream ${variant} pieces`,
    shape: `small preset, ${total.toLocaleString('en-US')} tokens in pieces of ${piece}`,
    backend: 'wasm',
    value: total / streamSeconds,
    unit: 'tokens/s',
  });
  const last = (total - tenths.lastFrom!) / ((started + 1000 * streamSeconds - tenths.lastStart!) / 1000);
  for (const [which, value] of [
    ['first', tenths.first!],
    ['last', last],
  ] as const) {
    report({
      bench: `stream ${variant} ${which} 10%`,
      shape: `small preset, pieces of ${piece}`,
      backend: 'wasm',
      value,
      unit: 'tokens/s',
    });
  }
  report({
    bench: `stream ${variant} last/first 10%`,
    shape: 'speed ratio (target ≥ 0.8)',
    backend: 'wasm',
    value: last / tenths.first!,
    unit: '×',
  });
  const mib = (b: number) => b / 2 ** 20;
  for (const [n, m] of marks) {
    const at = n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(n % 2 ** 20 ? 1 : 0)}M` : `${n / 1024}K`;
    report({
      bench: `resident RSS @${at}`,
      shape: `stream ${variant}`,
      backend: 'wasm',
      value: mib(m.rss),
      unit: 'MiB',
    });
    report({
      bench: `live tensors @${at}`,
      shape: `stream ${variant}`,
      backend: 'wasm',
      value: mib(m.live),
      unit: 'MiB',
    });
    report({
      bench: `model state @${at}`,
      shape: `stream ${variant}`,
      backend: 'wasm',
      value: m.state / 1024,
      unit: 'KiB',
    });
  }
  if (state) releaseState(state, null);
  dispose(params);
}
