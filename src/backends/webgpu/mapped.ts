/**
 * The one kernel shape behind every elementwise and data-movement op of the WebGPU backend: for
 * each index of a box `shape`, operand k is read (or, for operand 0, written) at
 * offset_k + Σ index_d · stride_k[d]. Broadcasting is stride 0, a transpose is permuted strides,
 * a slice is an offset, pad and concat write a box of a larger destination.
 *
 * Planning on the CPU: axes of size 1 are dropped and axes contiguous for every operand merged
 * (most calls become rank 1); more than MAPPED_RANK remaining axes are looped over here; and the
 * box is cut into pieces whose operand ranges each fit one storage binding (the adapter's
 * maxStorageBufferBindingSize) and whose workgroups fit the grid. An operand larger than one
 * binding must be read in increasing order (row-major with any broadcast or slice; not a
 * transpose); otherwise the call is refused with an error naming the op and the sizes.
 */
import { mergeAxes, type Shape, sizeOf } from '../../engine/shape.js';
import type { Binding, GpuBuffer, GpuContext } from './context.js';
import { entry, header, type StorageDecl, WORKGROUP } from './wgsl.js';

/** Axes one dispatch handles after collapsing. */
export const MAPPED_RANK = 6;

/** One operand: its buffer, element strides over the box, and the element offset of index 0. */
export interface Operand {
  readonly buffer: GpuBuffer;
  readonly strides: readonly number[];
  readonly offset: number;
}

/** Word index of the first extra parameter (after n, base, dims and every operand's strides/offset). */
export function extraParam(operands: number): number {
  return 2 + MAPPED_RANK + operands * (MAPPED_RANK + 1);
}

/**
 * WGSL of a mapped kernel over `decls` (operand 0 is written) whose body `expr` sees o0, o1, …
 * (each operand's element offset) and may use helpers declared in `prelude`.
 */
export function mappedSource(decls: readonly StorageDecl[], expr: string, prelude = ''): string {
  const R = MAPPED_RANK;
  const offsets = decls.map((_, k) => `  var o${k} = P(${2 + R + k * (R + 1) + R}u);`).join('\n');
  const steps = decls.map((_, k) => `    o${k} += i * P(${2 + R + k * (R + 1)}u + ax);`).join('\n');
  return `${header(decls)}
${prelude}
${entry(
  WORKGROUP,
  `  if (gid >= P(0u)) { return; }
  var rem = P(1u) + gid;
${offsets}
  for (var d = 0u; d < ${R}u; d++) {
    let ax = ${R - 1}u - d;
    let dim = P(${2}u + ax);
    let i = rem % dim;
    rem = rem / dim;
${steps}
  }
  ${expr}`,
)}`;
}

/** Offset of flat box index `i` (row-major over dims) under `strides`. */
function offsetAt(i: number, dims: readonly number[], strides: readonly number[]): number {
  let off = 0;
  for (let ax = dims.length - 1; ax >= 0; ax--) {
    const d = dims[ax]!;
    off += (i % d) * strides[ax]!;
    i = Math.floor(i / d);
  }
  return off;
}

/** Whether offsets never decrease along the row-major box order (then a range maps to a range). */
function increasing(dims: readonly number[], strides: readonly number[]): boolean {
  let span = 0; // largest offset reachable by the axes after ax
  for (let ax = dims.length - 1; ax >= 0; ax--) {
    const s = strides[ax]!;
    if (s < span && s !== 0) return false;
    if (s === 0 && span > 0 && dims[ax]! > 1) return false;
    span += s * (dims[ax]! - 1);
  }
  return true;
}

/**
 * Runs a mapped kernel over `shape`. `extra` words go after the operand block (extraParam).
 */
export function runMapped(
  ctx: GpuContext,
  pipeline: GPUComputePipeline,
  shape: Shape,
  operands: readonly Operand[],
  extra: readonly number[] = [],
): void {
  if (sizeOf(shape) === 0) return;
  const [dims, strides] = mergeAxes(
    shape,
    operands.map((o) => o.strides),
  );
  if (dims.length === 0) {
    dims.push(1);
    for (const s of strides) s.push(0);
  }
  const R = MAPPED_RANK;
  // Axes beyond MAPPED_RANK: loop over the leading ones here.
  const lead = Math.max(0, dims.length - R);
  const leadDims = dims.slice(0, lead);
  const innerDims = dims.slice(lead);
  const innerStrides = strides.map((s) => s.slice(lead));
  const leadCount = sizeOf(leadDims);
  for (let l = 0; l < leadCount; l++) {
    const offsets = operands.map((o, k) => o.offset + offsetAt(l, leadDims, strides[k]!.slice(0, lead)));
    runPieces(ctx, pipeline, innerDims, innerStrides, operands, offsets, extra);
  }
}

function runPieces(
  ctx: GpuContext,
  pipeline: GPUComputePipeline,
  dims: readonly number[],
  strides: readonly (readonly number[])[],
  operands: readonly Operand[],
  offsets: readonly number[],
  extra: readonly number[],
): void {
  const R = MAPPED_RANK;
  const total = sizeOf(dims);
  const limit = ctx.maxBindingElements;
  const alignElements = ctx.limits.minStorageBufferOffsetAlignment / 4;
  const maxPerDispatch = ctx.limits.maxComputeWorkgroupsPerDimension ** 2 * WORKGROUP;
  const whole = operands.map((o) => o.buffer.bytes <= ctx.limits.maxStorageBufferBindingSize);
  operands.forEach((o, k) => {
    if (!whole[k] && !increasing(dims, strides[k]!)) {
      throw new RangeError(
        `webgpu backend: an operand of ${o.buffer.length} elements is read out of order (strides ` +
          `[${strides[k]!.join(', ')}] over [${dims.join(', ')}]) and exceeds one storage binding ` +
          `(${ctx.limits.maxStorageBufferBindingSize} bytes); make it contiguous first`,
      );
    }
  });
  const padded = [...new Array<number>(R - dims.length).fill(1), ...dims];
  let base = 0;
  while (base < total) {
    let count = Math.min(total - base, maxPerDispatch, limit - alignElements);
    // Shrink until every operand's range fits a binding.
    let windows: { binding: Binding; skip: number }[];
    for (;;) {
      windows = operands.map((o, k) => {
        if (whole[k]) {
          const w = ctx.bind(o.buffer);
          return { binding: w.binding, skip: w.skip + offsets[k]! };
        }
        const first = offsets[k]! + offsetAt(base, dims, strides[k]!);
        const last = offsets[k]! + offsetAt(base + count - 1, dims, strides[k]!);
        const w = ctx.bind(o.buffer, first, last - first + 1);
        return { binding: w.binding, skip: w.skip - offsetAt(base, dims, strides[k]!) };
      });
      const fits = windows.every((w) => w.binding.size <= ctx.limits.maxStorageBufferBindingSize);
      if (fits || count === 1) break;
      count = Math.ceil(count / 2);
    }
    const params: number[] = [count, base, ...padded];
    for (let k = 0; k < operands.length; k++) {
      const s = strides[k]!;
      params.push(...new Array<number>(R - s.length).fill(0), ...s, windows[k]!.skip);
    }
    params.push(...extra);
    ctx.dispatch(
      pipeline,
      params,
      windows.map((w) => w.binding),
      Math.ceil(count / WORKGROUP),
    );
    base += count;
  }
}
