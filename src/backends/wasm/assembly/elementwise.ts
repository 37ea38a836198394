// AssemblyScript source of the float32 elementwise, reduction and data-movement kernels of the wasm
// backend (compiled with matmul.ts into one module by scripts/build-wasm.mjs; JS side:
// src/backends/wasm/elementwise.ts).
//
// Memory contract: as matmul.ts. No static data, no lookup tables, no globals: every address is passed
// in by the caller, so instantiating the module (once per thread, on one shared memory) writes nothing.
// That is why the math (exp, log, erfc: assembly/math.ts) is written out instead of using Math/Mathf, whose
// exp/log/pow use lookup tables (data segments).
//
// Conventions: pointers are byte addresses; sizes and strides are in elements (4 bytes each); outputs
// never overlap inputs. Strided kernels take up to rank 4 (binary, where) or 6 (copy) dimensions, outer
// first; a stride of 0 broadcasts. Scalar math is done in f64 and rounded on store, like the reference
// backend; f32 SIMD is used where the f32 operation is already correctly rounded (+ − × ÷ √, max, min,
// comparisons), so those results equal the reference's exactly.

import {
  copyWords,
  expF64,
  expNonPositiveV,
  log1pF64,
  logF64,
  normalCdf,
  normalPdf,
  powF64,
  sigmoid4,
  taskWord,
} from './math';
import {
  A_GELU,
  A_SIGMOID,
  A_SILU,
  A_SOFTPLUS,
  A_TANH,
  B_ADD,
  EW_TASK_ACTIVATION,
  EW_TASK_BINARY,
  EW_TASK_COPY,
  EW_TASK_FILL,
  EW_TASK_UNARY,
  B_DIV,
  B_EQ,
  B_GE,
  B_GT,
  B_LE,
  B_LT,
  B_MAX,
  B_MIN,
  B_MUL,
  B_NE,
  B_POW,
  B_SUB,
  R_MAX,
  R_SUM,
  U_ABS,
  U_EXP,
  U_LOG,
  U_NEG,
  U_RECIPROCAL,
  U_RSQRT,
  U_SIGN,
  U_SQRT,
  U_SQUARE,
} from './opcodes';

// Op codes: ./opcodes (generated from ../opcodes.json).

// The n-th derivative of σ (n = 0…4) from s = σ(x) and sm = σ(−x) = 1 − s (as in special.ts).
// @ts-ignore: decorator
@inline
function sigmoidPoly(n: i32, s: f64, sm: f64): f64 {
  if (n == 0) return s;
  const d = s * sm;
  if (n == 1) return d;
  if (n == 2) return d * (1 - 2 * s);
  if (n == 3) return d * (1 - 6 * s + 6 * s * s);
  return d * (1 - 14 * s + 36 * s * s - 24 * s * s * s);
}

/** The order-th derivative (0…4) of activation fn at x, in f64. */
function activationF64(fn: i32, order: i32, x: f64): f64 {
  if (fn == A_TANH) {
    // e = e^{−2|x|}: tanh|x| = (1 − e)/(1 + e), 1/cosh² x = 4e/(1 + e)², no overflow for any x.
    const ax = abs(x);
    const e = expF64(-2 * ax);
    let t: f64;
    if (ax < 1e-3) {
      const x2 = x * x;
      t = x * (1 - x2 * (0.3333333333333333 - x2 * 0.13333333333333333));
    } else {
      t = (1 - e) / (1 + e);
      if (x < 0) t = -t;
    }
    const d = (4 * e) / ((1 + e) * (1 + e));
    if (order == 0) return t;
    if (order == 1) return d;
    if (order == 2) return -2 * t * d;
    if (order == 3) return -2 * d * (1 - 3 * t * t);
    return 8 * t * d * (2 - 3 * t * t);
  }
  if (fn == A_GELU) {
    if (order == 0) return x * normalCdf(x);
    if (order == 1) return x * normalPdf(x) + normalCdf(x);
    if (order == 2) return (2 - x * x) * normalPdf(x);
    if (order == 3) return (x * x * x - 4 * x) * normalPdf(x);
    return (-x * x * x * x + 7 * x * x - 4) * normalPdf(x);
  }
  if (fn == A_SOFTPLUS && order == 0) return max(x, 0) + log1pF64(expF64(-abs(x)));
  // σ-based: σ(x) and σ(−x) from one exponential e^{−|x|}.
  const e = expF64(-abs(x));
  const q = 1 / (1 + e);
  const r = e / (1 + e);
  const s = x >= 0 ? q : r;
  const sm = x >= 0 ? r : q;
  if (fn == A_SIGMOID) return sigmoidPoly(order, s, sm);
  if (fn == A_SOFTPLUS) return sigmoidPoly(order - 1, s, sm);
  // silu: x σ⁽ⁿ⁾(x) + n σ⁽ⁿ⁻¹⁾(x).
  if (order == 0) return x * s;
  return x * sigmoidPoly(order, s, sm) + <f64>order * sigmoidPoly(order - 1, s, sm);
}

// ---- the σ/tanh family two lanes at a time (f64x2) -----------------------------------------------

