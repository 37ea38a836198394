/**
 * Random damage to a training checkpoint folder, and what loading it gives: the harness of the
 * fuzz test (test/io/fuzz.test.ts, a few seconds) and of the long run by hand
 * (bench/fuzz-checkpoints.ts, ≥ 10,000 mutations).
 *
 * A mutation damages one file of the folder: bytes set, bits flipped, truncated, extended, a
 * range cut out or repeated, the safetensors header edited as JSON (shapes, offsets, dtypes,
 * names, hashes), a JSON file edited at a random node, or the file deleted, emptied or replaced
 * by a directory. Loading must then end in one of two outcomes only:
 *   error      a CheckpointError (a clear message naming the file);
 *   identical  everything loaded equals the original: config, every tensor's bytes, optimizer,
 *              trainer state, tokenizer.
 * Anything else is a failure: `wrong` (loaded, but something differs: silently wrong) or `crash`
 * (any other exception). A hang is caught by the caller's time limit.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { Rng } from '../../src/engine/random.js';
import { dispose } from '../../src/engine/tensor.js';
import { flattenTree } from '../../src/engine/tree.js';
import { CheckpointError } from '../../src/io/checkpoint.js';
import { loadTrainingCheckpoint, saveTrainingCheckpoint } from '../../src/io/model-checkpoint.js';
import { initModel } from '../../src/models/model.js';
import { byteTokenizer } from '../../src/tokenizer/tokenizer.js';
import { initialTrainerState, resolveTrainOptions, trainLanguageModel } from '../../src/train/trainer.js';
import { tinyConfig } from '../models/util.js';

/**
 * Writes the checkpoint the fuzz damages: a tiny MAG model after 3 training steps, with optimizer
 * state, trainer.json, tokenizer.json and manifest, as `titans train` writes it.
 *
 * @example
 * await makeTrainingCheckpoint('/tmp/fuzz/checkpoint');
 */
export async function makeTrainingCheckpoint(dir: string): Promise<void> {
  const config = tinyConfig('mag', { vocabSize: 256 });
  const options = resolveTrainOptions({
    steps: 3,
    batchSize: 2,
    seqLen: 8,
    evalEvery: 3,
    checkpointEvery: 3,
  });
  const ids = byteTokenizer().encode('the memory learns at test time; the gate forgets. '.repeat(6));
  const final = await trainLanguageModel(
    config,
    { train: ids, validation: ids },
    options,
    initialTrainerState(initModel(config, new Rng(0)), options),
    {
      checkpoint: (s) =>
        saveTrainingCheckpoint(dir, {
          config,
          state: s,
          tokenizer: byteTokenizer(),
          extra: { options, data: 'fuzz' },
        }),
    },
  );
  dispose([final.params, final.optimizer]);
}

/** The files of a training checkpoint the CLI writes. */
export const CHECKPOINT_FILES = [
  'config.json',
  'model.safetensors',
  'optimizer.safetensors',
  'tokenizer.json',
  'trainer.json',
  'manifest.json',
] as const;

/** Positions are fractions of the file length, so one mutation applies to any file. */
export type Mutation =
  | { file: string; kind: 'set'; edits: [number, number][] }
  | { file: string; kind: 'flip'; at: number; bit: number }
  | { file: string; kind: 'truncate'; at: number }
  | { file: string; kind: 'append'; bytes: number[] }
  | { file: string; kind: 'cut'; at: number; length: number }
  | { file: string; kind: 'repeat'; at: number; length: number }
  | { file: string; kind: 'header'; edits: [number, number][] }
  | { file: string; kind: 'json'; at: number; value: unknown; remove: boolean }
  | { file: string; kind: 'delete' | 'empty' | 'directory' };

const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const byte = fc.integer({ min: 0, max: 255 });
const jsonish = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1,
    2,
    1e9,
    -1e9,
    1e308,
    0.5,
    null,
    true,
    false,
    '',
    'F32',
    'I32',
    'F16',
    'x',
    [],
    {},
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

