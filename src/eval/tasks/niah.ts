/**
 * RULER's single-needle tasks (Hsieh et al. 2024, "RULER: What's the Real Context Size of Your
 * Long-Context Language Models?"):
 *
 *   S-NIAH-1  passkeyTask       a pass key in repeated filler sentences
 *   S-NIAH-2  numberNeedleTask  a 7-digit "special magic number" for a word, in natural text
 *   S-NIAH-3  uuidNeedleTask    a "special magic uuid" for a word, in natural text
 *
 * The needle is one sentence inserted at a sentence (else word) boundary near `needleDepth`; the
 * evidence is its offset. Depth 0 puts it first, depth 1 last (right before the question).
 */
import type { Rng } from '../../engine/random.js';
import { type Haystack, insertAtBoundaries } from './haystack.js';
import { checkExampleArgs, type ExampleOptions, type Task, type TaskExample } from './types.js';

/** RULER's noise for S-NIAH-1 (and the passkey test of Mohtashami & Jaggi 2023). */
export const RULER_FILLER =
  'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ';

/** The keys needles are filed under: 50 short, distinct English nouns. */
// biome-ignore format: a table
export const NEEDLE_WORDS: readonly string[] = [
  'anchor', 'apple', 'badge', 'balloon', 'barrel', 'basket', 'beacon', 'blanket', 'bottle', 'bridge',
  'bucket', 'cactus', 'candle', 'canyon', 'carpet', 'castle', 'compass', 'copper', 'cottage', 'crystal',
  'dolphin', 'engine', 'falcon', 'feather', 'forest', 'glacier', 'hammer', 'harbor', 'helmet', 'island',
  'jacket', 'kettle', 'ladder', 'lantern', 'magnet', 'marble', 'meadow', 'mirror', 'orchard', 'pencil',
  'pepper', 'pillow', 'planet', 'rabbit', 'ribbon', 'saddle', 'squirrel', 'tunnel', 'violin', 'walnut',
];

/** `digits` uniform decimal digits; with `leadingZero: false` the first is 1–9. */
function randomDigits(rng: Rng, digits: number, leadingZero: boolean): string {
  let out = leadingZero ? '' : String(1 + rng.int(9));
  while (out.length < digits) out += String(rng.int(10));
  return out;
}

/**
 * A random version-4 UUID in lowercase hex (122 random bits; the version nibble is 4 and the
 * variant nibble one of 8, 9, a, b).
 *
 * @example
 * randomUuid(new Rng(0)); // e.g. '3f2b8c1e-9a0d-4c5e-b7f1-0e2d4c6a8b9f'
 */
