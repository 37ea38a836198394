import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type CheckpointData,
  CheckpointError,
  loadCheckpoint,
  readSafetensorsFile,
  saveCheckpoint,
  writeSafetensorsFile,
} from '../../src/io/checkpoint.js';
import { FileReadError } from '../../src/io/fs.js';
import { type NamedArray, SafetensorsError } from '../../src/io/safetensors.js';

/** Turns a checkpoint into one written before manifests existed. */
async function withoutManifest(dir: string): Promise<string> {
  await rm(join(dir, 'manifest.json'));
  return dir;
}

let root: string;
let counter = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-ckpt-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A path for a checkpoint that does not exist yet, unique per test. */
function freshPath(): string {
  return join(root, `ckpt-${counter++}`);
}

/** Saves `data` at a fresh path and returns the path. */
async function saveAndReturn(data: CheckpointData): Promise<string> {
  const dir = freshPath();
  await saveCheckpoint(dir, data);
  return dir;
}

const f32 = (shape: number[], values: number[]): NamedArray => ({
  dtype: 'float32',
  shape,
  data: new Float32Array(values),
});

function sample(): CheckpointData {
  return {
    config: { model: 'mac', dim: 4, layers: [1, 2], nested: { lr: 0.001 } },
    tensors: {
      'embed.weight': f32([2, 2], [1, 2, 3, 4]),
      'head.bias': { dtype: 'float64', shape: [3], data: new Float64Array([0.5, -1, 2]) },
      step: { dtype: 'int32', shape: [], data: new Int32Array([100]) },
    },
    metadata: { format: 'titans', step: '100' },
    extraTensorFiles: { 'optimizer.safetensors': { 'embed.weight.m': f32([2, 2], [0, 0.1, 0.2, 0.3]) } },
    extraJsonFiles: { 'trainer.json': { step: 100, seed: 7 }, 'tokenizer.json': ['a', 'b'] },
  };
}

/** Asserts a CheckpointError whose `file` ends with `file` and whose message matches `problem`. */
async function assertCheckpointError(
  promise: Promise<unknown>,
  file: string,
  problem: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof CheckpointError, `expected CheckpointError, got ${String(error)}`);
    assert.ok(error.file.endsWith(file), `error.file ${error.file} should end with ${file}`);
    assert.ok(error.message.startsWith(`${error.file}: `), error.message);
    assert.match(error.message, problem);
    return true;
  });
}

