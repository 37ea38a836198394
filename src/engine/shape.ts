/** Shape arithmetic shared by the ops and the backends. Shapes are row-major. */

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function assertValidShape(shape: Shape, what = 'shape'): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`${what} ${formatShape(shape)} has an invalid dimension ${d}`);
    }
  }
}

/** NumPy broadcasting of two shapes; throws naming both shapes when they are incompatible. */
export function broadcastShapes(a: Shape, b: Shape, opName = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`${opName}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalises a possibly negative axis against a rank, with a clear error. */
export function normalizeAxis(axis: number, rank: number, opName: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new RangeError(`${opName}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

/** Normalises a list of axes (undefined = all), sorted and deduplicated. */
export function normalizeAxes(
  axes: number | readonly number[] | undefined,
  rank: number,
  opName: string,
): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normalizeAxis(a, rank, opName)))];
  return out.sort((x, y) => x - y);
}

/**
 * The fewest axes that walk the same elements: drops size-1 axes and merges each axis into the
 * previous one when that is contiguous for every operand (stride_prev = stride · dim). `strides`
 * holds one stride list per operand, over the axes of `shape`; returns the dims and each operand's
 * strides over them.
 * @example mergeAxes([2, 1, 3], [[3, 3, 1]]); // [[6], [[1]]]
 */
export function mergeAxes(shape: Shape, strides: readonly (readonly number[])[]): [number[], number[][]] {
  const dims: number[] = [];
  const merged: number[][] = strides.map(() => []);
  for (let ax = 0; ax < shape.length; ax++) {
    const d = shape[ax]!;
    if (d === 1) continue;
    const last = dims.length - 1;
    // Plain loops: every elementwise kernel call of the CPU backends comes through here.
    let contiguous = last >= 0;
    for (let s = 0; contiguous && s < strides.length; s++) {
      if (merged[s]![last] !== strides[s]![ax]! * d) contiguous = false;
    }
    if (contiguous) {
      dims[last] = dims[last]! * d;
      for (let s = 0; s < strides.length; s++) merged[s]![last] = strides[s]![ax]!;
    } else {
      dims.push(d);
      for (let s = 0; s < strides.length; s++) merged[s]!.push(strides[s]![ax]!);
    }
  }
  return [dims, merged];
}

/**
 * Whether `inShape` broadcasts to `outShape` unchanged: right-aligned, every axis 1 or equal, and
 * no more axes than `outShape`.
 * @example broadcastsTo([1, 3], [2, 3]); // true; broadcastsTo([2], [3]) is false
 */
export function broadcastsTo(inShape: Shape, outShape: Shape): boolean {
  const pad = outShape.length - inShape.length;
  return pad >= 0 && inShape.every((n, a) => n === 1 || n === outShape[pad + a]);
}

/**
 * Strides for reading an input of `inShape` as if it had `outShape` (broadcast): axes where the
 * input has size 1 (or is missing) get stride 0.
 */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const inStrides = stridesOf(inShape);
  const offset = outShape.length - inShape.length;
  return outShape.map((_, i) => {
    const j = i - offset;
    if (j < 0) return 0;
    return inShape[j] === 1 ? 0 : inStrides[j]!;
  });
}

/**
 * The geometry of a batched matmul as backends need it: sizes, the element strides of each
 * operand's matrix (a transposed operand is just swapped strides: A[i, p] = a[aOffset +
 * i·aRowStride + p·aColStride]) and, per output batch, the element offsets of both operands'
 * matrices after batch broadcasting.
 */
export function matmulLayout(
  aShape: Shape,
  bShape: Shape,
  transposeA: boolean,
  transposeB: boolean,
  outShape: Shape,
): {
  m: number;
  n: number;
  k: number;
  aRowStride: number;
  aColStride: number;
  bRowStride: number;
  bColStride: number;
  /** visit(batch, aOffset, bOffset) for every output batch, in order; C's offset is batch·m·n. */
  forEachBatch: (visit: (batch: number, aOffset: number, bOffset: number) => void) => void;
} {
  const rank = outShape.length;
  const [ar, ac] = [aShape[aShape.length - 2]!, aShape[aShape.length - 1]!];
  const [br, bc] = [bShape[bShape.length - 2]!, bShape[bShape.length - 1]!];
  const batchShape = outShape.slice(0, -2);
  const aBatch = broadcastStrides(aShape.slice(0, -2), batchShape);
  const bBatch = broadcastStrides(bShape.slice(0, -2), batchShape);
  return {
    m: outShape[rank - 2]!,
    n: outShape[rank - 1]!,
    k: transposeA ? ar : ac,
    aRowStride: transposeA ? 1 : ac,
    aColStride: transposeA ? ac : 1,
    bRowStride: transposeB ? 1 : bc,
    bColStride: transposeB ? bc : 1,
    forEachBatch(visit) {
      const index = new Array<number>(batchShape.length).fill(0);
      const batches = sizeOf(batchShape);
      for (let batch = 0; batch < batches; batch++) {
        let aOff = 0;
        let bOff = 0;
        for (let i = 0; i < index.length; i++) {
          aOff += index[i]! * aBatch[i]!;
          bOff += index[i]! * bBatch[i]!;
        }
        visit(batch, aOff * ar * ac, bOff * br * bc);
        for (let i = index.length - 1; i >= 0; i--) {
          if (++index[i]! < batchShape[i]!) break;
          index[i] = 0;
        }
      }
    },
  };
}
