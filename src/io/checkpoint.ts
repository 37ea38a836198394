/**
 * Model checkpoints on disk (Node only).
 *
 * A checkpoint is one directory:
 *
 *   config.json          the model configuration, pretty-printed JSON
 *   model.safetensors    the weights, with string metadata in its header (each tensor's SHA-256)
 *   *.safetensors        optional extra tensor files (e.g. optimizer.safetensors)
 *   *.json               optional extra JSON files (e.g. tokenizer.json, trainer.json)
 *   manifest.json        written last: every other file's size and SHA-256 (see manifest.ts)
 *
 * Saving builds the whole directory under a temp name and swaps it in (`replaceDirectoryAtomic`);
 * the manifest is what tells a finished copy from an interrupted one. Loading first recovers
 * what a crash may have left (`recoverCheckpoint`), then checks everything it reads: sizes before
 * reading, the manifest's hashes, the per-tensor hashes, and that every weight is finite. Each
 * problem is a `CheckpointError` naming the file and, where relevant, the tensor.
 */

import { join } from 'node:path';
import { type RecoveryReport, recoverDirectory, replaceDirectoryAtomic, writeFileAtomic } from './atomic.js';
import { FileReadError, type FileSystem, nodeFileSystem, readRegularFile } from './fs.js';
import {
  checkpointIsComplete,
  isPlainFileName,
  MANIFEST_FILE,
  MAX_MANIFEST_BYTES,
  type Manifest,
  manifestText,
  nodeSha256,
  parseManifest,
} from './manifest.js';
import {
  describeNonFinite,
  MAX_HEADER_BYTES,
  type NamedArray,
  nonFiniteValues,
  type ParsedSafetensors,
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
} from './safetensors.js';

/**
 * Name of the configuration file inside a checkpoint directory.
 *
 * @example
 * const configPath = join('runs/ckpt', CONFIG_FILE); // runs/ckpt/config.json
 */
export const CONFIG_FILE = 'config.json';

/**
 * Name of the weights file inside a checkpoint directory.
 *
 * @example
 * const { tensors } = await readSafetensorsFile(join('runs/ckpt', MODEL_FILE));
 */
export const MODEL_FILE = 'model.safetensors';

/**
 * Everything a checkpoint holds: what `saveCheckpoint` takes and `loadCheckpoint` returns.
 * Extra files are keyed by file name; tensor files must end in `.safetensors` and JSON files in
 * `.json`, which is how loading tells them apart.
 *
 * @example
 * const ckpt: CheckpointData = {
 *   config: { dim: 4 },
 *   tensors: { w: { dtype: 'float32', shape: [4], data: new Float32Array(4) } },
 *   extraJsonFiles: { 'trainer.json': { step: 100 } },
 * };
 */
export interface CheckpointData {
  config: object;
  tensors: Record<string, NamedArray>;
  metadata?: Record<string, string>;
  extraTensorFiles?: Record<string, Record<string, NamedArray>>;
  extraJsonFiles?: Record<string, unknown>;
}

/**
 * A loaded checkpoint: like `CheckpointData`, with every part present (empty when absent on disk).
 * The config is parsed JSON; checking its fields is up to the caller.
 *
 * @example
 * const { config, tensors, metadata } = await loadCheckpoint('runs/ckpt'); // LoadedCheckpoint
 */
export interface LoadedCheckpoint {
  config: Record<string, unknown>;
  tensors: Record<string, NamedArray>;
  metadata: Record<string, string>;
  extraTensorFiles: Record<string, Record<string, NamedArray>>;
  extraJsonFiles: Record<string, unknown>;
}

/**
 * What `loadCheckpoint` should find in `model.safetensors`: exactly these tensor names, with
 * these shapes and (when given) these in-memory dtypes, or `'float'` for any float dtype.
 *
 * @example
 * const expect: ExpectedTensors = { 'embed.weight': { shape: [256, 64], dtype: 'float32' } };
 */
export type ExpectedTensors = Record<string, { shape: number[]; dtype?: NamedArray['dtype'] | 'float' }>;

/**
 * Options of `loadCheckpoint`.
 *
 * @example
 * const options: LoadCheckpointOptions = { expectTensors: { w: { shape: [4] } } };
 */
