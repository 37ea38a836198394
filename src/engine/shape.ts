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
