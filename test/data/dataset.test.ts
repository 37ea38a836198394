/**
 * Token datasets: the validation split is a disjoint tail, random batches are windows of the
 * stream with targets one token ahead and reproducible from the seed, and sequential batches
 * cover every predictable token exactly once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { sampleBatch, sequentialBatches, splitTokens, TokenDataset } from '../../src/data/index.js';
import { Rng } from '../../src/engine/random.js';
import { byteTokenizer } from '../../src/tokenizer/index.js';

/** 0, 1, …, n−1: each token's value is its position, so a window shows where it came from. */
const positions = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

describe('splitTokens', () => {
  it('keeps the tail for validation, with no overlap and nothing lost', () => {
    const { train, validation } = splitTokens(positions(1000));
    assert.equal(validation.length, 50); // the default fraction, 0.05
    assert.deepEqual(Array.from(train), Array.from(positions(950)));
    assert.equal(validation[0], 950);
    assert.equal(validation.at(-1), 999);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.double({ min: 0, max: 0.99, noNaN: true }), (n, f) => {
        const split = splitTokens(positions(n), { validationFraction: f });
        assert.equal(split.train.length + split.validation.length, n);
        assert.equal(split.validation.length, Math.round(n * f));
        if (split.validation.length > 0) assert.equal(split.validation[0], split.train.length);
      }),
    );
  });

  it('allows no validation, and rejects fractions outside [0, 1)', () => {
    assert.equal(splitTokens(positions(10), { validationFraction: 0 }).validation.length, 0);
    for (const validationFraction of [-0.1, 1, 2, Number.NaN])
      assert.throws(
        () => splitTokens(positions(10), { validationFraction }),
        /validationFraction must be in \[0, 1\)/,
      );
  });
});

describe('sampleBatch', () => {
  it('returns (B, T) windows of the stream with targets one token ahead', () => {
    const ids = positions(100);
    const { inputs, targets } = sampleBatch(ids, 6, 10, new Rng(1));
    assert.equal(inputs.length, 60);
    assert.equal(targets.length, 60);
    for (let row = 0; row < 6; row++) {
      const start = inputs[row * 10]!;
      assert.ok(start >= 0 && start + 10 <= 99, `start ${start}`);
      for (let t = 0; t < 10; t++) {
        assert.equal(inputs[row * 10 + t], start + t);
        assert.equal(targets[row * 10 + t], start + t + 1);
      }
    }
  });

  it('is reproducible from the seed and differs between seeds', () => {
    const ids = positions(10_000);
    assert.deepEqual(sampleBatch(ids, 4, 32, new Rng(7)), sampleBatch(ids, 4, 32, new Rng(7)));
    assert.notDeepEqual(
      sampleBatch(ids, 4, 32, new Rng(7)).inputs,
      sampleBatch(ids, 4, 32, new Rng(8)).inputs,
    );
    const rng = new Rng(7);
    assert.notDeepEqual(sampleBatch(ids, 4, 32, rng).inputs, sampleBatch(ids, 4, 32, rng).inputs);
  });

  it('reaches every start offset, the first and the last included', () => {
    const ids = positions(12); // seqLen 8 leaves starts 0…3
    const starts = new Set<number>();
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) starts.add(sampleBatch(ids, 1, 8, rng).inputs[0]!);
    assert.deepEqual([...starts].sort(), [0, 1, 2, 3]);
    assert.deepEqual(Array.from(sampleBatch(positions(9), 1, 8, rng).targets), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('rejects data shorter than seqLen + 1 and bad sizes', () => {
    assert.throws(
      () => sampleBatch(positions(8), 2, 8, new Rng(0)),
      /8 tokens is too few for seqLen 8 \(need at least seqLen \+ 1 = 9\)/,
    );
    assert.throws(() => sampleBatch(positions(100), 0, 8, new Rng(0)), /batch must be a positive integer/);
    assert.throws(() => sampleBatch(positions(100), 2, 1.5, new Rng(0)), /seqLen must be a positive integer/);
  });
});

describe('sequentialBatches', () => {
  it('covers every predictable token exactly once, in order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 120 }),
        (batch, seqLen, extra) => {
          const n = seqLen + 1 + extra;
          const windows = Math.floor((n - 1) / seqLen);
          const inputs: number[] = [];
          const targets: number[] = [];
          for (const b of sequentialBatches(positions(n), batch, seqLen)) {
            assert.ok(b.rows >= 1 && b.rows <= batch);
            assert.equal(b.inputs.length, b.rows * seqLen);
            assert.equal(b.targets.length, b.rows * seqLen);
            inputs.push(...b.inputs);
            targets.push(...b.targets);
          }
          assert.deepEqual(inputs, Array.from(positions(windows * seqLen)));
          assert.deepEqual(
            targets,
            inputs.map((i) => i + 1),
          );
          assert.ok(n - 1 - windows * seqLen < seqLen); // what is left over fills no window
        },
      ),
    );
  });

  it('gives full batches then a partial one', () => {
    const rows = [...sequentialBatches(positions(41), 3, 4)].map((b) => b.rows);
    assert.deepEqual(rows, [3, 3, 3, 1]); // 10 windows of 4
  });

  it('checks its arguments when called, not when first iterated', () => {
    assert.throws(() => sequentialBatches(positions(5), 2, 5), /5 tokens is too few for seqLen 5/);
    assert.throws(() => sequentialBatches(positions(50), -1, 5), /batch must be a positive integer/);
  });
});

describe('TokenDataset', () => {
  it('tokenises, splits, and samples from the right part', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20); // 900 bytes
    const data = TokenDataset.fromText(text, byteTokenizer(), { validationFraction: 0.1 });
    assert.equal(data.train.length, 810);
    assert.equal(data.validation.length, 90);
    const all = byteTokenizer().encode(text);
    assert.deepEqual(data.validation, all.subarray(810));
    const { inputs } = data.sampleTrainBatch(2, 16, new Rng(0));
    assert.equal(inputs.length, 32);
    const windows = [...data.validationBatches(4, 8)];
    assert.equal(
      windows.reduce((sum, b) => sum + b.rows, 0),
      Math.floor(89 / 8),
    );
    assert.deepEqual(windows[0]!.inputs, all.slice(810, 810 + 32));
  });
});
