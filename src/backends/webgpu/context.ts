/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend's runtime around one GPUDevice: buffers (a pool by size class), kernel
 * dispatch (pipelines compiled once and cached, many dispatches encoded per submission), reads
 * (the only place the CPU waits for the GPU), the adapter's limits, and errors that name the op
 * and the sizes (device loss, out of memory, validation). Browser-safe: no `node:*` imports.
 *
 * Ordering: every dispatch goes into one open command encoder, submitted when a read needs the
 * results, when `maxDispatchesPerSubmit` are encoded, or when the parameter arena is full. WebGPU
 * runs a queue's work in order, so a buffer released by the engine may be reused at once as a
 * later kernel's output; only `queue.writeBuffer` (uploads) runs ahead of the open encoder, so
 * uploads take buffers whose last use was already submitted.
 */
import type { DType } from '../../engine/dtype.js';
import { BindGroups } from './bind-groups.js';
import { FreeList, sizeClass } from './free-list.js';
import type { GpuContextOptions, GpuLimits, GpuStats } from './types.js';

export type { GpuContextOptions, GpuLimits, GpuStats };
export { sizeClass };

// WebGPU's numeric flags (spelled out: Node has no GPUBufferUsage global unless installed).
const USAGE_MAP_READ = 0x1;
const USAGE_COPY_SRC = 0x4;
const USAGE_COPY_DST = 0x8;
const USAGE_UNIFORM = 0x40;
const USAGE_STORAGE = 0x80;
const MAP_MODE_READ = 0x1;
const STAGE_COMPUTE = 0x4;

/** Words of kernel parameters each dispatch gets (a uniform block of 16 vec4<u32>). */
export const PARAM_WORDS = 64;
const PARAM_BYTES = PARAM_WORDS * 4;
/** Uploads up to this many words travel in the parameter block (see GpuContext.upload). */
const SMALL_UPLOAD_WORDS = PARAM_WORDS - 2;
const SMALL_UPLOAD_SOURCE = `
struct Params { w: array<vec4<u32>, ${PARAM_WORDS / 4}> }
@group(0) @binding(0) var<uniform> params: Params;
@group(1) @binding(0) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32) {
  let n = params.w[0].x;
  let j = i + 2u;
  if (i < n) { dst[params.w[0].y + i] = params.w[j >> 2u][j & 3u]; }
}`;

/** A tensor's memory on the GPU: `length` elements of `dtype` in a buffer of `bytes` (its size class). */
export class GpuBuffer {
  constructor(
    public gpu: GPUBuffer | null,
    readonly bytes: number,
    readonly length: number,
    readonly dtype: DType,
  ) {}
}

/** A storage binding: a buffer's byte range [offset, offset + size). */
export interface Binding {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly size: number;
}

/** What the backend is doing, for error messages: the op and a description of its sizes. */
interface OpLabel {
  name: string;
  sizes: () => string;
}

