// What the page and the training worker share: choosing the backend, and the planted sentence.
import * as titans from '../dist/src/index.js';

/**
 * Picks the compute backend and returns its name. WebGPU is being written as its own backend:
 * once the library exports `loadWebGpuBackend`, it is used where the browser offers a GPU
 * (`?backend=wasm` in the page's address keeps the CPU). Otherwise WebAssembly SIMD ('wasm', which
 * needs a cross-origin isolated page for its shared memory), else the plain 'reference' backend.
 */
export async function chooseBackend(preference = new URLSearchParams(globalThis.location?.search ?? '').get('backend')) {
  if (preference !== 'wasm' && typeof titans.loadWebGpuBackend === 'function' && globalThis.navigator?.gpu) {
    const gpu = await titans.loadWebGpuBackend();
    if (gpu) return gpu.name;
  }
  const wasm = await titans.loadWasmBackend();
  return wasm ? wasm.name : 'reference';
}

/** The fact the demo plants: the pass-key sentence the shipped model was trained to recall. */
export function needleSentence(key) {
  return `The pass key is ${key}. Remember it. ${key} is the pass key. `;
}
