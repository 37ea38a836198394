/**
 * Inside the memory, token by token: where it is surprised (‖∇ℓ‖, the gradient that writes it),
 * how strongly it writes (θ) and forgets (α). The planted pass key stands out.
 *
 *   npm run build && node dist/examples/inspect.js
 */
import { loadModel, RULER_FILLER } from '../src/index.js';

const model = await loadModel('passkey-mag');
const text = `${RULER_FILLER.repeat(3)}The pass key is 8. Remember it. 8 is the pass key. ${RULER_FILLER.repeat(3)}\nThe pass key is `;
const { tokens, memory } = await model.inspect(text);
for (const layer of memory) {
  // Surprise summed over heads, and the five most surprising tokens in their context.
  const surprise = tokens.map((_, t) => layer.surprise.reduce((a, head) => a + head[t]!, 0));
  const top = [...surprise.keys()].sort((a, b) => surprise[b]! - surprise[a]!).slice(0, 5);
  console.log(`memory of layer ${layer.layer}: the most surprising tokens`);
  for (const t of top.sort((a, b) => a - b)) {
    const around = tokens
      .slice(Math.max(0, t - 12), t + 1)
      .map((x) => x.text)
      .join('');
    const theta = layer.theta.reduce((a, head) => a + head[t]!, 0) / layer.theta.length;
    console.log(
      `  ${String(t).padStart(4)} …${JSON.stringify(around)}  ‖∇ℓ‖ ${surprise[t]!.toFixed(2)}  θ ${theta.toFixed(4)}`,
    );
  }
}
model.dispose();