// sigmoidPoly on f64x2 lanes.
// @ts-ignore: decorator
@inline
function sigmoidPolyV(n: i32, s: v128, sm: v128): v128 {
  if (n == 0) return s;
  const d = f64x2.mul(s, sm);
  if (n == 1) return d;
  const one = f64x2.splat(1);
  if (n == 2) return f64x2.mul(d, f64x2.sub(one, f64x2.mul(f64x2.splat(2), s)));
  const s6 = f64x2.mul(f64x2.splat(6), s);
  if (n == 3) return f64x2.mul(d, f64x2.add(f64x2.sub(one, s6), f64x2.mul(s6, s)));
  // 1 − 14 s + 36 s² − 24 s³, evaluated left to right like the scalar form.
  const s36 = f64x2.mul(f64x2.mul(f64x2.splat(36), s), s);
  const s24 = f64x2.mul(f64x2.mul(f64x2.mul(f64x2.splat(24), s), s), s);
  return f64x2.mul(d, f64x2.sub(f64x2.add(f64x2.sub(one, f64x2.mul(f64x2.splat(14), s)), s36), s24));
}

// activationF64 on f64x2 lanes for fn in {sigmoid, tanh, silu} (any order) and softplus (order >= 1).
// @ts-ignore: decorator
@inline
function activationV(fn: i32, order: i32, x: v128): v128 {
  const one = f64x2.splat(1);
  if (fn == A_TANH) {
    const ax = f64x2.abs(x);
    const e = expNonPositiveV(f64x2.mul(ax, f64x2.splat(-2)));
    const onePlus = f64x2.add(one, e);
    // (1 − e)/(1 + e) >= 0 gets the sign of x; below |x| = 1e-3 the Taylor series instead.
    let t = v128.or(f64x2.div(f64x2.sub(one, e), onePlus), v128.and(x, f64x2.splat(-0.0)));
    const x2 = f64x2.mul(x, x);
    const series = f64x2.sub(
      f64x2.splat(0.3333333333333333),
      f64x2.mul(x2, f64x2.splat(0.13333333333333333)),
    );
    const taylor = f64x2.mul(x, f64x2.sub(one, f64x2.mul(x2, series)));
    t = v128.bitselect(taylor, t, f64x2.lt(ax, f64x2.splat(1e-3)));
    const d = f64x2.div(f64x2.mul(f64x2.splat(4), e), f64x2.mul(onePlus, onePlus));
    if (order == 0) return t;
    if (order == 1) return d;
    if (order == 2) return f64x2.mul(f64x2.mul(f64x2.splat(-2), t), d);
    const tt3 = f64x2.mul(f64x2.mul(f64x2.splat(3), t), t);
    if (order == 3) return f64x2.mul(f64x2.mul(f64x2.splat(-2), d), f64x2.sub(one, tt3));
    return f64x2.mul(f64x2.mul(f64x2.mul(f64x2.splat(8), t), d), f64x2.sub(f64x2.splat(2), tt3));
  }
  const e = expNonPositiveV(f64x2.neg(f64x2.abs(x)));
  const onePlus = f64x2.add(one, e);
  const q = f64x2.div(one, onePlus);
  const r = f64x2.mul(e, q); // e/(1 + e) to 2 f64 roundings: one division, not two
  const positive = f64x2.ge(x, f64x2.splat(0));
  const s = v128.bitselect(q, r, positive);
  const sm = v128.bitselect(r, q, positive);
  if (fn == A_SIGMOID) return sigmoidPolyV(order, s, sm);
  if (fn == A_SOFTPLUS) return sigmoidPolyV(order - 1, s, sm);
  if (order == 0) return f64x2.mul(x, s);
  return f64x2.add(
    f64x2.mul(x, sigmoidPolyV(order, s, sm)),
    f64x2.mul(f64x2.splat(<f64>order), sigmoidPolyV(order - 1, s, sm)),
  );
}

// ---- unary and activation -----------------------------------------------------------------------

/** out[i] = op(x[i]) for i < n. */
export function ewUnary(op: i32, out: usize, x: usize, n: i32): void {
  // Ops that f32 already rounds correctly run four lanes at a time (one loop each); the rest, and the
  // tail, go element by element in f64.
  let i: i32 = 0;
  if (op == U_NEG) {
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      v128.store(out + off, f32x4.neg(v128.load(x + off)));
    }
  } else if (op == U_SQRT) {
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      v128.store(out + off, f32x4.sqrt(v128.load(x + off)));
    }
  } else if (op == U_ABS) {
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      v128.store(out + off, f32x4.abs(v128.load(x + off)));
    }
  } else if (op == U_RECIPROCAL) {
    const one = f32x4.splat(1);
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      v128.store(out + off, f32x4.div(one, v128.load(x + off)));
    }
  } else if (op == U_SQUARE) {
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      const v = v128.load(x + off);
      v128.store(out + off, f32x4.mul(v, v));
    }
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    const v = <f64>load<f32>(x + off);
    let r: f64;
    switch (op) {
      case U_NEG:
        r = -v;
        break;
      case U_EXP:
        r = expF64(v);
        break;
      case U_LOG:
        r = logF64(v);
        break;
      case U_SQRT:
        r = sqrt(v);
        break;
      case U_RSQRT:
        r = 1 / sqrt(v);
        break;
      case U_ABS:
        r = abs(v);
        break;
      case U_SIGN:
        r = v > 0 ? 1 : v < 0 ? -1 : 0;
        break;
      case U_RECIPROCAL:
        r = 1 / v;
        break;
      case U_SQUARE:
        r = v * v;
        break;
      default:
        r = log1pF64(v);
    }
    store<f32>(out + off, <f32>r);
  }
}

