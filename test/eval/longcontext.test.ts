/**
 * Task training batches (loss only on the answer), greedy evaluation (= uncached argmax), and
 * the experiment runner end to end on a tiny budget, including resume.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { commandLine } from '../../src/cli/experiment.js';
import { loadText } from '../../src/data/corpus.js';
import {
  encodeExample,
  evaluateTask,
  greedyAnswer,
  taskBatchSource,
  teacherForcedScore,
} from '../../src/eval/longcontext.js';
import { babiTask } from '../../src/eval/tasks/babilong.js';
import { Haystack } from '../../src/eval/tasks/haystack.js';
import { mqarTask } from '../../src/eval/tasks/mqar.js';
import { passkeyTask } from '../../src/eval/tasks/niah.js';
import { maxDepthBeyondWindow, shallowNeedles } from '../../src/experiments/spec.js';
import { argMax, dispose, Rng } from '../../src/index.js';
import { initModel, modelForward, tokenTensor } from '../../src/models/model.js';
import { byteTokenizer } from '../../src/tokenizer/tokenizer.js';
import { valuesOf } from '../helpers/read.js';
import { tinyConfig, tinyModel } from '../models/util.js';

const bin = new URL('../../src/cli/bin.js', import.meta.url).pathname;
let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-eval-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function titans(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('task batches', () => {
  it('fill each row with prompt + answer and count only the answer tokens in the loss', () => {
    const task = passkeyTask({ digits: 3 });
    const tokenizer = byteTokenizer();
    const source = taskBatchSource(task, tokenizer);
    const { inputs, targets } = source.sample(new Rng(1), 4, 128);
    assert.equal(inputs.length, 4 * 128);
    for (let row = 0; row < 4; row++) {
      const t = targets.subarray(row * 128, (row + 1) * 128);
      const counted = [...t.keys()].filter((i) => t[i] !== -1);
      assert.equal(counted.length, 3, 'three answer digits are predicted');
      const text = tokenizer.decode(inputs.subarray(row * 128, row * 128 + counted[0]! + 1));
      assert.match(text, /What is the pass key\? Answer: $/);
      const digits = tokenizer.decode(counted.map((i) => t[i]!));
      assert.match(text, new RegExp(`The pass key is ${digits}\\.`), 'the answer is the needle');
    }
  });

  it('count only the scored answer positions in the loss (MQAR: each value after its key)', () => {
    const tokenizer = byteTokenizer();
    const { inputs, targets } = taskBatchSource(mqarTask(), tokenizer).sample(new Rng(3), 3, 200);
    for (let row = 0; row < 3; row++) {
      const t = targets.subarray(row * 200, (row + 1) * 200);
      const counted = [...t.keys()].filter((i) => t[i] !== -1);
      assert.equal(counted.length, 8, 'one value per pair');
      const text = tokenizer.decode(inputs.subarray(row * 200, (row + 1) * 200));
      assert.equal(text.lastIndexOf('\nQ: '), counted[0]! - 5, 'the first value follows "\nQ: k:"');
      for (const i of counted) {
        assert.equal(text[i], ':', 'the value is predicted at the colon after its key');
        const key = text[i - 1]!;
        const value = String.fromCharCode(t[i]!);
        assert.ok(
          text.slice(0, counted[0]).includes(`${key}:${value} `),
          `the context holds ${key}:${value}`,
        );
      }
    }
  });

  it('fit the longest bAbI stories (10 facts, ≈ 370 chars) into 512-token rows', async () => {
    const text = (await loadText('builtin:sotu-small')).text;
    const source = taskBatchSource(babiTask('qa2', Haystack.fromText(text), { facts: 10 }), byteTokenizer());
    const { targets } = source.sample(new Rng(3), 8, 512);
    for (let row = 0; row < 8; row++) {
      const answer = targets.subarray(row * 512, (row + 1) * 512).filter((t) => t !== -1);
      assert.ok(answer.length >= 3, `row ${row}: no answer to learn`);
    }
  });

  it('commandLine quotes what a shell would split', () => {
    assert.equal(
      commandLine(['experiment', 'ablation', '--models', "no conv,it's", '--out', 'a/b']),
      "titans experiment ablation --models 'no conv,it'\\''s' --out a/b",
    );
  });

  it('shallowNeedles spreads needles over depths 0..maxDepth and no deeper', () => {
    const task = shallowNeedles(passkeyTask({ digits: 1 }), 0.3);
    const offsets = Array.from({ length: 60 }, (_, i) => task.example(new Rng(i), 1000).evidence[0]!);
    const sentence = 25; // the needle goes to a sentence boundary near its depth
    assert.ok(Math.max(...offsets) <= 300 + sentence, `deepest needle at ${Math.max(...offsets)}`);
    assert.ok(Math.max(...offsets) > 200 && Math.min(...offsets) < 100, 'not spread over the range');
    const score = () => 0.5;
    const kept = shallowNeedles({ ...mqarTask({ layout: 'block' }), score }, 0.3);
    assert.equal(kept.placement, 'depth', "keeps the task's other fields");
    assert.equal(kept.score, score);
    assert.equal(kept.name, 'mqar');
  });

  it('maxDepthBeyondWindow keeps every needle out of the attention layers’ reach', () => {
    const task = passkeyTask({ digits: 1 });
    const model = { layers: 2, window: 32 };
    for (const length of [256, 512, 1024]) {
      const depth = maxDepthBeyondWindow(length, model);
      const ex = task.example(new Rng(length), length, { needleDepth: depth });
      const { prompt } = encodeExample(byteTokenizer(), ex);
      const needleEnd = ex.context.indexOf('pass key. ', ex.evidence[0]!) + 'pass key. '.length;
      assert.ok(
        prompt.length - needleEnd > model.layers * model.window,
        `length ${length}: needle too close`,
      );
    }
  });
});

describe('greedy evaluation', () => {
  it("scores with the task's own scorer when it has one", async () => {
    const config = tinyConfig('swa', { vocabSize: 256 });
    const params = initModel(config, new Rng(1));
    const base = passkeyTask({ digits: 1 });
    const seen: string[] = [];
    const task = {
      ...base,
      example: base.example,
      score: (_predicted: string, answer: string) => {
        seen.push(answer);
        return 0.25;
      },
    };
    const result = await evaluateTask(params, config, byteTokenizer(), task, {
      lengths: [64],
      examples: 3,
      rng: new Rng(2),
    });
    assert.equal(result.results[0]!.accuracy, 0.25);
    assert.equal(seen.length, 3);
    dispose(params);
  });

  it('decodes in pieces with its cache exactly what uncached argmax predicts', async () => {
    const { config, params } = tinyModel('mac', 'float64');
    const prompt = Int32Array.from({ length: 23 }, (_, i) => (i * 7) % config.vocabSize);
    const answer = await greedyAnswer(params, config, prompt, 4, 5);
    const sequence = [...prompt, ...answer.slice(0, 3)];
    const predicted = await valuesOf(() =>
      argMax(modelForward(params, config, tokenTensor(sequence, 1, sequence.length)).logits, -1),
    );
    assert.deepEqual(answer, [...predicted.slice(prompt.length - 1)]);
    dispose(params);
  });
});

describe('teacher-forced evaluation (examples with scored answer positions)', () => {
  it('scores the argmax of one uncached pass at the scored positions, fed in pieces or not', async () => {
    const { config, params } = tinyModel('mal', 'float64');
    const prompt = Int32Array.from({ length: 19 }, (_, i) => (i * 5 + 3) % config.vocabSize);
    const answer = Int32Array.from([7, 1, 4, 9, 2]);
    const sequence = [...prompt, ...answer];
    const predicted = await valuesOf(() =>
      argMax(modelForward(params, config, tokenTensor(sequence, 1, sequence.length)).logits, -1),
    );
    // answer[j] is predicted at position prompt.length - 1 + j; make two of the three scored right.
    const scored = [0, 2, 4];
    const target = Int32Array.from(answer);
    target[0] = predicted[prompt.length - 1]!;
    target[2] = predicted[prompt.length + 1]!;
    target[4] = (predicted[prompt.length + 3]! + 1) % config.vocabSize;
    // Positions after a changed token see the changed token: recompute on the final sequence.
    const final = [...prompt, ...target];
    const check = await valuesOf(() =>
      argMax(modelForward(params, config, tokenTensor(final, 1, final.length)).logits, -1),
    );
    const want = scored.filter((j) => check[prompt.length - 1 + j] === target[j]).length / 3;
    assert.ok(want >= 1 / 3, 'answer[0] sees only the prompt, so it is right');
    for (const piece of [4, 7, 2048])
      assert.equal(await teacherForcedScore(params, config, prompt, target, scored, piece), want);
    await assert.rejects(teacherForcedScore(params, config, prompt, target, [], 8), /no answer position/);
    dispose(params);
  });

  it('is what evaluateTask uses for MQAR, and refuses scored examples it cannot map to tokens', async () => {
    const config = tinyConfig('swa', { vocabSize: 256 });
    const params = initModel(config, new Rng(4));
    const tokenizer = byteTokenizer();
    const task = mqarTask({ pairs: 4 });
    const result = await evaluateTask(params, config, tokenizer, task, {
      lengths: [48],
      examples: 3,
      rng: new Rng(5),
    });
    const rng = new Rng(5);
    let total = 0;
    for (let i = 0; i < 3; i++) {
      const { prompt, answer, scored } = encodeExample(tokenizer, task.example(rng, 48));
      total += await teacherForcedScore(params, config, prompt, answer, scored!, 2048);
    }
    assert.equal(result.results[0]!.correct, total);
    const ex = task.example(new Rng(6), 48);
    assert.throws(
      () => encodeExample(tokenizer, { ...ex, scored: [ex.answer.length] }),
      /outside the answer/,
    );
    const pairs = {
      ...tokenizer,
      encode: (text: string) => tokenizer.encode(text).filter((_, i) => i % 2 === 0),
    };
    assert.throws(() => encodeExample(pairs, ex), /one token per answer char/);
    dispose(params);
  });
});

describe('titans eval <task> / experiment / demo', () => {
  it('trains a tiny experiment, writes its report, resumes, and evaluates a checkpoint on a task and on custom JSONL', async () => {
    const out = join(root, 'exp');
    const args = [
      'experiment',
      'niah',
      '--out',
      out,
      '--steps',
      '2',
      '--batch-size',
      '2',
      '--train-length',
      '128',
      '--examples',
      '2',
      '--digits',
      '1',
      '--models',
      'mag,swa',
      '--threads',
      '1',
    ];
    // Two runs sharing one folder, each training its own subset (as parallel processes would).
    const first = titans(...args.map((a) => (a === 'mag,swa' ? 'mag' : a)));
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /\| mag \| \d+k \| /);
    assert.match(first.stdout, /not trained yet: mac, mal, lmm, swa, transformer, deltanet/);
    const second = titans(...args.map((a) => (a === 'mag,swa' ? 'swa' : a)));
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /mag: done before/);
    assert.match(second.stdout, /\| swa \| \d+k \| /);
    const partial = await readFile(join(out, 'report.md'), 'utf8');
    assert.match(partial, /Not trained yet: mac, mal, lmm, transformer, deltanet/);
    assert.match(partial, /Repeat: `titans experiment niah --out /);
    for (const f of [
      'experiment.json',
      'report.md',
      'accuracy.svg',
      'results.json',
      'mag/result.json',
      'swa/checkpoint/config.json',
    ]) {
      assert.ok(existsSync(join(out, f)), `missing ${f}`);
    }
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    assert.equal(results.chance, 0.1);
    assert.deepEqual(results.lengths, [128, 256, 512]);
    const again = titans(...args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /mag: done before/);
    assert.match(again.stderr, /swa: done before/);
    // The same experiment trained two models at a time in worker threads gives the same numbers.
    const parallel = titans(...args.map((a) => (a === out ? join(root, 'exp-jobs') : a)), '--jobs', '2');
    assert.equal(parallel.code, 0, parallel.stderr);
    const together = JSON.parse(await readFile(join(root, 'exp-jobs', 'results.json'), 'utf8'));
    assert.deepEqual(
      together.models.map((m: { name: string; accuracy: unknown; finalLoss: number }) => [
        m.name,
        m.accuracy,
        m.finalLoss,
      ]),
      results.models.map((m: { name: string; accuracy: unknown; finalLoss: number }) => [
        m.name,
        m.accuracy,
        m.finalLoss,
      ]),
    );
    const mqarDigits = titans('experiment', 'mqar', '--digits', '2', '--out', join(root, 'x'));
    assert.equal(mqarDigits.code, 1);
    assert.match(mqarDigits.stderr, /--digits, --cue and --noise apply to the pass-key experiments/);
    const wrong = titans(...args.map((a) => (a === 'mag,swa' ? 'mag,gpt' : a)));
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /unknown model 'gpt'/);
    const other = titans(...args.map((a) => (a === '128' ? '64' : a)));
    assert.equal(other.code, 1);
    assert.match(other.stderr, /describes a different experiment/);

    const evalNiah1 = (folder: string, ...more: string[]) =>
      titans(
        'eval',
        'niah1',
        '--checkpoint',
        join(out, 'mag'),
        '--examples',
        '2',
        '--out',
        join(root, folder),
        '--threads',
        '1',
        ...more,
      );
    const evaluated = evalNiah1('ev', '--lengths', '100,200');
    assert.equal(evaluated.code, 0, evaluated.stderr);
    const evaluation = JSON.parse(await readFile(join(root, 'ev', 'results.json'), 'utf8'));
    assert.equal(evaluation.chance, 1e-5, 'RULER default: 5 digits');
    const asTrained = evalNiah1(
      'ev1',
      '--lengths',
      '100',
      '--digits',
      '1',
      '--cue',
      'recall',
      '--max-depth',
      '0.5',
    );
    assert.equal(asTrained.code, 0, asTrained.stderr);
    const evaluation1 = JSON.parse(await readFile(join(root, 'ev1', 'results.json'), 'utf8'));
    assert.equal(evaluation1.chance, 0.1);
    assert.equal(evaluation1.maxDepth, 0.5);
    const badDepth = titans('eval', 'niah1', '--checkpoint', join(out, 'mag'), '--max-depth', '2');
    assert.equal(badDepth.code, 2);
    assert.match(badDepth.stderr, /expected a number in \[0, 1\]/);
    const mqarDepth = titans('eval', 'mqar', '--checkpoint', join(out, 'mag'), '--max-depth', '0.5');
    assert.equal(mqarDepth.code, 1);
    assert.match(mqarDepth.stderr, /--max-depth does not apply to mqar \(it places its facts itself/);
    const mqarBlock = titans(
      'eval',
      'mqar',
      '--checkpoint',
      join(out, 'mag'),
      '--layout',
      'block',
      '--max-depth',
      '0.5',
      '--lengths',
      '64',
      '--examples',
      '2',
      '--out',
      join(root, 'evm'),
    );
    assert.equal(mqarBlock.code, 0, mqarBlock.stderr);
    const block = JSON.parse(await readFile(join(root, 'evm', 'results.json'), 'utf8'));
    assert.equal(block.layout, 'block');
    assert.equal(block.maxDepth, 0.5);
    assert.equal(titans('eval', 'niah1', '--checkpoint', join(out, 'mag'), '--layout', 'block').code, 2);
    const jsonl = join(root, 'mine.jsonl');
    await writeFile(
      jsonl,
      '{"context": "The code is 4. ", "question": "What is the code? ", "answer": "4"}\n\n{"context": "x", "question": "y", "answer": "z"}\n',
    );
    const custom = titans(
      'eval',
      'custom',
      '--checkpoint',
      join(out, 'mag'),
      '--data',
      jsonl,
      '--out',
      join(root, 'cu'),
      '--threads',
      '1',
    );
    assert.equal(custom.code, 0, custom.stderr);
    assert.match(
      custom.stdout,
      /\| mag \| \d+k \| 2 \| \d\.\d\d \| ≤ 16: \d\.\d\d \(1\) · ≤ 64: \d\.\d\d \(1\) \|/,
    );
    assert.doesNotMatch(custom.stdout, /chance|\| 0 \|/, 'no length-0 column, no made-up chance');
    const own = JSON.parse(await readFile(join(root, 'cu', 'results.json'), 'utf8'));
    assert.equal(own.chance, null);
    assert.deepEqual(
      own.predictions.map((p: { answer: string; question: string }) => [p.question, p.answer]),
      [
        ['What is the code? ', '4'],
        ['y', 'z'],
      ],
    );
    for (const p of own.predictions) assert.equal(typeof p.predicted, 'string');
    assert.doesNotMatch(await readFile(join(root, 'cu', 'accuracy.svg'), 'utf8'), /no data/);
    assert.equal(evaluation.predictions.length, 4, 'eval niah1 lists every example');
    assert.doesNotMatch(titans('eval', 'niah1', '--help').stdout, /--data/);
    assert.match(titans('eval', 'custom', '--help').stdout, /--data <file>/);
    await writeFile(jsonl, '{"context": "a", "question": "b"}\n');
    const broken = titans(
      'eval',
      'custom',
      '--checkpoint',
      join(out, 'mag'),
      '--data',
      jsonl,
      '--threads',
      '1',
    );
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /mine\.jsonl:1/);
    // The main demo end to end on a tiny budget (two models side by side in workers).
    const demo = titans(
      'demo',
      '--steps',
      '2',
      '--batch-size',
      '2',
      '--examples',
      '2',
      '--out',
      join(root, 'demo'),
    );
    assert.equal(demo.code, 0, demo.stderr);
    const summary = JSON.parse(await readFile(join(root, 'demo', 'summary.json'), 'utf8'));
    assert.equal(summary.chance, 0.1);
    assert.deepEqual(Object.keys(summary.accuracy), ['mag', 'swa']);
    assert.deepEqual(Object.keys(summary.accuracy.mag), ['256', '512', '1024']);
    assert.ok(existsSync(join(root, 'demo', 'accuracy.svg')));
    const unknown = titans('experiment', 'nope');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown experiment 'nope'/);
  });
});
