/**
 * The TypeScript SHA-256 of the browser-safe core against node:crypto: the FIPS 180-4 examples,
 * every length around the padding boundaries, chunked updates, and a megabyte of random bytes.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Sha256, sha256Hex } from '../../src/io/sha256.js';

const native = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('sha256Hex', () => {
  it('gives the FIPS 180-4 example digests', () => {
    const text = (s: string) => new TextEncoder().encode(s);
    assert.equal(sha256Hex(text('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(
      sha256Hex(text('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
    assert.equal(
      sha256Hex(new Uint8Array(0)),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('agrees with node:crypto at every length from 0 to 300 bytes (all padding cases)', () => {
    const bytes = randomBytes(300);
    for (let n = 0; n <= 300; n++)
      assert.equal(sha256Hex(bytes.subarray(0, n)), native(bytes.subarray(0, n)), `length ${n}`);
  });

  it('agrees with node:crypto on a megabyte, and whatever the chunking of the updates (property)', () => {
    const big = randomBytes(1 << 20);
    assert.equal(sha256Hex(big), native(big));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.array(fc.nat({ max: 400 }), { maxLength: 6 }),
        (data, cuts) => {
          const hash = new Sha256();
          let at = 0;
          for (const cut of [...cuts].sort((a, b) => a - b)) {
            const end = Math.min(cut, data.length);
            if (end < at) continue;
            hash.update(data.subarray(at, end));
            at = end;
          }
          hash.update(data.subarray(at));
          assert.equal(hash.hex(), native(data));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses to be used after it is finished', () => {
    const hash = new Sha256().update(new Uint8Array([1]));
    hash.hex();
    assert.throws(() => hash.hex(), /twice/);
    assert.throws(() => hash.update(new Uint8Array(1)), /after hex/);
  });
});
