/**
 * The WebGPU backend's kernels along one axis of a (outer, n, inner) view: reductions (sum, max,
 * min over a run of adjacent axes; other axis sets are transposed to the end first), argMax and
 * the first-order linear scan. All are deterministic: no atomics, each output is computed by one
 * invocation. argMax and linearScan split arrays beyond one storage binding into tiles of
 * columns and axis segments joined by a carry (axisTiles).
 */
import type { Backend, ReduceOp } from '../../engine/backend.js';
import { formatShape, type Shape, sizeOf } from '../../engine/shape.js';
import type { Binding, GpuBuffer, GpuContext } from './context.js';
import { entry, FLOAT_HELPERS, header, WORKGROUP } from './wgsl.js';

export type AxisMethods = Pick<Backend, 'reduce' | 'argMax' | 'linearScan'>;

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

/**
 * A tile of an (outer, n, inner) array for the kernels that walk the axis n once per column
 * (argMax, linearScan): outers o0 … o0 + oc − 1, columns j0 … j0 + cj − 1, axis rows t0 … t0 + len − 1.
 */
interface AxisTile {
  o0: number;
  oc: number;
  j0: number;
  cj: number;
  t0: number;
  len: number;
}

/** Elements a tile's window covers, from its first element (o0, t0, j0) to its last. */
function tileSpan(t: AxisTile, n: number, inner: number): number {
  return (t.oc - 1) * n * inner + (t.len - 1) * inner + t.cj;
}

/**
 * Tiles whose windows fit one storage binding, in the order the kernels must run them: groups of
 * whole (n × inner) blocks when one fits; otherwise, per outer index, blocks of columns and
 * segments of the axis (in scan order: reversed when `reverse`), joined by a carry per column.
 */
function axisTiles(ctx: GpuContext, outer: number, n: number, inner: number, reverse: boolean): AxisTile[] {
  const room = ctx.windowElements;
  const threads = ctx.maxInvocations(WORKGROUP);
  if (n * inner <= room && inner <= threads) {
    const per = Math.max(1, Math.min(Math.floor(room / (n * inner)), Math.floor(threads / inner)));
    const tiles: AxisTile[] = [];
    for (let o0 = 0; o0 < outer; o0 += per) {
      tiles.push({ o0, oc: Math.min(per, outer - o0), j0: 0, cj: inner, t0: 0, len: n });
    }
    return tiles;
  }
  const cj = Math.min(inner, room, threads);
  const len = Math.max(1, Math.min(n, Math.floor((room - cj) / inner) + 1));
  const tiles: AxisTile[] = [];
  for (let o0 = 0; o0 < outer; o0++) {
    for (let j0 = 0; j0 < inner; j0 += cj) {
      const width = Math.min(cj, inner - j0);
      for (let k = 0; k < n; k += len) {
        const size = Math.min(len, n - k);
        tiles.push({ o0, oc: 1, j0, cj: width, t0: reverse ? n - k - size : k, len: size });
      }
    }
  }
  return tiles;
}

/**
 * argMax of the tile's columns along the axis (first index on ties). With `carry`, a segment
 * after the first continues from the best value so far (carry) and its index (out).
 */
function argMaxSource(carry: boolean): string {
  return `${header([
    { name: 'out', type: 'i32', write: true },
    { name: 'x', type: 'f32' },
    ...(carry ? [{ name: 'carry', type: 'f32' as const, write: true }] : []),
  ])}
${entry(
  WORKGROUP,
  `  let threads = P(0u); let cj = P(1u); let len = P(2u); let inner = P(3u);
  if (gid >= threads) { return; }
  let o = gid / cj; let j = gid % cj;
  let base = P(7u) + o * P(4u) + j;
  let at = P(8u) + o * inner + j;
  let t0 = P(5u);
  var best = x[base];
  var bestAt = t0;
  var t = 1u;
  ${carry ? 'if (P(6u) == 0u) { best = carry[P(9u) + gid]; bestAt = u32(out[at]); t = 0u; }' : ''}
  for (; t < len; t++) {
    let v = x[base + t * inner];
    if (v > best) { best = v; bestAt = t0 + t; }
  }
  out[at] = i32(bestAt);
  ${carry ? 'carry[P(9u) + gid] = best;' : ''}`,
)}`;
}

/**
 * h_t = a_t h_{t∓1} + b_t over the tile's columns (from the end when reversed). With `carry`, a
 * segment after the first starts from the last h of the previous one.
 */
