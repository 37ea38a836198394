/**
 * A sequence read piece by piece (SPEC §5): each `feed` runs the model on the next tokens of one
 * sequence with the state the previous piece left, and frees the parts of the old state the new one
 * does not share. Generation, long-context evaluation and streaming perplexity all read this way.
 */
import type { TypedArray } from '../engine/dtype.js';
import { keep, noGrad, type Tensor, tensorLeaves, tidy } from '../engine/index.js';
import { nextTensorIdValue, viewOf } from '../engine/tensor.js';
import type { TitansConfig } from './config.js';
import { createDecoder, type TokenDecoder } from './decode.js';
import {
  type ForwardOptions,
  initialModelState,
  type ModelParams,
  type ModelState,
  modelForward,
  releaseState,
  tokenTensor,
} from './model.js';

/**
 * Picks what to read from a piece's logits (1, n, V): a tensor made from them (the last row, an
 * argMax, the rows themselves). Runs inside a scope: every other tensor it makes is freed.
 */
export type LogitsSelector = (logits: Tensor) => Tensor;

export interface ModelStream {
  /**
   * Runs the model on `ids` (the next tokens of the sequence) and resolves to the values of the
   * tensor `select` makes of the logits (1, n, V) — one asynchronous read-back, so it runs on
   * every backend. Without `select` nothing is read and it resolves to null. The model runs
   * before the first await: feeds issued back to back run in order.
   */
  feed(ids: ArrayLike<number>, select?: LogitsSelector): Promise<TypedArray | null>;
  /**
   * Feeds `ids` in pieces of at most `piece` tokens (bounding memory). For each piece, `select`
   * picks what to read from its logits (1, length, V) (`start` is where the piece begins in
   * `ids`), and `use` turns the values into that piece's result as they arrive, in order
   * (running sums, progress); resolves to the results — the values themselves without `use`.
   * Without `select` nothing is read and it resolves to [].
   */
  feedPieces(ids: ArrayLike<number>, piece: number): Promise<[]>;
  feedPieces(
    ids: ArrayLike<number>,
    piece: number,
    select: (logits: Tensor, start: number, length: number) => Tensor,
  ): Promise<TypedArray[]>;
  feedPieces<T>(
    ids: ArrayLike<number>,
    piece: number,
    select: (logits: Tensor, start: number, length: number) => Tensor,
    use: (values: TypedArray, start: number, length: number) => T,
  ): Promise<T[]>;
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
 * `options` go to every forward pass (e.g. `onMemoryLayer` to inspect the memory; the decoder
 * does not call it, so a stream with an observer runs every piece through modelForward).
 *
 * @example
 * const stream = modelStream(params, config);
 * const lastRow = await stream.feed(prompt, (logits) => sliceAxis(logits, 1, prompt.length - 1, 1));
 * stream.close();
 */
export function modelStream(
  params: ModelParams,
  config: TitansConfig,
  state: ModelState | null = null,
  options: Omit<ForwardOptions, 'keepState'> = {},
): ModelStream {
  let current = state;
  let decoder: TokenDecoder | null = null;
  let canDecode = options.onMemoryLayer === undefined; // the decoder has no observer hook
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
  /** The decoder for the next token; null where there is none for this model or backend. */
  function tokenDecoder(): TokenDecoder | null {
    if (!decoder && canDecode) {
      current ??= owned(noGrad(() => tidy(() => initialModelState(params, config, 1))));
      decoder = createDecoder(params, config, current);
      canDecode = decoder !== null;
    }
    return decoder;
  }
  /**
   * `select` applied to a piece's logits (inside the piece's scope). What is read is freed
   * afterwards: a tensor that existed before the piece (a parameter) or one in `kept` (the new
   * state) is read through a view.
   */
  function pick(
    logits: Tensor,
    select: LogitsSelector | undefined,
    firstNew: number,
    kept: Tensor[],
  ): Tensor | null {
    const selected = select ? select(logits) : null;
    if (selected && (selected.id < firstNew || kept.includes(selected)))
      return viewOf(selected, selected.shape);
    return selected;
  }
  /** Runs the model on the next tokens; returns the selected tensor (kept: the caller frees it). */
  function run(ids: ArrayLike<number>, select: LogitsSelector | undefined): Tensor | null {
    if (closed) throw new Error('modelStream: feed after close');
    if (ids.length === 0) throw new RangeError('modelStream: feed needs at least one token');
    const firstNew = nextTensorIdValue();
    const token = ids.length === 1 ? tokenDecoder() : null;
    if (token) {
      const selected = noGrad(() => tidy(() => pick(token.step(ids[0]!), select, firstNew, [])));
      return selected && keep(selected);
    }
    settle();
    const out = noGrad(() =>
      tidy(() => {
        const { logits, state: next } = modelForward(
          params,
          config,
          tokenTensor(ids, 1, ids.length),
          current,
          options,
        );
        const kept = tensorLeaves(owned(next!));
        return { selected: pick(logits, select, firstNew, kept), next: next! };
      }),
    );
    if (current) releaseState(current, out.next);
    current = out.next;
    if (out.selected) keep(out.selected);
    return out.selected;
  }
  /** Reads a selected tensor back and frees it. */
  async function read(selected: Tensor): Promise<TypedArray> {
    try {
      return await selected.data();
    } finally {
      selected.dispose();
    }
  }
  return {
    feed(ids, select) {
      try {
        const selected = run(ids, select);
        return selected ? read(selected) : Promise.resolve(null);
      } catch (e) {
        return Promise.reject(e);
      }
    },
    async feedPieces<T>(
      ids: ArrayLike<number>,
      piece: number,
      select?: (logits: Tensor, start: number, length: number) => Tensor,
      use?: (values: TypedArray, start: number, length: number) => T,
    ): Promise<T[]> {
      if (!Number.isInteger(piece) || piece < 1)
        throw new RangeError(`modelStream: piece must be an integer >= 1, got ${piece}`);
      const all = ids instanceof Int32Array ? ids : Int32Array.from(ids);
      const out: T[] = [];
      for (let start = 0; start < all.length; start += piece) {
        const length = Math.min(piece, all.length - start);
        const selected = run(
          all.subarray(start, start + length),
          select && ((logits) => select(logits, start, length)),
        );
        if (!selected) continue;
        const values = await read(selected);
        out.push(use ? use(values, start, length) : (values as T));
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
  } as ModelStream;
}
