/**
 * Line charts as standalone SVG text: loss curves (x = step, y = loss) and accuracy against
 * context length (log x). Browser-safe and dependency-free; the output is a complete SVG document
 * that can be written to a `.svg` file or inlined into an HTML report.
 *
 * Layout, outside in: title on top; y tick labels and the rotated y label on the left; x tick
 * labels and the x label below; the legend to the right of the plot area. Lines are clipped to
 * the plot area, so fixed `yMin`/`yMax` bounds cut them instead of spilling over the axes.
 *
 * The same input always gives the same text (no random ids, no clock), so charts can be diffed.
 */

/**
 * One line of a chart: `points` are drawn in the order given, as `[x, y]` pairs.
 * A point with a non-finite coordinate is skipped and breaks the line there; so is one beyond
 * ±1e150, and one ≤ 0 (or below 1e-150) on a log axis.
 *
 * @example
 * const train: Series = { name: 'train loss', points: [[0, 4.2], [100, 3.1], [200, 2.7]] };
 * const valid: Series = { name: 'valid loss', points: [[0, 4.3], [200, 2.9]], dashed: true };
 */
export interface Series {
  /** Shown in the legend; any text (it is XML-escaped). */
  name: string;
  /** `[x, y]` pairs, drawn in this order. */
  points: ReadonlyArray<readonly [number, number]>;
  /** Draw the line dashed (e.g. a validation curve beside its training curve). */
  dashed?: boolean;
}

/**
 * Options of `lineChartSvg`; every field is optional.
 *
 * @example
 * const options: LineChartOptions = {
 *   title: 'Recall vs context length', xLabel: 'tokens', yLabel: 'accuracy',
 *   logX: true, yMin: 0, yMax: 1, horizontalLines: [{ y: 0.1, label: 'chance' }],
 * };
 */
export interface LineChartOptions {
  /** Drawn above the plot and stored as the SVG `<title>`. */
  title?: string;
  /** Label under the x axis. */
  xLabel?: string;
  /** Label left of the y axis, rotated. */
  yLabel?: string;
  /** Width of the whole image in pixels (default 640). */
  width?: number;
  /** Height of the whole image in pixels (default 400). */
  height?: number;
  /** Logarithmic x axis; points with x ≤ 0 are skipped. */
  logX?: boolean;
  /** Logarithmic y axis; points with y ≤ 0 are skipped. */
  logY?: boolean;
  /** Fixed bottom of the y axis (default: fitted to the data, rounded out to a tick). */
  yMin?: number;
  /** Fixed top of the y axis (default: fitted to the data, rounded out to a tick). */
  yMax?: number;
  /** Dashed grey reference lines across the plot, e.g. `{ y: 0.5, label: 'chance' }`. */
  horizontalLines?: { y: number; label: string }[];
}

/** Okabe–Ito colours, ordered for contrast on white; their yellow is left out (unreadable). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
/** Once the palette is used up, later series repeat its colours with these dash patterns. */
const EXTRA_DASHES = ['', '1 3', '8 3 2 3'];
/** The dash pattern of a series marked `dashed`. */
const DASHED = '6 4';

const FONT_SIZE = 12;
/** Rough advance of one 12px sans-serif glyph; used only to reserve room for text. */
const CHAR_WIDTH = 7;
/** Series with at most this many drawable points also get a dot on each point. */
const MARKER_LIMIT = 40;
const MARKER_RADIUS = 3;
/** How far lines and markers may reach past the plot frame before they are clipped. */
const CLIP_MARGIN = MARKER_RADIUS + 1;
/**
 * Coordinates beyond this size are skipped like non-finite ones (a diverged loss of 1e200 is as
 * unplottable as NaN), which keeps every range and tick computation clear of overflow.
 */
const MAX_COORDINATE = 1e150;
/** Likewise on a log axis, values below this are skipped like values ≤ 0. */
const MIN_LOG_COORDINATE = 1e-150;
/** A linear range narrower than this (absolute), or than 1e-9 of its values, is one value. */
const MIN_LINEAR_SPAN = 1e-100;
/** Target spacing of ticks in pixels along x and y. */
const X_TICK_SPACING = 80;
const Y_TICK_SPACING = 50;

