/**
 * A wasm-backend worker thread (Node): instantiates the kernels on the shared memory, then runs
 * the pool's worker loop (pool-protocol.ts) on the control block until the pool quits.
 */
import { workerData } from 'node:worker_threads';
import { instantiateKernels, type WasmMemory, type WasmModule } from './kernels.js';
import { runWorkerLoop } from './pool-protocol.js';

const { module, memory, control, index } = workerData as {
  module: WasmModule;
  memory: WasmMemory;
  control: Int32Array;
  index: number;
};
runWorkerLoop(instantiateKernels(module, memory), control, index);
