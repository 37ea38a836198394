/**
 * The wasm backend's fused attention: JS glue around the AssemblyScript kernels in
 * ./assembly/attention.ts (tiled forward with an online softmax, FlashAttention-2 backward; memory
 * O((queries + keys)·headDim), never queries × keys). Single-threaded. Handles float32 with a head
 * size that is a positive multiple of 4; anything else falls back to the engine's composed path.
 * Browser-safe: no `node:*` imports.
 */
import type { AttentionParams, BackendBuffer, FusedAttention } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import type { KernelExports } from './kernels.js';
import type { WasmBuffer, WasmHeap } from './wasm-backend.js';

/** The attention exports of the kernel module (byte addresses; sizes in elements). */
export interface AttentionKernelExports {
  attentionForward(
    q: number,
    k: number,
    v: number,
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
  /** dst[i] = exp(src[i]) with the kernels' own float32 exp (for accuracy tests). */
  attentionExp(src: number, dst: number, n: number): void;
}

const I32_MAX = 0x7fffffff;
/** Positions must lie strictly inside ±2^30 so that the kernel's i32 differences cannot overflow. */
const POSITION_LIMIT = 2 ** 30;

/** The attention kernels of an instance, or null when the module was built without them. */
export function attentionKernels(kernels: KernelExports): AttentionKernelExports | null {
  const k = kernels as unknown as Partial<AttentionKernelExports>;
  return typeof k.attentionForward === 'function' &&
    typeof k.attentionBackward === 'function' &&
    typeof k.attentionExp === 'function'
    ? (k as AttentionKernelExports)
    : null;
}

/** Creates the fused attention of a wasm backend (undefined when the kernels lack it). */
export function createWasmAttention(heap: WasmHeap, kernels: KernelExports): FusedAttention | undefined {
  const kx = attentionKernels(kernels);
  if (!kx) return undefined;

  /** Copies both position arrays into one fresh heap block; returns [ptr, bytes, qpos, kpos]. */
  function uploadPositions(p: AttentionParams): [number, number, number, number] {
    const [ptr, size] = heap.allocBytes(4 * (p.queries + p.keys));
    const view = new Int32Array(heap.memory.buffer, ptr, p.queries + p.keys);
    view.set(p.queryPositions, 0);
    view.set(p.keyPositions, p.queries);
    return [ptr, size, ptr, ptr + 4 * p.queries];
  }

  const windowArg = (w: number): number => Math.min(w, I32_MAX);

  return {
    supports(p: AttentionParams, dtype: DType): boolean {
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
    },

    forward(q, k, v, p, dtype): BackendBuffer {
      const rows = p.batch * p.queries;
      const [out] = heap.alloc(dtype, rows * p.headDim + rows);
      const [scratch, scratchSize] = heap.allocBytes(
        kx.attentionForwardScratchBytes(p.queries, p.keys, p.headDim),
      );
      const [posPtr, posSize, qpos, kpos] = uploadPositions(p);
      try {
        const o = (out as WasmBuffer).ptr;
        kx.attentionForward(
          (q as WasmBuffer).ptr,
          (k as WasmBuffer).ptr,
          (v as WasmBuffer).ptr,
          o,
          o + 4 * rows * p.headDim,
          qpos,
          kpos,
          p.batch,
          p.queries,
          p.keys,
          p.headDim,
          p.prefix,
          windowArg(p.window),
          p.scale,
          scratch,
        );
      } finally {
        heap.freeBytes(posPtr, posSize);
        heap.freeBytes(scratch, scratchSize);
      }
      return out;
    },

    backward(q, k, v, packed, dOut, p, dtype): [BackendBuffer, BackendBuffer, BackendBuffer] {
      const rows = p.batch * p.queries;
      const [dq] = heap.alloc(dtype, rows * p.headDim);
      const [dk] = heap.alloc(dtype, p.batch * p.keys * p.headDim);
      const [dv] = heap.alloc(dtype, p.batch * p.keys * p.headDim);
      const [scratch, scratchSize] = heap.allocBytes(
        kx.attentionBackwardScratchBytes(p.queries, p.keys, p.headDim),
      );
      const [posPtr, posSize, qpos, kpos] = uploadPositions(p);
      try {
        const o = (packed as WasmBuffer).ptr;
        kx.attentionBackward(
          (q as WasmBuffer).ptr,
          (k as WasmBuffer).ptr,
          (v as WasmBuffer).ptr,
          o,
          o + 4 * rows * p.headDim,
          (dOut as WasmBuffer).ptr,
          (dq as WasmBuffer).ptr,
          (dk as WasmBuffer).ptr,
          (dv as WasmBuffer).ptr,
          qpos,
          kpos,
          p.batch,
          p.queries,
          p.keys,
          p.headDim,
          p.prefix,
          windowArg(p.window),
          p.scale,
          scratch,
        );
      } finally {
        heap.freeBytes(posPtr, posSize);
        heap.freeBytes(scratch, scratchSize);
      }
      return [dq, dk, dv];
    },
  };
}
