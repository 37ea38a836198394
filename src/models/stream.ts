/**
 * A sequence read piece by piece (SPEC §5): each `feed` runs the model on the next tokens of one
 * sequence with the state the previous piece left, and frees the parts of the old state the new one
 * does not share. Generation, long-context evaluation and streaming perplexity all read this way.
 */
import { keep, noGrad, type Tensor, tensor, tensorLeaves, tidy } from '../engine/index.js';
import type { TitansConfig } from './config.js';
import { createDecoder, type TokenDecoder } from './decode.js';
import {
  initialModelState,
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
  /**
   * The state after the last piece fed (the initial state, or null, before the first): data the
   * stream owns, valid until the next feed or close.
   */
  readonly state: ModelState | null;
  /** Frees the state (the stream cannot be fed afterwards). */
  close(): void;
}

/**
 * Opens a stream on one sequence, continuing `state` when given (the stream then owns it).
 * Pieces of one token go through a TokenDecoder (decode.ts: state in the decoder's buffers,
 * updated in place) where the backend has one; longer pieces through modelForward. The stream
 * owns its state either way and frees what it replaces: nothing for the caller to release.
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
): ModelStream {
  let current = state;
  let decoder: TokenDecoder | null = null;
  let canDecode = true;
  let closed = false;
  const owned = (s: ModelState): ModelState => {
    for (const t of tensorLeaves(s)) keep(t); // outlives any scope the caller is in
    return s;
  };
  /** Hands the decoder's state back as data (a ModelState) and frees the decoder. */
  function settle(): void {
    if (!decoder) return;
    const next = owned(decoder.snapshot());
    decoder.dispose();
    decoder = null;
    if (current) releaseState(current, next);
    current = next;
  }
  /** One token through the decoder; null where there is none for this model or backend. */
  function decodeToken<T>(token: number, read: (logits: Tensor) => T): { value: T } | null {
    if (!decoder && canDecode) {
      current ??= owned(noGrad(() => tidy(() => initialModelState(params, config, 1))));
      decoder = createDecoder(params, config, current);
      canDecode = decoder !== null;
    }
    if (!decoder) return null;
    const logits = decoder.step(token);
    return {
      value: noGrad(() =>
        tidy(() =>
          read(
            tensor(logits, [1, 1, config.vocabSize], {
              dtype: 'float32',
              backend: params.embedding.backend.name,
            }),
          ),
        ),
      ),
    };
  }
  function feed<T>(ids: ArrayLike<number>, read: (logits: Tensor) => T): T {
    if (closed) throw new Error('modelStream: feed after close');
    if (ids.length === 0) throw new RangeError('modelStream: feed needs at least one token');
    if (ids.length === 1) {
      const decoded = decodeToken(ids[0]!, read);
      if (decoded) return decoded.value;
    }
    settle();
    const out = noGrad(() =>
      tidy(() => {
        const { logits, state: next } = modelForward(
          params,
          config,
          tokenTensor(ids, 1, ids.length),
          current,
        );
        return { value: read(logits), next: owned(next!) };
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
      settle();
      return current;
    },
    close() {
      if (closed) return;
      settle();
      if (current) releaseState(current, null);
      closed = true;
    },
  };
}