export interface LoadCheckpointOptions {
  /**
   * The tensors model.safetensors must hold, or a function of the parsed config.json that gives
   * them (called before the weights are read; what it throws becomes an error naming config.json).
   */
  expectTensors?: ExpectedTensors | ((config: Record<string, unknown>) => ExpectedTensors);
  /**
   * Load weights holding NaN or ±Infinity (refused by default: the error says how many and
   * where). The CLI's `--allow-nonfinite`.
   */
  allowNonFinite?: boolean;
  /** The largest file read (checked before reading). Default `DEFAULT_MAX_FILE_BYTES`. */
  maxFileBytes?: number;
  /** The file-system layer (tests inject faults through it). */
  fs?: FileSystem;
}

/**
 * Options of `saveCheckpoint`.
 *
 * @example
 * const options: SaveCheckpointOptions = { fs: nodeFileSystem };
 */
export interface SaveCheckpointOptions {
  /** The file-system layer (tests inject crashes through it). */
  fs?: FileSystem;
}

/**
 * The default limit on one checkpoint file: 8 GiB, more than any model this library trains on a
 * machine of 24 GiB (and beyond the 4 GiB a wasm32 heap can hold). JSON files are limited to
 * `MAX_JSON_BYTES`.
 *
 * @example
 * await loadCheckpoint(dir, { maxFileBytes: 2 * DEFAULT_MAX_FILE_BYTES });
 */
export const DEFAULT_MAX_FILE_BYTES = 8 * 2 ** 30;

/** JSON files of a checkpoint (config, tokenizer, trainer state) are at most 512 MiB: about what one JavaScript string holds. */
export const MAX_JSON_BYTES = 512 * 2 ** 20;

/**
 * A checkpoint that cannot be saved or loaded. The message starts with the file (or directory)
 * concerned; `file` holds the same path. Format errors keep the `SafetensorsError` as `cause`.
 *
 * @example
 * try { await loadCheckpoint('runs/ckpt'); }
 * catch (e) { if (e instanceof CheckpointError) console.error(`bad checkpoint file ${e.file}`); }
 */
export class CheckpointError extends Error {
  /** The file or directory the problem is in. */
  readonly file: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.name = 'CheckpointError';
    this.file = file;
  }
}

/**
 * Writes a checkpoint directory, replacing any previous one at `dir` atomically: other readers
 * see either the old checkpoint or the new one, and a crash at any moment leaves a state that
 * `recoverCheckpoint` turns into the newest complete one. Everything is validated and encoded
 * before the disk is touched, so bad input never leaves a partial save. Every file is written and
 * fsynced, then `manifest.json` (sizes and SHA-256 of the others), then the directory is swapped in.
 *
 * @example
 * await saveCheckpoint('runs/ckpt', {
 *   config: { dim: 4 },
 *   tensors: { w: { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   metadata: { step: '100' },
 *   extraJsonFiles: { 'trainer.json': { step: 100 } },
 * });
 */
export async function saveCheckpoint(
  dir: string,
  checkpoint: CheckpointData,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const fs = options.fs ?? nodeFileSystem;
  if (
    typeof checkpoint.config !== 'object' ||
    checkpoint.config === null ||
    Array.isArray(checkpoint.config)
  ) {
    throw new CheckpointError(join(dir, CONFIG_FILE), 'config must be a JSON object');
  }
  // Every file's bytes are computed up front; encoding errors surface before anything is written.
  const files = new Map<string, Uint8Array>();
  const text = (value: string) => new TextEncoder().encode(value);
  files.set(CONFIG_FILE, text(toJsonText(join(dir, CONFIG_FILE), checkpoint.config)));
  files.set(MODEL_FILE, encodeTensors(join(dir, MODEL_FILE), checkpoint.tensors, checkpoint.metadata));
  for (const [name, tensors] of Object.entries(checkpoint.extraTensorFiles ?? {})) {
    checkExtraName(dir, name, '.safetensors', files);
    files.set(name, encodeTensors(join(dir, name), tensors, undefined));
  }
  for (const [name, value] of Object.entries(checkpoint.extraJsonFiles ?? {})) {
    checkExtraName(dir, name, '.json', files);
    files.set(name, text(toJsonText(join(dir, name), value)));
  }
  const manifest = text(manifestText(files));

  // A crashed earlier save is resolved first, so that no leftover copy can later pass for newer.
  await recoverCheckpoint(dir, fs);
  await replaceDirectoryAtomic(
    dir,
    async (tmp, layer) => {
      for (const [name, bytes] of [...files, [MANIFEST_FILE, manifest] as const]) {
        await layer.createFile(join(tmp, name), bytes);
        await layer.syncFile(join(tmp, name));
      }
    },
    { fs },
  );
}

