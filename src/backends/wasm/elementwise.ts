/**
 * The wasm backend's elementwise, reduction and data-movement kernels: the JS side of
 * ./assembly/elementwise.ts. Each method collapses its shapes (drops size-1 axes, merges axes that are
 * contiguous for every operand), then makes ONE kernel call on byte addresses in the shared memory. No
 * typed-array views are made, so a call allocates nothing on the JavaScript heap but a few small
 * arrays. Anything a kernel does not cover (more axes than it takes after collapsing, dtypes other
 * than float32/int32, two separate groups of reduced axes) goes to `fallback`: the reference kernels
 * on the same storage.
 */
import type { Backend, BackendBuffer } from '../../engine/backend.js';
import { MAX_ACTIVATION_ORDER } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import { broadcastStrides, mergeAxes, type Shape, sizeOf, stridesOf } from '../../engine/shape.js';
import { ACTIVATION, BINARY, ELEMENTWISE_TASK, REDUCE, UNARY } from './opcodes.js';
import { runTaskRecords } from './pool-protocol.js';
import type { WasmBuffer, WasmHeap, WasmThreadPool } from './wasm-backend.js';

/** Exports of assembly/elementwise.ts. Pointers are byte addresses; sizes and strides in elements. */
export interface ElementwiseKernelExports {
  ewUnary(op: number, out: number, x: number, n: number): void;
  ewActivation(fn: number, order: number, out: number, x: number, n: number): void;
  ewBinary(op: number, out: number, a: number, b: number, ...dimsAndStrides: number[]): void;
  ewWhere(out: number, c: number, a: number, b: number, ...dimsAndStrides: number[]): void;
  ewReduce(op: number, out: number, x: number, outer: number, r: number, inner: number): void;
  ewArgMax(out: number, x: number, outer: number, n: number, inner: number): void;
  ewCopy(dst: number, src: number, ...dimsAndStrides: number[]): void;
  ewTranspose2(dst: number, src: number, batch: number, rows: number, cols: number): void;
  ewFill(dst: number, bits: number, n: number): void;
  ewGather(out: number, x: number, idx: number, outer: number, n: number, inner: number, count: number): void;
  ewScatterAdd(
    out: number,
    g: number,
    idx: number,
    outer: number,
    n: number,
    inner: number,
    count: number,
  ): void;
  ewLinearScan(
    out: number,
    a: number,
    b: number,
    outer: number,
    n: number,
    inner: number,
    reverse: number,
  ): void;
  ewCastF32ToI32(out: number, x: number, n: number): void;
  ewCastI32ToF32(out: number, x: number, n: number): void;
}

/** What the kernels need from the backend. */
export interface WasmElementwisePieces {
  heap: WasmHeap;
  /** The kernel instance's exports (must include ElementwiseKernelExports). */
  kernels: object;
  /** The reference kernels on the same heap, for what the wasm kernels do not cover. */
  fallback: Backend;
  /** Makes the backend's buffer for a block from `heap.allocBytes`. */
  wrap(ptr: number, bytes: number, length: number, dtype: DType): BackendBuffer;
  /** The backend's thread pool now (null: this thread only). */
  pool(): WasmThreadPool | null;
}

/**
 * Elements from which an elementwise kernel call is cut into shares for the thread pool (below it,
 * the hand-off costs more than the second thread saves). Measured (2 threads, Xeon, small-preset
 * train step, best of 4 × 3 steps): MAG 272 ms unthreaded → 258 / 258 / 254 ms from 8K / 32K / 128K
 * elements; MAC 397 → 386–388; SWA 114 → 107–109. Mutable for benchmarks and tests.
 */
export const elementwisePoolLimits = { minElements: 65536, sharesPerThread: 2 };

/**
 * [first, count] shares of `count` items (elements of a flat block, rows, or an axis's indices) cut
 * at multiples of `unit`, about elementwisePoolLimits.sharesPerThread per thread of `pool`; null
 * (run it here, in one call) without a pool of 2 threads, below elementwisePoolLimits.minElements
 * elements of work (`elements`), or when fewer than 2 shares come out. The elementwise kernels and
 * the fused blocks (fused.ts) cut their pool work here.
 */
export function poolShares(
  pool: WasmThreadPool | null,
  count: number,
  unit: number,
  elements: number,
): [number, number][] | null {
  if (!pool?.runTasks || pool.threads < 2 || elements < elementwisePoolLimits.minElements) return null;
  const units = Math.ceil(count / unit);
  const parts = Math.min(
    units,
    pool.threads * Math.max(1, Math.floor(elementwisePoolLimits.sharesPerThread)),
  );
  if (parts < 2) return null;
  return Array.from({ length: parts }, (_, t) => {
    const first = Math.floor((t * units) / parts) * unit;
    return [first, Math.min(count, Math.floor(((t + 1) * units) / parts) * unit) - first];
  });
}