function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** One device, its queue, the buffer pool and the open command encoder. */
export class GpuContext {
  readonly limits: GpuLimits;
  readonly stats: GpuStats = {
    created: 0,
    reused: 0,
    pooledBytes: 0,
    liveBytes: 0,
    submits: 0,
    dispatches: 0,
    pipelines: 0,
    bindGroups: 0,
    reads: 0,
  };
  /** Free buffers by size class; `pending`: released since the last submission (outputs may reuse them, uploads not). */
  private readonly free = new Map<number, FreeList>();
  private readonly pending = new Map<number, FreeList>();
  private readonly staging = new Map<number, GPUBuffer[]>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Each pipeline's storage signature, the bind group layouts by signature, and the bind groups made. */
  private readonly signatures = new WeakMap<GPUComputePipeline, string>();
  private readonly bindGroups: BindGroups;
  /** Group 0: the parameter block, bound with each dispatch's offset into the arena. */
  private readonly uniformLayout: GPUBindGroupLayout;
  private readonly uniformGroup: GPUBindGroup;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private encoded = 0;
  private readonly arena: GPUBuffer;
  private readonly arenaData: ArrayBuffer;
  private readonly arenaWords: Uint32Array;
  private readonly arenaStride: number;
  private arenaUsed = 0;
  private readonly maxPoolBytes: number;
  private readonly maxDispatches: number;
  private op: OpLabel = { name: 'setup', sizes: () => '' };
  /** Set when the device is lost; every later call throws naming it. */
  private lostMessage: string | null = null;
  /** The first asynchronous GPU error (out of memory, validation), reported at the next call. */
  private failure: Error | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly adapterName: string,
    options: GpuContextOptions = {},
  ) {
    const d = device.limits;
    this.limits = {
      maxStorageBufferBindingSize: d.maxStorageBufferBindingSize,
      maxBufferSize: d.maxBufferSize,
      maxComputeWorkgroupsPerDimension: d.maxComputeWorkgroupsPerDimension,
      maxComputeInvocationsPerWorkgroup: d.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupStorageSize: d.maxComputeWorkgroupStorageSize,
      minStorageBufferOffsetAlignment: d.minStorageBufferOffsetAlignment,
      minUniformBufferOffsetAlignment: d.minUniformBufferOffsetAlignment,
    };
    for (const [key, value] of Object.entries(options.limits ?? {})) {
      const k = key as keyof GpuLimits;
      if (value !== undefined) this.limits[k] = k.startsWith('min') ? Math.max(value, this.limits[k]) : value;
    }
    this.maxPoolBytes = options.maxPoolBytes ?? 2 ** 30;
    this.maxDispatches = options.maxDispatchesPerSubmit ?? 256;
    this.bindGroups = new BindGroups(device, options.maxBindGroups ?? Number.POSITIVE_INFINITY, () =>
      this.describe(),
    );
    this.arenaStride = Math.max(PARAM_BYTES, this.limits.minUniformBufferOffsetAlignment);
    const arenaBytes = this.arenaStride * Math.max(this.maxDispatches, 64);
    this.arena = device.createBuffer({ size: arenaBytes, usage: USAGE_UNIFORM | USAGE_COPY_DST });
    this.arenaData = new ArrayBuffer(arenaBytes);
    this.arenaWords = new Uint32Array(this.arenaData);
    this.uniformLayout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: STAGE_COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
      ],
    });
    this.uniformGroup = device.createBindGroup({
      layout: this.uniformLayout,
      entries: [{ binding: 0, resource: { buffer: this.arena, offset: 0, size: PARAM_BYTES } }],
    });
    device.lost.then((info) => {
      this.lostMessage = `${info.reason}${info.message ? `: ${info.message}` : ''}`;
    });
    device.addEventListener?.('uncapturederror', (event) => {
      const e = (event as GPUUncapturedErrorEvent).error;
      this.failure ??= new Error(
        `webgpu backend: GPU error in recent work (last op ${this.describe()}): ${e.message}`,
      );
    });
  }

  // ---- errors ------------------------------------------------------------------------------

  /** Names the op that the next allocations and dispatches belong to (for error messages). */
  begin(name: string, sizes: () => string): void {
    this.check(name, sizes);
    this.op = { name, sizes };
  }

  private describe(op: OpLabel = this.op): string {
    const sizes = op.sizes();
    return sizes ? `${op.name} (${sizes})` : op.name;
  }

  /** Throws if the device was lost or an earlier GPU error is pending. */
  check(name = this.op.name, sizes = this.op.sizes): void {
    if (this.lostMessage !== null) {
      throw new Error(
        `webgpu backend: the GPU device was lost (${this.lostMessage}); cannot run ${this.describe({ name, sizes })}. ` +
          'Its tensors are gone: load a new backend with loadWebGpuBackend() and recompute.',
      );
    }
    if (this.failure) {
      const f = this.failure;
      this.failure = null;
      throw f;
    }
  }

  /** Whether the device was lost (or destroyed). */
  get lost(): boolean {
    return this.lostMessage !== null;
  }

  // ---- buffers -----------------------------------------------------------------------------

  private createBuffer(bytes: number, usage: number): GPUBuffer {
    if (bytes > this.limits.maxBufferSize) {
      throw new RangeError(
        `webgpu backend: ${this.describe()} needs a buffer of ${formatBytes(bytes)}, above this device's ` +
          `maxBufferSize (${formatBytes(this.limits.maxBufferSize)})`,
      );
    }
    const op = this.op;
    this.device.pushErrorScope('out-of-memory');
    let buffer: GPUBuffer;
    try {
      buffer = this.device.createBuffer({ size: bytes, usage });
    } catch (e) {
      this.device.popErrorScope().catch(() => {});
      throw new Error(
        `webgpu backend: could not allocate ${formatBytes(bytes)} for ${this.describe(op)}: ${(e as Error).message}`,
      );
    }
    this.device
      .popErrorScope()
      .then((error) => {
        if (error) {
          this.failure ??= new Error(
            `webgpu backend: out of GPU memory allocating ${formatBytes(bytes)} for ${this.describe(op)} ` +
              `(${formatBytes(this.stats.liveBytes)} live, ${formatBytes(this.stats.pooledBytes)} pooled): ${error.message}`,
          );
        }
      })
      .catch(() => {});
    return buffer;
  }

  /**
   * A buffer for `length` elements. Kernel outputs (`forUpload` false) may reuse a buffer
   * released since the last submission; uploads may not (queue.writeBuffer runs ahead of it).
   */
  alloc(length: number, dtype: DType, forUpload = false): GpuBuffer {
    const bytes = sizeClass(Math.max(1, length) * 4);
    const free = this.free.get(bytes);
    const pending = forUpload ? undefined : this.pending.get(bytes);
    let gpu: GPUBuffer | undefined;
    if ((pending?.top ?? Number.POSITIVE_INFINITY) < (free?.top ?? Number.POSITIVE_INFINITY)) {
      gpu = pending!.pop()!.gpu;
    } else if (free && free.size > 0) {
      gpu = free.pop()!.gpu;
      this.stats.pooledBytes -= bytes;
    }
    if (gpu) this.stats.reused++;
    else {
      // A miss while the pool holds much memory of other sizes: give that back first.
      const held = this.stats.liveBytes + this.stats.pooledBytes;
      if (this.stats.pooledBytes >= bytes && held + bytes > this.maxPoolBytes) this.trim();
      gpu = this.createBuffer(bytes, USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST);
      this.bindGroups.idOf(gpu);
      this.stats.created++;
    }
    this.stats.liveBytes += bytes;
    return new GpuBuffer(gpu, bytes, length, dtype);
  }

  /** Returns a buffer to the pool (reused by the next allocation of its size class). */
  release(buffer: GpuBuffer): void {
    const gpu = buffer.gpu;
    if (gpu === null) return;
    buffer.gpu = null;
    this.stats.liveBytes -= buffer.bytes;
    if (this.lost) return;
    if (this.encoder) this.listOf(this.pending, buffer.bytes).push(this.bindGroups.idOf(gpu), gpu);
    else this.pool(buffer.bytes, gpu);
  }

  private listOf(lists: Map<number, FreeList>, bytes: number): FreeList {
    let list = lists.get(bytes);
    if (!list) {
      list = new FreeList();
      lists.set(bytes, list);
    }
    return list;
  }

  private pool(bytes: number, gpu: GPUBuffer): void {
    if (this.stats.pooledBytes + bytes > this.maxPoolBytes) {
      this.destroyPooled(gpu);
      return;
    }
    this.listOf(this.free, bytes).push(this.bindGroups.idOf(gpu), gpu);
    this.stats.pooledBytes += bytes;
  }

  /** Frees every pooled (unused) buffer; returns the bytes freed. */
  trim(): number {
    this.flush();
    const freed = this.stats.pooledBytes;
    for (const list of this.free.values()) for (const b of list.drain()) this.destroyPooled(b);
    this.free.clear();
    for (const list of this.staging.values()) for (const b of list) b.destroy();
    this.staging.clear();
    this.stats.pooledBytes = 0;
    return freed;
  }

  /** The live GPU buffer of a tensor's storage. */
  gpuOf(buffer: GpuBuffer): GPUBuffer {
    if (buffer.gpu === null) throw new Error(`webgpu backend: ${this.describe()} used a released buffer`);
    return buffer.gpu;
  }

  /**
   * A new buffer holding `data`. Small uploads (scalars, positions) are written by a dispatch from
   * the parameter block, so they stay in order in the open encoder and may reuse a buffer released
   * since the last submission; larger ones use queue.writeBuffer into a buffer already free.
   */
  upload(data: ArrayBufferView, length: number, dtype: DType): GpuBuffer {
    if (length > 0 && length <= SMALL_UPLOAD_WORDS) {
      const out = this.alloc(length, dtype);
      const words = new Uint32Array(data.buffer, data.byteOffset, length);
      const pipeline = this.pipeline('upload-small', () => SMALL_UPLOAD_SOURCE);
      const { binding, skip } = this.bind(out);
      this.dispatch(pipeline, [length, skip, ...words], [binding], 1);
      return out;
    }
    const out = this.alloc(length, dtype, true);
    if (data.byteLength > 0) {
      this.device.queue.writeBuffer(this.gpuOf(out), 0, data.buffer, data.byteOffset, data.byteLength);
    }
    return out;
  }

  /** Copies `count` elements from src[srcStart …] to dst[dstStart …], in order with the dispatches. */
  copy(src: GpuBuffer, srcStart: number, dst: GpuBuffer, dstStart: number, count: number): void {
    if (count === 0) return;
    this.endPass();
    this.openEncoder().copyBufferToBuffer(
      this.gpuOf(src),
      4 * srcStart,
      this.gpuOf(dst),
      4 * dstStart,
      4 * count,
    );
  }

  /**
   * Reads `length` elements back: submits the pending work, copies into a mappable staging buffer
   * and waits for it. The one place the CPU waits for the GPU.
   */
  async read(buffer: GpuBuffer, dtype: DType): Promise<Float32Array | Int32Array> {
    this.begin('read', () => `${buffer.length} ${dtype}`);
    const bytes = buffer.length * 4;
    if (bytes === 0) return dtype === 'int32' ? new Int32Array(0) : new Float32Array(0);
    const size = sizeClass(bytes);
    const staging = this.staging.get(size)?.pop() ?? this.createBuffer(size, USAGE_MAP_READ | USAGE_COPY_DST);
    this.endPass();
    this.openEncoder().copyBufferToBuffer(this.gpuOf(buffer), 0, staging, 0, bytes);
    this.flush();
    this.stats.reads++;
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, bytes);
    } catch (e) {
      this.check('read', () => `${buffer.length} ${dtype}`);
      throw new Error(
        `webgpu backend: reading ${buffer.length} ${dtype} back failed: ${(e as Error).message}`,
      );
    }
    const copy = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    let list = this.staging.get(size);
    if (!list) {
      list = [];
      this.staging.set(size, list);
    }
    list.push(staging);
    this.check('read', () => `${buffer.length} ${dtype}`);
    return dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
  }

  // ---- kernels -----------------------------------------------------------------------------

  /**
   * The compute pipeline for a WGSL source, compiled on first use and cached by `key`. Its layout
   * comes from the bindings the source declares (header() in wgsl.ts): group 0 the parameter block
   * (a dynamic offset into the parameter arena), groups 1 and 2 one storage array each, group 3
   * the others. A bind group of one buffer serves every kernel that takes that buffer first or
   * second, so the number of bind groups grows with the buffers, not with their combinations.
   */
  pipeline(key: string, source: () => string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const code = source();
      const module = this.device.createShaderModule({ code, label: key });
      const signature = BindGroups.signature(code, key);
      const groups = [this.uniformLayout, ...this.bindGroups.layoutsFor(signature)];
      p = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: groups }),
        compute: { module, entryPoint: 'main' },
        label: key,
      });
      this.pipelines.set(key, p);
      this.signatures.set(p, signature);
      this.stats.pipelines++;
    }
    return p;
  }

  /** Destroys a pooled GPU buffer and forgets its bind groups. */
  private destroyPooled(buffer: GPUBuffer): void {
    this.bindGroups.forget(buffer);
    buffer.destroy();
  }

  private openEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /**
   * Encodes one dispatch of `groups` workgroups (spread over x and y when above the per-dimension
   * limit; kernels compute their linear workgroup index from num_workgroups) with `params` as the
   * uniform block at binding 0 and `bindings` as storage bindings 1, 2, ….
   */
  dispatch(
    pipeline: GPUComputePipeline,
    params: ArrayLike<number>,
    bindings: readonly Binding[],
    groups: number,
  ): void {
    if (groups === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(groups, maxDim);
    const y = Math.ceil(groups / x);
    if (y > maxDim) {
      throw new RangeError(
        `webgpu backend: ${this.describe()} needs ${groups} workgroups, above ${maxDim}² (maxComputeWorkgroupsPerDimension)`,
      );
    }
    if (this.arenaUsed + this.arenaStride > this.arenaData.byteLength) this.flush();
    const offset = this.arenaUsed;
    const words = this.arenaWords.subarray(offset / 4, offset / 4 + PARAM_WORDS);
    words.fill(0);
    for (let i = 0; i < params.length; i++) words[i] = params[i]! >>> 0;
    this.arenaUsed += this.arenaStride;
    const resources = bindings.map((resource): Binding => {
      if (resource.size > this.limits.maxStorageBufferBindingSize) {
        throw new RangeError(
          `webgpu backend: ${this.describe()} binds ${formatBytes(resource.size)} at once, above this device's ` +
            `maxStorageBufferBindingSize (${formatBytes(this.limits.maxStorageBufferBindingSize)})`,
        );
      }
      return resource;
    });
    const signature = this.signatures.get(pipeline);
    if (signature === undefined || signature.length !== resources.length) {
      throw new Error(
        `webgpu backend: ${this.describe()} passes ${resources.length} storage bindings to a kernel that declares ${signature?.length}`,
      );
    }
    const bound = this.bindGroups.forDispatch(signature, resources);
    this.stats.bindGroups = this.bindGroups.made;
    this.openEncoder();
    this.pass ??= this.encoder!.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, this.uniformGroup, [offset]);
    bound.forEach((group, i) => {
      this.pass!.setBindGroup(i + 1, group);
    });
    this.pass.dispatchWorkgroups(x, y);
    this.stats.dispatches++;
    if (++this.encoded >= this.maxDispatches) this.flush();
  }

  /** Submits everything encoded so far (no waiting). */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.arenaUsed);
    this.device.queue.submit([this.encoder.finish()]);
    this.stats.submits++;
    this.encoder = null;
    this.encoded = 0;
    this.arenaUsed = 0;
    for (const [bytes, list] of this.pending) for (const gpu of list.drain()) this.pool(bytes, gpu);
  }

  /** Waits until the GPU has finished everything submitted so far. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  /**
   * How a kernel reaches elements [start, start + count) of `buffer`: a binding and `skip`, the
   * index of element `start` in it. A buffer that fits a binding is bound whole (so its bind groups
   * repeat); a larger one through a window that begins at the nearest aligned offset at or below.
   */
  bind(buffer: GpuBuffer, start = 0, count = buffer.length - start): { binding: Binding; skip: number } {
    const gpu = this.gpuOf(buffer);
    if (buffer.bytes <= this.limits.maxStorageBufferBindingSize) {
      return { binding: { buffer: gpu, offset: 0, size: buffer.bytes }, skip: start };
    }
    const align = this.limits.minStorageBufferOffsetAlignment;
    const offset = Math.floor((start * 4) / align) * align;
    const skip = start - offset / 4;
    const size = Math.max(4, Math.min(buffer.bytes - offset, (skip + count) * 4));
    return { binding: { buffer: gpu, offset, size: Math.ceil(size / 4) * 4 }, skip };
  }

  /** Elements a single binding may hold, rounded down to whole alignment units. */
  get maxBindingElements(): number {
    const align = this.limits.minStorageBufferOffsetAlignment;
    return (Math.floor(this.limits.maxStorageBufferBindingSize / align) * align) / 4;
  }

  /** Elements a window may cover: a binding less one alignment step (a window starts at or below its first element). */
  get windowElements(): number {
    return this.maxBindingElements - this.limits.minStorageBufferOffsetAlignment / 4;
  }

  /** Invocations one dispatch may have (a 2-D grid of workgroups of `workgroup`). */
  maxInvocations(workgroup: number): number {
    return this.limits.maxComputeWorkgroupsPerDimension ** 2 * workgroup;
  }

  destroy(): void {
    this.trim();
    this.device.destroy();
  }
}
