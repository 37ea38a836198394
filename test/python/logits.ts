/**
 * Logits of a checkpoint as titans-ts computes them, for the twin's round-trip tests
 * (python/tests/test_roundtrip.py): loads the checkpoint with `loadModelCheckpoint`, runs
 * `modelForward` on the token rows given, and prints {"shape": [B, T, V], "logits": [...]} as JSON.
 *
 *   node dist/test/python/logits.js <checkpoint dir> '<[[ids…], …]>' [float32|float64]
 *
 * float32 (the default) computes on the default backend (wasm where available), as `titans
 * generate` does; float64 on the reference backend.
 */
import { modelForward, noGrad, tokenTensor } from '../../src/index.js';
import { loadModelCheckpoint } from '../../src/node.js';

const [dir, rowsText, dtype = 'float32'] = process.argv.slice(2);
if (!dir || !rowsText || (dtype !== 'float32' && dtype !== 'float64')) {
  console.error("usage: node dist/test/python/logits.js <checkpoint dir> '<[[ids…], …]>' [float32|float64]");
  process.exit(2);
}
const rows = JSON.parse(rowsText) as number[][];
const { config, params } = await loadModelCheckpoint(dir, { dtype });
const T = rows[0]!.length;
const logits = noGrad(() => modelForward(params, config, tokenTensor(rows.flat(), rows.length, T)).logits);
const values = Array.from(await logits.data());
process.stdout.write(`${JSON.stringify({ shape: [rows.length, T, config.vocabSize], logits: values })}\n`);