/** Words per task record of `elementwiseTask` (the kind, then at most 20 arguments). */
const TASK_WORDS = 24;

/** Flat ranges are cut at multiples of this (every SIMD group of a kernel stays in one share). */
export const FLAT_ALIGN = 16;

/** The Backend methods this file replaces. */
export type WasmElementwiseMethods = Pick<
  Backend,
  | 'fill'
  | 'cast'
  | 'unary'
  | 'activation'
  | 'binary'
  | 'where'
  | 'reduce'
  | 'argMax'
  | 'transpose'
  | 'broadcastTo'
  | 'slice'
  | 'pad'
  | 'concat'
  | 'gather'
  | 'scatterAdd'
  | 'linearScan'
>;

/** Axes the binary and where kernels take; the copy kernel takes COPY_RANK. */
const ELEMENTWISE_RANK = 4;
const COPY_RANK = 6;

/**
 * The axes `mergeAxes` leaves, padded with leading size-1 axes (stride 0) to `rank`.
 * Returns the dims followed by each operand's strides, flat (rank · (1 + operands) numbers), or null
 * when more than `rank` axes remain.
 */
export function collapseAxes(
  shape: Shape,
  strides: readonly (readonly number[])[],
  rank: number,
): number[] | null {
  const [dims, merged] = mergeAxes(shape, strides);
  if (dims.length > rank) return null;
  const pad = rank - dims.length;
  const flat = new Array<number>(rank * (1 + strides.length)).fill(0);
  for (let i = 0; i < pad; i++) flat[i] = 1;
  for (let i = 0; i < dims.length; i++) {
    flat[pad + i] = dims[i]!;
    for (let s = 0; s < strides.length; s++) flat[(s + 1) * rank + pad + i] = merged[s]![i]!;
  }
  return flat;
}

/** Splits a shape around `axis` into (outer, n, inner). */
function around(shape: Shape, axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return [outer, shape[axis]!, inner];
}

const bitsF32 = new Float32Array(1);
const bitsI32 = new Int32Array(bitsF32.buffer);

/** The 32-bit pattern a Float32Array / Int32Array stores for `value`. */
export function wordOf(value: number, dtype: DType): number {
  if (dtype === 'int32') return value | 0;
  bitsF32[0] = value;
  return bitsI32[0]!;
}

