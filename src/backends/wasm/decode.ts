/**
 * The wasm backend's single-token decoding kernels (`FusedBlocks.decode`, engine/backend.ts): JS
 * glue around ./assembly/decode.ts. Each method is one kernel call on byte addresses; the only
 * allocation is a small scratch kept for the backend's lifetime. Browser-safe.
 */
import type { BackendBuffer, DecodeKernels } from '../../engine/backend.js';
import type { KernelExports } from './kernels.js';
import { DECODE_MAP } from './opcodes.js';
import type { WasmBuffer, WasmHeap } from './wasm-backend.js';

/** The decoding exports of the kernel module (byte addresses; sizes in elements). */
interface DecodeKernelExports {
  decodeGemv(out: number, x: number, w: number, m: number, n: number, accumulate: number): void;
  decodeGemvRows(out: number, x: number, w: number, rows: number, cols: number): void;
  decodeRmsNorm(
    out: number,
    x: number,
    scale: number,
    n: number,
    groups: number,
    scaleStride: number,
    eps: number,
  ): void;
  decodeL2Normalize(x: number, n: number, groups: number, eps: number): void;
  decodeMap(op: number, out: number, a: number, b: number, n: number, s: number): void;
  decodeConvStep(out: number, z: number, taps: number, tail: number, K: number, C: number): void;
  decodeRope(x: number, heads: number, dh: number, cs: number): void;
  decodeAttend(
    out: number,
    q: number,
    k: number,
    v: number,
    heads: number,
    rows: number,
    keys: number,
    dh: number,
    scale: number,
    scratch: number,
  ): void;
  memoryTokenStep(...args: number[]): void;
  memoryTokenRead(...args: number[]): void;
}

function at(buffer: BackendBuffer, offset: number): number {
  const p = (buffer as WasmBuffer).ptr;
  if (p < 0) throw new Error('wasm backend: buffer used after release');
  return p + 4 * offset;
}

/** The decode kernels of a wasm backend (undefined when the module lacks them). */
export function createWasmDecode(heap: WasmHeap, kernels: KernelExports): DecodeKernels | undefined {
  const k = kernels as unknown as Partial<DecodeKernelExports>;
  if (typeof k.memoryTokenStep !== 'function' || typeof k.decodeGemv !== 'function') return undefined;
  const kx = k as DecodeKernelExports;
  // A scratch region for the memory kernels and RoPE's table, grown on demand and kept.
  let scratch = heap.allocBytes(4096);
  const scratchOf = (bytes: number): number => {
    if (scratch[1] < bytes) {
      heap.freeBytes(...scratch);
      scratch = heap.allocBytes(bytes);
    }
    return scratch[0];
  };
  const activation = (name: 'silu' | 'gelu') => (name === 'silu' ? 0 : 1);
  return {
    gemv(out, outAt, x, xAt, w, m, n, accumulate) {
      kx.decodeGemv(at(out, outAt), at(x, xAt), at(w, 0), m, n, accumulate ? 1 : 0);
    },
    gemvRows(out, x, xAt, w, rows, cols) {
      kx.decodeGemvRows(at(out, 0), at(x, xAt), at(w, 0), rows, cols);
    },
    rmsNorm(out, outAt, x, xAt, scale, n, groups, scaleStride, eps) {
      kx.decodeRmsNorm(at(out, outAt), at(x, xAt), scale ? at(scale, 0) : 0, n, groups, scaleStride, eps);
    },
    l2Normalize(x, xAt, n, groups, eps) {
      kx.decodeL2Normalize(at(x, xAt), n, groups, eps);
    },
    map(op, out, outAt, a, aAt, b, bAt, n, s) {
      kx.decodeMap(DECODE_MAP[op], at(out, outAt), at(a, aAt), b ? at(b, bAt) : 0, n, s);
    },
    convStep(out, outAt, z, zAt, taps, tail, K, C) {
      kx.decodeConvStep(at(out, outAt), at(z, zAt), at(taps, 0), at(tail, 0), K, C);
    },
    rope(x, xAt, heads, dh, cosSin) {
      const cs = scratchOf(4 * cosSin.length);
      new Float32Array(heap.memory.buffer, cs, cosSin.length).set(cosSin);
      kx.decodeRope(at(x, xAt), heads, dh, cs);
    },
    copy(dst, dstAt, src, srcAt, n) {
      const view = new Float32Array(heap.memory.buffer);
      const from = at(src, srcAt) >> 2;
      view.copyWithin(at(dst, dstAt) >> 2, from, from + n);
    },
    attend(out, q, k, v, heads, rows, keys, dh, scale) {
      kx.decodeAttend(
        at(out, 0),
        at(q, 0),
        at(k, 0),
        at(v, 0),
        heads,
        rows,
        keys,
        dh,
        scale,
        scratchOf(4 * keys),
      );
    },
    memoryStep(a) {
      const [w1, w2] = a.weights;
      const [s1, s2] = a.momentum;
      const [g1, g2] = a.chunkStart;
      const depth2 = a.depth === 2;
      kx.memoryTokenStep(
        at(a.q, a.at[0]),
        at(a.k, a.at[1]),
        at(a.v, a.at[2]),
        at(a.gates, a.at[3]),
        at(a.gates, a.at[4]),
        at(a.gates, a.at[5]),
        at(w1!, 0),
        at(s1!, 0),
        at(g1!, 0),
        depth2 ? at(w2!, 0) : 0,
        depth2 ? at(s2!, 0) : 0,
        depth2 ? at(g2!, 0) : 0,
        at(a.y, 0),
        a.heads,
        a.d,
        a.hidden,
        a.depth,
        activation(a.activation),
        a.residual ? 1 : 0,
        a.start ? 1 : 0,
        a.end ? 1 : 0,
        scratchOf(4 * (4 * a.hidden + 2 * a.d)),
      );
    },
    memoryRead(q, qAt, weights, y, heads, d, hidden, act, residual) {
      kx.memoryTokenRead(
        at(q, qAt),
        at(weights[0]!, 0),
        weights.length === 2 ? at(weights[1]!, 0) : 0,
        at(y, 0),
        heads,
        d,
        hidden,
        weights.length,
        activation(act),
        residual ? 1 : 0,
        scratchOf(4 * hidden),
      );
    },
  };
}