describe('checkpoint save and load', () => {
  it('round-trips config, tensors, metadata and extra files', async () => {
    const dir = freshPath();
    const data = sample();
    await saveCheckpoint(dir, data);
    const files = [
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'tokenizer.json',
      'trainer.json',
    ];
    assert.deepEqual((await readdir(dir)).sort(), [...files, 'manifest.json'].sort());
    const configText = await readFile(join(dir, 'config.json'), 'utf8');
    assert.equal(configText, `${JSON.stringify(data.config, null, 2)}\n`, 'config.json is pretty JSON');
    // The agreed manifest: every other file's size and SHA-256 (checked here with node:crypto).
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.format, 'titans-checkpoint');
    assert.equal(manifest.version, 1);
    assert.deepEqual(Object.keys(manifest.files), files);
    for (const name of files) {
      const bytes = await readFile(join(dir, name));
      assert.deepEqual(manifest.files[name], {
        bytes: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
    }

    const loaded = await loadCheckpoint(dir, {
      expectTensors: {
        'embed.weight': { shape: [2, 2], dtype: 'float32' },
        'head.bias': { shape: [3] },
        step: { shape: [], dtype: 'int32' },
      },
    });
    assert.deepEqual(loaded, {
      config: data.config,
      tensors: data.tensors,
      metadata: data.metadata,
      extraTensorFiles: data.extraTensorFiles,
      extraJsonFiles: data.extraJsonFiles,
    });
  });

  it('fills absent parts with empty objects', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, { config: {}, tensors: { w: f32([1], [1]) } });
    const loaded = await loadCheckpoint(dir);
    assert.deepEqual(loaded.metadata, {});
    assert.deepEqual(loaded.extraTensorFiles, {});
    assert.deepEqual(loaded.extraJsonFiles, {});
  });

  it('replaces a previous checkpoint as a whole', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    await saveCheckpoint(dir, { config: { v: 2 }, tensors: { w: f32([1], [2]) } });
    assert.deepEqual((await readdir(dir)).sort(), ['config.json', 'manifest.json', 'model.safetensors']);
    const loaded = await loadCheckpoint(dir);
    assert.deepEqual(loaded.config, { v: 2 });
    assert.deepEqual(Object.keys(loaded.tensors), ['w']);
    const siblings = (await readdir(root)).filter((n) => n.startsWith(`${basename(dir)}.`));
    assert.deepEqual(siblings, [], 'no .tmp- or .old- directory is left');
  });

  it('recovers from a crash between the two renames of a save', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    await rename(dir, `${dir}.old-x`); // the state a crash between the renames leaves
    const loaded = await loadCheckpoint(dir);
    assert.deepEqual(loaded.tensors, sample().tensors);
    assert.ok((await stat(dir)).isDirectory());
    await assert.rejects(stat(`${dir}.old-x`), { code: 'ENOENT' });
  });

  it('refuses bad input before touching the disk', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    const before = await readFile(join(dir, 'model.safetensors'));
    await assertCheckpointError(
      saveCheckpoint(dir, { config: {}, tensors: { w: f32([2], [1]) } }),
      'model.safetensors',
      /"w": data has 1 elements but shape \[2\] needs 2/,
    );
    await assertCheckpointError(
      saveCheckpoint(dir, { config: {}, tensors: {}, extraJsonFiles: { '../escape.json': {} } }),
      'escape.json',
      /plain file name ending in \.json/,
    );
    await assertCheckpointError(
      saveCheckpoint(dir, { config: {}, tensors: {}, extraTensorFiles: { 'opt.bin': {} } }),
      'opt.bin',
      /ending in \.safetensors/,
    );
    await assertCheckpointError(
      saveCheckpoint(dir, { config: {}, tensors: {}, extraJsonFiles: { 'config.json': {} } }),
      'config.json',
      /used twice/,
    );
    await assertCheckpointError(
      saveCheckpoint(dir, { config: { big: 1n }, tensors: {} }),
      'config.json',
      /cannot encode as JSON/,
    );
    await assertCheckpointError(
      saveCheckpoint(dir, { config: [] as unknown as object, tensors: {} }),
      'config.json',
      /must be a JSON object/,
    );
    assert.deepEqual(
      await readFile(join(dir, 'model.safetensors')),
      before,
      'the old checkpoint is untouched',
    );
  });
});

