/**
 * Byte-level byte-pair encoding, as GPT-2 and the HuggingFace `tokenizers` library do it.
 *
 * Text → UTF-8 bytes → pre-tokens (GPT-2's regex) → within each pre-token, merges applied lowest
 * rank first → ids. Every byte has a token, so any string encodes and nothing is ever unknown;
 * decoding concatenates the bytes of the ids and reads them as UTF-8.
 *
 * Legend: a *token* is a byte string with an id; a *merge* (rank r) says that the adjacent pair
 * (left, right) becomes the token left‖right, and lower ranks apply first. In tokenizer.json a
 * token is written with GPT-2's byte-level alphabet, one printable character per byte.
 *
 * Browser-safe: imports nothing from `node:*`.
 */
import type { HFTokenizerJSON, Tokenizer } from './tokenizer.js';

/**
 * GPT-2's pre-tokeniser: contractions, letters, digits and other symbols (each optionally led by
 * one space), and whitespace runs, which leave their last space to lead the next word.
 */
const PRE_TOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's byte → character table: printable Latin-1 bytes stand for themselves, the other 68
 * bytes (controls, space, NBSP, soft hyphen) are moved in order to U+0100 onwards, so that every
 * token is a string of visible characters (space is `Ġ`, newline is `Ċ`).
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const chars: string[] = [];
  let moved = 0;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    chars.push(String.fromCharCode(printable ? byte : 256 + moved++));
  }
  return chars;
})();

const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

/** The byte-level string of `bytes` (how tokenizer.json writes a token). */
export function bytesToByteLevel(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => BYTE_TO_CHAR[byte]).join('');
}

/** The bytes a byte-level string stands for, or null if a character is outside the alphabet. */
export function byteLevelToBytes(text: string): Uint8Array | null {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const byte = CHAR_TO_BYTE.get(text[i]!);
    if (byte === undefined) return null;
    bytes[i] = byte;
  }
  return bytes;
}

/** One merge rule: the adjacent ids `left`, `right` become `result`. */
export interface BpeMerge {
  readonly left: number;
  readonly right: number;
  readonly result: number;
}

/**
 * What a byte-level BPE tokenizer is made of. Every single byte must be a token.
 *
 * @example
 * const model: BpeModel = { tokenBytes: bytes, merges: [] }; // bytes[b] = [b]: the byte tokenizer
 */
export interface BpeModel {
  /** The UTF-8 bytes of each token, indexed by id (0 … vocabSize−1); distinct and non-empty. */
  readonly tokenBytes: readonly Uint8Array[];
  /** The merge rules, lowest rank (applied first) first. */
  readonly merges: readonly BpeMerge[];
}

/** GPT-2's pre-tokenizer and decoder as tokenizer.json spells them. */
const BYTE_LEVEL = {
  type: 'ByteLevel',
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: true,
} as const;
/** Pre-tokens kept in the encoding cache before it is emptied (bounds its memory). */
const CACHE_LIMIT = 1 << 16;
const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF as text (the default would drop it and break round trips).
const utf8Lenient = new TextDecoder('utf-8', { ignoreBOM: true });

class BytePairTokenizer implements Tokenizer {
  readonly kind: 'byte' | 'bpe';
  readonly vocabSize: number;
  private readonly tokenBytes: readonly Uint8Array[];
  private readonly merges: readonly BpeMerge[];
  private readonly byteIds = new Int32Array(256).fill(-1);
  /** Pair key (left·vocabSize + right) → merge rank. */
  private readonly rankOf = new Map<number, number>();
  private readonly cache = new Map<string, Int32Array>();

  constructor(model: BpeModel) {
    this.tokenBytes = model.tokenBytes;
    this.merges = model.merges;
    this.vocabSize = model.tokenBytes.length;
    this.kind = model.merges.length === 0 ? 'byte' : 'bpe';
    model.tokenBytes.forEach((bytes, id) => {
      if (bytes.length === 1) this.byteIds[bytes[0]!] = id;
    });
    const missing = this.byteIds.indexOf(-1);
    if (missing >= 0) throw new Error(`bpeTokenizer: byte ${missing} has no token`);
    model.merges.forEach(({ left, right }, rank) => {
      const key = left * this.vocabSize + right;
      if (!this.rankOf.has(key)) this.rankOf.set(key, rank);
    });
  }

  encode(text: string): Int32Array {
    const out: number[] = [];
    for (const match of text.matchAll(PRE_TOKEN))
      for (const id of this.encodePreToken(match[0])) out.push(id);
    return Int32Array.from(out);
  }

  decode(ids: ArrayLike<number>): string {
    const parts = Array.from(ids, (id, i) => {
      const bytes = this.tokenBytes[id];
      if (bytes === undefined)
        throw new RangeError(
          `decode: id ${id} at position ${i} is not in the vocabulary (0…${this.vocabSize - 1})`,
        );
      return bytes;
    });
    const out = new Uint8Array(parts.reduce((sum, bytes) => sum + bytes.length, 0));
    let offset = 0;
    for (const bytes of parts) {
      out.set(bytes, offset);
      offset += bytes.length;
    }
    return utf8Lenient.decode(out);
  }

