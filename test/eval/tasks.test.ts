/**
 * The long-context task generators: same seed → same example, contexts of exactly the requested
 * length in printable ASCII, needles where `needleDepth` puts them, and answers that follow from
 * the context — for bAbI recomputed here by re-reading the story and simulating it independently.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadText } from '../../src/data/corpus.js';
import { Rng } from '../../src/engine/random.js';
import {
  BABI_PLACES,
  exactMatch,
  Haystack,
  insertAtBoundaries,
  mqarTask,
  parseCustomJsonl,
  passkeyTask,
  powerLawGaps,
  scatterDepths,
  sentenceDepths,
  sentenceReach,
  TASKS,
  type Task,
  type TaskExample,
  taskByName,
  toPrintableAscii,
} from '../../src/eval/tasks/index.js';

const prose =
  '\u201cWe hold these truths to be self-evident,\u201d said the delegate \u2014 and nobody objected. ' +
  'The harvest was good this year; the granaries are full.\n\nRoads were built across the hills, ' +
  'and the rivers were bridged. Trade grew, and the caf\u00e9s of the capital were busy. \u2603 ' +
  'Peace held on every border. Congress met in the winter and adjourned in the spring.';
const haystack = Haystack.fromText(prose);
const printable = /^[ -~\n]*$/;

function allTasks(): Task[] {
  return Object.keys(TASKS).map((name) => taskByName(name, haystack));
}

describe('Haystack', () => {
  it('normalises to printable ASCII with single spaces', () => {
    assert.equal(
      toPrintableAscii('\u201cCaf\u00e9\u201d \u2014 it\u2019s\t\n ok \u2603 \u2026'),
      '"Cafe" -- it\'s ok ...',
    );
    assert.match(haystack.text, /^[ -~]+$/);
    assert.doesNotMatch(haystack.text, / {2}/);
    assert.ok(
      haystack.text.startsWith('"We hold these truths to be self-evident," said the delegate -- and'),
    );
    assert.throws(() => Haystack.fromText('\u2603 \n\u2603'), /no printable ASCII/);
  });

  it('slices exactly `length` chars from a word start, wrapping past the end', () => {
    const ring = `${haystack.text} `;
    const wordStarts = [...ring].flatMap((_, i) => (i === 0 || ring[i - 1] === ' ' ? [i] : []));
    const readRing = (start: number, length: number) =>
      Array.from({ length }, (_, i) => ring[(start + i) % ring.length]).join('');
    const rng = new Rng(3);
    for (const length of [0, 1, 17, 200, haystack.text.length, 3 * haystack.text.length + 5]) {
      for (let k = 0; k < 10; k++) {
        const slice = haystack.slice(rng, length);
        assert.equal(slice.length, length);
        if (length === 0) continue;
        assert.notEqual(slice[0], ' ');
        assert.ok(
          wordStarts.some((start) => readRing(start, length) === slice),
          'a contiguous piece of the text read as a ring, from a word start',
        );
      }
    }
    assert.equal(haystack.slice(new Rng(9), 50), haystack.slice(new Rng(9), 50));
  });

  it('inserts pieces in order at word or sentence boundaries and reports their offsets', () => {
    assert.deepEqual(insertAtBoundaries('Aa bb. Cc dd.', ['X. '], [0.5]), {
      text: 'Aa bb. X. Cc dd.',
      offsets: [7],
    });
    const noise = haystack.slice(new Rng(1), 300);
    const pieces = ['One. ', 'Two. ', 'Three. '];
    const { text, offsets } = insertAtBoundaries(noise, pieces, [0.1, 0.1, 0.9]);
    assert.equal(text.length, 300 + 5 + 5 + 7);
    pieces.forEach((p, i) => {
      assert.ok(text.startsWith(p, offsets[i]));
      assert.ok(offsets[i] === 0 || text[offsets[i]! - 1] === ' ', 'no word split');
    });
    assert.ok(offsets[0]! < offsets[1]! && offsets[1]! < offsets[2]!);
    assert.equal(text.replace('One. ', '').replace('Two. ', '').replace('Three. ', ''), noise);
  });

  it('finds sentence starts to scatter pieces over, keeping the pinned one where asked', () => {
    assert.deepEqual(sentenceDepths('Aa bb. Cc dd! Ee'), [0, 7 / 16, 14 / 16]);
    assert.deepEqual(sentenceDepths('no sentence end here'), [0, 3 / 20, 12 / 20, 16 / 20]);
    assert.deepEqual(sentenceDepths(''), [0]);
    const anchors = [0, 0.2, 0.4, 0.6, 0.8];
    const rng = new Rng(5);
    for (let k = 0; k < 20; k++) {
      const free = scatterDepths(rng, 4, anchors);
      assert.deepEqual(
        free,
        [...free].sort((a, b) => a - b),
      );
      assert.ok(free.every((d) => anchors.includes(d)));
      const pinned = scatterDepths(rng, 5, anchors, { index: 2, depth: 0.5 });
      assert.equal(pinned[2], 0.5);
      assert.ok(pinned.slice(0, 2).every((d) => d <= 0.4) && pinned.slice(3).every((d) => d >= 0.6));
      assert.deepEqual(scatterDepths(rng, 3, anchors, { index: 0, depth: 0.9 }), [0.9, 0.9, 0.9]);
    }
  });
});

describe('every task', () => {
  it('is deterministic in its seed', () => {
    for (const task of allTasks()) {
      const a = task.example(new Rng(5), 1000);
      assert.deepEqual(task.example(new Rng(5), 1000), a, task.name);
      assert.notDeepEqual(task.example(new Rng(6), 1000), a, task.name);
      assert.deepEqual(
        task.example(new Rng(5), 1000, { needleDepth: 0.3 }),
        task.example(new Rng(5), 1000, { needleDepth: 0.3 }),
      );
    }
  });

  it('makes contexts of exactly the requested length, in printable ASCII, with short answers', () => {
    const rng = new Rng(11);
    for (const task of allTasks()) {
      for (const length of [400, 1001, 4096]) {
        for (let k = 0; k < 5; k++) {
          const ex = task.example(rng, length);
          assert.equal(ex.context.length, length, `${task.name} at ${length}`);
          assert.match(ex.context + ex.question + ex.answer, printable, task.name);
          assert.ok(ex.question.endsWith(': '), `${task.name}: the question ends with a cue`);
          assert.ok(ex.answer.length > 0 && ex.answer.length <= 36 && ex.answer === ex.answer.trim());
          assert.ok(ex.evidence.length >= 1);
          assert.ok(ex.evidence.every((o) => Number.isInteger(o) && o >= 0 && o < length));
        }
      }
    }
  });

  it('states its chance of a uniform guess being right', () => {
    const chance = Object.fromEntries(allTasks().map((t) => [t.name, t.chance]));
    assert.deepEqual(chance, {
      niah1: 1e-5,
      niah2: 1 / 9e6,
      niah3: 2 ** -122,
      mqar: 0.1,
      'babilong-qa1': 1 / 6,
      'babilong-qa2': 1 / 6,
    });
    assert.equal(passkeyTask({ digits: 1 }).chance, 0.1);
    assert.equal(passkeyTask({ digits: 2 }).chance, 0.01);
    assert.equal(
      mqarTask({ valueAlphabet: '0123456789abcdef', keyAlphabet: 'ghijklmnopqrstuvwxyz' }).chance,
      1 / 16,
    );
  });

  it('rejects bad lengths and depths, and names the valid tasks', () => {
    for (const task of allTasks()) {
      assert.throws(() => task.example(new Rng(0), 10), RangeError, task.name);
      assert.throws(() => task.example(new Rng(0), 1000, { needleDepth: 1.5 }), /needleDepth/);
      assert.throws(() => task.example(new Rng(0), 10.5), /length/);
    }
    assert.throws(
      () => taskByName('niah9', haystack),
      /unknown task 'niah9'; valid: niah1, niah2, niah3, mqar, babilong-qa1, babilong-qa2/,
    );
    assert.throws(() => taskByName('toString', haystack), /unknown task/);
  });
});

describe('needle in a haystack (RULER S-NIAH)', () => {
  /** The needle at the evidence offset, and the answer inside it. */
  function needleOf(task: string, ex: TaskExample): string {
    const at = ex.evidence[0]!;
    if (task === 'niah1') {
      const needle = `The pass key is ${ex.answer}. Remember it. ${ex.answer} is the pass key. `;
      assert.ok(ex.context.startsWith(needle, at));
      assert.equal(ex.question, '\nWhat is the pass key? Answer: ');
      return needle;
    }
    const kind = task === 'niah2' ? 'number' : 'uuid';
    const word = /special magic \w+ for (\w+) mentioned/.exec(ex.question)![1]!;
    const needle = `One of the special magic ${kind}s for ${word} is: ${ex.answer}. `;
    assert.ok(ex.context.startsWith(needle, at), `${task}: needle at the evidence offset`);
    assert.equal(ex.context.indexOf(`magic ${kind}s`), at + 'One of the special '.length, 'only one needle');
    return needle;
  }

  it('puts the answer in the needle at the evidence offset', () => {
    const rng = new Rng(2);
    for (const name of ['niah1', 'niah2', 'niah3']) {
      for (let k = 0; k < 20; k++) {
        const ex = taskByName(name, haystack).example(rng, 700);
        needleOf(name, ex);
        if (name === 'niah1') assert.match(ex.answer, /^\d{5}$/);
        if (name === 'niah2') assert.match(ex.answer, /^[1-9]\d{6}$/);
        if (name === 'niah3')
          assert.match(ex.answer, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      }
    }
  });

  it('puts the needle at needleDepth of the context, at a word boundary', () => {
    const rng = new Rng(4);
    const length = 4000;
    for (const name of ['niah1', 'niah2', 'niah3']) {
      for (const depth of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]) {
        const ex = taskByName(name, haystack).example(rng, length, { needleDepth: depth });
        const needle = needleOf(name, ex);
        const at = ex.evidence[0]!;
        const expected = depth * (length - needle.length);
        assert.ok(
          Math.abs(at - expected) <= sentenceReach(length - needle.length) + 32,
          `${name} depth ${depth}: at ${at}, expected ${expected}`,
        );
        assert.ok(at === 0 || ex.context[at - 1] === ' ');
      }
    }
  });

  it('draws tiny pass keys uniformly for short-budget demos', () => {
    const seen = new Set<string>();
    const task = passkeyTask({ digits: 1 });
    const rng = new Rng(8);
    for (let k = 0; k < 200; k++) {
      const ex = task.example(rng, 64);
      assert.equal(ex.context.length, 64);
      seen.add(ex.answer);
    }
    assert.equal(seen.size, 10);
    assert.match(passkeyTask({ digits: 2 }).example(rng, 128).answer, /^\d\d$/);
    assert.throws(() => passkeyTask({ digits: 0 }), /digits/);
  });

  it('hides needles in the State of the Union addresses', async () => {
    const sotu = Haystack.fromText((await loadText('builtin:sotu-small')).text);
    const ex = taskByName('niah2', sotu).example(new Rng(1), 8192, { needleDepth: 0.5 });
    assert.equal(ex.context.length, 8192);
    assert.match(ex.context, /^[ -~]+$/);
    needleOf('niah2', ex);
  });
});

