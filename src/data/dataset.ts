/**
 * Token streams for language-model training: a train/validation split, random batches for
 * training and sequential batches for evaluation.
 *
 * Axes: B = batch rows, T = sequence length (seqLen). A batch is two flat row-major (B, T) arrays:
 * `inputs[b·T + t]` is a token and `targets[b·T + t]` the token after it, so a model is trained to
 * predict `targets` from `inputs`.
 *
 * Browser-safe: imports nothing from `node:*`.
 */
import type { Rng } from '../engine/random.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/**
 * One batch of next-token prediction: `targets` is `inputs` shifted one token ahead.
 *
 * @example
 * const { inputs, targets } = sampleBatch(ids, 8, 64, rng); // both (8·64), row-major (B, T)
 */
export interface TokenBatch {
  /** (B·T) row-major (B, T) input tokens. */
  inputs: Int32Array;
  /** (B·T) row-major (B, T) the token after each input. */
  targets: Int32Array;
}

/**
 * Splits a token stream into training tokens and a validation tail, so the two never overlap.
 * Both are views of `ids` (no copy). The validation part has round(n · validationFraction) tokens.
 *
 * @example
 * const { train, validation } = splitTokens(ids, { validationFraction: 0.1 });
 * train.length + validation.length === ids.length; // true
 */
export function splitTokens(
  ids: Int32Array,
  options: { validationFraction?: number } = {},
): { train: Int32Array; validation: Int32Array } {
  const fraction = options.validationFraction ?? 0.05;
  if (!(fraction >= 0 && fraction < 1))
    throw new RangeError(`splitTokens: validationFraction must be in [0, 1), got ${fraction}`);
  const cut = ids.length - Math.round(ids.length * fraction);
  return { train: ids.subarray(0, cut), validation: ids.subarray(cut) };
}

/** Throws unless `batch` and `seqLen` are positive integers and `ids` holds a window of seqLen + 1. */
function checkWindow(caller: string, ids: Int32Array, batch: number, seqLen: number): void {
  if (!Number.isInteger(batch) || batch < 1)
    throw new RangeError(`${caller}: batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(seqLen) || seqLen < 1)
    throw new RangeError(`${caller}: seqLen must be a positive integer, got ${seqLen}`);
  if (ids.length < seqLen + 1)
    throw new RangeError(
      `${caller}: ${ids.length} tokens is too few for seqLen ${seqLen} (need at least seqLen + 1 = ${seqLen + 1})`,
    );
}

/**
 * A random training batch: `batch` windows of `seqLen + 1` consecutive tokens, each starting at an
 * offset drawn uniformly from `rng` (windows may overlap). The same rng state gives the same batch.
 *
 * @example
 * const rng = new Rng(0);
 * const { inputs, targets } = sampleBatch(train, 4, 128, rng); // (4·128) each
 */
export function sampleBatch(ids: Int32Array, batch: number, seqLen: number, rng: Rng): TokenBatch {
  checkWindow('sampleBatch', ids, batch, seqLen);
  const inputs = new Int32Array(batch * seqLen); // (B, T)
  const targets = new Int32Array(batch * seqLen); // (B, T)
  const starts = ids.length - seqLen; // offsets 0 … n − T − 1 leave room for the last target
  for (let row = 0; row < batch; row++) {
    const start = rng.int(starts);
    inputs.set(ids.subarray(start, start + seqLen), row * seqLen);
    targets.set(ids.subarray(start + 1, start + seqLen + 1), row * seqLen);
  }
  return { inputs, targets };
}

/**
 * An evaluation batch from `sequentialBatches`; `rows` (≤ the batch size asked for) says how many
 * windows it holds, so `inputs.length === rows · seqLen`.
 */
export interface SequentialBatch extends TokenBatch {
  /** Windows in this batch: the batch size, or fewer in the last batch. */
  rows: number;
}

/**
 * Batches of non-overlapping windows that cover the stream once, in order, for evaluation
 * (perplexity): window k has inputs `ids[k·T, (k+1)·T)` and targets one token later, so every
 * token after the first is predicted exactly once, except a tail of fewer than T tokens that
 * does not fill a window. The last batch may have fewer rows. Checks its arguments at once.
 *
 * @example
 * let sum = 0;
 * for (const { inputs, targets, rows } of sequentialBatches(validation, 16, 128)) sum += lossOf(inputs, targets, rows);
 */
export function sequentialBatches(
  ids: Int32Array,
  batch: number,
  seqLen: number,
): Generator<SequentialBatch> {
  checkWindow('sequentialBatches', ids, batch, seqLen);
  const windows = Math.floor((ids.length - 1) / seqLen);
  return (function* () {
    for (let first = 0; first < windows; first += batch) {
      const rows = Math.min(batch, windows - first);
      const start = first * seqLen;
      yield {
        inputs: ids.slice(start, start + rows * seqLen),
        targets: ids.slice(start + 1, start + rows * seqLen + 1),
        rows,
      };
    }
  })();
}

/**
 * A tokenised corpus split into training tokens and a validation tail, with the samplers bound
 * to each part.
 *
 * @example
 * const data = TokenDataset.fromText(text, tokenizer, { validationFraction: 0.05 });
 * const batch = data.sampleTrainBatch(8, 128, rng);
 * for (const b of data.validationBatches(8, 128)) evaluate(b);
 */
export class TokenDataset {
  /** (n_train) the training tokens, a view of the ids given. */
  readonly train: Int32Array;
  /** (n_val) the validation tokens: the tail of the ids given. */
  readonly validation: Int32Array;

  constructor(ids: Int32Array, options: { validationFraction?: number } = {}) {
    const { train, validation } = splitTokens(ids, options);
    this.train = train;
    this.validation = validation;
  }

  /** Tokenises `text` with `tokenizer` and splits the ids. */
  static fromText(
    text: string,
    tokenizer: Tokenizer,
    options: { validationFraction?: number } = {},
  ): TokenDataset {
    return new TokenDataset(tokenizer.encode(text), options);
  }

  /** A random batch from the training tokens (see `sampleBatch`). */
  sampleTrainBatch(batch: number, seqLen: number, rng: Rng): TokenBatch {
    return sampleBatch(this.train, batch, seqLen, rng);
  }

  /** Sequential batches over the validation tokens (see `sequentialBatches`). */
  validationBatches(batch: number, seqLen: number): Generator<SequentialBatch> {
    return sequentialBatches(this.validation, batch, seqLen);
  }
}