  toJSON(): HFTokenizerJSON {
    const text = this.tokenBytes.map(bytesToByteLevel);
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { ...BYTE_LEVEL },
      post_processor: null,
      decoder: { ...BYTE_LEVEL },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        // fromEntries defines own properties, so even a token spelled "__proto__" survives.
        vocab: Object.fromEntries(text.map((token, id) => [token, id])),
        merges: this.merges.map(({ left, right }) => `${text[left]} ${text[right]}`),
      },
    };
  }

  /**
   * The ids of one pre-token: start from its bytes and repeatedly apply the lowest-ranked merge
   * present, leftmost first, as `tokenizers` does. The symbols form a linked list and candidate
   * pairs sit in a heap keyed (rank, position), so a long pre-token costs O(n log n).
   */
  private encodePreToken(piece: string): Int32Array {
    const cached = this.cache.get(piece);
    if (cached) return cached;
    const bytes = utf8.encode(piece);
    const n = bytes.length;
    const ids = new Int32Array(n); // (n) token id per symbol; -1 once merged into its left neighbour
    const next = new Int32Array(n); // (n) index of the next live symbol, -1 at the end
    const prev = new Int32Array(n); // (n) index of the previous live symbol, -1 at the start
    for (let i = 0; i < n; i++) {
      ids[i] = this.byteIds[bytes[i]!]!;
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new PairHeap();
    const consider = (pos: number): void => {
      const rank = this.rankOf.get(ids[pos]! * this.vocabSize + ids[next[pos]!]!);
      if (rank !== undefined) heap.push(rank, pos);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.size > 0) {
      const [rank, pos] = heap.pop();
      const right = next[pos]!;
      // Entries go stale when a neighbour merged first; the pair there must still be this merge.
      if (ids[pos] === -1 || right === -1) continue;
      if (this.rankOf.get(ids[pos]! * this.vocabSize + ids[right]!) !== rank) continue;
      ids[pos] = this.merges[rank]!.result;
      ids[right] = -1;
      next[pos] = next[right]!;
      if (next[pos] !== -1) prev[next[pos]!] = pos;
      if (prev[pos] !== -1) consider(prev[pos]!);
      if (next[pos] !== -1) consider(pos);
    }
    const out: number[] = [];
    for (let i = 0; i !== -1; i = next[i]!) out.push(ids[i]!);
    const result = Int32Array.from(out);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(piece, result);
    return result;
  }
}

/**
 * A byte-level BPE tokenizer from its tokens and merges (what `trainBpe` and `tokenizerFromJSON`
 * build; most code wants those instead).
 *
 * @example
 * const bytes = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b));
 * const hi = bpeTokenizer({ tokenBytes: [...bytes, Uint8Array.of(104, 105)], merges: [{ left: 104, right: 105, result: 256 }] });
 * hi.encode('hi!'); // Int32Array [256, 33]
 */
export function bpeTokenizer(model: BpeModel): Tokenizer {
  return new BytePairTokenizer(model);
}

/** Options of `trainBpe`. */
export interface TrainBpeOptions {
  /** Tokens wanted in all: the 256 bytes plus one per learned merge. An integer ≥ 256. */
  vocabSize: number;
  /** Stop early once the most frequent pair occurs fewer times than this (default 2). */
  minFrequency?: number;
  /** Called after each merge with the tokens learned so far and the number wanted (vocabSize − 256). */
  onProgress?: (merges: number, target: number) => void;
}

/** Largest vocabulary `trainBpe` accepts, so that a pair key left·V + right stays an exact double. */
const MAX_VOCAB = 1 << 24;

/**
 * Learns a byte-level BPE vocabulary from `text`: count the pre-tokens, then repeatedly merge the
 * most frequent adjacent pair (ties go to the smaller left id, then the smaller right id) into a
 * new token with the next id (256, 257, …) until `vocabSize` tokens exist, the pairs run out, or
 * the best pair is rarer than `minFrequency`. If a merge spells a token that already exists, it
 * reuses that id (as `tokenizers` does), so merges may outnumber learned tokens.
 *
 * Pair counts are kept over the unique pre-tokens and updated incrementally: a merge touches only
 * the words that contain its pair.
 *
 * @example
 * const tok = trainBpe('the cat sat on the mat with the hat', { vocabSize: 260 });
 * tok.vocabSize; // 260
 * tok.decode(tok.encode('the hat')); // 'the hat'
 */
