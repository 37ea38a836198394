/**
 * A conversation's memory saved to disk and resumed: a session reads a text, its state (the
 * memory's weights and momentum, the attention caches) is written to a file, and a new session
 * restored from that file continues exactly where the first one would have.
 *
 *   npm run build && node dist/examples/session.js
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../src/index.js';

const model = await loadModel('sotu-mag');
const greedy = { maxNewTokens: 60, temperature: 0 };
const file = join(tmpdir(), `titans-session-${process.pid}.state`);

const session = model.session();
await session.read('Fellow-Citizens of the Senate and House of Representatives: ');
const first = await session.generate('The state of the Union', greedy);
await writeFile(file, await session.saveState());
const next = await session.generate(greedy);
session.close();

const resumed = model.session(await readFile(file));
const again = await resumed.generate(greedy);
console.log(`after ${resumed.position} tokens, state file ${(await readFile(file)).length} bytes`);
resumed.close();
await rm(file);

console.log(`first:   ${JSON.stringify(first)}`);
console.log(`next:    ${JSON.stringify(next)}`);
console.log(`resumed: ${JSON.stringify(again)}`);
console.log(next === again ? 'the resumed session continues exactly' : 'MISMATCH');
model.dispose();
if (next !== again) process.exit(1);
