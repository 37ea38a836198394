/**
 * A sequence read piece by piece (SPEC §5): each `feed` runs the model on the next tokens of one
 * sequence with the state the previous piece left, and frees the parts of the old state the new one
 * does not share. Generation, long-context evaluation and streaming perplexity all read this way.
 */
import { keep, noGrad, type Tensor, tensorLeaves, tidy } from '../engine/index.js';
import type { TitansConfig } from './config.js';
import {
  type ForwardOptions,
  type ModelParams,
  type ModelState,
  modelForward,
  releaseState,
  tokenTensor,
} from './model.js';

export interface ModelStream {
  /**
   * Runs the model on `ids` (the next tokens of the sequence) and returns what `read` makes of
   * the logits (1, n, V); tensors `read` creates are freed afterwards unless returned.
   */
  feed<T>(ids: ArrayLike<number>, read: (logits: Tensor) => T): T;
  /**
   * Feeds `ids` in pieces of at most `piece` tokens (bounding memory) and returns what `read`
   * made of each piece's logits (1, length, V); `start` is where the piece begins in `ids`.
   */
  feedPieces<T>(
    ids: ArrayLike<number>,
    piece: number,
    read: (logits: Tensor, start: number, length: number) => T,
  ): T[];
  /** The state after the last piece fed (the initial state, or null, before the first). */
  readonly state: ModelState | null;
  /** Frees the state (the stream cannot be fed afterwards). */
  close(): void;
}

/**
 * Opens a stream on one sequence, continuing `state` when given (the stream then owns it).
 * `options` go to every forward pass (e.g. `onMemoryLayer` to inspect the memory).
 *
 * @example
 * const stream = modelStream(params, config);
 * const lastRow = stream.feed(prompt, (logits) => sliceAxis(logits, 1, prompt.length - 1, 1).dataSync());
 * stream.close();
 */
export function modelStream(
  params: ModelParams,
  config: TitansConfig,
  state: ModelState | null = null,
  options: Omit<ForwardOptions, 'keepState'> = {},
): ModelStream {
  let current = state;
  let closed = false;
  function feed<T>(ids: ArrayLike<number>, read: (logits: Tensor) => T): T {
    if (closed) throw new Error('modelStream: feed after close');
    if (ids.length === 0) throw new RangeError('modelStream: feed needs at least one token');
    const out = noGrad(() =>
      tidy(() => {
        const { logits, state: next } = modelForward(
          params,
          config,
          tokenTensor(ids, 1, ids.length),
          current,
          options,
        );
        for (const t of tensorLeaves(next)) keep(t); // outlives any scope the caller is in
        return { value: read(logits), next: next! };
      }),
    );
    if (current) releaseState(current, out.next);
    current = out.next;
    return out.value;
  }
  return {
    feed,
    feedPieces<T>(
      ids: ArrayLike<number>,
      piece: number,
      read: (logits: Tensor, start: number, length: number) => T,
    ): T[] {
      if (!Number.isInteger(piece) || piece < 1)
        throw new RangeError(`modelStream: piece must be an integer >= 1, got ${piece}`);
      const all = ids instanceof Int32Array ? ids : Int32Array.from(ids);
      const out: T[] = [];
      for (let start = 0; start < all.length; start += piece) {
        const length = Math.min(piece, all.length - start);
        out.push(feed(all.subarray(start, start + length), (logits) => read(logits, start, length)));
      }
      return out;
    },
    get state() {
      return current;
    },
    close() {
      if (current && !closed) releaseState(current, null);
      closed = true;
    },
  };
}
