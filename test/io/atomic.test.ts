import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  recoverDirectory,
  removeStaleTemps,
  replaceDirectoryAtomic,
  writeFileAtomic,
} from '../../src/io/atomic.js';

/** A pid no process can have (Linux pids stop at 2^22), so its copies count as abandoned. */
const DEAD = 4194303;

let root: string;
let counter = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-atomic-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh empty directory per test, so tests can run in any order. */
async function freshDir(): Promise<string> {
  const dir = join(root, `case-${counter++}`);
  await mkdir(dir);
  return dir;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('writeFileAtomic', () => {
  it('writes strings, bytes, and sync or async chunk streams', async () => {
    const dir = await freshDir();
    const target = join(dir, 'out.bin');
    await writeFileAtomic(target, 'héllo');
    assert.equal(await readFile(target, 'utf8'), 'héllo');
    await writeFileAtomic(target, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...(await readFile(target))], [1, 2, 3]);
    await writeFileAtomic(target, [new Uint8Array([4]), new Uint8Array([5, 6])]);
    assert.deepEqual([...(await readFile(target))], [4, 5, 6]);
    await writeFileAtomic(
      target,
      (async function* () {
        yield new Uint8Array([7]);
        yield new Uint8Array(0);
        yield new Uint8Array([8, 9]);
      })(),
    );
    assert.deepEqual([...(await readFile(target))], [7, 8, 9]);
    assert.deepEqual(await readdir(dir), ['out.bin'], 'no temp file is left behind');
  });

  it('leaves the old file byte-identical when the source throws midway', async () => {
    const dir = await freshDir();
    const target = join(dir, 'weights.bin');
    const original = randomBytes(4096);
    await writeFile(target, original);
    const failing = (function* () {
      yield new Uint8Array(1000).fill(1);
      yield new Uint8Array(1000).fill(2);
      throw new Error('disk on fire');
    })();
    await assert.rejects(writeFileAtomic(target, failing), /disk on fire/);
    assert.deepEqual(await readFile(target), original);
    assert.deepEqual(await readdir(dir), ['weights.bin'], 'the temp file was removed');
  });

  it('leaves the old file intact when an async source rejects or yields a non-byte chunk', async () => {
    const dir = await freshDir();
    const target = join(dir, 'a.txt');
    await writeFile(target, 'old');
    const rejecting = (async function* () {
      yield new Uint8Array([1]);
      throw new Error('network gone');
    })();
    await assert.rejects(writeFileAtomic(target, rejecting), /network gone/);
    const wrongChunk = [new Uint8Array([1]), 'text' as unknown as Uint8Array];
    await assert.rejects(writeFileAtomic(target, wrongChunk), /chunks must be Uint8Array/);
    assert.equal(await readFile(target, 'utf8'), 'old');
    assert.deepEqual(await readdir(dir), ['a.txt']);
  });

  it('cleans up its temp file when the final rename fails', async () => {
    const dir = await freshDir();
    const target = join(dir, 'occupied');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'x'); // a non-empty directory cannot be renamed over
    await assert.rejects(writeFileAtomic(target, 'data'));
    assert.deepEqual(await readdir(dir), ['occupied']);
    assert.equal(await readFile(join(target, 'inside'), 'utf8'), 'x');
  });

  it('fails cleanly when the directory does not exist', async () => {
    const dir = await freshDir();
    await assert.rejects(writeFileAtomic(join(dir, 'missing', 'f'), 'x'), { code: 'ENOENT' });
  });

  it('keeps the old file when the writing process is killed mid-write', { timeout: 10_000 }, async () => {
    const dir = await freshDir();
    const target = join(dir, 'model.safetensors');
    const original = randomBytes(256 * 1024);
    await writeFile(target, original);

    // The child imports the compiled module by absolute URL; this test file is dist/test/io/*.js.
    const atomicUrl = new URL('../../src/io/atomic.js', import.meta.url);
    assert.ok(await exists(fileURLToPath(atomicUrl)), 'compiled atomic.js not found next to the test');
    const script = join(dir, 'writer.mjs');
    await writeFile(
      script,
      [
        `import { writeFileAtomic } from ${JSON.stringify(atomicUrl.href)};`,
        'async function* chunks() {',
        '  yield new Uint8Array(1 << 20).fill(0xab);',
        // Reaching here means the first chunk has been written to the temp file.
        "  process.stdout.write('writing\\n');",
        '  setInterval(() => {}, 1 << 30);', // keeps the event loop alive: wait forever
        '  await new Promise(() => {});',
        '  yield new Uint8Array(1);',
        '}',
        'await writeFileAtomic(process.argv[2], chunks());',
      ].join('\n'),
    );

    const child = spawn(process.execPath, [script, target], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let stdout = '';
        child.stdout.on('data', (d) => {
          stdout += d;
          if (stdout.includes('writing')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`child exited early (code ${code}): ${stderr}`)));
      });
    } finally {
      // Killed on success, and also if the test fails or times out, so no child outlives it.
      child.kill('SIGKILL');
    }
    assert.equal(await exited, 'SIGKILL');

    assert.deepEqual(await readFile(target), original, 'target is still the original, byte for byte');
    // The killed writer's temp file is left behind, holding the chunk it wrote: proof that the
    // write was really under way, into a separate file.
    const leftovers = (await readdir(dir)).filter((n) => n.startsWith(`model.safetensors.tmp-${child.pid}-`));
    assert.equal(leftovers.length, 1);
    assert.equal((await stat(join(dir, leftovers[0]!))).size, 1 << 20);
  });
});

