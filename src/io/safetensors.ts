/**
 * Reading and writing the safetensors format, in memory.
 *
 * Layout of a file:
 *
 *   [8 bytes]  N, the header length, unsigned 64-bit little-endian
 *   [N bytes]  UTF-8 JSON header, padded with trailing spaces so 8 + N is a multiple of 8
 *   [rest]     the data buffer: every tensor's raw little-endian bytes, back to back
 *
 * The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets are
 * relative to the start of the data buffer) and may hold a `__metadata__` map of string to string.
 *
 * This module is browser-safe on purpose: it imports nothing from `node:*` and works on plain
 * `Uint8Array`s, so the same code can load weights fetched over HTTP. File access lives in
 * `checkpoint.ts`.
 *
 * The parser trusts nothing in the file: every field is checked and every failure is a
 * `SafetensorsError` whose message starts with the source name, so a bad download or a truncated
 * write is reported instead of silently producing garbage weights.
 *
 * Content hashes: the writer records each tensor's SHA-256 in `__metadata__` under
 * `sha256.<tensor name>` (lowercase hex of the tensor's raw little-endian data bytes), and the
 * reader checks every such entry, so flipped data bytes are an error naming the tensor. A file
 * has a hash for every tensor or for none. Other readers simply see extra metadata strings; files
 * without hashes still load.
 */

import { type HashFunction, sha256Hex } from './sha256.js';

/** Element types that may appear in a safetensors header and that this module can read. */
export type SafeDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8';

/**
 * A named tensor as this module hands it over: a dense row-major array plus its shape.
 *
 * @example
 * const w: NamedArray = { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
 */
export interface NamedArray {
  dtype: 'float32' | 'float64' | 'int32';
  shape: number[];
  data: Float32Array | Float64Array | Int32Array;
}

/**
 * Result of `parseSafetensors`: the tensors by name and the header's `__metadata__` map.
 *
 * @example
 * const { tensors, metadata }: ParsedSafetensors = parseSafetensors(bytes);
 */
export interface ParsedSafetensors {
  tensors: Record<string, NamedArray>;
  /** The header's `__metadata__`, without the `sha256.*` hash entries. */
  metadata: Record<string, string>;
  /** The recorded SHA-256 of each tensor that has one (all of them in files we write). */
  checksums: Record<string, string>;
}

/**
 * Options of `serializeSafetensors` and `parseSafetensors`.
 *
 * @example
 * const options: SafetensorsOptions = { hash: (bytes) => createHash('sha256').update(bytes).digest('hex') };
 */
export interface SafetensorsOptions {
  /**
   * The SHA-256 to record (writing) or check (reading) per tensor; default `sha256Hex`, the
   * TypeScript one. `false` writes no hashes, or skips checking them (only when the bytes are
   * already proven, e.g. by a checkpoint manifest).
   */
  hash?: HashFunction | false;
}

/**
 * Prefix of the `__metadata__` keys that hold tensor hashes: `sha256.<tensor name>`.
 *
 * @example
 * metadata[`${CHECKSUM_PREFIX}embedding`]; // '9f86d0…'
 */
export const CHECKSUM_PREFIX = 'sha256.';

/**
 * Any problem with a safetensors buffer, found while parsing or serializing. The message starts
 * with the source name (a file path, or `<buffer>`), e.g.
 * `model.safetensors: header length 999999 exceeds file size 120`.
 *
 * @example
 * try { parseSafetensors(bytes, 'model.safetensors'); }
 * catch (e) { if (e instanceof SafetensorsError) console.error(e.source, e.message); }
 */
export class SafetensorsError extends Error {
  /** Where the bytes came from, as given to `parseSafetensors` (or `<serialize>`). */
  readonly source: string;

  constructor(source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = 'SafetensorsError';
    this.source = source;
  }
}

/**
 * Headers larger than this are refused. Real headers are a few hundred bytes per tensor, so a
 * bigger value means a corrupt or hostile length field; refusing it avoids a huge allocation.
 *
 * @example
 * if (headerLength > MAX_HEADER_BYTES) throw new Error('corrupt file');
 */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of each on-disk dtype. */
