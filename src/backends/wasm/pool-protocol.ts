/**
 * The wasm thread pool's protocol, shared by the Node pool (threads-node.ts + worker-node.ts,
 * worker_threads) and the browser pool (threads-web.ts + worker-web.ts, Web Workers).
 * Browser-safe: no `node:*` imports.
 *
 * Every worker instantiates the same kernel module on the same shared memory; a product's rows
 * (or a list of tasks) are split between the workers and the calling thread. Jobs are posted
 * through a small shared control block and Atomics (no message passing on the hot path).
 *
 * Control block (Int32Array over its own SharedArrayBuffer, `controlWords(threads)` words):
 *   [SEQ]  job counter, bumped once per job (workers wait on it)
 *   [DONE] workers that entered the current job and finished it
 *   [QUIT] 1 asks the workers to exit
 *   [KIND] 0 = a product's rows; 1 + i = tasks of TASK_KERNELS[i]
 *   [ARGS …] a product: a, b, c, m, n, k, aRowStride, aColStride, bRowStride, bColStride, rows
 *            per chunk (CHUNK); tasks: count, args, argStride
 *   [GATE] OPEN while a job takes workers, plus the number that entered it
 *   [ROWS + 2w], [ROWS + 2w + 1] thread w's taken count (TAKEN) and scratch pointer (SCRATCH); the
 *            calling thread is w = threads − 1
 *
 * A product's rows are cut into chunks (tasks come as a list). Each thread owns an equal, fixed
 * range of them and takes its own first, then what is left of the others' (see `taker`): a thread
 * slowed down by other load on the machine does not hold up the others, and consecutive jobs over
 * the same rows (a product, then the elementwise ops and the next product on its output) run each
 * row on the same thread, whose caches may still hold it (measured, 2 threads, three alternating
 * rounds against one shared counter: train steps LMM +4 %, MAC +2 %, SWA unchanged). The calling
 * thread waits only for the workers that entered the job: a worker enters through the
 * gate (a compare-exchange while it is open) before it reads the job; once the calling thread
 * has taken the last chunk or task it closes the gate and waits for those that entered. A worker
 * that wakes late, after the gate closed, finds nothing to do and goes back to waiting, so a job
 * never waits on a sleeping or descheduled worker that has not started (measured: such waits cost
 * 20–40 ms of a ~300 ms MAC train step on the 2-core Xeon host, up to 3 ms each).
 */
import type { KernelExports } from './kernels.js';
import type { MatmulCall, WasmBackend, WasmHeap, WasmThreadPool } from './wasm-backend.js';

export const SEQ = 0;
export const DONE = 1;
export const QUIT = 2;
/** The job: 0 = a product's rows; 1 + i = tasks of TASK_KERNELS[i] (ARGS: count, args, stride). */
export const KIND = 3;
export const ARGS = 4;
/** OPEN, plus the count of workers that entered the job, while the job is open; 0 when closed. */
export const GATE = 16;
export const OPEN = 1 << 30;
/** Thread w's words start at ROWS + THREAD_WORDS·w: TAKEN, then SCRATCH. */
export const ROWS = 17;
const THREAD_WORDS = 2;
/** How many indices of thread w's own range are taken (by it or by others), this job. */
const TAKEN = 0;
/** Thread w's scratch pointer, this job. */
const SCRATCH = 1;

/** Kernel exports `runTasks` may call, each as f(argsPointer, scratchPointer). */
export const TASK_KERNELS = [
  'memoryScanForwardHead',
  'memoryScanBackwardHead',
  'attentionForwardTask',
  'attentionBackwardTask',
  'simdPeakTask',
  'elementwiseTask',
  'convSiluNormTask',
  'blocksTask',
] as const;

/** Control slot of a product's rows per chunk. */
export const CHUNK = ARGS + 10;

/** Int32 words of the control block of a pool of `threads` threads (the calling thread included). */
export function controlWords(threads: number): number {
  return ROWS + THREAD_WORDS * threads;
}

/** The threads of the pool whose control block this is. */
function threadsOf(control: Int32Array): number {
  return (control.length - ROWS) / THREAD_WORDS;
}

