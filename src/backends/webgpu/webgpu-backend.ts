/// <reference types="@webgpu/types" />
/**
 * The `webgpu` backend: float32 (and int32) tensors in GPU buffers, every kernel in WGSL
 * (elementwise.ts, axis.ts, indexing.ts, matmul.ts, attention.ts, memory-scan.ts). Reads are
 * asynchronous only (`await t.data()`); there is no `readSync`. Create it with
 * `loadWebGpuBackend()` (load.ts), which finds an adapter in the browser (navigator.gpu) or in
 * Node (the `webgpu` package, Dawn).
 * Browser-safe: no `node:*` imports.
 */
import type { BackendBuffer } from '../../engine/backend.js';
import type { DType, TypedArray } from '../../engine/dtype.js';
import { createWebGpuAttention } from './attention.js';
import { createAxisKernels } from './axis.js';
import { type GpuBuffer, GpuContext } from './context.js';
import { createElementwise, createMoves } from './elementwise.js';
import { createIndexing } from './indexing.js';
import { createMatmul } from './matmul.js';
import { createWebGpuMemoryScan } from './memory-scan.js';
import type { WebGpuBackend, WebGpuBackendOptions } from './types.js';

export type { WebGpuBackend, WebGpuBackendOptions };

/** Creates the backend on a device (not registered). Most callers want `loadWebGpuBackend()`. */
export function createWebGpuBackend(
  device: GPUDevice,
  adapterName: string,
  options: WebGpuBackendOptions = {},
): WebGpuBackend {
  const ctx = new GpuContext(device, adapterName, options);
  const moves = createMoves(ctx);
  const elementwise = createElementwise(ctx, moves);
  const axis = createAxisKernels(ctx, elementwise.transpose);
  const software = /llvmpipe|lavapipe|swiftshader|software/i.test(adapterName);
  const backend: WebGpuBackend = {
    name: options.name ?? 'webgpu',
    floatDTypes: ['float32'],
    adapterName,
    software,
    limits: ctx.limits,

    upload(data: TypedArray, dtype: DType): BackendBuffer {
      ctx.begin('upload', () => `${data.length} ${dtype}`);
      const words =
        dtype === 'int32'
          ? data instanceof Int32Array
            ? data
            : Int32Array.from(data as ArrayLike<number>)
          : data instanceof Float32Array
            ? data
            : Float32Array.from(data as ArrayLike<number>);
      return ctx.upload(words, data.length, dtype);
    },
    read(buffer, dtype) {
      return ctx.read(buffer as GpuBuffer, dtype);
    },
    release(buffer) {
      ctx.release(buffer as GpuBuffer);
    },
    byteLength(buffer) {
      return (buffer as GpuBuffer).bytes;
    },
    ...elementwise,
    ...axis,
    ...createIndexing(ctx),
    ...createMatmul(ctx),
    fusedAttention: createWebGpuAttention(ctx),
    fusedMemoryScan: createWebGpuMemoryScan(ctx, moves, axis.reduce),

    stats: () => ({ ...ctx.stats }),
    trim: () => ctx.trim(),
    sync: () => ctx.sync(),
    destroy: () => ctx.destroy(),
  };
  return backend;
}