const ITEM_SIZE: Record<SafeDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
};

/** On-disk dtype used when writing each in-memory dtype. */
const WRITE_DTYPE: Record<NamedArray['dtype'], SafeDType> = {
  float32: 'F32',
  float64: 'F64',
  int32: 'I32',
};

/** Typed array constructor expected for each in-memory dtype (checked on serialize). */
const ARRAY_TYPE = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
} as const;

const METADATA_KEY = '__metadata__';

/**
 * Typed arrays use the host's byte order, safetensors is always little-endian. On a little-endian
 * host (nearly all of them) raw bytes can be copied as is; elsewhere we go through DataView.
 */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/**
 * Encodes tensors (and optional string metadata) as a safetensors file image. Tensors are laid
 * out contiguously in sorted name order, so the same input always gives the same bytes.
 *
 * Each tensor's SHA-256 goes into `__metadata__` as `sha256.<name>` (unless `hash: false`).
 *
 * Throws `SafetensorsError` (source `<serialize>`) for an empty or reserved name, a bad shape,
 * a data length that differs from the product of the shape, a data array of the wrong type, or
 * a metadata key that starts with `sha256.` (reserved for the hashes).
 *
 * @example
 * const bytes = serializeSafetensors(
 *   { bias: { dtype: 'float32', shape: [3], data: new Float32Array([0.1, 0.2, 0.3]) } },
 *   { format: 'pt' },
 * );
 */