/**
 * out[i] = the order-th derivative (0…4) of activation fn at x[i], for i < n. σ and silu themselves
 * (order 0) run on float32 lanes with the kernels' σ (sigmoid4: within 3 ulp, and exact zeros below
 * 2⁻⁶⁴); the rest is computed in f64 and rounded once: the derivatives cancel (silu′ has a zero
 * near x = −1.28, where a float32 exponential's error would be amplified a thousandfold).
 */
export function ewActivation(fn: i32, order: i32, out: usize, x: usize, n: i32): void {
  let i: i32 = 0;
  if ((fn == A_SIGMOID || fn == A_SILU) && order == 0) {
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      const v = v128.load(x + off);
      const s = sigmoid4(v);
      v128.store(out + off, fn == A_SILU ? f32x4.mul(v, s) : s);
    }
    for (; i < n; i++) {
      const off = <usize>i << 2;
      const v = f32x4.splat(load<f32>(x + off));
      const s = sigmoid4(v);
      store<f32>(out + off, f32x4.extract_lane(fn == A_SILU ? f32x4.mul(v, s) : s, 0));
    }
    return;
  }
  if (fn == A_SIGMOID || fn == A_TANH || fn == A_SILU || (fn == A_SOFTPLUS && order > 0)) {
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      const v = v128.load(x + off);
      const lo = activationV(fn, order, f64x2.promote_low_f32x4(v));
      const hi = activationV(fn, order, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
      v128.store(out + off, demote4(lo, hi));
    }
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(out + off, <f32>activationF64(fn, order, <f64>load<f32>(x + off)));
  }
}

// ---- binary (broadcasting) ------------------------------------------------------------------------

// @ts-ignore: decorator
@inline
function vecOp(op: i32, x: v128, y: v128): v128 {
  if (op == B_ADD) return f32x4.add(x, y);
  if (op == B_SUB) return f32x4.sub(x, y);
  if (op == B_MUL) return f32x4.mul(x, y);
  if (op == B_DIV) return f32x4.div(x, y);
  if (op == B_MAX) return f32x4.max(x, y);
  if (op == B_MIN) return f32x4.min(x, y);
  const one = f32x4.splat(1);
  if (op == B_GT) return v128.and(f32x4.gt(x, y), one);
  if (op == B_GE) return v128.and(f32x4.ge(x, y), one);
  if (op == B_LT) return v128.and(f32x4.lt(x, y), one);
  if (op == B_LE) return v128.and(f32x4.le(x, y), one);
  if (op == B_EQ) return v128.and(f32x4.eq(x, y), one);
  return v128.and(f32x4.ne(x, y), one);
}

// @ts-ignore: decorator
@inline
function scalarOp(op: i32, x: f32, y: f32): f32 {
  if (op == B_ADD) return x + y;
  if (op == B_SUB) return x - y;
  if (op == B_MUL) return x * y;
  if (op == B_DIV) return x / y;
  if (op == B_POW) return <f32>powF64(<f64>x, <f64>y);
  if (op == B_MAX) return max<f32>(x, y);
  if (op == B_MIN) return min<f32>(x, y);
  if (op == B_GT) return x > y ? 1 : 0;
  if (op == B_GE) return x >= y ? 1 : 0;
  if (op == B_LT) return x < y ? 1 : 0;
  if (op == B_LE) return x <= y ? 1 : 0;
  if (op == B_EQ) return x == y ? 1 : 0;
  return x != y ? 1 : 0;
}

// One row: out[j] = op(a[j·sa], b[j·sb]) for j < n; SIMD when (sa, sb) is (1, 1), (1, 0) or (0, 1).
// @ts-ignore: decorator
@inline
function binaryRow(op: i32, o: usize, a: usize, b: usize, n: i32, sa: i32, sb: i32): void {
  let j: i32 = 0;
  if (op != B_POW) {
    if (sa == 1 && sb == 1) {
      for (; j + 8 <= n; j += 8) {
        const off = <usize>j << 2;
        v128.store(o + off, vecOp(op, v128.load(a + off), v128.load(b + off)));
        v128.store(o + off, vecOp(op, v128.load(a + off, 16), v128.load(b + off, 16)), 16);
      }
      for (; j + 4 <= n; j += 4) {
        const off = <usize>j << 2;
        v128.store(o + off, vecOp(op, v128.load(a + off), v128.load(b + off)));
      }
    } else if (sa == 1 && sb == 0) {
      const y = v128.load32_splat(b);
      for (; j + 8 <= n; j += 8) {
        const off = <usize>j << 2;
        v128.store(o + off, vecOp(op, v128.load(a + off), y));
        v128.store(o + off, vecOp(op, v128.load(a + off, 16), y), 16);
      }
      for (; j + 4 <= n; j += 4) {
        const off = <usize>j << 2;
        v128.store(o + off, vecOp(op, v128.load(a + off), y));
      }
    } else if (sa == 0 && sb == 1) {
      const x = v128.load32_splat(a);
      for (; j + 8 <= n; j += 8) {
        const off = <usize>j << 2;
        v128.store(o + off, vecOp(op, x, v128.load(b + off)));
        v128.store(o + off, vecOp(op, x, v128.load(b + off, 16)), 16);
      }
      for (; j + 4 <= n; j += 4) {
        const off = <usize>j << 2;
        v128.store(o + off, vecOp(op, x, v128.load(b + off)));
      }
    }
  }
  const stepA = <usize>sa << 2;
  const stepB = <usize>sb << 2;
  let pa = a + <usize>j * stepA;
  let pb = b + <usize>j * stepB;
  for (; j < n; j++) {
    store<f32>(o + (<usize>j << 2), scalarOp(op, load<f32>(pa), load<f32>(pb)));
    pa += stepA;
    pb += stepB;
  }
}