/**
 * Thread `me`'s taker of the job's `count` indices (row chunks or tasks): each call returns the
 * next index it takes, −1 once none is left. Thread u owns [⌊u·count/T⌋, ⌊(u+1)·count/T⌋) of a
 * pool of T threads, counted by its TAKEN word; a thread takes its own range in order, then
 * helps with thread me + 1's, me + 2's, … (mod T) through their counters, so every index is
 * taken exactly once, and each by its owner unless the owner was late or slow. Which thread
 * computes an index never changes what is computed.
 */
export function taker(control: Int32Array, me: number, count: number): () => number {
  const threads = threadsOf(control);
  let d = 0;
  return () => {
    for (; d < threads; d++) {
      const u = (me + d) % threads;
      const start = Math.floor((u * count) / threads);
      const i = start + Atomics.add(control, ROWS + THREAD_WORDS * u + TAKEN, 1);
      if (i < Math.floor(((u + 1) * count) / threads)) return i;
    }
    return -1;
  };
}

/** Row chunks per thread of a threaded product, where there are rows enough (see matmulChunkRows). */
const CHUNKS_PER_THREAD = 4;

/** Rows are split in multiples of this (the kernel's A block, a multiple of its micro-tile rows). */
const ROW_ALIGN = 128;

/**
 * Rows a chunk needs for its own packing of B to cost little: each chunk packs all of B (k × n
 * floats) and uses each packed float for only its own rows, so a chunk of 128 rows spends ~10 % of
 * a 1024³ product packing (measured with fused multiply-adds: 2 threads at 0.88 of the ceiling in
 * 128-row chunks, 0.98–1.0 in 512-row chunks).
 */
const PACKED_B_ROWS = 4 * ROW_ALIGN;

/**
 * Rows per chunk of a threaded product: about CHUNKS_PER_THREAD chunks per thread so that a thread
 * slowed down by other load does not hold up the others, but no fewer than PACKED_B_ROWS rows
 * unless that would leave a thread without a chunk; in whole ROW_ALIGN blocks where there are
 * enough rows, else in multiples of 4 rows.
 */
export function matmulChunkRows(call: MatmulCall, threads: number): number {
  const balanced = Math.ceil(call.m / (threads * CHUNKS_PER_THREAD));
  const target = Math.max(balanced, Math.min(PACKED_B_ROWS, Math.ceil(call.m / threads)));
  const align = call.m >= threads * ROW_ALIGN * 2 ? ROW_ALIGN : 4;
  return Math.max(align, Math.ceil(target / align) * align);
}

type TaskKernel = (args: number, scratch: number) => void;

function taskKernel(kernels: KernelExports, name: string): TaskKernel | undefined {
  const f = (kernels as unknown as Record<string, unknown>)[name];
  return typeof f === 'function' ? (f as TaskKernel) : undefined;
}

/** Rows [i·chunk, min(m, (i+1)·chunk)) of the product in the control block, for every chunk i taken. */
function takeRowChunks(kernels: KernelExports, control: Int32Array, me: number, scratch: number): void {
  const a = (i: number) => control[ARGS + i]!;
  const m = a(3);
  const chunk = control[CHUNK]!;
  const next = taker(control, me, Math.ceil(m / chunk));
  for (let i = next(); i >= 0; i = next()) {
    kernels.matmul(
      a(0),
      a(1),
      a(2),
      m,
      a(4),
      a(5),
      a(6),
      a(7),
      a(8),
      a(9),
      i * chunk,
      Math.min(m, (i + 1) * chunk),
      scratch,
    );
  }
}

/** Every task taken (see `taker`), until none is left. */
function takeTasks(kernel: TaskKernel, control: Int32Array, me: number, scratch: number): void {
  const args = control[ARGS + 1]!;
  const stride = control[ARGS + 2]!;
  const next = taker(control, me, control[ARGS]!);
  for (let i = next(); i >= 0; i = next()) kernel(args + i * stride, scratch);
}

