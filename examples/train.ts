/**
 * Training in one call: the tiny preset on a text, with progress; then save, load it back, and
 * generate. (Minutes on a laptop for a real run: raise `steps`.)
 *
 *   npm run build && node dist/examples/train.js
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, train } from '../src/index.js';
import { loadText } from '../src/node.js';

const { text } = await loadText('builtin:sotu-small');
const model = await train({
  preset: 'tiny',
  data: text,
  steps: 40,
  onProgress: (p) => {
    if (p.step % 10 === 0)
      console.log(
        `step ${p.step}/${p.steps} · loss ${p.loss.toFixed(3)} · ${Math.round(p.tokensPerSecond)} tokens/s`,
      );
  },
});
const dir = join(tmpdir(), `titans-example-${process.pid}`);
await model.save(dir);
const loaded = await loadModel(dir);
console.log(`saved and loaded: ${loaded}`);
console.log(JSON.stringify(await loaded.generate('The ', { maxNewTokens: 40, seed: 3 })));
await rm(dir, { recursive: true, force: true });
model.dispose();
loaded.dispose();
