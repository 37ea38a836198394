/**
 * Loading text: UTF-8 files, clear errors for missing files, directories and bad bytes, and the
 * built-in State of the Union corpus (chronological, deterministic, the small one a prefix).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadText } from '../../src/data/corpus.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'titans-corpus-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const utf8Bytes = (text: string): number => new TextEncoder().encode(text).length;

describe('loadText from a file', () => {
  it('reads UTF-8 text and names it after the file', async () => {
    const path = join(root, 'notes.txt');
    const text = 'Grüße, 世界! 🎉\nsecond line\n';
    await writeFile(path, `\uFEFF${text}`); // a byte-order mark is not part of the text
    assert.deepEqual(await loadText(path), { text, name: 'notes.txt' });
  });

  it('fails clearly on a missing file, a directory and bytes that are not UTF-8', async () => {
    const missing = join(root, 'nope.txt');
    await assert.rejects(loadText(missing), { message: `loadText: no such file: ${missing}` });
    await assert.rejects(loadText(root), {
      message: `loadText: ${root} is a directory; expected a UTF-8 text file`,
    });
    const latin1 = join(root, 'latin1.txt');
    await writeFile(latin1, Uint8Array.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x6f, 0x6b])); // "café ok" in Latin-1
    await assert.rejects(loadText(latin1), {
      message: `loadText: ${latin1} is not valid UTF-8 text (first bad byte at offset 3)`,
    });
    const surrogate = join(root, 'surrogate.txt');
    await writeFile(surrogate, Uint8Array.from([0x61, 0x62, 0xed, 0xa0, 0x80])); // an encoded lone surrogate
    await assert.rejects(
      loadText(surrogate),
      /surrogate.txt is not valid UTF-8 text \(first bad byte at offset 2\)/,
    );
  });
});

describe('loadText builtin:sotu', () => {
  it('loads all addresses, oldest first, separated by blank lines', async () => {
    const { text, name } = await loadText('builtin:sotu');
    assert.equal(name, 'sotu');
    assert.equal(utf8Bytes(text), 10_761_647);
    assert.ok(text.startsWith('Fellow-Citizens of the Senate and House of Representatives:'));
    assert.ok(text.endsWith('Thank you for your patience. (Applause.)\n'));
    assert.equal(text.split('\n\n').length, 233);
    // 1953 and 1961 each have two addresses: the outgoing president spoke first.
    const truman1953 = text.indexOf(
      'This is the eighth such report that, as President, I have been privileged',
    );
    const eisenhower1953 = text.indexOf('Members of the Eighty-third Congress: I welcome the honor');
    assert.ok(truman1953 > 0 && truman1953 < eisenhower1953);
  });

  it('is deterministic, and sotu-small is its first ~300 KB of whole addresses', async () => {
    const small = await loadText('builtin:sotu-small');
    assert.equal(small.name, 'sotu-small');
    assert.equal(utf8Bytes(small.text), 286_266);
    assert.equal((await loadText('builtin:sotu-small')).text, small.text);
    const full = (await loadText('builtin:sotu')).text;
    assert.ok(full.startsWith(small.text));
    assert.equal(full[small.text.length], '\n'); // the next address follows a blank line
  });

  it('names the built-ins when asked for an unknown one', async () => {
    await assert.rejects(
      loadText('builtin:shakespeare'),
      /unknown built-in corpus "builtin:shakespeare"; choose one of builtin:sotu, builtin:sotu-small/,
    );
  });
});
