/// <reference types="@webgpu/types" />
/**
 * Finding a GPU: `navigator.gpu` in browsers, the `webgpu` npm package (Dawn) in Node. The package
 * is imported dynamically, so bundles for the browser and installs without it are unaffected.
 * Browser-safe: no `node:*` imports.
 */
import { getBackend, listBackends, registerBackend } from '../../engine/tensor.js';
import type { LoadWebGpuOptions, WebGpuBackend, WebGpuBackendOptions, WebGpuEntry } from './types.js';
import { createWebGpuBackend } from './webgpu-backend.js';

export type { LoadWebGpuOptions, WebGpuBackend, WebGpuBackendOptions, WebGpuEntry };

/** Bind groups a dawn.node device makes before the backend refuses (see GpuContextOptions.maxBindGroups). */
const DAWN_NODE_MAX_BIND_GROUPS = 60000;

/** Keeps Dawn's GPU object alive for the process (its adapters and devices hang off it). */
let nodeGpu: GPU | null = null;

async function findGpu(): Promise<Pick<GPU, 'requestAdapter'> | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (!isNode) return null;
  if (nodeGpu) return nodeGpu;
  try {
    const specifier = 'webgpu';
    const dawn = (await import(/* @vite-ignore */ specifier)) as {
      create(flags: string[]): GPU;
      globals: Record<string, unknown>;
    };
    nodeGpu = dawn.create([]);
    return nodeGpu;
  } catch {
    return null;
  }
}

/**
 * Registers the WebGPU backend (named 'webgpu') and returns it, or null where there is no WebGPU
 * adapter (no `navigator.gpu`, the `webgpu` package not installed in Node, or no adapter found).
 * It does not become the default: choose it with `setBackend('webgpu')`, per tensor with
 * `{ backend: 'webgpu' }`, or per call with `withBackend`. Reads on it are asynchronous only
 * (`await t.data()`).
 *
 * @example
 * const gpu = await loadWebGpuBackend();
 * if (gpu) setBackend('webgpu');
 */
export async function loadWebGpuBackend(options: LoadWebGpuOptions = {}): Promise<WebGpuBackend | null> {
  const name = options.name ?? 'webgpu';
  if (listBackends().includes(name)) return getBackend(name) as WebGpuBackend;
  const gpu = (options.gpu === undefined ? await findGpu() : options.gpu) as Pick<
    GPU,
    'requestAdapter'
  > | null;
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter(
    options.powerPreference ? { powerPreference: options.powerPreference } : undefined,
  );
  if (!adapter) return null;
  // Ask for the adapter's own limits where they exceed WebGPU's defaults (bigger bindings and buffers).
  const wanted = [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupsPerDimension',
  ] as const;
  const requiredLimits: Record<string, number> = {};
  for (const key of wanted) requiredLimits[key] = adapter.limits[key];
  const device = await adapter.requestDevice({ requiredLimits });
  const info = adapter.info;
  const adapterName =
    [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
  // dawn.node keeps every bind group until its device goes and crashes after about 65 thousand.
  const dawn = gpu === nodeGpu && nodeGpu !== null;
  const backend = createWebGpuBackend(device, adapterName, {
    ...(dawn ? { maxBindGroups: DAWN_NODE_MAX_BIND_GROUPS } : {}),
    ...options,
    name,
  });
  if (listBackends().includes(name)) {
    backend.destroy(); // another call registered one while this one waited
    return getBackend(name) as WebGpuBackend;
  }
  registerBackend(backend);
  return backend;
}
