/**
 * Streaming inference: feed a prompt, then sample one token at a time, carrying the model's state
 * (memory, conv tails, window-bounded KV caches, MAC's partial segment) from token to token
 * (SPEC §5). No step ever re-reads the past: the cost per token is constant.
 *
 * Logits are read back with the asynchronous `data()`, which every backend supports (a GPU
 * backend cannot read synchronously). Every generated token is fed back through `feedToken`,
 * the one place a single token enters the model.
 */
import { argMax, Rng, sliceAxis, type Tensor, tensorLeaves } from '../engine/index.js';
import type { TitansConfig } from './config.js';
import type { ModelParams, ModelState } from './model.js';
import { type ModelStream, modelStream } from './stream.js';

/** How the next token is drawn from the logits. */
export interface SamplingOptions {
  /** 0 = greedy (argmax); otherwise softmax(logits / temperature). Default 0.8. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 = all). Default 40. */
  topK?: number;
  /** Nucleus sampling: only the most likely tokens whose probabilities sum to topP (1 = all). Default 1. */
  topP?: number;
  /**
   * > 1 discourages repeating a token seen among the last `repetitionWindow` tokens (prompt and
   * output): its logit is divided by the penalty when positive, multiplied when negative (CTRL,
   * Keskar et al. 2019). 1 = off (the default).
   */
  repetitionPenalty?: number;
  /** How many recent tokens the repetition penalty looks at. Default 64. */
  repetitionWindow?: number;
  /** Decides every sample (takes precedence over `seed`). */
  rng?: Rng;
  /** Seeds the sampler when no `rng` is given. Sampling (temperature > 0) needs one of the two. */
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to produce after the prompt. */
  maxTokens: number;
  /** The prompt is fed in pieces of at most this many tokens (bounds memory). Default 256. */
  promptChunk?: number;
  /** Called with each new token as soon as it is chosen (streaming output). */
  onToken?: (token: number) => void;
  /** Stop early when this token is produced (it is kept). */
  stopToken?: number;
  /** Called after each new token with every token produced so far; true ends generation there. */
  stop?: (tokens: readonly number[]) => boolean;
}

/** What a generation leaves: the tokens, the state after the last one, and what comes next. */
export interface GenerateResult {
  tokens: number[];
  /** The state after every prompt and generated token was fed (continue the stream with it). */
  state: ModelState;
  /** Logits (V) of the token after the last one: a continuation samples from these. */
  logits: Float64Array;
}

/**
 * Continues `prompt` (a non-empty token array) for one sequence, from `state` when given (the call
 * then owns it). Returns the new tokens, the state after the last of them (prompt and every
 * generated token fed: continuing from it is exact), and the logits of the token after.
 *
 * @example
 * const { tokens, state } = await generate(params, config, tokenizer.encode('The '), { maxTokens: 100, seed: 1 });
 */
export async function generate(
  params: ModelParams,
  config: TitansConfig,
  prompt: ArrayLike<number>,
  options: GenerateOptions,
  state: ModelState | null = null,
): Promise<GenerateResult> {
  if (prompt.length === 0) throw new RangeError('generate: the prompt needs at least one token');
  const sampler = makeSampler(options); // checks the options before any work
  const stream = modelStream(params, config, state);
  let logits = await feedAndReadLast(stream, prompt, options.promptChunk ?? 256);
  const history = Array.from(prompt);
  const tokens: number[] = [];
  for await (const step of decodeTokens(stream, logits, { ...options, sampler }, history)) {
    tokens.push(step.token);
    logits = step.logits;
    options.onToken?.(step.token);
  }
  return { tokens, state: stream.state!, logits };
}

/**
 * Samples up to `maxTokens` tokens on an open stream whose next-token logits are `logits`,
 * feeding each one before it is yielded with the logits that follow it — so the stream's state
 * includes every token yielded, even when the caller stops early. `history` holds the recent
 * tokens the repetition penalty looks at; it is extended in place.
 *
 * @example
 * const stream = modelStream(params, config);
 * let next = await feedAndReadLast(stream, promptIds, 256);
 * for await (const { token, logits } of decodeTokens(stream, next, { maxTokens: 20, temperature: 0 })) next = logits;
 */
export async function* decodeTokens(
  stream: ModelStream,
  logits: Float64Array,
  options: Omit<GenerateOptions, 'onToken' | 'promptChunk'> & { sampler?: Sampler },
  history: number[] = [],
): AsyncGenerator<{ token: number; logits: Float64Array }, void, void> {
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 0) {
    throw new RangeError(`generate: maxTokens must be an integer ≥ 0, got ${options.maxTokens}`);
  }
  const sampler = options.sampler ?? makeSampler(options);
  const window = options.repetitionWindow ?? 64;
  const tokens: number[] = [];
  let last = logits;
  for (let n = 0; n < options.maxTokens; n++) {
    const token = sampler(last, history);
    tokens.push(token);
    history.push(token);
    if (history.length > window) history.splice(0, history.length - window);
    last = await feedToken(stream, token);
    yield { token, logits: last };
    if (token === options.stopToken || options.stop?.(tokens)) return;
  }
}

/** Feeds one token and reads the logits (V) that follow it: the decode step. */
export async function feedToken(stream: ModelStream, token: number): Promise<Float64Array> {
  return Float64Array.from((await stream.feed([token], (logits) => logits))!);
}

