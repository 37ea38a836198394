/**
 * The tokenizer interface, the byte tokenizer, and reading HuggingFace `tokenizer.json` objects.
 *
 * Every tokenizer here is byte-level BPE: ids 0…255 of the byte tokenizer are the UTF-8 bytes,
 * and a trained tokenizer adds merged tokens from 256 on. `toJSON()` writes the `tokenizers`
 * library's format, so a file saved here loads with `Tokenizer.from_file` and encodes the same.
 *
 * Browser-safe: imports nothing from `node:*`.
 */
import { type BpeMerge, BYTE_TO_CHAR, bpeTokenizer, byteLevelToBytes } from './bpe.js';

/**
 * Turns text into token ids and back.
 *
 * @example
 * const tok: Tokenizer = byteTokenizer();
 * const ids = tok.encode('héllo'); // Int32Array [104, 195, 169, 108, 108, 111]
 * tok.decode(ids); // 'héllo'
 */
export interface Tokenizer {
  /** 'byte' when there are no merges (ids are UTF-8 bytes), 'bpe' otherwise. */
  readonly kind: 'byte' | 'bpe';
  /** Number of ids; every id is in [0, vocabSize). */
  readonly vocabSize: number;
  /** The ids of `text`. */
  encode(text: string): Int32Array;
  /** The text of `ids`; byte sequences that are not valid UTF-8 become U+FFFD, never an error. */
  decode(ids: ArrayLike<number>): string;
  /** A HuggingFace `tokenizers`-compatible tokenizer.json object (write it with JSON.stringify). */
  toJSON(): HFTokenizerJSON;
}

/** The ByteLevel pre-tokenizer / decoder entry of a tokenizer.json. */
export interface HFByteLevel {
  type: 'ByteLevel';
  add_prefix_space: boolean;
  trim_offsets: boolean;
  use_regex: boolean;
}

/**
 * The tokenizer.json that `toJSON()` writes: the `tokenizers` schema (version 1.0) with a
 * byte-level BPE model and nothing else (no normalizer, special tokens, padding or truncation).
 *
 * @example
 * const json: HFTokenizerJSON = byteTokenizer().toJSON();
 * json.model.vocab['Ġ']; // 32, the space byte
 */
export interface HFTokenizerJSON {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: [];
  normalizer: null;
  pre_tokenizer: HFByteLevel;
  post_processor: null;
  decoder: HFByteLevel;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: false;
    byte_fallback: false;
    ignore_merges: false;
    /** Byte-level token string → id. */
    vocab: Record<string, number>;
    /** Merge rules, lowest rank first, each "left right" in byte-level spelling. */
    merges: string[];
  };
}

/**
 * A tokenizer.json that cannot be used. The message starts with the source, e.g.
 * `run/tokenizer.json: model.type must be "BPE", got "WordPiece"`.
 *
 * @example
 * try { tokenizerFromJSON(json, 'run/tokenizer.json'); }
 * catch (e) { if (e instanceof TokenizerFormatError) console.error(e.source, e.message); }
 */
export class TokenizerFormatError extends Error {
  /** Where the JSON came from, as given to `tokenizerFromJSON`. */
  readonly source: string;

  constructor(source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = 'TokenizerFormatError';
    this.source = source;
  }
}

/**
 * The byte tokenizer: ids 0…255 are the UTF-8 bytes of the text (vocabSize 256). As JSON it is
 * byte-level BPE with no merges.
 *
 * @example
 * byteTokenizer().encode('A€'); // Int32Array [65, 226, 130, 172]
 */
export function byteTokenizer(): Tokenizer {
  return bpeTokenizer({
    tokenBytes: Array.from({ length: 256 }, (_, byte) => Uint8Array.of(byte)),
    merges: [],
  });
}

/**
 * Reads a tokenizer.json (an object, or its text) as written by `toJSON()` or by `tokenizers` for
 * a byte-level BPE model, checking everything that would make it encode differently here than
 * there. Ids must be 0…n−1, each used once, and every byte must have a token. Failures throw a
 * `TokenizerFormatError` naming `source` and the problem.
 *
 * @example
 * const tok = tokenizerFromJSON(JSON.parse(await readFile('tokenizer.json', 'utf8')), 'tokenizer.json');
 * tokenizerFromJSON(trained.toJSON()).encode('same ids'); // as trained.encode('same ids')
 */
