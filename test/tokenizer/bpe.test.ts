/**
 * BPE training and encoding: merges derived by hand, the exact vocabulary size, determinism,
 * lossless round trips, compression of English, JSON round trips, and encodings equal to a slow
 * reference encoder that follows the `tokenizers` algorithm literally.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as fc from 'fast-check';
import { loadText } from '../../src/data/corpus.js';
import {
  byteTokenizer,
  type HFTokenizerJSON,
  type Tokenizer,
  tokenizerFromJSON,
  trainBpe,
} from '../../src/tokenizer/index.js';

const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '👩‍👩‍👧‍👦 and 🇫🇷',
    '日本語 中文',
    'e\u0301 n\u0303',
    '\uFEFFbom',
    'a\r\n\tb   c  ',
    "we've it's",
  ),
);

/**
 * The reference encoder: pre-tokenise with GPT-2's regex, then within each pre-token repeatedly
 * merge the leftmost occurrence of the lowest-ranked pair, re-scanning every time (quadratic,
 * obviously correct). Works only from the tokenizer.json.
 */
function referenceEncode(json: HFTokenizerJSON, text: string): number[] {
  const vocab = json.model.vocab;
  const byteChar = new Map(Object.entries(vocab).map(([token, id]) => [id, token])); // ids 0…255 are bytes
  const rank = new Map(json.model.merges.map((merge, r) => [merge, r]));
  const pieces =
    text.match(/'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu) ?? [];
  const ids: number[] = [];
  for (const piece of pieces) {
    const symbols = Array.from(new TextEncoder().encode(piece), (byte) => byteChar.get(byte)!);
    for (;;) {
      let best = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = rank.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && (best < 0 || r < rank.get(`${symbols[best]} ${symbols[best + 1]}`)!)) best = i;
      }
      if (best < 0) break;
      symbols.splice(best, 2, symbols[best]! + symbols[best + 1]!);
    }
    for (const symbol of symbols) ids.push(vocab[symbol]!);
  }
  return ids;
}