export function serializeSafetensors(
  tensors: Record<string, NamedArray>,
  metadata?: Record<string, string>,
  options: SafetensorsOptions = {},
): Uint8Array {
  const source = '<serialize>';
  const names = Object.keys(tensors).sort();

  // Lay the tensors out first so the header can record their offsets.
  const layout: { name: string; tensor: NamedArray; begin: number; end: number }[] = [];
  let offset = 0;
  for (const name of names) {
    if (name.length === 0) throw new SafetensorsError(source, 'tensor name must not be empty');
    if (name === METADATA_KEY) {
      throw new SafetensorsError(source, `tensor name "${METADATA_KEY}" is reserved for metadata`);
    }
    const tensor = tensors[name]!;
    const expectedType = ARRAY_TYPE[tensor.dtype];
    if (expectedType === undefined) {
      throw new SafetensorsError(
        source,
        `tensor "${name}": unsupported dtype ${JSON.stringify(tensor.dtype)}`,
      );
    }
    if (!(tensor.data instanceof expectedType)) {
      throw new SafetensorsError(
        source,
        `tensor "${name}": dtype ${tensor.dtype} needs a ${expectedType.name}, got ${describeValue(tensor.data)}`,
      );
    }
    const count = checkShape(source, name, tensor.shape);
    if (tensor.data.length !== count) {
      throw new SafetensorsError(
        source,
        `tensor "${name}": data has ${tensor.data.length} elements but shape [${tensor.shape.join(', ')}] needs ${count}`,
      );
    }
    const begin = offset;
    offset += tensor.data.byteLength;
    layout.push({ name, tensor, begin, end: offset });
  }

  const headerMetadata: [string, string][] = [];
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (typeof value !== 'string') {
      throw new SafetensorsError(source, `metadata "${key}" must be a string, got ${describeValue(value)}`);
    }
    if (key.startsWith(CHECKSUM_PREFIX)) {
      throw new SafetensorsError(source, `metadata key "${key}" is reserved for the tensor hashes`);
    }
    headerMetadata.push([key, value]);
  }
  const hash = options.hash ?? sha256Hex;
  if (hash !== false) {
    for (const { name, tensor } of layout) {
      headerMetadata.push([`${CHECKSUM_PREFIX}${name}`, hash(littleEndianBytes(tensor.data))]);
    }
  }

  // The header is assembled by hand rather than with one JSON.stringify of an object, because
  // JS objects list integer-like keys ("0", "12") first; building the text keeps sorted order.
  const parts: string[] = [];
  if (headerMetadata.length > 0) {
    const entries = headerMetadata.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${entries.join(',')}}`);
  }
  for (const { name, tensor, begin, end } of layout) {
    const info = { dtype: WRITE_DTYPE[tensor.dtype], shape: tensor.shape, data_offsets: [begin, end] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);

  // Pad with spaces (valid JSON whitespace) so the data buffer starts 8-byte aligned in the file.
  const headerLength = Math.ceil((8 + json.length) / 8) * 8 - 8;
  if (headerLength > MAX_HEADER_BYTES) {
    throw new SafetensorsError(
      source,
      `header would be ${headerLength} bytes, more than ${MAX_HEADER_BYTES}`,
    );
  }

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);

  const dataStart = 8 + headerLength;
  for (const { tensor, begin } of layout) {
    writeElements(view, out, dataStart + begin, tensor.data);
  }
  return out;
}

/** A typed array's bytes as they are stored in the file (little-endian), for hashing. */
function littleEndianBytes(data: Float32Array | Float64Array | Int32Array): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN) return bytes;
  const out = new Uint8Array(data.byteLength);
  writeElements(new DataView(out.buffer), out, 0, data);
  return out;
}

/** Copies one typed array into `out` at `at`, little-endian whatever the host order. */
function writeElements(
  view: DataView,
  out: Uint8Array,
  at: number,
  data: Float32Array | Float64Array | Int32Array,
): void {
  if (HOST_LITTLE_ENDIAN) {
    // Respect byteOffset: the caller's array may be a view into a larger buffer.
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    return;
  }
  const n = data.length;
  if (data instanceof Float32Array) {
    for (let i = 0; i < n; i++) view.setFloat32(at + 4 * i, data[i]!, true);
  } else if (data instanceof Float64Array) {
    for (let i = 0; i < n; i++) view.setFloat64(at + 8 * i, data[i]!, true);
  } else {
    for (let i = 0; i < n; i++) view.setInt32(at + 4 * i, data[i]!, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/** One validated header entry, before its bytes are decoded. */
interface Entry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

/**
 * Decodes a safetensors file image. Every returned array is a fresh copy with its own aligned
 * buffer (so nothing aliases `bytes`). F32, F64 and I32 come back as their own type; F16 and BF16
 * are widened to float32; I64, I16, I8 and U8 become int32 (I64 only when every value fits).
 *
 * Throws `SafetensorsError`, its message starting with `source`, when anything is wrong: too
 * short, absurd header length, bad JSON, a malformed entry, unknown dtype, offsets that disagree
 * with the shape, a truncated data buffer, overlapping tensors or gaps, non-string metadata, or a
 * recorded `sha256.<name>` that is malformed, names no tensor, or differs from the tensor's bytes.
 *
 * @example
 * const { tensors, metadata } = parseSafetensors(bytes, 'model.safetensors');
 * const w = tensors['layer0.weight']; // { dtype: 'float32', shape: [...], data: Float32Array }
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source = '<buffer>',
  options: SafetensorsOptions = {},
): ParsedSafetensors {
  const fail = (problem: string): never => {
    throw new SafetensorsError(source, problem);
  };

  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength64 = view.getBigUint64(0, true);
  if (headerLength64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLength64} is absurd (limit ${MAX_HEADER_BYTES}); file is corrupt`);
  }
  const headerLength = Number(headerLength64);
  if (8 + headerLength > bytes.length) {
    fail(`header length ${headerLength} exceeds file size ${bytes.length}`);
  }

  // Decode strictly: a lenient decoder would turn invalid bytes into U+FFFD and hide corruption.
  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) fail(`header must be a JSON object, got ${describeValue(header)}`);
  const headerObject = header as Record<string, unknown>;

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const allMetadata = parseMetadata(headerObject[METADATA_KEY], fail);

  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(headerObject)) {
    if (name === METADATA_KEY) continue;
    entries.push(parseEntry(name, raw, dataLength, fail));
  }
  checkCoverage(entries, dataLength, fail);
  const { metadata, checksums } = splitChecksums(allMetadata, entries, fail);
  const hash = options.hash ?? sha256Hex;
  if (hash !== false) {
    for (const entry of entries) {
      const recorded = Object.hasOwn(checksums, entry.name) ? checksums[entry.name] : undefined;
      if (recorded === undefined) continue;
      const at = dataStart + entry.begin;
      const actual = hash(bytes.subarray(at, dataStart + entry.end));
      if (actual !== recorded) {
        fail(
          `tensor "${entry.name}": its data does not match the SHA-256 recorded in the header ` +
            `(recorded ${recorded.slice(0, 12)}…, data has ${actual.slice(0, 12)}…): the file is corrupt`,
        );
      }
    }
  }

  // Object.fromEntries defines own properties, so a tensor called "__proto__" stays a tensor.
  const tensors = Object.fromEntries(
    entries.map((e) => [e.name, decodeEntry(e, bytes, dataStart, view, fail)] as const),
  );
  return { tensors, metadata, checksums };
}

