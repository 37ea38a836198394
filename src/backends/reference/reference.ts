import type {
  ActivationFn,
  Backend,
  BackendBuffer,
  BinaryOp,
  ReduceOp,
  UnaryOp,
} from '../../engine/backend.js';
import { allocArray, type DType, type TypedArray } from '../../engine/dtype.js';
import { broadcastStrides, matmulLayout, type Shape, sizeOf, stridesOf } from '../../engine/shape.js';
import {
  geluDerivative,
  sigmoidDerivative,
  siluDerivative,
  softplusDerivative,
  tanhDerivative,
} from './special.js';

/**
 * Plain TypeScript kernels over typed arrays, written to be obviously correct rather than fast.
 * Values are computed in float64 and rounded on store. Where the arrays live is a `HostStorage`:
 * the JavaScript heap for the reference backend (the float64 oracle every other backend is
 * checked against), WebAssembly memory for the wasm backend, which replaces the hot kernels.
 */
export interface HostStorage {
  /** A new buffer of `size` elements and a typed-array view of it. */
  alloc(dtype: DType, size: number): [BackendBuffer, TypedArray];
  /** A typed-array view of a buffer's elements (valid until the next allocation). */
  view(buffer: BackendBuffer): TypedArray;
  release(buffer: BackendBuffer): void;
  byteLength(buffer: BackendBuffer): number;
}

class HeapBuffer {
  constructor(public data: TypedArray) {}
}

/** Arrays on the JavaScript heap (freed by the garbage collector once released). */
export const heapStorage: HostStorage = {
  alloc(dtype, size) {
    const data = allocArray(dtype, size);
    return [new HeapBuffer(data), data];
  },
  view: (buffer) => (buffer as HeapBuffer).data,
  release(buffer) {
    (buffer as HeapBuffer).data = new Float64Array(0);
  },
  byteLength: (buffer) => (buffer as HeapBuffer).data.byteLength,
};

/** Splits a shape around `axis` into (outer, n, inner) for axis-wise kernels. */
function around(shape: Shape, axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis]!, sizeOf(shape.slice(axis + 1))];
}

/**
 * Visits every index of `shape` in row-major order, tracking one running offset per stride
 * list; calls `visit(outIndex, offsets)`. Offsets are updated incrementally (an odometer).
 */
function odometer(
  shape: Shape,
  strides: readonly (readonly number[])[],
  visit: (i: number, offsets: number[]) => void,
) {
  const rank = shape.length;
  const size = sizeOf(shape);
  const offsets = strides.map(() => 0);
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < size; i++) {
    visit(i, offsets);
    for (let ax = rank - 1; ax >= 0; ax--) {
      index[ax]!++;
      for (let s = 0; s < strides.length; s++) offsets[s]! += strides[s]![ax]!;
      if (index[ax]! < shape[ax]!) break;
      for (let s = 0; s < strides.length; s++) offsets[s]! -= strides[s]![ax]! * shape[ax]!;
      index[ax] = 0;
    }
  }
}

/**
 * Like `odometer`, but one call per row of the (collapsed) last axis, so kernels run a tight
 * inner loop: `visit(first, offsets, n, inner)` covers flat indices first … first+n−1, where
 * operand s is at offsets[s] + j·inner[s]. Adjacent axes that are contiguous for every operand
 * are merged first, so a broadcast over leading axes still gets long rows.
 */
function rows(
  shape: Shape,
  strides: readonly (readonly number[])[],
  visit: (first: number, offsets: number[], n: number, inner: number[]) => void,
) {
  if (shape.length === 0) {
    visit(
      0,
      strides.map(() => 0),
      1,
      strides.map(() => 0),
    );
    return;
  }
  const dims = [shape[0]!];
  const merged = strides.map((st) => [st[0]!]);
  for (let ax = 1; ax < shape.length; ax++) {
    const d = shape[ax]!;
    const last = dims.length - 1;
    if (strides.every((st, s) => merged[s]![last] === st[ax]! * d)) {
      dims[last] = dims[last]! * d;
      strides.forEach((st, s) => {
        merged[s]![last] = st[ax]!;
      });
    } else {
      dims.push(d);
      strides.forEach((st, s) => {
        merged[s]!.push(st[ax]!);
      });
    }
  }
  const n = dims[dims.length - 1]!;
  const inner = merged.map((st) => st[st.length - 1]!);
  if (n === 0) return;
  const outerShape = dims.slice(0, -1);
  const outerStrides = merged.map((st) => st.slice(0, -1));
  odometer(outerShape, outerStrides, (row, offsets) => visit(row * n, offsets, n, inner));
}