/**
 * A random mutation of one of `files` (default: every file of the checkpoint).
 *
 * @example
 * fc.sample(mutationArbitrary(), { seed: 1, numRuns: 3 });
 */
export const mutationArbitrary = (files: readonly string[] = CHECKPOINT_FILES): fc.Arbitrary<Mutation> =>
  fc
    .tuple(
      fc.constantFrom(...files),
      fc.oneof(
        fc.record({
          kind: fc.constant('set' as const),
          edits: fc.array(fc.tuple(fraction, byte), { minLength: 1, maxLength: 4 }),
        }),
        fc.record({ kind: fc.constant('flip' as const), at: fraction, bit: fc.integer({ min: 0, max: 7 }) }),
        fc.record({ kind: fc.constant('truncate' as const), at: fraction }),
        fc.record({
          kind: fc.constant('append' as const),
          bytes: fc.array(byte, { minLength: 1, maxLength: 16 }),
        }),
        fc.record({
          kind: fc.constant('cut' as const),
          at: fraction,
          length: fc.integer({ min: 1, max: 64 }),
        }),
        fc.record({
          kind: fc.constant('repeat' as const),
          at: fraction,
          length: fc.integer({ min: 1, max: 64 }),
        }),
        fc.record({
          kind: fc.constant('header' as const),
          edits: fc.array(fc.tuple(fraction, byte), { minLength: 1, maxLength: 3 }),
        }),
        fc.record({ kind: fc.constant('json' as const), at: fraction, value: jsonish, remove: fc.boolean() }),
        fc.record({ kind: fc.constantFrom('delete' as const, 'empty' as const, 'directory' as const) }),
      ),
    )
    .map(([file, change]) => ({ file, ...change }) as Mutation);

/** Applies a mutation to the folder `dir` in place. */
export async function applyMutation(dir: string, m: Mutation): Promise<void> {
  const path = join(dir, m.file);
  if (m.kind === 'delete') return rm(path);
  if (m.kind === 'empty') return writeFile(path, new Uint8Array(0));
  if (m.kind === 'directory') {
    await rm(path);
    return mkdir(path);
  }
  const bytes = new Uint8Array(await readFile(path));
  const at = (f: number, n = bytes.length) => Math.min(n - 1, Math.floor(f * n));
  let out: Uint8Array = bytes;
  switch (m.kind) {
    case 'set':
      for (const [f, b] of m.edits) out[at(f)] = b;
      break;
    case 'flip':
      out[at(m.at)]! ^= 1 << m.bit;
      break;
    case 'truncate':
      out = bytes.subarray(0, at(m.at));
      break;
    case 'append':
      out = concat(bytes, Uint8Array.from(m.bytes));
      break;
    case 'cut': {
      const from = at(m.at);
      out = concat(bytes.subarray(0, from), bytes.subarray(from + m.length));
      break;
    }
    case 'repeat': {
      const from = at(m.at);
      out = concat(bytes.subarray(0, from + m.length), bytes.subarray(from));
      break;
    }
    case 'header': {
      // Bytes of the safetensors header (or, for a JSON file, of its first 256 bytes).
      const limit = m.file.endsWith('.safetensors')
        ? 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))
        : 256;
      for (const [f, b] of m.edits) out[at(f, Math.min(limit, bytes.length))] = b;
      break;
    }
    case 'json':
      out = editJson(m.file, bytes, m.at, m.value, m.remove);
      break;
  }
  await writeFile(path, out);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Replaces (or removes) one node of a JSON document: a JSON file, or a safetensors header,
 * which is then written back with its length prefix and padding.
 */
