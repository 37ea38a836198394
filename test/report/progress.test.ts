/**
 * The progress line, driven by a fake sink and a fake clock: the terminal line is redrawn in
 * place and throttled, plain logs get only the first, throttled and final lines, and rate, ETA and
 * durations are what the clock says.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatDuration,
  formatFieldValue,
  Progress,
  type ProgressOptions,
  type ProgressSink,
} from '../../src/report/progress.js';

/** A sink that records every write, and a clock the test moves by hand (milliseconds). */
function harness(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  const sink: ProgressSink = { write: (text) => writes.push(text), isTTY, columns };
  const clock = { ms: 0 };
  const make = (options: Partial<ProgressOptions> = {}) =>
    new Progress({ total: 1000, label: 'train', sink, now: () => clock.ms, ...options });
  return { writes, clock, make };
}

/** What a terminal would show after these writes: `\r` returns, `\x1b[K` clears to the end. */
function renderTerminal(writes: string[]): string[] {
  const lines = [''];
  let column = 0;
  const text = writes.join('');
  for (let i = 0; i < text.length; i++) {
    const row = lines.length - 1;
    if (text.startsWith('\x1b[K', i)) {
      lines[row] = lines[row].slice(0, column);
      i += 2;
    } else if (text[i] === '\r') {
      column = 0;
    } else if (text[i] === '\n') {
      lines.push('');
      column = 0;
    } else {
      const line = lines[row];
      lines[row] = line.slice(0, column) + text[i] + line.slice(column + 1);
      column++;
    }
  }
  return lines;
}

describe('Progress on a terminal', () => {
  it('redraws one line in place with \\r and clear-to-end, at most every 100 ms', () => {
    const { writes, clock, make } = harness(true);
    const progress = make();
    for (let step = 1; step <= 50; step++) {
      clock.ms = step * 10; // an update every 10 ms for 500 ms
      progress.update(step, { loss: 3 - step / 100 });
    }
    // Drawn at 10 ms (the first update), then at 110, 210, 310, 410 ms.
    assert.equal(writes.length, 5);
    for (const write of writes) {
      assert.ok(write.startsWith('\r'), JSON.stringify(write));
      assert.ok(write.endsWith('\x1b[K'), JSON.stringify(write));
      assert.ok(!write.includes('\n'), 'the bar line is never ended by an update');
    }
    assert.match(writes[4], /^\rtrain \[[█░]+\] 41\/1000 4% /);
    assert.ok(writes[4].endsWith(' loss=2.59\x1b[K'), JSON.stringify(writes[4]));
    const screen = renderTerminal(writes);
    assert.equal(screen.length, 1, 'still one line on screen');
  });

  it('shows bar, count, percentage, rate, ETA and fields', () => {
    const { writes, clock, make } = harness(true, 100);
    const progress = make();
    clock.ms = 40_000;
    progress.update(100, { loss: 2.34567, lr: 0.0003, phase: 'warmup' });
    const [line] = renderTerminal(writes);
    // 100 items in 40 s is 2.5 it/s; 900 left at that rate is 360 s.
    assert.match(
      line,
      /^train \[███░+\] 100\/1000 10% 2\.5 it\/s eta 6m00s loss=2\.346 lr=3e-4 phase=warmup$/,
    );
    assert.ok(line.length <= 99);
  });

  it('prints log lines above the bar without garbling either', () => {
    const { writes, clock, make } = harness(true);
    const progress = make();
    clock.ms = 1000;
    progress.update(10, { loss: 2.5 });
    progress.log('checkpoint saved');
    clock.ms = 1050; // inside the redraw interval: the log itself redrew the bar
    progress.update(11);
    progress.log('validation loss 2.61');
    const screen = renderTerminal(writes);
    assert.equal(screen.length, 3);
    assert.equal(screen[0], 'checkpoint saved');
    assert.equal(screen[1], 'validation loss 2.61');
    assert.match(screen[2], /^train \[.+\] 11\/1000 1% .* loss=2\.5$/);
  });

  it('finish writes the final line with the elapsed time and ends it', () => {
    const { writes, clock, make } = harness(true);
    const progress = make();
    clock.ms = 100_000;
    progress.update(500);
    clock.ms = 200_000;
    progress.update(1000, { loss: 1.9 });
    progress.finish({ loss: 1.875 });
    assert.ok(writes.at(-1)!.endsWith('\x1b[K\n'));
    const screen = renderTerminal(writes);
    assert.deepEqual(screen.slice(1), ['']);
    assert.match(screen[0], /^train \[█+\] 1000\/1000 100% 5\.0 it\/s elapsed 3m20s loss=1\.875$/);
    // Later calls change nothing, and a log after finish is a plain line.
    const count = writes.length;
    progress.finish();
    progress.update(1000);
    assert.equal(writes.length, count);
    progress.log('done');
    assert.equal(writes.at(-1), 'done\n');
  });

  it('keeps the line shorter than the terminal so it never wraps', () => {
    const { writes, clock, make } = harness(true, 40);
    const progress = make({ label: 'a-rather-long-label' });
    clock.ms = 5000;
    progress.update(250, { loss: 2.5, accuracy: 0.75, note: 'x'.repeat(80) });
    progress.finish();
    for (const line of renderTerminal(writes)) assert.ok(line.length <= 39, `${line.length}: ${line}`);
  });
});

