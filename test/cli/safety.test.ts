/**
 * Issue 15 through the real command line (child processes): nothing lost, nothing silently
 * wrong. Bad output folders and flags fail before any work; Ctrl-C and SIGTERM save and exit
 * 130 / 143, and a second Ctrl-C waits for the save; a crash between the renames of a save is
 * recovered by `generate` and `train --resume`; NaN is never printed as a result; inputs that
 * cannot be scored are errors.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dispose, full } from '../../src/index.js';
import { loadModelCheckpoint, saveModelCheckpoint } from '../../src/io/model-checkpoint.js';
import { TITANS_BIN as bin, titans } from '../helpers/cli.js';

const DEAD = 4194303; // no process has this pid
let root: string;
let data: string;
/** A finished tiny run (6 steps), copied by the tests that need one. */
let run: string;

const tiny = (out: string, ...more: string[]) => [
  'train',
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
  '--eval-every',
  '0',
  ...more,
];

async function copyRun(name: string): Promise<string> {
  const to = join(root, name);
  await cp(run, to, { recursive: true });
  return to;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-safety-'));
  data = join(root, 'text.txt');
  await writeFile(data, 'The memory learns while the model reads; attention sees the window.\n'.repeat(60));
  run = join(root, 'run');
  const r = titans(...tiny(run, '--steps', '6', '--checkpoint-every', '3'));
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('train: checked before any work', () => {
  // --data names a missing file: an error about --out proves the check came first.
  const early = (out: string, ...more: string[]) =>
    titans('train', '--preset', 'tiny', '--data', join(root, 'missing.txt'), '--out', out, ...more);

  it('refuses an --out that is a file, under a file, or on a pseudo file system', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, 'x');
    for (const [out, problem] of [
      [file, /--out .*a-file: is a file, not a folder/],
      [join(file, 'run'), /--out .*a-file\/run: is under .*a-file, which is a file/],
      ['/proc/titans-run', /--out \/proc\/titans-run: is on the proc pseudo file system/],
      ['/sys/titans-run', /--out \/sys\/titans-run: is on the sysfs pseudo file system/],
    ] as const) {
      const r = early(out);
      assert.equal(r.code, 1, `${out}: ${r.stderr}`);
      assert.match(r.stderr, problem);
      assert.doesNotMatch(r.stderr, /missing\.txt/);
    }
  });

  it('refuses an --out that cannot be written (as a user without root)', (t) => {
    if (process.getuid?.() === 0) return t.skip('root writes through file permissions');
    const locked = join(root, 'locked');
    execFileSync('mkdir', ['-m', '555', locked]);
    const r = early(join(locked, 'run'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--out .*locked\/run: cannot be created \(EACCES\)/);
  });

  it('refuses --resume without a checkpoint', () => {
    const r = early(join(root, 'empty-run'), '--resume');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--resume: .*empty-run holds no checkpoint to continue; drop --resume/);
  });

  it('refuses --resume with flags that contradict the checkpoint, naming each', async () => {
    const out = await copyRun('contradict');
    const r = titans(
      'train',
      '--out',
      out,
      '--resume',
      '--preset',
      'small',
      '--data',
      'builtin:sotu-small',
      '--lr',
      '0.5',
      '--set',
      'layers=3',
      '--steps',
      '9',
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /--resume: these flags contradict the checkpoint in .*contradict\/checkpoint: /);
    for (const part of [
      /--preset small \(it was trained with tiny\)/,
      /--data builtin:sotu-small \(it was trained on .*text\.txt\)/,
      /--lr 0\.5 \(it used 0\.003\)/,
      /--set layers=3 \(the checkpoint's config differs\)/,
    ])
      assert.match(r.stderr, part);
    // Flags that agree with it, and the ones that may change, are accepted.
    const ok = titans(...tiny(out, '--resume', '--steps', '7', '--checkpoint-every', '3'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /resuming .* at step 6 of 7/);
  });

  it('checks --set paths against the config schema', () => {
    const cases: [string, RegExp][] = [
      ['memory=5', /--set memory=5: 'memory' is an object of settings; set one of its fields/],
      ['__proto__.x=1', /--set __proto__\.x=1: '__proto__' is not a config field/],
      ['constructor=1', /--set constructor=1: 'constructor' is not a config field/],
      ['memory.prototype=1', /--set memory\.prototype=1: 'prototype' is not a config field/],
      ['layers.x=1', /--set layers\.x=1: 'layers' is a single value/],
      [
        'dmodel=8',
        /--set dmodel=8: 'dmodel' is not a config field \(fields here: variant, vocabSize, dModel/,
      ],
      ['layers=1000000000', /--set layers=1000000000: config: layers = 1000000000 makes the model too large/],
    ];
    for (const [setting, problem] of cases) {
      const r = titans(...tiny(join(root, `set-${setting.length}`), '--set', setting));
      assert.equal(r.code, 1, `${setting}: ${r.stderr}`);
      assert.match(r.stderr, problem);
    }
  });

  it('keeps the earlier good update when the last step is non-finite, and writes the summary', async () => {
    // An absurd learning rate: step 1 is finite, its update makes step 2 overflow.
    const out = join(root, 'last-bad');
    const r = titans(...tiny(out, '--steps', '2', '--lr', '1e30', '--checkpoint-every', '100'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: step 2: non-finite loss/);
    const trainer = JSON.parse(await readFile(join(out, 'checkpoint', 'trainer.json'), 'utf8'));
    assert.equal(trainer.step, 2);
    assert.equal(trainer.history.length, 1, "step 1's update is in the checkpoint");
    assert.deepEqual(
      trainer.badSteps.map((b: { step: number }) => b.step),
      [2],
    );
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.steps, 2);
    assert.equal(summary.badSteps, 1);
  });

  it('removes temp files a killed writer left in the run folder', async () => {
    const out = await copyRun('leftovers');
    const stale = join(out, `loss.svg.tmp-${DEAD}-1700000000000-abcdef`);
    await writeFile(stale, '<svg');
    const r = titans(...tiny(out, '--resume', '--steps', '7'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(stale), false);
  });
});

describe('signals: a checkpoint, then exit 130 / 143', () => {
  /** Starts a long run, waits until it trains, sends `signals` (one, or a burst), and collects the outcome. */
  async function interrupt(name: string, signal: NodeJS.Signals, burst: boolean, steps = 1_000_000) {
    const out = join(root, name);
    const child = spawn(
      process.execPath,
      [bin, ...tiny(out, '--steps', String(steps), '--checkpoint-every', '1000000')],
      {
        env: { ...process.env, CI: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, sig) => resolve({ code, signal: sig })),
    );
    let sentAt = 0;
    let scheduled = false;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d) => {
          stderr += d;
          if (!scheduled && /parameters · .* → /.test(stderr)) {
            // Training has begun; let it take some steps, then signal (once: more output follows).
            scheduled = true;
            setTimeout(() => {
              sentAt = performance.now();
              child.kill(signal);
              if (burst) timer = setInterval(() => child.kill(signal), 2);
              resolve();
            }, 1500);
          }
        });
        child.on('exit', () => reject(new Error(`exited before training: ${stderr}`)));
      });
      const result = await exited;
      return { ...result, stderr, out, latencyMs: performance.now() - sentAt };
    } finally {
      if (timer) clearInterval(timer);
      child.kill('SIGKILL');
    }
  }

  async function assertSaved(out: string) {
    assert.deepEqual((await readdir(out)).sort(), ['checkpoint', 'loss.svg', 'summary.json']);
    assert.deepEqual((await readdir(join(out, 'checkpoint'))).sort(), [
      'config.json',
      'manifest.json',
      'model.safetensors',
      'optimizer.safetensors',
      'tokenizer.json',
      'trainer.json',
    ]);
    const trainer = JSON.parse(await readFile(join(out, 'checkpoint', 'trainer.json'), 'utf8'));
    assert.ok(trainer.step > 0 && trainer.step < 1_000_000, `saved at step ${trainer.step}`);
    return trainer.step as number;
  }

  it('SIGINT saves after the current step and exits 130', async (t) => {
    const r = await interrupt('sigint', 'SIGINT', false);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /SIGINT: stopping after the current step with a checkpoint/);
    assert.match(
      r.stderr,
      /titans: interrupted \(SIGINT\) at step \d+ of 1000000; the checkpoint is saved in .*: continue with --resume/,
    );
    const step = await assertSaved(r.out);
    t.diagnostic(`SIGINT → exit 130 after ${r.latencyMs.toFixed(0)} ms, checkpoint at step ${step}`);
    // And it resumes from there.
    const resumed = titans(...tiny(r.out, '--resume', '--steps', String(step + 2)));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`resuming .* at step ${step} of ${step + 2}`));
  });

  it('SIGINT, then --resume, ends byte-identical to an uninterrupted run', async (t) => {
    const steps = 300;
    const straight = join(root, 'straight');
    const whole = titans(...tiny(straight, '--steps', String(steps), '--checkpoint-every', '1000000'));
    assert.equal(whole.code, 0, whole.stderr);
    const r = await interrupt('interrupted', 'SIGINT', false, steps);
    assert.equal(r.code, 130, r.stderr);
    const stoppedAt = JSON.parse(await readFile(join(r.out, 'checkpoint', 'trainer.json'), 'utf8')).step;
    const resumed = titans(
      ...tiny(r.out, '--resume', '--steps', String(steps), '--checkpoint-every', '1000000'),
    );
    assert.equal(resumed.code, 0, resumed.stderr);
    for (const file of ['model.safetensors', 'optimizer.safetensors']) {
      assert.deepEqual(
        await readFile(join(r.out, 'checkpoint', file)),
        await readFile(join(straight, 'checkpoint', file)),
        `${file} differs after an interruption at step ${stoppedAt}`,
      );
    }
    t.diagnostic(`interrupted at step ${stoppedAt} of ${steps}, resumed: model and optimizer byte-identical`);
  });

  it('SIGTERM saves and exits 143', async (t) => {
    const r = await interrupt('sigterm', 'SIGTERM', false);
    assert.equal(r.code, 143, r.stderr);
    assert.match(r.stderr, /titans: terminated \(SIGTERM\) at step \d+/);
    const step = await assertSaved(r.out);
    t.diagnostic(`SIGTERM → exit 143 after ${r.latencyMs.toFixed(0)} ms, checkpoint at step ${step}`);
  });

  it('Ctrl-C pressed again and again, during the save too, waits for the save to complete', async (t) => {
    const r = await interrupt('sigint-burst', 'SIGINT', true);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /SIGINT: the checkpoint is being written; exiting as soon as it is complete/);
    const step = await assertSaved(r.out);
    const again = await loadModelCheckpoint(join(r.out, 'checkpoint'));
    dispose(again.params);
    t.diagnostic(
      `a signal every 2 ms from the first on: exit 130 after ${r.latencyMs.toFixed(0)} ms, complete checkpoint at step ${step}`,
    );
  });
});

