/**
 * A key/value cache in pages, for attention over everything a stream has seen (full causal
 * attention: Transformer++ at long context). Axis legend: B batch, H heads, R rows per page
 * (PAGE_ROWS), dh head width, T new tokens.
 *
 * Rows are written into pages of R rows per (batch, head) as tokens arrive; a page is never copied
 * or moved, so the cache holds its rows plus at most one partly filled page, and attention reads
 * the pages in place (`Backend.pagedAttention`) — no concatenation of the whole cache per piece,
 * no queries × keys buffer. A `PagedCache` value is immutable data; successive values of one
 * stream share their pages, and only the rows past a value's `length` are ever written, so an
 * older value stays valid. Appending to an older value (a branch) copies its rows first.
 */
import { formatShape } from '../shape.js';
import { isRecording } from '../tape.js';
import { type Tensor, wrapBuffer } from '../tensor.js';
import { type AttentionOptions, attention, type Positions } from './attention.js';
import { zeros } from './create.js';
import { concat, sliceAxis } from './shape.js';

/** Rows per page and (batch, head): a multiple of the attention kernel's key block (64). */
export const PAGE_ROWS = 1024;

/** One page: keys and values of up to PAGE_ROWS tokens, each (B, H, PAGE_ROWS, dh). */
export interface CachePage {
  readonly k: Tensor;
  readonly v: Tensor;
}

/** Rows written into a chain of shared pages so far (by any of the values sharing them). */
interface Watermark {
  rows: number;
}

/** The cache of one attention layer (see the file comment). */
export interface PagedCache {
  readonly pages: readonly CachePage[];
  /** Rows in use: the tokens at positions first … first + length − 1. */
  readonly length: number;
  /** Position of row 0. */
  readonly first: number;
  /** @internal how far the shared pages are written; equal to `length` for the newest value. */
  readonly written: Watermark;
}

/** Whether a value is a PagedCache. */
export function isPagedCache(x: unknown): x is PagedCache {
  return typeof x === 'object' && x !== null && 'pages' in x && 'written' in x;
}

/**
 * The cache after appending keys and values k, v (B, H, T, dh) at positions first + length …
 * (`first` is used when `cache` is null: the stream's position of the first token).
 *
 * @example
 * let cache = appendToCache(null, k, v, 0);      // tokens 0 … T−1
 * cache = appendToCache(cache, k2, v2, 0);        // the next T2 tokens, written in place
 */
export function appendToCache(cache: PagedCache | null, k: Tensor, v: Tensor, first: number): PagedCache {
  if (k.rank !== 4 || formatShape(k.shape) !== formatShape(v.shape)) {
    throw new RangeError(
      `appendToCache: k ${formatShape(k.shape)} and v ${formatShape(v.shape)} must be (B, H, T, dh)`,
    );
  }
  const [B, H, T, dh] = k.shape as [number, number, number, number];
  if (cache && cache.pages.length > 0) {
    const [pb, ph, , pd] = cache.pages[0]!.k.shape as [number, number, number, number];
    if (pb !== B || ph !== H || pd !== dh) {
      throw new RangeError(
        `appendToCache: rows ${formatShape(k.shape)} do not fit pages of (${pb}, ${ph}, ·, ${pd})`,
      );
    }
  }
  let pages = cache ? [...cache.pages] : [];
  let length = cache?.length ?? 0;
  let written: Watermark = cache?.written ?? { rows: 0 };
  if (cache && written.rows !== length) {
    // A branch: a later value already wrote past this one's rows. Copy its rows to new pages.
    const rows = densePages(cache);
    pages = [];
    written = { rows: 0 };
    length = 0;
    if (rows) pages = writeRows(pages, 0, rows.k, rows.v, B, H, dh);
    length = cache.length;
    written.rows = length;
    rows?.k.dispose();
    rows?.v.dispose();
  }
  pages = writeRows(pages, length, k, v, B, H, dh);
  written.rows = length + T;
  return { pages, length: length + T, first: cache?.first ?? first, written };
}

