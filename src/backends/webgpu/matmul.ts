/**
 * Batched matmul for the WebGPU backend: one workgroup of 16 × 16 invocations computes a 64 × 64
 * tile of C, each invocation a 4 × 4 block in registers, stepping through k in slices of 16 that
 * the workgroup stages in workgroup memory (2 × 4 KiB). Transposes are strides (A[i, p] =
 * a[i·aRowStride + p·aColStride]); batch broadcasting is per-batch offsets computed in the kernel
 * from the collapsed batch axes. Batches are split into several dispatches when the operands
 * exceed one storage binding.
 */
import type { Backend } from '../../engine/backend.js';
import { broadcastStrides, formatShape, matmulLayout, type Shape, sizeOf } from '../../engine/shape.js';
import type { Binding, GpuBuffer, GpuContext } from './context.js';
import { entry, header } from './wgsl.js';

const TILE = 64;
const KT = 16;
/** Batch axes the kernel walks itself; more are looped over here. */
const BATCH_RANK = 4;

const SOURCE = `${header([
  { name: 'c', type: 'f32', write: true },
  { name: 'a', type: 'f32' },
  { name: 'b', type: 'f32' },
])}
var<workgroup> As: array<f32, ${KT * TILE}>;
var<workgroup> Bs: array<f32, ${KT * TILE}>;
${entry(
  256,
  `  let m = P(0u); let n = P(1u); let k = P(2u);
  let aRS = P(3u); let aCS = P(4u); let bRS = P(5u); let bCS = P(6u);
  let tilesM = P(7u); let tilesN = P(8u); let batches = P(9u);
  let tiles = tilesM * tilesN;
  if (group >= tiles * batches) { return; }
  let local = group / tiles;
  var rest = P(10u) + local;
  var aOff = P(11u); var bOff = P(12u);
  for (var d = 0u; d < ${BATCH_RANK}u; d++) {
    let ax = ${BATCH_RANK - 1}u - d;
    let dim = P(14u + ax);
    let i = rest % dim; rest = rest / dim;
    aOff += i * P(18u + ax); bOff += i * P(22u + ax);
  }
  let cOff = P(13u) + local * m * n;
  let t = group % tiles;
  let row0 = (t / tilesN) * ${TILE}u; let col0 = (t % tilesN) * ${TILE}u;
  let tx = lid % 16u; let ty = lid / 16u;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < k; k0 += ${KT}u) {
    for (var l = 0u; l < 4u; l++) {
      let e = lid + l * 256u;
      let ii = e / ${KT}u; let pa = e % ${KT}u;
      let gi = row0 + ii; let gpa = k0 + pa;
      var va = 0.0;
      if (gi < m && gpa < k) { va = a[aOff + gi * aRS + gpa * aCS]; }
      As[pa * ${TILE}u + ii] = va;
      let pb = e / ${TILE}u; let jj = e % ${TILE}u;
      let gpb = k0 + pb; let gj = col0 + jj;
      var vb = 0.0;
      if (gpb < k && gj < n) { vb = b[bOff + gpb * bRS + gj * bCS]; }
      Bs[pb * ${TILE}u + jj] = vb;
    }
    workgroupBarrier();
    for (var p = 0u; p < ${KT}u; p++) {
      let ar = p * ${TILE}u + ty * 4u;
      let bc = p * ${TILE}u + tx * 4u;
      let bv = vec4<f32>(Bs[bc], Bs[bc + 1u], Bs[bc + 2u], Bs[bc + 3u]);
      acc[0] += As[ar] * bv;
      acc[1] += As[ar + 1u] * bv;
      acc[2] += As[ar + 2u] * bv;
      acc[3] += As[ar + 3u] * bv;
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 4u; r++) {
    let gi = row0 + ty * 4u + r;
    if (gi >= m) { break; }
    for (var q = 0u; q < 4u; q++) {
      let gj = col0 + tx * 4u + q;
      if (gj < n) { c[cOff + gi * n + gj] = acc[r][q]; }
    }
  }`,
)}`;

export function createMatmul(ctx: GpuContext): Pick<Backend, 'matmul'> {
  return {
    matmul(a, aShape, b, bShape, transposeA, transposeB, outShape, dtype) {
      ctx.begin(
        'matmul',
        () =>
          `${formatShape(aShape)}${transposeA ? 'ᵀ' : ''} × ${formatShape(bShape)}${transposeB ? 'ᵀ' : ''}`,
      );
      const layout = matmulLayout(aShape, bShape, transposeA, transposeB, outShape);
      const { m, n, k } = layout;
      const out = ctx.alloc(sizeOf(outShape), dtype);
      if (m * n === 0) return out;
      const A = a as GpuBuffer;
      const B = b as GpuBuffer;
      // Batch axes: element strides of each operand's matrices, collapsed where contiguous.
      const batchShape = outShape.slice(0, -2);
      const aMat = aShape[aShape.length - 2]! * aShape[aShape.length - 1]!;
      const bMat = bShape[bShape.length - 2]! * bShape[bShape.length - 1]!;
      const aStr = broadcastStrides(aShape.slice(0, -2), batchShape).map((s) => s * aMat);
      const bStr = broadcastStrides(bShape.slice(0, -2), batchShape).map((s) => s * bMat);
      const [dims, strides] = collapseBatch(batchShape, aStr, bStr);
      const lead = Math.max(0, dims.length - BATCH_RANK);
      const leadDims = dims.slice(0, lead);
      const inner = dims.slice(lead);
      const innerBatches = sizeOf(inner);
      const padded = (xs: readonly number[], fill: number) => [
        ...new Array(BATCH_RANK - xs.length).fill(fill),
        ...xs,
      ];
      const tilesM = Math.ceil(m / TILE);
      const tilesN = Math.ceil(n / TILE);
      const pipeline = ctx.pipeline('matmul', () => SOURCE);
      const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension ** 2;
      // Batches per dispatch: bounded by the grid and by one binding per operand.
      const limit = ctx.maxBindingElements - ctx.limits.minStorageBufferOffsetAlignment / 4;
      const fitsWhole = (x: GpuBuffer) => x.bytes <= ctx.limits.maxStorageBufferBindingSize;
      const perBatch = Math.max(fitsWhole(A) ? 0 : aMat, fitsWhole(B) ? 0 : bMat, fitsWhole(out) ? 0 : m * n);
      if (perBatch > limit) {
        throw new RangeError(
          `webgpu backend: matmul ${formatShape(aShape)} × ${formatShape(bShape)}: one matrix exceeds a ` +
            `storage binding (${ctx.limits.maxStorageBufferBindingSize} bytes); split it into smaller products`,
        );
      }
      // With a broadcast operand the spread of offsets per batch is not one matrix: shrink until it fits.
      let chunk = Math.max(
        1,
        Math.min(
          innerBatches,
          Math.floor(maxGroups / (tilesM * tilesN)),
          perBatch ? Math.floor(limit / perBatch) : innerBatches,
        ),
      );
      const leadCount = sizeOf(leadDims);
      for (let l = 0; l < leadCount; l++) {
        const leadA = offsetOf(l, leadDims, strides[0]!.slice(0, lead));
        const leadB = offsetOf(l, leadDims, strides[1]!.slice(0, lead));
        for (let start = 0; start < innerBatches; ) {
          const count = Math.min(chunk, innerBatches - start);
          const bind = (
            x: GpuBuffer,
            leadOff: number,
            str: readonly number[],
            mat: number,
          ): [Binding, number] => {
            if (fitsWhole(x)) {
              const w = ctx.bind(x);
              return [w.binding, w.skip + leadOff];
            }
            let lo = Infinity;
            let hi = -Infinity;
            for (let i = start; i < start + count; i++) {
              const off = leadOff + offsetOf(i, inner, str);
              lo = Math.min(lo, off);
              hi = Math.max(hi, off + mat);
            }
            const w = ctx.bind(x, lo, hi - lo);
            return [w.binding, w.skip - lo + leadOff];
          };
          const [aBind, aSkip] = bind(A, leadA, strides[0]!.slice(lead), aMat);
          const [bBind, bSkip] = bind(B, leadB, strides[1]!.slice(lead), bMat);
          const cStart = (l * innerBatches + start) * m * n;
          const c = fitsWhole(out) ? ctx.bind(out, cStart) : ctx.bind(out, cStart, count * m * n);
          const [cBind, cSkip] = [c.binding, c.skip];
          const sizeOk = [aBind, bBind, cBind].every((x) => x.size <= ctx.limits.maxStorageBufferBindingSize);
          if (!sizeOk && count > 1) {
            chunk = Math.ceil(count / 2);
            continue;
          }
          ctx.dispatch(
            pipeline,
            [
              m,
              n,
              k,
              layout.aRowStride,
              layout.aColStride,
              layout.bRowStride,
              layout.bColStride,
              tilesM,
              tilesN,
              count,
              start,
              aSkip,
              bSkip,
              cSkip,
              ...padded(inner, 1),
              ...padded(strides[0]!.slice(lead), 0),
              ...padded(strides[1]!.slice(lead), 0),
            ],
            [cBind, aBind, bBind],
            tilesM * tilesN * count,
          );
          start += count;
        }
      }
      return out;
    },
  };
}

/** Drops size-1 batch axes and merges axes contiguous for both operands. */
function collapseBatch(
  shape: Shape,
  aStr: readonly number[],
  bStr: readonly number[],
): [number[], number[][]] {
  const dims: number[] = [];
  const strides: number[][] = [[], []];
  shape.forEach((d, ax) => {
    if (d === 1) return;
    const last = dims.length - 1;
    if (last >= 0 && strides[0]![last] === aStr[ax]! * d && strides[1]![last] === bStr[ax]! * d) {
      dims[last]! *= d;
      strides[0]![last] = aStr[ax]!;
      strides[1]![last] = bStr[ax]!;
    } else {
      dims.push(d);
      strides[0]!.push(aStr[ax]!);
      strides[1]!.push(bStr[ax]!);
    }
  });
  return [dims, strides];
}

function offsetOf(i: number, dims: readonly number[], strides: readonly number[]): number {
  let off = 0;
  for (let ax = dims.length - 1; ax >= 0; ax--) {
    off += (i % dims[ax]!) * strides[ax]!;
    i = Math.floor(i / dims[ax]!);
  }
  return off;
}
