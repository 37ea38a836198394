/**
 * BABILong-style tasks (Kuratov et al. 2024, "BABILong: Testing the Limits of LLMs with Long
 * Context Reasoning-in-a-Haystack"): a short bAbI story (Weston et al. 2015) whose sentences are
 * scattered, in order, through natural text.
 *
 *   qa1  single supporting fact   people move between places; "Where is Mary?"
 *   qa2  two supporting facts     people also pick up and drop objects; "Where is the football?"
 *
 * Stories come from a simulated world, so the answer is determined by the sentences; the
 * evidence is the offsets of the supporting facts (qa1: the person's last move; qa2: the
 * holder's move that fixes the place, and the object's last pick-up or drop).
 */
import type { Rng } from '../../engine/random.js';
import { type Haystack, insertAtBoundaries, scatterDepths, sentenceDepths } from './haystack.js';
import { checkExampleArgs, type ExampleOptions, type Task, type TaskExample } from './types.js';

/** bAbI's actors (qa1/qa2). @example BABI_PEOPLE[0]; // 'Mary' */
export const BABI_PEOPLE: readonly string[] = ['Mary', 'John', 'Daniel', 'Sandra'];
/** bAbI's places: every answer is one of these. @example BABI_PLACES.length; // 6 */
export const BABI_PLACES: readonly string[] = [
  'bathroom',
  'hallway',
  'garden',
  'office',
  'kitchen',
  'bedroom',
];
/** bAbI's qa2 objects. @example BABI_OBJECTS.includes('milk'); // true */
export const BABI_OBJECTS: readonly string[] = ['football', 'apple', 'milk'];
const MOVE_VERBS = ['went to', 'journeyed to', 'moved to', 'travelled to', 'went back to'];
const GRAB_VERBS = ['picked up', 'got', 'grabbed', 'took'];
const DROP_VERBS = ['dropped', 'put down', 'discarded', 'left'];

/**
 * A generated story: sentences in order, the question's subject and answer, supporting facts.
 *
 * @example
 * const story: BabiStory = { sentences: ['Mary went to the garden.'], subject: 'Mary', answer: 'garden', supporting: [0] };
 */
export interface BabiStory {
  sentences: string[];
  /** The person (qa1) or object (qa2) asked about. */
  subject: string;
  answer: string;
  /** Indices into `sentences` of the facts the answer depends on, ascending. */
  supporting: number[];
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)]!;
}

/** A place other than `current` (any place when there is none). */
function newPlace(rng: Rng, current: string | undefined): string {
  return pick(
    rng,
    BABI_PLACES.filter((p) => p !== current),
  );
}

/**
 * A qa1 story of `facts` moves; the question asks where someone who moved is now.
 *
 * @example
 * babiQa1Story(new Rng(0), 3);
 * // e.g. { sentences: ['John went to the office.', 'Mary moved to the garden.', 'John travelled to the hallway.'],
 * //        subject: 'John', answer: 'hallway', supporting: [2] }
 */
export function babiQa1Story(rng: Rng, facts: number): BabiStory {
  const where = new Map<string, string>();
  const lastMove = new Map<string, number>();
  const sentences: string[] = [];
  for (let t = 0; t < facts; t++) {
    const person = pick(rng, BABI_PEOPLE);
    const place = newPlace(rng, where.get(person));
    where.set(person, place);
    lastMove.set(person, t);
    sentences.push(`${person} ${pick(rng, MOVE_VERBS)} the ${place}.`);
  }
  const subject = pick(rng, [...lastMove.keys()]);
  return { sentences, subject, answer: where.get(subject)!, supporting: [lastMove.get(subject)!] };
}

/** One world step of qa2: a person moves to a place, or picks up or drops an object. */
interface Action {
  kind: 'move' | 'grab' | 'drop';
  person: string;
  /** The place (move) or the object (grab, drop). */
  target: string;
}

/**
 * A qa2 story of `facts` moves, pick-ups and drops in a consistent world (you pick up only what
 * nobody holds and what lies where you are; what you hold travels with you; you drop it where
 * you are). The question asks where an object that has been picked up is now.
 *
 * @example
 * babiQa2Story(new Rng(0), 4);
 * // e.g. { sentences: ['Mary went to the garden.', 'Mary got the milk there.', 'John moved to the office.',
 * //        'Mary journeyed to the kitchen.'], subject: 'milk', answer: 'kitchen', supporting: [1, 3] }
 */
export function babiQa2Story(rng: Rng, facts: number): BabiStory {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const story = tryQa2Story(rng, facts);
    if (story !== undefined) return story;
  }
  throw new Error(`babilong-qa2: could not generate a story of ${facts} facts with a pick-up`);
}