function linearScanSource(carry: boolean): string {
  return `${header([
    { name: 'out', type: 'f32', write: true },
    { name: 'a', type: 'f32' },
    { name: 'b', type: 'f32' },
    ...(carry ? [{ name: 'carry', type: 'f32' as const, write: true }] : []),
  ])}
${entry(
  WORKGROUP,
  `  let threads = P(0u); let cj = P(1u); let len = P(2u); let inner = P(3u); let reverse = P(5u) != 0u;
  if (gid >= threads) { return; }
  let base = (gid / cj) * P(4u) + gid % cj;
  var h = 0.0;
  ${carry ? 'if (P(6u) == 0u) { h = carry[P(10u) + gid]; }' : ''}
  for (var s = 0u; s < len; s++) {
    let i = base + select(s, len - 1u - s, reverse) * inner;
    h = a[P(7u) + i] * h + b[P(8u) + i];
    out[P(9u) + i] = h;
  }
  ${carry ? 'carry[P(10u) + gid] = h;' : ''}`,
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
      const xw = ctx.bind(x, start * rowElements, count * rowElements);
      const ow = ctx.bind(out, start * outElements, count * outElements);
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
${entry(WORKGROUP, `  if (gid < P(0u)) { out[P(1u) + gid] = ${IDENTITY[op]}; }`)}`,
      );
      const o = ctx.bind(out);
      ctx.dispatch(fill, [outer * inner, o.skip], [o.binding], Math.ceil((outer * inner) / WORKGROUP));
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
      if (outer * inner === 0) return out;
      const tiles = axisTiles(ctx, outer, n, inner, false);
      const carry = tiles.some((t) => t.len < n) ? ctx.alloc(tiles[0]!.cj, 'float32') : null;
      const pipeline = ctx.pipeline(`argMax:${carry !== null}`, () => argMaxSource(carry !== null));
      for (const t of tiles) {
        const xw = ctx.bind(buf(x), (t.o0 * n + t.t0) * inner + t.j0, tileSpan(t, n, inner));
        const ow = ctx.bind(out, t.o0 * inner + t.j0, (t.oc - 1) * inner + t.cj);
        const threads = t.oc * t.cj;
        const cw = carry && ctx.bind(carry);
        ctx.dispatch(
          pipeline,
          [
            threads,
            t.cj,
            t.len,
            inner,
            n * inner,
            t.t0,
            t.t0 === 0 ? 1 : 0,
            xw.skip,
            ow.skip,
            cw ? cw.skip : 0,
          ],
          [ow.binding, xw.binding, ...(cw ? [cw.binding] : [])],
          Math.ceil(threads / WORKGROUP),
        );
      }
      if (carry) ctx.release(carry);
      return out;
    },

    linearScan(a, b, shape, axis, reverse) {
      ctx.begin('linearScan', () => `${formatShape(shape)} along axis ${axis}${reverse ? ', reversed' : ''}`);
      const [outer, n, inner] = around(shape, axis);
      const out = ctx.alloc(outer * n * inner, 'float32');
      if (outer * n * inner === 0) return out;
      const tiles = axisTiles(ctx, outer, n, inner, reverse);
      const carry = tiles.some((t) => t.len < n) ? ctx.alloc(tiles[0]!.cj, 'float32') : null;
      const pipeline = ctx.pipeline(`linearScan:${carry !== null}`, () => linearScanSource(carry !== null));
      for (const t of tiles) {
        const start = (t.o0 * n + t.t0) * inner + t.j0;
        const span = tileSpan(t, n, inner);
        const [aw, bw, ow] = [a, b, out].map((z) => ctx.bind(buf(z), start, span));
        const threads = t.oc * t.cj;
        const first = reverse ? t.t0 + t.len === n : t.t0 === 0;
        const cw = carry && ctx.bind(carry);
        ctx.dispatch(
          pipeline,
          [
            ...[threads, t.cj, t.len, inner, n * inner, reverse ? 1 : 0, first ? 1 : 0],
            ...[aw!.skip, bw!.skip, ow!.skip, cw ? cw.skip : 0],
          ],
          [ow!.binding, aw!.binding, bw!.binding, ...(cw ? [cw.binding] : [])],
          Math.ceil(threads / WORKGROUP),
        );
      }
      if (carry) ctx.release(carry);
      return out;
    },
  };
}
