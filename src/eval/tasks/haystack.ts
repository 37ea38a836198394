/**
 * Haystacks: natural text to hide needles in, and the one routine every task uses to hide them —
 * insert pieces into noise at word (preferably sentence) boundaries near requested depths, and
 * report where they landed.
 */
import type { Rng } from '../../engine/random.js';

/** Typographic characters with a plain-ASCII spelling; everything else non-ASCII is dropped. */
const ASCII_SPELLING: Readonly<Record<string, string>> = {
  '\u00a0': ' ', // no-break space
  '\u00ab': '"',
  '\u00bb': '"',
  '\u00b4': "'",
  '\u02bc': "'",
  '\u2010': '-',
  '\u2011': '-',
  '\u2012': '-',
  '\u2013': '-', // en dash
  '\u2014': '--', // em dash, as typewriters wrote it
  '\u2015': '--',
  '\u2018': "'",
  '\u2019': "'",
  '\u201a': "'",
  '\u201b': "'",
  '\u201c': '"',
  '\u201d': '"',
  '\u201e': '"',
  '\u201f': '"',
  '\u2026': '...',
  '\u2032': "'",
  '\u2033': '"',
  '\u2212': '-', // minus sign
};
const TYPOGRAPHIC = new RegExp(`[${Object.keys(ASCII_SPELLING).join('')}]`, 'g');

/**
 * Printable ASCII with single spaces: typographic quotes and dashes become their ASCII spelling,
 * accented letters lose their accents (NFKD), other non-ASCII characters are dropped, and every
 * run of whitespace (newlines included) becomes one space.
 *
 * @example
 * toPrintableAscii('\u201cCaf\u00e9\u201d \u2014 ok\n\nnext'); // '"Cafe" -- ok next'
 */
export function toPrintableAscii(text: string): string {
  return text
    .replace(TYPOGRAPHIC, (c) => ASCII_SPELLING[c]!)
    .normalize('NFKD')
    .replace(/\s+/g, ' ')
    .replace(/[^ -~]/g, '')
    .replace(/ {2,}/g, ' ')
    .trim();
}

/**
 * Natural text to draw noise from, normalised once to printable ASCII (`toPrintableAscii`).
 *
 * @example
 * const haystack = Haystack.fromText((await loadText('builtin:sotu')).text);
 * const noise = haystack.slice(new Rng(0), 2000); // 2000 chars, starting at a word
 */
export class Haystack {
  /** The normalised text, followed by one space so that it can be read as a ring. */
  private readonly ring: string;

  private constructor(readonly text: string) {
    this.ring = `${text} `;
  }

  /**
   * A haystack over `text` after normalisation; throws if nothing printable is left.
   *
   * @example
   * Haystack.fromText('It was a dark and stormy night.').text.length; // 31
   */
  static fromText(text: string): Haystack {
    const ascii = toPrintableAscii(text);
    if (ascii.length === 0) throw new Error('Haystack.fromText: no printable ASCII text left');
    return new Haystack(ascii);
  }

  /**
   * A contiguous slice of exactly `length` chars from a random start, moved forward to the next
   * sentence start if one comes within `SENTENCE_SEARCH` chars, else to the next word start. The
   * text is read as a ring (its end joined to its start by a space), so a slice longer than the
   * text repeats it rather than failing.
   *
   * @example
   * Haystack.fromText('one two three').slice(new Rng(3), 7); // e.g. 'two thr'
   */
  slice(rng: Rng, length: number): string {
    if (!Number.isInteger(length) || length < 0)
      throw new RangeError(`Haystack.slice: length must be a non-negative integer, got ${length}`);
    const ring = this.ring;
    const n = ring.length;
    const at = (i: number) => ring[(i + 2 * n) % n]!;
    const random = rng.int(n);
    let start = random;
    while (start - random < SENTENCE_SEARCH && !(at(start - 1) === ' ' && '.!?'.includes(at(start - 2))))
      start++;
    if (start - random === SENTENCE_SEARCH) {
      // No sentence end near: the ring's last char is a space, so a word start comes within a lap.
      start = random;
      while (at(start - 1) !== ' ') start++;
    }
    start %= n;
    let out = '';
    while (out.length < length) {
      const take = Math.min(length - out.length, n - start);
      out += ring.slice(start, start + take);
      start = 0;
    }
    return out;
  }
}

/** How far `Haystack.slice` looks ahead for a sentence start before settling for a word start. */
const SENTENCE_SEARCH = 2000;

/** True where a piece may be inserted without splitting a word: at 0 or right after a space. */
function isWordBoundary(noise: string, at: number): boolean {
  return at === 0 || noise[at - 1] === ' ';
}

/** True at 0 or at the start of a word that follows a sentence end (`. `, `! `, `? `). */
function isSentenceBoundary(noise: string, at: number): boolean {
  return at === 0 || (noise[at - 1] === ' ' && at >= 2 && '.!?'.includes(noise[at - 2]!));
}

