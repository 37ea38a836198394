/**
 * The wasm backend's fused memory scan (`Backend.fusedMemoryScan`): JS glue around the
 * AssemblyScript kernels in ./assembly/memory.ts. `memoryScan` (memory/scan.ts) validates its
 * arguments, asks `supports` — which declines depth ≥ 3, non-float32, weights whose leading axes
 * do not broadcast to q's, and very large chunks — and records the call as one tape node; this
 * file sees only buffers and the plain `MemoryScanParams`.
 *
 * Each (batch·head) index is one task for the kernels' per-head drivers
 * (memoryScanForwardHead/BackwardHead), which run its chunk pieces in order (backward: in
 * reverse); with a thread pool attached, heads run on all threads. A recorded forward keeps every
 * piece-start state (W, S) and every piece's intermediates (key-pass factors, activations,
 * scores) in its `saved` buffer when they fit `memoryScanLimits.saveBytes`; otherwise the
 * backward recomputes them per head (with √P checkpoints beyond `memoryScanLimits.stateBytes`).
 * Browser-safe: no `node:*` imports.
 */
import {
  type BackendBuffer,
  type FusedMemoryScan,
  type MemoryScanBuffers,
  type MemoryScanParams,
  memoryScanOutputShapes,
} from '../../engine/backend.js';
import { broadcastStrides, broadcastsTo, type Shape } from '../../engine/shape.js';
import type { KernelExports } from './kernels.js';
import type { WasmBackend, WasmBuffer, WasmHeap } from './wasm-backend.js';

/** The memory-scan exports of the kernel module (byte addresses; sizes and pitches in elements). */
export interface MemoryScanKernelExports {
  memoryScanScratchBytes(n: number, d: number, h: number, depth: number): number;
  memoryScanRecordFloats(n: number, d: number, h: number, depth: number): number;
  memoryScanParamWords(): number;
  memoryScanStateFloats(d: number, h: number, depth: number): number;
  memoryScanForwardHead(params: number, scratch: number): void;
  memoryScanBackwardHead(params: number, scratch: number): void;
  memoryScanCopyRows(
    dst: number,
    dstStride: number,
    src: number,
    srcStride: number,
    rows: number,
    cols: number,
    mode: number,
  ): void;
}

/** The memory-scan kernels of an instance, or null when the module was built without them. */
export function memoryScanKernels(kernels: KernelExports): MemoryScanKernelExports | null {
  const k = kernels as unknown as Partial<MemoryScanKernelExports>;
  return typeof k.memoryScanForwardHead === 'function' &&
    typeof k.memoryScanBackwardHead === 'function' &&
    typeof k.memoryScanScratchBytes === 'function' &&
    typeof k.memoryScanCopyRows === 'function'
    ? (k as MemoryScanKernelExports)
    : null;
}

/**
 * Memory limits of the fused scan (bytes). Exported so tests can shrink them to exercise the
 * recompute and checkpoint paths; the defaults suit training.
 */
export const memoryScanLimits = {
  /** Largest per-piece scratch the fused path accepts (bigger chunks compose ops instead). */
  maxScratchBytes: 256 * 2 ** 20,
  /**
   * What a recorded forward keeps for its backward, all heads: every piece-start state and every
   * piece's intermediates. Beyond it the backward recomputes them.
   */
  saveBytes: 256 * 2 ** 20,
  /** Recomputed piece-start states the backward keeps per head before it checkpoints (√P). */
  stateBytes: 64 * 2 ** 20,
};

/** Creates the fused memory scan of a wasm backend (undefined when the kernels lack it). */
export function createWasmMemoryScan(
  getBackend: () => WasmBackend,
  heap: WasmHeap,
  kernels: KernelExports,
): FusedMemoryScan | undefined {
  const kx = memoryScanKernels(kernels);
  if (!kx) return undefined;
  return {
    supports: (params, dtype) => dtype === 'float32' && planScan(kx, params) !== null,
    forward: (inputs, params, _dtype, recording) =>
      scanForward(getBackend(), heap, kx, planScan(kx, params)!, inputs, recording),
    backward: (inputs, saved, cotangent, params) =>
      scanBackward(getBackend(), heap, kx, planScan(kx, params)!, inputs, saved, cotangent),
  };
}

