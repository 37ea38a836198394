/** The models of SPEC §3–§5: configuration, parameters, forward pass with streaming state, generation. */

export {
  type ConfigFileTags,
  configFile,
  isTitans,
  layerHasMemory,
  type MemoryOptions,
  MODEL_TYPE,
  MODEL_VARIANTS,
  type ModelVariant,
  memoryLayerConfigOf,
  resolveConfig,
  type TitansConfig,
  type TitansConfigInput,
  usesMemory,
  validateConfig,
} from './config.js';
export { createDecoder, type TokenDecoder } from './decode.js';
export {
  decodeTokens,
  feedAndReadLast,
  feedToken,
  type GenerateOptions,
  type GenerateResult,
  generate,
  greedyTokens,
  makeSampler,
  pickToken,
  type Sampler,
  type SamplingOptions,
  stateBytes,
} from './generate.js';
export {
  type BlockKind,
  type BlockParams,
  type BlockState,
  blockKind,
  countParameters,
  type ForwardOptions,
  initialModelState,
  initModel,
  type MacState,
  type MemoryObserver,
  type ModelParams,
  type ModelState,
  modelForward,
  releaseState,
  tokenTensor,
} from './model.js';
export {
  checkModelSize,
  DEFAULT_MAX_MODEL_BYTES,
  estimatedBytes,
  type ModelSizeOptions,
  ModelTooLargeError,
  parameterCount,
  type TrainingShape,
} from './resources.js';
export { type LogitsSelector, type ModelStream, modelStream } from './stream.js';