describe('trainBpe', () => {
  let english: string; // the first State of the Union addresses (1790–1806), 240 000 characters
  let heldOut: string; // the next ones (1807–1810), not trained on
  let tok: Tokenizer; // trained on `english`, vocabSize 512
  before(async () => {
    const { text } = await loadText('builtin:sotu-small');
    english = text.slice(0, 240_000);
    heldOut = text.slice(240_000);
    tok = trainBpe(english, { vocabSize: 512 });
  });

  it('learns the merges worked out by hand', () => {
    // Pre-tokens: low, Ġlow ×2, Ġlower, Ġlowest. (l,o) and (o,w) tie at 5: the smaller ids win
    // (l=108, o=111). Then lo+w, Ġ+low (4), Ġlow+e (2); every pair left occurs once.
    const small = trainBpe('low low low lower lowest', { vocabSize: 1000 });
    assert.deepEqual(small.toJSON().model.merges, ['l o', 'lo w', 'Ġ low', 'Ġlow e']);
    assert.equal(small.vocabSize, 260);
    assert.deepEqual(Array.from(small.encode(' lower')), [259, 114]);
    // With minFrequency 1 the singletons go too, ties again to the smallest ids: (s,t) = (115,116).
    const all = trainBpe('low low low lower lowest', { vocabSize: 262, minFrequency: 1 });
    assert.deepEqual(all.toJSON().model.merges.slice(4), ['s t', 'Ġlowe r']);
    assert.equal(all.vocabSize, 262);
  });

  it('reaches vocabSize exactly when the text allows', () => {
    assert.equal(tok.vocabSize, 512);
    assert.equal(tok.kind, 'bpe');
    const json = tok.toJSON();
    assert.equal(Object.keys(json.model.vocab).length, 512);
    assert.deepEqual(
      new Set(Object.values(json.model.vocab)),
      new Set(Array.from({ length: 512 }, (_, i) => i)),
    );
    const most = Math.max(...tok.encode(english));
    assert.ok(most > 256 && most < 512, `largest id used: ${most}`);
  });

  it('is deterministic', () => {
    const again = trainBpe(english, { vocabSize: 512 });
    assert.equal(JSON.stringify(again.toJSON()), JSON.stringify(tok.toJSON()));
  });

  it('round-trips any string, including text unlike the training data', () => {
    assert.equal(tok.decode(tok.encode(english)), english);
    fc.assert(fc.property(anyText, (s) => tok.decode(tok.encode(s)) === s));
  });

  it('compresses held-out English', () => {
    const bytes = new TextEncoder().encode(heldOut).length;
    const tokens = tok.encode(heldOut).length;
    assert.ok(tokens < bytes / 1.5, `${tokens} tokens for ${bytes} bytes`);
  });

  it('encodes as the reference encoder does', () => {
    const json = tok.toJSON();
    const sample = english.slice(100_000, 102_000);
    assert.deepEqual(Array.from(tok.encode(sample)), referenceEncode(json, sample));
    fc.assert(
      fc.property(anyText, (s) => {
        assert.deepEqual(Array.from(tok.encode(s)), referenceEncode(json, s));
      }),
    );
  });

  it('toJSON → tokenizerFromJSON encodes identically', () => {
    const loaded = tokenizerFromJSON(JSON.parse(JSON.stringify(tok.toJSON())), 'sotu.json');
    assert.equal(loaded.vocabSize, 512);
    assert.deepEqual(loaded.encode(english.slice(0, 50_000)), tok.encode(english.slice(0, 50_000)));
    fc.assert(fc.property(anyText, (s) => assert.deepEqual(loaded.encode(s), tok.encode(s))));
  });

  it('stays valid and exact on repetitive texts over tiny alphabets', () => {
    const tinyText = fc.string({
      unit: fc.constantFrom('a', 'b', ' ', '\n', 'é'),
      minLength: 1,
      maxLength: 300,
    });
    fc.assert(
      fc.property(
        tinyText,
        fc.integer({ min: 256, max: 320 }),
        fc.integer({ min: 1, max: 3 }),
        (text, size, minFrequency) => {
          const trained = trainBpe(text, { vocabSize: size, minFrequency });
          assert.ok(trained.vocabSize <= size);
          const json = trained.toJSON();
          assert.ok(json.model.merges.length >= trained.vocabSize - 256);
          const loaded = tokenizerFromJSON(json); // unique spellings, merges that name real tokens
          assert.deepEqual(loaded.encode(text), trained.encode(text));
          assert.deepEqual(Array.from(trained.encode(text)), referenceEncode(json, text));
          assert.equal(trained.decode(trained.encode(text)), text);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('with vocabSize 256 is the byte tokenizer', () => {
    const bytes = trainBpe(english.slice(0, 1000), { vocabSize: 256 });
    assert.equal(bytes.kind, 'byte');
    assert.deepEqual(bytes.toJSON(), byteTokenizer().toJSON());
  });

  it('stops at minFrequency and reports progress', () => {
    const seen: [number, number][] = [];
    const rare = trainBpe(english, {
      vocabSize: 100_000,
      minFrequency: 2_000,
      onProgress: (merges, target) => seen.push([merges, target]),
    });
    assert.ok(rare.vocabSize > 256 && rare.vocabSize < 400, `vocabSize ${rare.vocabSize}`);
    assert.deepEqual(
      seen,
      seen.map((_, i) => [i + 1, 100_000 - 256]),
    );
    assert.equal(seen.at(-1)![0], rare.vocabSize - 256);
  });

  it('rejects a vocabSize that is not an integer ≥ 256', () => {
    for (const vocabSize of [255, 0, -1, 300.5, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(() => trainBpe('abc', { vocabSize }), {
        name: 'RangeError',
        message: /vocabSize must be an integer/,
      });
    assert.throws(() => trainBpe('abc', { vocabSize: 300, minFrequency: 0 }), /minFrequency must be ≥ 1/);
  });
});