/**
 * A worker's loop (Node worker thread or Web Worker; both may block in Atomics.wait): waits for
 * jobs on the control block; for each, enters through the gate if it is still open, runs its share
 * and reports DONE; returns when QUIT is set. The pool's control block is new, so its first job is
 * SEQ = 1 even if it was posted before this worker started waiting.
 */
export function runWorkerLoop(kernels: KernelExports, control: Int32Array, index: number): void {
  let seen = 0;
  for (;;) {
    spinWhile(control, SEQ, seen);
    Atomics.wait(control, SEQ, seen);
    seen = Atomics.load(control, SEQ);
    if (Atomics.load(control, QUIT) === 1) return;
    if (!enter(control)) continue;
    // entered: the job in the control block (the open one, whatever SEQ now says) waits for this
    // worker, so its arguments stay put until DONE
    const scratch = control[ROWS + THREAD_WORDS * index + SCRATCH]!;
    const kind = control[KIND]!;
    if (kind > 0) {
      const kernel = taskKernel(kernels, TASK_KERNELS[kind - 1]!);
      if (kernel) takeTasks(kernel, control, index, scratch);
    } else {
      takeRowChunks(kernels, control, index, scratch);
    }
    Atomics.add(control, DONE, 1);
    Atomics.notify(control, DONE);
  }
}

/** Counts this worker into the open job; false when the gate is closed (the job needs no more). */
function enter(control: Int32Array): boolean {
  for (let gate = Atomics.load(control, GATE); gate & OPEN; gate = Atomics.load(control, GATE)) {
    if (Atomics.compareExchange(control, GATE, gate, gate + 1) === gate) return true;
  }
  return false;
}

/** How the calling thread waits until `workers` workers (those that entered) have reported DONE. */
export type WaitForWorkers = (control: Int32Array, workers: number) => void;

/**
 * Polls control[slot] while it equals `value`, at most SPIN_POLLS times: a training step posts
 * hundreds of jobs, most within microseconds of the last, and a thread that sleeps in
 * Atomics.wait between them pays a wake-up each time.
 */
function spinWhile(control: Int32Array, slot: number, value: number): void {
  for (let i = 0; i < SPIN_POLLS && Atomics.load(control, slot) === value; i++) {
    // poll
  }
}

/**
 * Polls before sleeping: about 30 µs (a poll takes 5.6 ns once optimised on the Xeon host; an
 * earlier note here said 19 ns). Measured on the small preset's train step, 2 threads: MAG 11.6k
 * tokens/s without polling, 13.3k–13.8k with 2,000–20,000 polls; MAC 8.5k → 8.7k–9.1k. Polling
 * ~1 ms (by the clock) changed no step (BENCHMARKS.md, 2026-12-06 evening).
 */
const SPIN_POLLS = 5000;

/**
 * Polls of the calling thread before it sleeps waiting for the workers inside a job: about 0.5 ms.
 * It has nothing else to do, and the workers it waits for are computing their last share (time
 * from the calling thread's share to the last worker's: 19 µs median, 62 µs at the 90th
 * percentile in a SWA train step); after Atomics.wait, waking it cost up to ~50 µs more, 1.0 ms a
 * SWA step (measured on the 2-core Xeon host).
 */
const DONE_SPIN_POLLS = 100_000;

/** Waits in Atomics.wait (Node threads, Web Workers; a browser main thread may not). */
export const blockUntilDone: WaitForWorkers = (control, workers) => {
  for (let i = 0; i < DONE_SPIN_POLLS && Atomics.load(control, DONE) < workers; i++) {
    // poll
  }
  for (let done = Atomics.load(control, DONE); done < workers; done = Atomics.load(control, DONE)) {
    Atomics.wait(control, DONE, done, 1000);
  }
};

/** Spins on Atomics.load (for a browser main thread, where Atomics.wait throws). */
export const spinUntilDone: WaitForWorkers = (control, workers) => {
  while (Atomics.load(control, DONE) < workers) {
    // busy-wait: the calling thread has already taken its share, only the last chunks are left
  }
};