/** An axis after fitting: its range, whether it is logarithmic, and its ticks. */
interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
  labels: string[];
}

/**
 * Writes a line chart as a standalone SVG document (`xmlns` set, no external resources).
 *
 * Ticks are "nice": multiples of 1, 2 or 5 × 10^k on linear axes, powers of ten on log axes
 * (with 2× and 5× in between when the data spans under two decades). Empty series, a single
 * point, and non-finite points are all drawn without error.
 *
 * @example
 * const svg = lineChartSvg(
 *   [{ name: 'train', points: [[0, 4.2], [100, 3.1], [200, 2.7]] }],
 *   { title: 'Loss', xLabel: 'step', yLabel: 'loss' },
 * );
 * // await writeFile('loss.svg', svg);
 */
export function lineChartSvg(series: Series[], options: LineChartOptions = {}): string {
  const width = checkSize(options.width ?? 640, 'width');
  const height = checkSize(options.height ?? 400, 'height');
  const logX = options.logX === true;
  const logY = options.logY === true;
  checkBounds(options.yMin, options.yMax, logY);

  const validX = (x: number) => Math.abs(x) <= MAX_COORDINATE && (!logX || x >= MIN_LOG_COORDINATE);
  const validY = (y: number) => Math.abs(y) <= MAX_COORDINATE && (!logY || y >= MIN_LOG_COORDINATE);
  const xRange = new Extent();
  const yRange = new Extent();
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (validX(x) && validY(y)) {
        xRange.add(x);
        yRange.add(y);
      }
    }
  }
  const hasData = !xRange.empty;
  const horizontalLines = (options.horizontalLines ?? []).filter((line) => validY(line.y));
  for (const line of horizontalLines) yRange.add(line.y);

  // Vertical layout first: the y ticks depend only on the plot height, and the left margin
  // depends on the width of their labels, which the x ticks then depend on.
  const top = options.title ? 40 : 16;
  const bottom = 36 + (options.xLabel ? 20 : 0);
  const plotHeight = Math.max(20, height - top - bottom);
  const yTarget = Math.max(2, Math.floor(plotHeight / Y_TICK_SPACING));
  const yAxis = logY
    ? logAxis(yRange.value(), options.yMin, options.yMax, yTarget)
    : linearAxis(yRange.value(), options.yMin, options.yMax, yTarget);

  const longestYLabel = Math.max(1, ...yAxis.labels.map((label) => label.length));
  const left = 18 + (options.yLabel ? 20 : 0) + longestYLabel * CHAR_WIDTH;
  const longestName = Math.max(0, ...series.map((s) => s.name.length));
  const legendWidth = series.length > 0 ? Math.min(240, 32 + longestName * CHAR_WIDTH) : 0;
  const right = 20 + legendWidth;
  const plotWidth = Math.max(20, width - left - right);
  const xTarget = Math.max(2, Math.floor(plotWidth / X_TICK_SPACING));
  const xAxis = logX
    ? logAxis(xRange.value(), undefined, undefined, xTarget)
    : linearAxis(xRange.value(), undefined, undefined, xTarget);

  const plotRight = left + plotWidth;
  const plotBottom = top + plotHeight;
  const toX = (x: number) => left + unit(xAxis, x) * plotWidth;
  const toY = (y: number) => plotBottom - unit(yAxis, y) * plotHeight;
  const clipId = `plot-area-${hashText(JSON.stringify([series, options]))}`;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${px(width)}" height="${px(height)}" ` +
      `viewBox="0 0 ${px(width)} ${px(height)}" font-family="sans-serif" font-size="${FONT_SIZE}">`,
  );
  if (options.title) out.push(`<title>${escapeXml(options.title)}</title>`);
  out.push(`<rect width="${px(width)}" height="${px(height)}" fill="#ffffff"/>`);
  out.push(
    // The clip reaches a marker's radius past the frame, so points on a fixed bound stay whole.
    `<defs><clipPath id="${clipId}"><rect x="${px(left - CLIP_MARGIN)}" y="${px(top - CLIP_MARGIN)}" ` +
      `width="${px(plotWidth + 2 * CLIP_MARGIN)}" height="${px(plotHeight + 2 * CLIP_MARGIN)}"/></clipPath></defs>`,
  );

  // Grid lines and tick labels.
  out.push('<g class="grid" stroke="#e6e6e6" stroke-width="1">');
  for (const tick of xAxis.ticks) {
    const x = px(toX(tick));
    out.push(`<line x1="${x}" y1="${px(top)}" x2="${x}" y2="${px(plotBottom)}"/>`);
  }
  for (const tick of yAxis.ticks) {
    const y = px(toY(tick));
    out.push(`<line x1="${px(left)}" y1="${y}" x2="${px(plotRight)}" y2="${y}"/>`);
  }
  out.push('</g>');
  out.push(
    `<rect class="frame" x="${px(left)}" y="${px(top)}" width="${px(plotWidth)}" ` +
      `height="${px(plotHeight)}" fill="none" stroke="#333333" stroke-width="1"/>`,
  );
  out.push('<g class="x-ticks" fill="#222222" text-anchor="middle">');
  xAxis.ticks.forEach((tick, i) => {
    out.push(`<text x="${px(toX(tick))}" y="${px(plotBottom + 16)}">${escapeXml(xAxis.labels[i])}</text>`);
  });
  out.push('</g>');
  out.push('<g class="y-ticks" fill="#222222" text-anchor="end">');
  yAxis.ticks.forEach((tick, i) => {
    out.push(
      `<text x="${px(left - 6)}" y="${px(toY(tick))}" dy="0.35em">${escapeXml(yAxis.labels[i])}</text>`,
    );
  });
  out.push('</g>');

  // Title and axis labels.
  if (options.title) {
    out.push(
      `<text class="title" x="${px(left + plotWidth / 2)}" y="24" text-anchor="middle" ` +
        `font-size="${FONT_SIZE + 3}" font-weight="bold" fill="#222222">${escapeXml(options.title)}</text>`,
    );
  }
  if (options.xLabel) {
    out.push(
      `<text class="x-label" x="${px(left + plotWidth / 2)}" y="${px(plotBottom + 38)}" ` +
        `text-anchor="middle" fill="#222222">${escapeXml(options.xLabel)}</text>`,
    );
  }
  if (options.yLabel) {
    out.push(
      `<text class="y-label" transform="translate(16 ${px(top + plotHeight / 2)}) rotate(-90)" ` +
        `text-anchor="middle" fill="#222222">${escapeXml(options.yLabel)}</text>`,
    );
  }

  // Reference lines, under the data.
  if (horizontalLines.length > 0) {
    out.push(`<g class="reference" clip-path="url(#${clipId})">`);
    for (const line of horizontalLines) {
      const y = px(toY(line.y));
      out.push(
        `<line x1="${px(left)}" y1="${y}" x2="${px(plotRight)}" y2="${y}" stroke="#666666" ` +
          `stroke-width="1" stroke-dasharray="4 4"/>`,
      );
      out.push(
        `<text x="${px(plotRight - 4)}" y="${px(toY(line.y) - 4)}" text-anchor="end" fill="#555555">` +
          `${escapeXml(line.label)}</text>`,
      );
    }
    out.push('</g>');
  }

  // The series.
  out.push(`<g class="series" clip-path="url(#${clipId})" fill="none" stroke-width="2">`);
  series.forEach((s, index) => {
    const { color, dash } = seriesStyle(index, s.dashed === true);
    const segments: string[][] = [];
    let current: string[] = [];
    let drawable = 0;
    for (const [x, y] of s.points) {
      if (validX(x) && validY(y)) {
        current.push(`${px(toX(x))} ${px(toY(y))}`);
        drawable++;
      } else if (current.length > 0) {
        segments.push(current);
        current = [];
      }
    }
    if (current.length > 0) segments.push(current);
    const lines = segments.filter((segment) => segment.length > 1);
    if (lines.length > 0) {
      const d = lines.map((segment) => `M${segment.join(' L')}`).join(' ');
      const dashAttribute = dash ? ` stroke-dasharray="${dash}"` : '';
      out.push(
        `<path d="${d}" stroke="${color}"${dashAttribute} stroke-linejoin="round" stroke-linecap="round"/>`,
      );
    }
    // Dots on sparse series, and always on an isolated point, which has no line to show it.
    const dotted = drawable <= MARKER_LIMIT ? segments : segments.filter((segment) => segment.length === 1);
    for (const segment of dotted) {
      for (const point of segment) {
        const [cx, cy] = point.split(' ');
        out.push(`<circle cx="${cx}" cy="${cy}" r="${MARKER_RADIUS}" fill="${color}" stroke="none"/>`);
      }
    }
  });
  out.push('</g>');

  if (!hasData) {
    out.push(
      `<text class="no-data" x="${px(left + plotWidth / 2)}" y="${px(top + plotHeight / 2)}" ` +
        `text-anchor="middle" fill="#888888">no data</text>`,
    );
  }

  // The legend, right of the plot.
  if (series.length > 0) {
    const x0 = plotRight + 16;
    out.push('<g class="legend" fill="#222222">');
    series.forEach((s, index) => {
      const { color, dash } = seriesStyle(index, s.dashed === true);
      const y = px(top + 8 + index * 18);
      const dashAttribute = dash ? ` stroke-dasharray="${dash}"` : '';
      out.push(
        `<line x1="${px(x0)}" y1="${y}" x2="${px(x0 + 24)}" y2="${y}" stroke="${color}" ` +
          `stroke-width="2"${dashAttribute}/>`,
      );
      out.push(`<text x="${px(x0 + 30)}" y="${y}" dy="0.35em">${escapeXml(s.name)}</text>`);
    });
    out.push('</g>');
  }

  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/**
 * Nice ticks on a linear axis: every multiple of one step in `[min, max]`, the step being
 * 1, 2 or 5 × 10^k nearest to (max − min) / target, so there are about `target` intervals.
 *
 * @example
 * niceLinearTicks(0, 1, 5); // [0, 0.2, 0.4, 0.6, 0.8, 1]
 * niceLinearTicks(3, 97, 4); // [20, 40, 60, 80]
 */