describe('MQAR', () => {
  function readPairs(context: string): Map<string, string> {
    const pairs = new Map<string, string>();
    for (const [, key, value] of context.matchAll(/([a-z]):([0-9]) /g)) {
      assert.ok(!pairs.has(key!), `key ${key} appears twice`);
      pairs.set(key!, value!);
    }
    return pairs;
  }

  it('writes distinct keys, queries every one as "k:v", and scores each value after its key', () => {
    const rng = new Rng(7);
    for (const layout of ['power-law', 'block'] as const) {
      for (const pairs of [1, 4, 8, 10]) {
        const task = mqarTask({ pairs, layout });
        for (const length of [pairs * 4, 61, 999]) {
          if (length < pairs * 4) continue;
          const ex = task.example(rng, length);
          assert.equal(ex.context.length, length);
          const written = readPairs(ex.context);
          assert.equal(written.size, pairs);
          assert.equal(ex.question, '\nQ: ');
          assert.match(ex.answer, /^[a-z]:[0-9](?: [a-z]:[0-9])*$/);
          const queried = ex.answer.split(' ').map((kv) => kv[0]!);
          assert.deepEqual([...queried].sort(), [...written.keys()].sort());
          assert.equal(ex.answer, queried.map((k) => `${k}:${written.get(k)}`).join(' '));
          assert.deepEqual(
            ex.scored!.map((o) => ex.answer.slice(o - 2, o + 1)),
            queried.map((k) => `${k}:${written.get(k)}`),
            'each scored offset is the value after its key',
          );
          queried.forEach((k, i) => {
            assert.equal(ex.context.slice(ex.evidence[i], ex.evidence[i]! + 3), `${k}:${written.get(k)}`);
          });
        }
      }
    }
  });

  it('draws values independently, so a guess without recall gets exactly 1/10', () => {
    const rng = new Rng(8);
    const counts = new Map<string, number>();
    let repeats = 0;
    for (let k = 0; k < 200; k++) {
      const ex = mqarTask().example(rng, 256);
      const values = ex.scored!.map((o) => ex.answer[o]!);
      if (new Set(values).size < values.length) repeats++;
      for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    // p(8 values from 10 digits all differ) = 10!/(2!·10^8) ≈ 0.018.
    assert.ok(repeats > 180, `examples with a repeated value: ${repeats}/200`);
    assert.equal(counts.size, 10);
    for (const [v, n] of counts) assert.ok(n > 110 && n < 210, `value ${v}: ${n} of 1600`);
  });

  it('places the block at the start, or at needleDepth', () => {
    const task = mqarTask({ pairs: 4, layout: 'block' });
    assert.equal(task.placement, 'depth');
    assert.equal(mqarTask().placement, 'own', 'power-law gaps ignore needleDepth');
    assert.deepEqual(
      [...task.example(new Rng(1), 400).evidence].sort((a, b) => a - b),
      [0, 4, 8, 12],
    );
    const middle = Math.min(...task.example(new Rng(1), 400, { needleDepth: 0.5 }).evidence);
    assert.equal(middle, 4 * Math.round(0.5 * (100 - 4)));
  });

  it('draws power-law gaps: short gaps far more often than long ones', () => {
    const rng = new Rng(12);
    const space = 1000;
    const count = (gaps: number[], from: number, to: number) =>
      gaps.filter((g) => g >= from && g < to).length;
    const gaps: number[] = [];
    for (let k = 0; k < 300; k++) {
      const draw = powerLawGaps(rng, space, 8);
      assert.equal(new Set(draw).size, 8, 'without replacement');
      assert.ok(draw.every((g) => Number.isInteger(g) && g >= 0 && g < space));
      gaps.push(...draw);
    }
    const near = count(gaps, 0, 100);
    const far = count(gaps, 900, 1000);
    assert.ok(near > 0.5 * gaps.length, `p(g < 100) ~ H(100)/H(1000) ~ 0.69, got ${near / gaps.length}`);
    assert.ok(near > 10 * far, `near ${near}, far ${far}`);
    assert.ok(count(gaps, 0, 10) > count(gaps, 10, 20), 'decreasing');
    // powerA = 1 is uniform: every decile about a tenth.
    const uniform = Array.from({ length: 300 }, () => powerLawGaps(rng, space, 8, 1)).flat();
    for (let d = 0; d < 10; d++) {
      const share = count(uniform, 100 * d, 100 * (d + 1)) / uniform.length;
      assert.ok(share > 0.07 && share < 0.13, `uniform decile ${d}: ${share}`);
    }
    assert.deepEqual(
      powerLawGaps(rng, 5, 5).sort((a, b) => a - b),
      [0, 1, 2, 3, 4],
    );
  });

  it('puts pairs at power-law distances before the question', () => {
    const task = mqarTask();
    const rng = new Rng(13);
    const length = 4000;
    const distances = Array.from({ length: 100 }, () =>
      task.example(rng, length).evidence.map((o) => length - o),
    ).flat();
    const near = distances.filter((d) => d <= length / 10).length;
    const far = distances.filter((d) => d > (9 * length) / 10).length;
    assert.ok(near > 10 * far && near > distances.length / 2, `near ${near}, far ${far}`);
  });

  it('rejects impossible alphabets', () => {
    assert.throws(() => mqarTask({ pairs: 27 }), /27 pairs need 27 distinct keys; keyAlphabet has 26/);
    assert.equal(mqarTask({ pairs: 12 }).example(new Rng(0), 64).scored!.length, 12);
    assert.throws(() => mqarTask({ keyAlphabet: 'abc1' }), /'1' is in keyAlphabet and valueAlphabet/);
    assert.throws(() => mqarTask({ keyAlphabet: 'ab:' }), /printable ASCII other than ':'/);
    assert.throws(() => mqarTask({ pairs: 8 }).example(new Rng(0), 31), /at least 32 chars/);
  });
});

describe('BABILong (bAbI qa1, qa2)', () => {
  const sentence =
    /(Mary|John|Daniel|Sandra) (?:(went to|journeyed to|moved to|travelled to|went back to) the (\w+)|(picked up|got|grabbed|took) the (\w+) there|(dropped|put down|discarded|left) the (\w+))\. /g;

  /**
   * Re-reads the story from the context and simulates it: the answer to the question. `strict`
   * also checks that the world is consistent (off when sentences have been deleted).
   */
  function solve(ex: TaskExample, strict = true): { answer: string; offsets: number[] } {
    const at = new Map<string, string>(); // person → place
    const holds = new Map<string, string>(); // object → person
    const lies = new Map<string, string>(); // object → place
    const offsets: number[] = [];
    for (const m of ex.context.matchAll(sentence)) {
      offsets.push(m.index);
      const [, person, move, place, grab, grabbed, drop, dropped] = m;
      if (move) at.set(person!, place!);
      if (grab && strict) {
        assert.ok(!holds.has(grabbed!), 'nobody picks up what someone holds');
        assert.equal(lies.get(grabbed!) ?? at.get(person!), at.get(person!), 'picked up where it lies');
      }
      if (grab) {
        holds.set(grabbed!, person!);
        lies.delete(grabbed!);
      }
      if (drop) {
        if (strict) assert.equal(holds.get(dropped!), person, 'drops only what one holds');
        holds.delete(dropped!);
        lies.set(dropped!, at.get(person!)!);
      }
    }
    const [, the, subject] = /^\nWhere is (the )?(\w+)\? Answer: $/.exec(ex.question)!;
    if (!the) return { answer: at.get(subject!)!, offsets };
    const holder = holds.get(subject!);
    return { answer: holder === undefined ? lies.get(subject!)! : at.get(holder)!, offsets };
  }

  it('answers follow from the story sentences scattered in the haystack', async () => {
    const sotu = Haystack.fromText((await loadText('builtin:sotu-small')).text);
    const rng = new Rng(21);
    for (const kind of ['qa1', 'qa2'] as const) {
      for (const source of [haystack, sotu]) {
        const task = taskByName(`babilong-${kind}`, source);
        for (let k = 0; k < 40; k++) {
          const ex = task.example(rng, 1500);
          const { answer, offsets } = solve(ex);
          assert.equal(ex.answer, answer);
          assert.ok(BABI_PLACES.includes(ex.answer));
          assert.ok(
            offsets.length >= (kind === 'qa1' ? 3 : 2) && offsets.length <= 10,
            `${offsets.length} facts`,
          );
          assert.equal(ex.evidence.length, kind === 'qa1' ? 1 : 2);
          for (const e of ex.evidence) assert.ok(offsets.includes(e), 'evidence points at a story sentence');
          assert.ok(
            offsets.every((o) => o === 0 || ex.context[o - 1] === ' '),
            'at word boundaries',
          );
          if (source === sotu)
            assert.ok(
              offsets.every((o) => o === 0 || /[.!?] $/.test(ex.context.slice(o - 2, o))),
              'at sentence starts',
            );
        }
      }
    }
  });

  it('the supporting facts suffice: deleting any other sentence leaves the answer', () => {
    const rng = new Rng(22);
    for (const kind of ['qa1', 'qa2'] as const) {
      const task = taskByName(`babilong-${kind}`, haystack);
      for (let k = 0; k < 30; k++) {
        const ex = task.example(rng, 1200);
        const { offsets } = solve(ex);
        for (const o of offsets) {
          if (ex.evidence.includes(o)) continue;
          const end = ex.context.indexOf('. ', o) + 2;
          const context = ex.context.slice(0, o) + ex.context.slice(end);
          assert.equal(
            solve({ ...ex, context }, false).answer,
            ex.answer,
            `without "${ex.context.slice(o, end)}"`,
          );
        }
      }
    }
  });

  it('puts the last supporting fact at needleDepth', () => {
    const rng = new Rng(23);
    const length = 4000;
    for (const name of ['babilong-qa1', 'babilong-qa2']) {
      for (const depth of [0, 0.3, 0.7, 1]) {
        const ex = taskByName(name, haystack).example(rng, length, { needleDepth: depth });
        const at = Math.max(...ex.evidence);
        // Off by at most the story's own length (≤ 10 sentences) and the snap to a boundary.
        assert.ok(
          Math.abs(at - depth * length) <= 370 + sentenceReach(length) + 32,
          `${name} depth ${depth}: at ${at}`,
        );
      }
    }
  });
});

describe('custom JSON Lines', () => {
  it('parses one example per line, skipping blank lines', () => {
    const text =
      '{"context": "Ann is 7. ", "question": "How old is Ann? ", "answer": "7"}\r\n\n  \n' +
      '{"context": "abc", "question": "?", "answer": "b", "evidence": [1], "note": "ignored"}\n';
    assert.deepEqual(parseCustomJsonl(text, 'ages.jsonl'), [
      { context: 'Ann is 7. ', question: 'How old is Ann? ', answer: '7', evidence: [] },
      { context: 'abc', question: '?', answer: 'b', evidence: [1] },
    ]);
  });

  it('names the source, the line and the problem', () => {
    const good = '{"context": "c", "question": "q", "answer": "a"}';
    const cases: [string, RegExp][] = [
      [`${good}\n\n{"context": "c", "question": "q", "answer": `, /^SyntaxError: f\.jsonl:3: bad JSON/],
      [`${good}\n{"context": "c", "answer": "a"}`, /^TypeError: f\.jsonl:2: missing field "question"/],
      [
        `\n\n\n{"context": "c", "question": "q", "answer": 7}`,
        /^TypeError: f\.jsonl:4: field "answer" must be a string, got number/,
      ],
      [
        `{"context": null, "question": "q", "answer": "a"}`,
        /f\.jsonl:1: field "context" must be a string, got null/,
      ],
      [`${good}\n[1, 2]`, /f\.jsonl:2: expected a JSON object, got an array/],
      [`${good}\n"text"`, /f\.jsonl:2: expected a JSON object, got string/],
      [`{"context": "c", "question": "q", "answer": "a", "evidence": [5]}`, /f\.jsonl:1: field "evidence"/],
      ['\n  \n', /^Error: f\.jsonl: no examples/],
    ];
    for (const [text, message] of cases)
      assert.throws(
        () => parseCustomJsonl(text, 'f.jsonl'),
        (e: Error) => {
          assert.match(String(e), message);
          return true;
        },
      );
  });

  it('refuses an empty answer, which an empty prediction would match', () => {
    assert.throws(
      () => parseCustomJsonl('{"context": "c", "question": "q", "answer": "  "}', 'f.jsonl'),
      /f\.jsonl:1: field "answer" is empty/,
    );
  });

  it('reads bytes as strict UTF-8, naming the line that is not', () => {
    const good = new TextEncoder().encode('{"context": "Zoë", "question": "q", "answer": "a"}\n');
    assert.equal(parseCustomJsonl(good, 'f.jsonl')[0]!.context, 'Zoë');
    const bad = new Uint8Array([
      ...good,
      ...new TextEncoder().encode('{"context": "'),
      0xff,
      0xfe,
      ...new TextEncoder().encode('", "question": "q", "answer": "a"}'),
    ]);
    assert.throws(() => parseCustomJsonl(bad, 'f.jsonl'), /f\.jsonl:2: not valid UTF-8 text/);
  });

  it('scores by exact match after trimming, case-sensitive unless asked', () => {
    assert.ok(exactMatch(' kitchen\n', 'kitchen'));
    assert.ok(!exactMatch('Kitchen', 'kitchen'));
    assert.ok(exactMatch('Kitchen', 'kitchen ', { caseSensitive: false }));
    assert.ok(!exactMatch('kitchen.', 'kitchen'));
  });
});

describe('browser safety', () => {
  it('imports nothing from node:* in src/eval/tasks', () => {
    const dir = join('src', 'eval', 'tasks');
    for (const file of readdirSync(dir)) {
      assert.doesNotMatch(readFileSync(join(dir, file), 'utf8'), /from '(node:|fs|path)/, file);
    }
  });
});