/**
 * The calling thread's half of a pool of `threads` threads (`threads − 1` workers running
 * runWorkerLoop on `control`): posts products and tasks, takes its own share, and waits for the
 * workers with `wait`. `terminate` asks the workers to quit, then calls `stop`.
 */
export function createPoolClient(
  backend: WasmBackend,
  control: Int32Array,
  threads: number,
  wait: WaitForWorkers,
  stop: () => void,
): WasmThreadPool {
  const workers = threads - 1;
  const { kernels, heap } = backend;
  let jobs = 0;

  /**
   * Allocates a scratch per thread, posts the job, runs `mine` on this thread (it returns once
   * every chunk or task is taken), closes the gate, waits for the workers that entered, frees.
   */
  const post = (kind: number, scratchBytes: number, args: number[], mine: (scratch: number) => void) => {
    const scratch: [number, number][] = [];
    for (let t = 0; t < threads; t++) scratch.push(heap.allocBytes(scratchBytes));
    control[KIND] = kind;
    args.forEach((v, i) => {
      control[ARGS + i] = v;
    });
    for (let t = 0; t < threads; t++) {
      control[ROWS + THREAD_WORDS * t + TAKEN] = 0;
      control[ROWS + THREAD_WORDS * t + SCRATCH] = scratch[t]![0];
    }
    Atomics.store(control, DONE, 0);
    Atomics.store(control, GATE, OPEN);
    Atomics.add(control, SEQ, 1);
    Atomics.notify(control, SEQ);
    // the calling thread takes its share too (with the last scratch)
    try {
      mine(scratch[workers]![0]);
    } finally {
      // after a throw too: no worker may enter a job whose arguments are about to change, and the
      // scratch is free once those inside are done
      const entered = Atomics.exchange(control, GATE, 0) & ~OPEN;
      wait(control, entered);
      for (const [ptr, size] of scratch) heap.freeBytes(ptr, size);
    }
  };

  const matmulRows = (call: MatmulCall): void => {
    jobs++;
    const chunk = matmulChunkRows(call, threads);
    const args = [call.a, call.b, call.c, call.m, call.n, call.k];
    args.push(call.aRowStride, call.aColStride, call.bRowStride, call.bColStride, chunk);
    const scratchBytes = kernels.matmulScratchBytes(call.m, call.n, call.k);
    post(0, scratchBytes, args, (scratch) => takeRowChunks(kernels, control, workers, scratch));
  };

  // Tasks: every thread (this one too) takes tasks (see `taker`) until none is left.
  const runTasks = (name: string, count: number, args: number, argStride: number, scratchBytes: number) => {
    const kind = TASK_KERNELS.indexOf(name as (typeof TASK_KERNELS)[number]);
    const kernel = taskKernel(kernels, name);
    if (kind < 0 || !kernel) throw new Error(`runTasks: unknown task kernel '${name}'`);
    post(1 + kind, scratchBytes, [count, args, argStride], (scratch) =>
      takeTasks(kernel, control, workers, scratch),
    );
  };

  const pool: WasmThreadPool = {
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
      stop();
      if (backend.threadPool === pool) backend.setThreadPool(null);
    },
  };
  return pool;
}

/**
 * Runs the task kernel `name` once per record on `pool` (the calling thread included): each record
 * (int32 words, at most `stride` of them) is written into a heap block, `stride` words apart, which
 * is freed after. For kernels that need no scratch.
 */
export function runTaskRecords(
  pool: WasmThreadPool,
  heap: WasmHeap,
  name: (typeof TASK_KERNELS)[number],
  records: readonly (readonly number[])[],
  stride: number,
): void {
  const [args, bytes] = heap.allocBytes(4 * stride * records.length);
  try {
    const words = new Int32Array(heap.memory.buffer, args, stride * records.length);
    records.forEach((r, t) => {
      words.set(r, t * stride);
    });
    pool.runTasks!(name, records.length, args, 4 * stride, 0);
  } finally {
    heap.freeBytes(args, bytes);
  }
}

/** The pool of one thread: nothing to split, nothing to stop. */
export function singleThreadPool(): WasmThreadPool {
  return { threads: 1, jobs: 0, matmulRows: () => {}, terminate: () => {} };
}