/**
 * Repairs what an interrupted save (or an interrupted recovery) left at and beside `dir`, so
 * that `dir` holds the newest complete checkpoint: a finished copy that never got renamed into
 * place is moved there, an interrupted one is deleted, and an older copy is deleted only once a
 * complete newer one is at `dir` (complete: its manifest.json and every file it lists are there
 * with their sizes; older checkpoints without a manifest count when config.json and
 * model.safetensors are there). Every loader and the trainer run this first.
 *
 * @example
 * const { restored } = await recoverCheckpoint('runs/mag/checkpoint');
 */
export async function recoverCheckpoint(
  dir: string,
  fs: FileSystem = nodeFileSystem,
): Promise<RecoveryReport> {
  return recoverDirectory(dir, { fs, isComplete: (path, role) => checkpointIsComplete(path, role, fs) });
}

/**
 * Reads a checkpoint directory written by `saveCheckpoint`, after `recoverCheckpoint`. With a
 * manifest, exactly the files it lists are read, each checked against its size (before reading)
 * and SHA-256; without one (older checkpoints), config.json, model.safetensors and the other
 * `.json` / `.safetensors` files present. Tensor files are checked against their per-tensor
 * hashes, and float weights must be finite unless `allowNonFinite`. With `expectTensors`, the
 * weights must match it exactly: no tensor missing, none extra, same shapes, and same dtypes
 * where given.
 *
 * Throws `CheckpointError` for a missing directory or file, a file that is not a regular file or
 * too large, a checksum mismatch (naming the file and, where it can, the tensor), invalid JSON, a
 * corrupt safetensors file, non-finite weights, or tensors that do not match the expectation.
 *
 * @example
 * const ckpt = await loadCheckpoint('runs/ckpt', { expectTensors: { w: { shape: [2, 2] } } });
 * ckpt.tensors.w.data; // Float32Array [1, 2, 3, 4]
 */
export async function loadCheckpoint(
  dir: string,
  options: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  const fs = options.fs ?? nodeFileSystem;
  const recovery = await recoverCheckpoint(dir, fs);
  const info = await fs.stat(dir);
  if (info === null) {
    const busy = recovery.busy.length > 0 ? ' (another process is saving it right now; try again)' : '';
    throw new CheckpointError(dir, `checkpoint directory does not exist${busy}`);
  }
  if (info.kind !== 'directory') throw new CheckpointError(dir, 'checkpoint path is not a directory');

  const limit = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const reader = new CheckpointReader(dir, fs, limit);
  const manifest = await reader.manifest();
  const names = manifest ? Object.keys(manifest.files).sort() : await fs.readDirectory(dir);
  for (const required of [CONFIG_FILE, MODEL_FILE]) {
    if (!names.includes(required)) {
      const where = manifest ? ' (manifest.json does not list it)' : '';
      throw new CheckpointError(join(dir, required), `file is missing from the checkpoint${where}`);
    }
  }

  const configPath = join(dir, CONFIG_FILE);
  const config = parseJson(configPath, await reader.read(CONFIG_FILE, MAX_JSON_BYTES));
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new CheckpointError(configPath, 'config must be a JSON object');
  }

  let expected: ExpectedTensors | undefined;
  try {
    expected =
      typeof options.expectTensors === 'function'
        ? options.expectTensors(config as Record<string, unknown>)
        : options.expectTensors;
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(configPath, error instanceof Error ? error.message : String(error), {
      cause: error,
    });
  }
  const modelLimit = expected ? expectedFileBytes(expected) : limit;
  const model = await reader.tensors(MODEL_FILE, Math.min(limit, modelLimit));
  if (expected) checkExpectedTensors(join(dir, MODEL_FILE), model.tensors, expected);
  if (!options.allowNonFinite) checkFinite(join(dir, MODEL_FILE), model.tensors);

  // Extras: the manifest's other files, or (older checkpoints) whatever else has a known
  // extension. Temp files of an atomic write never end in .json or .safetensors.
  const extraTensorFiles: Record<string, Record<string, NamedArray>> = {};
  const extraJsonFiles: Record<string, unknown> = {};
  for (const name of [...names].sort()) {
    if (name === CONFIG_FILE || name === MODEL_FILE || name === MANIFEST_FILE) continue;
    const path = join(dir, name);
    if (name.endsWith('.safetensors')) {
      const { tensors } = await reader.tensors(name, limit);
      if (!options.allowNonFinite) checkFinite(path, tensors);
      extraTensorFiles[name] = tensors;
    } else if (name.endsWith('.json')) {
      extraJsonFiles[name] = parseJson(path, await reader.read(name, MAX_JSON_BYTES));
    } else if (manifest) {
      await reader.read(name, limit); // listed, so checked, though this loader has no use for it
    }
  }

  return {
    config: config as Record<string, unknown>,
    tensors: model.tensors,
    metadata: model.metadata,
    extraTensorFiles,
    extraJsonFiles,
  };
}

