/**
 * A progress line for long loops (training steps, evaluation batches). Browser-safe: it writes
 * only through an injected `ProgressSink` (see `stderrSink` in `./node-sink.ts` for Node).
 *
 * Two modes, chosen by `sink.isTTY`:
 *
 *   terminal   one line redrawn in place (`\r`, text, clear-to-end `\x1b[K`), at most every
 *              100 ms:  train [██████░░░░░░] 120/1000 12% 3.4 it/s eta 4m19s loss=2.345
 *   plain log  whole lines, so CI logs stay short: the first update, then at most one line per
 *              `minIntervalMs`, then the final line from `finish`:
 *              train 120/1000 (12%) 3.4 it/s eta 4m19s loss=2.345
 *
 * Rate is items per second since the `Progress` was made, counting only the items done since (a
 * resumed loop passes `start`, the count it resumes at); ETA is the remaining items at that rate.
 * Time comes from `options.now` (milliseconds), so tests drive it with a fake clock.
 */

/**
 * Where progress text goes. `isTTY` picks the redrawn line over plain log lines; `columns` is the
 * terminal width (default 80), used to keep the redrawn line from wrapping.
 *
 * @example
 * const lines: string[] = [];
 * const sink: ProgressSink = { write: (text) => lines.push(text), isTTY: false };
 */
export interface ProgressSink {
  /** Writes text as is; the progress adds its own `\r` and `\n`. */
  write(text: string): void;
  /** True for an interactive terminal that understands `\r` and `\x1b[K`. */
  isTTY: boolean;
  /** Width of the terminal in characters. */
  columns?: number;
}

/**
 * Options of `Progress`.
 *
 * @example
 * const options: ProgressOptions = { total: 1000, label: 'train', sink: stderrSink(), minIntervalMs: 30_000 };
 */
export interface ProgressOptions {
  /** Number of items (steps, batches) the loop will do; ≥ 0. */
  total: number;
  /** Printed at the start of every line, e.g. 'train'. */
  label?: string;
  /** Items already done when the loop starts (a resumed run's step); they do not count in the rate. */
  start?: number;
  /** Where the text goes. */
  sink: ProgressSink;
  /** Plain-log mode: least time between two lines, in ms (default 10000). */
  minIntervalMs?: number;
  /** Clock in milliseconds (default `performance.now`); inject a fake one in tests. */
  now?: () => number;
}

/** Least time between two redraws of the terminal line. */
const REDRAW_INTERVAL_MS = 100;
const DEFAULT_LOG_INTERVAL_MS = 10_000;
const DEFAULT_COLUMNS = 80;
const BAR_MIN = 10;
const BAR_MAX = 30;
const CLEAR_TO_END = '\x1b[K';

/**
 * Reports the progress of a loop of known length, with rate, ETA and metric fields.
 *
 * @example
 * const progress = new Progress({ total: steps, label: 'train', sink: stderrSink() });
 * for (let step = 0; step < steps; step++) {
 *   const loss = trainStep();
 *   progress.update(step + 1, { loss });
 *   if (step % 1000 === 999) progress.log(`checkpoint saved at step ${step + 1}`);
 * }
 * progress.finish();
 */
export class Progress {
  private readonly total: number;
  private readonly label: string;
  private readonly sink: ProgressSink;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly start: number;
  private done: number;
  private fields: Record<string, string | number> = {};
  /** When the terminal line was last drawn, or the last plain line written. */
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  /** Terminal mode: the bar is on screen and the cursor sits on its line. */
  private barShown = false;
  private finished = false;

  constructor(options: ProgressOptions) {
    if (!Number.isFinite(options.total) || options.total < 0) {
      throw new RangeError(`Progress: total must be finite and ≥ 0, got ${options.total}`);
    }
    const minIntervalMs = options.minIntervalMs ?? DEFAULT_LOG_INTERVAL_MS;
    if (!Number.isFinite(minIntervalMs) || minIntervalMs < 0) {
      throw new RangeError(`Progress: minIntervalMs must be finite and ≥ 0, got ${minIntervalMs}`);
    }
    this.total = options.total;
    this.label = options.label ?? '';
    this.sink = options.sink;
    this.minIntervalMs = minIntervalMs;
    this.now = options.now ?? (() => performance.now());
    this.startedAt = this.now();
    this.start = options.start ?? 0;
    if (!Number.isFinite(this.start) || this.start < 0) {
      throw new RangeError(`Progress: start must be finite and ≥ 0, got ${options.start}`);
    }
    this.done = this.start;
  }

  /**
   * Records that `done` items are complete; `fields` are merged into those shown (a later value
   * for a key replaces the earlier one). Writes only when the throttle allows; ignored after
   * `finish`.
   *
   * @example
   * progress.update(120, { loss: 2.34567, lr: 3e-4 }); // ... loss=2.346 lr=3e-4
   */
  update(done: number, fields?: Record<string, string | number>): void {
    if (this.finished) return;
    if (Number.isFinite(done)) this.done = Math.max(0, done);
    if (fields) this.fields = { ...this.fields, ...fields };
    const time = this.now();
    const interval = this.sink.isTTY ? REDRAW_INTERVAL_MS : this.minIntervalMs;
    if (time - this.lastWriteAt < interval) return;
    this.lastWriteAt = time;
    if (this.sink.isTTY) this.drawBar(time);
    else this.sink.write(`${this.statusLine(time, false)}\n`);
  }