/** Replacement Backend methods running the kernels of assembly/elementwise.ts. */
export function createWasmElementwise(pieces: WasmElementwisePieces): WasmElementwiseMethods {
  const { heap, fallback, wrap } = pieces;
  const k = pieces.kernels as ElementwiseKernelExports;

  function alloc(dtype: DType, size: number): BackendBuffer {
    const [ptr, bytes] = heap.allocBytes(size * 4);
    return wrap(ptr, bytes, size, dtype);
  }
  function ptr(buffer: BackendBuffer): number {
    const p = (buffer as WasmBuffer).ptr;
    if (p < 0) throw new Error('wasm backend: buffer used after release');
    return p;
  }
  const isWord = (dtype: DType) => dtype === 'float32' || dtype === 'int32';

  /** Runs one `elementwiseTask` per record (its kind, then the record) on the pool. */
  function runShares(kind: number, records: readonly (readonly number[])[]): void {
    const tasks = records.map((r) => [kind, ...r]);
    runTaskRecords(pieces.pool()!, heap, 'elementwiseTask', tasks, TASK_WORDS);
  }

  /**
   * Shares of a strided call over `rank` dims (flat = dims, then each operand's strides) of `size`
   * elements: the outermost axis of size > 1 cut into ranges, as [axis, start, length][]; one share
   * when that axis cannot be cut or the call stays here.
   */
  function axisRanges(flat: readonly number[], rank: number, size: number): [number, number, number][] {
    const axis = flat.slice(0, rank).findIndex((d) => d > 1);
    const parts = axis < 0 ? null : poolShares(pieces.pool(), flat[axis]!, 1, size);
    return parts ? parts.map(([start, length]) => [axis, start, length]) : [[-1, 0, 0]];
  }

  /**
   * One share's pointers and dims: pointer j advanced by start · (its stride on the axis), the axis
   * cut to `length`. `strides[j]` null: the contiguous output (its stride is the product of the
   * dims after the axis).
   */
  function share(
    flat: readonly number[],
    rank: number,
    pointers: readonly number[],
    strides: readonly (number | null)[],
    [axis, start, length]: [number, number, number],
  ): number[] {
    if (axis < 0) return [...pointers, ...flat];
    let inner = 1;
    for (let i = axis + 1; i < rank; i++) inner *= flat[i]!;
    const moved = pointers.map(
      (p, j) => p + 4 * start * (strides[j] === null ? inner : flat[strides[j]! * rank + axis]!),
    );
    const dims = flat.slice();
    dims[axis] = length;
    return [...moved, ...dims];
  }

  /** Strided copy of `dims` from src to dst (flat = collapseAxes(dims, [dst, src], COPY_RANK)). */
  function copy(dst: number, src: number, flat: readonly number[]): void {
    let size = 1;
    for (let i = 0; i < COPY_RANK; i++) size *= flat[i]!;
    const ranges = axisRanges(flat, COPY_RANK, size);
    if (ranges.length < 2) {
      k.ewCopy(dst, src, ...flat);
      return;
    }
    // dst strides are flat's first stride group (1), src's the second (2)
    runShares(
      ELEMENTWISE_TASK.copy,
      ranges.map((r) => share(flat, COPY_RANK, [dst, src], [1, 2], r)),
    );
  }

  /**
   * A one-input kernel over `size` contiguous elements: `direct()` runs it here; on the pool each
   * share's record is `head`, then its out and x pointers and length.
   */
  function mapFlat(
    kind: number,
    head: readonly number[],
    out: number,
    x: number,
    size: number,
    direct: () => void,
  ): void {
    const ranges = poolShares(pieces.pool(), size, FLAT_ALIGN, size);
    if (!ranges) direct();
    else
      runShares(
        kind,
        ranges.map(([s, n]) => [...head, out + 4 * s, x + 4 * s, n]),
      );
  }

  /** n words at dst set to `bits`. */
  function fillWords(dst: number, bits: number, n: number): void {
    const ranges = poolShares(pieces.pool(), n, FLAT_ALIGN, n);
    if (!ranges) k.ewFill(dst, bits, n);
    else
      runShares(
        ELEMENTWISE_TASK.fill,
        ranges.map(([s, len]) => [dst + 4 * s, bits, len]),
      );
  }

  return {
    fill(size, value, dtype) {
      if (!isWord(dtype)) return fallback.fill(size, value, dtype);
      const out = alloc(dtype, size);
      fillWords(ptr(out), wordOf(value, dtype), size);
      return out;
    },

    cast(x, size, from, to) {
      if (!isWord(from) || !isWord(to)) return fallback.cast(x, size, from, to);
      const out = alloc(to, size);
      if (from === to) k.ewCopy(ptr(out), ptr(x), 1, 1, 1, 1, 1, size, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1);
      else if (to === 'int32') k.ewCastF32ToI32(ptr(out), ptr(x), size);
      else k.ewCastI32ToF32(ptr(out), ptr(x), size);
      return out;
    },

    unary(op, x, size, dtype) {
      if (dtype !== 'float32') return fallback.unary(op, x, size, dtype);
      const out = alloc(dtype, size);
      const [o, a] = [ptr(out), ptr(x)];
      mapFlat(ELEMENTWISE_TASK.unary, [UNARY[op]], o, a, size, () => k.ewUnary(UNARY[op], o, a, size));
      return out;
    },

    activation(fn, order, x, size, dtype) {
      if (dtype !== 'float32' || !Number.isInteger(order) || order < 0 || order > MAX_ACTIVATION_ORDER) {
        return fallback.activation(fn, order, x, size, dtype);
      }
      const out = alloc(dtype, size);
      const [o, a] = [ptr(out), ptr(x)];
      const f = ACTIVATION[fn];
      mapFlat(ELEMENTWISE_TASK.activation, [f, order], o, a, size, () =>
        k.ewActivation(f, order, o, a, size),
      );
      return out;
    },

    binary(op, a, aShape, b, bShape, outShape, dtype) {
      if (dtype !== 'float32') return fallback.binary(op, a, aShape, b, bShape, outShape, dtype);
      const size = sizeOf(outShape);
      const flat =
        size === 0
          ? null
          : collapseAxes(
              outShape,
              [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape)],
              ELEMENTWISE_RANK,
            );
      if (size !== 0 && !flat) return fallback.binary(op, a, aShape, b, bShape, outShape, dtype);
      const out = alloc(dtype, size);
      if (!flat) return out;
      const ranges = axisRanges(flat, ELEMENTWISE_RANK, size);
      if (ranges.length < 2) k.ewBinary(BINARY[op], ptr(out), ptr(a), ptr(b), ...flat);
      else {
        const pointers = [ptr(out), ptr(a), ptr(b)];
        // out is contiguous; a's strides are flat's first stride group, b's the second
        runShares(
          ELEMENTWISE_TASK.binary,
          ranges.map((r) => [BINARY[op], ...share(flat, ELEMENTWISE_RANK, pointers, [null, 1, 2], r)]),
        );
      }
      return out;
    },

    where(cond, condShape, a, aShape, b, bShape, outShape, dtype) {
      const size = sizeOf(outShape);
      const flat =
        dtype !== 'float32' || (cond as WasmBuffer).dtype !== 'float32' || size === 0
          ? null
          : collapseAxes(
              outShape,
              [
                broadcastStrides(condShape, outShape),
                broadcastStrides(aShape, outShape),
                broadcastStrides(bShape, outShape),
              ],
              ELEMENTWISE_RANK,
            );
      if (!flat) return fallback.where(cond, condShape, a, aShape, b, bShape, outShape, dtype);
      const out = alloc(dtype, size);
      k.ewWhere(ptr(out), ptr(cond), ptr(a), ptr(b), ...flat);
      return out;
    },

    reduce(op, x, shape, axes, dtype) {
      if (dtype !== 'float32') return fallback.reduce(op, x, shape, axes, dtype);
      // (outer, r, inner) when the reduced axes of size > 1 are one run of adjacent axes.
      let outer = 1;
      let r = 1;
      let inner = 1;
      let phase = 0; // 0: before the reduced run, 1: in it, 2: after it
      let empty = false;
      for (let i = 0; i < shape.length; i++) {
        const d = shape[i]!;
        if (d === 0) empty = true;
        const reduced = axes.includes(i);
        if (d === 1) continue;
        if (reduced) {
          if (phase === 2) return fallback.reduce(op, x, shape, axes, dtype);
          phase = 1;
          r *= d;
        } else if (phase === 0) outer *= d;
        else {
          phase = phase === 1 ? 2 : phase;
          inner *= d;
        }
      }
      if (empty) {
        // Some axis has size 0: either the output is empty or every output reduces nothing.
        let outSize = 1;
        for (let i = 0; i < shape.length; i++) if (!axes.includes(i)) outSize *= shape[i]!;
        const identity = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
        const out = alloc(dtype, outSize);
        k.ewFill(ptr(out), wordOf(identity, dtype), outSize);
        return out;
      }
      const out = alloc(dtype, outer * inner);
      if (r === 1)
        k.ewCopy(ptr(out), ptr(x), 1, 1, 1, 1, 1, outer * inner, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1);
      else k.ewReduce(REDUCE[op], ptr(out), ptr(x), outer, r, inner);
      return out;
    },

    argMax(x, shape, axis, dtype) {
      if (dtype !== 'float32') return fallback.argMax(x, shape, axis, dtype);
      const [outer, n, inner] = around(shape, axis);
      const out = alloc('int32', outer * inner);
      k.ewArgMax(ptr(out), ptr(x), outer, n, inner);
      return out;
    },

    transpose(x, shape, perm, dtype) {
      if (!isWord(dtype)) return fallback.transpose(x, shape, perm, dtype);
      const outShape = perm.map((p) => shape[p]!);
      const size = sizeOf(outShape);
      const inStrides = stridesOf(shape);
      const flat =
        size === 0
          ? null
          : collapseAxes(outShape, [stridesOf(outShape), perm.map((p) => inStrides[p]!)], COPY_RANK);
      if (size !== 0 && !flat) return fallback.transpose(x, shape, perm, dtype);
      const out = alloc(dtype, size);
      if (!flat) return out;
      // A batch of 2-D transposes: out (b, r, c) = src (b, c, r) with source strides (r·c, 1, r).
      const R = COPY_RANK;
      const [b, rows, cols] = [flat[R - 3]!, flat[R - 2]!, flat[R - 1]!];
      const [sb, sr, sc] = [flat[3 * R - 3]!, flat[3 * R - 2]!, flat[3 * R - 1]!];
      const leadingOnes = flat.slice(0, R - 3).every((d) => d === 1);
      if (
        leadingOnes &&
        sr === 1 &&
        sc === rows &&
        (b === 1 || sb === rows * cols) &&
        rows >= 4 &&
        cols >= 4
      ) {
        k.ewTranspose2(ptr(out), ptr(x), b, cols, rows);
      } else copy(ptr(out), ptr(x), flat);
      return out;
    },

    broadcastTo(x, shape, outShape, dtype) {
      if (!isWord(dtype)) return fallback.broadcastTo(x, shape, outShape, dtype);
      const size = sizeOf(outShape);
      const flat =
        size === 0
          ? null
          : collapseAxes(outShape, [stridesOf(outShape), broadcastStrides(shape, outShape)], COPY_RANK);
      if (size !== 0 && !flat) return fallback.broadcastTo(x, shape, outShape, dtype);
      const out = alloc(dtype, size);
      if (flat) copy(ptr(out), ptr(x), flat);
      return out;
    },

    slice(x, shape, begin, size, dtype) {
      if (!isWord(dtype)) return fallback.slice(x, shape, begin, size, dtype);
      const count = sizeOf(size);
      const strides = stridesOf(shape);
      const flat = count === 0 ? null : collapseAxes(size, [stridesOf(size), strides], COPY_RANK);
      if (count !== 0 && !flat) return fallback.slice(x, shape, begin, size, dtype);
      const out = alloc(dtype, count);
      if (!flat) return out;
      let start = 0;
      for (let i = 0; i < begin.length; i++) start += begin[i]! * strides[i]!;
      copy(ptr(out), ptr(x) + 4 * start, flat);
      return out;
    },

    pad(x, shape, padding, value, dtype) {
      if (!isWord(dtype)) return fallback.pad(x, shape, padding, value, dtype);
      const outShape = shape.map((d, i) => d + padding[i]![0] + padding[i]![1]);
      const outStrides = stridesOf(outShape);
      const inSize = sizeOf(shape);
      const flat = inSize === 0 ? null : collapseAxes(shape, [outStrides, stridesOf(shape)], COPY_RANK);
      if (inSize !== 0 && !flat) return fallback.pad(x, shape, padding, value, dtype);
      const size = sizeOf(outShape);
      const out = alloc(dtype, size);
      fillWords(ptr(out), wordOf(value, dtype), size);
      if (!flat) return out;
      let start = 0;
      for (let i = 0; i < padding.length; i++) start += padding[i]![0] * outStrides[i]!;
      copy(ptr(out) + 4 * start, ptr(x), flat);
      return out;
    },

    concat(xs, shapes, axis, dtype) {
      if (!isWord(dtype)) return fallback.concat(xs, shapes, axis, dtype);
      const [outer, , inner] = around(shapes[0]!, axis);
      let total = 0;
      for (const s of shapes) total += s[axis]!;
      const out = alloc(dtype, outer * total * inner);
      const base = ptr(out);
      let offset = 0;
      for (let i = 0; i < xs.length; i++) {
        const block = shapes[i]![axis]! * inner;
        if (block > 0 && outer > 0) {
          // (outer, block) rows: destination pitch total·inner, source pitch block.
          k.ewCopy(
            base + 4 * offset,
            ptr(xs[i]!),
            1,
            1,
            1,
            1,
            outer,
            block,
            0,
            0,
            0,
            0,
            total * inner,
            1,
            0,
            0,
            0,
            0,
            block,
            1,
          );
        }
        offset += block;
      }
      return out;
    },

    gather(x, shape, indices, indexSize, axis, dtype) {
      if (!isWord(dtype)) return fallback.gather(x, shape, indices, indexSize, axis, dtype);
      const [outer, n, inner] = around(shape, axis);
      const out = alloc(dtype, outer * indexSize * inner);
      k.ewGather(ptr(out), ptr(x), ptr(indices), outer, n, inner, indexSize);
      return out;
    },

    scatterAdd(g, indices, indexSize, outShape, axis, dtype) {
      if (dtype !== 'float32') return fallback.scatterAdd(g, indices, indexSize, outShape, axis, dtype);
      const [outer, n, inner] = around(outShape, axis);
      const out = alloc(dtype, outer * n * inner);
      k.ewScatterAdd(ptr(out), ptr(g), ptr(indices), outer, n, inner, indexSize);
      return out;
    },

    linearScan(a, b, shape, axis, reverse, dtype) {
      if (dtype !== 'float32') return fallback.linearScan(a, b, shape, axis, reverse, dtype);
      const [outer, n, inner] = around(shape, axis);
      const out = alloc(dtype, outer * n * inner);
      k.ewLinearScan(ptr(out), ptr(a), ptr(b), outer, n, inner, reverse ? 1 : 0);
      return out;
    },
  };
}
