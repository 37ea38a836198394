/**
 * Text from a shipped model, streamed as it is generated: the callback form and the
 * async-iterator form. sotu-mag is a small byte-level language model of the State of the Union
 * addresses (see models/sotu-mag/README.md).
 *
 *   npm run build && node dist/examples/generate.js
 */
import { loadModel } from '../src/index.js';

const model = await loadModel('sotu-mag');
console.log(`${model}\n`);

// 1. Resolve to the whole text; onText receives it piece by piece (never half a character).
process.stdout.write('The Congress');
const text = await model.generate('The Congress', {
  maxNewTokens: 160,
  temperature: 0.7,
  topP: 0.9,
  repetitionPenalty: 1.1,
  seed: 1,
  onText: (piece) => process.stdout.write(piece),
});
console.log(`\n\n(${text.length} characters)\n`);

// 2. The same as an async iterator, stopping at the first full stop.
process.stdout.write('Our Nation');
for await (const piece of model.stream('Our Nation', { maxNewTokens: 200, seed: 2, stop: '.' }))
  process.stdout.write(piece);
console.log('.');
model.dispose();
