/**
 * The `wasm` backend: float32 (and int32) tensors in one shared WebAssembly memory. The hot
 * kernels run compiled WebAssembly SIMD (matmul: packed, register-blocked f32x4); the rest reuse
 * the reference kernels on typed-array views of that memory. With a thread pool attached
 * (`titans-ts/node`: `enableWasmThreads`; browsers: `enableWasmWorkers`), large products are
 * split across worker threads that instantiate the same module on the same memory.
 * Browser-safe: no `node:*` imports.
 */
import type { Backend } from '../../engine/backend.js';
import { matmulLayout, type Shape, sizeOf } from '../../engine/shape.js';
import { createHostBackend } from '../reference/reference.js';
import { createWasmAttention } from './attention.js';
import { createWasmElementwise } from './elementwise.js';
import { createWasmFused } from './fused.js';
import { WasmBuffer, WasmHeap } from './heap.js';
import {
  compileKernels,
  createSharedMemory,
  instantiateKernels,
  type KernelExports,
  type WasmMemory,
  type WasmModule,
} from './kernels.js';
import { createWasmMemoryScan } from './memory-scan.js';

export { WasmBuffer, WasmHeap } from './heap.js';

/**
 * Runs kernel calls on several threads. `matmulRows` computes rows [0, m) of one product split
 * across the pool (each worker packs into its own scratch); it returns when all are done.
 */
export interface WasmThreadPool {
  readonly threads: number;
  /** Products run on the pool so far. */
  readonly jobs: number;
  matmulRows(args: MatmulCall): void;
  /**
   * Optional: calls the kernel export `name`(args + i·argStride, scratch) for every i in
   * [0, count), spread over the threads; each thread passes its own `scratchBytes` of scratch.
   * Returns when all are done. `name` must be one of TASK_KERNELS (pool-protocol.ts).
   */
  runTasks?(name: string, count: number, args: number, argStride: number, scratchBytes: number): void;
  terminate(): void;
}

/** One product's arguments (byte addresses, element strides). */
export interface MatmulCall {
  a: number;
  b: number;
  c: number;
  m: number;
  n: number;
  k: number;
  aRowStride: number;
  aColStride: number;
  bRowStride: number;
  bColStride: number;
}

export interface WasmBackend extends Backend {
  readonly heap: WasmHeap;
  readonly kernels: KernelExports;
  /** The compiled kernel module (worker threads instantiate it on `memory`). */
  readonly module: WasmModule;
  readonly memory: WasmMemory;
  /** Attaches (or with null detaches) a thread pool; products above `minFlops` use it. */
  setThreadPool(pool: WasmThreadPool | null, minFlops?: number): void;
  readonly threadPool: WasmThreadPool | null;
}

export interface WasmBackendOptions {
  name?: string;
  /** Initial memory in 64 KiB pages (default 256 = 16 MiB). */
  initialPages?: number;
  /** Maximum memory in pages (default 65536 = 4 GiB; address space only). */
  maximumPages?: number;
}

/**
 * Creates a wasm backend (not yet registered). Throws where WebAssembly SIMD or shared memory
 * is unavailable; `index.ts` registers it when it can be created.
 */
export function createWasmBackend(options: WasmBackendOptions = {}): WasmBackend {
  const memory = createSharedMemory(options.initialPages ?? 256, options.maximumPages ?? 65536);
  const module = compileKernels();
  const kernels = instantiateKernels(module, memory);
  const heap = new WasmHeap(memory);
  const host = createHostBackend(options.name ?? 'wasm', ['float32'], heap);
  let pool: WasmThreadPool | null = null;
  let poolMinFlops = 4e6;

  function product(call: MatmulCall): void {
    const flops = 2 * call.m * call.n * call.k;
    if (pool && flops >= poolMinFlops && call.m >= 2 * pool.threads) {
      pool.matmulRows(call);
      return;
    }
    const scratchBytes = kernels.matmulScratchBytes(call.m, call.n, call.k);
    const [scratch, size] = heap.allocBytes(scratchBytes);
    try {
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
        0,
        call.m,
        scratch,
      );
    } finally {
      heap.freeBytes(scratch, size);
    }
  }

  const backend: WasmBackend = {
    ...host,
    ...createWasmElementwise({
      heap,
      kernels,
      fallback: host,
      wrap: (...a) => new WasmBuffer(...a),
      pool: () => pool,
    }),
    ...createWasmFused(() => backend, heap, kernels),
    heap,
    kernels,
    module,
    memory,
    fusedAttention: createWasmAttention(() => backend, heap, kernels),
    fusedMemoryScan: createWasmMemoryScan(() => backend, heap, kernels),
    get threadPool() {
      return pool;
    },
    setThreadPool(next, minFlops) {
      pool = next;
      if (minFlops !== undefined) poolMinFlops = minFlops;
    },
    matmul(a, aShape: Shape, b, bShape: Shape, transposeA, transposeB, outShape: Shape, dtype) {
      const layout = matmulLayout(aShape, bShape, transposeA, transposeB, outShape);
      const { m, n, k } = layout;
      const [out] = heap.alloc(dtype, sizeOf(outShape));
      const A = a as WasmBuffer;
      const B = b as WasmBuffer;
      const C = out as WasmBuffer;
      layout.forEachBatch((batch, aOff, bOff) => {
        product({
          a: A.ptr + 4 * aOff,
          b: B.ptr + 4 * bOff,
          c: C.ptr + 4 * batch * m * n,
          m,
          n,
          k,
          aRowStride: layout.aRowStride,
          aColStride: layout.aColStride,
          bRowStride: layout.bRowStride,
          bColStride: layout.bColStride,
        });
      });
      return out;
    },
  };
  return backend;
}
