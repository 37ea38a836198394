/**
 * titans-ts — the core entry. Runs in Node and in browsers: nothing here imports `node:*`.
 * Node-only parts (files, checkpoints, the CLI) are in `titans-ts/node`.
 */
import { referenceBackend } from './backends/reference/reference.js';
import { createWasmBackend, type WasmBackend } from './backends/wasm/wasm-backend.js';
import { registerBackend, setBackend } from './engine/tensor.js';

registerBackend(referenceBackend);

/**
 * The wasm backend (WebAssembly SIMD, float32), registered and made the default when this
 * runtime supports WebAssembly SIMD and shared memory; null otherwise. Float64 tensors always go
 * to the reference backend, the oracle.
 */
export const wasmBackend: WasmBackend | null = (() => {
  try {
    const backend = createWasmBackend();
    registerBackend(backend);
    setBackend(backend.name);
    return backend;
  } catch {
    return null;
  }
})();

export * from './engine/index.js';
export { type MemorizeOptions, memorizeRecall } from './eval/memorize.js';
export { formatMemorizeTable, type MemorizeRow, memorizeTable } from './eval/memorize-table.js';
export * from './io/index.js';
export * from './memory/index.js';
export * from './train/index.js';
export { referenceBackend };