function editJson(file: string, bytes: Uint8Array, at: number, value: unknown, remove: boolean): Uint8Array {
  const tensorFile = file.endsWith('.safetensors');
  const headerLength = tensorFile
    ? Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))
    : 0;
  const text = new TextDecoder().decode(tensorFile ? bytes.subarray(8, 8 + headerLength) : bytes);
  const json = JSON.parse(text);
  const nodes: [Record<string, unknown> | unknown[], string | number][] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        nodes.push([node, i]);
        walk(child);
      });
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, child] of Object.entries(node)) {
        nodes.push([node as Record<string, unknown>, key]);
        walk(child);
      }
    }
  };
  walk(json);
  if (nodes.length > 0) {
    const [parent, key] = nodes[Math.min(nodes.length - 1, Math.floor(at * nodes.length))]!;
    if (remove && Array.isArray(parent)) parent.splice(key as number, 1);
    else if (remove) delete (parent as Record<string, unknown>)[key as string];
    else (parent as Record<string, unknown>)[key as string] = value;
  }
  const edited = new TextEncoder().encode(JSON.stringify(json));
  if (!tensorFile) return edited;
  const padded = Math.ceil((8 + edited.length) / 8) * 8 - 8;
  const out = new Uint8Array(8 + padded + (bytes.length - 8 - headerLength));
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(edited, 8);
  out.fill(0x20, 8 + edited.length, 8 + padded);
  out.set(bytes.subarray(8 + headerLength), 8 + padded);
  return out;
}

/**
 * The tensor files, the only ones a checkpoint without a manifest (written before manifests)
 * can protect: their headers are checked and their data carries per-tensor hashes. Its JSON
 * files have no checksum, so an edit there that stays valid cannot be told from the original.
 */
export const LEGACY_PROTECTED_FILES = ['model.safetensors', 'optimizer.safetensors'] as const;

/** What a loaded checkpoint holds, as comparable text (tensors by their SHA-256). */
export async function loadSnapshot(dir: string): Promise<string> {
  const loaded = await loadTrainingCheckpoint(dir);
  const { params, optimizer, ...rest } = loaded.state;
  const tensors = async (tree: unknown, prefix: string) => {
    const out: Record<string, string> = {};
    for (const [name, t] of Object.entries(flattenTree(tree, prefix))) {
      const values = await t.data();
      out[name] = `${t.dtype} [${t.shape.join(',')}] ${createHash('sha256')
        .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
        .digest('hex')}`;
    }
    return out;
  };
  const snapshot = JSON.stringify({
    config: loaded.config,
    params: await tensors(params, 'params'),
    optimizer: {
      step: optimizer.step,
      m: await tensors(optimizer.m, 'm'),
      v: await tensors(optimizer.v, 'v'),
    },
    trainer: rest,
    extra: loaded.extra,
    tokenizer: loaded.tokenizer?.toJSON() ?? null,
  });
  dispose([params, optimizer]);
  return snapshot;
}

/** The outcome classes; only `error` and `identical` are acceptable. */
export type Outcome = 'error' | 'identical' | 'wrong' | 'crash';

/**
 * Copies the checkpoint `original` to `work` (a fresh path), applies `mutation`, loads it and
 * classifies the outcome against `expected` (the original's snapshot). `detail` is the error
 * message or what differed.
 *
 * @example
 * const { outcome } = await tryMutation(original, join(tmp, 'case'), mutation, snapshot);
 */
export async function tryMutation(
  original: string,
  work: string,
  mutation: Mutation,
  expected: string,
): Promise<{ outcome: Outcome; detail: string }> {
  await rm(work, { recursive: true, force: true });
  await cp(original, work, { recursive: true });
  try {
    await applyMutation(work, mutation);
    const got = await loadSnapshot(work);
    return got === expected
      ? { outcome: 'identical', detail: '' }
      : { outcome: 'wrong', detail: firstDifference(expected, got) };
  } catch (error) {
    if (error instanceof CheckpointError) return { outcome: 'error', detail: error.message };
    return {
      outcome: 'crash',
      detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `expected …${a.slice(Math.max(0, i - 60), i + 60)}… got …${b.slice(Math.max(0, i - 60), i + 60)}…`;
}
