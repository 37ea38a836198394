/** The tensor engine: tensors, ops, autodiff, random numbers and the backend interface. */
export { grad, valueAndGrad, vjp } from './autodiff.js';
export {
  type ActivationFn,
  type AttentionParams,
  type Backend,
  type BackendBuffer,
  type BinaryOp,
  type FusedAttention,
  type FusedMemoryScan,
  type MemoryScanBuffers,
  type MemoryScanParams,
  memoryScanOutputShapes,
  type ReduceOp,
  type UnaryOp,
} from './backend.js';
export { type CustomOpSpec, customOp } from './custom.js';
export type { DType, FloatDType, TypedArray } from './dtype.js';
export * from './ops/attention.js';
export * from './ops/blocks.js';
export * from './ops/create.js';
export * from './ops/elementwise.js';
export * from './ops/kv-cache.js';
export * from './ops/matmul.js';
export * from './ops/nn.js';
export * from './ops/optim.js';
export * from './ops/reduce.js';
export * from './ops/scan.js';
export * from './ops/shape.js';
export { Rng } from './random.js';
export type { Shape } from './shape.js';
export { noGrad } from './tape.js';
export {
  dispose,
  getBackend,
  keep,
  listBackends,
  memory,
  registerBackend,
  setBackend,
  Tensor,
  tidy,
  withBackend,
} from './tensor.js';
export {
  flattenTree,
  forEachLeaf,
  isContainer,
  mapLeaves,
  mapLeavesWith,
  mapTensors,
  type TensorTree,
  tensorLeaves,
  unflattenInto,
} from './tree.js';
