/**
 * Crash-safe replacement of files and directories (Node only).
 *
 * The idea in both cases: never modify the target in place. Build the new version under a
 * temporary name next to it (same directory, hence same file system, so rename is atomic), make
 * it durable with fsync, then rename it over the target. A crash at any moment leaves either the
 * complete old version or the complete new one, never a half-written mix.
 *
 * Directories cannot be renamed over a non-empty directory, so `replaceDirectoryAtomic` is a
 * sequence of steps, and a crash can stop it after any of them:
 *
 *   1. mkdir   <dir>.tmp-<pid>-<ms>-<hex>         the new copy's private folder
 *   2. fill    write and fsync every file; a completeness marker last (a checkpoint's manifest.json)
 *   3. fsync   the new folder
 *   4. rename  <dir> → <dir>.old-<pid>-<ms>-<hex>  (when there is a previous version)
 *   5. rename  <dir>.tmp-… → <dir>
 *   6. fsync   the parent
 *   7. rm -r   <dir>.old-…
 *
 * `recoverDirectory` turns any of those intermediate states into the newest complete copy at
 * `dir`: it must run before every read (the checkpoint loaders and the trainer call it first).
 * Completeness is the caller's to judge (`isComplete`: for checkpoints, a manifest whose files
 * are all there); nothing is deleted unless a newer complete copy is proven to be at `dir`.
 */

import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type FileSystem,
  makeDirectories,
  nodeFileSystem,
  ownerIsAlive,
  suffixTime,
  tempSuffix,
  usingTemp,
  writeAll,
} from './fs.js';

/**
 * Data accepted by `writeFileAtomic`: bytes, text (written as UTF-8), or a sync or async stream
 * of byte chunks (so large files need not be held in memory at once).
 *
 * @example
 * const source: AtomicWriteData = (async function* () { yield new Uint8Array([1, 2]); })();
 */
export type AtomicWriteData = Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Writes `path` so that readers (and a crash) see either the old contents or the new ones in
 * full. The data goes to `<basename>.tmp-<pid>-<ms>-<random>` in the same directory, is
 * fsynced, then renamed over `path`; the directory is fsynced afterwards (best effort) so the
 * rename survives a power loss. On any error the temp file is removed, the old file is
 * untouched, and the error is rethrown. A process killed mid-write leaves its temp file behind
 * (nothing can run to remove it), but never damages `path`; `removeStaleTemps` cleans it later.
 *
 * @example
 * await writeFileAtomic('/tmp/run/config.json', JSON.stringify({ lr: 1e-3 }));
 * await writeFileAtomic('/tmp/run/big.bin', chunksFromSomewhere()); // async iterable of Uint8Array
 */
export async function writeFileAtomic(path: string, data: AtomicWriteData): Promise<void> {
  const target = resolve(path);
  const temp = join(dirname(target), `${basename(target)}.tmp-${tempSuffix()}`);
  await usingTemp(temp, async () => {
    // 'wx' fails if the name exists, so two writers can never share a temp file.
    const handle = await open(temp, 'wx');
    let closed = false;
    try {
      if (typeof data === 'string') {
        await writeAll(handle, new TextEncoder().encode(data));
      } else if (data instanceof Uint8Array) {
        await writeAll(handle, data);
      } else {
        // for await accepts both sync and async iterables.
        for await (const chunk of data) {
          if (!(chunk instanceof Uint8Array)) {
            throw new TypeError(`writeFileAtomic(${path}): chunks must be Uint8Array, got ${typeof chunk}`);
          }
          await writeAll(handle, chunk);
        }
      }
      // Without this, a power loss after the rename could leave the new name pointing at empty blocks.
      await handle.sync();
      closed = true;
      await handle.close();
      await rename(temp, target);
    } catch (error) {
      if (!closed) await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw error;
    }
  });
  await nodeFileSystem.syncDirectory(dirname(target));
}

/**
 * Options of `replaceDirectoryAtomic` and `recoverDirectory`.
 *
 * @example
 * const options: DirectoryOptions = { isComplete: async (dir) => existsSync(join(dir, 'manifest.json')) };
 */
