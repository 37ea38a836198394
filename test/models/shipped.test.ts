/**
 * The models shipped in models/ load by name and still measure what their model cards say:
 * passkey-mag recalls a pass key planted far beyond its attention window, in RULER's filler and
 * in natural text; sotu-mag's bits per byte on held-out State of the Union text.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { loadText } from '../../src/data/corpus.js';
import {
  evaluateTask,
  Haystack,
  loadModel,
  maxDepthBeyondWindow,
  passkeyTask,
  Rng,
  SHIPPED_MODELS,
  setThreads,
  shallowNeedles,
} from '../../src/index.js';

/** The least recall allowed on 40 examples at 512 (measured 1.00 in filler, 0.975 in text: the card). */
const PASSKEY_FLOOR = 0.9;

let corpus: string;
before(async () => {
  await setThreads(2);
  corpus = (await loadText('builtin:sotu')).text;
});

describe('shipped models', () => {
  it('are the ones in models/, each under 2 MB', async () => {
    const { readdir, stat } = await import('node:fs/promises');
    const dir = new URL('../../../models/', import.meta.url);
    assert.deepEqual((await readdir(dir)).sort(), [...SHIPPED_MODELS].sort());
    for (const name of SHIPPED_MODELS) {
      let bytes = 0;
      for (const f of await readdir(new URL(`${name}/`, dir)))
        bytes += (await stat(new URL(`${name}/${f}`, dir))).size;
      assert.ok(bytes <= 2 * 1024 * 1024, `${name}: ${bytes} bytes`);
    }
  });

  it('passkey-mag recalls a 1-digit key planted beyond its window, in filler and in natural text (≥ 0.9; card: 1.00 and 0.975)', async () => {
    const model = await loadModel('passkey-mag');
    const reach = model.config.layers * model.config.window;
    const haystack = Haystack.fromText(corpus);
    for (const noise of ['filler', 'text'] as const) {
      const base = passkeyTask({ digits: 1, cue: 'recall', noise, haystack });
      const task = shallowNeedles(base, maxDepthBeyondWindow(512, model.config));
      const { results } = await evaluateTask(model.params, model.config, model.tokenizer, task, {
        lengths: [512],
        examples: 40,
        rng: new Rng(7),
        onExample: (e) => assert.ok(e.promptTokens - e.evidence[0]! > reach, 'the key is beyond the window'),
      });
      assert.ok(
        results[0]!.accuracy >= PASSKEY_FLOOR,
        `${noise}: recall ${results[0]!.accuracy} (chance 0.1)`,
      );
    }
    model.dispose();
  });

  it('sotu-mag scores 2.097 bits/byte on the first 32K bytes of the held-out split (card)', async () => {
    const model = await loadModel('sotu-mag');
    const bytes = new TextEncoder().encode(corpus);
    const heldOut = new TextDecoder().decode(bytes.subarray(bytes.length - Math.round(bytes.length * 0.05)));
    const score = await model.score(heldOut.slice(0, 32_769));
    assert.equal(score.tokens, 32_768);
    assert.ok(Math.abs(score.bitsPerByte - 2.0974) < 0.002, `${score.bitsPerByte} bits/byte`);
    model.dispose();
  });
});
