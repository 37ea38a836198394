/**
 * Next-token loss of a text, two ways (browser-safe):
 *
 *   windowed   the tokens cut into windows of T, each read from a fresh state (as in training):
 *              a prediction sees at most T − 1 tokens of context. The last, shorter window is
 *              scored too, so every token after the first is predicted exactly once.
 *   streamed   the whole text read as one stream in pieces, the state (memory, caches) carried
 *              across: a prediction sees everything before it, through the memory.
 *
 * Both return the summed loss in nats and the number of predicted tokens; bits per byte divide by
 * the UTF-8 bytes of exactly those tokens. The two measure different things: a model trained on
 * windows of T tokens has never read a stream longer than T, so streamed loss measures how its
 * state behaves far beyond its training length (better than windowed when the memory helps, worse
 * when the state drifts).
 */
import { crossEntropy, keep, noGrad, reshape, type Tensor, tensor, tidy } from '../engine/index.js';
import type { TitansConfig } from '../models/config.js';
import { type ModelParams, modelForward, tokenTensor } from '../models/model.js';
import { modelStream } from '../models/stream.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** A text's loss: nats summed over the predicted tokens. */
export interface TextLoss {
  /** Σ −log p(token | what came before), in nats. */
  nats: number;
  /** Tokens predicted (every token but the first). */
  tokens: number;
}

/** How to read the text. */
export interface ScoreOptions {
  /** 'windowed' (fresh state per window, as in training; the default) or 'streamed' (state carried). */
  mode?: 'windowed' | 'streamed';
  /** Window length (windowed) or piece length (streamed). Default 256. */
  seqLen?: number;
  /** Windows per batch (windowed). Default 16. */
  batchSize?: number;
  /** Called with the number of tokens scored so far. */
  onProgress?: (tokensDone: number, total: number) => void;
}

/**
 * The summed next-token loss of `ids` (windowed or streamed, see the module comment).
 *
 * @example
 * const { nats, tokens } = await textLoss(params, config, ids, { mode: 'streamed', seqLen: 512 });
 * const perplexity = Math.exp(nats / tokens);
 */
export async function textLoss(
  params: ModelParams,
  config: TitansConfig,
  ids: Int32Array,
  options: ScoreOptions = {},
): Promise<TextLoss> {
  const seqLen = options.seqLen ?? 256;
  const batch = options.batchSize ?? 16;
  if (!Number.isInteger(seqLen) || seqLen < 1)
    throw new RangeError(`score: seqLen must be an integer ≥ 1, got ${seqLen}`);
  if (!Number.isInteger(batch) || batch < 1)
    throw new RangeError(`score: batchSize must be an integer ≥ 1, got ${batch}`);
  if (ids.length < 2) throw new RangeError(`score: needs at least 2 tokens, got ${ids.length}`);
  return options.mode === 'streamed'
    ? streamedLoss(params, config, ids, seqLen, options.onProgress)
    : windowedLoss(params, config, ids, seqLen, batch, options.onProgress);
}

/** The value of a scalar tensor, read back asynchronously; the tensor is freed. */
async function readScalar(t: Tensor): Promise<number> {
  try {
    return (await t.data())[0]!;
  } finally {
    t.dispose();
  }
}

/** Σ_t −log softmax(logits_t)[target_t] as a scalar tensor; logits (B, T, V), targets (B·T). */
function natsOf(logits: Tensor, targets: Int32Array, vocab: number): Tensor {
  const rows = targets.length;
  const flat = reshape(logits, [rows, vocab]);
  return crossEntropy(flat, tensor(targets, [rows], { dtype: 'int32' }), { reduction: 'sum' });
}

async function windowedLoss(
  params: ModelParams,
  config: TitansConfig,
  ids: Int32Array,
  seqLen: number,
  batch: number,
  onProgress?: (done: number, total: number) => void,
): Promise<TextLoss> {
  const total = ids.length - 1;
  let nats = 0;
  // Windows start every seqLen tokens; the last one holds what is left (1 … seqLen predictions).
  for (let start = 0; start < total; ) {
    const full = Math.floor((total - start) / seqLen);
    const rows = full > 0 ? Math.min(batch, full) : 1;
    const length = full > 0 ? seqLen : total - start;
    const inputs = ids.subarray(start, start + rows * length);
    const targets = ids.slice(start + 1, start + rows * length + 1);
    const loss = noGrad(() =>
      tidy(() => {
        const { logits } = modelForward(params, config, tokenTensor(inputs, rows, length), null, {
          keepState: false,
        });
        return keep(natsOf(logits, targets, config.vocabSize));
      }),
    );
    nats += await readScalar(loss);
    start += rows * length;
    onProgress?.(start, total);
  }
  return { nats, tokens: total };
}

async function streamedLoss(
  params: ModelParams,
  config: TitansConfig,
  ids: Int32Array,
  piece: number,
  onProgress?: (done: number, total: number) => void,
): Promise<TextLoss> {
  const total = ids.length - 1;
  const stream = modelStream(params, config);
  let nats = 0;
  try {
    for (let start = 0; start < total; start += piece) {
      const length = Math.min(piece, total - start);
      const targets = ids.slice(start + 1, start + length + 1);
      const loss = await stream.feed(ids.subarray(start, start + length), (logits) =>
        natsOf(logits, targets, config.vocabSize),
      );
      nats += loss![0]!;
      onProgress?.(start + length, total);
    }
  } finally {
    stream.close();
  }
  return { nats, tokens: total };
}

/**
 * UTF-8 bytes of the tokens that a `textLoss` of `ids` predicts (all but the first): what bits
 * per byte divide by.
 * @example const bitsPerByte = nats / Math.LN2 / predictedBytes(tokenizer, ids);
 */
export function predictedBytes(tokenizer: Tokenizer, ids: Int32Array): number {
  if (tokenizer.kind === 'byte') return ids.length - 1; // one token, one byte
  const bytes = (part: Int32Array) => new TextEncoder().encode(tokenizer.decode(part)).length;
  return bytes(ids) - bytes(ids.subarray(0, 1));
}