describe('replaceDirectoryAtomic', () => {
  it('creates the directory when absent and replaces it as a whole when present', async () => {
    const parent = await freshDir();
    const dir = join(parent, 'ckpt');
    await replaceDirectoryAtomic(dir, async (tmp) => {
      await writeFile(join(tmp, 'a.txt'), 'one');
      await writeFile(join(tmp, 'stale.txt'), 'old only');
    });
    assert.deepEqual((await readdir(dir)).sort(), ['a.txt', 'stale.txt']);
    await replaceDirectoryAtomic(dir, async (tmp) => {
      assert.notEqual(tmp, dir);
      assert.ok(tmp.startsWith(`${dir}.tmp-`));
      await writeFile(join(tmp, 'a.txt'), 'two');
    });
    assert.deepEqual(await readdir(dir), ['a.txt']);
    assert.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'two');
    assert.deepEqual(await readdir(parent), ['ckpt'], 'no .tmp- or .old- sibling remains');
  });

  it('keeps the old directory and removes the temp one when fill throws', async () => {
    const parent = await freshDir();
    const dir = join(parent, 'ckpt');
    await mkdir(dir);
    await writeFile(join(dir, 'keep.txt'), 'precious');
    await assert.rejects(
      replaceDirectoryAtomic(dir, async (tmp) => {
        await writeFile(join(tmp, 'half.txt'), 'half');
        throw new Error('out of memory');
      }),
      /out of memory/,
    );
    assert.deepEqual(await readdir(dir), ['keep.txt']);
    assert.equal(await readFile(join(dir, 'keep.txt'), 'utf8'), 'precious');
    assert.deepEqual(await readdir(parent), ['ckpt']);
  });

  it('creates missing parent directories', async () => {
    const parent = await freshDir();
    const dir = join(parent, 'a', 'b', 'ckpt');
    await replaceDirectoryAtomic(dir, async (tmp) => writeFile(join(tmp, 'x'), 'x'));
    assert.equal(await readFile(join(dir, 'x'), 'utf8'), 'x');
  });
});