/** The boundary nearest to `target` (ties go left), searching at most `reach` chars each way. */
function nearestBoundary(
  noise: string,
  target: number,
  reach: number,
  isBoundary: (noise: string, at: number) => boolean,
): number | undefined {
  for (let d = 0; d <= reach; d++) {
    if (target - d >= 0 && isBoundary(noise, target - d)) return target - d;
    if (target + d <= noise.length && isBoundary(noise, target + d)) return target + d;
  }
  return undefined;
}

/**
 * How far from its target a piece may move to land on a sentence start rather than inside a
 * sentence: RULER snaps needles to sentence ends; we do so within this reach (about a sentence
 * of natural text, less in short contexts) and otherwise settle for the nearest word start.
 */
export function sentenceReach(noiseLength: number): number {
  return Math.round(Math.max(32, Math.min(256, 0.05 * noiseLength)));
}

/**
 * Inserts `pieces`, in order, into `noise`, piece i near `depths[i]·noise.length`: at the nearest
 * sentence start within `sentenceReach(noise.length)`, else at the nearest word start, so no word
 * is split. Pieces should end with a space (they are sentences followed by more text). Returns
 * the text (`noise.length + Σ piece lengths` chars) and each piece's offset in it.
 *
 * @example
 * const { text, offsets } = insertAtBoundaries('Aa bb. Cc dd.', ['X. '], [0.5]);
 * // text 'Aa bb. X. Cc dd.', offsets [7]
 */
export function insertAtBoundaries(
  noise: string,
  pieces: readonly string[],
  depths: readonly number[],
): { text: string; offsets: number[] } {
  if (pieces.length !== depths.length)
    throw new RangeError(`insertAtBoundaries: ${pieces.length} pieces but ${depths.length} depths`);
  const reach = sentenceReach(noise.length);
  let previous = 0;
  let text = '';
  let shift = 0; // chars of pieces inserted so far
  const offsets: number[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const depth = depths[i]!;
    if (!(depth >= 0 && depth <= 1)) throw new RangeError(`insertAtBoundaries: depth ${depth} not in [0, 1]`);
    const target = Math.round(depth * noise.length);
    const at = Math.max(
      previous,
      nearestBoundary(noise, target, reach, isSentenceBoundary) ??
        nearestBoundary(noise, target, noise.length, isWordBoundary) ??
        0,
    );
    text += noise.slice(previous, at) + pieces[i]!;
    offsets.push(at + shift);
    shift += pieces[i]!.length;
    previous = at;
  }
  return { text: text + noise.slice(previous), offsets };
}

/**
 * The depths (offset / length, in [0, 1]) of the sentence starts of `noise`, 0 included — or of
 * its word starts when it has no sentence end. Scattering pieces over these keeps sentences whole.
 *
 * @example
 * sentenceDepths('Aa bb. Cc dd.'); // [0, 7/13]
 * sentenceDepths(''); // [0]
 */
export function sentenceDepths(noise: string): number[] {
  if (noise.length === 0) return [0];
  const starts: number[] = [];
  for (let at = 0; at <= noise.length; at++) if (isSentenceBoundary(noise, at)) starts.push(at);
  if (starts.length === 1)
    for (let at = 1; at <= noise.length; at++) if (isWordBoundary(noise, at)) starts.push(at);
  return starts.map((at) => at / noise.length);
}

/**
 * `count` depths drawn uniformly, with replacement, from `anchors` (e.g. `sentenceDepths`), sorted;
 * with `pinned`, the one at `pinned.index` is `pinned.depth`, those before it are drawn from the
 * anchors at or below it and those after from the anchors at or above it (or equal it, if there
 * are none). Used to scatter story sentences in order while placing the decisive one where asked.
 *
 * @example
 * scatterDepths(new Rng(0), 3, [0, 0.25, 0.5, 0.75]); // e.g. [0, 0.5, 0.5]
 * scatterDepths(new Rng(0), 3, [0, 0.25, 0.5, 0.75], { index: 2, depth: 0.3 }); // e.g. [0, 0.25, 0.3]
 */
export function scatterDepths(
  rng: Rng,
  count: number,
  anchors: readonly number[],
  pinned?: { index: number; depth: number },
): number[] {
  const draw = (from: readonly number[], n: number, fallback: number) =>
    Array.from({ length: n }, () => (from.length === 0 ? fallback : from[rng.int(from.length)]!)).sort(
      (a, b) => a - b,
    );
  if (pinned === undefined) return draw(anchors, count, 0);
  const { index, depth } = pinned;
  return [
    ...draw(
      anchors.filter((a) => a <= depth),
      index,
      depth,
    ),
    depth,
    ...draw(
      anchors.filter((a) => a >= depth),
      count - index - 1,
      depth,
    ),
  ];
}
