/**
 * The wasm backend's fused blocks (`FusedBlocks` in engine/backend.ts): JS glue around the
 * AssemblyScript kernels of ./assembly/optim.ts, ./assembly/blocks.ts and ./assembly/memory-read.ts,
 * the paged attention of ./attention.ts and the decoding kernels of ./decode.ts. Each entry checks
 * what it supports, allocates its outputs on the heap and makes one kernel call per block; a large
 * block (from elementwisePoolLimits.minElements) runs as shares on the thread pool instead: the
 * memory input block by batch slices, RMSNorm, SwiGLU, cross-entropy and RoPE by rows or flat ranges
 * (blocksTask), each element computed as in one call. Browser-safe: no `node:*` imports.
 */
import type {
  AdamWParams,
  BackendBuffer,
  ConvSiluNormParams,
  FusedBlocks,
  MemoryReadParams,
  RmsNormParams,
} from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import { createWasmPagedAttention } from './attention.js';
import { createWasmDecode } from './decode.js';
import { type ElementwiseKernelExports, FLAT_ALIGN, poolShares, wordOf } from './elementwise.js';
import type { KernelExports } from './kernels.js';
import { BLOCKS_TASK } from './opcodes.js';
import { runTaskRecords } from './pool-protocol.js';
import type { WasmBackend, WasmBuffer, WasmHeap } from './wasm-backend.js';

/** The fused-block exports of the kernel module (byte addresses; sizes in elements). */
export interface FusedKernelExports {
  rmsNormForward(...args: number[]): void;
  rmsNormBackward(...args: number[]): void;
  addPartials(dst: number, partials: number, n: number, count: number): void;
  swigluForward(a: number, b: number, out: number, n: number): void;
  swigluBackward(a: number, b: number, g: number, da: number, db: number, n: number): void;
  crossEntropyForward(...args: number[]): void;
  crossEntropyBackward(...args: number[]): void;
  convSiluNormForward(...args: number[]): void;
  gateForward(z: number, bias: number, out: number, B: number, T: number, H: number, cap: number): void;
  gateBackward(...args: number[]): void;
  ropeRows(x: number, out: number, table: number, rows: number, T: number, d: number, sign: number): void;
  ropeHeads(...args: number[]): void;
  convSiluNormBackward(...args: number[]): void;
  memoryReadForward(...args: number[]): void;
  memoryReadBackward(...args: number[]): void;
  memoryReadScratchBytes(d: number, h: number): number;
  adamwStep(
    p: number,
    g: number,
    m: number,
    v: number,
    outP: number,
    outM: number,
    outV: number,
    n: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    eps: number,
    stepSize: number,
    invSqrtBc2: number,
    shrink: number,
  ): void;
}

function ptr(buffer: BackendBuffer): number {
  const p = (buffer as WasmBuffer).ptr;
  if (p < 0) throw new Error('wasm backend: buffer used after release');
  return p;
}

/**
 * Elements (batch · tokens · channels) from which the memory layer's input block runs as batch
 * slices on the thread pool. Mutable for tests.
 */
export const convPoolLimits = { minElements: 65536 };

/** Words per task record of `blocksTask` (the kind, then at most 10 arguments). */
const BLOCK_TASK_WORDS = 12;

/**
 * Rows per block of RMSNorm's backward (rounded up to the scale rows' period): the blocks run as
 * pool tasks, and the scale gradient is summed block by block, then across blocks in order.
 * Measured (2 threads, small-preset train steps, 6 steps each): MAC's 25 backward calls 5.5 → 4.2 ms
 * a step, SWA's 5 calls 1.8 → 1.6 ms (one call each before; an earlier try that summed the scale
 * gradient by columns in a second pass was slower, BENCHMARKS.md 2026-12-07).
 */
const RMSNORM_BLOCK_ROWS = 256;

