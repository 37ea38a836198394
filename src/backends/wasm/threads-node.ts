/**
 * Worker threads for the wasm backend in Node (worker_threads). Every worker instantiates the
 * same kernel module on the same shared memory; a product's rows are split between the workers
 * and the calling thread. Jobs are posted through a small shared control block and Atomics
 * (no message passing on the hot path).
 *
 * Control block (Int32Array over its own SharedArrayBuffer):
 *   [SEQ]  job counter, bumped once per job (workers wait on it)
 *   [DONE] workers finished with the current job
 *   [QUIT] 1 asks the workers to exit
 *   [ARGS …] the product: a, b, c, m, n, k, aRowStride, aColStride, bRowStride, bColStride,
 *            next row chunk (shared counter), rows per chunk
 *   [ROWS + 3w …] worker w's scratch pointer at ROWS + 3w + 2
 *
 * A product's rows are cut into chunks that the threads take from the shared counter, so a thread
 * slowed down by other load on the machine does not hold up the others.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MatmulCall, WasmBackend, WasmThreadPool } from './wasm-backend.js';

export const SEQ = 0;
export const DONE = 1;
export const QUIT = 2;
/** The job: 0 = a product's rows; 1 + i = tasks of TASK_KERNELS[i] (ARGS: count, args, stride, next). */
export const KIND = 3;
export const ARGS = 4;
export const ROWS = 16;

/** Kernel exports `runTasks` may call, each as f(argsPointer, scratchPointer). */
export const TASK_KERNELS = ['memoryScanForwardHead', 'memoryScanBackwardHead'] as const;

/** Control slots of a product's row-chunk counter and rows per chunk. */
export const NEXT = ARGS + 10;
export const CHUNK = ARGS + 11;

/** Row chunks per thread of a threaded product (measured: 1 or 2 lose to load imbalance). */
const CHUNKS_PER_THREAD = 4;

/** Rows are split in multiples of this (the kernel's A block, a multiple of its micro-tile rows). */
const ROW_ALIGN = 128;

/**
 * Rows per chunk of a threaded product: about CHUNKS_PER_THREAD chunks per thread, in whole
 * ROW_ALIGN blocks where there are enough rows (each chunk packs its own copy of B, so chunks
 * should not be too small), else multiples of 4 rows.
 */
function matmulChunkRows(call: MatmulCall, threads: number): number {
  const target = Math.ceil(call.m / (threads * CHUNKS_PER_THREAD));
  const align = call.m >= threads * ROW_ALIGN * 2 ? ROW_ALIGN : 4;
  return Math.max(align, Math.ceil(target / align) * align);
}

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
    return { threads: 1, jobs: 0, matmulRows: () => {}, terminate: () => {} };
  }
  const workers = threads - 1;
  const control = new Int32Array(new SharedArrayBuffer(4 * (ROWS + 3 * threads)));
  const pool: Worker[] = [];
  for (let w = 0; w < workers; w++) {
    const worker = new Worker(new URL('./worker-node.js', import.meta.url), {
      workerData: { module: backend.module, memory: backend.memory, control, index: w },
    });
    worker.unref(); // idle workers must not keep the process alive
    pool.push(worker);
  }
  const { kernels, heap } = backend;

  let jobs = 0;
  const matmulRows = (call: MatmulCall): void => {
    jobs++;
    control[KIND] = 0;
    const chunk = matmulChunkRows(call, threads);
    const scratchBytes = kernels.matmulScratchBytes(call.m, call.n, call.k);
    const scratch: [number, number][] = [];
    for (let t = 0; t < threads; t++) scratch.push(heap.allocBytes(scratchBytes));
    const args = [call.a, call.b, call.c, call.m, call.n, call.k];
    args.push(call.aRowStride, call.aColStride, call.bRowStride, call.bColStride, 0, chunk);
    args.forEach((v, i) => {
      control[ARGS + i] = v;
    });
    for (let t = 0; t < threads; t++) control[ROWS + 3 * t + 2] = scratch[t]![0];
    Atomics.store(control, DONE, 0);
    Atomics.add(control, SEQ, 1);
    Atomics.notify(control, SEQ);
    // the calling thread takes chunks too (with the last scratch)
    const mine = scratch[workers]![0];
    for (let i = Atomics.add(control, NEXT, 1); i * chunk < call.m; i = Atomics.add(control, NEXT, 1)) {
      kernels.matmul(
        call.a,
        call.b,
        call.c,
        call.m,
        call.n,
        call.k,
        call.aRowStride,
        call.aColStride,
        call.bRowStride,
        call.bColStride,
        i * chunk,
        Math.min(call.m, (i + 1) * chunk),
        mine,
      );
    }
    for (let done = Atomics.load(control, DONE); done < workers; done = Atomics.load(control, DONE)) {
      Atomics.wait(control, DONE, done, 1000);
    }
    for (const [ptr, size] of scratch) heap.freeBytes(ptr, size);
  };

  // Tasks: every thread (this one too) takes the next index from a shared counter until none is left.
  const runTasks = (name: string, count: number, args: number, argStride: number, scratchBytes: number) => {
    const kind = TASK_KERNELS.indexOf(name as (typeof TASK_KERNELS)[number]);
    const kernel = (kernels as unknown as Record<string, (a: number, s: number) => void>)[name];
    if (kind < 0 || typeof kernel !== 'function') throw new Error(`runTasks: unknown task kernel '${name}'`);
    const scratch: [number, number][] = [];
    for (let t = 0; t < threads; t++) scratch.push(heap.allocBytes(scratchBytes));
    control[KIND] = 1 + kind;
    control[ARGS] = count;
    control[ARGS + 1] = args;
    control[ARGS + 2] = argStride;
    control[ARGS + 3] = 0;
    for (let t = 0; t < threads; t++) control[ROWS + 3 * t + 2] = scratch[t]![0];
    Atomics.store(control, DONE, 0);
    Atomics.add(control, SEQ, 1);
    Atomics.notify(control, SEQ);
    const mine = scratch[workers]![0];
    for (let i = Atomics.add(control, ARGS + 3, 1); i < count; i = Atomics.add(control, ARGS + 3, 1)) {
      kernel(args + i * argStride, mine);
    }
    for (let done = Atomics.load(control, DONE); done < workers; done = Atomics.load(control, DONE)) {
      Atomics.wait(control, DONE, done, 1000);
    }
    for (const [ptr, size] of scratch) heap.freeBytes(ptr, size);
  };

  const threadPool: WasmThreadPool = {
    threads,
    get jobs() {
      return jobs;
    },
    matmulRows,
    runTasks,
    terminate() {
      Atomics.store(control, QUIT, 1);
      Atomics.add(control, SEQ, 1);
      Atomics.notify(control, SEQ);
      for (const worker of pool) void worker.terminate();
      if (backend.threadPool === threadPool) backend.setThreadPool(null);
    },
  };
  backend.setThreadPool(threadPool, minFlops);
  return threadPool;
}
