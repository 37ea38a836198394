import { isFloat } from '../dtype.js';
import { broadcastShapes, formatShape, normalizeAxis, type Shape, shapesEqual, sizeOf } from '../shape.js';
import { isRecording, noGrad, record, recordPiece } from '../tape.js';
import { type Tensor, viewOf, wrapBuffer } from '../tensor.js';
import { toBackend } from './create.js';
import { unbroadcast } from './elementwise.js';

/**
 * A view with another shape of the same size; one dimension may be −1 (inferred).
 * @example reshape(x, [B, T, H, -1]) // (B, T, H·dh) → (B, T, H, dh)
 */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1) throw new RangeError(`reshape: at most one −1 in ${formatShape(shape)}`);
  let target = [...shape];
  if (inferred === 1) {
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0) {
      throw new RangeError(`reshape: cannot reshape ${formatShape(x.shape)} into ${formatShape(shape)}`);
    }
    target = shape.map((d) => (d === -1 ? x.size / known : d));
  }
  if (target.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(target) !== x.size) {
    throw new RangeError(
      `reshape: cannot reshape ${formatShape(x.shape)} (size ${x.size}) into ${formatShape(shape)}`,
    );
  }
  if (shapesEqual(target, x.shape)) return x;
  const out = viewOf(x, target);
  if (isFloat(x.dtype) && isRecording([x])) record('reshape', [x], out, (g) => [reshape(g, x.shape)]);
  return out;
}

/** The same values, cut off from every tape: no gradient flows through it. */
export function stopGradient(x: Tensor): Tensor {
  return viewOf(x, x.shape);
}

/** Inserts a size-1 axis at `axis`. */
export function expandDims(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis(axis, x.rank + 1, 'expandDims');
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

/** Removes size-1 axes (all of them, or those listed). */
export function squeeze(x: Tensor, axes?: readonly number[]): Tensor {
  const list = axes?.map((a) => normalizeAxis(a, x.rank, 'squeeze'));
  list?.forEach((a) => {
    if (x.shape[a] !== 1)
      throw new RangeError(`squeeze: axis ${a} of ${formatShape(x.shape)} is not of size 1`);
  });
  return reshape(
    x,
    x.shape.filter((d, i) => (list ? !list.includes(i) : d !== 1)),
  );
}

/**
 * Permutes axes; without `perm`, swaps the last two.
 * @example transpose(x, [0, 2, 1, 3]) // (B, T, H, dh) → (B, H, T, dh)
 */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ?? [...Array.from({ length: x.rank - 2 }, (_, i) => i), x.rank - 1, x.rank - 2];
  if (x.rank < 2 && !perm) throw new RangeError(`transpose: needs rank ≥ 2, got ${formatShape(x.shape)}`);
  if (p.length !== x.rank || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new RangeError(
      `transpose: ${formatShape(p)} is not a permutation of the axes of ${formatShape(x.shape)}`,
    );
  }
  if (p.every((v, i) => v === i)) return x;
  const shape = p.map((a) => x.shape[a]!);
  const out = wrapBuffer(x.backend, x.backend.transpose(x.buffer, x.shape, p, x.dtype), shape, x.dtype);
  if (isFloat(x.dtype) && isRecording([x])) {
    const inverse = new Array<number>(p.length);
    p.forEach((a, i) => {
      inverse[a] = i;
    });
    record('transpose', [x], out, (g) => [transpose(g, inverse)]);
  }
  return out;
}

/** Copies x broadcast to `shape` (NumPy rules). */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes(x.shape, shape, 'broadcastTo');
  if (!shapesEqual(target, shape)) {
    throw new RangeError(`broadcastTo: ${formatShape(x.shape)} cannot be broadcast to ${formatShape(shape)}`);
  }
  if (shapesEqual(x.shape, shape)) return x;
  const out = wrapBuffer(x.backend, x.backend.broadcastTo(x.buffer, x.shape, shape, x.dtype), shape, x.dtype);
  if (isFloat(x.dtype) && isRecording([x])) record('broadcastTo', [x], out, (g) => [unbroadcast(g, x.shape)]);
  return out;
}

