import assert from 'node:assert/strict';
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
import { type NamedArray, SafetensorsError } from '../../src/io/safetensors.js';

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
    assert.deepEqual((await readdir(dir)).sort(), [
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'tokenizer.json',
      'trainer.json',
    ]);
    const configText = await readFile(join(dir, 'config.json'), 'utf8');
    assert.equal(configText, `${JSON.stringify(data.config, null, 2)}\n`, 'config.json is pretty JSON');

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
    assert.deepEqual((await readdir(dir)).sort(), ['config.json', 'model.safetensors']);
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
    await rm(join(dir, 'config.json'));
    await assertCheckpointError(loadCheckpoint(dir), 'config.json', /file is missing/);
    await writeFile(join(dir, 'config.json'), '{}');
    await rm(join(dir, 'model.safetensors'));
    await assertCheckpointError(loadCheckpoint(dir), 'model.safetensors', /file is missing/);
  });

  it('reports a path that is a file, not a directory', async () => {
    const file = freshPath();
    await writeFile(file, 'x');
    await assertCheckpointError(loadCheckpoint(file), file, /not a directory/);
  });

  it('reports a corrupt config.json with the JSON parser message', async () => {
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
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
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
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
    const dir = freshPath();
    await saveCheckpoint(dir, sample());
    await writeFile(join(dir, 'optimizer.safetensors'), new Uint8Array(4));
    await assertCheckpointError(loadCheckpoint(dir), 'optimizer.safetensors', /too short/);
    await saveCheckpoint(dir, sample());
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
    await assert.rejects(readSafetensorsFile(join(dir, 'none.safetensors')), { code: 'ENOENT' });
  });
});
