/**
 * Test-time memorisation, no outer training: prints recall versus the number of stored pairs
 * for a linear (depth 1) and a deep (depth 2) memory, with and without momentum and forgetting.
 *
 *   npm run build && node dist/examples/memorize.js
 */
import { formatMemorizeTable, memorizeTable } from '../src/index.js';

const started = Date.now();
console.log(
  'writing N random (unit key, value) pairs into a fresh memory (d = 32, 16 passes), then querying the keys…',
);
const table = await memorizeTable({
  onRow: (r) =>
    console.log(
      `  depth ${r.depth}, momentum ${r.momentum ? 'on' : 'off'}, forgetting ${r.forgetting ? 'on' : 'off'}: done`,
    ),
});
console.log(`\n${formatMemorizeTable(table)}\n`);
console.log(
  `recall = fraction of keys whose retrieved value is nearest to its own; chance = 1/N. (${((Date.now() - started) / 1000).toFixed(1)} s)`,
);
