/**
 * Model checkpoints on disk (Node only).
 *
 * A checkpoint is one directory:
 *
 *   config.json          the model configuration, pretty-printed JSON
 *   model.safetensors    the weights, with optional string metadata in its header
 *   *.safetensors        optional extra tensor files (e.g. optimizer.safetensors)
 *   *.json               optional extra JSON files (e.g. tokenizer.json, trainer.json)
 *
 * Saving rebuilds the whole directory and swaps it in atomically (see `replaceDirectoryAtomic`),
 * so a crash mid-save leaves the previous checkpoint loadable. Loading first repairs what such a
 * crash may have left, then checks everything it reads; each problem is a `CheckpointError`
 * naming the file and, where relevant, the tensor.
 */

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { recoverDirectory, replaceDirectoryAtomic, writeFileAtomic } from './atomic.js';
import {
  type NamedArray,
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
 * these shapes and (when given) these in-memory dtypes.
 *
 * @example
 * const expect: ExpectedTensors = { 'embed.weight': { shape: [256, 64], dtype: 'float32' } };
 */
export type ExpectedTensors = Record<string, { shape: number[]; dtype?: NamedArray['dtype'] }>;

/**
 * Options of `loadCheckpoint`.
 *
 * @example
 * const options: LoadCheckpointOptions = { expectTensors: { w: { shape: [4] } } };
 */
export interface LoadCheckpointOptions {
  expectTensors?: ExpectedTensors;
}

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
 * see either the old checkpoint or the new one, and a crash keeps the old one. Everything is
 * validated and encoded before the disk is touched, so bad input never leaves a partial save.
 *
 * @example
 * await saveCheckpoint('runs/ckpt', {
 *   config: { dim: 4 },
 *   tensors: { w: { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   metadata: { step: '100' },
 *   extraJsonFiles: { 'trainer.json': { step: 100 } },
 * });
 */
export async function saveCheckpoint(dir: string, checkpoint: CheckpointData): Promise<void> {
  if (
    typeof checkpoint.config !== 'object' ||
    checkpoint.config === null ||
    Array.isArray(checkpoint.config)
  ) {
    throw new CheckpointError(join(dir, CONFIG_FILE), 'config must be a JSON object');
  }
  // Every file's bytes are computed up front; encoding errors surface before anything is written.
  const files = new Map<string, Uint8Array | string>();
  files.set(CONFIG_FILE, toJsonText(join(dir, CONFIG_FILE), checkpoint.config));
  files.set(MODEL_FILE, encodeTensors(join(dir, MODEL_FILE), checkpoint.tensors, checkpoint.metadata));
  for (const [name, tensors] of Object.entries(checkpoint.extraTensorFiles ?? {})) {
    checkExtraName(dir, name, '.safetensors', files);
    files.set(name, encodeTensors(join(dir, name), tensors, undefined));
  }
  for (const [name, value] of Object.entries(checkpoint.extraJsonFiles ?? {})) {
    checkExtraName(dir, name, '.json', files);
    files.set(name, toJsonText(join(dir, name), value));
  }

  await replaceDirectoryAtomic(dir, async (tmp) => {
    for (const [name, content] of files) await writeFileAtomic(join(tmp, name), content);
  });
}

/**
 * Reads a checkpoint directory written by `saveCheckpoint`, after repairing an interrupted save
 * (`recoverDirectory`). With `expectTensors`, the weights must match it exactly: no tensor
 * missing, none extra, same shapes, and same dtypes where given.
 *
 * Throws `CheckpointError` for a missing directory or file, invalid JSON, a corrupt safetensors
 * file, or tensors that do not match the expectation.
 *
 * @example
 * const ckpt = await loadCheckpoint('runs/ckpt', { expectTensors: { w: { shape: [2, 2] } } });
 * ckpt.tensors.w.data; // Float32Array [1, 2, 3, 4]
 */
export async function loadCheckpoint(
  dir: string,
  options: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  await recoverDirectory(dir);
  let names: string[];
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new CheckpointError(dir, 'checkpoint path is not a directory');
    names = await readdir(dir);
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CheckpointError(dir, 'checkpoint directory does not exist', { cause: error });
    }
    throw error;
  }

  const configPath = join(dir, CONFIG_FILE);
  const config = parseJson(configPath, await readCheckpointFile(configPath));
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new CheckpointError(configPath, 'config must be a JSON object');
  }

  const modelPath = join(dir, MODEL_FILE);
  const model = decodeTensors(modelPath, await readCheckpointFile(modelPath));
  if (options.expectTensors) checkExpectedTensors(modelPath, model.tensors, options.expectTensors);

  // Extras are whatever else sits in the directory with a known extension. Temp files of an
  // atomic write never end in .json or .safetensors (their names end in .tmp-<pid>-<hex>).
  const extraTensorFiles: Record<string, Record<string, NamedArray>> = {};
  const extraJsonFiles: Record<string, unknown> = {};
  for (const name of names.sort()) {
    if (name === CONFIG_FILE || name === MODEL_FILE) continue;
    const path = join(dir, name);
    if (name.endsWith('.safetensors')) {
      extraTensorFiles[name] = decodeTensors(path, await readCheckpointFile(path)).tensors;
    } else if (name.endsWith('.json')) {
      extraJsonFiles[name] = parseJson(path, await readCheckpointFile(path));
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
 * Reads and parses one safetensors file. Format problems throw `SafetensorsError` (message
 * starting with `path`); file system problems throw the usual Node error (e.g. code `ENOENT`).
 *
 * @example
 * const { tensors, metadata } = await readSafetensorsFile('runs/ckpt/model.safetensors');
 */
export async function readSafetensorsFile(path: string): Promise<ParsedSafetensors> {
  return parseSafetensors(await readFile(path), path);
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
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Extra file names must be plain names with the right extension, distinct from the rest. */
function checkExtraName(dir: string, name: string, extension: string, taken: Map<string, unknown>): void {
  const plain = name.length > extension.length && !/[/\\]/.test(name) && name !== '.' && name !== '..';
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
    return serializeSafetensors(tensors, metadata);
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
    const problem = error.message.slice(error.source.length + 2);
    throw new CheckpointError(path, problem, { cause: error });
  }
}

/** parseSafetensors, wrapped so the error is a CheckpointError (the message already names the file). */
function decodeTensors(path: string, bytes: Uint8Array): ParsedSafetensors {
  try {
    return parseSafetensors(bytes, path);
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
    const problem = error.message.slice(error.source.length + 2);
    throw new CheckpointError(path, problem, { cause: error });
  }
}

/** Reads a file of the checkpoint, turning "not found" into a CheckpointError. */
async function readCheckpointFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CheckpointError(path, 'file is missing from the checkpoint', { cause: error });
    }
    throw error;
  }
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
    if (want.dtype !== undefined && got.dtype !== want.dtype) {
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
