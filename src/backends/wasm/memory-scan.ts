/**
 * The wasm backend's fused memory scan: JS glue around the AssemblyScript kernels in
 * ./assembly/memory.ts. `memoryScan` (memory/scan.ts) calls it through `Backend.fusedMemoryScan`
 * after validating its arguments; it returns null for what it does not handle (depth ≥ 3,
 * non-float32, tensors on another backend, weights whose leading axes do not broadcast to q's,
 * T = 0, very large chunks), and memoryScan then composes engine ops.
 *
 * The whole scan is one `customOp` (one tape node) with a hand-written backward. Each (batch·head)
 * index is one task for the kernels' per-head drivers (memoryScanForwardHead/BackwardHead), which
 * run its chunk pieces in order (backward: in reverse); with a thread pool attached, heads run on
 * all threads. A recorded forward keeps every piece-start state (W, S) and every piece's
 * intermediates (key-pass factors, activations, scores) for the backward when they fit
 * `memoryScanLimits.saveBytes`; otherwise the backward recomputes them per head (with √P
 * checkpoints beyond `memoryScanLimits.stateBytes`). Browser-safe: no `node:*` imports.
 */
import { customOp } from '../../engine/custom.js';
import type { Shape } from '../../engine/shape.js';
import { isRecording } from '../../engine/tape.js';
import { type Tensor, wrapBuffer } from '../../engine/tensor.js';
import type { MemoryScanInputs, MemoryScanOptions, MemoryState } from '../../memory/scan.js';
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

export type FusedMemoryScanFn = (
  inputs: MemoryScanInputs,
  options: MemoryScanOptions,
) => { y: Tensor; state: MemoryState } | null;

/** Creates the fused memory scan of a wasm backend (undefined when the kernels lack it). */
export function createWasmMemoryScan(
  getBackend: () => WasmBackend,
  heap: WasmHeap,
  kernels: KernelExports,
): FusedMemoryScanFn | undefined {
  const kx = memoryScanKernels(kernels);
  if (!kx) return undefined;
  return (inputs, options) => fusedMemoryScan(getBackend(), heap, kx, inputs, options);
}

/**
 * For each leading index (row-major over `lead`), the matrix index of a (…, r, c) tensor whose
 * leading axes broadcast to `lead` (right-aligned, each 1 or equal); null when they do not.
 */
function broadcastIndex(shape: Shape, lead: Shape): Int32Array | null {
  const own = shape.slice(0, -2);
  if (own.length > lead.length) return null;
  const pad = lead.length - own.length;
  for (let a = 0; a < own.length; a++) {
    if (own[a] !== 1 && own[a] !== lead[pad + a]) return null;
  }
  const count = lead.reduce((x, y) => x * y, 1);
  const out = new Int32Array(count);
  const index = new Array<number>(lead.length).fill(0);
  for (let i = 0; i < count; i++) {
    let flat = 0;
    for (let a = 0; a < own.length; a++) flat = flat * own[a]! + (own[a] === 1 ? 0 : index[pad + a]!);
    out[i] = flat;
    for (let a = lead.length - 1; a >= 0; a--) {
      if (++index[a]! < lead[a]!) break;
      index[a] = 0;
    }
  }
  return out;
}

function ptrOf(t: Tensor): number {
  return (t.buffer as WasmBuffer).ptr;
}

/** Frees forward-saved states whose tape let go of them without running the backward. */
const savedStates = new FinalizationRegistry<[WasmHeap, number, number]>(([heap, ptr, size]) => {
  heap.freeBytes(ptr, size);
});

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