/**
 * Reads the files of one checkpoint directory: each a regular file within its size limit, and,
 * when the checkpoint has a manifest, the size and SHA-256 it lists.
 */
class CheckpointReader {
  private listed: Manifest | null = null;

  constructor(
    private readonly dir: string,
    private readonly fs: FileSystem,
    private readonly limit: number,
  ) {}

  /** The manifest, or null for an older checkpoint without one. */
  async manifest(): Promise<Manifest | null> {
    const path = join(this.dir, MANIFEST_FILE);
    if ((await this.fs.stat(path)) === null) return null;
    const bytes = await readCheckpointFile(this.fs, path, MAX_MANIFEST_BYTES);
    try {
      this.listed = parseManifest(bytes);
    } catch (error) {
      throw new CheckpointError(path, (error as Error).message, { cause: error });
    }
    return this.listed;
  }

  /** A file's bytes, checked against the manifest when there is one. */
  async read(name: string, maxBytes: number): Promise<Uint8Array> {
    const path = join(this.dir, name);
    const expected = this.listed?.files[name];
    if (expected && expected.bytes > Math.min(maxBytes, this.limit)) {
      throw new CheckpointError(
        path,
        `manifest.json says it is ${expected.bytes} bytes, more than the ${Math.min(maxBytes, this.limit)} allowed`,
      );
    }
    const bytes = await readCheckpointFile(this.fs, path, Math.min(maxBytes, this.limit));
    if (expected) {
      if (bytes.length !== expected.bytes) {
        throw new CheckpointError(
          path,
          `is ${bytes.length} bytes but manifest.json records ${expected.bytes}: the file was truncated or changed after the save`,
        );
      }
      const actual = nodeSha256(bytes);
      if (actual !== expected.sha256) {
        throw new CheckpointError(
          path,
          `its SHA-256 (${actual.slice(0, 12)}…) differs from the one in manifest.json (${expected.sha256.slice(0, 12)}…): the file is corrupt${this.culprit(name, bytes)}`,
        );
      }
    }
    return bytes;
  }

  /** A tensor file, parsed; per-tensor hashes are checked unless the manifest already proved the bytes. */
  async tensors(name: string, maxBytes: number): Promise<ParsedSafetensors> {
    const bytes = await this.read(name, maxBytes);
    const proven = this.listed?.files[name] !== undefined;
    return decodeTensors(join(this.dir, name), bytes, proven);
  }

  /** For a corrupt tensor file, which tensor's recorded hash fails, to name it in the error. */
  private culprit(name: string, bytes: Uint8Array): string {
    if (!name.endsWith('.safetensors')) return '';
    try {
      parseSafetensors(bytes, name, { hash: nodeSha256 });
      return '';
    } catch (error) {
      if (!(error instanceof SafetensorsError)) return '';
      return ` (${error.message.slice(error.source.length + 2)})`;
    }
  }
}

/**
 * Reads and parses one safetensors file, checking its per-tensor hashes. Format problems throw
 * `SafetensorsError` (message starting with `path`); a missing file, a directory, a device or a
 * FIFO, or a file over `maxBytes`, throw `FileReadError` (message starting with `path`).
 *
 * @example
 * const { tensors, metadata } = await readSafetensorsFile('runs/ckpt/model.safetensors');
 */
export async function readSafetensorsFile(
  path: string,
  options: { maxBytes?: number } = {},
): Promise<ParsedSafetensors> {
  const bytes = await readRegularFile(path, { maxBytes: options.maxBytes ?? DEFAULT_MAX_FILE_BYTES });
  return parseSafetensors(bytes, path, { hash: nodeSha256 });
}

/**
 * Encodes tensors as safetensors and writes them to `path` atomically (old file kept on failure).
 *
 * @example
 * await writeSafetensorsFile('/tmp/w.safetensors', { w: { dtype: 'int32', shape: [2], data: new Int32Array([1, 2]) } });
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, NamedArray>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata, { hash: nodeSha256 }));
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Extra file names must be plain names with the right extension, distinct from the rest. */
function checkExtraName(dir: string, name: string, extension: string, taken: Map<string, unknown>): void {
  const plain = name.length > extension.length && isPlainFileName(name);
  if (!plain || !name.endsWith(extension)) {
    throw new CheckpointError(
      join(dir, name),
      `extra file name must be a plain file name ending in ${extension} (got ${JSON.stringify(name)})`,
    );
  }
  if (taken.has(name))
    throw new CheckpointError(join(dir, name), 'file name is used twice in the checkpoint');
}

