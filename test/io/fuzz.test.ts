/**
 * Fuzz: random damage to a valid training checkpoint folder (headers, data, config.json,
 * tokenizer.json, trainer.json, manifest.json) must end in a clean CheckpointError or in exactly
 * the original data — never a crash, a hang or a silently wrong tensor. Time-bounded here (a few
 * seconds); bench/fuzz-checkpoints.ts runs the same harness for ≥ 10,000 mutations.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import '../../src/index.js';
import {
  LEGACY_PROTECTED_FILES,
  loadSnapshot,
  makeTrainingCheckpoint,
  mutationArbitrary,
  type Outcome,
  tryMutation,
} from '../helpers/checkpoint-fuzz.js';

let root: string;
let original: string;
let expected: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-fuzz-'));
  original = join(root, 'original', 'checkpoint');
  await makeTrainingCheckpoint(original);
  expected = await loadSnapshot(original);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Runs random mutations of `files` of `dir` for about `ms`, and at least 25 (each one to its end:
 * nothing is left running when the test ends), failing on any wrong or crash outcome with the
 * seed to replay it.
 */
async function fuzz(dir: string, want: string, files: readonly string[] | undefined, ms: number) {
  const counts: Record<Outcome, number> = { error: 0, identical: 0, wrong: 0, crash: 0 };
  const seed = Date.now() % 2 ** 31;
  const deadline = performance.now() + ms;
  let runs = 0;
  for (const mutation of fc.sample(mutationArbitrary(files), { seed, numRuns: 20_000 })) {
    if (performance.now() > deadline && runs >= 25) break; // at least 25, however loaded the machine
    const { outcome, detail } = await tryMutation(dir, join(root, `case-${runs}`), mutation, want);
    counts[outcome]++;
    runs++;
    if (outcome === 'wrong' || outcome === 'crash') {
      assert.fail(
        `${outcome} after mutation ${runs} of seed ${seed}, ${JSON.stringify(mutation)}: ${detail}`,
      );
    }
  }
  assert.ok(counts.error > 0, 'damage is reported');
  return `${runs} mutations (seed ${seed}): ${JSON.stringify(counts)}`;
}

describe('checkpoint fuzz', () => {
  it('random damage to any file gives a clean error or exactly the original data', async (t) => {
    t.diagnostic(await fuzz(original, expected, undefined, 3000));
  });

  it('without a manifest (older checkpoints), damage to the tensor files is still caught', async (t) => {
    const legacy = join(root, 'legacy', 'checkpoint');
    await cp(original, legacy, { recursive: true });
    await rm(join(legacy, 'manifest.json'));
    t.diagnostic(await fuzz(legacy, await loadSnapshot(legacy), LEGACY_PROTECTED_FILES, 2000));
  });
});
