/**
 * MQAR, multi-query associative recall (Arora et al. 2023, "Zoology: Measuring and Improving
 * Recall in Efficient Language Models", §3 and zoology/data/multiquery_ar.py), as text.
 *
 * Zoology's sequence is a block of N key-value pairs, then a stream of two-token slots holding
 * random noise tokens except where a key is queried; key i's query sits `gap_i` slots after the
 * block, the N gaps drawn without replacement with p(g) ∝ (g+1)^(a-1), a = 0.01 — a power law,
 * because in real text the distance between repeats of a bigram is power-law distributed. The
 * model must emit each queried key's value right after the query.
 *
 * Here the model reads `context + question + answer`, the answer being the queries as Zoology
 * writes them: "k:v" for every pair, in random order. Each query key (and ':') is given and its
 * value predicted (`scored`, teacher forcing, as Zoology scores it), so a value needs one hop: find
 * the key earlier in the stream and copy what followed it. To keep Zoology's power law on the
 * distance between a pair and its query, the construction is mirrored in time (layout
 * 'power-law', the default): the context is a run of 4-char slots, each "k:v " for a pair or three
 * noise chars and a space, and pair i sits `gap_i` slots before the question, the gaps drawn
 * exactly as Zoology draws them. Layout 'block' is the other reading: all pairs together (at the
 * start by default, as in Zoology's sequence, or at `needleDepth`), noise after, so every distance
 * is about the context length.
 *
 * Keys, values and noise are single chars from disjoint alphabets (lowercase letters, digits,
 * uppercase letters), so "k:v" is unambiguous; keys are distinct. Zoology also draws distinct
 * values, from thousands of tokens; from 10 digits that would let a model that recalls nothing
 * beat 1/10 by never repeating a value the answer has shown (≈ 0.18 for 8 pairs), so values here
 * are drawn independently and `chance`, 1/|values|, is what any guess without recall gets.
 */
import type { Rng } from '../../engine/random.js';
import { checkExampleArgs, type ExampleOptions, type Task, type TaskExample } from './types.js';

/** Options of `mqarTask`. */
export interface MqarOptions {
  /** Key-value pairs per example (default 8, Zoology's default num_kv_pairs). */
  pairs?: number;
  /** One char per key (default 'a'–'z'); at least `pairs` chars. */
  keyAlphabet?: string;
  /** One char per value (default '0'–'9'); values are drawn independently, with repeats. */
  valueAlphabet?: string;
  /** Chars the noise slots are drawn from (default 'A'–'Z'). */
  noiseAlphabet?: string;
  /** Where the pairs go (default 'power-law'; see the file comment). */
  layout?: 'power-law' | 'block';
  /** Zoology's power_a: p(gap g) ∝ (g+1)^(a-1); 1 makes gaps uniform (default 0.01). */
  powerA?: number;
}

/** Chars per slot: key, ':', value, space. */
const SLOT = 4;

/**
 * `count` distinct gaps in [0, space), drawn one after another without replacement with
 * probability ∝ (g+1)^(powerA-1) among those left — numpy's `choice(replace=False, p=p)` as
 * Zoology calls it. Small gaps are the most likely; powerA = 1 makes every gap equally likely.
 *
 * @example
 * powerLawGaps(new Rng(0), 100, 8); // e.g. [0, 3, 1, 57, 9, 2, 21, 5]
 */
export function powerLawGaps(rng: Rng, space: number, count: number, powerA = 0.01): number[] {
  if (!Number.isInteger(space) || !Number.isInteger(count) || count < 0 || count > space)
    throw new RangeError(`powerLawGaps: need 0 <= count <= space (integers), got ${count} of ${space}`);
  if (!(powerA > 0)) throw new RangeError(`powerLawGaps: powerA must be > 0, got ${powerA}`);
  const weights = Float64Array.from({ length: space }, (_, g) => (g + 1) ** (powerA - 1));
  let total = weights.reduce((a, b) => a + b, 0);
  const gaps: number[] = [];
  for (let k = 0; k < count; k++) {
    let u = rng.next() * total;
    let g = 0;
    // Stop on the last gap still available, whatever rounding leaves of u.
    while (g < space - 1 && (weights[g] === 0 || u >= weights[g]!)) {
      u -= weights[g]!;
      g++;
    }
    while (weights[g] === 0) g--;
    gaps.push(g);
    total -= weights[g]!;
    weights[g] = 0;
  }
  return gaps;
}

/** `count` distinct chars of `alphabet`, in random order. */
function drawDistinct(rng: Rng, alphabet: string, count: number): string[] {
  return rng.shuffle([...alphabet]).slice(0, count);
}