/**
 * A contiguous box: `begin` per axis and `size` per axis (−1 = to the end). Missing trailing
 * axes are taken whole.
 * @example slice(x, [0, 16], [-1, 16]) // (B, T, …) → (B, 16, …): tokens 16…31
 */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  if (begin.length > x.rank) throw new RangeError(`slice: begin has more axes than ${formatShape(x.shape)}`);
  const b = x.shape.map((_, i) => begin[i] ?? 0);
  const s = x.shape.map((d, i) => {
    const v = size?.[i] ?? -1;
    return v === -1 ? d - b[i]! : v;
  });
  for (let i = 0; i < x.rank; i++) {
    if (
      !Number.isInteger(b[i]) ||
      !Number.isInteger(s[i]) ||
      b[i]! < 0 ||
      s[i]! < 0 ||
      b[i]! + s[i]! > x.shape[i]!
    ) {
      throw new RangeError(
        `slice: begin ${formatShape(b)} size ${formatShape(s)} is out of bounds for ${formatShape(x.shape)}`,
      );
    }
  }
  if (shapesEqual(s, x.shape)) return x;
  const out = wrapBuffer(x.backend, x.backend.slice(x.buffer, x.shape, b, s, x.dtype), s, x.dtype);
  if (isFloat(x.dtype) && isRecording([x])) {
    record('slice', [x], out, (g) => [
      pad(
        g,
        x.shape.map((d, i) => [b[i]!, d - b[i]! - s[i]!] as [number, number]),
      ),
    ]);
  }
  return out;
}

/**
 * `length` entries from `start` along one axis, every other axis whole.
 * @example sliceAxis(x, -2, t, 1) // (…, T, d) → (…, 1, d): token t
 */
export function sliceAxis(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normalizeAxis(axis, x.rank, 'sliceAxis');
  return slice(
    x,
    x.shape.map((_, i) => (i === a ? start : 0)),
    x.shape.map((d, i) => (i === a ? length : d)),
  );
}

/** Pads every axis with `value`: padding[i] = [before, after]. */
export function pad(x: Tensor, padding: readonly (readonly [number, number])[], value = 0): Tensor {
  if (padding.length !== x.rank) {
    throw new RangeError(`pad: ${padding.length} paddings for a tensor of rank ${x.rank}`);
  }
  if (padding.some(([a, b]) => !Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0)) {
    throw new RangeError('pad: paddings must be non-negative integers');
  }
  if (padding.every(([a, b]) => a === 0 && b === 0)) return x;
  const shape = x.shape.map((d, i) => d + padding[i]![0] + padding[i]![1]);
  const out = wrapBuffer(
    x.backend,
    x.backend.pad(x.buffer, x.shape, padding, value, x.dtype),
    shape,
    x.dtype,
  );
  if (isFloat(x.dtype) && isRecording([x])) {
    record('pad', [x], out, (g) => [
      slice(
        g,
        padding.map(([a]) => a),
        x.shape,
      ),
    ]);
  }
  return out;
}