export function niceLinearTicks(min: number, max: number, target = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    throw new RangeError(`niceLinearTicks: min and max must be finite, got ${min} and ${max}`);
  }
  if (!(max > min)) return [cleanNumber(min)];
  return ticksWithStep(min, max, niceStep((max - min) / Math.max(1, target)));
}

/**
 * Ticks on a logarithmic axis over `[min, max]` (both > 0): the powers of ten inside when there
 * are at least three (every second, fifth… decade when there are many more than `target`);
 * otherwise 1, 2 and 5 × 10^k when those give three or more; otherwise nice linear ticks.
 *
 * @example
 * logTicks(1, 10_000); // [1, 10, 100, 1000, 10000]
 * logTicks(500, 50_000); // [500, 1000, 2000, 5000, 10000, 20000, 50000]
 */
export function logTicks(min: number, max: number, target = 6): number[] {
  if (!(min > 0) || !Number.isFinite(max) || !(max >= min)) {
    throw new RangeError(`logTicks: need 0 < min ≤ max, finite, got ${min} and ${max}`);
  }
  const low = min * (1 - 1e-9);
  const high = max * (1 + 1e-9);
  const firstExponent = Math.floor(Math.log10(min)) - 1;
  const lastExponent = Math.ceil(Math.log10(max)) + 1;
  const powers: number[] = [];
  for (let e = firstExponent; e <= lastExponent; e++) {
    const value = cleanNumber(10 ** e);
    if (value >= low && value <= high) powers.push(e);
  }
  if (powers.length >= 3) {
    // Thin out long ranges, keeping 10^0 on the grid when it is in range.
    const stride = Math.max(1, Math.ceil(powers.length / Math.max(2, target)));
    return powers.filter((e) => e % stride === 0).map((e) => cleanNumber(10 ** e));
  }
  const oneTwoFive: number[] = [];
  for (let e = firstExponent; e <= lastExponent; e++) {
    for (const mantissa of [1, 2, 5]) {
      const value = cleanNumber(mantissa * 10 ** e);
      if (value >= low && value <= high) oneTwoFive.push(value);
    }
  }
  if (oneTwoFive.length >= 3) return oneTwoFive;
  return niceLinearTicks(min, max, Math.max(2, target - 2)).filter((value) => value > 0);
}

