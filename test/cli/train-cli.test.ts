/**
 * The command line end to end: train (byte and BPE tokenizers) → checkpoint, loss curve and
 * summary → resume (data-parallel) → generate → eval ppl; bad arguments get a one-line error and exit code 2.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { titans } from '../helpers/cli.js';

let root: string;
let data: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-cli-'));
  data = join(root, 'text.txt');
  await writeFile(
    data,
    'The memory learns while the model reads. Attention sees the window; the memory sees the rest.\n'.repeat(
      60,
    ),
  );
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('titans train / generate / eval ppl', () => {
  it('trains, writes a checkpoint, a loss curve and a summary, resumes, generates and evaluates', () => {
    const out = join(root, 'run');
    const common = [
      '--preset',
      'tiny',
      '--data',
      data,
      '--out',
      out,
      '--threads',
      '1',
      '--batch-size',
      '2',
      '--seq-len',
      '16',
    ];
    const first = titans('train', ...common, '--steps', '6', '--checkpoint-every', '3', '--eval-every', '3');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /mag: 6 steps .* train loss \d/);
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'optimizer.safetensors',
      'trainer.json',
    ]) {
      assert.ok(existsSync(join(out, 'checkpoint', f)), `missing ${f}`);
    }
    assert.ok(existsSync(join(out, 'loss.svg')));
    assert.ok(existsSync(join(out, 'summary.json')));

    const again = titans('train', ...common, '--steps', '6');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a checkpoint: pass --resume/);

    // resumed with the batch shared by two threads (the flag may differ from the first run's)
    const resumed = titans('train', ...common, '--steps', '9', '--resume', '--data-parallel', '2');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming .* at step 6 of 9/);
    assert.match(resumed.stderr, /data parallel: each batch shared by 2 threads/);
    assert.match(resumed.stdout, /: 3 steps \(7–9\) in /, 'a resumed run counts only the steps it ran');
    assert.doesNotMatch(resumed.stderr, /\b\d{4,} it\/s/, 'nor does its rate count the resumed steps');

    const gen = titans(
      'generate',
      '--checkpoint',
      out,
      '--prompt',
      'The memory',
      '--max-tokens',
      '12',
      '--threads',
      '1',
    );
    assert.equal(gen.code, 0, gen.stderr);
    assert.ok(gen.stdout.startsWith('The memory'));
    assert.match(gen.stderr, /12 tokens in/);

    for (const extra of [[], ['--stream']]) {
      const ppl = titans(
        'eval',
        'ppl',
        '--checkpoint',
        out,
        '--data',
        data,
        '--seq-len',
        '32',
        '--threads',
        '1',
        ...extra,
      );
      assert.equal(ppl.code, 0, ppl.stderr);
      assert.match(ppl.stdout, /loss \d+\.\d+ nats\/token · perplexity \d+\.\d+ · \d+\.\d+ bits\/byte/);
    }
  });

  it('trains with a BPE tokenizer and saves it as tokenizer.json', async () => {
    const out = join(root, 'bpe');
    const r = titans(
      'train',
      '--preset',
      'tiny',
      '--variant',
      'lmm',
      '--data',
      data,
      '--out',
      out,
      '--threads',
      '1',
      '--steps',
      '2',
      '--tokenizer',
      'bpe:300',
      '--seq-len',
      '8',
      '--batch-size',
      '2',
    );
    assert.equal(r.code, 0, r.stderr);
    const tokenizer = JSON.parse(await readFile(join(out, 'checkpoint', 'tokenizer.json'), 'utf8'));
    assert.equal(tokenizer.model.type, 'BPE');
    assert.equal(Object.keys(tokenizer.model.vocab).length, 300);
    const config = JSON.parse(await readFile(join(out, 'checkpoint', 'config.json'), 'utf8'));
    assert.equal(config.vocabSize, 300);
    assert.equal(config.variant, 'lmm');
  });

  it('answers bad arguments with one line and exit code 2, failures with exit code 1', () => {
    const badVariant = titans('train', '--variant', 'mamba');
    assert.equal(badVariant.code, 2);
    assert.match(badVariant.stderr, /argument 'mamba' is invalid/);
    assert.doesNotMatch(badVariant.stderr, /\n\s+at /, 'no stack trace');
    const badNumber = titans('train', '--steps', 'many');
    assert.equal(badNumber.code, 2);
    const badPreset = titans('train', '--preset', 'huge', '--data', data, '--out', join(root, 'x'));
    assert.equal(badPreset.code, 1);
    assert.match(badPreset.stderr, /unknown preset 'huge' \(presets: paper-170m, small, tiny\)/);
    const badSet = titans(
      'train',
      '--preset',
      'tiny',
      '--data',
      data,
      '--out',
      join(root, 'y'),
      '--set',
      'memory.thetaMax=-1',
      '--threads',
      '1',
    );
    assert.equal(badSet.code, 1);
    assert.match(badSet.stderr, /thetaMax must be > 0/);
    const noCheckpoint = titans('generate', '--checkpoint', join(root, 'nothing'));
    assert.equal(noCheckpoint.code, 1);
    assert.match(
      noCheckpoint.stderr,
      /nothing: not found \(expected a run folder or a checkpoint directory\)/,
    );
    for (const command of [['train'], ['generate'], ['eval', 'ppl']]) {
      const help = titans(...command, '--help');
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Usage: titans/);
    }
  });
});
