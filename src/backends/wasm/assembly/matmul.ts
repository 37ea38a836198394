// AssemblyScript source of the WebAssembly float32 matmul kernel (compiled by scripts/build-wasm.mjs).
//
// Memory contract (see src/backends/wasm/kernels.ts for the JS side):
// - The module imports a shared memory (env.memory) and owns NO linear memory: no static data, no data
//   segments, no shadow stack, no allocator (the stub runtime is never called). Every address it touches
//   is passed in by the caller, so any number of instances (one per worker thread) can share one memory.
// - `matmul` reads A and B, writes rows [rowStart, rowEnd) of C and uses `scratch` as its private work
//   area (matmulScratchBytes(m, n, k) bytes). Concurrent calls must use disjoint scratch regions and
//   disjoint row ranges of C.
//
// Algorithm: GotoBLAS/BLIS-style blocking. For each NC-wide slab of n and KC-deep slab of k, and each
// MC-row block of A, A is packed into MR-row strips (kc x MR, column p contiguous) and a 4x8
// register-blocked f32x4 micro-kernel computes each MR x NR tile of C. B is packed into NR-column strips
// (kc x NR, row p contiguous) lazily, each strip just before its first use by the first A block (so it
// is still in L1), and the kc x NC packed block (512 KiB) is reused by the later A blocks from L2. Packing zero-pads partial strips so the micro-kernel always runs full tiles;
// edge tiles go through a small tile buffer and only their valid part is written to C. A row-major A
// with k <= DIRECT_K is not packed: the micro-kernel reads its full strips in place (see DIRECT_K).

import { madd } from './math';
import { tile4x8 } from './tiles';

// Micro-tile: 4 rows x 8 columns = 8 f32x4 accumulators.
const MR: i32 = 4;
const NR: i32 = 8;
// Cache blocking. KC x NR x 4 B = 8 KiB B strip (L1); MC x KC x 4 B = 128 KiB A block (L2);
// KC x NC x 4 B = 512 KiB packed B block (L2 on a 1 MiB-L2 core, with the A block).
const KC: i32 = 256;
const MC: i32 = 128;
const NC: i32 = 512;
// Depth up to which a row-major A is read in place instead of packed: an MC-row block is then at most
// 32 KiB, which stays in L1 while the B strips sweep it, and a product this shallow does so little
// per element of A that copying A cost a sixth of it. Measured (2 threads, small-preset train steps,
// three alternating rounds): MAC 257 -> 247 ms, SWA 70.2 -> 68.9 ms; deeper slabs (k = 168) gained
// nothing. Only the edge strips (fewer than 4 rows) are packed, into the A buffer.
const DIRECT_K: i32 = 64;
// Bytes of the edge-tile buffer at the start of scratch.
const TILE_BYTES: i32 = MR * NR * 4;

function ceilDiv(x: i32, d: i32): i32 {
  return (x + d - 1) / d;
}

function ceilTo(x: i32, d: i32): i32 {
  return ceilDiv(x, d) * d;
}

// Depth of each k slab: k split into ceil(k / KC) near-equal slabs (all <= KC).
function slabDepth(k: i32): i32 {
  return ceilDiv(k, ceilDiv(k, KC));
}

function packedABytes(m: i32, k: i32): i32 {
  return ceilTo(min(m, MC), MR) * slabDepth(k) * 4;
}

/** Bytes of scratch `matmul` needs for an m x k by k x n product (any row range of it). */
export function matmulScratchBytes(m: i32, n: i32, k: i32): i32 {
  if (m < 1) m = 1;
  if (n < 1) n = 1;
  if (k < 1) k = 1;
  return TILE_BYTES + packedABytes(m, k) + slabDepth(k) * ceilTo(min(n, NC), NR) * 4;
}

