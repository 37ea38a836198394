/**
 * The bounded training history (src/train/history.ts): invariants of `appendRecord` over long
 * synthetic runs — bounded length, counts that sum to the steps applied, uniform widths, means
 * preserved by merging, determinism across a JSON round trip (resume), full resolution until the
 * first merge — and the legacy path (`boundHistory`) that trainer.json files written one record
 * per step take on loading.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  appendRecord,
  boundHistory,
  type HistoryRecord,
  historySteps,
  MAX_HISTORY_RECORDS,
  mergePairs,
  mergeRecords,
  recentLoss,
  type StepRecord,
  stepHistoryRecord,
} from '../../src/train/history.js';

/** A deterministic run's step records; `skip` steps were non-finite (no record). */
function steps(n: number, skip: (step: number) => boolean = () => false): StepRecord[] {
  const out: StepRecord[] = [];
  for (let step = 1; step <= n; step++) {
    if (skip(step)) continue;
    out.push({
      step,
      loss: 6 / Math.sqrt(step) + 0.01 * Math.sin(step),
      lr: 1e-3 * Math.cos(step / n),
      gradNorm: 1 + ((step * 7919) % 13) / 10,
      tokensPerSecond: 1000 + (step % 17),
    });
  }
  return out;
}

const fold = (records: StepRecord[], limit?: number, from: HistoryRecord[] = []) =>
  records.reduce<HistoryRecord[]>((h, r) => appendRecord(h, r, limit), from);

const close = (a: number, e: number, what: string) =>
  assert.ok(Math.abs(a - e) <= 1e-12 * Math.max(1, Math.abs(e)), `${what}: ${a} ≠ ${e}`);

describe('appendRecord: the bounded training history', () => {
  it('never holds more than the limit, and its counts sum to the steps applied', () => {
    for (const limit of [2, 4, 6, 16]) {
      let h: HistoryRecord[] = [];
      for (const [i, r] of steps(700).entries()) {
        h = appendRecord(h, r, limit);
        assert.ok(h.length <= limit, `limit ${limit}: ${h.length} records after ${i + 1} steps`);
        assert.equal(historySteps(h), i + 1);
        assert.equal(h[h.length - 1]!.step, r.step, 'the newest record ends at the newest step');
        assert.equal(h[h.length - 1]!.lr, r.lr, "the newest record carries the newest step's lr");
      }
    }
    const long = fold(steps(20_000));
    assert.ok(long.length <= MAX_HISTORY_RECORDS);
    assert.equal(historySteps(long), 20_000);
  });

  it('keeps records contiguous, ordered and of one width W (a power of two) but the newest', () => {
    const skipped = (s: number) => s % 97 === 0; // non-finite steps: in no record
    const run = steps(5000, skipped);
    const h = fold(run, 64);
    const width = h[0]!.steps;
    assert.equal(Math.log2(width) % 1, 0, `width ${width}`);
    assert.ok(width * 64 >= run.length && (width / 2) * 64 < run.length, 'W is the least that fits');
    h.forEach((r, i) => {
      if (i < h.length - 1) assert.equal(r.steps, width, `record ${i}`);
      else assert.ok(r.steps >= 1 && r.steps <= width);
      // The steps it summarises are exactly the applied ones in firstStep..step.
      const inside = run.filter((s) => s.step >= r.firstStep && s.step <= r.step);
      assert.equal(inside.length, r.steps, `record ${i} counts ${r.steps}, holds ${inside.length}`);
      assert.equal(inside[0]!.step, r.firstStep);
      if (i > 0) assert.ok(r.firstStep > h[i - 1]!.step);
    });
  });

  it('keeps the mean of each run of steps: loss, gradient norm and throughput, weighted by counts', () => {
    const run = steps(3000);
    const h = fold(run, 32);
    for (const r of h) {
      const inside = run.filter((s) => s.step >= r.firstStep && s.step <= r.step);
      const mean = (key: 'loss' | 'gradNorm' | 'tokensPerSecond') =>
        inside.reduce((a, s) => a + s[key], 0) / inside.length;
      close(r.loss, mean('loss'), `loss of ${r.firstStep}..${r.step}`);
      close(r.gradNorm, mean('gradNorm'), `gradNorm of ${r.firstStep}..${r.step}`);
      close(r.tokensPerSecond, mean('tokensPerSecond'), `tokensPerSecond of ${r.firstStep}..${r.step}`);
      assert.equal(r.lr, inside[inside.length - 1]!.lr);
    }
    // The weighted mean over the whole log is the mean over every step.
    const total = h.reduce((a, r) => a + r.loss * r.steps, 0) / historySteps(h);
    close(total, run.reduce((a, s) => a + s.loss, 0) / run.length, 'mean loss of the run');
    // And one merge keeps the pair's weighted mean.
    const [a, b] = [h[0]!, { ...h[1]!, steps: 3 }];
    close(mergeRecords(a, b).loss, (a.loss * a.steps + b.loss * 3) / (a.steps + 3), 'merged loss');
  });

  it('is deterministic: the same steps give the same log, resumed from JSON or not', () => {
    const run = steps(9000, (s) => s % 31 === 0);
    const straight = fold(run);
    assert.deepEqual(fold(run), straight);
    for (const stop of [1, 2048, 2049, 4097, 6000]) {
      const saved: HistoryRecord[] = JSON.parse(JSON.stringify(fold(run.slice(0, stop))));
      assert.deepEqual(fold(run.slice(stop), undefined, saved), straight, `resumed after ${stop} steps`);
    }
  });

  it('keeps every step as its own record until the log is full, and is pure', () => {
    const run = steps(MAX_HISTORY_RECORDS);
    const h = fold(run);
    assert.deepEqual(h, run.map(stepHistoryRecord));
    const frozen = Object.freeze(h.map((r) => Object.freeze(r)));
    const next = appendRecord(frozen, { ...run[0]!, step: MAX_HISTORY_RECORDS + 1 });
    assert.equal(frozen.length, MAX_HISTORY_RECORDS, 'the input log is unchanged');
    assert.equal(next.length, MAX_HISTORY_RECORDS / 2 + 1, 'full: pairs merged, then the new step');
    assert.deepEqual(next[next.length - 1], stepHistoryRecord({ ...run[0]!, step: MAX_HISTORY_RECORDS + 1 }));
    assert.deepEqual(next[0], mergeRecords(h[0]!, h[1]!));
  });

  it('refuses an odd or tiny limit', () => {
    assert.throws(() => appendRecord([], steps(1)[0]!, 3), /limit must be an even integer ≥ 2, got 3/);
    assert.throws(() => appendRecord([], steps(1)[0]!, 0), /limit must be an even integer/);
  });
});