/**
 * Separates the `sha256.<name>` entries from the rest of the metadata. Each must be 64 lowercase
 * hex digits and name a tensor of the file (a hash for a missing tensor means a damaged header),
 * and a file has either a hash for every tensor or none.
 */
function splitChecksums(
  all: Record<string, string>,
  entries: readonly Entry[],
  fail: (problem: string) => never,
): { metadata: Record<string, string>; checksums: Record<string, string> } {
  const names = new Set(entries.map((e) => e.name));
  const metadata: [string, string][] = [];
  const checksums: [string, string][] = [];
  for (const [key, value] of Object.entries(all)) {
    if (!key.startsWith(CHECKSUM_PREFIX)) {
      metadata.push([key, value]);
      continue;
    }
    const name = key.slice(CHECKSUM_PREFIX.length);
    if (!names.has(name)) fail(`${METADATA_KEY} has "${key}" but there is no tensor "${name}"`);
    if (!/^[0-9a-f]{64}$/.test(value)) {
      fail(`${METADATA_KEY} "${key}" must be 64 lowercase hex digits, got ${describeValue(value)}`);
    }
    checksums.push([name, value]);
  }
  // All or none: a writer records every tensor's hash, so a tensor without one in a file that has
  // others means a damaged key (which would otherwise switch the check off for that tensor).
  if (checksums.length > 0 && checksums.length < entries.length) {
    const hashed = new Set(checksums.map(([name]) => name));
    const missing = entries.find((e) => !hashed.has(e.name))!;
    fail(
      `tensor "${missing.name}" has no "${CHECKSUM_PREFIX}${missing.name}" in ${METADATA_KEY} while other tensors do: the header is damaged`,
    );
  }
  return { metadata: Object.fromEntries(metadata), checksums: Object.fromEntries(checksums) };
}

/**
 * Where a set of named arrays holds NaN or ±Infinity: the totals and, per tensor (in name
 * order), the count and the first flat index. Integer arrays are always finite.
 *
 * @example
 * const report = nonFiniteValues(tensors);
 * if (report.count > 0) console.error(describeNonFinite(report));
 */
export interface NonFiniteReport {
  count: number;
  nan: number;
  infinite: number;
  tensors: { name: string; count: number; firstIndex: number }[];
}

/**
 * Counts the NaN and ±Infinity values of every float array (see `NonFiniteReport`).
 *
 * @example
 * nonFiniteValues({ w: { dtype: 'float32', shape: [2], data: new Float32Array([1, NaN]) } }).count; // 1
 */
export function nonFiniteValues(tensors: Readonly<Record<string, NamedArray>>): NonFiniteReport {
  const report: NonFiniteReport = { count: 0, nan: 0, infinite: 0, tensors: [] };
  for (const name of Object.keys(tensors).sort()) {
    const { dtype, data } = tensors[name]!;
    if (dtype === 'int32') continue;
    let count = 0;
    let firstIndex = -1;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v - v === 0) continue; // finite; NaN and ±∞ give NaN
      if (Number.isNaN(v)) report.nan++;
      else report.infinite++;
      if (count++ === 0) firstIndex = i;
    }
    if (count > 0) {
      report.count += count;
      report.tensors.push({ name, count, firstIndex });
    }
  }
  return report;
}

/**
 * One line for a `NonFiniteReport`: how many, which kinds, and where (the first few tensors).
 *
 * @example
 * describeNonFinite(report); // '3 non-finite values (2 NaN, 1 ±Infinity) in 2 tensors: "a" (2, first at index 0), "b" (1, first at index 5)'
 */