export interface DirectoryOptions {
  /** The file-system layer (tests inject crashes through it). Default: the real one. */
  fs?: FileSystem;
  /**
   * Whether a copy is complete. `role` says which copy: the current `dir`, an `old` copy moved
   * aside, or a `tmp` copy still being built. Without it, `dir` and old copies count as complete
   * and temp copies never do (they are only ever removed, not promoted).
   */
  isComplete?: (path: string, role: 'dir' | 'old' | 'tmp') => Promise<boolean>;
}

/**
 * Replaces directory `dir` as a whole, in the steps listed at the top of this file. `fill`
 * writes the new contents into a fresh temp directory (through `fs`, the layer passed in); if it
 * throws, the temp directory is removed and `dir` is left as it was. Missing parents are created.
 *
 * Readers should call `recoverDirectory(dir)` first: it finishes or undoes what a crash left.
 * Not safe against two processes replacing the same directory at the same moment.
 *
 * @example
 * await replaceDirectoryAtomic('/tmp/run/ckpt-100', async (tmp, fs) => {
 *   await fs.createFile(`${tmp}/config.json`, new TextEncoder().encode('{}'));
 * });
 */
export async function replaceDirectoryAtomic(
  dir: string,
  fill: (tmpDir: string, fs: FileSystem) => Promise<void>,
  options: Pick<DirectoryOptions, 'fs'> = {},
): Promise<void> {
  const fs = options.fs ?? nodeFileSystem;
  const target = resolve(dir);
  const parent = dirname(target);
  await makeDirectories(parent, fs);
  const temp = `${target}.tmp-${tempSuffix(fs)}`;
  const old = `${target}.old-${tempSuffix(fs)}`;
  await usingTemp(temp, () =>
    usingTemp(old, async () => {
      await fs.makeDirectory(temp);
      try {
        await fill(temp, fs);
        await fs.syncDirectory(temp);
      } catch (error) {
        await fs.remove(temp).catch(() => {});
        throw error;
      }
      let movedOld = false;
      try {
        if ((await fs.stat(target)) !== null) {
          await fs.rename(target, old);
          movedOld = true;
        }
        await fs.rename(temp, target);
      } catch (error) {
        // Put the previous version back so a failed save does not also lose the old checkpoint.
        if (movedOld) await fs.rename(old, target).catch(() => {});
        await fs.remove(temp).catch(() => {});
        throw error;
      }
      await fs.syncDirectory(parent);
      // The new copy is complete (fill returned) and durable (synced): the old one may go.
      if (movedOld) await fs.remove(old);
    }),
  );
}

/**
 * What `recoverDirectory` did: the copy it moved to `dir` (or null), the leftovers it deleted,
 * and the copies it left alone because a live process is still writing them.
 *
 * @example
 * const { restored, removed, busy }: RecoveryReport = await recoverDirectory('/tmp/run/ckpt');
 */
export interface RecoveryReport {
  restored: string | null;
  removed: string[];
  busy: string[];
}

/** A sibling copy of `dir` left by a save: where it is, which kind, and when it was made. */
interface Copy {
  path: string;
  role: 'old' | 'tmp';
  time: number;
}

/**
 * Brings `dir` to the newest complete copy among `dir` and its `<dir>.tmp-…` / `<dir>.old-…`
 * siblings whose writer is gone, whatever step of `replaceDirectoryAtomic` a crash stopped at:
 * - a complete temp copy (crash after the new copy was finished, before or between the renames)
 *   is the newest: it replaces `dir`;
 * - with `dir` missing and no complete temp copy, the newest complete old copy comes back;
 * - then, once `dir` is proven complete, old copies and temp copies (incomplete, or older than
 *   `dir`) are deleted. Incomplete temp copies are deleted in any case: they never were a copy.
 *
 * Copies of live processes (including this one's saves in progress) are left alone. Safe to call
 * when there is nothing to do, or when even the parent directory does not exist. Every step is
 * itself one of the states above, so a crash during recovery is recovered the same way.
 *
 * @example
 * await recoverDirectory('/tmp/run/ckpt'); // then read /tmp/run/ckpt as usual
 */
