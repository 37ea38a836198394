/**
 * The high-level API: load or train a model, generate text (streamed), read long documents in a
 * session whose memory persists (and save it), score a text, inspect the memory. Browser-safe.
 * The low-level API (tensors, models, training loop) stays available beside it.
 */
export type { Inspection, MemoryTrace } from './inspect.js';
export {
  type BytesSource,
  type CheckpointFiles,
  type FileContent,
  loadModel,
  type ModelLoadOptions,
  type ModelSource,
  modelFromFiles,
  SHIPPED_MODELS,
} from './load.js';
export { type ModelFiles, type TextScore, TitansModel } from './model.js';
export { setThreads } from './runtime.js';
export { type GenerationOptions, Session } from './session.js';
export { STATE_FORMAT, stateFromBytes, stateToBytes } from './state.js';
export { TextStream } from './text.js';
export { loadTrainPreset, type TrainPreset, type TrainProgress, type TrainRequest, train } from './train.js';
