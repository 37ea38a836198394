/**
 * Crash-safe replacement of files and directories (Node only).
 *
 * The idea in both cases: never modify the target in place. Build the new version under a
 * temporary name next to it (same directory, hence same file system, so rename is atomic), make
 * it durable with fsync, then rename it over the target. A crash at any moment leaves either the
 * complete old version or the complete new one, never a half-written mix.
 *
 * Directories cannot be renamed over a non-empty directory, so `replaceDirectoryAtomic` needs two
 * renames (old aside, new in). A crash between them leaves the target missing and the old copy
 * under `<dir>.old-…`; `recoverDirectory` puts it back and is meant to run before every load.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

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
 * full. The data goes to `<basename>.tmp-<pid>-<random>` in the same directory, is fsynced, then
 * renamed over `path`; the directory is fsynced afterwards (best effort) so the rename survives a
 * power loss. On any error the temp file is removed, the old file is untouched, and the error is
 * rethrown. A process killed mid-write leaves its temp file behind (nothing can run to remove
 * it), but never damages `path`.
 *
 * @example
 * await writeFileAtomic('/tmp/run/config.json', JSON.stringify({ lr: 1e-3 }));
 * await writeFileAtomic('/tmp/run/big.bin', chunksFromSomewhere()); // async iterable of Uint8Array
 */
export async function writeFileAtomic(path: string, data: AtomicWriteData): Promise<void> {
  const target = resolve(path);
  const temp = join(dirname(target), `${basename(target)}.tmp-${uniqueSuffix()}`);
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
  await syncDirectory(dirname(target));
}

/**
 * Replaces directory `dir` as a whole. A fresh `<dir>.tmp-<pid>-<random>` is created and passed
 * to `fill`, which writes the new contents into it. Then the swap: the current `dir` (if any) is
 * renamed to `<dir>.old-<time>-<pid>-<random>`, the new one is renamed to `dir`, and the old one
 * is deleted. If `fill` throws, the temp directory is removed and `dir` is left as it was.
 *
 * Readers should call `recoverDirectory(dir)` first: it repairs the one state a crash can leave
 * (between the two renames, `dir` missing and the previous version under `.old-`).
 *
 * Not safe against two processes replacing the same directory at the same moment; use a lock
 * for that.
 *
 * @example
 * await replaceDirectoryAtomic('/tmp/run/ckpt-100', async (tmp) => {
 *   await writeFileAtomic(`${tmp}/config.json`, '{}');
 * });
 */
export async function replaceDirectoryAtomic(
  dir: string,
  fill: (tmpDir: string) => Promise<void>,
): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const temp = `${target}.tmp-${uniqueSuffix()}`;
  await mkdir(temp);
  try {
    await fill(temp);
    await syncDirectory(temp);
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => {});
    throw error;
  }

  // The time comes first in the name so recoverDirectory can tell which copy is newest.
  const old = `${target}.old-${Date.now()}-${uniqueSuffix()}`;
  let movedOld = false;
  try {
    try {
      await rename(target, old);
      movedOld = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    await rename(temp, target);
  } catch (error) {
    // Put the previous version back so a failed save does not also lose the old checkpoint.
    if (movedOld) await rename(old, target).catch(() => {});
    await rm(temp, { recursive: true, force: true }).catch(() => {});
    throw error;
  }
  await syncDirectory(parent);
  if (movedOld) await rm(old, { recursive: true, force: true });
}

/**
 * What `recoverDirectory` did: the `.old-` copy it moved back to `dir` (or null), and the
 * leftover siblings it deleted.
 *
 * @example
 * const { restored, removed }: RecoveryReport = await recoverDirectory('/tmp/run/ckpt');
 */
export interface RecoveryReport {
  restored: string | null;
  removed: string[];
}

/**
 * Repairs what an interrupted `replaceDirectoryAtomic` can leave next to `dir`:
 * - `dir` missing but `<dir>.old-…` present (crash between the two renames): the newest old copy
 *   is renamed back to `dir`;
 * - other `<dir>.old-…` siblings (crash before the old copy was deleted): removed;
 * - `<dir>.tmp-…` siblings whose owning process is gone (crash during `fill`): removed. Temp
 *   directories of live processes, including this one, are left alone since they may be in use.
 *
 * Safe to call when there is nothing to do, or when even the parent directory does not exist.
 *
 * @example
 * await recoverDirectory('/tmp/run/ckpt'); // then read /tmp/run/ckpt as usual
 */
export async function recoverDirectory(dir: string): Promise<RecoveryReport> {
  const target = resolve(dir);
  const parent = dirname(target);
  const base = basename(target);
  const report: RecoveryReport = { restored: null, removed: [] };

  let names: string[];
  try {
    names = await readdir(parent);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return report;
    throw error;
  }

  const oldPrefix = `${base}.old-`;
  const tmpPrefix = `${base}.tmp-`;
  const olds = names.filter((n) => n.startsWith(oldPrefix)).map((n) => join(parent, n));
  const tmps = names.filter((n) => n.startsWith(tmpPrefix));

  if (olds.length > 0 && !(await exists(target))) {
    // Newest first: by the time in the name when it has one, else by modification time.
    const dated = await Promise.all(
      olds.map(async (p) => ({ path: p, time: await oldCopyTime(p, oldPrefix) })),
    );
    dated.sort((a, b) => b.time - a.time);
    const newest = dated[0]!.path;
    await rename(newest, target);
    await syncDirectory(parent);
    report.restored = newest;
  }
  for (const path of olds) {
    if (path === report.restored) continue;
    await rm(path, { recursive: true, force: true });
    report.removed.push(path);
  }
  for (const name of tmps) {
    if (ownerIsAlive(name.slice(tmpPrefix.length))) continue;
    const path = join(parent, name);
    await rm(path, { recursive: true, force: true });
    report.removed.push(path);
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type FileHandle = Awaited<ReturnType<typeof open>>;

/** `<pid>-<random hex>`: unique across processes (pid) and within one (random). */
function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Writes every byte of `bytes`, looping because a single write may be partial. */
async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

/**
 * fsyncs a directory so a rename inside it is durable. Best effort: some platforms (Windows)
 * cannot open a directory for syncing, and the data itself is already safe by then.
 */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Ignored on purpose, see above.
  } finally {
    await handle?.close().catch(() => {});
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Creation time of an `.old-` copy: from its name (`.old-<ms>-…`) if present, else its mtime. */
async function oldCopyTime(path: string, oldPrefix: string): Promise<number> {
  const match = /^(\d+)-/.exec(basename(path).slice(oldPrefix.length));
  if (match) return Number(match[1]);
  return (await stat(path)).mtimeMs;
}

/**
 * Whether the process that made a `.tmp-<pid>-…` sibling may still be writing it. Names we did
 * not make (no pid) count as abandoned. Signal 0 only checks that the pid exists.
 */
function ownerIsAlive(suffix: string): boolean {
  const match = /^(\d+)-/.exec(suffix);
  if (!match) return false;
  const pid = Number(match[1]);
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the pid exists but belongs to another user, so it is alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
