/**
 * The wasm backend's fused attention: JS glue around the AssemblyScript kernels in
 * ./assembly/attention.ts (tiled forward with an online softmax, FlashAttention-2 backward; memory
 * O((queries + keys)·headDim), never queries × keys). Handles float32 with a head size that is a
 * positive multiple of 4; anything else falls back to the engine's composed path. With a thread
 * pool attached and enough work (`attentionPoolLimits`), the batch (batch·heads independent
 * problems) is cut into contiguous slices that run as pool tasks (attentionForwardTask /
 * attentionBackwardTask, one argument block per slice); every row is computed by the same kernel
 * code either way, so the threaded results equal the single-threaded ones bit for bit.
 * Browser-safe: no `node:*` imports.
 */
import type {
  AttentionParams,
  BackendBuffer,
  FusedAttention,
  FusedPagedAttention,
} from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import type { KernelExports } from './kernels.js';
import type { WasmBackend, WasmBuffer, WasmHeap, WasmThreadPool } from './wasm-backend.js';

/** The attention exports of the kernel module (byte addresses; sizes in elements). */
export interface AttentionKernelExports {
  /** Keys and values in pages: `pages` holds (k, v) address pairs of `pageRows` rows each. */
  attentionForward(
    q: number,
    pages: number,
    pageRows: number,
    batch0: number,
    out: number,
    lse: number,
    qpos: number,
    kpos: number,
    batch: number,
    tq: number,
    tk: number,
    dh: number,
    prefix: number,
    window: number,
    scale: number,
    scratch: number,
  ): void;
  attentionForwardScratchBytes(tq: number, tk: number, dh: number): number;
  attentionBackward(
    q: number,
    k: number,
    v: number,
    o: number,
    lse: number,
    dout: number,
    dq: number,
    dk: number,
    dv: number,
    qpos: number,
    kpos: number,
    batch: number,
    tq: number,
    tk: number,
    dh: number,
    prefix: number,
    window: number,
    scale: number,
    scratch: number,
  ): void;
  attentionBackwardScratchBytes(tq: number, tk: number, dh: number): number;
  /** i32 words of a task's argument block (see TASK below). */
  attentionTaskWords(): number;
  /** attentionForward / attentionBackward on the batch slice of the argument block at `args`. */
  attentionForwardTask(args: number, scratch: number): void;
  attentionBackwardTask(args: number, scratch: number): void;
  /** dst[i] = exp(src[i]) with the kernels' own float32 exp (for accuracy tests). */
  attentionExp(src: number, dst: number, n: number): void;
}

const I32_MAX = 0x7fffffff;
/** Positions must lie strictly inside ±2^30 so that the kernel's i32 differences cannot overflow. */
const POSITION_LIMIT = 2 ** 30;

/**
 * Word indices of a task's argument block (mirrors the A_* constants of assembly/attention.ts):
 * the slice's tensor addresses (forward: q, k, v, out, lse; backward: all nine), then the shared
 * positions and sizes; scale is stored as float32 bits.
 */
const TASK = {
  pointers: 0, // q, k, v, out, lse, dout, dq, dk, dv
  qpos: 9,
  kpos: 10,
  batch: 11,
  tq: 12,
  tk: 13,
  dh: 14,
  prefix: 15,
  window: 16,
  scale: 17,
  batch0: 18, // forward: the slice's first (batch, head) row
} as const;

type TaskKernelName = 'attentionForwardTask' | 'attentionBackwardTask';

/** runAttention with the backend, heap and kernels bound. */
type Run = (
  name: TaskKernelName,
  p: AttentionParams,
  pointers: number[],
  rows: number[],
  scratch: number,
) => void;

/**
 * When attention uses the thread pool (exported so tests can force the pooled path). A call goes
 * to the pool when a pool with `runTasks` and at least 2 threads is attached, the batch has at
 * least 2 rows, and batch · queries · min(keys, window + prefix) · headDim (half the forward's
 * multiply-adds when every key is visible; an over-estimate for causal masks) is at least `minWork`.
 */
export const attentionPoolLimits = {
  /**
   * Smallest estimated work for the pool. Measured with 2 threads on a 2-core host (batch 2–16,
   * T 16–256, dh 16 and 64, causal): below about 2^18 a pool round-trip costs more than it saves,
   * forward and forward+backward break even near 2^19, and from 2^20 the pool wins (1.3–2×).
   */
  minWork: 2 ** 19,
  /** Batch slices per thread (more balance the load better; each slice is one task). */
  tasksPerThread: 4,
};

function ptrOf(buffer: BackendBuffer): number {
  return (buffer as WasmBuffer).ptr;
}