export function describeNonFinite(report: NonFiniteReport, shown = 5): string {
  const where = report.tensors
    .slice(0, shown)
    .map((t) => `"${t.name}" (${t.count}, first at index ${t.firstIndex})`)
    .join(', ');
  const more = report.tensors.length > shown ? `, and ${report.tensors.length - shown} more` : '';
  const tensors = `${report.tensors.length} tensor${report.tensors.length === 1 ? '' : 's'}`;
  return `${report.count} non-finite value${report.count === 1 ? '' : 's'} (${report.nan} NaN, ${report.infinite} ±Infinity) in ${tensors}: ${where}${more}`;
}

/** Validates `__metadata__`: absent, or an object whose values are all strings. */
function parseMetadata(raw: unknown, fail: (problem: string) => never): Record<string, string> {
  if (raw === undefined) return {};
  if (!isPlainObject(raw)) return fail(`${METADATA_KEY} must be an object, got ${describeValue(raw)}`);
  const pairs: [string, string][] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') {
      fail(`${METADATA_KEY} value for "${key}" must be a string, got ${describeValue(value)}`);
    }
    pairs.push([key, value as string]);
  }
  return Object.fromEntries(pairs);
}

/** Checks one header entry's fields and that its byte range agrees with its shape and dtype. */
function parseEntry(name: string, raw: unknown, dataLength: number, fail: (problem: string) => never): Entry {
  const where = `tensor "${name}"`;
  if (!isPlainObject(raw)) return fail(`${where}: entry must be an object, got ${describeValue(raw)}`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;

  if (dtype === undefined) fail(`${where}: missing "dtype"`);
  if (typeof dtype !== 'string')
    return fail(`${where}: "dtype" must be a string, got ${describeValue(dtype)}`);
  if (!Object.hasOwn(ITEM_SIZE, dtype)) {
    fail(`${where}: unknown dtype "${dtype}" (supported: ${Object.keys(ITEM_SIZE).join(', ')})`);
  }
  const safeDType = dtype as SafeDType;

  if (shape === undefined) fail(`${where}: missing "shape"`);
  if (!Array.isArray(shape)) return fail(`${where}: "shape" must be an array, got ${describeValue(shape)}`);
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || (dim as number) < 0) {
      fail(`${where}: shape [${shape.join(', ')}] must hold non-negative integers`);
    }
  }
  const dims = shape as number[];
  const count = product(dims);
  if (!Number.isSafeInteger(count * ITEM_SIZE[safeDType])) {
    fail(`${where}: shape [${dims.join(', ')}] is too large`);
  }

  if (offsets === undefined) fail(`${where}: missing "data_offsets"`);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    return fail(`${where}: "data_offsets" must be two non-negative integers, got ${describeValue(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  const expectedBytes = count * ITEM_SIZE[safeDType];
  if (end - begin !== expectedBytes) {
    fail(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${safeDType} ` +
        `shape [${dims.join(', ')}] needs ${expectedBytes}`,
    );
  }
  if (end > dataLength) {
    fail(
      `${where}: data_offsets [${begin}, ${end}] run past the data buffer of ${dataLength} bytes ` +
        '(file truncated?)',
    );
  }
  return { name, dtype: safeDType, shape: [...dims], count, begin, end };
}

/**
 * The format requires the tensors to tile the data buffer exactly: no overlaps (two tensors
 * sharing bytes would alias), no gaps and no trailing bytes (both suggest a corrupt header).
 */
function checkCoverage(entries: Entry[], dataLength: number, fail: (problem: string) => never): void {
  // Sort by begin, then end, so empty tensors sitting at an offset come before the one starting there.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: Entry | undefined;
  for (const entry of sorted) {
    if (entry.begin < cursor) {
      fail(
        `tensor "${entry.name}" [${entry.begin}, ${entry.end}] overlaps tensor "${previous!.name}" ` +
          `[${previous!.begin}, ${previous!.end}]`,
      );
    }
    if (entry.begin > cursor) {
      fail(
        `gap in data buffer: bytes [${cursor}, ${entry.begin}) belong to no tensor (before "${entry.name}")`,
      );
    }
    cursor = entry.end;
    previous = entry;
  }
  if (cursor !== dataLength) {
    fail(`data buffer is ${dataLength} bytes but the tensors cover only ${cursor} (trailing bytes)`);
  }
}