/**
 * For each leading index (row-major over `lead`), the matrix index in a stack of matrices with
 * leading axes `own` that broadcast to `lead` (right-aligned, each 1 or equal); null when they
 * do not.
 */
function broadcastIndex(own: Shape, lead: Shape): Int32Array | null {
  if (!broadcastsTo(own, lead)) return null;
  const strides = broadcastStrides(own, lead); // in matrices; 0 along broadcast axes
  const count = lead.reduce((x, y) => x * y, 1);
  const out = new Int32Array(count);
  const index = new Array<number>(lead.length).fill(0);
  for (let i = 0; i < count; i++) {
    let flat = 0;
    for (let a = 0; a < lead.length; a++) flat += strides[a]! * index[a]!;
    out[i] = flat;
    for (let a = lead.length - 1; a >= 0; a--) {
      if (++index[a]! < lead[a]!) break;
      index[a] = 0;
    }
  }
  return out;
}

/** Word indices of a driver parameter block (mirrors the P_* constants of assembly/memory.ts). */
const P = {
  d: 0,
  h: 1,
  depth: 2,
  act: 3,
  residual: 4,
  T: 5,
  b: 6,
  offset: 7,
  q: 8, // q, k, v, alpha, eta, theta
  W: 14,
  S: 16,
  C: 18,
  y: 20,
  WO: 21,
  SO: 23,
  CO: 25,
  saved: 27,
  pieceBytes: 28,
  dy: 29,
  dWO: 30,
  dSO: 32,
  dCO: 34,
  dq: 36, // dq, dk, dv, dAlpha, dEta, dTheta
  dInit: 42,
  dC: 43,
  seg: 45,
} as const;

/** Runs one driver call per head: on the thread pool when there is one, else here. */
function runHeads(
  backend: WasmBackend,
  heap: WasmHeap,
  kx: MemoryScanKernelExports,
  driver: 'memoryScanForwardHead' | 'memoryScanBackwardHead',
  params: number,
  heads: number,
  scratchBytes: number,
): void {
  const paramBytes = 4 * kx.memoryScanParamWords();
  const pool = backend.threadPool;
  if (pool?.runTasks && pool.threads > 1 && heads > 1) {
    pool.runTasks(driver, heads, params, paramBytes, scratchBytes);
    return;
  }
  const [scratch, size] = heap.allocBytes(scratchBytes);
  try {
    for (let i = 0; i < heads; i++) kx[driver](params + i * paramBytes, scratch);
  } finally {
    heap.freeBytes(scratch, size);
  }
}

/** What forward and backward derive from a call's parameters; null where the kernels decline. */
interface ScanPlan {
  readonly params: MemoryScanParams;
  readonly depth: number;
  readonly T: number;
  readonly d: number;
  readonly h: number;
  readonly firstOffset: number;
  readonly heads: number;
  /** Layer l maps din[l] → dout[l]; sizes[l] = din[l]·dout[l]. */
  readonly din: readonly number[];
  readonly dout: readonly number[];
  readonly sizes: readonly number[];
  /** Per head, the matrix index of each weight / momentum / chunk-start matrix. */
  readonly wIndex: readonly Int32Array[];
  readonly sIndex: readonly Int32Array[] | null;
  readonly cIndex: readonly Int32Array[] | null;
  readonly pieces: number;
  readonly pieceBytes: number;
  readonly recordBytes: number;
  readonly stateFloats: number;
  readonly blockBytes: number;
  /** Whether the packed outputs end with new chunk-start weights (memoryScanOutputShapes). */
  readonly chunkStartOut: boolean;
  readonly total: number;
}