describe('boundHistory and recentLoss', () => {
  it('brings a one-record-per-step log within the limit, as appendRecord would have kept it', () => {
    const run = steps(10_000, (s) => s % 53 === 0);
    const legacy = run.map(stepHistoryRecord);
    const bounded = boundHistory(legacy);
    const folded = fold(run);
    assert.equal(bounded.length, folded.length);
    bounded.forEach((r, i) => {
      const f = folded[i]!;
      assert.deepEqual([r.firstStep, r.step, r.steps, r.lr], [f.firstStep, f.step, f.steps, f.lr]);
      close(r.loss, f.loss, `record ${i}`);
    });
    assert.deepEqual(boundHistory(legacy.slice(0, 100)), legacy.slice(0, 100), 'a short log is untouched');
    assert.equal(mergePairs(legacy.slice(0, 5)).length, 3);
  });

  it('averages the newest records that cover the steps asked for', () => {
    assert.equal(recentLoss([]), null);
    const run = steps(100);
    const h = fold(run);
    close(recentLoss(h, 20)!, run.slice(-20).reduce((a, s) => a + s.loss, 0) / 20, 'last 20 steps');
    close(recentLoss(h, 500)!, run.reduce((a, s) => a + s.loss, 0) / 100, 'fewer steps than asked');
    // Coarser records: whole records, weighted by their counts.
    const coarse = fold(run, 8); // W = 16: 6 full records and one of 4
    assert.deepEqual(
      coarse.map((r) => r.steps),
      [16, 16, 16, 16, 16, 16, 4],
    );
    close(recentLoss(coarse, 20)!, run.slice(-20).reduce((a, s) => a + s.loss, 0) / 20, 'records of 16 + 4');
  });
});