/** The attention kernels of an instance, or null when the module was built without them. */
export function attentionKernels(kernels: KernelExports): AttentionKernelExports | null {
  const k = kernels as unknown as Partial<AttentionKernelExports>;
  return typeof k.attentionForward === 'function' &&
    typeof k.attentionBackward === 'function' &&
    typeof k.attentionForwardTask === 'function' &&
    typeof k.attentionBackwardTask === 'function' &&
    typeof k.attentionExp === 'function'
    ? (k as AttentionKernelExports)
    : null;
}

/** Copies both position arrays into one fresh heap block; returns [ptr, bytes, qpos, kpos]. */
function uploadPositions(heap: WasmHeap, p: AttentionParams): [number, number, number, number] {
  const [ptr, size] = heap.allocBytes(4 * (p.queries + p.keys));
  const view = new Int32Array(heap.memory.buffer, ptr, p.queries + p.keys);
  view.set(p.queryPositions, 0);
  view.set(p.keyPositions, p.queries);
  return [ptr, size, ptr, ptr + 4 * p.queries];
}

/** The pool and the number of batch slices to run on it, or null to run here on one thread. */
function poolPlan(backend: WasmBackend, p: AttentionParams): [WasmThreadPool, number] | null {
  const pool = backend.threadPool;
  if (!pool?.runTasks || pool.threads < 2 || p.batch < 2) return null;
  const keys = Math.min(p.keys, p.window + p.prefix);
  if (p.batch * p.queries * keys * p.headDim < attentionPoolLimits.minWork) return null;
  const perThread = Math.max(1, Math.floor(attentionPoolLimits.tasksPerThread));
  return [pool, Math.min(p.batch, pool.threads * perThread)];
}

/**
 * Runs the task kernel `name` over the whole batch: on the pool as contiguous batch slices
 * (see poolPlan), else here as one slice. `pointers` are the whole batch's words in TASK order
 * (0 where unused); a slice starting at batch row b gets each advanced by b · rowBytes[j] (0 for
 * words that are not per-row addresses, such as the forward's page list and page size).
 */
function runAttention(
  backend: WasmBackend,
  heap: WasmHeap,
  kx: AttentionKernelExports,
  name: TaskKernelName,
  p: AttentionParams,
  pointers: number[],
  rowBytes: number[],
  scratchBytes: number,
): void {
  const plan = poolPlan(backend, p);
  const tasks = plan ? plan[1] : 1;
  const words = kx.attentionTaskWords();
  const [posPtr, posSize, qpos, kpos] = uploadPositions(heap, p);
  const [args, argsSize] = heap.allocBytes(4 * words * tasks);
  try {
    const w = new Int32Array(heap.memory.buffer, args, words * tasks);
    const f = new Float32Array(heap.memory.buffer, args, words * tasks);
    for (let t = 0; t < tasks; t++) {
      const first = Math.floor((t * p.batch) / tasks);
      const a = t * words;
      pointers.forEach((ptr, j) => {
        w[a + TASK.pointers + j] = ptr === 0 ? 0 : ptr + first * rowBytes[j]!;
      });
      w[a + TASK.qpos] = qpos;
      w[a + TASK.kpos] = kpos;
      w[a + TASK.batch] = Math.floor(((t + 1) * p.batch) / tasks) - first;
      w[a + TASK.tq] = p.queries;
      w[a + TASK.tk] = p.keys;
      w[a + TASK.dh] = p.headDim;
      w[a + TASK.prefix] = p.prefix;
      w[a + TASK.window] = Math.min(p.window, I32_MAX);
      f[a + TASK.scale] = p.scale;
      w[a + TASK.batch0] = first;
    }
    if (plan) {
      plan[0].runTasks!(name, tasks, args, 4 * words, scratchBytes);
    } else {
      const [scratch, scratchSize] = heap.allocBytes(scratchBytes);
      try {
        kx[name](args, scratch);
      } finally {
        heap.freeBytes(scratch, scratchSize);
      }
    }
  } finally {
    heap.freeBytes(args, argsSize);
    heap.freeBytes(posPtr, posSize);
  }
}

/** Bytes per batch row of q, k, v, out, lse, dout, dq, dk, dv (TASK order). */
function denseRowBytes(p: AttentionParams): number[] {
  const qRow = 4 * p.queries * p.headDim;
  const kRow = 4 * p.keys * p.headDim;
  return [qRow, kRow, kRow, qRow, 4 * p.queries, qRow, qRow, kRow, kRow];
}

/**
 * Whether the kernels handle these arguments: float32, a head size that is a positive multiple
 * of 4, positions inside ±2^30.
 */
