/**
 * A wasm-backend Web Worker (module worker, started by threads-web.ts): receives
 * { module, memory, control, index } in its first message, instantiates the kernels on the shared
 * memory, posts 'ready', then runs the pool's worker loop (pool-protocol.ts) on the control block
 * until the pool quits. A worker may block in Atomics.wait, so the loop is the same as in Node.
 * Browser-safe: no `node:*` imports.
 */
import { instantiateKernels, type WasmMemory, type WasmModule } from './kernels.js';
import { runWorkerLoop } from './pool-protocol.js';

/** The dedicated worker's global scope (declared here: the package compiles without the DOM lib). */
declare const self: {
  postMessage(message: unknown): void;
  addEventListener(type: 'message' | 'messageerror', listener: (event: { data: unknown }) => void): void;
};

interface StartMessage {
  module: WasmModule;
  memory: WasmMemory;
  control: Int32Array;
  index: number;
}

let started = false;
self.addEventListener('messageerror', () => {
  // the start message could not be deserialised (shared memory refused by this context)
  self.postMessage({ error: 'the start message could not be received (shared memory refused?)' });
});
self.addEventListener('message', (event) => {
  if (started) return;
  started = true;
  const { module, memory, control, index } = event.data as StartMessage;
  let kernels: ReturnType<typeof instantiateKernels>;
  try {
    if (!(memory.buffer instanceof SharedArrayBuffer)) throw new Error('the memory arrived unshared');
    kernels = instantiateKernels(module, memory);
  } catch (e) {
    self.postMessage({ error: String((e as Error)?.message ?? e) });
    return;
  }
  self.postMessage('ready');
  runWorkerLoop(kernels, control, index);
  self.postMessage('quit');
});