function tryQa2Story(rng: Rng, facts: number): BabiStory | undefined {
  const where = new Map<string, string>(); // person → place
  const holder = new Map<string, string>(); // object → person holding it
  const lying = new Map<string, string>(); // object → place it was dropped
  const moves: number[][] = BABI_PEOPLE.map(() => []); // per person, indices of their moves
  const lastTouch = new Map<string, number>(); // object → index of its last pick-up or drop
  const sentences: string[] = [];
  for (let t = 0; t < facts; t++) {
    const grabs: Action[] = [];
    const drops: Action[] = [];
    for (const person of BABI_PEOPLE) {
      const here = where.get(person);
      if (here === undefined) continue;
      for (const object of BABI_OBJECTS) {
        const by = holder.get(object);
        if (by === person) drops.push({ kind: 'drop', person, target: object });
        else if (by === undefined && (lying.get(object) ?? here) === here)
          grabs.push({ kind: 'grab', person, target: object });
      }
    }
    // Moves half the time; otherwise a pick-up or drop where one is possible.
    const r = rng.next();
    let action: Action;
    if (r < 0.3 && grabs.length > 0) action = pick(rng, grabs);
    else if (r >= 0.3 && r < 0.5 && drops.length > 0) action = pick(rng, drops);
    else {
      const person = pick(rng, BABI_PEOPLE);
      action = { kind: 'move', person, target: newPlace(rng, where.get(person)) };
    }
    const { person, target } = action;
    if (action.kind === 'move') {
      where.set(person, target);
      moves[BABI_PEOPLE.indexOf(person)]!.push(t);
      sentences.push(`${person} ${pick(rng, MOVE_VERBS)} the ${target}.`);
    } else if (action.kind === 'grab') {
      holder.set(target, person);
      lying.delete(target);
      lastTouch.set(target, t);
      sentences.push(`${person} ${pick(rng, GRAB_VERBS)} the ${target} there.`);
    } else {
      holder.delete(target);
      lying.set(target, where.get(person)!);
      lastTouch.set(target, t);
      sentences.push(`${person} ${pick(rng, DROP_VERBS)} the ${target}.`);
    }
  }
  if (lastTouch.size === 0) return undefined;
  const subject = pick(rng, [...lastTouch.keys()]);
  const touch = lastTouch.get(subject)!;
  const by = holder.get(subject);
  if (by !== undefined) {
    // Held: it is where its holder last went (that move may come before or after the pick-up).
    const move = moves[BABI_PEOPLE.indexOf(by)]!.at(-1)!;
    return { sentences, subject, answer: where.get(by)!, supporting: [move, touch].sort((a, b) => a - b) };
  }
  // Dropped: it is where the dropper was at the drop, i.e. their last move before it.
  const dropper = BABI_PEOPLE.find((p) => sentences[touch]!.startsWith(`${p} `))!;
  const move = moves[BABI_PEOPLE.indexOf(dropper)]!.filter((m) => m < touch).at(-1)!;
  return { sentences, subject, answer: lying.get(subject)!, supporting: [move, touch] };
}

/**
 * A BABILong task: a bAbI story of `facts` sentences (default: 3–10, drawn per example) scattered
 * in order at random sentence starts of a haystack slice (word starts if it has no sentence end;
 * several facts may share a start). With `needleDepth`, the last supporting fact goes there (see
 * `insertAtBoundaries`) and the other sentences fall at random before or after it, in order.
 * The story must fit: `length` ≥ its sentences plus a space each (≈ 37 chars a sentence).
 * chance = 1/6, the number of places.
 *
 * @example
 * const task = babiTask('qa1', Haystack.fromText(text));
 * const ex = task.example(new Rng(0), 2000);
 * ex.question; // e.g. '\nWhere is Mary? Answer: '
 * ex.answer; // e.g. 'kitchen'
 */
export function babiTask(kind: 'qa1' | 'qa2', haystack: Haystack, options: { facts?: number } = {}): Task {
  const name = `babilong-${kind}`;
  if (kind !== 'qa1' && kind !== 'qa2')
    throw new RangeError(`babiTask: kind must be 'qa1' or 'qa2', got '${kind}'`);
  const minFacts = kind === 'qa1' ? 1 : 2;
  if (options.facts !== undefined && !(Number.isInteger(options.facts) && options.facts >= minFacts))
    throw new RangeError(`${name}: facts must be an integer >= ${minFacts}, got ${options.facts}`);
  return {
    name,
    description:
      kind === 'qa1'
        ? 'BABILong qa1: where is a person, given their moves scattered through natural text (one supporting fact)'
        : 'BABILong qa2: where is an object, given moves, pick-ups and drops scattered through natural text (two supporting facts)',
    chance: 1 / BABI_PLACES.length,
    example(rng: Rng, length: number, exampleOptions?: ExampleOptions): TaskExample {
      const depth = checkExampleArgs(name, length, exampleOptions);
      const facts = options.facts ?? 3 + rng.int(8);
      const story = (kind === 'qa1' ? babiQa1Story : babiQa2Story)(rng.split(), facts);
      const pieces = story.sentences.map((s) => `${s} `);
      const storyLength = pieces.reduce((n, p) => n + p.length, 0);
      if (storyLength > length)
        throw new RangeError(
          `${name}: a story of ${facts} facts needs ${storyLength} chars, got length ${length}`,
        );
      const noise = haystack.slice(rng.split(), length - storyLength);
      const anchors = sentenceDepths(noise);
      const last = story.supporting.at(-1)!;
      const depths = scatterDepths(
        rng,
        pieces.length,
        anchors,
        depth === undefined ? undefined : { index: last, depth },
      );
      const { text, offsets } = insertAtBoundaries(noise, pieces, depths);
      const question =
        kind === 'qa1'
          ? `\nWhere is ${story.subject}? Answer: `
          : `\nWhere is the ${story.subject}? Answer: `;
      return {
        context: text,
        question,
        answer: story.answer,
        evidence: story.supporting.map((i) => offsets[i]!),
      };
    },
  };
}