function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case 'neg':
      return (x) => -x;
    case 'exp':
      return Math.exp;
    case 'log':
      return Math.log;
    case 'log1p':
      return Math.log1p;
    case 'sqrt':
      return Math.sqrt;
    case 'rsqrt':
      return (x) => 1 / Math.sqrt(x);
    case 'abs':
      return Math.abs;
    case 'sign':
      return (x) => (x > 0 ? 1 : x < 0 ? -1 : 0);
    case 'reciprocal':
      return (x) => 1 / x;
    case 'square':
      return (x) => x * x;
  }
}

function activationFn(fn: ActivationFn): (x: number, n: number) => number {
  switch (fn) {
    case 'sigmoid':
      return sigmoidDerivative;
    case 'tanh':
      return tanhDerivative;
    case 'silu':
      return siluDerivative;
    case 'gelu':
      return geluDerivative;
    case 'softplus':
      return softplusDerivative;
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add':
      return (a, b) => a + b;
    case 'sub':
      return (a, b) => a - b;
    case 'mul':
      return (a, b) => a * b;
    case 'div':
      return (a, b) => a / b;
    case 'pow':
      return Math.pow;
    case 'maximum':
      return (a, b) => (a >= b || Number.isNaN(a) ? a : b);
    case 'minimum':
      return (a, b) => (a <= b || Number.isNaN(a) ? a : b);
    case 'greater':
      return (a, b) => (a > b ? 1 : 0);
    case 'greaterEqual':
      return (a, b) => (a >= b ? 1 : 0);
    case 'less':
      return (a, b) => (a < b ? 1 : 0);
    case 'lessEqual':
      return (a, b) => (a <= b ? 1 : 0);
    case 'equal':
      return (a, b) => (a === b ? 1 : 0);
    case 'notEqual':
      return (a, b) => (a !== b ? 1 : 0);
  }
}