function planScan(kx: MemoryScanKernelExports, params: MemoryScanParams): ScanPlan | null {
  const depth = params.widths.length - 1;
  if (depth !== 1 && depth !== 2) return null;
  if (params.activation !== 'silu' && params.activation !== 'gelu') return null;
  const b = params.chunkSize;
  const T = params.tokens;
  const d = params.widths[0]!;
  if (T === 0 || d === 0) return null;
  const firstOffset = params.position % b;
  if ((firstOffset !== 0) !== (params.chunkStartLeads !== null)) return null;
  const h = depth === 2 ? params.widths[1]! : d;
  if (h === 0) return null;
  const lead = params.lead;
  const heads = lead.reduce((x, y) => x * y, 1);
  const indices = (leads: readonly Shape[] | null) => leads?.map((own) => broadcastIndex(own, lead)) ?? null;
  const wIndex = indices(params.weightLeads)!;
  const sIndex = indices(params.momentumLeads);
  const cIndex = indices(params.chunkStartLeads);
  if ([...wIndex, ...(sIndex ?? []), ...(cIndex ?? [])].some((x) => x === null)) return null;

  const firstPiece = Math.min(b - firstOffset, T);
  const pieces = 1 + Math.ceil((T - firstPiece) / b);
  const pieceBytes = kx.memoryScanScratchBytes(Math.min(b, T), d, h, depth);
  if (pieceBytes > memoryScanLimits.maxScratchBytes) return null;
  const din = depth === 2 ? [d, h] : [d];
  const dout = depth === 2 ? [h, d] : [d];
  const stateFloats = kx.memoryScanStateFloats(d, h, depth);
  // W, S (and chunk-start W) per layer after y.
  const outputCount = (memoryScanOutputShapes(params).length - 1) / depth;
  return {
    params,
    depth,
    T,
    d,
    h,
    firstOffset,
    heads,
    din,
    dout,
    sizes: din.map((x, l) => x * dout[l]!),
    wIndex: wIndex as Int32Array[],
    sIndex: sIndex as Int32Array[] | null,
    cIndex: cIndex as Int32Array[] | null,
    pieces,
    pieceBytes,
    recordBytes: 4 * kx.memoryScanRecordFloats(Math.min(b, T), d, h, depth),
    stateFloats,
    blockBytes: 4 * stateFloats,
    chunkStartOut: outputCount === 3,
    total: heads * T * d + heads * outputCount * (stateFloats / 2),
  };
}

/** Float offset of output matrix (j = 0 W, 1 S, 2 chunk-start W) of layer l, head i, after y. */
function outMatrix(p: ScanPlan, j: number, l: number, i: number): number {
  return (
    p.heads * p.T * p.d + p.heads * (j * (p.stateFloats / 2) + (l === 0 ? 0 : p.sizes[0]!)) + i * p.sizes[l]!
  );
}

function ptrOf(buffer: BackendBuffer): number {
  return (buffer as WasmBuffer).ptr;
}

/** Fills head i's parameter words shared by the forward and the backward. */
function fillParams(
  p: ScanPlan,
  inputs: MemoryScanBuffers,
  words: Int32Array,
  i: number,
  out: number,
  saved: number,
): void {
  const { T, d, depth, sizes } = p;
  const matrixPtr = (buffer: BackendBuffer, index: Int32Array, l: number): number =>
    ptrOf(buffer) + 4 * index[i]! * sizes[l]!;
  words[P.d] = d;
  words[P.h] = p.h;
  words[P.depth] = depth;
  words[P.act] = p.params.activation === 'silu' ? 0 : 1;
  words[P.residual] = p.params.residual ? 1 : 0;
  words[P.T] = T;
  words[P.b] = p.params.chunkSize;
  words[P.offset] = p.firstOffset;
  [inputs.q, inputs.k, inputs.v].forEach((t, j) => {
    words[P.q + j] = ptrOf(t) + 4 * i * T * d;
  });
  [inputs.alpha, inputs.eta, inputs.theta].forEach((t, j) => {
    words[P.q + 3 + j] = ptrOf(t) + 4 * i * T;
  });
  for (let l = 0; l < depth; l++) {
    words[P.W + l] = matrixPtr(inputs.weights[l]!, p.wIndex[l]!, l);
    words[P.S + l] = inputs.momentum ? matrixPtr(inputs.momentum[l]!, p.sIndex![l]!, l) : 0;
    words[P.C + l] = inputs.chunkStart ? matrixPtr(inputs.chunkStart[l]!, p.cIndex![l]!, l) : 0;
    words[P.WO + l] = out + 4 * outMatrix(p, 0, l, i);
    words[P.SO + l] = out + 4 * outMatrix(p, 1, l, i);
    words[P.CO + l] = p.chunkStartOut ? out + 4 * outMatrix(p, 2, l, i) : 0;
  }
  words[P.y] = out + 4 * i * T * d;
  words[P.saved] = saved === 0 ? 0 : saved + i * p.pieces * (p.blockBytes + p.recordBytes);
  words[P.pieceBytes] = p.pieceBytes;
}