export function trainBpe(text: string, options: TrainBpeOptions): Tokenizer {
  const { vocabSize, minFrequency = 2, onProgress } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < 256 || vocabSize > MAX_VOCAB)
    throw new RangeError(`trainBpe: vocabSize must be an integer in [256, ${MAX_VOCAB}], got ${vocabSize}`);
  if (!(minFrequency >= 1)) throw new RangeError(`trainBpe: minFrequency must be ≥ 1, got ${minFrequency}`);

  // Unique pre-tokens with their counts, in order of first appearance (keeps training deterministic).
  const wordCounts = new Map<string, number>();
  for (const match of text.matchAll(PRE_TOKEN)) wordCounts.set(match[0], (wordCounts.get(match[0]) ?? 0) + 1);
  const words: number[][] = []; // (W, symbols) each unique pre-token as token ids
  const freqs: number[] = []; // (W) how often it occurs
  for (const [word, count] of wordCounts) {
    const bytes = utf8.encode(word);
    if (bytes.length < 2) continue; // a single byte has no pair to merge
    words.push(Array.from(bytes));
    freqs.push(count);
  }

  const pairKey = (left: number, right: number): number => left * vocabSize + right;
  const pairCounts = new Map<number, number>(); // pair key → occurrences, weighted by word count
  const wordsWith = new Map<number, Set<number>>(); // pair key → words that contain (or contained) it
  const noteWord = (key: number, word: number): void => {
    const set = wordsWith.get(key);
    if (set) set.add(word);
    else wordsWith.set(key, new Set([word]));
  };
  words.forEach((symbols, w) => {
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i]!, symbols[i + 1]!);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + freqs[w]!);
      noteWord(key, w);
    }
  });
  // Max-heap on count via (−count, key); entries are refreshed lazily when popped.
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(-count, key);

  const tokenBytes: Uint8Array[] = Array.from({ length: 256 }, (_, byte) => Uint8Array.of(byte));
  const tokenText = tokenBytes.map(bytesToByteLevel);
  const idOfText = new Map(tokenText.map((token, id) => [token, id]));
  const merges: BpeMerge[] = [];

  while (tokenBytes.length < vocabSize && heap.size > 0) {
    const [negCount, key] = heap.pop();
    const count = pairCounts.get(key) ?? 0;
    if (count === 0) continue;
    if (count !== -negCount) {
      heap.push(-count, key);
      continue;
    }
    if (count < minFrequency) break;
    const left = Math.floor(key / vocabSize);
    const right = key - left * vocabSize;
    const spelled = tokenText[left]! + tokenText[right]!;
    let result = idOfText.get(spelled);
    if (result === undefined) {
      result = tokenBytes.length;
      const bytes = new Uint8Array(tokenBytes[left]!.length + tokenBytes[right]!.length);
      bytes.set(tokenBytes[left]!);
      bytes.set(tokenBytes[right]!, tokenBytes[left]!.length);
      tokenBytes.push(bytes);
      tokenText.push(spelled);
      idOfText.set(spelled, result);
    }
    merges.push({ left, right, result });

    // Rewrite every word holding the pair and collect the net change of each pair's count.
    const delta = new Map<number, number>();
    const shift = (pair: number, by: number): void => {
      delta.set(pair, (delta.get(pair) ?? 0) + by);
    };
    for (const w of wordsWith.get(key) ?? []) {
      const symbols = words[w]!;
      const merged: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) {
          merged.push(result);
          i++;
        } else merged.push(symbols[i]!);
      }
      if (merged.length === symbols.length) continue; // a stale entry: merged away earlier
      const freq = freqs[w]!;
      for (let i = 0; i + 1 < symbols.length; i++) shift(pairKey(symbols[i]!, symbols[i + 1]!), -freq);
      for (let i = 0; i + 1 < merged.length; i++) {
        const pair = pairKey(merged[i]!, merged[i + 1]!);
        shift(pair, freq);
        noteWord(pair, w);
      }
      words[w] = merged;
    }
    wordsWith.delete(key);
    for (const [pair, by] of delta) {
      if (by === 0) continue;
      const updated = (pairCounts.get(pair) ?? 0) + by;
      if (updated <= 0) {
        pairCounts.delete(pair);
        wordsWith.delete(pair);
      } else {
        pairCounts.set(pair, updated);
        if (by > 0) heap.push(-updated, pair); // counts that grew need a fresh entry
      }
    }
    onProgress?.(tokenBytes.length - 256, vocabSize - 256);
  }
  return bpeTokenizer({ tokenBytes, merges });
}

/** A binary min-heap of (primary, secondary) number pairs, ordered lexicographically. */
class PairHeap {
  private readonly items: [number, number][] = [];

  get size(): number {
    return this.items.length;
  }

  push(primary: number, secondary: number): void {
    const items = this.items;
    items.push([primary, secondary]);
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!pairLess(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  /** Removes and returns the smallest pair; the heap must not be empty. */
  pop(): [number, number] {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length === 0) return top;
    items[0] = last;
    for (let i = 0; ; ) {
      let child = 2 * i + 1;
      if (child >= items.length) break;
      if (child + 1 < items.length && pairLess(items[child + 1]!, items[child]!)) child++;
      if (!pairLess(items[child]!, items[i]!)) break;
      [items[i], items[child]] = [items[child]!, items[i]!];
      i = child;
    }
    return top;
  }
}

function pairLess(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}