function fusedMemoryScan(
  backend: WasmBackend,
  heap: WasmHeap,
  kx: MemoryScanKernelExports,
  inputs: MemoryScanInputs,
  options: MemoryScanOptions,
): { y: Tensor; state: MemoryState } | null {
  const { q, k, v, alpha, eta, theta, weights } = inputs;
  const depth = weights.length;
  if (depth !== 1 && depth !== 2) return null;
  const act = options.activation ?? 'silu';
  if (act !== 'silu' && act !== 'gelu') return null;
  const b = options.chunkSize;
  const T = q.shape[q.rank - 2]!;
  const d = q.shape[q.rank - 1]!;
  if (T === 0 || d === 0) return null;
  const position = inputs.position ?? 0;
  const firstOffset = position % b;
  const momentum = inputs.momentum;
  const chunkStart = firstOffset !== 0 ? inputs.chunkStartWeights : undefined;
  if (firstOffset !== 0 && !chunkStart) return null; // memoryScan has already thrown for this
  const all = [q, k, v, alpha, eta, theta, ...weights, ...(momentum ?? []), ...(chunkStart ?? [])];
  if (all.some((t) => t.backend !== backend || t.dtype !== 'float32')) return null;
  const h = depth === 2 ? weights[0]!.shape[weights[0]!.rank - 1]! : d;
  if (h === 0) return null;
  const lead = q.shape.slice(0, -2);
  const heads = lead.reduce((x, y) => x * y, 1);
  const wIndex = weights.map((w) => broadcastIndex(w.shape, lead));
  const sIndex = momentum?.map((s) => broadcastIndex(s.shape, lead));
  const cIndex = chunkStart?.map((c) => broadcastIndex(c.shape, lead));
  if ([...wIndex, ...(sIndex ?? []), ...(cIndex ?? [])].some((x) => x === null)) return null;

  const firstPiece = Math.min(b - firstOffset, T);
  const pieces = 1 + Math.ceil((T - firstPiece) / b);
  const pieceBytes = kx.memoryScanScratchBytes(Math.min(b, T), d, h, depth);
  if (pieceBytes > memoryScanLimits.maxScratchBytes) return null;

  // Layer l maps din[l] → dout[l].
  const din = depth === 2 ? [d, h] : [d];
  const dout = depth === 2 ? [h, d] : [d];
  const sizes = din.map((x, l) => x * dout[l]!);
  const stateFloats = kx.memoryScanStateFloats(d, h, depth);
  const blockBytes = 4 * stateFloats;
  const endPosition = position + T;
  const endsMidChunk = endPosition % b !== 0;
  // The chunk-start weights after the call are a new tensor only when the call ends mid-chunk
  // in a chunk that began inside it; otherwise they are the final weights or an input.
  const chunkStartOut = endsMidChunk && pieces > 1;
  const outputCount = chunkStartOut ? 3 : 2; // W, S (and chunk-start W) per layer
  const outputShapes: Shape[] = [q.shape];
  for (let j = 0; j < outputCount; j++) {
    for (let l = 0; l < depth; l++) outputShapes.push([...lead, din[l]!, dout[l]!]);
  }
  // Float offsets in the flat output: y, then W_l, S_l (and chunk-start W_l), each (…, din, dout).
  const yFloats = heads * T * d;
  const outMatrix = (j: number, l: number, i: number) =>
    yFloats + heads * (j * (stateFloats / 2) + (l === 0 ? 0 : sizes[0]!)) + i * sizes[l]!;
  const total = yFloats + heads * outputCount * (stateFloats / 2);

  const customInputs: Tensor[] = [q, k, v, alpha, eta, theta, ...weights];
  if (momentum) customInputs.push(...momentum);
  if (chunkStart) customInputs.push(...chunkStart);
  const matrixPtr = (t: Tensor, index: Int32Array, l: number, i: number): number =>
    ptrOf(t) + 4 * index[i]! * sizes[l]!;
  const paramWords = kx.memoryScanParamWords();

  /** Fills head i's parameter words shared by the forward and the backward. */
  const fillParams = (words: Int32Array, i: number, out: number, saved: number) => {
    words[P.d] = d;
    words[P.h] = h;
    words[P.depth] = depth;
    words[P.act] = act === 'silu' ? 0 : 1;
    words[P.residual] = options.residual ? 1 : 0;
    words[P.T] = T;
    words[P.b] = b;
    words[P.offset] = firstOffset;
    [q, k, v].forEach((t, j) => {
      words[P.q + j] = ptrOf(t) + 4 * i * T * d;
    });
    [alpha, eta, theta].forEach((t, j) => {
      words[P.q + 3 + j] = ptrOf(t) + 4 * i * T;
    });
    for (let l = 0; l < depth; l++) {
      words[P.W + l] = matrixPtr(weights[l]!, wIndex[l]!, l, i);
      words[P.S + l] = momentum ? matrixPtr(momentum[l]!, sIndex![l]!, l, i) : 0;
      words[P.C + l] = chunkStart ? matrixPtr(chunkStart[l]!, cIndex![l]!, l, i) : 0;
      words[P.WO + l] = out + 4 * outMatrix(0, l, i);
      words[P.SO + l] = out + 4 * outMatrix(1, l, i);
      words[P.CO + l] = chunkStartOut ? out + 4 * outMatrix(2, l, i) : 0;
    }
    words[P.y] = out + 4 * i * T * d;
    words[P.saved] = saved === 0 ? 0 : saved + i * pieces * (blockBytes + recordBytes);
    words[P.pieceBytes] = pieceBytes;
  };
  const allocParams = (): [number, number, Int32Array] => {
    const [ptr, size] = heap.allocBytes(4 * paramWords * heads);
    const words = new Int32Array(heap.memory.buffer, ptr, paramWords * heads);
    words.fill(0);
    return [ptr, size, words];
  };

  // When a tape records this call, the forward keeps every piece-start state for the backward
  // (if they fit the budget); otherwise the backward recomputes them.
  // Per head: every piece-start state block, then every piece's record of intermediates.
  const recordBytes = 4 * kx.memoryScanRecordFloats(Math.min(b, T), d, h, depth);
  const saveBytes = heads * pieces * (blockBytes + recordBytes);
  const save = isRecording(customInputs) && saveBytes <= memoryScanLimits.saveBytes;
  let saved: { ptr: number; size: number } | null = null;
  const holder = {}; // reachable from the backward closure only; its collection frees `saved`

  const forward = (): Tensor => {
    const [outBuf] = heap.alloc('float32', total);
    if (save) {
      const [ptr, size] = heap.allocBytes(saveBytes);
      saved = { ptr, size };
      savedStates.register(holder, [heap, ptr, size], holder);
    }
    const [params, paramsSize, words] = allocParams();
    try {
      const out = (outBuf as WasmBuffer).ptr;
      for (let i = 0; i < heads; i++) {
        fillParams(words.subarray(i * paramWords), i, out, saved?.ptr ?? 0);
      }
      runHeads(backend, heap, kx, 'memoryScanForwardHead', params, heads, pieceBytes + 3 * blockBytes);
    } finally {
      heap.freeBytes(params, paramsSize);
    }
    return wrapBuffer(backend, outBuf, [total], 'float32');
  };

  const backward = (cotangent: Tensor): Tensor[] => {
    if (cotangent.backend !== backend) throw new Error('fused memoryScan: cotangent on another backend');
    const g = ptrOf(cotangent);
    const alloc = (shape: Shape, zero: boolean): [Tensor, number] => {
      const size = shape.reduce((x, y) => x * y, 1);
      const [buf, view] = heap.alloc('float32', size);
      if (zero) view.fill(0);
      return [wrapBuffer(backend, buf, shape, 'float32'), (buf as WasmBuffer).ptr];
    };
    const grads = [q, k, v, alpha, eta, theta].map((t) => alloc(t.shape, false));
    const dW = weights.map((w) => alloc(w.shape, true));
    const dS = momentum?.map((s) => alloc(s.shape, true));
    const dC = chunkStart?.map((c) => alloc(c.shape, true));

    const have = saved;
    saved = null; // a second backward (never needed) would recompute
    const fits = have !== null || pieces * blockBytes <= memoryScanLimits.stateBytes;
    const seg = fits ? pieces : Math.max(2, Math.ceil(Math.sqrt(pieces)));
    const stored = have ? 0 : Math.ceil(pieces / seg) + seg;
    // Per head: the input state's cotangent block and (carried G) the cotangent of G.
    const [dInit, dInitSize] = heap.allocBytes(heads * blockBytes);
    const dCFloats = stateFloats / 2;
    const [dCarried, dCarriedSize] = heap.allocBytes(chunkStart ? heads * 4 * dCFloats : 4);
    const [params, paramsSize, words] = allocParams();
    try {
      if (chunkStart) new Float32Array(heap.memory.buffer, dCarried, heads * dCFloats).fill(0);
      const layerFloats = (l: number) => (l === 0 ? 0 : sizes[0]!);
      for (let i = 0; i < heads; i++) {
        const w = words.subarray(i * paramWords);
        fillParams(w, i, 0, have?.ptr ?? 0);
        w[P.dy] = g + 4 * i * T * d;
        grads.forEach(([, ptr], j) => {
          w[P.dq + j] = ptr + 4 * i * T * (j < 3 ? d : 1);
        });
        for (let l = 0; l < depth; l++) {
          w[P.dWO + l] = g + 4 * outMatrix(0, l, i);
          w[P.dSO + l] = g + 4 * outMatrix(1, l, i);
          w[P.dCO + l] = chunkStartOut ? g + 4 * outMatrix(2, l, i) : 0;
          w[P.dC + l] = chunkStart ? dCarried + 4 * (i * dCFloats + layerFloats(l)) : 0;
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
        pieceBytes + (stored + 2) * blockBytes,
      );
      // Sum the per-head cotangents of the inputs over broadcast leading axes.
      for (let i = 0; i < heads; i++) {
        const block = dInit + i * blockBytes;
        for (let l = 0; l < depth; l++) {
          const [r, c] = [din[l]!, dout[l]!];
          const wPart = block + 4 * (l === 0 ? 0 : 2 * sizes[0]!);
          kx.memoryScanCopyRows(dW[l]![1] + 4 * wIndex[l]![i]! * sizes[l]!, c, wPart, 2 * c, r, c, 1);
          if (dS) {
            kx.memoryScanCopyRows(
              dS[l]![1] + 4 * sIndex![l]![i]! * sizes[l]!,
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
            kx.memoryScanCopyRows(dC[l]![1] + 4 * cIndex![l]![i]! * sizes[l]!, c, src, c, r, c, 1);
          }
        }
      }
    } finally {
      heap.freeBytes(params, paramsSize);
      heap.freeBytes(dInit, dInitSize);
      heap.freeBytes(dCarried, dCarriedSize);
      if (have) {
        savedStates.unregister(holder);
        heap.freeBytes(have.ptr, have.size);
      }
    }
    return [
      ...grads.map((x) => x[0]),
      ...dW.map((x) => x[0]),
      ...(dS ?? []).map((x) => x[0]),
      ...(dC ?? []).map((x) => x[0]),
    ];
  };

  const outputs = customOp({
    name: 'memoryScan (wasm fused)',
    inputs: customInputs,
    outputShapes,
    forward,
    backward: (cotangent) => backward(cotangent),
  });
  const y = outputs[0]!;
  const finalWeights = outputs.slice(1, 1 + depth);
  const finalMomentum = outputs.slice(1 + depth, 1 + 2 * depth);
  let chunkStartWeights: readonly Tensor[];
  if (!endsMidChunk) chunkStartWeights = finalWeights;
  else if (chunkStartOut) chunkStartWeights = outputs.slice(1 + 2 * depth, 1 + 3 * depth);
  else chunkStartWeights = firstOffset === 0 ? weights : chunkStart!;
  return {
    y,
    state: {
      weights: finalWeights,
      momentum: finalMomentum,
      chunkStartWeights,
      position: endPosition,
      chunkSize: b,
    },
  };
}