export function randomUuid(rng: Rng): string {
  const hex = (n: number) => Array.from({ length: n }, () => rng.int(16).toString(16)).join('');
  const variant = (8 + rng.int(4)).toString(16);
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${variant}${hex(3)}-${hex(12)}`;
}

/** Noise of `length - needle.length` chars from `noise`, with the needle inserted near the depth. */
function hideNeedle(
  task: string,
  rng: Rng,
  length: number,
  options: ExampleOptions | undefined,
  needle: string,
  noise: (rng: Rng, length: number) => string,
): { context: string; evidence: number[] } {
  const depth = checkExampleArgs(task, length, options) ?? rng.next();
  if (length < needle.length)
    throw new RangeError(`${task}: length ${length} is shorter than the needle (${needle.length} chars)`);
  const { text, offsets } = insertAtBoundaries(noise(rng, length - needle.length), [needle], [depth]);
  return { context: text, evidence: offsets };
}

/** The filler repeated and cut to `length` chars. */
function rulerFiller(length: number): string {
  return RULER_FILLER.repeat(Math.ceil(length / RULER_FILLER.length)).slice(0, length);
}

function checkDigits(task: string, digits: number): void {
  if (!Number.isInteger(digits) || digits < 1 || digits > 15)
    throw new RangeError(`${task}: digits must be an integer in [1, 15], got ${digits}`);
}

/**
 * Where the pass key hides: RULER's repeated filler ('filler', the default), slices of natural
 * text (a `Haystack`), or either at random per example ('mixed': half filler, half text) — what a
 * model that must find the key in any text is trained on.
 */
export type PasskeyNoise = 'filler' | 'text' | 'mixed';

/**
 * S-NIAH-1: "The pass key is 12345. Remember it. 12345 is the pass key. " hidden in the repeated
 * RULER filler; the answer is the key. Keys are `digits` uniform digits (leading zeros allowed),
 * so chance = 10^-digits; `digits: 1` or `2` make tiny needles for short-budget demos. `cue: 'recall'`
 * ends the prompt with "The pass key is " instead of RULER's question. `noise: 'text'` or `'mixed'`
 * hides the key in natural text from `haystack` instead of (or as well as) the filler.
 *
 * @example
 * const ex = passkeyTask({ digits: 2 }).example(new Rng(0), 512, { needleDepth: 0.5 });
 * ex.question; // '\nWhat is the pass key? Answer: '
 * ex.answer; // e.g. '07'
 * passkeyTask({ digits: 1, noise: 'mixed', haystack: Haystack.fromText(text) });
 */
export function passkeyTask(
  options: { digits?: number; cue?: 'question' | 'recall'; noise?: PasskeyNoise; haystack?: Haystack } = {},
): Task {
  const digits = options.digits ?? 5;
  checkDigits('niah1', digits);
  const noiseKind = options.noise ?? 'filler';
  const haystack = options.haystack;
  if (noiseKind !== 'filler' && haystack === undefined)
    throw new RangeError(`niah1: noise '${noiseKind}' needs a haystack of natural text`);
  // 'recall' ends the prompt with the needle's own opening words (associative recall) instead of
  // RULER's question: the same needle and chance, a cue the memory can match directly.
  const question = options.cue === 'recall' ? '\nThe pass key is ' : '\nWhat is the pass key? Answer: ';
  const where = {
    filler: 'repeated filler sentences',
    text: 'natural text',
    mixed: 'filler or natural text',
  }[noiseKind];
  return {
    name: 'niah1',
    description: `RULER S-NIAH-1: a ${digits}-digit pass key hidden in ${where}${options.cue === 'recall' ? ', recalled from the cue "The pass key is"' : ''}`,
    chance: 1 / 10 ** digits,
    example(rng: Rng, length: number, exampleOptions?: ExampleOptions): TaskExample {
      const key = randomDigits(rng, digits, true);
      const needle = `The pass key is ${key}. Remember it. ${key} is the pass key. `;
      // Filler examples draw nothing more, so 'filler' examples are the same as before 'noise' existed.
      const text = noiseKind === 'text' || (noiseKind === 'mixed' && rng.next() < 0.5);
      const noise = text ? rng.split() : undefined;
      const { context, evidence } = hideNeedle('niah1', rng, length, exampleOptions, needle, (_, n) =>
        noise && haystack ? haystack.slice(noise, n) : rulerFiller(n),
      );
      return { context, question, answer: key, evidence };
    },
  };
}

/** S-NIAH-2 and -3 differ only in the value's kind and generator. */
function magicNeedleTask(
  name: string,
  description: string,
  chance: number,
  kind: string,
  value: (rng: Rng) => string,
  haystack: Haystack,
): Task {
  return {
    name,
    description,
    chance,
    example(rng: Rng, length: number, options?: ExampleOptions): TaskExample {
      const word = NEEDLE_WORDS[rng.int(NEEDLE_WORDS.length)]!;
      const answer = value(rng);
      const needle = `One of the special magic ${kind}s for ${word} is: ${answer}. `;
      const noise = rng.split(); // the haystack's draws do not shift the needle's
      const { context, evidence } = hideNeedle(name, rng, length, options, needle, (_, n) =>
        haystack.slice(noise, n),
      );
      const question = `\nWhat is the special magic ${kind} for ${word} mentioned in the provided text? Answer: `;
      return { context, question, answer, evidence };
    },
  };
}

/**
 * S-NIAH-2: "One of the special magic numbers for {word} is: {number}. " in natural text; the
 * question names the word, the answer is the number. Numbers have `digits` digits (default 7,
 * first digit 1–9 as in RULER), so chance = 1 / (9·10^(digits-1)).
 *
 * @example
 * const task = numberNeedleTask(Haystack.fromText(text));
 * const ex = task.example(new Rng(0), 2048); // ex.answer e.g. '4830125'
 */
export function numberNeedleTask(haystack: Haystack, options: { digits?: number } = {}): Task {
  const digits = options.digits ?? 7;
  checkDigits('niah2', digits);
  return magicNeedleTask(
    'niah2',
    `RULER S-NIAH-2: a ${digits}-digit magic number for a word, hidden in natural text`,
    1 / (9 * 10 ** (digits - 1)),
    'number',
    (rng) => randomDigits(rng, digits, false),
    haystack,
  );
}

/**
 * S-NIAH-3: "One of the special magic uuids for {word} is: {uuid}. " in natural text; the answer
 * is the UUID (v4, lowercase hex, 36 chars). It has 122 random bits, so chance = 2^-122 (≈ 1.9e-37,
 * i.e. the "16^-32-ish" of guessing 32 hex digits, less the 6 fixed version/variant bits).
 *
 * @example
 * const ex = uuidNeedleTask(Haystack.fromText(text)).example(new Rng(0), 2048, { needleDepth: 0 });
 * ex.answer; // e.g. '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d'
 */
export function uuidNeedleTask(haystack: Haystack): Task {
  return magicNeedleTask(
    'niah3',
    'RULER S-NIAH-3: a UUID for a word, hidden in natural text',
    2 ** -122,
    'uuid',
    randomUuid,
    haystack,
  );
}