describe('checkpoint load errors', () => {
  it('reports a missing directory or file', async () => {
    const dir = freshPath();
    await assertCheckpointError(loadCheckpoint(dir), basename(dir), /checkpoint directory does not exist/);
    await saveCheckpoint(dir, sample());
    await rm(join(dir, 'trainer.json'));
    await assertCheckpointError(loadCheckpoint(dir), 'trainer.json', /file is missing/);
    await saveCheckpoint(dir, sample());
    await withoutManifest(dir);
    await rm(join(dir, 'config.json'));
    await assertCheckpointError(loadCheckpoint(dir), 'config.json', /file is missing/);
    await writeFile(join(dir, 'config.json'), '{}');
    await rm(join(dir, 'model.safetensors'));
    await assertCheckpointError(loadCheckpoint(dir), 'model.safetensors', /file is missing/);
  });

  it('names the file that differs from the manifest, and the tensor when it is a tensor file', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    const good = await readFile(join(dir, 'config.json'));
    await writeFile(join(dir, 'config.json'), good.toString().replace('4', '5'));
    await assertCheckpointError(
      loadCheckpoint(dir),
      'config.json',
      /SHA-256 .* differs from the one in manifest\.json/,
    );
    await writeFile(join(dir, 'config.json'), `${good}\n`);
    await assertCheckpointError(
      loadCheckpoint(dir),
      'config.json',
      /is \d+ bytes but manifest\.json records/,
    );
    await writeFile(join(dir, 'config.json'), good);
    const weights = join(dir, 'optimizer.safetensors');
    const bytes = await readFile(weights);
    bytes[bytes.length - 1]! ^= 0x40;
    await writeFile(weights, bytes);
    await assertCheckpointError(
      loadCheckpoint(dir),
      'optimizer.safetensors',
      /differs from the one in manifest\.json.*tensor "embed\.weight\.m": its data does not match/,
    );
    // Without the manifest, the per-tensor hash in the header still catches it.
    await withoutManifest(dir);
    await assertCheckpointError(
      loadCheckpoint(dir),
      'optimizer.safetensors',
      /"embed\.weight\.m": its data does not match/,
    );
  });

  it('refuses a damaged manifest, and a newer manifest version, naming manifest.json', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    const path = join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, '{"format": "titans-checkpoint",');
    await assertCheckpointError(loadCheckpoint(dir), 'manifest.json', /not a valid manifest/);
    await writeFile(path, JSON.stringify({ ...manifest, version: 2 }));
    await assertCheckpointError(loadCheckpoint(dir), 'manifest.json', /version 2 is newer than this reader/);
    await writeFile(
      path,
      JSON.stringify({ ...manifest, files: { ...manifest.files, '../x': manifest.files['config.json'] } }),
    );
    await assertCheckpointError(loadCheckpoint(dir), 'manifest.json', /not a plain file name/);
  });

  it('refuses non-finite weights, saying how many and where, unless allowed', async () => {
    const dir = freshPath();
    const data = sample();
    data.tensors['embed.weight'] = f32([2, 2], [1, Number.NaN, 3, Number.POSITIVE_INFINITY]);
    await saveCheckpoint(dir, data);
    await assertCheckpointError(
      loadCheckpoint(dir),
      'model.safetensors',
      /2 non-finite values \(1 NaN, 1 ±Infinity\) in 1 tensor: "embed\.weight" \(2, first at index 1\).*--allow-nonfinite/,
    );
    const loaded = await loadCheckpoint(dir, { allowNonFinite: true });
    assert.ok(Number.isNaN(loaded.tensors['embed.weight']!.data[1]!));
  });

  it('reads only regular files, with the size checked before reading', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    await withoutManifest(dir);
    await rm(join(dir, 'trainer.json'));
    execFileSync('mkfifo', [join(dir, 'trainer.json')]); // reading a FIFO would block forever
    await assertCheckpointError(
      loadCheckpoint(dir),
      'trainer.json',
      /is a FIFO \(named pipe\), not a regular file/,
    );
    await rm(join(dir, 'trainer.json'));
    await mkdir(join(dir, 'trainer.json'));
    await assertCheckpointError(loadCheckpoint(dir), 'trainer.json', /is a directory, not a regular file/);
    await rm(join(dir, 'trainer.json'), { recursive: true });
    const { symlink } = await import('node:fs/promises');
    await symlink('/dev/zero', join(dir, 'trainer.json')); // would grow without bound
    await assertCheckpointError(
      loadCheckpoint(dir),
      'trainer.json',
      /is a character device, not a regular file/,
    );
    await rm(join(dir, 'trainer.json'));
    await assertCheckpointError(
      loadCheckpoint(dir, { maxFileBytes: 100 }),
      'model.safetensors',
      /is \d+ bytes, more than the 100 bytes allowed/,
    );
  });

  it('reports a path that is a file, not a directory', async () => {
    const file = freshPath();
    await writeFile(file, 'x');
    await assertCheckpointError(loadCheckpoint(file), file, /not a directory/);
  });

  it('reports a corrupt config.json with the JSON parser message', async () => {
    const dir = await withoutManifest(await saveAndReturn(sample()));
    await writeFile(join(dir, 'config.json'), '{"dim": 4,');
    await assertCheckpointError(loadCheckpoint(dir), 'config.json', /not valid JSON \(.+\)/);
    await writeFile(join(dir, 'config.json'), '[1, 2]');
    await assertCheckpointError(loadCheckpoint(dir), 'config.json', /config must be a JSON object/);
    await writeFile(join(dir, 'config.json'), new Uint8Array([0x7b, 0xff, 0x7d]));
    await assertCheckpointError(
      loadCheckpoint(dir),
      'config.json',
      /not valid JSON \(file is not valid UTF-8\)/,
    );
  });

  it('reports a truncated model.safetensors, keeping the SafetensorsError as cause', async () => {
    const dir = await withoutManifest(await saveAndReturn(sample()));
    const path = join(dir, 'model.safetensors');
    const size = (await stat(path)).size;
    await truncate(path, size - 3);
    await assertCheckpointError(loadCheckpoint(dir), 'model.safetensors', /truncated/);
    await truncate(path, 20);
    await assert.rejects(loadCheckpoint(dir), (error: unknown) => {
      assert.ok(error instanceof CheckpointError);
      assert.ok(error.cause instanceof SafetensorsError);
      assert.match(error.message, /model\.safetensors: header length \d+ exceeds file size 20/);
      return true;
    });
  });

  it('reports a corrupt extra file by name', async () => {
    const dir = await withoutManifest(await saveAndReturn(sample()));
    await writeFile(join(dir, 'optimizer.safetensors'), new Uint8Array(4));
    await assertCheckpointError(loadCheckpoint(dir), 'optimizer.safetensors', /too short/);
    await saveCheckpoint(dir, sample());
    await withoutManifest(dir);
    await writeFile(join(dir, 'trainer.json'), 'nope');
    await assertCheckpointError(loadCheckpoint(dir), 'trainer.json', /not valid JSON/);
  });

  it('reports missing, unexpected and mismatched tensors by name', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    const expected = {
      'embed.weight': { shape: [2, 2] },
      'head.bias': { shape: [3] },
      step: { shape: [] },
    };

    const { step: _dropped, ...withoutStep } = expected;
    await assertCheckpointError(
      loadCheckpoint(dir, { expectTensors: { ...withoutStep, 'mem.w': { shape: [4, 4] } } }),
      'model.safetensors',
      /tensor "mem\.w" is missing \(expected shape \[4, 4\]\).*unexpected tensor "step"/,
    );
    await assertCheckpointError(
      loadCheckpoint(dir, { expectTensors: { ...expected, 'embed.weight': { shape: [4, 1] } } }),
      'model.safetensors',
      /tensor "embed\.weight" has shape \[2, 2\], expected \[4, 1\]/,
    );
    await assertCheckpointError(
      loadCheckpoint(dir, { expectTensors: { ...expected, 'head.bias': { shape: [3], dtype: 'float32' } } }),
      'model.safetensors',
      /tensor "head\.bias" has dtype float64, expected float32/,
    );
    // The exact expectation passes.
    await loadCheckpoint(dir, { expectTensors: expected });
  });

  it('ignores leftover temp files of an interrupted file write inside the checkpoint', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    await writeFile(join(dir, 'trainer.json.tmp-123-abcdef'), 'garbage');
    const loaded = await loadCheckpoint(dir);
    assert.deepEqual(Object.keys(loaded.extraJsonFiles).sort(), ['tokenizer.json', 'trainer.json']);
  });
});