export async function recoverDirectory(dir: string, options: DirectoryOptions = {}): Promise<RecoveryReport> {
  const fs = options.fs ?? nodeFileSystem;
  const isComplete = options.isComplete ?? (async (_path: string, role: string) => role !== 'tmp');
  const target = resolve(dir);
  const parent = dirname(target);
  const base = basename(target);
  const report: RecoveryReport = { restored: null, removed: [], busy: [] };

  let names: string[];
  try {
    names = await fs.readDirectory(parent);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return report;
    throw error;
  }
  const copies: Copy[] = [];
  for (const name of names) {
    for (const role of ['old', 'tmp'] as const) {
      const prefix = `${base}.${role}-`;
      if (!name.startsWith(prefix)) continue;
      const path = join(parent, name);
      const suffix = name.slice(prefix.length);
      if (ownerIsAlive(path, suffix)) {
        report.busy.push(path);
        continue;
      }
      const info = await fs.stat(path);
      if (info?.kind !== 'directory') continue; // a file of the same name is not a copy of ours
      copies.push({ path, role, time: suffixTime(suffix) ?? info.modifiedMs });
    }
  }
  if (copies.length === 0) return report;

  // Newest first: temp copies were begun after the current dir was complete, old ones before.
  const byTime = (a: Copy, b: Copy) => b.time - a.time;
  const tmps = copies.filter((c) => c.role === 'tmp').sort(byTime);
  const olds = copies.filter((c) => c.role === 'old').sort(byTime);
  const complete = new Map<string, boolean>();
  const check = async (path: string, role: 'dir' | 'old' | 'tmp') => {
    if (!complete.has(path)) complete.set(path, await isComplete(path, role));
    return complete.get(path)!;
  };

  const hasTarget = (await fs.stat(target))?.kind === 'directory';
  const newestTmp = await firstComplete(tmps, check);
  if (newestTmp) {
    // Same swap as a save's steps 4–7, with the current dir (if any) moved aside first.
    if (hasTarget) {
      const aside = `${target}.old-${tempSuffix(fs)}`;
      await fs.rename(target, aside);
      olds.unshift({ path: aside, role: 'old', time: Date.now() });
    }
    await fs.rename(newestTmp.path, target);
    await fs.syncDirectory(parent);
    report.restored = newestTmp.path;
  } else if (!hasTarget) {
    const newestOld = await firstComplete(olds, check);
    if (newestOld) {
      await fs.rename(newestOld.path, target);
      await fs.syncDirectory(parent);
      report.restored = newestOld.path;
    }
  }

  const targetComplete = (await fs.stat(target))?.kind === 'directory' && (await check(target, 'dir'));
  for (const copy of [...tmps, ...olds]) {
    if (copy.path === report.restored) continue;
    // An incomplete temp copy holds nothing; anything else goes only once dir is proven complete.
    const disposable = targetComplete || (copy.role === 'tmp' && !(await check(copy.path, 'tmp')));
    if (!disposable) continue;
    await fs.remove(copy.path);
    report.removed.push(copy.path);
  }
  return report;
}

async function firstComplete(
  copies: readonly Copy[],
  check: (path: string, role: 'dir' | 'old' | 'tmp') => Promise<boolean>,
): Promise<Copy | undefined> {
  for (const copy of copies) if (await check(copy.path, copy.role)) return copy;
  return undefined;
}

/**
 * Deletes the temp files (`<name>.tmp-<pid>-…`, regular files only) that `writeFileAtomic` calls
 * of dead processes left in `dir` — e.g. a `loss.svg.tmp-…` from a kill during the write.
 * Directories are left to `recoverDirectory`, which knows whether they are complete. Returns the
 * paths removed; a missing `dir` is not an error.
 *
 * @example
 * await removeStaleTemps('runs/mag'); // ['runs/mag/loss.svg.tmp-4242-1718000000000-a1b2c3d4e5f6']
 */
export async function removeStaleTemps(dir: string, fs: FileSystem = nodeFileSystem): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readDirectory(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = /\.tmp-(\d+-.*)$/.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    if (ownerIsAlive(path, match[1]!)) continue;
    if ((await fs.stat(path))?.kind !== 'file') continue;
    await fs.remove(path);
    removed.push(path);
  }
  return removed;
}