function checkAlphabets(keys: string, values: string, noise: string, pairs: number): void {
  const named: [string, string][] = [
    ['keyAlphabet', keys],
    ['valueAlphabet', values],
    ['noiseAlphabet', noise],
  ];
  const owner = new Map<string, string>();
  for (const [name, alphabet] of named) {
    if (alphabet.length === 0) throw new RangeError(`mqar: ${name} is empty`);
    for (const c of alphabet) {
      if (!/^[!-~]$/.test(c) || c === ':')
        throw new RangeError(
          `mqar: ${name} may hold only printable ASCII other than ':' and space, got '${c}'`,
        );
      const other = owner.get(c);
      if (other !== undefined)
        throw new RangeError(
          `mqar: '${c}' is in ${other === name ? `${name} twice` : `${other} and ${name}`}`,
        );
      owner.set(c, name);
    }
  }
  if (!Number.isInteger(pairs) || pairs < 1)
    throw new RangeError(`mqar: pairs must be an integer >= 1, got ${pairs}`);
  if (pairs > keys.length)
    throw new RangeError(`mqar: ${pairs} pairs need ${pairs} distinct keys; keyAlphabet has ${keys.length}`);
}

/**
 * MQAR as a prompt/answer task (see the file comment for the layouts). The answer queries the N
 * keys in random order as "k:v" pairs, space-separated, and `scored` marks its values; evidence[i]
 * is the offset of the i-th queried pair in the context. Only the
 * 'block' layout reads `needleDepth` (where the block starts; default 0, the start); in the
 * 'power-law' layout the gaps decide where each pair goes.
 *
 * @example
 * const ex = mqarTask({ pairs: 3 }).example(new Rng(0), 64);
 * // ex.context  e.g. 'QWE RTY h:4 UIO ... c:7 PAS b:0 ' (64 chars)
 * // ex.question '\nQ: ', ex.answer e.g. 'b:0 h:4 c:7', ex.scored [2, 6, 10]
 */
export function mqarTask(options: MqarOptions = {}): Task {
  const pairs = options.pairs ?? 8;
  const keyAlphabet = options.keyAlphabet ?? 'abcdefghijklmnopqrstuvwxyz';
  const valueAlphabet = options.valueAlphabet ?? '0123456789';
  const noiseAlphabet = options.noiseAlphabet ?? 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const layout = options.layout ?? 'power-law';
  const powerA = options.powerA ?? 0.01;
  checkAlphabets(keyAlphabet, valueAlphabet, noiseAlphabet, pairs);
  if (layout !== 'power-law' && layout !== 'block')
    throw new RangeError(`mqar: layout must be 'power-law' or 'block', got '${String(layout)}'`);
  const noise = (rng: Rng, n: number) =>
    Array.from({ length: n }, () => noiseAlphabet[rng.int(noiseAlphabet.length)]!).join('');
  return {
    name: 'mqar',
    description: `Zoology MQAR: ${pairs} key-value pairs (${layout} layout), all keys queried, each value predicted after its key`,
    chance: 1 / valueAlphabet.length,
    placement: layout === 'power-law' ? 'own' : 'depth',
    example(rng: Rng, length: number, exampleOptions?: ExampleOptions): TaskExample {
      const depth = checkExampleArgs('mqar', length, exampleOptions);
      const slots = Math.floor(length / SLOT);
      if (slots < pairs)
        throw new RangeError(
          `mqar: ${pairs} pairs need a context of at least ${pairs * SLOT} chars, got ${length}`,
        );
      const keys = drawDistinct(rng, keyAlphabet, pairs);
      const values = keys.map(() => valueAlphabet[rng.int(valueAlphabet.length)]!);
      // slotOf[i]: the slot of pair i, slots counted from the start of the context.
      let slotOf: number[];
      if (layout === 'power-law') {
        slotOf = powerLawGaps(rng, slots, pairs, powerA).map((gap) => slots - 1 - gap);
      } else {
        const first = Math.round((depth ?? 0) * (slots - pairs));
        slotOf = keys.map((_, i) => first + i);
      }
      const pairAt = new Map(slotOf.map((slot, i) => [slot, i]));
      const pad = length - slots * SLOT; // 0..3 leading chars so the context is exactly `length`
      let context = pad > 0 ? `${noise(rng, pad - 1)} ` : '';
      for (let s = 0; s < slots; s++) {
        const i = pairAt.get(s);
        context += i === undefined ? `${noise(rng, SLOT - 1)} ` : `${keys[i]}:${values[i]} `;
      }
      const order = rng.shuffle(keys.map((_, i) => i));
      return {
        context,
        question: '\nQ: ',
        answer: order.map((i) => `${keys[i]}:${values[i]}`).join(' '),
        evidence: order.map((i) => pad + slotOf[i]! * SLOT),
        scored: order.map((_, j) => j * SLOT + 2), // the value of "k:v " at slot j
      };
    },
  };
}