/** Fits a linear axis to `range`, rounding free ends out to a whole tick step. */
function linearAxis(
  range: [number, number] | undefined,
  fixedMin: number | undefined,
  fixedMax: number | undefined,
  target: number,
): Axis {
  let lo = fixedMin ?? range?.[0] ?? 0;
  let hi = fixedMax ?? range?.[1] ?? 1;
  const tooNarrow = hi - lo <= Math.max(MIN_LINEAR_SPAN, 1e-9 * Math.max(Math.abs(lo), Math.abs(hi)));
  if (tooNarrow) {
    // Values equal to ~9 digits cannot be told apart by ticks: treat them as one value.
    if (fixedMin === undefined && fixedMax === undefined) lo = hi = (lo + hi) / 2;
    else if (fixedMin === undefined) lo = hi;
    else if (fixedMax === undefined) hi = lo;
  }
  if (!(hi > lo)) {
    // One value (or a fixed bound beyond the data): open a window around it.
    const reference = fixedMin ?? fixedMax ?? lo;
    const pad = Math.abs(reference) < MIN_LINEAR_SPAN ? 1 : Math.abs(reference) * 0.1;
    if (fixedMin === undefined && fixedMax === undefined) [lo, hi] = [lo - pad, hi + pad];
    else if (fixedMin === undefined) lo = hi - pad;
    else hi = lo + pad;
  }
  const step = niceStep((hi - lo) / target);
  if (fixedMin === undefined) lo = cleanNumber(Math.floor(lo / step + 1e-9) * step);
  if (fixedMax === undefined) hi = cleanNumber(Math.ceil(hi / step - 1e-9) * step);
  const ticks = ticksWithStep(lo, hi, step);
  const maxAbs = Math.max(...ticks.map(Math.abs));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const compact = maxAbs >= 1e4 || step < 1e-4;
  const labels = ticks.map((tick) => (compact ? formatCompact(tick) : tick.toFixed(decimals)));
  return { lo, hi, log: false, ticks, labels };
}

