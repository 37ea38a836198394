/**
 * Tokenisation for language models: the byte tokenizer, byte-level BPE training, and the
 * HuggingFace `tokenizer.json` format. Browser-safe (no `node:*`).
 */
export { type TrainBpeOptions, trainBpe } from './bpe.js';
export {
  byteTokenizer,
  type HFByteLevel,
  type HFTokenizerJSON,
  type Tokenizer,
  TokenizerFormatError,
  tokenizerFromJSON,
} from './tokenizer.js';