describe('Progress in a plain log', () => {
  it('writes the first line, then at most one per minIntervalMs, then the final line', () => {
    const { writes, clock, make } = harness(false);
    const progress = make({ total: 35 });
    for (let step = 1; step <= 35; step++) {
      clock.ms = step * 1000; // one item per second
      progress.update(step, { loss: 4 - step / 10 });
    }
    progress.finish();
    // First at 1 s, then 11 s, 21 s, 31 s (10 s apart), then the final line.
    assert.equal(writes.length, 5);
    for (const write of writes) {
      assert.ok(write.endsWith('\n'));
      assert.equal(write.split('\n').length, 2, 'one whole line per write');
      assert.ok(!write.includes('\r') && !write.includes('\x1b'), 'no terminal control characters');
    }
    assert.deepEqual(
      writes.map((line) => line.split(' ')[1]),
      ['1/35', '11/35', '21/35', '31/35', '35/35'],
    );
    assert.equal(writes[0], 'train 1/35 (2%) 1.0 it/s eta 34s loss=3.9\n');
    assert.equal(writes[4], 'train 35/35 (100%) 1.0 it/s elapsed 35s loss=0.5\n');
  });

  it('honours a custom interval and works without a label', () => {
    const { writes, clock, make } = harness(false);
    const progress = make({ total: 10, label: undefined, minIntervalMs: 0 });
    for (let step = 1; step <= 3; step++) {
      clock.ms = step * 2000;
      progress.update(step);
    }
    // One item every 2 s: slower than 1 it/s, so shown as seconds per item.
    assert.deepEqual(writes, [
      '1/10 (10%) 2.0 s/it eta 18s\n',
      '2/10 (20%) 2.0 s/it eta 16s\n',
      '3/10 (30%) 2.0 s/it eta 14s\n',
    ]);
    progress.log('hello');
    assert.equal(writes.at(-1), 'hello\n');
  });

  it('reports an unknown rate and ETA before any time has passed', () => {
    const { writes, make } = harness(false);
    make().update(0);
    assert.equal(writes[0], 'train 0/1000 (0%) ? it/s eta ?\n');
  });

  it('computes rate and ETA from the clock since construction', () => {
    const { writes, clock, make } = harness(false);
    clock.ms = 5_000_000; // the clock's origin does not matter
    const progress = make({ total: 20_000 });
    clock.ms += 3_600_000;
    progress.update(4000);
    // 4000 items in an hour: 1.1 it/s; 16000 left takes 4 h.
    assert.equal(writes[0], 'train 4000/20000 (20%) 1.1 it/s eta 4h00m\n');
    clock.ms += 1000;
    progress.finish();
    assert.equal(writes[1], 'train 4000/20000 (20%) 1.1 it/s elapsed 1h00m\n');
  });

  it('rejects a negative total or interval', () => {
    const sink: ProgressSink = { write: () => {}, isTTY: false };
    assert.throws(() => new Progress({ total: -1, sink }), RangeError);
    assert.throws(() => new Progress({ total: Number.NaN, sink }), RangeError);
    assert.throws(() => new Progress({ total: 10, sink, minIntervalMs: -5 }), RangeError);
  });
});

describe('formatting', () => {
  it('formats durations as 12s, 4m12s, 1h02m', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(12), '12s');
    assert.equal(formatDuration(12.4), '12s');
    assert.equal(formatDuration(59.6), '1m00s');
    assert.equal(formatDuration(252), '4m12s');
    assert.equal(formatDuration(3599), '59m59s');
    assert.equal(formatDuration(3720), '1h02m');
    assert.equal(formatDuration(100 * 3600 + 5 * 60), '100h05m');
    assert.equal(formatDuration(Number.NaN), '?');
    assert.equal(formatDuration(Number.POSITIVE_INFINITY), '?');
    assert.equal(formatDuration(-1), '?');
  });

  it('formats field values compactly with 4 significant digits', () => {
    assert.equal(formatFieldValue(2.34567), '2.346');
    assert.equal(formatFieldValue(2.3), '2.3');
    assert.equal(formatFieldValue(-0.5), '-0.5');
    assert.equal(formatFieldValue(0.001234567), '0.001235');
    assert.equal(formatFieldValue(0.0003), '3e-4');
    assert.equal(formatFieldValue(1.5e-7), '1.5e-7');
    assert.equal(formatFieldValue(1200), '1200');
    assert.equal(formatFieldValue(12_345.678), '12350');
    assert.equal(formatFieldValue(1_234_567.5), '1.235e6');
    assert.equal(formatFieldValue(-0), '0');
    assert.equal(formatFieldValue(Number.NaN), 'NaN');
    assert.equal(formatFieldValue(Number.NEGATIVE_INFINITY), '-Infinity');
    assert.equal(formatFieldValue('adam'), 'adam');
  });
});