describe('recoverDirectory', () => {
  it('restores <dir>.old-… when the crash came between the two renames', async () => {
    const parent = await freshDir();
    const dir = join(parent, 'ckpt');
    await mkdir(`${dir}.old-x`);
    await writeFile(join(`${dir}.old-x`, 'config.json'), '{}');
    const report = await recoverDirectory(dir);
    assert.equal(report.restored, `${dir}.old-x`);
    assert.equal(await readFile(join(dir, 'config.json'), 'utf8'), '{}');
    assert.deepEqual(await readdir(parent), ['ckpt']);
  });

  it('restores the newest old copy and removes the others (new and older names)', async () => {
    const parent = await freshDir();
    const dir = join(parent, 'ckpt');
    // <pid>-<ms>-<hex> as written now, and <ms>-<pid>-<hex> as written before.
    const names = [`${DEAD}-1700000001000-aa`, `1700000003000-${DEAD}-aa`, `${DEAD}-1700000002000-aa`];
    for (const name of names) {
      await mkdir(`${dir}.old-${name}`);
      await writeFile(join(`${dir}.old-${name}`, 'v'), name);
    }
    const report = await recoverDirectory(dir);
    assert.equal(report.restored, `${dir}.old-${names[1]}`);
    assert.equal(await readFile(join(dir, 'v'), 'utf8'), names[1]);
    assert.equal(report.removed.length, 2);
    assert.deepEqual(await readdir(parent), ['ckpt']);
  });

  it('leaves an existing dir alone, removing stale siblings but not live temp dirs', async () => {
    const parent = await freshDir();
    const dir = join(parent, 'ckpt');
    await mkdir(dir);
    await writeFile(join(dir, 'v'), 'current');
    const live = `${dir}.tmp-${process.ppid}-1700000000000-abc`; // the test runner's: maybe a save in progress
    const dead = `${dir}.tmp-${DEAD}-1700000000000-abc`; // no such pid
    const ownLeftover = `${dir}.tmp-${process.pid}-1700000000000-abc`; // this pid, but no save of ours
    for (const p of [`${dir}.old-${DEAD}-5-aa`, `${dir}.tmp-junk`, live, dead, ownLeftover]) await mkdir(p);
    const other = join(parent, 'ckpt2.old-1'); // belongs to a different directory
    await mkdir(other);
    const report = await recoverDirectory(dir);
    assert.equal(report.restored, null);
    assert.equal(await readFile(join(dir, 'v'), 'utf8'), 'current');
    assert.deepEqual((await readdir(parent)).sort(), [
      'ckpt',
      `ckpt.tmp-${process.ppid}-1700000000000-abc`,
      'ckpt2.old-1',
    ]);
    assert.ok(await exists(live));
    assert.deepEqual(report.busy, [live]);
  });

  it('does nothing when neither the directory nor its parent exists', async () => {
    const parent = await freshDir();
    const report = await recoverDirectory(join(parent, 'no', 'such', 'ckpt'));
    assert.deepEqual(report, { restored: null, removed: [], busy: [] });
  });

  it('is exercised through a real interrupted swap', async () => {
    // Reproduce the crash window by hand: old renamed aside, new one never renamed in.
    const parent = await freshDir();
    const dir = join(parent, 'ckpt');
    await replaceDirectoryAtomic(dir, async (tmp) => writeFile(join(tmp, 'v'), 'good'));
    await rename(dir, `${dir}.old-${Date.now()}-${process.pid}-ff`);
    await mkdir(`${dir}.tmp-${DEAD}-${Date.now()}-ee`); // the half-built new version of a dead process
    assert.equal(await exists(dir), false);
    await recoverDirectory(dir);
    assert.equal(await readFile(join(dir, 'v'), 'utf8'), 'good');
    assert.deepEqual(await readdir(parent), ['ckpt']);
  });

  it('promotes a finished temp copy over dir, and keeps dir while no newer copy is proven complete', async () => {
    const parent = await freshDir();
    const dir = join(parent, 'ckpt');
    const complete = async (path: string) => exists(join(path, 'DONE'));
    await mkdir(dir);
    await writeFile(join(dir, 'v'), 'old');
    await writeFile(join(dir, 'DONE'), '');
    const finished = `${dir}.tmp-${DEAD}-1700000002000-aa`;
    const unfinished = `${dir}.tmp-${DEAD}-1700000003000-bb`;
    await mkdir(finished);
    await writeFile(join(finished, 'v'), 'new');
    await writeFile(join(finished, 'DONE'), '');
    await mkdir(unfinished);
    await writeFile(join(unfinished, 'v'), 'half');
    const report = await recoverDirectory(dir, { isComplete: complete });
    assert.equal(report.restored, finished);
    assert.equal(await readFile(join(dir, 'v'), 'utf8'), 'new');
    assert.deepEqual(await readdir(parent), ['ckpt'], 'the replaced dir and the unfinished copy are gone');

    // An old copy stays while dir itself is not proven complete.
    await rm(join(dir, 'DONE'));
    const old = `${dir}.old-${DEAD}-1700000001000-cc`;
    await mkdir(old);
    await writeFile(join(old, 'DONE'), '');
    const again = await recoverDirectory(dir, { isComplete: complete });
    assert.deepEqual(again.removed, []);
    assert.ok(await exists(old));
  });
});

describe('removeStaleTemps', () => {
  it("removes the temp files of dead writers, not live writers' files, directories or other files", async () => {
    const dir = await freshDir();
    const stale = `loss.svg.tmp-${DEAD}-1700000000000-ab12`;
    const live = `summary.json.tmp-${process.ppid}-1700000000000-cd34`;
    const copy = `checkpoint.tmp-${DEAD}-1700000000000-ef56`; // a checkpoint copy: recoverDirectory's business
    await writeFile(join(dir, stale), '<svg');
    await writeFile(join(dir, live), '{');
    await writeFile(join(dir, 'loss.svg'), '<svg/>');
    await mkdir(join(dir, copy));
    const removed = await removeStaleTemps(dir);
    assert.deepEqual(removed, [join(dir, stale)]);
    assert.deepEqual((await readdir(dir)).sort(), [copy, 'loss.svg', live].sort());
    assert.deepEqual(await removeStaleTemps(join(dir, 'missing')), []);
  });
});
