/** The models of SPEC §3–§5: configuration, parameters, forward pass with streaming state, generation. */

export {
  isTitans,
  layerHasMemory,
  type MemoryOptions,
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
export { type GenerateOptions, generate, greedyTokens, pickToken, stateBytes } from './generate.js';
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
  type ModelParams,
  type ModelState,
  modelForward,
  releaseState,
  tokenTensor,
} from './model.js';
export { type LogitsSelector, type ModelStream, modelStream } from './stream.js';