/** A zeroed parameter block for every head: [ptr, size, words]. */
function allocParams(
  heap: WasmHeap,
  kx: MemoryScanKernelExports,
  heads: number,
): [number, number, Int32Array] {
  const paramWords = kx.memoryScanParamWords();
  const [ptr, size] = heap.allocBytes(4 * paramWords * heads);
  const words = new Int32Array(heap.memory.buffer, ptr, paramWords * heads);
  words.fill(0);
  return [ptr, size, words];
}

/**
 * The forward: every head's chunk pieces in order. When a tape records the call, it keeps every
 * piece-start state (W, S) and every piece's intermediates for the backward, if they fit
 * `memoryScanLimits.saveBytes` — per head: the state blocks, then the pieces' records.
 */
function scanForward(
  backend: WasmBackend,
  heap: WasmHeap,
  kx: MemoryScanKernelExports,
  p: ScanPlan,
  inputs: MemoryScanBuffers,
  recording: boolean,
): { packed: BackendBuffer; saved: BackendBuffer | null } {
  const saveBytes = p.heads * p.pieces * (p.blockBytes + p.recordBytes);
  const [packed] = heap.alloc('float32', p.total);
  // saveBytes is a whole number of floats (state blocks and records are float arrays).
  const saved =
    recording && saveBytes <= memoryScanLimits.saveBytes ? heap.alloc('float32', saveBytes / 4)[0] : null;
  const paramWords = kx.memoryScanParamWords();
  const [params, paramsSize, words] = allocParams(heap, kx, p.heads);
  try {
    const out = ptrOf(packed);
    for (let i = 0; i < p.heads; i++) {
      fillParams(p, inputs, words.subarray(i * paramWords), i, out, saved === null ? 0 : ptrOf(saved));
    }
    runHeads(backend, heap, kx, 'memoryScanForwardHead', params, p.heads, p.pieceBytes + 3 * p.blockBytes);
  } finally {
    heap.freeBytes(params, paramsSize);
  }
  return { packed, saved };
}

/**
 * The backward: every head's pieces in reverse, from the saved states, or recomputing them per
 * head (with √P checkpoints beyond `memoryScanLimits.stateBytes`). The per-head cotangents of the
 * state inputs are summed over the heads that share a matrix.
 */
