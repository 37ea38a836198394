/**
 * The byte tokenizer and the tokenizer.json format: lossless round trips over arbitrary Unicode,
 * U+FFFD for broken UTF-8, GPT-2's byte-level alphabet, the `tokenizers` schema, a hand-derived
 * reference encoding, and rejection of malformed files with messages naming source and problem.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import {
  byteTokenizer,
  type HFTokenizerJSON,
  TokenizerFormatError,
  tokenizerFromJSON,
} from '../../src/tokenizer/index.js';

/** Strings that stress UTF-8: astral emoji, ZWJ sequences, CJK, combining marks, BOM, NUL, CRLF. */
const trickyStrings = [
  '',
  'hello world',
  '👩‍👩‍👧‍👦 family, 🇫🇷 flag, 👍🏽 thumbs',
  '日本語のテキストと中文文本',
  'e\u0301 a\u0308\u0323 combining ñ vs n\u0303',
  '\uFEFFstarts with a byte-order mark',
  'nul \u0000 and del \u007f and nbsp \u00a0 soft\u00adhyphen',
  'line\r\nbreaks\n\n\ttabs   spaces   ',
  "it's we've I'll they'd you're",
  '\u{10FFFF}\u{1F600}\u{E0001}',
];

/** Any Unicode text (whole code points) or grapheme clusters, plus the tricky strings. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(...trickyStrings),
);

const withoutMerges = (): HFTokenizerJSON => byteTokenizer().toJSON();

describe('byteTokenizer', () => {
  const tok = byteTokenizer();

  it('maps text to its UTF-8 bytes', () => {
    assert.equal(tok.kind, 'byte');
    assert.equal(tok.vocabSize, 256);
    assert.deepEqual(Array.from(tok.encode('A€ é')), [65, 226, 130, 172, 32, 195, 169]);
    assert.deepEqual(Array.from(tok.encode('')), []);
    assert.deepEqual(tok.encode('😀 日本'), new Int32Array(new TextEncoder().encode('😀 日本')));
  });

  it('decode(encode(s)) === s for any Unicode string', () => {
    for (const s of trickyStrings) assert.equal(tok.decode(tok.encode(s)), s);
    fc.assert(fc.property(anyText, (s) => tok.decode(tok.encode(s)) === s));
  });

  it('decodes broken UTF-8 to U+FFFD instead of throwing', () => {
    assert.equal(tok.decode([0xff]), '\uFFFD');
    assert.equal(tok.decode([0x61, 0xc0, 0x62]), 'a\uFFFDb'); // a lead byte that cannot start a character
    assert.equal(tok.decode([0xe2, 0x82]), '\uFFFD'); // '€' cut short
    assert.equal(tok.decode([0x80, 0x41]), '\uFFFDA'); // a stray continuation byte
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }), (bytes) => {
        const text = tok.decode(bytes); // never throws
        assert.equal(tok.decode(tok.encode(text)), text); // and what it gives is ordinary text
      }),
    );
  });

  it('rejects ids outside the vocabulary', () => {
    assert.throws(() => tok.decode([65, 256]), /id 256 at position 1 is not in the vocabulary/);
    assert.throws(() => tok.decode([-1]), RangeError);
  });
});

describe('toJSON (the tokenizers schema)', () => {
  it('writes byte-level BPE with every field tokenizers expects', () => {
    const json = JSON.parse(JSON.stringify(byteTokenizer().toJSON())) as HFTokenizerJSON;
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    const { vocab, ...model } = json.model;
    assert.deepEqual(
      { ...json, model },
      {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: [],
        normalizer: null,
        pre_tokenizer: byteLevel,
        post_processor: null,
        decoder: byteLevel,
        model: {
          type: 'BPE',
          dropout: null,
          unk_token: null,
          continuing_subword_prefix: null,
          end_of_word_suffix: null,
          fuse_unk: false,
          byte_fallback: false,
          ignore_merges: false,
          merges: [],
        },
      },
    );
    assert.equal(Object.keys(vocab).length, 256);
  });

  it("spells byte b with GPT-2's byte-level character and gives it id b", () => {
    const { vocab } = byteTokenizer().toJSON().model;
    const charOf = new Map(Object.entries(vocab).map(([char, id]) => [id, char]));
    // Printable Latin-1 stands for itself; the other bytes move, in order, to U+0100 onwards.
    assert.equal(charOf.get(0x21), '!');
    assert.equal(charOf.get(0x7e), '~');
    assert.equal(charOf.get(0xe9), 'é');
    assert.equal(charOf.get(0xff), 'ÿ');
    assert.equal(charOf.get(0x00), '\u0100');
    assert.equal(charOf.get(0x0a), 'Ċ'); // newline, as in GPT-2's vocab
    assert.equal(charOf.get(0x20), 'Ġ'); // space
    assert.equal(charOf.get(0x7f), '\u0121'); // the 34th moved byte
    assert.equal(charOf.get(0xad), 'Ń'); // soft hyphen, the last one moved
    for (let b = 0; b < 256; b++) assert.equal([...charOf.get(b)!].length, 1, `byte ${b}`);
  });
});

describe('tokenizerFromJSON', () => {
  it('reads back what toJSON wrote, as an object or as text, encoding identically', () => {
    const tok = byteTokenizer();
    const fromObject = tokenizerFromJSON(tok.toJSON());
    const fromText = tokenizerFromJSON(JSON.stringify(tok.toJSON()), 'text');
    assert.equal(fromObject.kind, 'byte');
    assert.equal(fromObject.vocabSize, 256);
    fc.assert(
      fc.property(anyText, (s) => {
        assert.deepEqual(fromObject.encode(s), tok.encode(s));
        assert.deepEqual(fromText.encode(s), tok.encode(s));
      }),
      { numRuns: 50 },
    );
  });

  it('applies merges lowest rank first, leftmost first, as tokenizers does', () => {
    // A hand-made vocabulary where "abc" is reachable two ways. In "abcabc": rank 0 gives
    // a·bc·a·bc; the best pair is then (a, bc), rank 4, at the left → abc·a·bc; now (abc, a),
    // rank 3, beats the second (a, bc) → abca·bc. (Verified against `tokenizers` 0.23.)
    const json = withoutMerges();
    ['bc', 'ab', 'abc', 'abca'].forEach((token, i) => {
      json.model.vocab[token] = 256 + i;
    });
    json.model.merges = ['b c', 'a b', 'ab c', 'abc a', 'a bc'];
    const tok = tokenizerFromJSON(json, 'hand-made');
    assert.equal(tok.kind, 'bpe');
    assert.equal(tok.vocabSize, 260);
    assert.deepEqual(Array.from(tok.encode('abcabc')), [259, 256]);
    assert.deepEqual(Array.from(tok.encode('ababcbc')), [257, 258, 256]);
    assert.deepEqual(Array.from(tok.encode('aabcc abc')), [97, 258, 99, 32, 258]); // " abc" is Ġ + abc
    assert.equal(tok.decode([259, 256]), 'abcabc');
    // Newer tokenizers files write each merge as a pair of strings.
    const pairs = { ...json, model: { ...json.model, merges: json.model.merges.map((m) => m.split(' ')) } };
    assert.deepEqual(tokenizerFromJSON(pairs).encode('abcabc'), tok.encode('abcabc'));
  });

  /** Asserts that `json` is rejected with a TokenizerFormatError naming `source` and `problem`. */
  function assertRejected(json: unknown, problem: RegExp): void {
    const source = 'run-7/tokenizer.json';
    assert.throws(
      () => tokenizerFromJSON(json, source),
      (error: unknown) => {
        assert.ok(
          error instanceof TokenizerFormatError,
          `expected TokenizerFormatError, got ${String(error)}`,
        );
        assert.equal(error.source, source);
        assert.ok(error.message.startsWith(`${source}: `), error.message);
        assert.match(error.message, problem);
        return true;
      },
    );
  }

  /** A valid file with one change made by `edit`. */
  function edited(edit: (json: HFTokenizerJSON & Record<string, unknown>) => void): unknown {
    const json = withoutMerges() as HFTokenizerJSON & Record<string, unknown>;
    json.model.vocab.hi = 256;
    json.model.merges = ['h i'];
    edit(json);
    return json;
  }

  it('accepts the base case used below', () => {
    assert.equal(tokenizerFromJSON(edited(() => {})).encode('hi').length, 1);
  });

  it('rejects malformed files, naming the problem', () => {
    assertRejected(42, /expected a tokenizer.json object, got 42/);
    assertRejected('{"model": ', /not valid JSON/);
    assertRejected(
      edited((j) => {
        (j.model as Record<string, unknown>).type = 'WordPiece';
      }),
      /model.type must be "BPE", got "WordPiece"/,
    );
    assertRejected(
      edited((j) => {
        delete (j.model as Partial<HFTokenizerJSON['model']>).vocab;
      }),
      /model.vocab is missing/,
    );
    assertRejected(
      edited((j) => {
        delete (j as Partial<HFTokenizerJSON>).model;
      }),
      /model is missing/,
    );
    assertRejected(
      edited((j) => {
        delete (j.model as Partial<HFTokenizerJSON['model']>).merges;
      }),
      /model.merges is missing/,
    );
    assertRejected(
      edited((j) => {
        j.model.merges.push('h zz');
      }),
      /model.merges\[1\] \("h zz"\) references unknown token "zz"/,
    );
    assertRejected(
      edited((j) => {
        j.model.merges.push('i h');
      }),
      /model.merges\[1\] \("i h"\) makes "ih", which is not in model.vocab/,
    );
    assertRejected(
      edited((j) => {
        j.model.merges.push('h i');
      }),
      /model.merges\[1\] repeats model.merges\[0\]/,
    );
    assertRejected(
      edited((j) => {
        j.model.merges.push('h i x');
      }),
      /model.merges\[1\] must be "left right"/,
    );
    assertRejected(
      edited((j) => {
        j.model.vocab.hi = 65;
      }),
      /duplicate id 65, used by "A" and "hi"|duplicate id 65, used by "hi" and "A"/,
    );
    assertRejected(
      edited((j) => {
        j.model.vocab.hi = 300;
      }),
      /model.vocab\["hi"\] is 300; ids must be the integers 0…256/,
    );
    assertRejected(
      edited((j) => {
        delete j.model.vocab.Ġ;
      }),
      /lacks the token for byte 0x20 \("Ġ"\)/,
    );
    assertRejected(
      edited((j) => {
        j.model.vocab['a b'] = 257;
      }),
      /token "a b" is not spelled in the byte-level alphabet/,
    );
    assertRejected(
      edited((j) => {
        j.added_tokens = [{ id: 256, content: '<|endoftext|>' }] as unknown as [];
      }),
      /added_tokens must be empty/,
    );
    assertRejected(
      edited((j) => {
        j.pre_tokenizer.add_prefix_space = true;
      }),
      /pre_tokenizer.add_prefix_space must be false/,
    );
    assertRejected(
      edited((j) => {
        j.pre_tokenizer = { type: 'Whitespace' } as unknown as HFTokenizerJSON['pre_tokenizer'];
      }),
      /pre_tokenizer must be ByteLevel, got \{"type":"Whitespace"\}/,
    );
    assertRejected(
      edited((j) => {
        j.normalizer = { type: 'NFC' } as unknown as null;
      }),
      /normalizer must be null/,
    );
  });
});
