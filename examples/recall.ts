/**
 * The memory at work: a pass key planted in natural text, far beyond the attention window, and
 * recalled when asked — then the same question with the memory wiped just before it (attention
 * still sees its window), which shows where the answer came from.
 *
 *   npm run build && node dist/examples/recall.js
 */
import { loadModel } from '../src/index.js';
import { loadText } from '../src/node.js';

const model = await loadModel('passkey-mag');
const reach = model.config.layers * (model.config.window - 1);
const { text } = await loadText('builtin:sotu-small');
const haystack = text.slice(20_000, 21_000).replace(/\s+/g, ' ');
const cut = haystack.indexOf('. ', 150) + 2; // a sentence start near the beginning
const context = `${haystack.slice(0, cut)}The pass key is 4. Remember it. 4 is the pass key. ${haystack.slice(cut)}`;
const question = '\nThe pass key is ';
const distance = model.tokenizer.encode(context.slice(cut)).length;
console.log(`${model}\nthe key is ${distance} tokens before the question; attention reaches ${reach}\n`);

const session = model.session();
await session.read(context + question);
const withMemory = session.nextTokens(3);
session.close();

const wiped = model.session();
await wiped.read(context);
wiped.resetMemory();
await wiped.read(question);
const withoutMemory = wiped.nextTokens(3);
wiped.close();

const show = (top: { text: string; probability: number }[]) =>
  top.map((t) => `${JSON.stringify(t.text)} ${t.probability.toFixed(2)}`).join(', ');
console.log(`with its memory:        ${show(withMemory)}`);
console.log(`memory wiped (window):  ${show(withoutMemory)}`);
model.dispose();
