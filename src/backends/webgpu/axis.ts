/**
 * The WebGPU backend's kernels along one axis of a (outer, n, inner) view: reductions (sum, max,
 * min over a run of adjacent axes; other axis sets are transposed to the end first), argMax, the
 * first-order linear scan, gather and its adjoint scatterAdd. All are deterministic: no atomics,
 * each output is summed by one invocation (scatterAdd: one invocation owns one column).
 */
import type { Backend, ReduceOp } from '../../engine/backend.js';
import { formatShape, type Shape, sizeOf } from '../../engine/shape.js';
import type { Binding, GpuBuffer, GpuContext } from './context.js';
import { entry, FLOAT_HELPERS, header, WORKGROUP } from './wgsl.js';

export type AxisMethods = Pick<Backend, 'reduce' | 'argMax' | 'linearScan' | 'gather' | 'scatterAdd'>;

/** Splits a shape around `axis` into (outer, n, inner). */
export function around(shape: Shape, axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis]!, sizeOf(shape.slice(axis + 1))];
}

const IDENTITY: Record<ReduceOp, string> = { sum: '0.0', max: '-inf()', min: 'inf()' };

/** Folds v into acc: max/min propagate NaN like the reference backend. */
const FOLD: Record<ReduceOp, string> = {
  sum: 'acc + v',
  max: 'select(acc, v, v > acc || isNan(v))',
  min: 'select(acc, v, v < acc || isNan(v))',
};

/** One invocation per output (o, j): a loop over the r reduced elements (Kahan-compensated sums). */
function reduceColumnsSource(op: ReduceOp): string {
  const body =
    op === 'sum'
      ? `  var acc = 0.0; var c = 0.0;
  for (var t = 0u; t < r; t++) {
    let y = x[base + t * inner] - c; let s = acc + y; c = (s - acc) - y; acc = s;
  }`
      : `  var acc = ${IDENTITY[op]};
  for (var t = 0u; t < r; t++) { let v = x[base + t * inner]; acc = ${FOLD[op]}; }`;
  return `${header([
    { name: 'out', type: 'f32', write: true },
    { name: 'x', type: 'f32' },
  ])}
${FLOAT_HELPERS}
${entry(
  WORKGROUP,
  `  let count = P(0u); let r = P(1u); let inner = P(2u);
  if (gid >= count) { return; }
  let o = gid / inner; let j = gid % inner;
  let base = P(3u) + o * r * inner + j;
${body}
  out[P(4u) + gid] = acc;`,
)}`;
}

/** One workgroup per row (inner = 1): strided partial folds, then a tree in workgroup memory. */
function reduceRowsSource(op: ReduceOp): string {
  return `${header([
    { name: 'out', type: 'f32', write: true },
    { name: 'x', type: 'f32' },
  ])}
${FLOAT_HELPERS}
var<workgroup> part: array<f32, ${WORKGROUP}>;
${entry(
  WORKGROUP,
  `  let rows = P(0u); let r = P(1u);
  let row = group;
  var acc = ${IDENTITY[op]};
  if (row < rows) {
    let base = P(3u) + row * r;
    for (var t = lid; t < r; t += ${WORKGROUP}u) { let v = x[base + t]; acc = ${FOLD[op]}; }
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var stride = ${WORKGROUP / 2}u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { let v = part[lid + stride]; acc = part[lid]; part[lid] = ${FOLD[op]}; }
    workgroupBarrier();
  }
  if (lid == 0u && row < rows) { out[P(4u) + row] = part[0]; }`,
)}`;
}

