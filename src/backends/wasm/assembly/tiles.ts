// AssemblyScript source of the register tiles every product of the kernels runs on (matmul's
// microkernel over packed operands, attention's products over strided ones): C[r, c] (= or +=)
// Σ_{p < np} A[r, p] · B[p, c], 4 rows × 8 columns in eight f32x4 accumulators (narrower edge
// tiles beside it), one madd per accumulator and step (fused in the relaxed-SIMD build).
// A[r, p] is the f32 at a + r·ars + p·acs (byte strides, any layout); B row p is contiguous at
// b + p·brs; C row r at c + r·crs. np >= 1. No static data (the memory contract of matmul.ts).

import { madd } from './math';

// The 4 x 8 tile. Its step loop is unrolled 4x with an exit test after every step (np >= 1, so no
// remainder loop). The exits matter: they stop Binaryen from merging the four steps into one
// expression tree per accumulator, which would keep all eight B vectors and four A splats live at
// once and make V8 spill. Each step: 2 B loads, 4 broadcast loads of A, 8 multiply-adds; 12 of V8's
// 15 allocatable xmm registers. (Measured: a plain one-step loop ran matmul 4096×64×256 ~4× slower.)
// @ts-ignore: decorator
@inline
export function tile4x8(
  a: usize,
  ars: usize,
  acs: usize,
  b: usize,
  brs: usize,
  np: i32,
  c: usize,
  crs: usize,
  acc: bool,
): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  const a2 = ars << 1;
  const a3 = a2 + ars;
  let pa = a;
  let pb = b;
  let p = np;
  let b0: v128;
  let b1: v128;
  let av: v128;
  while (true) {
    b0 = v128.load(pb);
    b1 = v128.load(pb, 16);
    av = v128.load32_splat(pa);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(pa + ars);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    av = v128.load32_splat(pa + a2);
    c20 = madd(av, b0, c20);
    c21 = madd(av, b1, c21);
    av = v128.load32_splat(pa + a3);
    c30 = madd(av, b0, c30);
    c31 = madd(av, b1, c31);
    pa += acs;
    pb += brs;
    if (--p == 0) break;
    b0 = v128.load(pb);
    b1 = v128.load(pb, 16);
    av = v128.load32_splat(pa);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(pa + ars);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    av = v128.load32_splat(pa + a2);
    c20 = madd(av, b0, c20);
    c21 = madd(av, b1, c21);
    av = v128.load32_splat(pa + a3);
    c30 = madd(av, b0, c30);
    c31 = madd(av, b1, c31);
    pa += acs;
    pb += brs;
    if (--p == 0) break;
    b0 = v128.load(pb);
    b1 = v128.load(pb, 16);
    av = v128.load32_splat(pa);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(pa + ars);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    av = v128.load32_splat(pa + a2);
    c20 = madd(av, b0, c20);
    c21 = madd(av, b1, c21);
    av = v128.load32_splat(pa + a3);
    c30 = madd(av, b0, c30);
    c31 = madd(av, b1, c31);
    pa += acs;
    pb += brs;
    if (--p == 0) break;
    b0 = v128.load(pb);
    b1 = v128.load(pb, 16);
    av = v128.load32_splat(pa);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(pa + ars);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    av = v128.load32_splat(pa + a2);
    c20 = madd(av, b0, c20);
    c21 = madd(av, b1, c21);
    av = v128.load32_splat(pa + a3);
    c30 = madd(av, b0, c30);
    c31 = madd(av, b1, c31);
    pa += acs;
    pb += brs;
    if (--p == 0) break;
  }
  const r1 = c + crs;
  const r2 = r1 + crs;
  const r3 = r2 + crs;
  if (acc) {
    c00 = f32x4.add(c00, v128.load(c));
    c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(r1));
    c11 = f32x4.add(c11, v128.load(r1, 16));
    c20 = f32x4.add(c20, v128.load(r2));
    c21 = f32x4.add(c21, v128.load(r2, 16));
    c30 = f32x4.add(c30, v128.load(r3));
    c31 = f32x4.add(c31, v128.load(r3, 16));
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(r1, c10);
  v128.store(r1, c11, 16);
  v128.store(r2, c20);
  v128.store(r2, c21, 16);
  v128.store(r3, c30);
  v128.store(r3, c31, 16);
}

