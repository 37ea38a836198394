/**
 * gather and its adjoint scatterAdd for the WebGPU backend, on an (outer, n, inner) view of the
 * indexed array (axis n). Deterministic: scatterAdd has one invocation own each output column and
 * add the rows of g in increasing order, no atomics.
 *
 * Arrays beyond one storage binding are split into windows. The indices stay on the GPU (the host
 * never reads them), so each window of the output visits every window of the source and writes
 * only the elements whose index falls inside it: gather writes every output element exactly once
 * over the passes; scatterAdd zeroes an output window on its first pass over g and then adds the
 * rows of each g window in order.
 */
import type { Backend } from '../../engine/backend.js';
import { formatShape } from '../../engine/shape.js';
import { around } from './axis.js';
import type { GpuBuffer, GpuContext } from './context.js';
import { entry, header, WORKGROUP } from './wgsl.js';

export type IndexingMethods = Pick<Backend, 'gather' | 'scatterAdd'>;

/**
 * out[e] = x[(o·n + idx[i])·inner + j] for the out elements e = e0 + gid of this window (e =
 * (o·count + i)·inner + j), where that source element lies in the bound window [x0, x0 + xc).
 */
const GATHER_SOURCE = `${header([
  { name: 'out', type: 'u32', write: true },
  { name: 'x', type: 'u32' },
  { name: 'idx', type: 'i32' },
])}
${entry(
  WORKGROUP,
  `  let size = P(0u); let n = P(2u); let inner = P(3u); let count = P(4u);
  if (gid >= size) { return; }
  let e = P(1u) + gid;
  let j = e % inner; let rest = e / inner; let i = rest % count; let o = rest / count;
  let src = (o * n + u32(idx[P(9u) + i])) * inner + j;
  let x0 = P(5u);
  if (src >= x0 && src - x0 < P(6u)) { out[P(7u) + gid] = x[P(8u) + src - x0]; }`,
)}`;

/**
 * One invocation per column j < cj of oc outers: out rows r0 … r1 − 1 (zeroed first when asked)
 * receive the g rows i0 … i1 − 1 whose index falls among them, in increasing i. Bases are the
 * windows' first elements (outer o0, row r0 / i0, column j0).
 */
const SCATTER_ADD_SOURCE = `${header([
  { name: 'out', type: 'f32', write: true },
  { name: 'g', type: 'f32' },
  { name: 'idx', type: 'i32' },
])}
${entry(
  WORKGROUP,
  `  let threads = P(0u); let cj = P(1u); let inner = P(2u); let n = P(3u); let count = P(4u);
  let r0 = P(5u); let r1 = P(6u); let i0 = P(7u); let i1 = P(8u);
  if (gid >= threads) { return; }
  let o = gid / cj; let j = gid % cj;
  let ob = P(9u) + o * n * inner + j;
  let gb = P(10u) + o * count * inner + j;
  if (P(11u) != 0u) { for (var r = r0; r < r1; r++) { out[ob + (r - r0) * inner] = 0.0; } }
  for (var i = i0; i < i1; i++) {
    let r = u32(idx[P(12u) + i]);
    if (r >= r0 && r < r1) { out[ob + (r - r0) * inner] = out[ob + (r - r0) * inner] + g[gb + (i - i0) * inner]; }
  }`,
)}`;

/** Rows [start, start + size) of `total` in steps that fit `perStep` rows. */
function* steps(total: number, perStep: number): Generator<[number, number]> {
  for (let start = 0; start < total; start += perStep) yield [start, Math.min(perStep, total - start)];
}