describe('a crash between the two renames of a save', () => {
  it('is recovered by generate and by train --resume, which continue from the checkpoint', async () => {
    const out = await copyRun('renames');
    const ckpt = join(out, 'checkpoint');
    // The on-disk state of issue 15's report: the checkpoint renamed aside, the new one unfinished.
    await rename(ckpt, `${ckpt}.old-${DEAD}-1700000000000-aa`);
    await mkdir(`${ckpt}.tmp-${DEAD}-1700000000001-bb`);
    await writeFile(join(`${ckpt}.tmp-${DEAD}-1700000000001-bb`, 'config.json'), '{');
    const gen = titans('generate', '--checkpoint', out, '--max-tokens', '4', '--threads', '1');
    assert.equal(gen.code, 0, gen.stderr);
    assert.deepEqual((await readdir(out)).sort(), ['checkpoint', 'loss.svg', 'summary.json']);
    await rename(ckpt, `${ckpt}.old-${DEAD}-1700000000002-cc`);
    const resumed = titans(...tiny(out, '--resume', '--steps', '8'));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming .* at step 6 of 8/);
  });
});

describe('never NaN as a result', () => {
  let poisoned: string;
  before(async () => {
    poisoned = await copyRun('nan');
    const ckpt = join(poisoned, 'checkpoint');
    const loaded = await loadModelCheckpoint(ckpt);
    loaded.params.finalNorm.dispose();
    loaded.params.finalNorm = full([loaded.config.dModel], Number.NaN);
    await saveModelCheckpoint(ckpt, loaded);
    dispose(loaded.params);
  });

  it('refuses to load NaN weights, saying how many and where', () => {
    for (const command of [['generate'], ['eval', 'ppl', '--data', data]]) {
      const r = titans(...command, '--checkpoint', poisoned, '--threads', '1');
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /model\.safetensors: 16 non-finite values \(16 NaN, 0 ±Infinity\) in 1 tensor: "finalNorm"/,
      );
      assert.match(r.stderr, /--allow-nonfinite/);
    }
  });

  it('with --allow-nonfinite, generate and eval ppl fail instead of printing NUL bytes or "loss NaN"', () => {
    const gen = titans('generate', '--checkpoint', poisoned, '--allow-nonfinite', '--threads', '1');
    assert.equal(gen.code, 1);
    assert.match(gen.stderr, /the model's logits are not finite/);
    assert.doesNotMatch(gen.stdout, /\0/);
    const ppl = titans(
      'eval',
      'ppl',
      '--checkpoint',
      poisoned,
      '--data',
      data,
      '--allow-nonfinite',
      '--threads',
      '1',
    );
    assert.equal(ppl.code, 1);
    assert.match(ppl.stderr, /the loss on text\.txt is NaN: the model's outputs are not finite/);
    assert.doesNotMatch(ppl.stdout, /NaN/);
  });

  it('eval ppl refuses text too short to score, streamed or not', async () => {
    for (const bytes of ['', 'x']) {
      const file = join(root, `short-${bytes.length}.txt`);
      await writeFile(file, bytes);
      for (const extra of [[], ['--stream']]) {
        const r = titans('eval', 'ppl', '--checkpoint', run, '--data', file, '--threads', '1', ...extra);
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `short-${bytes.length}\\.txt: ${bytes.length} tokens? of text; scoring needs at least 2`,
          ),
        );
      }
    }
  });

  it('a BPE checkpoint without its tokenizer.json is an error, not a byte fallback', async () => {
    const out = join(root, 'bpe');
    const r = titans(...tiny(out, '--steps', '1', '--tokenizer', 'bpe:300', '--seq-len', '8'));
    assert.equal(r.code, 0, r.stderr);
    await rm(join(out, 'checkpoint', 'tokenizer.json'));
    await rm(join(out, 'checkpoint', 'manifest.json')); // else the manifest reports the missing file
    const ppl = titans('eval', 'ppl', '--checkpoint', out, '--data', data, '--threads', '1');
    assert.equal(ppl.code, 1);
    assert.match(
      ppl.stderr,
      /tokenizer\.json: missing, and the model's vocabulary has 300 tokens, not the byte tokenizer's 256/,
    );
  });
});

