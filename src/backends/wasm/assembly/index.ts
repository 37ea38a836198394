// Entry point of the WebAssembly kernels: one module, one file per kernel family.
export * from './matmul';
export * from './attention';
export * from './elementwise';
export * from './memory';
export * from './optim';
export * from './decode';
export * from './blocks';
export * from './memory-read';