/** A backend running the kernels above on arrays kept in `storage`. */
export function createHostBackend(
  name: string,
  floatDTypes: readonly DType[],
  storage: HostStorage,
): Backend {
  const alloc = storage.alloc.bind(storage);
  const view = storage.view.bind(storage);
  const backend: Backend = {
    name,
    floatDTypes,

    upload(data, dtype) {
      const [buffer, out] = alloc(dtype, data.length);
      out.set(data);
      return buffer;
    },
    fill(size, value, dtype) {
      const [buffer, out] = alloc(dtype, size);
      out.fill(value);
      return buffer;
    },
    read(buffer, dtype) {
      return Promise.resolve(backend.readSync!(buffer, dtype));
    },
    readSync(buffer) {
      return view(buffer).slice();
    },
    release: (buffer) => storage.release(buffer),
    byteLength: (buffer) => storage.byteLength(buffer),

    cast(x, size, _from, to) {
      const src = view(x);
      const [buffer, out] = alloc(to, size);
      if (to === 'int32') for (let i = 0; i < size; i++) out[i] = Math.trunc(src[i]!);
      else out.set(src);
      return buffer;
    },

    unary(op, x, size, dtype) {
      const f = unaryFn(op);
      const src = view(x);
      const [buffer, out] = alloc(dtype, size);
      for (let i = 0; i < size; i++) out[i] = f(src[i]!);
      return buffer;
    },

    activation(fn, order, x, size, dtype) {
      const f = activationFn(fn);
      const src = view(x);
      const [buffer, out] = alloc(dtype, size);
      for (let i = 0; i < size; i++) out[i] = f(src[i]!, order);
      return buffer;
    },

    binary(op, a, aShape, b, bShape, outShape, dtype) {
      const f = binaryFn(op);
      const x = view(a);
      const y = view(b);
      const size = sizeOf(outShape);
      const [buffer, out] = alloc(dtype, size);
      // Same shapes collapse into a single row; the common arithmetic is inlined, the rest goes through f.
      const strides = [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape)];
      rows(outShape, strides, (first, [oa, ob], n, [sa, sb]) => {
        let ia = oa!;
        let ib = ob!;
        if (op === 'add') for (let j = 0; j < n; j++, ia += sa!, ib += sb!) out[first + j] = x[ia]! + y[ib]!;
        else if (op === 'mul')
          for (let j = 0; j < n; j++, ia += sa!, ib += sb!) out[first + j] = x[ia]! * y[ib]!;
        else if (op === 'sub')
          for (let j = 0; j < n; j++, ia += sa!, ib += sb!) out[first + j] = x[ia]! - y[ib]!;
        else if (op === 'div')
          for (let j = 0; j < n; j++, ia += sa!, ib += sb!) out[first + j] = x[ia]! / y[ib]!;
        else for (let j = 0; j < n; j++, ia += sa!, ib += sb!) out[first + j] = f(x[ia]!, y[ib]!);
      });
      return buffer;
    },

    where(cond, condShape, a, aShape, b, bShape, outShape, dtype) {
      const c = view(cond);
      const x = view(a);
      const y = view(b);
      const [buffer, out] = alloc(dtype, sizeOf(outShape));
      const strides = [
        broadcastStrides(condShape, outShape),
        broadcastStrides(aShape, outShape),
        broadcastStrides(bShape, outShape),
      ];
      rows(outShape, strides, (first, [oc, oa, ob], n, [sc, sa, sb]) => {
        for (let j = 0; j < n; j++) {
          out[first + j] = c[oc! + j * sc!] !== 0 ? x[oa! + j * sa!]! : y[ob! + j * sb!]!;
        }
      });
      return buffer;
    },

    reduce(op: ReduceOp, x, shape, axes, dtype) {
      const src = view(x);
      const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const outSize = sizeOf(outShape);
      const acc = new Float64Array(outSize).fill(op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity);
      const outStrides = stridesOf(outShape).map((s, i) => (axes.includes(i) ? 0 : s));
      rows(shape, [outStrides], (first, [o], n, [step]) => {
        for (let t = 0; t < n; t++) {
          const v = src[first + t]!;
          const j = o! + t * step!;
          if (op === 'sum') acc[j]! += v;
          else if (op === 'max') acc[j] = v > acc[j]! || Number.isNaN(v) ? v : acc[j]!;
          else acc[j] = v < acc[j]! || Number.isNaN(v) ? v : acc[j]!;
        }
      });
      const [buffer, out] = alloc(dtype, outSize);
      out.set(acc);
      return buffer;
    },

    argMax(x, shape, axis) {
      const src = view(x);
      const [outer, n, inner] = around(shape, axis);
      const [buffer, out] = alloc('int32', outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          let best = 0;
          let bestValue = src[o * n * inner + j]!;
          for (let t = 1; t < n; t++) {
            const v = src[(o * n + t) * inner + j]!;
            if (v > bestValue) {
              bestValue = v;
              best = t;
            }
          }
          out[o * inner + j] = best;
        }
      }
      return buffer;
    },

    matmul(a, aShape, b, bShape, transposeA, transposeB, outShape, dtype) {
      const x = view(a);
      const y = view(b);
      const { m, n, k, aRowStride, aColStride, bRowStride, bColStride, forEachBatch } = matmulLayout(
        aShape,
        bShape,
        transposeA,
        transposeB,
        outShape,
      );
      const [buffer, out] = alloc(dtype, sizeOf(outShape));
      // Each batch's operands are first copied into plain row-major float64 matrices (A: m×k,
      // B: k×n), so the product loop below is one simple, monomorphic i-p-j loop whatever the
      // transposes and dtypes.
      const A = new Float64Array(m * k);
      const B = new Float64Array(k * n);
      const C = new Float64Array(m * n);
      forEachBatch((batch, aOff, bOff) => {
        for (let i = 0; i < m; i++) {
          for (let p = 0; p < k; p++) A[i * k + p] = x[aOff + i * aRowStride + p * aColStride]!;
        }
        for (let p = 0; p < k; p++) {
          for (let j = 0; j < n; j++) B[p * n + j] = y[bOff + p * bRowStride + j * bColStride]!;
        }
        C.fill(0);
        for (let i = 0; i < m; i++) {
          const cRow = i * n;
          for (let p = 0; p < k; p++) {
            const av = A[i * k + p]!;
            const bRow = p * n;
            for (let j = 0; j < n; j++) C[cRow + j]! += av * B[bRow + j]!;
          }
        }
        out.set(C, batch * m * n);
      });
      return buffer;
    },

    transpose(x, shape, perm, dtype) {
      const src = view(x);
      const inStrides = stridesOf(shape);
      const outShape = perm.map((p) => shape[p]!);
      const [buffer, out] = alloc(dtype, src.length);
      rows(outShape, [perm.map((p) => inStrides[p]!)], (first, [o], n, [step]) => {
        for (let j = 0; j < n; j++) out[first + j] = src[o! + j * step!]!;
      });
      return buffer;
    },

    broadcastTo(x, shape, outShape, dtype) {
      const src = view(x);
      const [buffer, out] = alloc(dtype, sizeOf(outShape));
      rows(outShape, [broadcastStrides(shape, outShape)], (first, [o], n, [step]) => {
        for (let j = 0; j < n; j++) out[first + j] = src[o! + j * step!]!;
      });
      return buffer;
    },

    slice(x, shape, begin, size, dtype) {
      const src = view(x);
      const strides = stridesOf(shape);
      const start = begin.reduce((s, b, i) => s + b * strides[i]!, 0);
      const [buffer, out] = alloc(dtype, sizeOf(size));
      rows(size, [strides], (first, [o], n, [step]) => {
        for (let j = 0; j < n; j++) out[first + j] = src[start + o! + j * step!]!;
      });
      return buffer;
    },

    pad(x, shape, padding, value, dtype) {
      const src = view(x);
      const outShape = shape.map((d, i) => d + padding[i]![0] + padding[i]![1]);
      const outStrides = stridesOf(outShape);
      const [buffer, out] = alloc(dtype, sizeOf(outShape));
      out.fill(value);
      const start = padding.reduce((s, [before], i) => s + before * outStrides[i]!, 0);
      rows(shape, [outStrides], (first, [o], n, [step]) => {
        for (let j = 0; j < n; j++) out[start + o! + j * step!] = src[first + j]!;
      });
      return buffer;
    },

    concat(xs, shapes, axis, dtype) {
      const [outer, , inner] = around(shapes[0]!, axis);
      const total = shapes.reduce((s, sh) => s + sh[axis]!, 0);
      const [buffer, out] = alloc(dtype, outer * total * inner);
      let offset = 0;
      xs.forEach((xb, k) => {
        const src = view(xb);
        const n = shapes[k]![axis]!;
        for (let o = 0; o < outer; o++) {
          out.set(src.subarray(o * n * inner, (o + 1) * n * inner), (o * total + offset) * inner);
        }
        offset += n;
      });
      return buffer;
    },

    gather(x, shape, indices, indexSize, axis, dtype) {
      const src = view(x);
      const idx = view(indices);
      const [outer, n, inner] = around(shape, axis);
      const [buffer, out] = alloc(dtype, outer * indexSize * inner);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < indexSize; i++) {
          const from = (o * n + idx[i]!) * inner;
          out.set(src.subarray(from, from + inner), (o * indexSize + i) * inner);
        }
      }
      return buffer;
    },

    scatterAdd(g, indices, indexSize, outShape, axis, dtype) {
      const src = view(g);
      const idx = view(indices);
      const [outer, n, inner] = around(outShape, axis);
      const acc = new Float64Array(sizeOf(outShape));
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < indexSize; i++) {
          const to = (o * n + idx[i]!) * inner;
          const from = (o * indexSize + i) * inner;
          for (let j = 0; j < inner; j++) acc[to + j]! += src[from + j]!;
        }
      }
      const [buffer, out] = alloc(dtype, acc.length);
      out.set(acc);
      return buffer;
    },

    linearScan(a, b, shape, axis, reverse, dtype) {
      const ga = view(a);
      const gb = view(b);
      const [outer, n, inner] = around(shape, axis);
      const [buffer, out] = alloc(dtype, ga.length);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          let h = 0;
          for (let s = 0; s < n; s++) {
            const t = reverse ? n - 1 - s : s;
            const i = (o * n + t) * inner + j;
            h = ga[i]! * h + gb[i]!;
            out[i] = h;
          }
        }
      }
      return buffer;
    },
  };
  return backend;
}

/** The reference backend: float32 and float64 on the JavaScript heap. */
export const referenceBackend: Backend = createHostBackend('reference', ['float32', 'float64'], heapStorage);
