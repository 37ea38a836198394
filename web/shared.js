// What the page and the training worker share: choosing the backend, and the planted sentence.
import * as titans from '../dist/src/index.js';

/**
 * Picks the compute backend, makes it the default and returns its name. `?backend=webgpu` in the
 * page's address asks for WebGPU (with Chromium on Linux: --enable-unsafe-webgpu), `?backend=wasm`
 * for the CPU; by default WebGPU is used where the browser offers a hardware adapter, and
 * WebAssembly SIMD ('wasm', which needs a cross-origin isolated page for its shared memory)
 * elsewhere — a software adapter (SwiftShader) is correct but slower than wasm. Without either, the
 * plain 'reference' backend.
 */
export async function chooseBackend(preference = new URLSearchParams(globalThis.location?.search ?? '').get('backend')) {
  if (preference !== 'wasm' && globalThis.navigator?.gpu) {
    const gpu = await titans.loadWebGpuBackend();
    if (gpu && (preference === 'webgpu' || !gpu.software)) {
      titans.setBackend(gpu.name);
      return gpu.name;
    }
  }
  const wasm = await titans.loadWasmBackend();
  if (wasm) titans.setBackend(wasm.name);
  return wasm ? wasm.name : 'reference';
}

/** The fact the demo plants: the pass-key sentence the shipped model was trained to recall. */
export function needleSentence(key) {
  return `The pass key is ${key}. Remember it. ${key} is the pass key. `;
}
