/**
 * The file-system operations the checkpoint code performs, behind one small interface (Node
 * only). `nodeFileSystem` is the real one; tests substitute a layer that crashes at a chosen
 * operation, which is how every intermediate state of a save is tried (test/io/crash.test.ts).
 *
 * Also here: reading a file only when it is a regular file of bounded size (never `/dev/zero`, a
 * FIFO or a directory), creating directories without Node's recursive `mkdir` (which spins
 * forever under `/proc`), and the `<name>.tmp-<pid>-…` naming that tells a live writer's temp
 * files from a crashed one's.
 */

import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { formatBytes } from '../report/progress.js';

/** What `FileSystem.stat` reports: the kind of entry, its size and modification time. */
export interface EntryInfo {
  kind: 'file' | 'directory' | 'other';
  bytes: number;
  modifiedMs: number;
}

/**
 * The operations a save, a recovery and a load use. Every mutating operation is one call, so a
 * test layer can stop the world between any two of them.
 *
 * @example
 * const fs: FileSystem = nodeFileSystem; // or a fault-injecting wrapper in tests
 */
export interface FileSystem {
  /** The process id written into temp names (a crash simulation uses a dead one). */
  readonly pid: number;
  /** Creates `path` (which must not exist) and writes `bytes`; the file is not yet durable. */
  createFile(path: string, bytes: Uint8Array): Promise<void>;
  /** fsyncs a file so its data survives a power loss. */
  syncFile(path: string): Promise<void>;
  /** fsyncs a directory so the names created or renamed in it survive a power loss (best effort). */
  syncDirectory(path: string): Promise<void>;
  /** Creates one directory level; its parent must exist. */
  makeDirectory(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a whole directory tree; nothing to remove is not an error. */
  remove(path: string): Promise<void>;
  readDirectory(path: string): Promise<string[]>;
  /** null when nothing is there. */
  stat(path: string): Promise<EntryInfo | null>;
  /** Reads a regular file of at most `maxBytes` bytes (see `readRegularFile`). */
  readFile(path: string, maxBytes: number): Promise<Uint8Array>;
}

/**
 * The real file system (node:fs/promises).
 *
 * @example
 * await nodeFileSystem.createFile('/tmp/x', new Uint8Array([1]));
 */
export const nodeFileSystem: FileSystem = {
  pid: process.pid,
  async createFile(path, bytes) {
    const handle = await open(path, 'wx');
    try {
      await writeAll(handle, bytes);
    } finally {
      await handle.close();
    }
  },
  async syncFile(path) {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  async syncDirectory(path) {
    // Best effort: some platforms (Windows) cannot open a directory for syncing.
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      await handle.sync();
    } catch {
      // ignored on purpose
    } finally {
      await handle?.close().catch(() => {});
    }
  },
  makeDirectory: (path) => mkdir(path).then(() => {}),
  rename,
  remove: (path) => rm(path, { recursive: true, force: true }),
  readDirectory: (path) => readdir(path),
  async stat(path) {
    try {
      return entryInfo(await stat(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  },
  readFile: (path, maxBytes) => readRegularFile(path, { maxBytes }),
};

type FileHandle = Awaited<ReturnType<typeof open>>;

function entryInfo(info: Stats): EntryInfo {
  return {
    kind: info.isFile() ? 'file' : info.isDirectory() ? 'directory' : 'other',
    bytes: info.size,
    modifiedMs: info.mtimeMs,
  };
}

/** Writes every byte of `bytes`, looping because a single write may be partial. */
export async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

/**
 * A file that cannot be read as asked: not there, not a regular file, too large, unreadable.
 * The message starts with the path; `code` is a short machine-readable reason.
 *
 * @example
 * try { await readRegularFile('/dev/zero'); } catch (e) { if (e instanceof FileReadError) e.code; } // 'not-a-file'
 */
export class FileReadError extends Error {
  constructor(
    readonly path: string,
    readonly code: 'missing' | 'not-a-file' | 'too-large' | 'unreadable',
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${problem}`, options);
    this.name = 'FileReadError';
  }
}

/**
 * Reads a whole file, but only a regular file whose size (checked before reading) is at most
 * `maxBytes`: a directory, a FIFO, a socket or a device such as `/dev/zero` is refused at once
 * instead of blocking or growing without bound. The file is opened non-blocking (a FIFO would
 * otherwise wait for a writer) and checked through the open handle, so it cannot be swapped
 * between the check and the read.
 *
 * @example
 * const bytes = await readRegularFile('runs/ckpt/config.json', { maxBytes: 1 << 20 });
 */
export async function readRegularFile(
  path: string,
  options: { maxBytes?: number } = {},
): Promise<Uint8Array> {
  const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FileReadError(path, 'missing', 'not found', { cause: error });
    if (code === 'EISDIR') throw new FileReadError(path, 'not-a-file', 'is a directory, not a regular file');
    throw new FileReadError(path, 'unreadable', `cannot be read (${code ?? String(error)})`, {
      cause: error,
    });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new FileReadError(path, 'not-a-file', `is ${describeKind(info)}, not a regular file`);
    }
    if (info.size > maxBytes) {
      throw new FileReadError(
        path,
        'too-large',
        `is ${formatBytes(info.size)}, more than the ${formatBytes(maxBytes)} allowed for it`,
      );
    }
    // Read what the size promised and no more: a file that grows meanwhile cannot grow us.
    const bytes = new Uint8Array(info.size);
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await handle.read(bytes, done, bytes.length - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === bytes.length ? bytes : bytes.subarray(0, done);
  } catch (error) {
    if (error instanceof FileReadError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileReadError(path, 'unreadable', `cannot be read (${code ?? String(error)})`, {
      cause: error,
    });
  } finally {
    await handle.close().catch(() => {});
  }
}

function describeKind(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Creates `dir` and any missing parents, one level at a time. Node's `mkdir(…, { recursive:
 * true })` never returns under `/proc` (it retries ENOENT forever); this fails with the level
 * that could not be made. A file in the way is an error naming it.
 *
 * @example
 * await makeDirectories('runs/mag/checkpoint');
 */
export async function makeDirectories(dir: string, fs: FileSystem = nodeFileSystem): Promise<void> {
  const target = resolve(dir);
  const missing: string[] = [];
  let at = target;
  for (;;) {
    const info = await fs.stat(at);
    if (info !== null) {
      if (info.kind !== 'directory') {
        throw new Error(
          `${at} is ${info.kind === 'file' ? 'a file' : 'not a directory'}, so ${target} cannot be created`,
        );
      }
      break;
    }
    missing.push(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const level of missing.reverse()) {
    try {
      await fs.makeDirectory(level);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && (await fs.stat(level))?.kind === 'directory')
        continue;
      throw error;
    }
  }
}

/** File systems that hold no files of ours: kernel views and pseudo file systems (statfs magic). */
const PSEUDO_FILE_SYSTEMS: Record<number, string> = {
  40864: 'proc',
  1650812274: 'sysfs',
  7377: 'devpts',
  2613483: 'cgroup',
  1667723888: 'cgroup2',
  1684170528: 'debugfs',
  1953653091: 'tracefs',
  1935894131: 'securityfs',
  3405662737: 'bpf',
  1634035564: 'pstore',
  1650812272: 'configfs',
  3730735588: 'efivarfs',
  1112100429: 'binfmt_misc',
  1702057283: 'fusectl',
  1853056627: 'nsfs',
};

/**
 * Makes sure `dir` can take a run's output before any work starts: not on a pseudo file system
 * (`/proc`, `/sys`, …), not a file, not under a file, created if missing, and writable (a probe
 * file is written, fsynced and removed). Errors start with `label` (e.g. `--out`) and the path.
 *
 * @example
 * await prepareOutputDirectory('runs/mag', '--out');
 */
export async function prepareOutputDirectory(dir: string, label = 'output folder'): Promise<void> {
  const target = resolve(dir);
  const fail = (problem: string): never => {
    throw new Error(`${label} ${dir}: ${problem}`);
  };
  let existing = target;
  let info = await nodeFileSystem.stat(existing).catch(() => null);
  while (info === null && dirname(existing) !== existing) {
    existing = dirname(existing);
    info = await nodeFileSystem.stat(existing).catch(() => null);
  }
  if (info !== null && info.kind !== 'directory') {
    fail(existing === target ? 'is a file, not a folder' : `is under ${existing}, which is a file`);
  }
  try {
    const kind = PSEUDO_FILE_SYSTEMS[(await statfs(existing)).type];
    if (kind) fail(`is on the ${kind} pseudo file system, which cannot hold files; choose a folder on disk`);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith(label)) throw error;
    // statfs unsupported here: the probe below still finds out.
  }
  try {
    await makeDirectories(target);
  } catch (error) {
    fail(`cannot be created (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const probe = join(target, `.titans-write-probe.tmp-${tempSuffix()}`);
  try {
    await nodeFileSystem.createFile(probe, new Uint8Array([0]));
    await nodeFileSystem.syncFile(probe);
  } catch (error) {
    fail(`is not writable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  } finally {
    await rm(probe, { force: true }).catch(() => {});
  }
}

/**
 * A suffix for temp names, `<pid>-<ms>-<random hex>`: the pid says whose it is (see
 * `ownerIsAlive`), the time orders the copies, the random part keeps names unique.
 *
 * @example
 * `${target}.tmp-${tempSuffix()}`; // 'ckpt.tmp-4242-1718000000000-a1b2c3d4e5f6'
 */
export function tempSuffix(fs: FileSystem = nodeFileSystem): string {
  return `${fs.pid}-${Date.now()}-${randomBytes(6).toString('hex')}`;
}

/** The writes this process has in progress: own temp names not in here are leftovers. */
const ownTemps = new Set<string>();

/**
 * Marks a temp path as in use by this process while `work` runs, so a recovery running at the
 * same time in this process leaves it alone.
 *
 * @example
 * await usingTemp('/tmp/run/ckpt.tmp-1-2-3', () => fill());
 */
export async function usingTemp<T>(path: string, work: () => Promise<T>): Promise<T> {
  ownTemps.add(path);
  try {
    return await work();
  } finally {
    ownTemps.delete(path);
  }
}

/** Linux pids never exceed 2^22; a bigger number in a name is a time, not a pid. */
const MAX_PID = 4_194_304;

/**
 * Whether the writer of a temp or old copy (`suffix` is the part after `.tmp-` or `.old-`,
 * starting `<pid>-`) may still be using it. This process's own names count as alive only while
 * `usingTemp` marks them; other pids are alive when signal 0 reaches them. A name without a pid
 * counts as abandoned.
 *
 * @example
 * ownerIsAlive('/tmp/ckpt.tmp-4242-…', '4242-…'); // true while process 4242 runs
 */
export function ownerIsAlive(path: string, suffix: string): boolean {
  const match = /^(\d+)-/.exec(suffix);
  if (!match) return false;
  const pid = Number(match[1]);
  if (!(pid > 0 && pid <= MAX_PID)) return false;
  if (pid === process.pid) return ownTemps.has(path);
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the pid exists but belongs to another user, so it is alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The time (ms since 1970) in a temp or old copy's suffix: `<pid>-<ms>-…`, or the older
 * `<ms>-<pid>-…` of `.old-` copies; null when there is none.
 *
 * @example
 * suffixTime('4242-1718000000000-a1b2'); // 1718000000000
 */
export function suffixTime(suffix: string): number | null {
  const numbers = /^(\d+)-(\d+)-/.exec(suffix);
  if (!numbers) return null;
  const [a, b] = [Number(numbers[1]), Number(numbers[2])];
  if (b > MAX_PID) return b;
  if (a > MAX_PID) return a;
  return null;
}
