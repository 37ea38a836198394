/**
 * `--backend <name>` for every command that computes: makes wasm (the default), webgpu or
 * reference the default backend before the command runs (the library's one way to choose it:
 * `setBackend`). webgpu is loaded first (`loadWebGpuBackend`), with a clear error where there is
 * no adapter.
 */
import { InvalidArgumentError } from 'commander';
import { loadWebGpuBackend, setBackend, wasmBackend } from '../index.js';

export const BACKEND_NAMES = ['wasm', 'webgpu', 'reference'] as const;

export function backendName(value: string): string {
  if (!(BACKEND_NAMES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${BACKEND_NAMES.join(', ')}`);
  }
  return value;
}

/** Makes `name` the default backend (nothing to do when undefined). */
export async function selectBackend(name: string | undefined): Promise<void> {
  if (name === undefined) return;
  if (name === 'webgpu') {
    const backend = await loadWebGpuBackend();
    if (!backend) {
      throw new Error(
        "--backend webgpu: no WebGPU adapter found (Node needs the optional package 'webgpu' and a Vulkan " +
          'driver; on a machine without a GPU, scripts/setup-webgpu.sh installs a software one)',
      );
    }
    console.error(
      `backend: webgpu on ${backend.adapterName}${backend.software ? ' (a software driver: correct, not fast)' : ''}`,
    );
  } else if (name === 'wasm' && !wasmBackend) {
    throw new Error('--backend wasm: WebAssembly SIMD or shared memory is unavailable in this runtime');
  }
  setBackend(name);
}
