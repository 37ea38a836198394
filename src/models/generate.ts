/**
 * Streaming inference: feed a prompt, then sample one token at a time, carrying the model's state
 * (memory, conv tails, window-bounded KV caches, MAC's partial segment) from token to token
 * (SPEC §5). No step ever re-reads the past: the cost per token is constant.
 */
import { argMax, type Rng, sliceAxis, type Tensor, tensorLeaves } from '../engine/index.js';
import type { TitansConfig } from './config.js';
import type { ModelParams, ModelState } from './model.js';
import { modelStream } from './stream.js';

export interface GenerateOptions {
  /** Tokens to produce after the prompt. */
  maxTokens: number;
  /** 0 = greedy (argmax); otherwise softmax(logits / temperature). Default 0.8. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 = all). Default 40. */
  topK?: number;
  /** Decides every sample; required when temperature > 0. */
  rng?: Rng;
  /** The prompt is fed in pieces of at most this many tokens (bounds memory). Default 256. */
  promptChunk?: number;
  /** Called with each new token as soon as it is chosen (streaming output). */
  onToken?: (token: number) => void;
  /** Stop early when this token is produced. */
  stopToken?: number;
}

/**
 * Continues `prompt` (a non-empty token array) for one sequence. Returns the new tokens and the
 * state after the last one (which can continue the stream).
 *
 * The logits are read back asynchronously, once per produced token (its row only), so it runs on
 * every backend.
 *
 * @example
 * const { tokens } = await generate(params, config, tokenizer.encode('The '), { maxTokens: 100, rng: new Rng(1) });
 */
export async function generate(
  params: ModelParams,
  config: TitansConfig,
  prompt: ArrayLike<number>,
  options: GenerateOptions,
  state: ModelState | null = null,
): Promise<{ tokens: number[]; state: ModelState }> {
  if (prompt.length === 0) throw new RangeError('generate: the prompt needs at least one token');
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 0) {
    throw new RangeError(`generate: maxTokens must be an integer ≥ 0, got ${options.maxTokens}`);
  }
  const temperature = options.temperature ?? 0.8;
  if (!(temperature >= 0)) throw new RangeError(`generate: temperature must be ≥ 0, got ${temperature}`);
  if (temperature > 0 && !options.rng)
    throw new RangeError('generate: sampling (temperature > 0) needs an rng');
  const chunk = options.promptChunk ?? 256;
  const stream = modelStream(params, config, state);
  // The logits (1, length, V) of a piece → its last row, which predicts the next token.
  const lastRow = (logits: Tensor) => sliceAxis(logits, 1, logits.shape[1]! - 1, 1);
  const read = async (ids: ArrayLike<number>) => Float64Array.from((await stream.feed(ids, lastRow))!);
  // Every piece of the prompt but the last is only read into the state.
  const ids = Int32Array.from(prompt);
  const lastPiece = Math.floor((ids.length - 1) / chunk) * chunk;
  await stream.feedPieces(ids.subarray(0, lastPiece), chunk);
  let last = await read(ids.subarray(lastPiece));
  const tokens: number[] = [];
  for (let n = 0; n < options.maxTokens; n++) {
    const token = pickToken(last, temperature, options.topK ?? 40, options.rng);
    tokens.push(token);
    options.onToken?.(token);
    if (token === options.stopToken || n === options.maxTokens - 1) break;
    last = await read([token]);
  }
  return { tokens, state: stream.state! };
}

/** Greedy or temperature / top-k sampling from one row of logits. */
export function pickToken(logits: ArrayLike<number>, temperature: number, topK: number, rng?: Rng): number {
  const n = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let order = Array.from({ length: n }, (_, i) => i);
  if (topK > 0 && topK < n) order = order.sort((a, b) => logits[b]! - logits[a]!).slice(0, topK);
  let maxLogit = Number.NEGATIVE_INFINITY;
  for (const i of order) maxLogit = Math.max(maxLogit, logits[i]!);
  const weights = order.map((i) => Math.exp((logits[i]! - maxLogit) / temperature));
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