/** Fits a logarithmic axis to `range` (all > 0), rounding free ends out to 1, 2 or 5 × 10^k. */
function logAxis(
  range: [number, number] | undefined,
  fixedMin: number | undefined,
  fixedMax: number | undefined,
  target: number,
): Axis {
  let lo = fixedMin ?? range?.[0] ?? 1;
  let hi = fixedMax ?? range?.[1] ?? 10;
  if (!(hi > lo)) {
    if (fixedMin === undefined && fixedMax === undefined) [lo, hi] = [lo / 10, hi * 10];
    else if (fixedMin === undefined) lo = hi / 10;
    else hi = lo * 10;
  }
  if (fixedMin === undefined) lo = roundOneTwoFive(lo, 'down');
  if (fixedMax === undefined) hi = roundOneTwoFive(hi, 'up');
  const ticks = logTicks(lo, hi, target);
  return { lo, hi, log: true, ticks, labels: ticks.map(formatCompact) };
}

/** Position of `value` along the axis, 0 at `lo` and 1 at `hi`. */
function unit(axis: Axis, value: number): number {
  if (!axis.log) return (value - axis.lo) / (axis.hi - axis.lo);
  const lo = Math.log10(axis.lo);
  return (Math.log10(value) - lo) / (Math.log10(axis.hi) - lo);
}

/** The 1, 2 or 5 × 10^k nearest to `raw` on a log scale. */
function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  // Round in log space: the thresholds are the geometric means of neighbouring mantissas.
  const mantissa =
    fraction >= Math.sqrt(50) ? 10 : fraction >= Math.sqrt(10) ? 5 : fraction >= Math.SQRT2 ? 2 : 1;
  return cleanNumber(mantissa * power);
}