describe('inputs', () => {
  it('inspect on a directory, a FIFO or /dev/zero is a clear error', async () => {
    const dir = titans('inspect', run);
    assert.equal(dir.code, 1);
    assert.match(
      dir.stderr,
      /is a directory; inspect takes a \.safetensors file \(e\.g\. .*model\.safetensors\)/,
    );
    const fifo = join(root, 'pipe.safetensors');
    execFileSync('mkfifo', [fifo]);
    const r = titans('inspect', fifo);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /pipe\.safetensors: is a FIFO \(named pipe\), not a regular file/);
    const zero = titans('inspect', '/dev/zero');
    assert.match(zero.stderr, /\/dev\/zero: is a character device, not a regular file/);
    const good = titans('inspect', join(run, 'checkpoint', 'model.safetensors'));
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /SHA-256 verified for \d+/);
  });

  it('a checkpoint file replaced by /dev/zero or a FIFO fails at once instead of growing or blocking', async () => {
    const out = await copyRun('devices');
    const weights = join(out, 'checkpoint', 'model.safetensors');
    await rm(weights);
    execFileSync('ln', ['-s', '/dev/zero', weights]);
    const zero = titans('generate', '--checkpoint', out, '--threads', '1');
    assert.equal(zero.code, 1);
    assert.match(zero.stderr, /model\.safetensors: is a character device, not a regular file/);
    await rm(weights);
    execFileSync('mkfifo', [weights]);
    const fifo = titans('generate', '--checkpoint', out, '--threads', '1');
    assert.equal(fifo.code, 1);
    assert.match(fifo.stderr, /model\.safetensors: is a FIFO/);
  });

  it('eval custom refuses empty answers and non-UTF-8 lines', async () => {
    const empty = join(root, 'empty-answer.jsonl');
    await writeFile(empty, '{"context": "The key is 7. ", "question": "The key is ", "answer": ""}\n');
    const r = titans(
      'eval',
      'custom',
      '--checkpoint',
      run,
      '--data',
      empty,
      '--threads',
      '1',
      '--out',
      join(root, 'eval-a'),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /empty-answer\.jsonl:1: field "answer" is empty/);
    const latin = join(root, 'latin1.jsonl');
    await writeFile(latin, Buffer.from('{"context": "caf\xe9", "question": "q", "answer": "a"}\n', 'latin1'));
    const l = titans(
      'eval',
      'custom',
      '--checkpoint',
      run,
      '--data',
      latin,
      '--threads',
      '1',
      '--out',
      join(root, 'eval-b'),
    );
    assert.equal(l.code, 1, l.stderr);
    assert.match(l.stderr, /latin1\.jsonl:1: not valid UTF-8 text/);
  });
});