/**
 * Feeds `ids` (in pieces of at most `piece` tokens) and reads the logits (V) after the last one.
 * @example const next = await feedAndReadLast(stream, tokenizer.encode(text), 256);
 */
export async function feedAndReadLast(
  stream: ModelStream,
  ids: ArrayLike<number>,
  piece: number,
): Promise<Float64Array> {
  if (ids.length === 0) throw new RangeError('generate: nothing to feed');
  // Every piece but the last is only read into the state; of the last, only its last row is read.
  const all = Int32Array.from(ids);
  const lastPiece = Math.floor((all.length - 1) / piece) * piece;
  await stream.feedPieces(all.subarray(0, lastPiece), piece);
  const lastRow = (logits: Tensor) => sliceAxis(logits, 1, logits.shape[1]! - 1, 1);
  return Float64Array.from((await stream.feed(all.subarray(lastPiece), lastRow))!);
}

/** Chooses the next token from a row of logits and the recent tokens. */
export type Sampler = (logits: ArrayLike<number>, recent: readonly number[]) => number;

/**
 * The sampler the options describe, its rng created once. Throws a RangeError naming a bad option.
 * @example const sample = makeSampler({ temperature: 0.7, topP: 0.9, seed: 1 }); sample(logits, []);
 */
export function makeSampler(options: SamplingOptions): Sampler {
  const temperature = options.temperature ?? 0.8;
  const topK = options.topK ?? 40;
  const topP = options.topP ?? 1;
  const penalty = options.repetitionPenalty ?? 1;
  const window = options.repetitionWindow ?? 64;
  if (!(temperature >= 0)) throw new RangeError(`generate: temperature must be ≥ 0, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0)
    throw new RangeError(`generate: topK must be an integer ≥ 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`generate: topP must be in (0, 1], got ${topP}`);
  if (!(penalty > 0) || !Number.isFinite(penalty))
    throw new RangeError(`generate: repetitionPenalty must be > 0, got ${penalty}`);
  if (!Number.isInteger(window) || window < 0)
    throw new RangeError(`generate: repetitionWindow must be an integer ≥ 0, got ${window}`);
  if (options.seed !== undefined && !(Number.isInteger(options.seed) && options.seed >= 0))
    throw new RangeError(`generate: seed must be an integer ≥ 0, got ${options.seed}`);
  const rng = options.rng ?? (options.seed !== undefined ? new Rng(options.seed) : undefined);
  if (temperature > 0 && !rng)
    throw new RangeError('generate: sampling (temperature > 0) needs an rng or a seed');
  return (logits, recent) => {
    const row = penalty === 1 ? logits : penalize(logits, recent.slice(-window), penalty);
    return pickToken(row, temperature, topK, rng, topP);
  };
}

/** The logits with the repetition penalty applied to every token in `recent`. */
function penalize(logits: ArrayLike<number>, recent: readonly number[], penalty: number): Float64Array {
  const out = Float64Array.from(logits);
  for (const t of new Set(recent)) {
    if (t < 0 || t >= out.length) continue;
    out[t] = out[t]! > 0 ? out[t]! / penalty : out[t]! * penalty;
  }
  return out;
}

/**
 * Greedy, or temperature sampling among the top-k tokens and the top-p nucleus, from one row of
 * logits.
 * @example pickToken(logits, 0, 0); // argmax
 */
export function pickToken(
  logits: ArrayLike<number>,
  temperature: number,
  topK: number,
  rng?: Rng,
  topP = 1,
): number {
  const n = logits.length;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(logits[i]))
      throw new RangeError(
        `generate: the model's logits are not finite (${logits[i]} at token ${i}): its weights or state hold NaN or Infinity`,
      );
  }
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (topK > 0 && topK < n) order = order.slice(0, topK);
  const maxLogit = logits[order[0]!]!;
  let weights = order.map((i) => Math.exp((logits[i]! - maxLogit) / temperature));
  if (topP < 1) {
    // The smallest prefix (most likely first) whose probability reaches topP.
    const total = weights.reduce((a, b) => a + b, 0);
    let mass = 0;
    let keepCount = 0;
    while (keepCount < weights.length && mass < topP * total) mass += weights[keepCount++]!;
    order = order.slice(0, keepCount);
    weights = weights.slice(0, keepCount);
  }
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rng!.next() * total;
  for (let j = 0; j < order.length; j++) {
    u -= weights[j]!;
    if (u <= 0) return order[j]!;
  }
  return order[order.length - 1]!;
}

/** Greedy next-token predictions of a full forward pass (the uncached oracle for tests). */
export async function greedyTokens(logits: Tensor): Promise<Int32Array> {
  const best = argMax(logits, -1);
  try {
    return (await best.data()) as Int32Array;
  } finally {
    best.dispose();
  }
}

/**
 * Bytes held by an inference state's tensors (shared tensors counted once). SPEC §5: constant in
 * the stream length for MAC, MAG, MAL and LMM.
 *
 * @example
 * stateBytes(state) // e.g. 53_248
 */
export function stateBytes(state: ModelState): number {
  const seen = new Set<Tensor>();
  let bytes = 0;
  for (const t of tensorLeaves(state)) {
    if (seen.has(t)) continue;
    seen.add(t);
    bytes += t.size * (t.dtype === 'float64' ? 8 : 4);
  }
  return bytes;
}