// @ts-ignore: decorator
@inline
function binaryLoops(
  op: i32,
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  let o = out;
  const rowBytes = <usize>d3 << 2;
  for (let i0: i32 = 0; i0 < d0; i0++) {
    const a0 = a + (<usize>(i0 * as0) << 2);
    const b0 = b + (<usize>(i0 * bs0) << 2);
    for (let i1: i32 = 0; i1 < d1; i1++) {
      const a1 = a0 + (<usize>(i1 * as1) << 2);
      const b1 = b0 + (<usize>(i1 * bs1) << 2);
      for (let i2: i32 = 0; i2 < d2; i2++) {
        binaryRow(op, o, a1 + (<usize>(i2 * as2) << 2), b1 + (<usize>(i2 * bs2) << 2), d3, as3, bs3);
        o += rowBytes;
      }
    }
  }
}

// One function per op, each with the op a constant, so every loop below is specialised. (Inlining
// binaryLoops straight into the switch lets the optimizer fold the 13 copies back into one loop that
// tests the op per element.)
function binaryAdd(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_ADD, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binarySub(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_SUB, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryMul(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_MUL, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryDiv(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_DIV, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryPow(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_POW, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryMax(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_MAX, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryMin(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_MIN, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryGt(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_GT, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryGe(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_GE, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryLt(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_LT, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryLe(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_LE, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryEq(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_EQ, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

function binaryNe(
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  binaryLoops(B_NE, out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
}

/**
 * out (d0, d1, d2, d3), dense = op(a, b) with a[i] at a + 4·Σ i_k·as_k and b likewise (stride 0 on a
 * broadcast axis). Comparisons write 1 or 0; max/min propagate NaN.
 */
export function ewBinary(
  op: i32,
  out: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  switch (op) {
    case B_ADD:
      binaryAdd(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_SUB:
      binarySub(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_MUL:
      binaryMul(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_DIV:
      binaryDiv(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_POW:
      binaryPow(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_MAX:
      binaryMax(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_MIN:
      binaryMin(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_GT:
      binaryGt(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_GE:
      binaryGe(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_LT:
      binaryLt(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_LE:
      binaryLe(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    case B_EQ:
      binaryEq(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
      break;
    default:
      binaryNe(out, a, b, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
  }
}

/** out (d0…d3), dense = c != 0 ? a : b, each operand with its own strides (0 = broadcast). */
export function ewWhere(
  out: usize,
  c: usize,
  a: usize,
  b: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  cs0: i32,
  cs1: i32,
  cs2: i32,
  cs3: i32,
  as0: i32,
  as1: i32,
  as2: i32,
  as3: i32,
  bs0: i32,
  bs1: i32,
  bs2: i32,
  bs3: i32,
): void {
  let o = out;
  const zero = f32x4.splat(0);
  const stepC = <usize>cs3 << 2;
  const stepA = <usize>as3 << 2;
  const stepB = <usize>bs3 << 2;
  const dense = cs3 == 1 && as3 == 1 && bs3 == 1;
  for (let i0: i32 = 0; i0 < d0; i0++) {
    for (let i1: i32 = 0; i1 < d1; i1++) {
      for (let i2: i32 = 0; i2 < d2; i2++) {
        let pc = c + (<usize>(i0 * cs0 + i1 * cs1 + i2 * cs2) << 2);
        let pa = a + (<usize>(i0 * as0 + i1 * as1 + i2 * as2) << 2);
        let pb = b + (<usize>(i0 * bs0 + i1 * bs1 + i2 * bs2) << 2);
        let j: i32 = 0;
        if (dense) {
          for (; j + 4 <= d3; j += 4) {
            const mask = f32x4.ne(v128.load(pc), zero);
            v128.store(o, v128.bitselect(v128.load(pa), v128.load(pb), mask));
            pc += 16;
            pa += 16;
            pb += 16;
            o += 16;
          }
        }
        for (; j < d3; j++) {
          store<u32>(o, load<f32>(pc) != 0 ? load<u32>(pa) : load<u32>(pb));
          pc += stepC;
          pa += stepA;
          pb += stepB;
          o += 4;
        }
      }
    }
  }
}

// ---- reductions -----------------------------------------------------------------------------------

// Four f32 lanes from two f64x2 vectors (lo lanes first).
// @ts-ignore: decorator
@inline
function demote4(lo: v128, hi: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

// Sum of n contiguous floats in f64 (f64x2 accumulators).
function sumContiguous(p: usize, n: i32): f64 {
  let s0 = f64x2.splat(0);
  let s1 = s0;
  let s2 = s0;
  let s3 = s0;
  let j: i32 = 0;
  for (; j + 8 <= n; j += 8) {
    const v = v128.load(p);
    const w = v128.load(p, 16);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
    s2 = f64x2.add(s2, f64x2.promote_low_f32x4(w));
    s3 = f64x2.add(s3, f64x2.promote_low_f32x4(v128.shuffle<f32>(w, w, 2, 3, 2, 3)));
    p += 32;
  }
  const s = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
  let t = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; j < n; j++) {
    t += <f64>load<f32>(p);
    p += 4;
  }
  return t;
}

// Max (or min) of n contiguous floats, NaN-propagating; -inf (+inf) when n = 0.
function extremeContiguous(isMax: bool, p: usize, n: i32): f32 {
  const init: f32 = isMax ? -Infinity : Infinity;
  let m0 = f32x4.splat(init);
  let m1 = m0;
  let j: i32 = 0;
  for (; j + 8 <= n; j += 8) {
    if (isMax) {
      m0 = f32x4.max(m0, v128.load(p));
      m1 = f32x4.max(m1, v128.load(p, 16));
    } else {
      m0 = f32x4.min(m0, v128.load(p));
      m1 = f32x4.min(m1, v128.load(p, 16));
    }
    p += 32;
  }
  const m = isMax ? f32x4.max(m0, m1) : f32x4.min(m0, m1);
  let a = f32x4.extract_lane(m, 0);
  let b = f32x4.extract_lane(m, 1);
  let c = f32x4.extract_lane(m, 2);
  let d = f32x4.extract_lane(m, 3);
  let r = isMax ? max<f32>(max<f32>(a, b), max<f32>(c, d)) : min<f32>(min<f32>(a, b), min<f32>(c, d));
  for (; j < n; j++) {
    const v = load<f32>(p);
    r = isMax ? max<f32>(r, v) : min<f32>(r, v);
    p += 4;
  }
  return r;
}

/**
 * x is (outer, r, inner), dense; out (outer, inner) = reduce over the middle axis. Sums accumulate in
 * f64; max/min propagate NaN; r = 0 gives 0, −inf, +inf.
 */
export function ewReduce(op: i32, out: usize, x: usize, outer: i32, r: i32, inner: i32): void {
  const rowBytes = <usize>inner << 2;
  for (let o: i32 = 0; o < outer; o++) {
    const base = x + <usize>o * <usize>r * rowBytes;
    const dst = out + <usize>o * rowBytes;
    if (inner == 1) {
      if (op == R_SUM) store<f32>(dst, <f32>sumContiguous(base, r));
      else store<f32>(dst, extremeContiguous(op == R_MAX, base, r));
      continue;
    }
    let j: i32 = 0;
    if (op == R_SUM) {
      // 8 columns at a time: 4 f64x2 accumulators, walking down the rows.
      for (; j + 8 <= inner; j += 8) {
        let s0 = f64x2.splat(0);
        let s1 = s0;
        let s2 = s0;
        let s3 = s0;
        let p = base + (<usize>j << 2);
        for (let t: i32 = 0; t < r; t++) {
          const v = v128.load(p);
          const w = v128.load(p, 16);
          s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
          s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
          s2 = f64x2.add(s2, f64x2.promote_low_f32x4(w));
          s3 = f64x2.add(s3, f64x2.promote_low_f32x4(v128.shuffle<f32>(w, w, 2, 3, 2, 3)));
          p += rowBytes;
        }
        const q = dst + (<usize>j << 2);
        v128.store(q, demote4(s0, s1));
        v128.store(q, demote4(s2, s3), 16);
      }
      for (; j < inner; j++) {
        let s: f64 = 0;
        let p = base + (<usize>j << 2);
        for (let t: i32 = 0; t < r; t++) {
          s += <f64>load<f32>(p);
          p += rowBytes;
        }
        store<f32>(dst + (<usize>j << 2), <f32>s);
      }
    } else {
      const isMax = op == R_MAX;
      const init: f32 = isMax ? -Infinity : Infinity;
      for (; j + 8 <= inner; j += 8) {
        let m0 = f32x4.splat(init);
        let m1 = m0;
        let p = base + (<usize>j << 2);
        for (let t: i32 = 0; t < r; t++) {
          if (isMax) {
            m0 = f32x4.max(m0, v128.load(p));
            m1 = f32x4.max(m1, v128.load(p, 16));
          } else {
            m0 = f32x4.min(m0, v128.load(p));
            m1 = f32x4.min(m1, v128.load(p, 16));
          }
          p += rowBytes;
        }
        const q = dst + (<usize>j << 2);
        v128.store(q, m0);
        v128.store(q, m1, 16);
      }
      for (; j < inner; j++) {
        let m = init;
        let p = base + (<usize>j << 2);
        for (let t: i32 = 0; t < r; t++) {
          const v = load<f32>(p);
          m = isMax ? max<f32>(m, v) : min<f32>(m, v);
          p += rowBytes;
        }
        store<f32>(dst + (<usize>j << 2), m);
      }
    }
  }
}

/** x (outer, n, inner): out (outer, inner) int32 = index of the first maximum along the middle axis. */
export function ewArgMax(out: usize, x: usize, outer: i32, n: i32, inner: i32): void {
  const rowBytes = <usize>inner << 2;
  for (let o: i32 = 0; o < outer; o++) {
    const base = x + <usize>o * <usize>n * rowBytes;
    for (let j: i32 = 0; j < inner; j++) {
      let p = base + (<usize>j << 2);
      let best: i32 = 0;
      let bestValue = n > 0 ? load<f32>(p) : <f32>0;
      for (let t: i32 = 1; t < n; t++) {
        p += rowBytes;
        const v = load<f32>(p);
        if (v > bestValue) {
          bestValue = v;
          best = t;
        }
      }
      store<i32>(out + (<usize>(o * inner + j) << 2), best);
    }
  }
}

// ---- data movement (any 32-bit element type) ----------------------------------------------------------

/** n 32-bit words from src (stride ss elements) to dst (stride ds elements); no overlap. */
// @ts-ignore: decorator
@inline
function copyRow(dst: usize, src: usize, n: i32, ds: i32, ss: i32): void {
  if (ds == 1 && ss == 1) {
    copyWords(dst, src, n);
    return;
  }
  let j: i32 = 0;
  if (ds == 1 && ss == 0) {
    const v = v128.load32_splat(src);
    for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v);
    for (; j < n; j++) store<u32>(dst + (<usize>j << 2), load<u32>(src));
    return;
  }
  const stepD = <usize>ds << 2;
  const stepS = <usize>ss << 2;
  if (ds == 1 && ss > 1) {
    // Gathering 4 strided words into one store.
    let s = src;
    for (; j + 4 <= n; j += 4) {
      let v = v128.load32_zero(s);
      v = v128.load32_lane(s + stepS, v, 1);
      v = v128.load32_lane(s + stepS * 2, v, 2);
      v = v128.load32_lane(s + stepS * 3, v, 3);
      v128.store(dst + (<usize>j << 2), v);
      s += stepS * 4;
    }
  }
  let d = dst + <usize>j * stepD;
  let s = src + <usize>j * stepS;
  for (; j < n; j++) {
    store<u32>(d, load<u32>(s));
    d += stepD;
    s += stepS;
  }
}

/**
 * Strided copy of 32-bit words over a box of shape (d0…d5): dst[i] at dst + 4·Σ i_k·ds_k, src[i] at
 * src + 4·Σ i_k·ss_k (strides may be 0 on the source side: broadcast). Transpose, broadcastTo, slice,
 * pad and concat are all this copy.
 */
export function ewCopy(
  dst: usize,
  src: usize,
  d0: i32,
  d1: i32,
  d2: i32,
  d3: i32,
  d4: i32,
  d5: i32,
  ds0: i32,
  ds1: i32,
  ds2: i32,
  ds3: i32,
  ds4: i32,
  ds5: i32,
  ss0: i32,
  ss1: i32,
  ss2: i32,
  ss3: i32,
  ss4: i32,
  ss5: i32,
): void {
  for (let i0: i32 = 0; i0 < d0; i0++) {
    for (let i1: i32 = 0; i1 < d1; i1++) {
      for (let i2: i32 = 0; i2 < d2; i2++) {
        for (let i3: i32 = 0; i3 < d3; i3++) {
          const od = i0 * ds0 + i1 * ds1 + i2 * ds2 + i3 * ds3;
          const os = i0 * ss0 + i1 * ss1 + i2 * ss2 + i3 * ss3;
          let pd = dst + (<usize>od << 2);
          let ps = src + (<usize>os << 2);
          const stepD = <usize>ds4 << 2;
          const stepS = <usize>ss4 << 2;
          for (let i4: i32 = 0; i4 < d4; i4++) {
            copyRow(pd, ps, d5, ds5, ss5);
            pd += stepD;
            ps += stepS;
          }
        }
      }
    }
  }
}

/**
 * Batched 2-D transpose of 32-bit words in 4x4 register blocks: src is (batch, rows, cols) and dst
 * (batch, cols, rows), both dense; dst[m, j, i] = src[m, i, j].
 */
export function ewTranspose2(dst: usize, src: usize, batch: i32, rows: i32, cols: i32): void {
  const rowBytes = <usize>cols << 2; // src row pitch
  const colBytes = <usize>rows << 2; // dst row pitch
  const matrixBytes = <usize>rows * rowBytes;
  for (let m: i32 = 0; m < batch; m++) {
    const s0 = src + <usize>m * matrixBytes;
    const d0 = dst + <usize>m * matrixBytes;
    let i: i32 = 0;
    for (; i + 4 <= rows; i += 4) {
      const sRow = s0 + <usize>i * rowBytes;
      let j: i32 = 0;
      for (; j + 4 <= cols; j += 4) {
        const s = sRow + (<usize>j << 2);
        const x0 = v128.load(s);
        const x1 = v128.load(s + rowBytes);
        const x2 = v128.load(s + rowBytes * 2);
        const x3 = v128.load(s + rowBytes * 3);
        const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
        const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
        const d = d0 + <usize>j * colBytes + (<usize>i << 2);
        v128.store(d, v128.shuffle<f64>(t0, t1, 0, 2));
        v128.store(d + colBytes, v128.shuffle<f64>(t0, t1, 1, 3));
        v128.store(d + colBytes * 2, v128.shuffle<f64>(t2, t3, 0, 2));
        v128.store(d + colBytes * 3, v128.shuffle<f64>(t2, t3, 1, 3));
      }
      for (; j < cols; j++) {
        const s = sRow + (<usize>j << 2);
        const d = d0 + <usize>j * colBytes + (<usize>i << 2);
        store<u32>(d, load<u32>(s));
        store<u32>(d, load<u32>(s + rowBytes), 4);
        store<u32>(d, load<u32>(s + rowBytes * 2), 8);
        store<u32>(d, load<u32>(s + rowBytes * 3), 12);
      }
    }
    for (; i < rows; i++) {
      const sRow = s0 + <usize>i * rowBytes;
      for (let j: i32 = 0; j < cols; j++) {
        store<u32>(d0 + <usize>j * colBytes + (<usize>i << 2), load<u32>(sRow + (<usize>j << 2)));
      }
    }
  }
}

/** n 32-bit words at dst set to `bits`. */
export function ewFill(dst: usize, bits: i32, n: i32): void {
  if (bits == 0) {
    memory.fill(dst, 0, <usize>n << 2);
    return;
  }
  const v = i32x4.splat(bits);
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v);
  for (; j < n; j++) store<i32>(dst + (<usize>j << 2), bits);
}

/**
 * x (outer, n, inner), indices (count) int32: out (outer, count, inner) = x[o, idx[i], :]. Indices are
 * checked by the caller.
 */
export function ewGather(out: usize, x: usize, idx: usize, outer: i32, n: i32, inner: i32, count: i32): void {
  const rowBytes = <usize>inner << 2;
  let d = out;
  for (let o: i32 = 0; o < outer; o++) {
    const base = x + <usize>o * <usize>n * rowBytes;
    for (let i: i32 = 0; i < count; i++) {
      copyRow(d, base + <usize>load<i32>(idx + (<usize>i << 2)) * rowBytes, inner, 1, 1);
      d += rowBytes;
    }
  }
}

/** The adjoint of ewGather: out (outer, n, inner) = 0, then out[o, idx[i], :] += g[o, i, :] (f32). */
export function ewScatterAdd(
  out: usize,
  g: usize,
  idx: usize,
  outer: i32,
  n: i32,
  inner: i32,
  count: i32,
): void {
  const rowBytes = <usize>inner << 2;
  memory.fill(out, 0, <usize>outer * <usize>n * rowBytes);
  let s = g;
  for (let o: i32 = 0; o < outer; o++) {
    const base = out + <usize>o * <usize>n * rowBytes;
    for (let i: i32 = 0; i < count; i++) {
      const d = base + <usize>load<i32>(idx + (<usize>i << 2)) * rowBytes;
      let j: i32 = 0;
      for (; j + 4 <= inner; j += 4) {
        const off = <usize>j << 2;
        v128.store(d + off, f32x4.add(v128.load(d + off), v128.load(s + off)));
      }
      for (; j < inner; j++) {
        const off = <usize>j << 2;
        store<f32>(d + off, load<f32>(d + off) + load<f32>(s + off));
      }
      s += rowBytes;
    }
  }
}

/**
 * a, b, out (outer, n, inner): h_t = a_t · h_{t−1} + b_t along the middle axis, h_{−1} = 0 (the first
 * step is a·0 + b, so a non-finite gate still gives NaN like the reference); with reverse, from the end.
 * f32 throughout; rows of the inner axis run 4 lanes at a time.
 */
export function ewLinearScan(
  out: usize,
  a: usize,
  b: usize,
  outer: i32,
  n: i32,
  inner: i32,
  reverse: i32,
): void {
  const rowBytes = <usize>inner << 2;
  const zero = f32x4.splat(0);
  for (let o: i32 = 0; o < outer; o++) {
    const base = <usize>o * <usize>n * rowBytes;
    if (inner == 1) {
      let h: f32 = 0;
      for (let s: i32 = 0; s < n; s++) {
        const t = reverse ? n - 1 - s : s;
        const off = base + (<usize>t << 2);
        h = load<f32>(a + off) * h + load<f32>(b + off);
        store<f32>(out + off, h);
      }
      continue;
    }
    for (let s: i32 = 0; s < n; s++) {
      const t = reverse ? n - 1 - s : s;
      const off = base + <usize>t * rowBytes;
      const pa = a + off;
      const pb = b + off;
      const po = out + off;
      let j: i32 = 0;
      if (s == 0) {
        for (; j + 4 <= inner; j += 4) {
          const q = <usize>j << 2;
          v128.store(po + q, f32x4.add(f32x4.mul(v128.load(pa + q), zero), v128.load(pb + q)));
        }
        for (; j < inner; j++) {
          const q = <usize>j << 2;
          store<f32>(po + q, load<f32>(pa + q) * 0 + load<f32>(pb + q));
        }
      } else {
        const ph = reverse ? po + rowBytes : po - rowBytes;
        for (; j + 4 <= inner; j += 4) {
          const q = <usize>j << 2;
          v128.store(
            po + q,
            f32x4.add(f32x4.mul(v128.load(pa + q), v128.load(ph + q)), v128.load(pb + q)),
          );
        }
        for (; j < inner; j++) {
          const q = <usize>j << 2;
          store<f32>(po + q, load<f32>(pa + q) * load<f32>(ph + q) + load<f32>(pb + q));
        }
      }
    }
  }
}

// ---- casts ------------------------------------------------------------------------------------------

// JavaScript's ToInt32 of an f32 (what Int32Array stores): truncate, then wrap modulo 2^32; NaN, ±inf → 0.
function toInt32(x: f32): i32 {
  if (abs<f32>(x) < 2147483648.0) return <i32>x;
  if (!(abs<f32>(x) < 9223372036854775808.0)) return 0; // NaN, ±inf, and multiples of 2^40 and up
  return <i32>(<i64>x);
}

/** float32 → int32 like Int32Array assignment of Math.trunc(x). */
export function ewCastF32ToI32(out: usize, x: usize, n: i32): void {
  const limit = f32x4.splat(2147483648.0);
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) {
    const off = <usize>j << 2;
    const v = v128.load(x + off);
    if (v128.all_true<i32>(f32x4.lt(f32x4.abs(v), limit))) {
      v128.store(out + off, i32x4.trunc_sat_f32x4_s(v));
    } else {
      for (let k: i32 = 0; k < 4; k++) {
        const q = off + (<usize>k << 2);
        store<i32>(out + q, toInt32(load<f32>(x + q)));
      }
    }
  }
  for (; j < n; j++) {
    const off = <usize>j << 2;
    store<i32>(out + off, toInt32(load<f32>(x + off)));
  }
}

/** int32 → float32 (round to nearest even). */
export function ewCastI32ToF32(out: usize, x: usize, n: i32): void {
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) {
    const off = <usize>j << 2;
    v128.store(out + off, f32x4.convert_i32x4_s(v128.load(x + off)));
  }
  for (; j < n; j++) {
    const off = <usize>j << 2;
    store<f32>(out + off, <f32>load<i32>(x + off));
  }
}

// ---- a share of an elementwise kernel, for the thread pool -----------------------------------------
// One task of `runTasks('elementwiseTask', …)`: the record at `args` (int32 words) names the kernel
// and its arguments for one contiguous share of the work (src/backends/wasm/elementwise.ts cuts the
// outermost axis, or a flat range at multiples of 16, so each element is computed exactly as in one
// call):
//   0 binary:     op, out, a, b, d0…d3, as0…as3, bs0…bs3
//   1 activation: fn, order, out, x, n
//   2 copy:       dst, src, d0…d5, ds0…ds5, ss0…ss5
//   3 fill:       dst, bits, n
//   4 unary:      op, out, x, n
// (the kind codes: EW_TASK_* of opcodes.json)
// `scratch` is unused: the elementwise kernels need none.
export function elementwiseTask(args: usize, scratch: usize): void {
  const kind = load<i32>(args);
  if (kind == EW_TASK_BINARY) {
    ewBinary(
      taskWord(args, 0),
      <usize>taskWord(args, 1),
      <usize>taskWord(args, 2),
      <usize>taskWord(args, 3),
      taskWord(args, 4),
      taskWord(args, 5),
      taskWord(args, 6),
      taskWord(args, 7),
      taskWord(args, 8),
      taskWord(args, 9),
      taskWord(args, 10),
      taskWord(args, 11),
      taskWord(args, 12),
      taskWord(args, 13),
      taskWord(args, 14),
      taskWord(args, 15),
    );
  } else if (kind == EW_TASK_ACTIVATION) {
    ewActivation(taskWord(args, 0), taskWord(args, 1), <usize>taskWord(args, 2), <usize>taskWord(args, 3), taskWord(args, 4));
  } else if (kind == EW_TASK_COPY) {
    ewCopy(
      <usize>taskWord(args, 0),
      <usize>taskWord(args, 1),
      taskWord(args, 2),
      taskWord(args, 3),
      taskWord(args, 4),
      taskWord(args, 5),
      taskWord(args, 6),
      taskWord(args, 7),
      taskWord(args, 8),
      taskWord(args, 9),
      taskWord(args, 10),
      taskWord(args, 11),
      taskWord(args, 12),
      taskWord(args, 13),
      taskWord(args, 14),
      taskWord(args, 15),
      taskWord(args, 16),
      taskWord(args, 17),
      taskWord(args, 18),
      taskWord(args, 19),
    );
  } else if (kind == EW_TASK_FILL) {
    ewFill(<usize>taskWord(args, 0), taskWord(args, 1), taskWord(args, 2));
  } else if (kind == EW_TASK_UNARY) {
    ewUnary(taskWord(args, 0), <usize>taskWord(args, 1), <usize>taskWord(args, 2), taskWord(args, 3));
  }
}