export function createAxisKernels(ctx: GpuContext, transpose: Backend['transpose']): AxisMethods {
  const buf = (b: object) => b as GpuBuffer;

  /**
   * Runs `dispatchRows(rowStart, rowCount, xBinding, xSkip, outBinding, outSkip)` over row chunks
   * whose input (rowElements each) and output (outElements each) ranges fit one binding.
   */
  function byRowChunks(
    rows: number,
    rowElements: number,
    outElements: number,
    x: GpuBuffer,
    out: GpuBuffer,
    run: (start: number, count: number, xb: Binding, xSkip: number, ob: Binding, oSkip: number) => void,
  ): void {
    const limit = ctx.maxBindingElements - ctx.limits.minStorageBufferOffsetAlignment / 4;
    const perChunk = Math.max(1, Math.floor(limit / Math.max(1, rowElements, outElements)));
    if (rowElements > limit) {
      throw new RangeError(
        `webgpu backend: one row of ${rowElements} elements exceeds a storage binding ` +
          `(${ctx.limits.maxStorageBufferBindingSize} bytes)`,
      );
    }
    for (let start = 0; start < rows; start += perChunk) {
      const count = Math.min(perChunk, rows - start);
      const xw = ctx.window(x, start * rowElements, count * rowElements);
      const ow = ctx.window(out, start * outElements, count * outElements);
      run(start, count, xw.binding, xw.skip, ow.binding, ow.skip);
    }
  }

  function reduceRun(op: ReduceOp, x: GpuBuffer, outer: number, r: number, inner: number): GpuBuffer {
    const out = ctx.alloc(outer * inner, 'float32');
    if (outer * inner === 0) return out;
    if (r === 0) {
      const fill = ctx.pipeline(
        `reduce-empty:${op}`,
        () =>
          `${header([{ name: 'out', type: 'f32', write: true }])}${FLOAT_HELPERS}
${entry(WORKGROUP, `  if (gid < P(0u)) { out[gid] = ${IDENTITY[op]}; }`)}`,
      );
      ctx.dispatch(fill, [outer * inner], [out], Math.ceil((outer * inner) / WORKGROUP));
      return out;
    }
    const byRows = inner === 1 && r >= WORKGROUP;
    const pipeline = byRows
      ? ctx.pipeline(`reduce-rows:${op}`, () => reduceRowsSource(op))
      : ctx.pipeline(`reduce-columns:${op}`, () => reduceColumnsSource(op));
    byRowChunks(outer, r * inner, inner, x, out, (_start, count, xb, xSkip, ob, oSkip) => {
      const outputs = count * inner;
      ctx.dispatch(
        pipeline,
        [byRows ? count : outputs, r, inner, xSkip, oSkip],
        [ob, xb],
        byRows ? count : Math.ceil(outputs / WORKGROUP),
      );
    });
    return out;
  }

  return {
    reduce(op, x, shape, axes) {
      ctx.begin(`reduce ${op}`, () => `${formatShape(shape)} over [${axes.join(', ')}]`);
      // (outer, r, inner) when the reduced axes of size > 1 are adjacent; else move them last.
      const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
      const bigReduced = axes.filter((a) => shape[a]! !== 1);
      const adjacent = bigReduced.every(
        (a, i) => i === 0 || shape.slice(bigReduced[i - 1]! + 1, a).every((d) => d === 1),
      );
      if (!adjacent) {
        const perm = [...kept, ...axes];
        const moved = transpose(x, shape, perm, 'float32') as GpuBuffer;
        const keptSize = sizeOf(kept.map((i) => shape[i]!));
        const r = sizeOf(axes.map((i) => shape[i]!));
        const out = reduceRun(op, moved, keptSize, r, 1);
        ctx.release(moved);
        return out;
      }
      const first = bigReduced[0] ?? shape.length;
      const last = bigReduced[bigReduced.length - 1] ?? shape.length - 1;
      const outer = sizeOf(shape.slice(0, first));
      const r = sizeOf(bigReduced.map((a) => shape[a]!));
      const inner = sizeOf(shape.slice(last + 1));
      if (bigReduced.length === 0) return reduceRun(op, buf(x), sizeOf(shape), 1, 1);
      return reduceRun(op, buf(x), outer, r, inner);
    },

    argMax(x, shape, axis) {
      ctx.begin('argMax', () => `${formatShape(shape)} along axis ${axis}`);
      const [outer, n, inner] = around(shape, axis);
      const out = ctx.alloc(outer * inner, 'int32');
      const pipeline = ctx.pipeline(
        'argMax',
        () =>
          `${header([
            { name: 'out', type: 'i32', write: true },
            { name: 'x', type: 'f32' },
          ])}
${entry(
  WORKGROUP,
  `  let count = P(0u); let n = P(1u); let inner = P(2u);
  if (gid >= count) { return; }
  let base = (gid / inner) * n * inner + gid % inner;
  var best = 0u; var bestValue = x[base];
  for (var t = 1u; t < n; t++) {
    let v = x[base + t * inner];
    if (v > bestValue) { bestValue = v; best = t; }
  }
  out[gid] = i32(best);`,
)}`,
      );
      ctx.dispatch(
        pipeline,
        [outer * inner, n, inner],
        [out, buf(x)],
        Math.ceil((outer * inner) / WORKGROUP),
      );
      return out;
    },

    linearScan(a, b, shape, axis, reverse) {
      ctx.begin('linearScan', () => `${formatShape(shape)} along axis ${axis}${reverse ? ', reversed' : ''}`);
      const [outer, n, inner] = around(shape, axis);
      const out = ctx.alloc(outer * n * inner, 'float32');
      const pipeline = ctx.pipeline(
        'linearScan',
        () =>
          `${header([
            { name: 'out', type: 'f32', write: true },
            { name: 'a', type: 'f32' },
            { name: 'b', type: 'f32' },
          ])}
${entry(
  WORKGROUP,
  `  let count = P(0u); let n = P(1u); let inner = P(2u); let reverse = P(3u) != 0u;
  if (gid >= count) { return; }
  let base = (gid / inner) * n * inner + gid % inner;
  var h = 0.0;
  for (var s = 0u; s < n; s++) {
    let t = select(s, n - 1u - s, reverse);
    let i = base + t * inner;
    h = a[i] * h + b[i];
    out[i] = h;
  }`,
)}`,
      );
      ctx.dispatch(
        pipeline,
        [outer * inner, n, inner, reverse ? 1 : 0],
        [out, buf(a), buf(b)],
        Math.ceil((outer * inner) / WORKGROUP),
      );
      return out;
    },

    gather(x, shape, indices, indexSize, axis, dtype) {
      ctx.begin('gather', () => `${formatShape(shape)} along axis ${axis} at ${indexSize} indices`);
      const [outer, n, inner] = around(shape, axis);
      const size = outer * indexSize * inner;
      const out = ctx.alloc(size, dtype);
      const pipeline = ctx.pipeline(
        'gather',
        () =>
          `${header([
            { name: 'out', type: 'u32', write: true },
            { name: 'x', type: 'u32' },
            { name: 'idx', type: 'i32' },
          ])}
${entry(
  WORKGROUP,
  `  let size = P(0u); let n = P(1u); let inner = P(2u); let count = P(3u);
  if (gid >= size) { return; }
  let j = gid % inner; let rest = gid / inner; let i = rest % count; let o = rest / count;
  out[gid] = x[(o * n + u32(idx[i])) * inner + j];`,
)}`,
      );
      ctx.dispatch(
        pipeline,
        [size, n, inner, indexSize],
        [out, buf(x), buf(indices)],
        Math.ceil(size / WORKGROUP),
      );
      return out;
    },

    scatterAdd(g, indices, indexSize, outShape, axis, dtype) {
      ctx.begin('scatterAdd', () => `${indexSize} rows into ${formatShape(outShape)} along axis ${axis}`);
      const [outer, n, inner] = around(outShape, axis);
      const out = ctx.alloc(outer * n * inner, dtype);
      const pipeline = ctx.pipeline(
        'scatterAdd',
        () =>
          `${header([
            { name: 'out', type: 'f32', write: true },
            { name: 'g', type: 'f32' },
            { name: 'idx', type: 'i32' },
          ])}
${entry(
  WORKGROUP,
  `  let columns = P(0u); let n = P(1u); let inner = P(2u); let count = P(3u);
  if (gid >= columns) { return; }
  let o = gid / inner; let j = gid % inner;
  for (var t = 0u; t < n; t++) { out[(o * n + t) * inner + j] = 0.0; }
  for (var i = 0u; i < count; i++) {
    let to = (o * n + u32(idx[i])) * inner + j;
    out[to] = out[to] + g[(o * count + i) * inner + j];
  }`,
)}`,
      );
      ctx.dispatch(
        pipeline,
        [outer * inner, n, inner, indexSize],
        [out, buf(g), buf(indices)],
        Math.ceil((outer * inner) / WORKGROUP),
      );
      return out;
    },
  };
}