/** Copies and converts one tensor's bytes into a fresh, aligned typed array. */
function decodeEntry(
  entry: Entry,
  bytes: Uint8Array,
  dataStart: number,
  view: DataView,
  fail: (problem: string) => never,
): NamedArray {
  const at = dataStart + entry.begin;
  const n = entry.count;
  const shape = entry.shape;
  switch (entry.dtype) {
    case 'F32': {
      const data = new Float32Array(n);
      if (HOST_LITTLE_ENDIAN) copyBytes(bytes, at, data);
      else for (let i = 0; i < n; i++) data[i] = view.getFloat32(at + 4 * i, true);
      return { dtype: 'float32', shape, data };
    }
    case 'F64': {
      const data = new Float64Array(n);
      if (HOST_LITTLE_ENDIAN) copyBytes(bytes, at, data);
      else for (let i = 0; i < n; i++) data[i] = view.getFloat64(at + 8 * i, true);
      return { dtype: 'float64', shape, data };
    }
    case 'I32': {
      const data = new Int32Array(n);
      if (HOST_LITTLE_ENDIAN) copyBytes(bytes, at, data);
      else for (let i = 0; i < n; i++) data[i] = view.getInt32(at + 4 * i, true);
      return { dtype: 'int32', shape, data };
    }
    case 'F16': {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = halfToFloat(view.getUint16(at + 2 * i, true));
      return { dtype: 'float32', shape, data };
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits up and reinterpret. The Uint32Array
      // and the Float32Array share one buffer and so one byte order, which keeps this portable.
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(at + 2 * i, true) << 16;
      return { dtype: 'float32', shape, data: new Float32Array(bits.buffer) };
    }
    case 'I64': {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const low = view.getUint32(at + 8 * i, true);
        const high = view.getInt32(at + 8 * i + 4, true);
        // A 64-bit value fits in int32 exactly when the high word is the sign extension of the low one.
        const fits = (high === 0 && low < 0x80000000) || (high === -1 && low >= 0x80000000);
        if (!fits) {
          const value = (BigInt(high) << 32n) + BigInt(low);
          fail(`tensor "${entry.name}": I64 value ${value} at index ${i} does not fit in int32`);
        }
        data[i] = low | 0;
      }
      return { dtype: 'int32', shape, data };
    }
    case 'I16': {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getInt16(at + 2 * i, true);
      return { dtype: 'int32', shape, data };
    }
    case 'I8': {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getInt8(at + i);
      return { dtype: 'int32', shape, data };
    }
    case 'U8': {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getUint8(at + i);
      return { dtype: 'int32', shape, data };
    }
  }
}

/** Fills `target` with `target.byteLength` raw bytes of `bytes` starting at `at` (host order). */
function copyBytes(bytes: Uint8Array, at: number, target: Float32Array | Float64Array | Int32Array): void {
  // Copying byte-wise into the fresh, aligned target is what makes an unaligned source safe.
  new Uint8Array(target.buffer).set(bytes.subarray(at, at + target.byteLength));
}

/**
 * IEEE 754 half precision bits to a number: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa
 * bits. Exponent 0 holds zeros and subnormals, exponent 31 infinities and NaNs.
 *
 * @example
 * halfToFloat(0x3c00); // 1
 * halfToFloat(0x7bff); // 65504
 */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** Validates a shape for serializing and returns its element count. */
function checkShape(source: string, name: string, shape: unknown): number {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new SafetensorsError(
      source,
      `tensor "${name}": shape must be an array of non-negative integers, got ${describeValue(shape)}`,
    );
  }
  return product(shape as number[]);
}

/** Number of elements of a shape; the empty shape is a scalar with one element. */
function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** True for `{...}` values, false for arrays, null and primitives. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Short description of a value for error messages, never the whole of a large array. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length <= 8 ? JSON.stringify(value) : `an array of ${value.length}`;
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}