/** Joins tensors along an existing axis. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  const first = xs[0]!;
  const a = normalizeAxis(axis, first.rank, 'concat');
  for (const x of xs) {
    if (
      x.rank !== first.rank ||
      x.dtype !== first.dtype ||
      x.shape.some((d, i) => i !== a && d !== first.shape[i])
    ) {
      throw new RangeError(
        `concat: ${xs.map((t) => `${t.dtype}${formatShape(t.shape)}`).join(', ')} do not match off axis ${a}`,
      );
    }
    if (x.backend !== first.backend) throw new Error('concat: tensors live on different backends');
  }
  if (xs.length === 1) return first;
  const shape = [...first.shape];
  shape[a] = xs.reduce((n, x) => n + x.shape[a]!, 0);
  const buffer = first.backend.concat(
    xs.map((x) => x.buffer),
    xs.map((x) => x.shape),
    a,
    first.dtype,
  );
  const out = wrapBuffer(first.backend, buffer, shape, first.dtype);
  if (isFloat(first.dtype) && isRecording(xs)) {
    record('concat', xs, out, (g, needs) => {
      let offset = 0;
      return xs.map((x, i) => {
        const begin = x.shape.map((_, j) => (j === a ? offset : 0));
        offset += x.shape[a]!;
        return needs[i] ? slice(g, begin, x.shape) : null;
      });
    });
  }
  return out;
}

/** Stacks same-shaped tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('stack: needs at least one tensor');
  return concat(
    xs.map((x) => expandDims(x, axis)),
    axis,
  );
}

/**
 * Splits into pieces of the given sizes along `axis`. Under a tape the pieces' cotangents are
 * assembled into x's in one concat (not each padded to x's shape and added, as slices would be).
 */
export function split(x: Tensor, sizes: readonly number[], axis = 0): Tensor[] {
  const a = normalizeAxis(axis, x.rank, 'split');
  if (sizes.reduce((s, v) => s + v, 0) !== x.shape[a] || sizes.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new RangeError(
      `split: sizes ${formatShape(sizes)} do not add up to axis ${a} of ${formatShape(x.shape)}`,
    );
  }
  if (sizes.length === 1) return [x];
  const recording = isFloat(x.dtype) && isRecording([x]);
  let offset = 0;
  return sizes.map((n) => {
    const begin = x.shape.map((_, j) => (j === a ? offset : 0));
    const size = x.shape.map((d, j) => (j === a ? n : d));
    const part = recording ? noGrad(() => slice(x, begin, size)) : slice(x, begin, size);
    if (recording) recordPiece(x, part, offset, a);
    offset += n;
    return part;
  });
}

/**
 * Rows of x along `axis` picked by int32 indices (embedding lookup when axis = 0).
 * Out shape: x.shape[:axis] + indices.shape + x.shape[axis+1:].
 * @example gather(embedding, tokens) // (V, d), (B, T) → (B, T, d)
 */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  if (indices.dtype !== 'int32') throw new TypeError(`gather: indices must be int32, got ${indices.dtype}`);
  const a = normalizeAxis(axis, x.rank, 'gather');
  const n = x.shape[a]!;
  // Checked where the values are known without a read-back (uploaded from the host, or a CPU
  // backend); indices computed on an asynchronous device are the kernel's to keep in bounds.
  const idx = indices.knownValues();
  for (let i = 0; idx && i < idx.length; i++) {
    if (idx[i]! < 0 || idx[i]! >= n) {
      throw new RangeError(
        `gather: index ${idx[i]} at position ${i} is out of range [0, ${n}) for axis ${a}`,
      );
    }
  }
  if (indices.backend !== x.backend) indices = toBackend(indices, x.backend.name);
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  const out = wrapBuffer(
    x.backend,
    x.backend.gather(x.buffer, x.shape, indices.buffer, indices.size, a, x.dtype),
    shape,
    x.dtype,
  );
  if (isFloat(x.dtype) && isRecording([x])) {
    record(
      'gather',
      [x],
      out,
      (g) => {
        const flat = reshape(g, [...x.shape.slice(0, a), indices.size, ...x.shape.slice(a + 1)]);
        return [scatterAdd(flat, indices, x.shape, a)];
      },
      [indices],
    );
  }
  return out;
}

/** The adjoint of gather (differentiable: its own adjoint is gather). */
function scatterAdd(g: Tensor, indices: Tensor, shape: Shape, axis: number): Tensor {
  const out = wrapBuffer(
    g.backend,
    g.backend.scatterAdd(g.buffer, indices.buffer, indices.size, shape, axis, g.dtype),
    shape,
    g.dtype,
  );
  if (isRecording([g]))
    record('scatterAdd', [g], out, (h) => [gather(h, reshape(indices, [indices.size]), axis)], [indices]);
  return out;
}