/** Pretty JSON with a final newline; refuses values JSON cannot represent. */
function toJsonText(path: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, null, 2);
  } catch (error) {
    throw new CheckpointError(path, `cannot encode as JSON (${(error as Error).message})`, { cause: error });
  }
  if (text === undefined) throw new CheckpointError(path, `cannot encode ${typeof value} as JSON`);
  return `${text}\n`;
}

/** serializeSafetensors, with its errors re-labelled by the file they were meant for. */
function encodeTensors(
  path: string,
  tensors: Record<string, NamedArray>,
  metadata: Record<string, string> | undefined,
): Uint8Array {
  try {
    return serializeSafetensors(tensors, metadata, { hash: nodeSha256 });
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
    const problem = error.message.slice(error.source.length + 2);
    throw new CheckpointError(path, problem, { cause: error });
  }
}

/**
 * parseSafetensors, wrapped so the error is a CheckpointError (the message already names the
 * file). `proven`: the bytes already matched the manifest, so per-tensor hashes need no check.
 */
function decodeTensors(path: string, bytes: Uint8Array, proven: boolean): ParsedSafetensors {
  try {
    return parseSafetensors(bytes, path, { hash: proven ? false : nodeSha256 });
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
    const problem = error.message.slice(error.source.length + 2);
    throw new CheckpointError(path, problem, { cause: error });
  }
}

/** Reads a file of the checkpoint (a regular file, size checked first) as a CheckpointError on failure. */
async function readCheckpointFile(fs: FileSystem, path: string, maxBytes: number): Promise<Uint8Array> {
  try {
    return await fs.readFile(path, maxBytes);
  } catch (error) {
    if (!(error instanceof FileReadError)) throw error;
    const problem =
      error.code === 'missing' ? 'file is missing from the checkpoint' : error.message.slice(path.length + 2);
    throw new CheckpointError(path, problem, { cause: error });
  }
}

/** Refuses weights holding NaN or ±Infinity, saying how many and where. */
function checkFinite(path: string, tensors: Readonly<Record<string, NamedArray>>): void {
  const report = nonFiniteValues(tensors);
  if (report.count === 0) return;
  throw new CheckpointError(
    path,
    `${describeNonFinite(report)}; refusing to load weights that are not finite (--allow-nonfinite, or the allowNonFinite option, loads them anyway)`,
  );
}

/** The largest model.safetensors the expected tensors can make: 8 bytes a value (F64) plus the header. */
function expectedFileBytes(expected: ExpectedTensors): number {
  let values = 0;
  for (const { shape } of Object.values(expected)) values += shape.reduce((a, b) => a * b, 1);
  return 8 + MAX_HEADER_BYTES + 8 * values;
}

/** Strict UTF-8 + JSON.parse, reporting the parser's message on failure. */
function parseJson(path: string, bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new CheckpointError(path, 'not valid JSON (file is not valid UTF-8)', { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(path, `not valid JSON (${(error as Error).message})`, { cause: error });
  }
}

/** Compares loaded tensors with the expectation and reports every difference at once. */
function checkExpectedTensors(
  path: string,
  found: Record<string, NamedArray>,
  expected: ExpectedTensors,
): void {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(expected)) {
    const got = Object.hasOwn(found, name) ? found[name] : undefined;
    if (got === undefined) {
      problems.push(`tensor "${name}" is missing (expected shape [${want.shape.join(', ')}])`);
      continue;
    }
    if (!sameShape(got.shape, want.shape)) {
      problems.push(
        `tensor "${name}" has shape [${got.shape.join(', ')}], expected [${want.shape.join(', ')}]`,
      );
    }
    const matches = want.dtype === 'float' ? got.dtype !== 'int32' : got.dtype === want.dtype;
    if (want.dtype !== undefined && !matches) {
      problems.push(`tensor "${name}" has dtype ${got.dtype}, expected ${want.dtype}`);
    }
  }
  for (const name of Object.keys(found)) {
    if (!Object.hasOwn(expected, name)) problems.push(`unexpected tensor "${name}"`);
  }
  if (problems.length > 0) throw new CheckpointError(path, problems.join('; '));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