  /**
   * Prints a whole line (a message, a validation result). In a terminal it goes above the bar,
   * which is then redrawn below it, so neither is garbled.
   *
   * @example
   * progress.log('step 500: valid loss 2.81');
   */
  log(line: string): void {
    if (this.sink.isTTY && this.barShown) {
      this.sink.write(`\r${CLEAR_TO_END}${line}\n`);
      const time = this.now();
      this.lastWriteAt = time;
      this.drawBar(time);
    } else {
      this.sink.write(`${line}\n`);
    }
  }

  /**
   * Writes the final line, with the elapsed time in place of the ETA, and ends the terminal line.
   * `fields` are merged as in `update`. Calling it again does nothing.
   *
   * @example
   * progress.finish({ loss: 1.92 }); // train 1000/1000 (100%) 3.4 it/s elapsed 4m54s loss=1.92
   */
  finish(fields?: Record<string, string | number>): void {
    if (this.finished) return;
    this.finished = true;
    if (fields) this.fields = { ...this.fields, ...fields };
    const time = this.now();
    if (this.sink.isTTY) {
      this.sink.write(`\r${this.fitToTerminal(this.statusLine(time, true))}${CLEAR_TO_END}\n`);
      this.barShown = false;
    } else {
      this.sink.write(`${this.statusLine(time, true)}\n`);
    }
  }

  private drawBar(time: number): void {
    this.sink.write(`\r${this.fitToTerminal(this.statusLine(time, false))}${CLEAR_TO_END}`);
    this.barShown = true;
  }

  /**
   * The status text: label, bar (terminal only), count, percentage, rate, then the ETA (or the
   * elapsed time when final), then the fields.
   */
  private statusLine(time: number, final: boolean): string {
    const seconds = (time - this.startedAt) / 1000;
    const rate = seconds > 0 ? (this.done - this.start) / seconds : Number.NaN;
    const remaining = Math.max(0, this.total - this.done);
    const etaSeconds = remaining === 0 ? 0 : rate > 0 ? remaining / rate : Number.NaN;
    const percent = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    const count = `${formatFieldValue(this.done)}/${formatFieldValue(this.total)}`;
    const tty = this.sink.isTTY;

    const head = this.label ? [this.label] : [];
    const tail = [
      count,
      tty ? `${percent}%` : `(${percent}%)`,
      formatRate(rate),
      final ? `elapsed ${formatDuration(seconds)}` : `eta ${formatDuration(etaSeconds)}`,
      ...Object.entries(this.fields).map(([key, value]) => `${key}=${formatFieldValue(value)}`),
    ];
    if (!tty) return [...head, ...tail].join(' ');

    // The bar takes what the terminal has left, within [BAR_MIN, BAR_MAX] cells.
    const textLength = [...head, ...tail].join(' ').length + 1;
    const cells = Math.min(BAR_MAX, Math.max(BAR_MIN, this.columns() - 1 - textLength - 2));
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const filled = Math.round(fraction * cells);
    const bar = `[${'█'.repeat(filled)}${'░'.repeat(cells - filled)}]`;
    return [...head, bar, ...tail].join(' ');
  }

  private columns(): number {
    const columns = this.sink.columns;
    return columns !== undefined && Number.isFinite(columns) && columns > 0 ? columns : DEFAULT_COLUMNS;
  }

  /** Cuts the line one short of the terminal width: a wrapped line cannot be redrawn with `\r`. */
  private fitToTerminal(text: string): string {
    const width = this.columns() - 1;
    if (text.length <= width) return text;
    return Array.from(text).slice(0, width).join('');
  }
}

/**
 * Formats a duration in seconds the way the progress line shows it: `12s`, `4m12s`, `1h02m`;
 * `?` for an unknown (non-finite or negative) one.
 *
 * @example
 * formatDuration(252); // '4m12s'
 * formatDuration(3720); // '1h02m'
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${twoDigits(whole % 60)}s`;
  return `${Math.floor(whole / 3600)}h${twoDigits(Math.floor((whole % 3600) / 60))}m`;
}

/**
 * Bytes in binary units for messages: `8 GiB`, `1.5 MiB`, `640 KiB`, `12 bytes` (one decimal
 * below 100 of a unit, none above; exponent form past exbibytes).
 *
 * @example
 * formatBytes(8 * 2 ** 30); // '8 GiB'
 * formatBytes(1536); // '1.5 KiB'
 */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (value >= 1024) return `${bytes.toExponential(1)} bytes`;
  if (unit === 0) return `${bytes} bytes`;
  const digits = value >= 100 || Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/**
 * Formats a field value compactly: strings as they are, integers in full, other numbers with 4
 * significant digits (exponent form outside 0.001 … 1e6), NaN and Infinity spelled out so that
 * a diverging loss stays visible.
 *
 * @example
 * formatFieldValue(2.34567); // '2.346'
 * formatFieldValue(0.0003); // '3e-4'
 * formatFieldValue(1200); // '1200'
 */
export function formatFieldValue(value: string | number): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  if (Number.isSafeInteger(value)) return String(value === 0 ? 0 : value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-3 && magnitude < 1e6) return String(Number(value.toPrecision(4)));
  const [mantissa, exponent] = value.toExponential(3).split('e');
  return `${Number(mantissa)}e${Number(exponent)}`;
}

/** Items per second, or seconds per item when under one a second. */
function formatRate(rate: number): string {
  if (!(rate > 0) || !Number.isFinite(rate)) return '? it/s';
  if (rate >= 1) return `${rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)} it/s`;
  const secondsPerItem = 1 / rate;
  return `${secondsPerItem >= 100 ? secondsPerItem.toFixed(0) : secondsPerItem.toFixed(1)} s/it`;
}

function twoDigits(value: number): string {
  return String(value).padStart(2, '0');
}