// Packs B[p0 .. p0+kc, j0 .. j0+nc] into NR-column strips at dst: strip s holds kc rows of NR floats
// (columns beyond nc are zero), strip s starts at dst + s * kc * NR * 4.
function packB(b: usize, rs: i32, cs: i32, p0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  for (let js: i32 = 0; js < nc; js += NR) {
    const cols = min(NR, nc - js);
    let d = dst + (<usize>(js * kc) << 2);
    if (cols == NR && cs == 1) {
      // Row-major B: each strip row is 8 contiguous floats.
      let s = b + (<usize>(p0 * rs + j0 + js) << 2);
      const step = <usize>rs << 2;
      for (let p: i32 = 0; p < kc; p++) {
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
        s += step;
        d += 32;
      }
    } else if (cols == NR && rs == 1) {
      // Transposed B (k contiguous): 4x4 blocks of 4 columns x 4 rows, transposed in registers.
      const cstep = <usize>cs << 2;
      for (let h: i32 = 0; h < NR; h += 4) {
        let s0 = b + (<usize>((j0 + js + h) * cs + p0) << 2);
        let dh = d + (<usize>h << 2);
        let p: i32 = 0;
        for (; p + 4 <= kc; p += 4) {
          const x0 = v128.load(s0);
          const x1 = v128.load(s0 + cstep);
          const x2 = v128.load(s0 + cstep * 2);
          const x3 = v128.load(s0 + cstep * 3);
          const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
          const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
          const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
          const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
          v128.store(dh, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
          v128.store(dh, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 32);
          v128.store(dh, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 64);
          v128.store(dh, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 96);
          s0 += 16;
          dh += 128;
        }
        for (; p < kc; p++) {
          store<f32>(dh, load<f32>(s0));
          store<f32>(dh, load<f32>(s0 + cstep), 4);
          store<f32>(dh, load<f32>(s0 + cstep * 2), 8);
          store<f32>(dh, load<f32>(s0 + cstep * 3), 12);
          s0 += 4;
          dh += 32;
        }
      }
    } else {
      for (let p: i32 = 0; p < kc; p++) {
        const row = (p0 + p) * rs;
        for (let c: i32 = 0; c < NR; c++) {
          let v: f32 = 0;
          if (c < cols) v = load<f32>(b + (<usize>(row + (j0 + js + c) * cs) << 2));
          store<f32>(d, v);
          d += 4;
        }
      }
    }
  }
}

// Packs A[i0 .. i0+mc, p0 .. p0+kc] into MR-row strips at dst: strip s holds kc columns of MR floats
// (rows beyond mc are zero), strip s starts at dst + s * kc * MR * 4.
function packA(a: usize, rs: i32, cs: i32, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  for (let ir: i32 = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    let d = dst + (<usize>(ir * kc) << 2);
    if (rows == MR && cs == 1) {
      // Row-major A: load 4x4 blocks of 4 rows and transpose them in registers.
      const rstep = <usize>rs << 2;
      let s0 = a + (<usize>((i0 + ir) * rs + p0) << 2);
      let p: i32 = 0;
      for (; p + 4 <= kc; p += 4) {
        const x0 = v128.load(s0);
        const x1 = v128.load(s0 + rstep);
        const x2 = v128.load(s0 + rstep * 2);
        const x3 = v128.load(s0 + rstep * 3);
        const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
        const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
        v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
        v128.store(d, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
        v128.store(d, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32);
        v128.store(d, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
        s0 += 16;
        d += 64;
      }
      for (; p < kc; p++) {
        store<f32>(d, load<f32>(s0));
        store<f32>(d, load<f32>(s0 + rstep), 4);
        store<f32>(d, load<f32>(s0 + rstep * 2), 8);
        store<f32>(d, load<f32>(s0 + rstep * 3), 12);
        s0 += 4;
        d += 16;
      }
    } else if (rows == MR && rs == 1) {
      // Transposed A (m contiguous): each packed column is 4 contiguous floats.
      let s = a + (<usize>(i0 + ir + p0 * cs) << 2);
      const step = <usize>cs << 2;
      for (let p: i32 = 0; p < kc; p++) {
        v128.store(d, v128.load(s));
        s += step;
        d += 16;
      }
    } else {
      for (let p: i32 = 0; p < kc; p++) {
        const col = (p0 + p) * cs;
        for (let r: i32 = 0; r < MR; r++) {
          let v: f32 = 0;
          if (r < rows) v = load<f32>(a + (<usize>((i0 + ir + r) * rs + col) << 2));
          store<f32>(d, v);
          d += 4;
        }
      }
    }
  }
}

// C[0..rows, 0..cols] (= or +=) packedA (kc x MR) * packedB (kc x NR): the shared 4 x 8 register
// tile (tiles.ts) on the packed strips (A column p: 4 floats; B row p: 8 floats). `ldc` is C's row
// pitch in bytes. Edge tiles are computed into `tile` and only their valid part is written.
function microKernel(
  kc: i32,
  ap: usize,
  bp: usize,
  c: usize,
  ldc: usize,
  rows: i32,
  cols: i32,
  accumulate: bool,
  tile: usize,
): void {
  if (rows == MR && cols == NR) {
    tile4x8(ap, 4, MR * 4, bp, NR * 4, kc, c, ldc, accumulate);
    return;
  }
  tile4x8(ap, 4, MR * 4, bp, NR * 4, kc, tile, NR * 4, false);
  for (let r: i32 = 0; r < rows; r++) {
    const t = tile + (<usize>(r * NR) << 2);
    const cr = c + <usize>r * ldc;
    for (let j: i32 = 0; j < cols; j++) {
      const o = <usize>j << 2;
      let v = load<f32>(t + o);
      if (accumulate) v += load<f32>(cr + o);
      store<f32>(cr + o, v);
    }
  }
}

/**
 * C[i, j] = sum_p A[i, p] * B[p, j] for rows i in [rowStart, rowEnd), all j in [0, n); float32.
 * A[i, p] is at a + 4 * (i * aRowStride + p * aColStride), B[p, j] at b + 4 * (p * bRowStride + j * bColStride)
 * (element strides, so transposed operands need no copy). C is row-major with row pitch n and is
 * overwritten (rows outside the range are untouched). `scratch` must hold matmulScratchBytes(m, n, k)
 * bytes (16-byte alignment recommended) private to this call. If k < 1 the rows are zero-filled.
 */
export function matmul(
  a: usize,
  b: usize,
  c: usize,
  m: i32,
  n: i32,
  k: i32,
  aRowStride: i32,
  aColStride: i32,
  bRowStride: i32,
  bColStride: i32,
  rowStart: i32,
  rowEnd: i32,
  scratch: usize,
): void {
  if (rowStart < 0) rowStart = 0;
  if (rowEnd > m) rowEnd = m;
  if (rowEnd <= rowStart || n < 1) return;
  const ldc = <usize>n << 2;
  if (k < 1) {
    memory.fill(c + <usize>rowStart * ldc, 0, <usize>(rowEnd - rowStart) * ldc);
    return;
  }
  const kcStep = slabDepth(k);
  const direct = aColStride == 1 && k <= DIRECT_K; // one k slab, A read in place
  const tile = scratch;
  const packedA = scratch + <usize>TILE_BYTES;
  const packedB = packedA + <usize>packedABytes(m, k);
  for (let jc: i32 = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    for (let pc: i32 = 0; pc < k; pc += kcStep) {
      const kc = min(kcStep, k - pc);
      const accumulate = pc > 0;
      for (let ic = rowStart; ic < rowEnd; ic += MC) {
        const mc = min(MC, rowEnd - ic);
        if (!direct) packA(a, aRowStride, aColStride, ic, mc, pc, kc, packedA);
        for (let jr: i32 = 0; jr < nc; jr += NR) {
          const cols = min(NR, nc - jr);
          const bStrip = packedB + (<usize>(jr * kc) << 2);
          // B strips are packed just before their first use (the first A block), while they are
          // hot in L1; later A blocks reuse the packed block from L2.
          if (ic == rowStart) packB(b, bRowStride, bColStride, pc, kc, jc + jr, cols, bStrip);
          let cTile = c + <usize>ic * ldc + (<usize>(jc + jr) << 2);
          for (let ir: i32 = 0; ir < mc; ir += MR) {
            const rows = min(MR, mc - ir);
            if (!direct) {
              microKernel(kc, packedA + (<usize>(ir * kc) << 2), bStrip, cTile, ldc, rows, cols, accumulate, tile);
            } else if (rows == MR && cols == NR) {
              const aStrip = a + (<usize>((ic + ir) * aRowStride) << 2); // one slab: pc = 0
              tile4x8(aStrip, <usize>aRowStride << 2, 4, bStrip, NR * 4, kc, cTile, ldc, accumulate);
            } else {
              packA(a, aRowStride, aColStride, ic + ir, rows, pc, kc, packedA);
              microKernel(kc, packedA, bStrip, cTile, ldc, rows, cols, accumulate, tile);
            }
            cTile += ldc * <usize>MR;
          }
        }
      }
    }
  }
}

// ---- the ceiling --------------------------------------------------------------------------------

/**
 * The WebAssembly SIMD ceiling of this machine, for benchmarks: `iterations` rounds of 10
 * independent f32x4 multiply-adds c_i ← c_i + p·m_i (the microkernel's operation without its loads;
 * p advances by one add a round so nothing is loop-invariant), 80 flops a round. Returns a sum of
 * the accumulators so the work cannot be dropped.
 */
export function simdPeak(iterations: i32): f32 {
  const m0 = f32x4.splat(1e-9);
  const m1 = f32x4.splat(-1e-9);
  const step = f32x4.splat(1e-3);
  let p = f32x4.splat(0.5);
  let c0 = f32x4.splat(0);
  let c1 = f32x4.splat(0);
  let c2 = f32x4.splat(0);
  let c3 = f32x4.splat(0);
  let c4 = f32x4.splat(0);
  let c5 = f32x4.splat(0);
  let c6 = f32x4.splat(0);
  let c7 = f32x4.splat(0);
  let c8 = f32x4.splat(0);
  let c9 = f32x4.splat(0);
  for (let i: i32 = 0; i < iterations; i++) {
    c0 = madd(p, m0, c0);
    c1 = madd(p, m1, c1);
    c2 = madd(p, m0, c2);
    c3 = madd(p, m1, c3);
    c4 = madd(p, m0, c4);
    c5 = madd(p, m1, c5);
    c6 = madd(p, m0, c6);
    c7 = madd(p, m1, c7);
    c8 = madd(p, m0, c8);
    c9 = madd(p, m1, c9);
    p = f32x4.add(p, step);
  }
  const s = f32x4.add(
    f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(c4, c5)),
    f32x4.add(f32x4.add(c6, c7), f32x4.add(c8, c9)),
  );
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
}

/** simdPeak as a pool task: args[0] = iterations; the result is stored at args[1]. */
export function simdPeakTask(args: usize, scratch: usize): void {
  store<f32>(args, simdPeak(load<i32>(args)), 4);
  void scratch;
}