// @ts-ignore: decorator
@inline
function tile4x4(
  a: usize,
  ars: usize,
  acs: usize,
  b: usize,
  brs: usize,
  np: i32,
  c: usize,
  crs: usize,
  acc: bool,
): void {
  let c0 = f32x4.splat(0);
  let c1 = f32x4.splat(0);
  let c2 = f32x4.splat(0);
  let c3 = f32x4.splat(0);
  const a2 = ars << 1;
  const a3 = a2 + ars;
  let pa = a;
  let pb = b;
  for (let p: i32 = 0; p < np; p++) {
    const b0 = v128.load(pb);
    c0 = madd(v128.load32_splat(pa), b0, c0);
    c1 = madd(v128.load32_splat(pa + ars), b0, c1);
    c2 = madd(v128.load32_splat(pa + a2), b0, c2);
    c3 = madd(v128.load32_splat(pa + a3), b0, c3);
    pa += acs;
    pb += brs;
  }
  const r1 = c + crs;
  const r2 = r1 + crs;
  const r3 = r2 + crs;
  if (acc) {
    c0 = f32x4.add(c0, v128.load(c));
    c1 = f32x4.add(c1, v128.load(r1));
    c2 = f32x4.add(c2, v128.load(r2));
    c3 = f32x4.add(c3, v128.load(r3));
  }
  v128.store(c, c0);
  v128.store(r1, c1);
  v128.store(r2, c2);
  v128.store(r3, c3);
}

// @ts-ignore: decorator
@inline
function tile1x8(a: usize, acs: usize, b: usize, brs: usize, np: i32, c: usize, acc: bool): void {
  let c0 = f32x4.splat(0);
  let c1 = f32x4.splat(0);
  let pa = a;
  let pb = b;
  for (let p: i32 = 0; p < np; p++) {
    const av = v128.load32_splat(pa);
    c0 = madd(av, v128.load(pb), c0);
    c1 = madd(av, v128.load(pb, 16), c1);
    pa += acs;
    pb += brs;
  }
  if (acc) {
    c0 = f32x4.add(c0, v128.load(c));
    c1 = f32x4.add(c1, v128.load(c, 16));
  }
  v128.store(c, c0);
  v128.store(c, c1, 16);
}

// @ts-ignore: decorator
@inline
function tile1x4(a: usize, acs: usize, b: usize, brs: usize, np: i32, c: usize, acc: bool): void {
  let c0 = f32x4.splat(0);
  let pa = a;
  let pb = b;
  for (let p: i32 = 0; p < np; p++) {
    c0 = madd(v128.load32_splat(pa), v128.load(pb), c0);
    pa += acs;
    pb += brs;
  }
  if (acc) c0 = f32x4.add(c0, v128.load(c));
  v128.store(c, c0);
}

// C (rows x cols, cols a multiple of 4) (= or +=) A (rows x np) · B (np x cols), strides as above.
export function gemm(
  c: usize,
  crs: usize,
  a: usize,
  ars: usize,
  acs: usize,
  b: usize,
  brs: usize,
  rows: i32,
  cols: i32,
  np: i32,
  acc: bool,
): void {
  let r: i32 = 0;
  for (; r + 4 <= rows; r += 4) {
    const ar = a + <usize>r * ars;
    const cr = c + <usize>r * crs;
    let col: i32 = 0;
    for (; col + 8 <= cols; col += 8) {
      const off = <usize>col << 2;
      tile4x8(ar, ars, acs, b + off, brs, np, cr + off, crs, acc);
    }
    if (col < cols) {
      const off = <usize>col << 2;
      tile4x4(ar, ars, acs, b + off, brs, np, cr + off, crs, acc);
    }
  }
  for (; r < rows; r++) {
    const ar = a + <usize>r * ars;
    const cr = c + <usize>r * crs;
    let col: i32 = 0;
    for (; col + 8 <= cols; col += 8) {
      const off = <usize>col << 2;
      tile1x8(ar, acs, b + off, brs, np, cr + off, acc);
    }
    if (col < cols) {
      const off = <usize>col << 2;
      tile1x4(ar, acs, b + off, brs, np, cr + off, acc);
    }
  }
}

// ---- one row ------------------------------------------------------------------------------------

// Σ_j x[j] y[j] over `cols` floats.
export function dotRow(x: usize, y: usize, cols: i32): f32 {
  let acc = f32x4.splat(0);
  let j: i32 = 0;
  for (; j + 4 <= cols; j += 4) {
    const o = <usize>j << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(x + o), v128.load(y + o)));
  }
  let r =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; j < cols; j++) r += load<f32>(x + (<usize>j << 2)) * load<f32>(y + (<usize>j << 2));
  return r;
}
