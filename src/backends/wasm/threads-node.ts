/**
 * Worker threads for the wasm backend in Node (worker_threads). Every worker instantiates the
 * same kernel module on the same shared memory; a product's rows (or the heads of a memory scan)
 * are split between the workers and the calling thread. The control block, the workers' loop and
 * the calling thread's half are in pool-protocol.ts (shared with the browser pool, threads-web.ts).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { blockUntilDone, controlWords, createPoolClient, singleThreadPool } from './pool-protocol.js';
import type { WasmBackend, WasmThreadPool } from './wasm-backend.js';

/**
 * Starts `threads − 1` workers (the calling thread is the last one) and attaches them to the
 * backend; products of at least `minFlops` are split across all threads.
 *
 * @example
 * import { wasmBackend } from 'titans-ts';
 * import { enableWasmThreads } from 'titans-ts/node';
 * enableWasmThreads(wasmBackend!, 2);
 */
export function enableWasmThreads(
  backend: WasmBackend,
  threads = availableParallelism(),
  minFlops = 2e6,
): WasmThreadPool {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`enableWasmThreads: threads must be an integer ≥ 1, got ${threads}`);
  }
  backend.threadPool?.terminate();
  if (threads === 1) {
    backend.setThreadPool(null);
    return singleThreadPool();
  }
  const control = new Int32Array(new SharedArrayBuffer(4 * controlWords(threads)));
  const pool: Worker[] = [];
  for (let w = 0; w < threads - 1; w++) {
    const worker = new Worker(new URL('./worker-node.js', import.meta.url), {
      workerData: { module: backend.module, memory: backend.memory, control, index: w },
    });
    worker.unref(); // idle workers must not keep the process alive
    pool.push(worker);
  }
  // Workers that have not started yet still see the first job: it is SEQ = 1 on a new block.
  const threadPool = createPoolClient(backend, control, threads, blockUntilDone, () => {
    for (const worker of pool) void worker.terminate();
  });
  backend.setThreadPool(threadPool, minFlops);
  return threadPool;
}