export function createIndexing(ctx: GpuContext): IndexingMethods {
  const buf = (b: object) => b as GpuBuffer;

  function checkIndices(indices: GpuBuffer, op: string): void {
    if (indices.bytes > ctx.limits.maxStorageBufferBindingSize) {
      throw new RangeError(
        `webgpu backend: ${op} with ${indices.length} indices: the index array exceeds one storage binding ` +
          `(${ctx.limits.maxStorageBufferBindingSize} bytes); gather in several calls`,
      );
    }
  }

  return {
    gather(x, shape, indices, indexSize, axis, dtype) {
      ctx.begin('gather', () => `${formatShape(shape)} along axis ${axis} at ${indexSize} indices`);
      const [outer, n, inner] = around(shape, axis);
      const size = outer * indexSize * inner;
      const out = ctx.alloc(size, dtype);
      if (size === 0) return out;
      checkIndices(buf(indices), 'gather');
      const pipeline = ctx.pipeline('gather', () => GATHER_SOURCE);
      const iw = ctx.bind(buf(indices));
      const room = Math.min(ctx.windowElements, ctx.maxInvocations(WORKGROUP));
      const xSize = outer * n * inner;
      // Every out window visits every source window (one of each when both fit a binding).
      for (const [e0, count] of steps(size, room)) {
        const ow = ctx.bind(out, e0, count);
        for (const [x0, xc] of steps(xSize, ctx.windowElements)) {
          const xw = ctx.bind(buf(x), x0, xc);
          ctx.dispatch(
            pipeline,
            [count, e0, n, inner, indexSize, x0, xc, ow.skip, xw.skip, iw.skip],
            [ow.binding, xw.binding, iw.binding],
            Math.ceil(count / WORKGROUP),
          );
        }
      }
      return out;
    },

    scatterAdd(g, indices, indexSize, outShape, axis, dtype) {
      ctx.begin('scatterAdd', () => `${indexSize} rows into ${formatShape(outShape)} along axis ${axis}`);
      const [outer, n, inner] = around(outShape, axis);
      const out = ctx.alloc(outer * n * inner, dtype);
      if (outer * n * inner === 0) return out;
      checkIndices(buf(indices), 'scatterAdd');
      const pipeline = ctx.pipeline('scatterAdd', () => SCATTER_ADD_SOURCE);
      const iw = ctx.bind(buf(indices));
      const room = ctx.windowElements;
      const threads = ctx.maxInvocations(WORKGROUP);
      const run = (
        o0: number,
        oc: number,
        j0: number,
        cj: number,
        [r0, rows]: [number, number],
        [i0, gRows]: [number, number],
      ) => {
        const ow = ctx.bind(out, (o0 * n + r0) * inner + j0, (oc - 1) * n * inner + (rows - 1) * inner + cj);
        const gw = ctx.bind(
          buf(g),
          (o0 * indexSize + i0) * inner + j0,
          (oc - 1) * indexSize * inner + Math.max(0, gRows - 1) * inner + cj,
        );
        ctx.dispatch(
          pipeline,
          [
            ...[oc * cj, cj, inner, n, indexSize, r0, r0 + rows, i0, i0 + gRows],
            ...[ow.skip, gw.skip, i0 === 0 ? 1 : 0, iw.skip],
          ],
          [ow.binding, gw.binding, iw.binding],
          Math.ceil((oc * cj) / WORKGROUP),
        );
      };
      const block = Math.max(n, indexSize) * inner;
      if (block <= room && inner <= threads) {
        // Whole (rows × inner) blocks of several outers per dispatch.
        const per = Math.max(1, Math.min(Math.floor(room / block), Math.floor(threads / inner)));
        for (const [o0, oc] of steps(outer, per)) run(o0, oc, 0, inner, [0, n], [0, indexSize]);
        return out;
      }
      // Per outer index: column blocks, windows of output rows, and for each the g rows in order.
      const cj = Math.min(inner, room, threads);
      const rowsPer = Math.max(1, Math.floor((room - cj) / inner) + 1);
      for (let o = 0; o < outer; o++) {
        for (const [j0, width] of steps(inner, cj)) {
          for (const rows of steps(n, rowsPer)) {
            if (indexSize === 0) run(o, 1, j0, width, rows, [0, 0]);
            for (const gRows of steps(indexSize, rowsPer)) run(o, 1, j0, width, rows, gRows);
          }
        }
      }
      return out;
    },
  };
}
