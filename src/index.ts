/**
 * titans-ts — the core entry. Runs in Node and in browsers: nothing here imports `node:*`.
 * Node-only parts (files, checkpoints, the CLI) are in `titans-ts/node`.
 */
import { referenceBackend } from './backends/reference/reference.js';
import { compileKernelsAsync } from './backends/wasm/kernels.js';
import { createWasmBackend, type WasmBackend } from './backends/wasm/wasm-backend.js';
import { registerBackend, setBackend } from './engine/tensor.js';

registerBackend(referenceBackend);

function installWasm(): WasmBackend | null {
  try {
    const backend = createWasmBackend();
    registerBackend(backend);
    setBackend(backend.name);
    return backend;
  } catch {
    return null;
  }
}

/**
 * The wasm backend (WebAssembly SIMD, float32), registered and made the default at import where
 * the runtime supports WebAssembly SIMD and shared memory and may compile synchronously (Node,
 * workers); null otherwise — on a browser's main thread call `await loadWasmBackend()`. Float64
 * tensors always go to the reference backend, the oracle.
 */
export let wasmBackend: WasmBackend | null = installWasm();

/**
 * Makes sure the wasm backend is registered (compiling asynchronously where a synchronous compile
 * is refused) and returns it; null where WebAssembly SIMD or shared memory is unavailable (in a
 * browser, shared memory needs cross-origin isolation).
 * @example await loadWasmBackend(); // then float32 tensors run on wasm
 */
export async function loadWasmBackend(): Promise<WasmBackend | null> {
  if (wasmBackend) return wasmBackend;
  try {
    await compileKernelsAsync();
  } catch {
    return null;
  }
  wasmBackend = installWasm();
  return wasmBackend;
}

export * from './api/index.js';
export { enableWasmWorkers } from './backends/wasm/threads-web.js';
export {
  type LoadWebGpuOptions,
  loadWebGpuBackend,
  type WebGpuBackend,
  type WebGpuBackendOptions,
  type WebGpuEntry,
} from './backends/webgpu/load.js';
export * from './data/index.js';
export * from './engine/index.js';
export * from './eval/longcontext.js';
export { type MemorizeOptions, memorizeRecall } from './eval/memorize.js';
export { formatMemorizeTable, type MemorizeRow, memorizeTable } from './eval/memorize-table.js';
export { predictedBytes, type ScoreOptions, type TextLoss, textLoss } from './eval/perplexity.js';
export * from './eval/tasks/index.js';
export * from './io/index.js';
export * from './memory/index.js';
export * from './models/index.js';
export * from './report/index.js';
export * from './tokenizer/index.js';
export * from './train/index.js';
export { referenceBackend };
