/**
 * The WebGPU backend's public types, written without the WebGPU API's own types (GPUDevice, GPU…):
 * a project that imports titans-ts typechecks with or without lib.dom's WebGPU declarations and
 * without @webgpu/types (the two conflict when both are present). Browser-safe.
 */
import type { Backend } from '../../engine/backend.js';

/** The limits the backend plans its dispatches with (the device's, or lower ones for tests). */
export interface GpuLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupsPerDimension: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupStorageSize: number;
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
}

export interface GpuContextOptions {
  /** Lower limits than the device's (tests exercise the splitting paths with tiny ones). */
  limits?: Partial<GpuLimits>;
  /** Most bytes kept in the pool's free lists; beyond it released buffers are destroyed (default 1 GiB). */
  maxPoolBytes?: number;
  /** Dispatches encoded before a submission is forced (default 256). */
  maxDispatchesPerSubmit?: number;
  /**
   * Most bind groups made on the device (default unlimited). dawn.node never frees one and crashes
   * after about 65 thousand, so loadWebGpuBackend sets 60000 there: beyond it ops fail with an
   * error that names the cause instead of the process dying.
   */
  maxBindGroups?: number;
}

/** Counters for tests and diagnostics. */
export interface GpuStats {
  /** GPU buffers created so far (misses of the pool). */
  created: number;
  /** Allocations served from the pool. */
  reused: number;
  /** Bytes in the pool's free lists. */
  pooledBytes: number;
  /** Bytes handed out to live tensors (size classes). */
  liveBytes: number;
  submits: number;
  dispatches: number;
  pipelines: number;
  /** Bind groups made (each kept and reused for the same buffers). */
  bindGroups: number;
  reads: number;
}

/** The WebGPU backend: a `Backend` plus its pool, limits and synchronisation controls. */
export interface WebGpuBackend extends Backend {
  /** The adapter's description (vendor, architecture), e.g. "mesa software llvmpipe". */
  readonly adapterName: string;
  /** Whether the adapter is a software rasteriser (lavapipe, SwiftShader): correct, not fast. */
  readonly software: boolean;
  /** The limits dispatches are planned with. */
  readonly limits: Readonly<GpuLimits>;
  /** Pool, submission and pipeline counters. */
  stats(): GpuStats;
  /** Frees every pooled (unused) GPU buffer; returns the bytes freed. */
  trim(): number;
  /** Submits pending work and waits until the GPU has finished it. */
  sync(): Promise<void>;
  /** Destroys the device; every tensor on this backend becomes unusable. */
  destroy(): void;
}

export interface WebGpuBackendOptions extends GpuContextOptions {
  /** The registered name (default 'webgpu'). */
  name?: string;
}

/** What `loadWebGpuBackend` needs of a WebGPU entry point: `navigator.gpu`, or Dawn's `create([])`. */
export interface WebGpuEntry {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<unknown>;
}

export interface LoadWebGpuOptions extends WebGpuBackendOptions {
  /** The WebGPU entry point to use instead of navigator.gpu or Dawn (tests, custom setups). */
  gpu?: WebGpuEntry | null;
  /** Passed to requestAdapter. */
  powerPreference?: 'low-power' | 'high-performance';
}