describe('safetensors file helpers', () => {
  it('write then read a file, atomically replacing an old one', async () => {
    const dir = freshPath();
    await mkdir(dir);
    const path = join(dir, 'w.safetensors');
    await writeFile(path, 'old contents');
    await writeSafetensorsFile(path, { w: f32([3], [1, 2, 3]) }, { k: 'v' });
    const { tensors, metadata } = await readSafetensorsFile(path);
    assert.deepEqual(tensors, { w: f32([3], [1, 2, 3]) });
    assert.deepEqual(metadata, { k: 'v' });
    assert.deepEqual(await readdir(dir), ['w.safetensors']);
  });

  it('names the file in format errors', async () => {
    const dir = freshPath();
    await mkdir(dir);
    const path = join(dir, 'bad.safetensors');
    await writeFile(path, new Uint8Array([1, 2, 3]));
    await assert.rejects(readSafetensorsFile(path), (error: unknown) => {
      assert.ok(error instanceof SafetensorsError);
      assert.ok(error.message.startsWith(`${path}: `));
      return true;
    });
    await assert.rejects(readSafetensorsFile(join(dir, 'none.safetensors')), (error: unknown) => {
      assert.ok(error instanceof FileReadError && error.code === 'missing');
      return true;
    });
    await assert.rejects(readSafetensorsFile(dir), /is a directory, not a regular file/);
  });
});
