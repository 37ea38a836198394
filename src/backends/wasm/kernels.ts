/**
 * Loader for the WebAssembly kernels (AssemblyScript sources in ./assembly, built by
 * scripts/build-wasm.mjs into ./kernels.wasm.ts). Browser-safe: no `node:*` imports, no fs, no fetch.
 *
 * Memory contract
 * - The module imports one shared memory, `env.memory`, declared as 1..65536 pages (64 KiB pages; 65536 =
 *   4 GiB, the wasm32 limit). Create it with `createSharedMemory(initial, maximum)`: any
 *   initial >= 1 and maximum <= KERNELS_MAX_PAGES fits. Engines reserve address space for the maximum,
 *   so pick a smaller maximum where that matters (browsers on 32-bit or memory-constrained devices).
 * - The module owns no linear memory: no data segments, no globals, no start function, no allocator
 *   (scripts/build-wasm.mjs checks this on every build). Instantiating it again, e.g. once per worker
 *   thread on the same memory, never writes to memory. Bytes [0, HEAP_START) are nevertheless reserved
 *   for the module; the JS allocator may use [HEAP_START, memory.buffer.byteLength).
 * - All pointers are byte addresses into that memory; all values are float32.
 * - `matmul` needs a private scratch region of `matmulScratchBytes(m, n, k)` bytes (16-byte aligned
 *   recommended; about 4 * (128 * min(k, 256) + min(k, 256) * min(n, 512)) bytes, at most ~0.7 MB).
 *   Threads splitting the rows of one product each pass their own scratch and a disjoint
 *   [rowStart, rowEnd) (the Node pool hands out row chunks); each packs B itself, so nothing else is
 *   shared or synchronised.
 */
import { KERNELS_RELAXED_WASM_BASE64, KERNELS_WASM_BASE64 } from './kernels.wasm.js';

/** Bytes in one WebAssembly page. */
export const WASM_PAGE_BYTES = 65536;
/** First byte address the JS allocator may use; [0, HEAP_START) is reserved for the module. */
export const HEAP_START = 65536;
/** Minimum pages the module declares for its imported memory (memory must have at least this many). */
export const KERNELS_MIN_PAGES = 1;
/** Maximum pages the module declares (the imported memory's maximum must not exceed it). */
export const KERNELS_MAX_PAGES = 65536;