export function tokenizerFromJSON(json: unknown, source = 'tokenizer.json'): Tokenizer {
  const fail = (problem: string): never => {
    throw new TokenizerFormatError(source, problem);
  };
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json);
    } catch (error) {
      fail(`not valid JSON (${(error as Error).message})`);
    }
  }
  if (!isObject(json)) return fail(`expected a tokenizer.json object, got ${describe(json)}`);

  for (const field of ['normalizer', 'truncation', 'padding'] as const)
    if (json[field] != null) fail(`${field} must be null (this tokenizer does not support one)`);
  const added = json.added_tokens;
  if (added != null && !(Array.isArray(added) && added.length === 0))
    fail('added_tokens must be empty (special tokens are not supported)');
  checkByteLevel(json.pre_tokenizer, 'pre_tokenizer', fail);
  checkByteLevel(json.decoder, 'decoder', fail);
  const post = json.post_processor;
  if (post != null && !(isObject(post) && post.type === 'ByteLevel'))
    fail(`post_processor must be null or ByteLevel, got ${describe(post)}`);

  const model = json.model;
  if (!isObject(model)) return fail(`model is missing or not an object (got ${describe(model)})`);
  if (model.type !== 'BPE') fail(`model.type must be "BPE", got ${describe(model.type)}`);
  for (const field of ['continuing_subword_prefix', 'end_of_word_suffix'] as const)
    if (model[field] != null && model[field] !== '') fail(`model.${field} must be null for byte-level BPE`);
  if (model.dropout != null && model.dropout !== 0)
    fail('model.dropout must be null (encoding is deterministic)');
  if (model.ignore_merges === true) fail('model.ignore_merges must be false');

  const vocab = model.vocab;
  if (!isObject(vocab)) return fail(`model.vocab is missing or not an object (got ${describe(vocab)})`);
  BYTE_TO_CHAR.forEach((char, byte) => {
    if (!Object.hasOwn(vocab, char))
      fail(
        `model.vocab lacks the token for byte 0x${byte.toString(16).padStart(2, '0')} (${JSON.stringify(char)})`,
      );
  });
  const entries = Object.entries(vocab);
  const size = entries.length;
  const tokenOf: string[] = new Array(size); // (V) byte-level spelling per id
  const tokenBytes: Uint8Array[] = new Array(size); // (V) bytes per id
  for (const [token, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= size)
      fail(
        `model.vocab[${JSON.stringify(token)}] is ${describe(id)}; ids must be the integers 0…${size - 1}`,
      );
    const index = id as number;
    if (tokenOf[index] !== undefined)
      fail(
        `model.vocab: duplicate id ${index}, used by ${JSON.stringify(tokenOf[index])} and ${JSON.stringify(token)}`,
      );
    const bytes = byteLevelToBytes(token);
    if (bytes === null || bytes.length === 0)
      fail(`model.vocab: token ${JSON.stringify(token)} is not spelled in the byte-level alphabet`);
    tokenOf[index] = token;
    tokenBytes[index] = bytes!;
  }

  const rawMerges = model.merges;
  if (!Array.isArray(rawMerges))
    return fail(`model.merges is missing or not an array (got ${describe(rawMerges)})`);
  const merges: BpeMerge[] = [];
  const firstRank = new Map<string, number>();
  for (const [rank, entry] of (rawMerges as unknown[]).entries()) {
    const pair =
      parseMerge(entry) ??
      fail(`model.merges[${rank}] must be "left right" or ["left", "right"], got ${describe(entry)}`);
    const [left, right] = pair;
    for (const token of pair)
      if (!Object.hasOwn(vocab, token))
        fail(`model.merges[${rank}] ("${left} ${right}") references unknown token ${JSON.stringify(token)}`);
    if (!Object.hasOwn(vocab, left + right))
      fail(
        `model.merges[${rank}] ("${left} ${right}") makes ${JSON.stringify(left + right)}, which is not in model.vocab`,
      );
    const earlier = firstRank.get(`${left} ${right}`);
    if (earlier !== undefined)
      fail(`model.merges[${rank}] repeats model.merges[${earlier}] ("${left} ${right}")`);
    firstRank.set(`${left} ${right}`, rank);
    merges.push({
      left: vocab[left] as number,
      right: vocab[right] as number,
      result: vocab[left + right] as number,
    });
  }
  return bpeTokenizer({ tokenBytes, merges });
}

/** A merge written as "left right" (older files) or ["left", "right"] (newer `tokenizers`). */
function parseMerge(entry: unknown): [string, string] | null {
  if (typeof entry === 'string') {
    const parts = entry.split(' ');
    return parts.length === 2 ? [parts[0]!, parts[1]!] : null;
  }
  if (
    Array.isArray(entry) &&
    entry.length === 2 &&
    typeof entry[0] === 'string' &&
    typeof entry[1] === 'string'
  )
    return [entry[0], entry[1]];
  return null;
}

/** The pre-tokenizer and decoder must be ByteLevel; the pre-tokenizer GPT-2's, adding no space. */
function checkByteLevel(value: unknown, field: string, fail: (problem: string) => never): void {
  if (!isObject(value) || value.type !== 'ByteLevel')
    fail(`${field} must be ByteLevel, got ${describe(value)}`);
  if (field !== 'pre_tokenizer') return; // the decoder ignores its options
  const entry = value as Record<string, unknown>;
  if (entry.add_prefix_space === true)
    fail('pre_tokenizer.add_prefix_space must be false (a space would be added to the text)');
  if (entry.use_regex === false) fail('pre_tokenizer.use_regex must be true (the GPT-2 pre-tokenizer regex)');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short rendering of a value for error messages. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
