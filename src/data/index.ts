/**
 * Token data for language-model training: the train/validation split and the batch samplers.
 * Browser-safe (no `node:*`); loading text from files is `loadText` in `titans-ts/node`.
 */
export {
  type SequentialBatch,
  sampleBatch,
  sequentialBatches,
  splitTokens,
  type TokenBatch,
  TokenDataset,
} from './dataset.js';
