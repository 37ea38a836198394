#!/usr/bin/env node
// Copies a trained model into models/<name>/ as the package ships it: config.json (with
// model_type), model.safetensors and tokenizer.json, nothing else (no optimizer or trainer state).
// The model card, models/<name>/README.md, is written by hand from the measurements.
// Usage: node scripts/ship-model.mjs <checkpoint or run folder> models/<name>   (after `npm run build`)
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModel, setThreads } from '../dist/src/index.js';

const [from, to] = process.argv.slice(2);
if (!from || !to) {
  console.error('usage: node scripts/ship-model.mjs <checkpoint> models/<name>');
  process.exit(2);
}
await setThreads(1);
const model = await loadModel(from);
const files = await model.files();
await mkdir(to, { recursive: true });
await writeFile(join(to, 'config.json'), files.config);
await writeFile(join(to, 'model.safetensors'), files.weights);
await writeFile(join(to, 'tokenizer.json'), files.tokenizer);
console.log(`${to}: ${String(model)}; model.safetensors ${files.weights.length} bytes`);
