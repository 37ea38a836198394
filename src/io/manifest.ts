/**
 * `manifest.json`: the completeness marker and file checksums of a checkpoint directory (Node
 * only). Written last, after every other file is durable, so its presence proves the copy is
 * whole; its hashes prove each file is the one written. The format is shared with the Python
 * package (python/), which writes the same:
 *
 *   {"format": "titans-checkpoint", "version": 1,
 *    "files": {"config.json": {"bytes": 512, "sha256": "<64 lowercase hex>"}, …}}
 *
 * listing every other file of the checkpoint. Checkpoints without it (older ones) still load.
 */

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { FileSystem } from './fs.js';

/**
 * Name of the manifest inside a checkpoint directory.
 *
 * @example
 * join('runs/mag/checkpoint', MANIFEST_FILE); // 'runs/mag/checkpoint/manifest.json'
 */
export const MANIFEST_FILE = 'manifest.json';

/** The `format` value of a manifest. */
const FORMAT = 'titans-checkpoint';
/** The manifest version this code reads and writes. */
const VERSION = 1;
/** A manifest larger than this is not one of ours (a few hundred bytes per file). */
export const MAX_MANIFEST_BYTES = 1 << 20;

/**
 * A parsed manifest: each listed file's size and SHA-256.
 *
 * @example
 * const m: Manifest = { files: { 'config.json': { bytes: 512, sha256: 'ab…' } } };
 */
export interface Manifest {
  files: Record<string, { bytes: number; sha256: string }>;
}

/**
 * SHA-256 of bytes as lowercase hex, by `node:crypto` (the checkpoint code's fast hash; the
 * browser-safe core has `sha256Hex`, which gives the same digests).
 *
 * @example
 * nodeSha256(new Uint8Array(0)); // 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
 */
export function nodeSha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The manifest text for files given by name and content (pretty JSON, files in name order).
 *
 * @example
 * manifestText(new Map([['config.json', bytes]])); // '{\n  "format": "titans-checkpoint", …'
 */
export function manifestText(files: ReadonlyMap<string, Uint8Array>): string {
  const listed: Manifest['files'] = {};
  for (const name of [...files.keys()].sort()) {
    const bytes = files.get(name)!;
    listed[name] = { bytes: bytes.length, sha256: nodeSha256(bytes) };
  }
  return `${JSON.stringify({ format: FORMAT, version: VERSION, files: listed }, null, 2)}\n`;
}

/**
 * Parses and validates a manifest; every problem is an `Error` whose message says what is wrong
 * (the caller adds the path).
 *
 * @example
 * const { files } = parseManifest(bytes); // files['model.safetensors'].sha256
 */
export function parseManifest(bytes: Uint8Array): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new Error(`not a valid manifest (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error('not a valid manifest (expected a JSON object)');
  }
  const { format, version, files } = json as Record<string, unknown>;
  if (format !== FORMAT) throw new Error(`format must be "${FORMAT}", got ${JSON.stringify(format)}`);
  if (version !== VERSION) {
    throw new Error(
      typeof version === 'number' && Number.isInteger(version) && version > VERSION
        ? `version ${version} is newer than this reader understands (${VERSION}); update titans-ts`
        : `version must be ${VERSION}, got ${JSON.stringify(version)}`,
    );
  }
  if (typeof files !== 'object' || files === null || Array.isArray(files)) {
    throw new Error('"files" must be an object of file name → {bytes, sha256}');
  }
  const out: Manifest['files'] = {};
  for (const [name, entry] of Object.entries(files)) {
    if (!isPlainFileName(name) || name === MANIFEST_FILE) {
      throw new Error(
        `"files" lists ${JSON.stringify(name)}, which is not a plain file name of the checkpoint`,
      );
    }
    const { bytes: size, sha256 } = (entry ?? {}) as Record<string, unknown>;
    if (!Number.isSafeInteger(size) || (size as number) < 0) {
      throw new Error(`"${name}": bytes must be a non-negative integer, got ${JSON.stringify(size)}`);
    }
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
      throw new Error(`"${name}": sha256 must be 64 lowercase hex digits, got ${JSON.stringify(sha256)}`);
    }
    Object.defineProperty(out, name, {
      value: { bytes: size as number, sha256 },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  if (Object.keys(out).length === 0) throw new Error('"files" lists no file');
  return { files: out };
}

/** A name without path separators that is not `.` or `..`. */
export function isPlainFileName(name: string): boolean {
  return name.length > 0 && !/[/\\\0]/.test(name) && name !== '.' && name !== '..';
}

/**
 * Whether a checkpoint copy is whole, cheaply (sizes only; contents are checked on load): with a
 * manifest, every listed file is there with its size; without one, an older checkpoint counts as
 * whole when it has config.json and model.safetensors — but a temp copy without a manifest is
 * one whose save never finished.
 *
 * @example
 * await checkpointIsComplete('runs/mag/checkpoint', 'dir', nodeFileSystem); // true
 */
export async function checkpointIsComplete(
  dir: string,
  role: 'dir' | 'old' | 'tmp',
  fs: FileSystem,
): Promise<boolean> {
  const manifestPath = join(dir, MANIFEST_FILE);
  const info = await fs.stat(manifestPath);
  if (info === null) {
    if (role === 'tmp') return false;
    const config = await fs.stat(join(dir, 'config.json'));
    const model = await fs.stat(join(dir, 'model.safetensors'));
    return config?.kind === 'file' && model?.kind === 'file';
  }
  let manifest: Manifest;
  try {
    manifest = parseManifest(await fs.readFile(manifestPath, MAX_MANIFEST_BYTES));
  } catch {
    return false;
  }
  for (const [name, { bytes }] of Object.entries(manifest.files)) {
    const file = await fs.stat(join(dir, name));
    if (file?.kind !== 'file' || file.bytes !== bytes) return false;
  }
  return true;
}
