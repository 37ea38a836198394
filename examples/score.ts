/**
 * How well a model predicts a text: nats per token, perplexity and bits per byte, read in windows
 * (each from a fresh state, as in training) and as one stream (the memory carried across).
 *
 *   npm run build && node dist/examples/score.js
 */
import { loadModel } from '../src/index.js';
import { loadText } from '../src/node.js';

const model = await loadModel('sotu-mag');
const { text } = await loadText('builtin:sotu-small');
const sample = text.slice(0, 8_000);
for (const mode of ['windowed', 'streamed'] as const) {
  const s = await model.score(sample, { mode, seqLen: 256 });
  console.log(
    `${mode.padEnd(8)}: ${s.tokens} tokens · ${s.loss.toFixed(3)} nats/token · perplexity ${s.perplexity.toFixed(2)} · ${s.bitsPerByte.toFixed(3)} bits/byte`,
  );
}
model.dispose();