function scanBackward(
  backend: WasmBackend,
  heap: WasmHeap,
  kx: MemoryScanKernelExports,
  p: ScanPlan,
  inputs: MemoryScanBuffers,
  saved: BackendBuffer | null,
  cotangent: BackendBuffer,
): MemoryScanBuffers {
  const { heads, T, d, depth, sizes, din, dout, blockBytes, pieces } = p;
  const g = ptrOf(cotangent);
  const alloc = (size: number, zero: boolean): BackendBuffer => {
    const [buf, view] = heap.alloc('float32', size);
    if (zero) view.fill(0);
    return buf;
  };
  const matrices = (leads: readonly Shape[]) =>
    leads.map((own, l) => alloc(own.reduce((x, y) => x * y, 1) * sizes[l]!, true));
  const tokens = heads * T;
  const grads = [tokens * d, tokens * d, tokens * d, tokens, tokens, tokens].map((n) => alloc(n, false));
  const dW = matrices(p.params.weightLeads);
  const dS = p.params.momentumLeads ? matrices(p.params.momentumLeads) : null;
  const dC = p.params.chunkStartLeads ? matrices(p.params.chunkStartLeads) : null;

  const have = saved === null ? 0 : ptrOf(saved);
  const fits = have !== 0 || pieces * blockBytes <= memoryScanLimits.stateBytes;
  const seg = fits ? pieces : Math.max(2, Math.ceil(Math.sqrt(pieces)));
  const stored = have !== 0 ? 0 : Math.ceil(pieces / seg) + seg;
  // Per head: the input state's cotangent block and (carried G) the cotangent of G.
  const [dInit, dInitSize] = heap.allocBytes(heads * blockBytes);
  const dCFloats = p.stateFloats / 2;
  const [dCarried, dCarriedSize] = heap.allocBytes(dC ? heads * 4 * dCFloats : 4);
  const paramWords = kx.memoryScanParamWords();
  const [params, paramsSize, words] = allocParams(heap, kx, heads);
  try {
    if (dC) new Float32Array(heap.memory.buffer, dCarried, heads * dCFloats).fill(0);
    const layerFloats = (l: number) => (l === 0 ? 0 : sizes[0]!);
    for (let i = 0; i < heads; i++) {
      const w = words.subarray(i * paramWords);
      fillParams(p, inputs, w, i, 0, have);
      w[P.dy] = g + 4 * i * T * d;
      grads.forEach((buffer, j) => {
        w[P.dq + j] = ptrOf(buffer) + 4 * i * T * (j < 3 ? d : 1);
      });
      for (let l = 0; l < depth; l++) {
        w[P.dWO + l] = g + 4 * outMatrix(p, 0, l, i);
        w[P.dSO + l] = g + 4 * outMatrix(p, 1, l, i);
        w[P.dCO + l] = p.chunkStartOut ? g + 4 * outMatrix(p, 2, l, i) : 0;
        w[P.dC + l] = dC ? dCarried + 4 * (i * dCFloats + layerFloats(l)) : 0;
      }
      w[P.dInit] = dInit + i * blockBytes;
      w[P.seg] = seg;
    }
    runHeads(
      backend,
      heap,
      kx,
      'memoryScanBackwardHead',
      params,
      heads,
      p.pieceBytes + (stored + 2) * blockBytes,
    );
    // Sum the per-head cotangents of the inputs over broadcast leading axes.
    for (let i = 0; i < heads; i++) {
      const block = dInit + i * blockBytes;
      for (let l = 0; l < depth; l++) {
        const [r, c] = [din[l]!, dout[l]!];
        const wPart = block + 4 * (l === 0 ? 0 : 2 * sizes[0]!);
        kx.memoryScanCopyRows(ptrOf(dW[l]!) + 4 * p.wIndex[l]![i]! * sizes[l]!, c, wPart, 2 * c, r, c, 1);
        if (dS) {
          kx.memoryScanCopyRows(
            ptrOf(dS[l]!) + 4 * p.sIndex![l]![i]! * sizes[l]!,
            c,
            wPart + 4 * c,
            2 * c,
            r,
            c,
            1,
          );
        }
        if (dC) {
          const src = dCarried + 4 * (i * dCFloats + layerFloats(l));
          kx.memoryScanCopyRows(ptrOf(dC[l]!) + 4 * p.cIndex![l]![i]! * sizes[l]!, c, src, c, r, c, 1);
        }
      }
    }
  } finally {
    heap.freeBytes(params, paramsSize);
    heap.freeBytes(dInit, dInitSize);
    heap.freeBytes(dCarried, dCarriedSize);
  }
  const [dq, dk, dv, dAlpha, dEta, dTheta] = grads as [
    BackendBuffer,
    BackendBuffer,
    BackendBuffer,
    BackendBuffer,
    BackendBuffer,
    BackendBuffer,
  ];
  return {
    q: dq,
    k: dk,
    v: dv,
    alpha: dAlpha,
    eta: dEta,
    theta: dTheta,
    weights: dW,
    momentum: dS,
    chunkStart: dC,
  };
}