/** The fused blocks of a wasm backend (entries whose kernels the module lacks are left out). */
export function createWasmFused(
  getBackend: () => WasmBackend,
  heap: WasmHeap,
  kernels: KernelExports,
): FusedBlocks {
  const k = kernels as unknown as Partial<FusedKernelExports & ElementwiseKernelExports>;
  const blocks: { -readonly [K in keyof FusedBlocks]: FusedBlocks[K] } = {};
  const paged = createWasmPagedAttention(getBackend, heap, kernels);
  if (paged) blocks.pagedAttention = paged;
  const decode = createWasmDecode(heap, kernels);
  if (decode) blocks.decode = decode;
  if (typeof k.ewCopy === 'function') {
    const copy = k.ewCopy;
    blocks.writeRows = (dst, src, groups, dstRows, rows, rowSize, at) => {
      if (groups === 0 || rows === 0 || rowSize === 0) return;
      // (groups, rows·rowSize) blocks: destination pitch dstRows·rowSize, source pitch rows·rowSize.
      const run = rows * rowSize;
      copy(
        ptr(dst) + 4 * at * rowSize,
        ptr(src),
        ...[1, 1, 1, 1, groups, run],
        ...[0, 0, 0, 0, dstRows * rowSize, 1],
        ...[0, 0, 0, 0, run, 1],
      );
    };
  }
  const alloc = (size: number, dtype: DType) => heap.alloc(dtype, size)[0];
  const p0 = (b: BackendBuffer | null) => (b ? ptr(b) : 0);
  const shares = (count: number, unit: number, elements: number) =>
    poolShares(getBackend().threadPool, count, unit, elements);
  /** One blocksTask per record (its kind first; layout in assembly/blocks.ts) on the pool. */
  const blocksOnPool = (records: readonly (readonly number[])[]) =>
    runTaskRecords(getBackend().threadPool!, heap, 'blocksTask', records, BLOCK_TASK_WORDS);
  if (
    typeof k.rmsNormForward === 'function' &&
    typeof k.rmsNormBackward === 'function' &&
    typeof k.addPartials === 'function'
  ) {
    const addPartials = k.addPartials;
    const fwd = k.rmsNormForward;
    const bwd = k.rmsNormBackward;
    // rows share cut at multiples of the scale rows' period keep each row's scale row
    const period = (p: RmsNormParams) => (p.scaleRows > 1 ? p.scaleRows * p.scaleRepeat : 1);
    blocks.fusedRmsNorm = {
      supports: (p, dtype) => dtype === 'float32' && p.rows > 0 && p.n > 0,
      forward(x, scale, p, dtype) {
        const y = alloc(p.rows * p.n, dtype);
        const r = alloc(p.rows, dtype);
        const parts = shares(p.rows, period(p), p.rows * p.n);
        if (!parts) {
          fwd(ptr(x), p0(scale), ptr(y), ptr(r), p.rows, p.n, p.scaleRows, p.scaleRepeat, p.eps);
          return [y, r];
        }
        blocksOnPool(
          parts.map(([i, rows]) => [
            BLOCKS_TASK.rmsNormForward,
            ...[ptr(x) + 4 * i * p.n, p0(scale), ptr(y) + 4 * i * p.n, ptr(r) + 4 * i],
            ...[rows, p.n, p.scaleRows, p.scaleRepeat, wordOf(p.eps, 'float32')],
          ]),
        );
        return [y, r];
      },
      backward(x, scale, r, g, p, dtype) {
        const dx = alloc(p.rows * p.n, dtype);
        const ds = scale ? alloc(p.scaleRows * p.n, dtype) : null;
        // Fixed blocks of rows, whatever the threads: block b sums its rows' part of the scale's
        // gradient into ds (b = 0) or its own partial, and the partials are added to ds in order.
        const rows = Math.ceil(RMSNORM_BLOCK_ROWS / period(p)) * period(p);
        const blocks = Math.ceil(p.rows / rows);
        const sn = p.scaleRows * p.n;
        // the scale gradient's parts after the first block's (none without a scale or a second block)
        const [partials, bytes] = ds && blocks > 1 ? heap.allocBytes(4 * sn * (blocks - 1)) : [0, 0];
        try {
          const block = (b: number) => {
            const i = b * rows;
            const dsb = !ds ? 0 : b === 0 ? ptr(ds) : partials + 4 * (b - 1) * sn;
            const at = (buffer: BackendBuffer, width: number) => ptr(buffer) + 4 * i * width;
            return [at(x, p.n), p0(scale), at(r, 1), at(g, p.n), at(dx, p.n), dsb].concat([
              Math.min(rows, p.rows - i),
              p.n,
              p.scaleRows,
              p.scaleRepeat,
            ]);
          };
          const records = Array.from({ length: blocks }, (_, b) => block(b));
          if (blocks > 1 && shares(blocks, 1, p.rows * p.n)) {
            blocksOnPool(records.map((args) => [BLOCKS_TASK.rmsNormBackward, ...args]));
          } else {
            for (const args of records) bwd(...args);
          }
          if (ds && blocks > 1) addPartials(ptr(ds), partials, sn, blocks - 1);
        } finally {
          if (bytes > 0) heap.freeBytes(partials, bytes);
        }
        return [dx, ds];
      },
    };
  }
  if (typeof k.swigluForward === 'function' && typeof k.swigluBackward === 'function') {
    const fwd = k.swigluForward;
    const bwd = k.swigluBackward;
    blocks.fusedSwiGLU = {
      supports: (dtype) => dtype === 'float32',
      forward(a, b, size, dtype) {
        const out = alloc(size, dtype);
        const parts = shares(size, FLAT_ALIGN, size);
        if (!parts) {
          fwd(ptr(a), ptr(b), ptr(out), size);
          return out;
        }
        const at = (buffer: BackendBuffer, i: number) => ptr(buffer) + 4 * i;
        blocksOnPool(parts.map(([i, n]) => [BLOCKS_TASK.swigluForward, at(a, i), at(b, i), at(out, i), n]));
        return out;
      },
      backward(a, b, g, size, dtype) {
        const da = alloc(size, dtype);
        const db = alloc(size, dtype);
        const parts = shares(size, FLAT_ALIGN, size);
        if (!parts) {
          bwd(ptr(a), ptr(b), ptr(g), ptr(da), ptr(db), size);
          return [da, db];
        }
        const at = (buffer: BackendBuffer, i: number) => ptr(buffer) + 4 * i;
        blocksOnPool(
          parts.map(([i, n]) => [
            BLOCKS_TASK.swigluBackward,
            at(a, i),
            at(b, i),
            at(g, i),
            at(da, i),
            at(db, i),
            n,
          ]),
        );
        return [da, db];
      },
    };
  }
  if (typeof k.crossEntropyForward === 'function' && typeof k.crossEntropyBackward === 'function') {
    const fwd = k.crossEntropyForward;
    const bwd = k.crossEntropyBackward;
    const ignored = (i: number | undefined): [number, number] => (i === undefined ? [0, 0] : [i, 1]);
    blocks.fusedCrossEntropy = {
      supports: (rows, classes, dtype) => dtype === 'float32' && rows > 0 && classes > 0,
      forward(logits, targets, rows, classes, ignoreIndex, dtype) {
        const losses = alloc(rows, dtype);
        const lse = alloc(rows, dtype);
        const parts = shares(rows, 1, rows * classes);
        if (!parts) {
          fwd(ptr(logits), ptr(targets), ptr(losses), ptr(lse), rows, classes, ...ignored(ignoreIndex));
          return [losses, lse];
        }
        blocksOnPool(
          parts.map(([i, n]) => [
            BLOCKS_TASK.crossEntropyForward,
            ...[ptr(logits) + 4 * i * classes, ptr(targets) + 4 * i, ptr(losses) + 4 * i, ptr(lse) + 4 * i],
            ...[n, classes, ...ignored(ignoreIndex)],
          ]),
        );
        return [losses, lse];
      },
      backward(logits, targets, lse, g, rows, classes, ignoreIndex, dtype) {
        const d = alloc(rows * classes, dtype);
        const parts = shares(rows, 1, rows * classes);
        if (!parts) {
          bwd(ptr(logits), ptr(targets), ptr(lse), ptr(g), ptr(d), rows, classes, ...ignored(ignoreIndex));
          return d;
        }
        blocksOnPool(
          parts.map(([i, n]) => [
            BLOCKS_TASK.crossEntropyBackward,
            ...[ptr(logits) + 4 * i * classes, ptr(targets) + 4 * i, ptr(lse) + 4 * i, ptr(g) + 4 * i],
            ...[ptr(d) + 4 * i * classes, n, classes, ...ignored(ignoreIndex)],
          ]),
        );
        return d;
      },
    };
  }
  if (typeof k.convSiluNormForward === 'function' && typeof k.convSiluNormBackward === 'function') {
    const fwd = k.convSiluNormForward;
    const bwd = k.convSiluNormBackward;
    const dims = (p: ConvSiluNormParams) =>
      [p.batch, p.tokens, p.heads, p.headDim, p.kernel, p.normalize ? 1 : 0, p.eps] as const;
    // [first row, rows] of each batch slice: one per thread from convPoolLimits.minElements, else one.
    const slices = (p: ConvSiluNormParams): [number, number][] => {
      const pool = getBackend().threadPool;
      const size = p.batch * p.tokens * p.heads * p.headDim;
      const n = !pool?.runTasks || size < convPoolLimits.minElements ? 1 : Math.min(p.batch, pool.threads);
      return Array.from({ length: n }, (_, t) => {
        const first = Math.floor((t * p.batch) / n);
        return [first, Math.floor(((t + 1) * p.batch) / n) - first];
      });
    };
    /**
     * Runs convSiluNormTask on the pool, one task per batch slice [b, b + n): `outputs(b, t)` gives
     * slice t's y (forward) or gy, dz, dtaps, dtail (backward) words; the batch-indexed inputs are
     * advanced to row b here (record layout: assembly/blocks.ts convSiluNormTask).
     */
    const onPool = (
      direction: 0 | 1,
      p: ConvSiluNormParams,
      z: BackendBuffer,
      taps: BackendBuffer | null,
      tail: BackendBuffer | null,
      parts: [number, number][],
      outputs: (b: number, t: number) => [number, number, number, number],
    ) => {
      const [C, K] = [p.heads * p.headDim, p.kernel];
      const records = parts.map(([b, n], t) => [
        ...[direction, ptr(z) + 4 * b * p.tokens * C, p0(taps), tail ? ptr(tail) + 4 * b * (K - 1) * C : 0],
        ...outputs(b, t),
        ...[n, p.tokens, p.heads, p.headDim, K, p.normalize ? 1 : 0, wordOf(p.eps, 'float32')],
      ]);
      runTaskRecords(getBackend().threadPool!, heap, 'convSiluNormTask', records, 15);
    };
    blocks.fusedConvSiluNorm = {
      supports: (p, dtype) =>
        dtype === 'float32' && p.batch > 0 && p.tokens > 0 && p.heads > 0 && p.headDim > 0,
      forward(z, taps, tail, p, dtype) {
        const y = alloc(p.batch * p.heads * p.tokens * p.headDim, dtype);
        const parts = slices(p);
        if (parts.length < 2) {
          fwd(ptr(z), p0(taps), p0(tail), ptr(y), ...dims(p));
          return y;
        }
        const C = p.heads * p.headDim;
        onPool(0, p, z, taps, tail, parts, (b) => [ptr(y) + 4 * b * p.tokens * C, 0, 0, 0]);
        return y;
      },
      backward(z, taps, tail, gy, p, needTail, dtype) {
        const [C, K] = [p.heads * p.headDim, p.kernel];
        const dz = alloc(p.batch * p.tokens * C, dtype);
        const dtaps = taps ? alloc(K * C, dtype) : null;
        const dtail = tail && needTail && K > 1 ? alloc(p.batch * (K - 1) * C, dtype) : null;
        const parts = slices(p);
        if (parts.length < 2) {
          bwd(ptr(z), p0(taps), p0(tail), ptr(gy), ptr(dz), p0(dtaps), p0(dtail), ...dims(p));
          return [dz, dtaps, dtail];
        }
        // each slice sums its rows' tap gradients into its own block; the blocks are added here
        const [partials, partialBytes] = heap.allocBytes(taps ? 4 * parts.length * K * C : 4);
        try {
          onPool(1, p, z, taps, tail, parts, (b, t) => [
            ptr(gy) + 4 * b * p.tokens * C,
            ptr(dz) + 4 * b * p.tokens * C,
            taps ? partials + 4 * t * K * C : 0,
            dtail ? ptr(dtail) + 4 * b * (K - 1) * C : 0,
          ]);
          if (dtaps) {
            const out = new Float32Array(heap.memory.buffer, ptr(dtaps), K * C);
            const sums = new Float32Array(heap.memory.buffer, partials, parts.length * K * C);
            for (let i = 0; i < K * C; i++) {
              let sum = 0;
              for (let t = 0; t < parts.length; t++) sum += sums[t * K * C + i]!;
              out[i] = sum;
            }
          }
        } finally {
          heap.freeBytes(partials, partialBytes);
        }
        return [dz, dtaps, dtail];
      },
    };
  }
  if (typeof k.gateForward === 'function' && typeof k.gateBackward === 'function') {
    const fwd = k.gateForward;
    const bwd = k.gateBackward;
    blocks.fusedGate = {
      supports: (dtype) => dtype === 'float32',
      forward(z, bias, B, T, H, cap, dtype) {
        const out = alloc(B * T * H, dtype);
        fwd(ptr(z), ptr(bias), ptr(out), B, T, H, cap);
        return out;
      },
      backward(z, bias, g, B, T, H, cap, dtype) {
        const [dz, db] = [alloc(B * T * H, dtype), alloc(H, dtype)];
        bwd(ptr(z), ptr(bias), ptr(g), ptr(dz), ptr(db), B, T, H, cap);
        return [dz, db];
      },
    };
  }
  if (typeof k.ropeRows === 'function' && typeof k.ropeHeads === 'function') {
    const [ropeRows, ropeHeads] = [k.ropeRows, k.ropeHeads];
    blocks.fusedRope = {
      supports: (dtype) => dtype === 'float32',
      apply(x, table, rows, T, d, inverse, dtype) {
        const out = alloc(rows * d, dtype);
        const sign = inverse ? -1 : 1;
        // shares of whole T-row blocks: row r keeps table row r mod T
        const parts = shares(rows, T, rows * d);
        if (!parts) {
          ropeRows(ptr(x), ptr(out), ptr(table), rows, T, d, sign);
          return out;
        }
        blocksOnPool(
          parts.map(([i, n]) => [
            BLOCKS_TASK.rope,
            ...[ptr(x) + 4 * i * d, ptr(out) + 4 * i * d, ptr(table), n, T, d, wordOf(sign, 'float32')],
          ]),
        );
        return out;
      },
      applyHeads(x, table, batch, T, H, d, inverse, dtype) {
        const out = alloc(batch * T * H * d, dtype);
        // the forward reads the tokens layout and writes the heads layout; the backward the reverse
        const [tokens, heads] = inverse ? [ptr(out), ptr(x)] : [ptr(x), ptr(out)];
        const [sign, toHeads] = inverse ? [-1, 0] : [1, 1];
        // shares of whole batch rows: both layouts keep a batch row's T·H·d floats together
        const parts = shares(batch, 1, batch * T * H * d);
        if (!parts) {
          ropeHeads(tokens, heads, ptr(table), batch, T, H, d, sign, toHeads);
          return out;
        }
        const at = (p: number, b: number) => p + 4 * b * T * H * d;
        blocksOnPool(
          parts.map(([b, n]) => [
            BLOCKS_TASK.ropeHeads,
            ...[at(tokens, b), at(heads, b), ptr(table), n, T, H, d, wordOf(sign, 'float32'), toHeads],
          ]),
        );
        return out;
      },
    };
  }
  if (typeof k.memoryReadForward === 'function' && typeof k.memoryReadBackward === 'function') {
    const [fwd, bwd, scratchBytes] = [k.memoryReadForward, k.memoryReadBackward, k.memoryReadScratchBytes!];
    const dims = (p: MemoryReadParams) =>
      [
        p.batch,
        p.heads,
        p.tokens,
        p.d,
        p.hidden,
        p.weightBatch,
        p.activation === 'silu' ? 0 : 1,
        p.residual ? 1 : 0,
      ] as const;
    /** Runs `kernel` with a scratch block of the size the kernels ask for, freed after. */
    const withScratch = (p: MemoryReadParams, kernel: (scratch: number) => void) => {
      const [scratch, size] = heap.allocBytes(scratchBytes(p.d, p.hidden));
      try {
        kernel(scratch);
      } finally {
        heap.freeBytes(scratch, size);
      }
    };
    blocks.fusedMemoryRead = {
      // the kernels' products need d and h in multiples of four floats (register tiles)
      supports: (p, dtype) =>
        dtype === 'float32' &&
        p.d > 0 &&
        p.hidden > 0 &&
        p.d % 4 === 0 &&
        p.hidden % 4 === 0 &&
        (p.weightBatch === 1 || p.weightBatch === p.batch),
      forward(q, w1, w2, p, dtype) {
        const y = alloc(p.batch * p.heads * p.tokens * p.d, dtype);
        withScratch(p, (scratch) => fwd(ptr(q), ptr(w1), ptr(w2), ptr(y), ...dims(p), scratch));
        return y;
      },
      backward(q, w1, w2, gy, p, dtype) {
        const dq = alloc(p.batch * p.heads * p.tokens * p.d, dtype);
        const dw1 = alloc(p.weightBatch * p.heads * p.d * p.hidden, dtype);
        const dw2 = alloc(p.weightBatch * p.heads * p.hidden * p.d, dtype);
        withScratch(p, (scratch) =>
          bwd(ptr(q), ptr(w1), ptr(w2), ptr(gy), ptr(dq), ptr(dw1), ptr(dw2), ...dims(p), scratch),
        );
        return [dq, dw1, dw2];
      },
    };
  }
  if (typeof k.adamwStep === 'function') {
    const adamwStep = k.adamwStep;
    blocks.fusedAdamW = {
      supports: (dtype) => dtype === 'float32',
      step(p, g, m, v, h: AdamWParams, dtype) {
        const out = [alloc(h.size, dtype), alloc(h.size, dtype), alloc(h.size, dtype)] as [
          BackendBuffer,
          BackendBuffer,
          BackendBuffer,
        ];
        adamwStep(
          ptr(p),
          ptr(g),
          ptr(m),
          ptr(v),
          ptr(out[0]),
          ptr(out[1]),
          ptr(out[2]),
          h.size,
          h.beta1,
          Math.fround(1 - h.beta1),
          h.beta2,
          Math.fround(1 - h.beta2),
          h.eps,
          h.stepSize,
          h.invSqrtBc2,
          h.shrink,
        );
        return out;
      },
    };
  }
  return blocks;
}
