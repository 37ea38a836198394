/**
 * Web Workers for the wasm backend in browsers: the same pool as `enableWasmThreads`
 * (titans-ts/node), on module Web Workers. Every worker instantiates the same kernel module on the
 * same shared memory and takes row chunks / tasks from the control block of pool-protocol.ts.
 * Browser-safe: no `node:*` imports (it is part of the core entry).
 *
 * Requirements: the page must be cross-origin isolated (COOP same-origin + COEP require-corp or
 * credentialless), or a shared WebAssembly.Memory cannot be sent to a worker; and the worker
 * script (./worker-web.js next to this file, and its imports) must be served from the same origin.
 *
 * Waiting: a pooled product runs synchronously on the calling thread, which takes row chunks
 * itself and then waits for the workers' last chunks. Inside a worker it blocks in Atomics.wait;
 * on a browser main thread, where Atomics.wait throws, it spins on Atomics.load instead. The wait
 * is short (only the last chunks are left once the calling thread runs out of work), but it does
 * burn the main thread while it lasts; for long jobs, run the model in a worker and enable the
 * pool there.
 */
import {
  blockUntilDone,
  controlWords,
  createPoolClient,
  singleThreadPool,
  spinUntilDone,
} from './pool-protocol.js';
import type { WasmBackend, WasmThreadPool } from './wasm-backend.js';

/** The parts of the DOM's Worker used here (declared: the package compiles without the DOM lib). */
interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  addEventListener(type: string, listener: (event: { data?: unknown; message?: string }) => void): void;
}
declare const Worker: (new (url: URL, options: { type: 'module'; name?: string }) => WebWorker) | undefined;

/** Milliseconds a worker may take to start and instantiate the kernels. */
const START_TIMEOUT_MS = 30_000;

/** Whether this thread may block in Atomics.wait (false on a browser main thread). */
function canBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts one worker and resolves once it has instantiated the kernels on the shared memory. */
function startWorker(backend: WasmBackend, control: Int32Array, index: number): Promise<WebWorker> {
  if (typeof Worker !== 'function') {
    return Promise.reject(
      new Error('enableWasmWorkers: Web Workers are unavailable here (in Node use enableWasmThreads)'),
    );
  }
  const worker = new Worker(new URL('./worker-web.js', import.meta.url), { type: 'module' });
  return new Promise<WebWorker>((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.terminate();
      reject(new Error(`enableWasmWorkers: worker ${index}: ${why}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    worker.addEventListener('message', (event) => {
      if (settled) return;
      if (event.data === 'ready') {
        settled = true;
        clearTimeout(timer);
        resolve(worker);
      } else {
        const error = (event.data as { error?: string } | undefined)?.error;
        fail(
          `${error ?? 'unexpected message'} (a shared WebAssembly.Memory needs a cross-origin isolated page)`,
        );
      }
    });
    worker.addEventListener('error', (event) =>
      fail(
        `failed to start (${event.message ?? 'script error'}); is worker-web.js served next to threads-web.js?`,
      ),
    );
    worker.addEventListener('messageerror', () => fail('could not receive its start message'));
    try {
      worker.postMessage({ module: backend.module, memory: backend.memory, control, index });
    } catch (e) {
      fail(
        `cannot send the shared WebAssembly.Memory to a worker (${String((e as Error)?.message ?? e)}); ` +
          'the page must be cross-origin isolated (COOP same-origin + COEP require-corp)',
      );
    }
  });
}

/**
 * Starts `threads − 1` module Web Workers (the calling thread is the last one), waits until every
 * one has instantiated the kernels, and attaches the pool to the backend; products of at least
 * `minFlops` (and memory-scan heads) are then split across all threads. Rejects with a clear
 * error where the shared memory cannot be sent to a worker (page not cross-origin isolated).
 * Use the pool from the thread that created it (see the note on waiting above).
 *
 * @example
 * // enableWasmWorkers and loadWasmBackend come from the core entry, 'titans-ts'
 * const wasm = await loadWasmBackend();
 * if (wasm && crossOriginIsolated) await enableWasmWorkers(wasm, navigator.hardwareConcurrency);
 */
export async function enableWasmWorkers(
  backend: WasmBackend,
  threads = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ??
    1,
  minFlops = 2e6,
): Promise<WasmThreadPool> {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`enableWasmWorkers: threads must be an integer ≥ 1, got ${threads}`);
  }
  backend.threadPool?.terminate();
  if (threads === 1) {
    backend.setThreadPool(null);
    return singleThreadPool();
  }
  if (typeof SharedArrayBuffer !== 'function') {
    throw new Error(
      'enableWasmWorkers: SharedArrayBuffer is unavailable; the page must be cross-origin isolated',
    );
  }
  const control = new Int32Array(new SharedArrayBuffer(4 * controlWords(threads)));
  const starting = Array.from({ length: threads - 1 }, (_, w) => startWorker(backend, control, w));
  const started = await Promise.allSettled(starting);
  const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) {
    for (const worker of workers) worker.terminate();
    throw failure.reason;
  }
  const wait = canBlock() ? blockUntilDone : spinUntilDone;
  const pool = createPoolClient(backend, control, threads, wait, () => {
    for (const worker of workers) worker.terminate();
  });
  backend.setThreadPool(pool, minFlops);
  return pool;
}