function supported(p: AttentionParams, dtype: DType): boolean {
  if (dtype !== 'float32') return false;
  if (p.headDim < 4 || p.headDim % 4 !== 0 || p.queries < 1 || p.keys < 1 || p.batch < 1) return false;
  if (!(p.window >= 1) || !Number.isFinite(p.scale)) return false;
  for (const positions of [p.queryPositions, p.keyPositions]) {
    for (let i = 0; i < positions.length; i++) {
      const v = positions[i]!;
      if (v <= -POSITION_LIMIT || v >= POSITION_LIMIT) return false;
    }
  }
  return true;
}

/**
 * The forward over keys and values in pages (pairs of buffers of `pageRows` rows per (batch,
 * head)): writes out (batch, queries, headDim) at byte address `o` and the rows' log-sum-exp
 * (batch, queries) at `lse`.
 */
function forwardPages(
  run: Run,
  heap: WasmHeap,
  kx: AttentionKernelExports,
  q: BackendBuffer,
  pages: readonly (readonly [BackendBuffer, BackendBuffer])[],
  pageRows: number,
  p: AttentionParams,
  o: number,
  lse: number,
): void {
  const [list, listSize] = heap.allocBytes(8 * pages.length);
  try {
    const words = new Uint32Array(heap.memory.buffer, list, 2 * pages.length);
    pages.forEach(([k, v], i) => {
      words[2 * i] = ptrOf(k);
      words[2 * i + 1] = ptrOf(v);
    });
    const pointers = [ptrOf(q), list, pageRows, o, lse, 0, 0, 0, 0];
    const dense = denseRowBytes(p);
    const rowBytes = [dense[0]!, 0, 0, dense[3]!, dense[4]!, 0, 0, 0, 0];
    run(
      'attentionForwardTask',
      p,
      pointers,
      rowBytes,
      kx.attentionForwardScratchBytes(p.queries, p.keys, p.headDim),
    );
  } finally {
    heap.freeBytes(list, listSize);
  }
}

/** runAttention bound to a backend's heap and kernels. */
function runner(getBackend: () => WasmBackend, heap: WasmHeap, kx: AttentionKernelExports): Run {
  return (name, p, pointers, rows, scratch) =>
    runAttention(getBackend(), heap, kx, name, p, pointers, rows, scratch);
}

/** Creates the fused attention of a wasm backend (undefined when the kernels lack it). */
export function createWasmAttention(
  getBackend: () => WasmBackend,
  heap: WasmHeap,
  kernels: KernelExports,
): FusedAttention | undefined {
  const kx = attentionKernels(kernels);
  if (!kx) return undefined;
  const run = runner(getBackend, heap, kx);

  return {
    supports: supported,

    forward(q, k, v, p, dtype): [BackendBuffer, BackendBuffer] {
      const rows = p.batch * p.queries;
      const [out] = heap.alloc(dtype, rows * p.headDim);
      const [lse] = heap.alloc(dtype, rows);
      forwardPages(run, heap, kx, q, [[k, v]], p.keys, p, ptrOf(out), ptrOf(lse));
      return [out, lse];
    },

    backward(q, k, v, out, lse, dOut, p, dtype): [BackendBuffer, BackendBuffer, BackendBuffer] {
      const rows = p.batch * p.queries;
      const [dq] = heap.alloc(dtype, rows * p.headDim);
      const [dk] = heap.alloc(dtype, p.batch * p.keys * p.headDim);
      const [dv] = heap.alloc(dtype, p.batch * p.keys * p.headDim);
      const pointers = [q, k, v, out, lse, dOut, dq, dk, dv].map(ptrOf);
      run(
        'attentionBackwardTask',
        p,
        pointers,
        denseRowBytes(p),
        kx.attentionBackwardScratchBytes(p.queries, p.keys, p.headDim),
      );
      return [dq, dk, dv];
    },
  };
}

/**
 * The wasm backend's attention over a paged KV cache (`FusedBlocks.pagedAttention`): the forward
 * kernel reading the pages in place (undefined when the kernels lack it).
 */
export function createWasmPagedAttention(
  getBackend: () => WasmBackend,
  heap: WasmHeap,
  kernels: KernelExports,
): FusedPagedAttention | undefined {
  const kx = attentionKernels(kernels);
  if (!kx) return undefined;
  const run = runner(getBackend, heap, kx);
  return {
    supports: (p, pageRows, dtype) => supported(p, dtype) && (pageRows % 64 === 0 || pageRows >= p.keys),
    forward(q, pages, pageRows, p, dtype) {
      const rows = p.batch * p.queries;
      const [out] = heap.alloc(dtype, rows * p.headDim);
      const [lse, lseSize] = heap.allocBytes(4 * rows); // a backward's; not kept at inference
      try {
        forwardPages(run, heap, kx, q, pages, pageRows, p, ptrOf(out), lse);
      } finally {
        heap.freeBytes(lse, lseSize);
      }
      return out;
    },
  };
}
