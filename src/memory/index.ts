/** The neural long-term memory (SPEC §1–§2). */

export {
  causalConv,
  defaultMemoryLayerConfig,
  initialMemoryLayerState,
  initMemoryLayer,
  type MemoryLayerConfig,
  type MemoryLayerParams,
  type MemoryLayerState,
  type MemoryReadInputs,
  memoryLayer,
  memoryRead,
  memoryReadInputs,
  memoryReadWith,
  primedMemoryLayerState,
  validateMemoryLayerConfig,
} from './layer.js';
export { type MemoryActivation, memoryForward, memoryGradientFactors } from './memory-mlp.js';
export {
  gateProducts,
  type MemoryScanInputs,
  type MemoryScanOptions,
  type MemoryState,
  memoryScan,
  sliceTokens,
} from './scan.js';
export { memoryScanReference } from './scan-reference.js';
