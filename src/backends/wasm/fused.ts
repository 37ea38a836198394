/**
 * The wasm backend's fused blocks (`FusedBlocks` in engine/backend.ts): JS glue around the
 * AssemblyScript kernels of ./assembly/optim.ts, the paged attention of ./attention.ts and the
 * decoding kernels of ./decode.ts. Each entry checks what
 * it supports, allocates its outputs on the heap and makes one kernel call per block.
 * Browser-safe: no `node:*` imports.
 */
import type { AdamWParams, BackendBuffer, FusedBlocks } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import { createWasmPagedAttention } from './attention.js';
import { createWasmDecode } from './decode.js';
import type { ElementwiseKernelExports } from './elementwise.js';
import type { KernelExports } from './kernels.js';
import type { WasmBackend, WasmBuffer, WasmHeap } from './wasm-backend.js';

/** The fused-block exports of the kernel module (byte addresses; sizes in elements). */
export interface FusedKernelExports {
  adamwStep(
    p: number,
    g: number,
    m: number,
    v: number,
    outP: number,
    outM: number,
    outV: number,
    n: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    eps: number,
    stepSize: number,
    invSqrtBc2: number,
    shrink: number,
  ): void;
}

function ptr(buffer: BackendBuffer): number {
  const p = (buffer as WasmBuffer).ptr;
  if (p < 0) throw new Error('wasm backend: buffer used after release');
  return p;
}

/** The fused blocks of a wasm backend (entries whose kernels the module lacks are left out). */
export function createWasmFused(
  getBackend: () => WasmBackend,
  heap: WasmHeap,
  kernels: KernelExports,
): FusedBlocks {
  const k = kernels as unknown as Partial<FusedKernelExports & ElementwiseKernelExports>;
  const blocks: { -readonly [K in keyof FusedBlocks]: FusedBlocks[K] } = {};
  const paged = createWasmPagedAttention(getBackend, heap, kernels);
  if (paged) blocks.pagedAttention = paged;
  const decode = createWasmDecode(heap, kernels);
  if (decode) blocks.decode = decode;
  if (typeof k.ewCopy === 'function') {
    const copy = k.ewCopy;
    blocks.writeRows = (dst, src, groups, dstRows, rows, rowSize, at) => {
      if (groups === 0 || rows === 0 || rowSize === 0) return;
      // (groups, rows·rowSize) blocks: destination pitch dstRows·rowSize, source pitch rows·rowSize.
      const run = rows * rowSize;
      copy(
        ptr(dst) + 4 * at * rowSize,
        ptr(src),
        ...[1, 1, 1, 1, groups, run],
        ...[0, 0, 0, 0, dstRows * rowSize, 1],
        ...[0, 0, 0, 0, run, 1],
      );
    };
  }
  const alloc = (size: number, dtype: DType) => heap.alloc(dtype, size)[0];
  if (typeof k.adamwStep === 'function') {
    const adamwStep = k.adamwStep;
    blocks.fusedAdamW = {
      supports: (dtype) => dtype === 'float32',
      step(p, g, m, v, h: AdamWParams, dtype) {
        const out = [alloc(h.size, dtype), alloc(h.size, dtype), alloc(h.size, dtype)] as [
          BackendBuffer,
          BackendBuffer,
          BackendBuffer,
        ];
        adamwStep(
          ptr(p),
          ptr(g),
          ptr(m),
          ptr(v),
          ptr(out[0]),
          ptr(out[1]),
          ptr(out[2]),
          h.size,
          h.beta1,
          Math.fround(1 - h.beta1),
          h.beta2,
          Math.fround(1 - h.beta2),
          h.eps,
          h.stepSize,
          h.invSqrtBc2,
          h.shrink,
        );
        return out;
      },
    };
  }
  return blocks;
}
