/**
 * Learning test: a fresh memory, trained only at test time (no outer training), recalls what it
 * was written. Thresholds were measured (seeds 1–4): at N = 32 pairs in d = 32 both depths recall
 * 100%; at N = 128 the deep memory recalls 53–61% against 20–30% for the linear one; with θ = 0
 * (no writes) recall is at chance (3%).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memorizeRecall, withBackend } from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';

for (const backend of backendsUnderTest()) {
  describe(`test-time memorisation on ${backend}`, () => {
    it('recalls (almost) every pair well below capacity, for depth 1 and 2', async () => {
      await withBackend(backend, async () => {
        assert.ok((await memorizeRecall({ pairs: 32, depth: 1, theta: 0.05, eta: 0.5 })) >= 0.97);
        assert.ok((await memorizeRecall({ pairs: 32, depth: 2, theta: 0.02, eta: 0.5 })) >= 0.97);
      });
    });

    it('a deep memory holds more than a linear one (N = 128 pairs in d = 32)', async () => {
      await withBackend(backend, async () => {
        const linear = Math.max(
          await memorizeRecall({ pairs: 128, depth: 1, theta: 0.05, eta: 0.5 }),
          await memorizeRecall({ pairs: 128, depth: 1, theta: 0.1, eta: 0.5 }),
        );
        const deep = await memorizeRecall({ pairs: 128, depth: 2, theta: 0.02, eta: 0.5 });
        assert.ok(deep >= 0.45, `deep memory recall ${deep}`);
        assert.ok(deep >= 1.5 * linear, `deep ${deep} vs linear ${linear}`);
      });
    });

    it('without writes (θ = 0) recall is at chance', async () => {
      await withBackend(backend, async () => {
        assert.ok((await memorizeRecall({ pairs: 32, depth: 2, theta: 0 })) <= 0.1);
      });
    });
  });
}