/** Pages after writing T rows k, v at row `at` (new pages allocated as needed). */
function writeRows(
  pages: CachePage[],
  at: number,
  k: Tensor,
  v: Tensor,
  B: number,
  H: number,
  dh: number,
): CachePage[] {
  const T = k.shape[2]!;
  const backend = k.backend;
  const out = [...pages];
  for (let done = 0; done < T; ) {
    const row = at + done;
    const index = Math.floor(row / PAGE_ROWS);
    const offset = row % PAGE_ROWS;
    const n = Math.min(T - done, PAGE_ROWS - offset);
    if (index === out.length) {
      const shape = [B, H, PAGE_ROWS, dh];
      out.push({
        k: zeros(shape, { dtype: k.dtype, backend: backend.name }),
        v: zeros(shape, { dtype: k.dtype, backend: backend.name }),
      });
    }
    const page = out[index]!;
    const kPart = n === T ? k : sliceAxis(k, 2, done, n);
    const vPart = n === T ? v : sliceAxis(v, 2, done, n);
    if (backend.writeRows) {
      backend.writeRows(page.k.buffer, kPart.buffer, B * H, PAGE_ROWS, n, dh, offset, k.dtype);
      backend.writeRows(page.v.buffer, vPart.buffer, B * H, PAGE_ROWS, n, dh, offset, k.dtype);
    } else {
      // No in-place writes on this backend: a new page with the rows spliced in.
      out[index] = { k: splice(page.k, kPart, offset), v: splice(page.v, vPart, offset) };
    }
    done += n;
  }
  return out;
}

/** page (B, H, R, dh) with rows (B, H, n, dh) at row `at`, as a new tensor. */
function splice(page: Tensor, rows: Tensor, at: number): Tensor {
  const n = rows.shape[2]!;
  const parts = [];
  if (at > 0) parts.push(sliceAxis(page, 2, 0, at));
  parts.push(rows);
  if (at + n < PAGE_ROWS) parts.push(sliceAxis(page, 2, at + n, PAGE_ROWS - at - n));
  return concat(parts, 2);
}

/** The cache's rows as dense (B, H, length, dh) copies (null when empty). */
function densePages(cache: PagedCache): { k: Tensor; v: Tensor } | null {
  if (cache.length === 0) return null;
  const take = (which: 'k' | 'v') => {
    const parts: Tensor[] = [];
    for (let i = 0; i * PAGE_ROWS < cache.length; i++) {
      parts.push(sliceAxis(cache.pages[i]![which], 2, 0, Math.min(PAGE_ROWS, cache.length - i * PAGE_ROWS)));
    }
    return parts.length === 1 ? parts[0]! : concat(parts, 2);
  };
  return { k: take('k'), v: take('v') };
}

/**
 * Causal attention of queries q (B, H, T, dh) at `queryPositions` over every row of `cache` (which
 * already holds the queries' own keys, the last T rows `k`, `v`): the `attention` op's semantics
 * with keys at positions first … first + length − 1. Reads the pages in place where the backend
 * can (`Backend.pagedAttention`, inference); otherwise, and whenever a tape records q, k or v,
 * composes `attention` over a dense copy of the earlier rows and the new k, v (differentiable in
 * those).
 */
export function attendCache(
  q: Tensor,
  cache: PagedCache,
  k: Tensor,
  v: Tensor,
  options: { queryPositions: Positions } & Pick<AttentionOptions, 'window' | 'scale'>,
): Tensor {
  const [B, H, T, dh] = q.shape as [number, number, number, number];
  const keys = cache.length;
  const keyPositions = Int32Array.from({ length: keys }, (_, j) => cache.first + j);
  const window = options.window ?? Number.POSITIVE_INFINITY;
  const scale = options.scale ?? 1 / Math.sqrt(dh);
  const params = {
    batch: B * H,
    queries: T,
    keys,
    headDim: dh,
    queryPositions: Int32Array.from(options.queryPositions),
    keyPositions,
    window,
    prefix: 0,
    scale,
  };
  const paged = q.backend.pagedAttention;
  if (!isRecording([q, k, v]) && paged?.supports(params, PAGE_ROWS, q.dtype)) {
    const pages = cache.pages.map((p) => [p.k.buffer, p.v.buffer] as const);
    const out = paged.forward(q.buffer, pages, PAGE_ROWS, params, q.dtype);
    return wrapBuffer(q.backend, out, q.shape, q.dtype);
  }
  const earlier = densePages({ ...cache, length: keys - k.shape[2]! });
  const allK = earlier ? concat([earlier.k, k], 2) : k;
  const allV = earlier ? concat([earlier.v, v], 2) : v;
  return attention(q, allK, allV, { queryPositions: options.queryPositions, keyPositions, window, scale });
}
