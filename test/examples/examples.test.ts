/**
 * Every script in examples/ runs to the end and prints what it promises.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../examples/', import.meta.url));

/** What each example must print (a regular expression per line that must appear). */
const EXPECTED: Record<string, RegExp[]> = {
  'generate.js': [/^TitansModel\(mag, 174,540 parameters/m, /^\(160 characters\)$/m],
  'inspect.js': [/^memory of layer 0: the most surprising tokens$/m, /‖∇ℓ‖ \d/],
  'memorize.js': [/\| depth \| momentum \| forgetting \|/, /chance = 1\/N/],
  'recall.js': [/tokens before the question; attention reaches 62/, /^with its memory: {8}"4" /m],
  'score.js': [/^windowed: 7999 tokens · \d\.\d{3} nats\/token/m, /^streamed: 7999 tokens/m],
  'session.js': [/^the resumed session continues exactly$/m],
  'tensors.js': [
    /f\(a\) = 54; df\/da =\nTensor\(float32 \[2, 2\] on \w+\)\n\[\[7, 11\],\n \[9, 13\]\]/,
    /a ragged array is refused/,
  ],
  'train.js': [/^step 40\/40 · loss \d/m, /^saved and loaded: TitansModel\(mag, 14,396 parameters/m],
};

describe('examples', () => {
  const scripts = readdirSync(dir).filter((f) => f.endsWith('.js'));
  it('every example has its expectations here', () => {
    assert.deepEqual(scripts.sort(), Object.keys(EXPECTED).sort());
  });
  for (const script of scripts) {
    it(`examples/${script.replace(/\.js$/, '.ts')} runs`, () => {
      const r = spawnSync(process.execPath, [`${dir}${script}`], {
        encoding: 'utf8',
        timeout: 300_000,
        env: { ...process.env, CI: '1' },
      });
      assert.equal(r.status, 0, `${script} failed:\n${r.stderr}`);
      for (const want of EXPECTED[script] ?? []) assert.match(r.stdout, want, script);
    });
  }
});