function ticksWithStep(min: number, max: number, step: number): number[] {
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const count = last - first;
  // Callers keep (max − min) / step near the target count; this only guards against misuse.
  if (!(count <= 1000)) throw new RangeError(`too many ticks from ${min} to ${max} by ${step}`);
  const ticks: number[] = [];
  // Count with a small integer: past 2^53, `first + 1` can equal `first`.
  for (let i = 0; i <= count; i++) {
    const tick = cleanNumber((first + i) * step);
    if (tick !== ticks.at(-1)) ticks.push(tick);
  }
  return ticks;
}

/** Rounds `value` > 0 to a neighbouring 1, 2 or 5 × 10^k, down or up. */
function roundOneTwoFive(value: number, direction: 'down' | 'up'): number {
  let exponent = Math.floor(Math.log10(value));
  // Math.log10 can land a hair off for exact powers of ten; fix the decade by comparison.
  if (cleanNumber(10 ** (exponent + 1)) <= value) exponent++;
  if (cleanNumber(10 ** exponent) > value) exponent--;
  const power = 10 ** exponent;
  const fraction = value / power;
  const mantissas = [1, 2, 5, 10];
  const tolerance = 1e-9;
  const mantissa =
    direction === 'down'
      ? mantissas.filter((m) => m <= fraction + tolerance).pop()!
      : mantissas.find((m) => m >= fraction - tolerance)!;
  return cleanNumber(mantissa * power);
}

/** Removes binary noise such as 0.30000000000000004 → 0.3. */
function cleanNumber(value: number): number {
  const cleaned = Number(value.toPrecision(12));
  return cleaned === 0 ? 0 : cleaned;
}

/** Short tick text: 1.5k, 20M, 0.25, 1e-5. */
function formatCompact(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  const suffixes: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  if (magnitude >= 1e15 || magnitude < 1e-4) {
    const [mantissa, exponent] = value.toExponential(3).split('e');
    return `${Number(mantissa)}e${Number(exponent)}`;
  }
  for (const [scale, suffix] of suffixes) {
    if (magnitude >= scale) return `${cleanNumber(value / scale)}${suffix}`;
  }
  return String(cleanNumber(value));
}

/** Pixel coordinates with two decimals, kept finite and free of `-0`. */
function px(value: number): string {
  const clamped = Math.max(-1e6, Math.min(1e6, value));
  const rounded = Math.round(clamped * 100) / 100;
  return rounded === 0 ? '0' : String(rounded);
}

const XML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Escapes text for XML content and attributes; drops control characters XML 1.0 forbids. */
function escapeXml(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  const allowed = text.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '');
  return allowed.replace(/[&<>"']/g, (c) => XML_ENTITIES[c]);
}

function seriesStyle(index: number, dashed: boolean): { color: string; dash: string } {
  const color = PALETTE[index % PALETTE.length];
  const dash = dashed ? DASHED : EXTRA_DASHES[Math.floor(index / PALETTE.length) % EXTRA_DASHES.length];
  return { color, dash };
}

/** FNV-1a, so the clip-path id differs between charts inlined into one page yet stays stable. */
function hashText(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}

function checkSize(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`lineChartSvg: ${name} must be a positive number, got ${value}`);
  }
  return value;
}

function checkBounds(yMin: number | undefined, yMax: number | undefined, logY: boolean): void {
  for (const [name, value] of [
    ['yMin', yMin],
    ['yMax', yMax],
  ] as const) {
    if (value === undefined) continue;
    if (!Number.isFinite(value)) throw new RangeError(`lineChartSvg: ${name} must be finite, got ${value}`);
    if (logY && value <= 0) throw new RangeError(`lineChartSvg: ${name} must be > 0 with logY, got ${value}`);
  }
  if (yMin !== undefined && yMax !== undefined && !(yMax > yMin)) {
    throw new RangeError(`lineChartSvg: yMax (${yMax}) must be greater than yMin (${yMin})`);
  }
}

/** Running min and max of the values added. */
class Extent {
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;
  add(value: number): void {
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }
  get empty(): boolean {
    return this.min > this.max;
  }
  value(): [number, number] | undefined {
    return this.empty ? undefined : [this.min, this.max];
  }
}