/** The exports of one kernel instance. Pointers are byte addresses; sizes and strides are in elements. */
export interface KernelExports {
  /**
   * C[i, j] = sum_p A[i, p] * B[p, j] for i in [rowStart, rowEnd), j in [0, n), float32.
   * A[i, p] is the float32 at a + 4 * (i * aRowStride + p * aColStride); B[p, j] at
   * b + 4 * (p * bRowStride + j * bColStride) (so a transposed operand is just swapped strides).
   * C is row-major with row pitch n; rows [rowStart, rowEnd) are overwritten (not accumulated into),
   * other rows are untouched. rowStart/rowEnd are clamped to [0, m]. `scratch` must point to
   * matmulScratchBytes(m, n, k) bytes used by this call only. C must not overlap A, B or scratch.
   * k = 0 writes zeros.
   */
  matmul(
    a: number,
    b: number,
    c: number,
    m: number,
    n: number,
    k: number,
    aRowStride: number,
    aColStride: number,
    bRowStride: number,
    bColStride: number,
    rowStart: number,
    rowEnd: number,
    scratch: number,
  ): void;
  /** Scratch bytes `matmul` needs for an m x k by k x n product (valid for any row range of it). */
  matmulScratchBytes(m: number, n: number, k: number): number;
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

let compiled: WebAssembly.Module | undefined;
let relaxedBytes: Uint8Array | undefined;
let build: 'relaxed' | 'exact' | undefined;

/** The build TITANS_WASM_SIMD asks for in Node ('relaxed' where unset; browsers have no such setting). */
function requestedBuild(): 'relaxed' | 'exact' {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const value = env?.TITANS_WASM_SIMD;
  if (value === undefined || value === '' || value === 'relaxed') return 'relaxed';
  if (value === 'exact') return 'exact';
  throw new RangeError(`TITANS_WASM_SIMD must be 'relaxed' or 'exact', got '${value}'`);
}

/**
 * Node 20's V8 (11.3) implements relaxed SIMD but validates it only behind
 * --experimental-wasm-relaxed-simd; V8 11.4 shipped it (Chrome 114; Node ≥ 22 validates it by
 * default). Turning the flag on before the first compile gives Node 20 the build later runtimes get
 * by default (V8 reads the flag when it validates a module; the whole test suite passes on it).
 * Found through process.getBuiltinModule (Node ≥ 20.16), so this module stays free of `node:*`
 * imports; elsewhere it does nothing.
 */
function enableNodeRelaxedSimd(): void {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const v8 = proc?.getBuiltinModule?.('node:v8') as
    | { setFlagsFromString?: (flags: string) => void }
    | undefined;
  v8?.setFlagsFromString?.('--experimental-wasm-relaxed-simd');
}

/**
 * Which kernel build this runtime runs, chosen once: the relaxed-SIMD build (the register tiles'
 * multiply-adds, matmul's and attention's, fused: one rounding instead of two, on every CPU with
 * FMA) where the runtime validates it, after turning relaxed SIMD on in Node 20 (see
 * enableNodeRelaxedSimd); else, or with TITANS_WASM_SIMD=exact, the SIMD build (IEEE float32
 * multiply then add: the same bits on every host).
 */
function kernelBuild(): 'relaxed' | 'exact' {
  if (build) return build;
  if (requestedBuild() === 'exact') {
    build = 'exact';
  } else {
    relaxedBytes ??= decodeBase64(KERNELS_RELAXED_WASM_BASE64);
    if (!WebAssembly.validate(relaxedBytes)) enableNodeRelaxedSimd();
    build = WebAssembly.validate(relaxedBytes) ? 'relaxed' : 'exact';
  }
  return build;
}

/** The kernel binary this runtime runs (see kernelBuild). */
function kernelBytes(): Uint8Array {
  if (kernelBuild() === 'exact') return decodeBase64(KERNELS_WASM_BASE64);
  relaxedBytes ??= decodeBase64(KERNELS_RELAXED_WASM_BASE64);
  return relaxedBytes;
}

/** Which kernel build this runtime runs (see kernelBuild). */
export function kernelFeatures(): { relaxedSimd: boolean } {
  return { relaxedSimd: kernelBuild() === 'relaxed' };
}

/**
 * The compiled kernel module (compiled once, then cached). A Module can be posted to workers, which
 * then call `instantiateKernels` on it with the shared memory. The binary is tens of KB: Node and
 * browser workers compile it synchronously, but a browser's main thread refuses synchronous
 * compiles over 4 KB — there, `await compileKernelsAsync()` first (what `loadWasmBackend` does).
 */
export function compileKernels(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(kernelBytes());
  return compiled;
}

/** Compiles the kernel module asynchronously (allowed everywhere) and caches it for `compileKernels`. */
export async function compileKernelsAsync(): Promise<WebAssembly.Module> {
  compiled ??= await WebAssembly.compile(kernelBytes());
  return compiled;
}

/** A shared memory the kernels can import: `initialPages` now, growable up to `maximumPages`. */
export function createSharedMemory(
  initialPages: number,
  maximumPages: number = KERNELS_MAX_PAGES,
): WebAssembly.Memory {
  if (!Number.isInteger(initialPages) || !Number.isInteger(maximumPages)) {
    throw new RangeError(
      `createSharedMemory: page counts must be integers (${initialPages}, ${maximumPages})`,
    );
  }
  if (initialPages < KERNELS_MIN_PAGES || maximumPages < initialPages || maximumPages > KERNELS_MAX_PAGES) {
    throw new RangeError(
      `createSharedMemory: need ${KERNELS_MIN_PAGES} <= initial (${initialPages}) <= maximum (${maximumPages}) <= ${KERNELS_MAX_PAGES}`,
    );
  }
  return new WebAssembly.Memory({ initial: initialPages, maximum: maximumPages, shared: true });
}

/** Instantiates the kernels on `memory` (synchronously). Cheap; does not touch memory. */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}

// The project compiles against lib ES2022 without DOM, which has no WebAssembly types; this declares
// the part of the JS API used here, shaped like lib.dom's declarations. It is local to this module
// (not `declare global`), so the shipped kernels.d.ts neither clashes with a consumer's lib.dom
// (TS2451/TS2300) nor needs it; other modules use the WasmModule and WasmMemory aliases below.
declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  interface Memory {
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  const Memory: {
    prototype: Memory;
    new (descriptor: MemoryDescriptor): Memory;
  };
  interface ModuleExportDescriptor {
    kind: 'function' | 'global' | 'memory' | 'table';
    name: string;
  }
  interface ModuleImportDescriptor {
    kind: 'function' | 'global' | 'memory' | 'table';
    module: string;
    name: string;
  }
  interface Module {
    readonly [Symbol.toStringTag]: string;
  }
  function validate(bytes: ArrayBufferView | ArrayBuffer): boolean;
  const Module: {
    prototype: Module;
    new (bytes: ArrayBufferView | ArrayBuffer): Module;
    exports(module: Module): ModuleExportDescriptor[];
    imports(module: Module): ModuleImportDescriptor[];
  };
  type ImportValue = Memory | ((...args: never[]) => unknown) | number;
  type Imports = Record<string, Record<string, ImportValue>>;
  type Exports = Record<string, unknown>;
  interface Instance {
    readonly exports: Exports;
  }
  const Instance: {
    prototype: Instance;
    new (module: Module, importObject?: Imports): Instance;
  };
  function compile(bytes: ArrayBufferView | ArrayBuffer): Promise<Module>;
}

/** A compiled kernels module (WebAssembly.Module). */
export type WasmModule = WebAssembly.Module;
/** The kernels' shared memory (WebAssembly.Memory). */
export type WasmMemory = WebAssembly.Memory;
