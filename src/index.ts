/**
 * titans-ts — the core entry. Runs in Node and in browsers: nothing here imports `node:*`.
 * Node-only parts (files, checkpoints, the CLI) are in `titans-ts/node`.
 */
import { referenceBackend } from './backends/reference/reference.js';
import { registerBackend } from './engine/tensor.js';

registerBackend(referenceBackend);

export * from './engine/index.js';
export { type MemorizeOptions, memorizeRecall } from './eval/memorize.js';
export { formatMemorizeTable, type MemorizeRow, memorizeTable } from './eval/memorize-table.js';
export * from './io/index.js';
export * from './memory/index.js';
export * from './train/index.js';
export { referenceBackend };
