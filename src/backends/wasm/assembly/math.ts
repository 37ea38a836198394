// AssemblyScript source of the kernels' shared math, each function written once: e^x (f64 scalars,
// f64x2 lanes of the σ/tanh family, f32x4 lanes), ln x, pow, erfc and the normal distribution (f64;
// GELU's f32x4 lanes use erfc's float32 rational form), σ in f32x4 lanes, the memory's activations
// (SiLU, GELU) with their first two derivatives, the multiply-add of the two kernel builds, and the
// small memory helpers the kernel files share (row products, word copies, pool task records). No
// tables, no Math.* (whose exp/log use lookup tables, i.e. data segments): range reduction and
// polynomials. Imported by the kernel files; nothing here is a module export.

@inline function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function st(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

// ---- f64 scalars: exp, log, pow, erfc, the normal distribution (one of each) ------------------------

export const LN2_HI: f64 = 6.93147180369123816490e-1; // ln 2 split: LN2_HI has its low 32 bits zero
export const LN2_LO: f64 = 1.90821492927058770002e-10;
export const INV_LN2: f64 = 1.4426950408889634;
export const SQRT2: f64 = 1.4142135623730951;
export const SQRT1_2: f64 = 0.7071067811865476;
export const TWO_OVER_SQRT_PI: f64 = 1.1283791670955126;
export const INV_SQRT_PI: f64 = 0.5641895835477563;
export const INV_SQRT_2PI: f64 = 0.3989422804014327;

// 2^k as an f64, for -1022 <= k <= 1023.
// @ts-ignore: decorator
@inline
export function pow2(k: i32): f64 {
  return reinterpret<f64>(<i64>(k + 1023) << 52);
}

/**
 * e^x to about 2e-16 relative: x = k ln2 + r with |r| <= ln2 / 2, e^r by its Taylor polynomial of
 * degree 12 (truncation error < 2e-16), then scaled by 2^k (in two steps near the ends of the range).
 */
export function expF64(x: f64): f64 {
  if (x != x) return x;
  if (x > 709.782712893384) return Infinity;
  if (x < -745.2) return 0;
  const kf = floor(x * INV_LN2 + 0.5);
  const r = x - kf * LN2_HI - kf * LN2_LO;
  let p = 2.08767569878681e-9;
  p = p * r + 2.505210838544172e-8;
  p = p * r + 2.755731922398589e-7;
  p = p * r + 0.0000027557319223985893;
  p = p * r + 0.0000248015873015873;
  p = p * r + 0.0001984126984126984;
  p = p * r + 0.001388888888888889;
  p = p * r + 0.008333333333333333;
  p = p * r + 0.041666666666666664;
  p = p * r + 0.16666666666666666;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const k = <i32>kf;
  if (k > 1023) return p * pow2(1023) * pow2(k - 1023);
  if (k < -1022) return p * pow2(-1022) * pow2(k + 1022);
  return p * pow2(k);
}

/**
 * ln x to about 2e-16 relative: x = 2^e m with m in [√½, √2), ln m = 2 atanh(s), s = (m − 1)/(m + 1),
 * |s| <= 0.172, by its odd series to s^19 (truncation error < 1e-17).
 */
export function logF64(x: f64): f64 {
  if (!(x > 0)) return x == 0 ? -Infinity : NaN;
  if (x == Infinity) return x;
  let e: i32 = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984.0; // 2^54: subnormal to normal
    e = -54;
  }
  const bits = reinterpret<i64>(x);
  e += <i32>(bits >> 52) - 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (m > SQRT2) {
    m *= 0.5;
    e += 1;
  }
  const f = m - 1;
  const s = f / (2 + f);
  const z = s * s;
  let p = 0.05263157894736842;
  p = p * z + 0.058823529411764705;
  p = p * z + 0.06666666666666667;
  p = p * z + 0.07692307692307693;
  p = p * z + 0.09090909090909091;
  p = p * z + 0.1111111111111111;
  p = p * z + 0.14285714285714285;
  p = p * z + 0.2;
  p = p * z + 0.3333333333333333;
  const ef = <f64>e;
  return ef * LN2_HI + (2 * s + 2 * s * z * p + ef * LN2_LO);
}

/** ln(1 + x), accurate for small x (Goldberg's trick: u = 1 + x rounded, ln u · x / (u − 1)). */
export function log1pF64(x: f64): f64 {
  if (x == Infinity) return x;
  const u = 1 + x;
  if (u == 1) return x;
  return logF64(u) * (x / (u - 1));
}

/** JavaScript's Math.pow on f64, computed as e^(b ln|a|) with the sign and the special cases. */
export function powF64(a: f64, b: f64): f64 {
  if (b == 0) return 1;
  if (a != a || b != b) return NaN;
  let sign: f64 = 1;
  if (a < 0) {
    const integer = trunc(b) == b;
    if (!integer && a != -Infinity) return NaN;
    // Odd integers: f32 integers of 2^24 and up are even.
    if (integer && abs(b) < 16777216.0 && (<i64>b & 1) != 0) sign = -1;
    a = -a;
  } else if (a == 0 && reinterpret<i64>(a) < 0) {
    // −0: like +0 but odd exponents keep the sign.
    if (abs(b) < 16777216.0 && trunc(b) == b && (<i64>b & 1) != 0) sign = -1;
  }
  if (a == 1) return b == Infinity || b == -Infinity ? NaN : sign;
  return sign * expF64(b * logF64(a));
}

/** erfc(z) for z >= 0 (f64, relative error below 1e-9): series below 2, continued fraction above. */
export function erfcNonNegative(z: f64): f64 {
  if (z < 2) {
    // erf(z) = 2/√π e^{−z²} Σ 2ⁿ z^{2n+1} / (1·3·…·(2n+1)), all terms positive.
    const z2 = z * z;
    let term = z;
    let total = z;
    for (let n: i32 = 1; n < 64; n++) {
      term *= (2 * z2) / <f64>(2 * n + 1);
      total += term;
      if (term < total * 1e-17) break;
    }
    return 1 - TWO_OVER_SQRT_PI * expF64(-z2) * total;
  }
  if (z > 27) return 0;
  // erfc(z) = e^{−z²}/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), 24 levels (< 1e-9 at z = 2).
  let f = z;
  for (let k: i32 = 24; k >= 1; k--) f = z + (<f64>k * 0.5) / f;
  return (expF64(-z * z) * INV_SQRT_PI) / f;
}

/** Standard normal CDF Φ(x). */
export function normalCdf(x: f64): f64 {
  const tail = 0.5 * erfcNonNegative(abs(x) * SQRT1_2);
  return x >= 0 ? 1 - tail : tail;
}

/** Standard normal density φ(x). */
export function normalPdf(x: f64): f64 {
  return INV_SQRT_2PI * expF64(-0.5 * x * x);
}

// ---- f64x2: exp of non-positive lanes (the σ/tanh family of elementwise.ts) ---------------------

// 2^k for f64x2 lanes holding integers in [-1022, 1023]: k + 1.5·2^52 has k (two's complement) in its
// low mantissa bits, so subtracting the bits of 1.5·2^52 gives k as an i64.
// @ts-ignore: decorator
@inline
function pow2V(k: v128): v128 {
  const t = f64x2.add(k, f64x2.splat(6755399441055744.0));
  const ki = i64x2.sub(t, i64x2.splat(0x4338000000000000));
  return i64x2.shl(i64x2.add(ki, i64x2.splat(1023)), 52);
}

// e^x for f64x2 lanes with x <= 0 (or NaN), for results rounded to float32 (the σ/tanh family of
// elementwise.ts): expF64's reduction with a shorter polynomial (below); below −708, e^−708 (≈ 3e−308,
// 0 in float32 like every value there), so 2^k fits one exponent field.
// @ts-ignore: decorator
@inline
export function expNonPositiveV(x: v128): v128 {
  x = f64x2.pmax(x, f64x2.splat(-708)); // NaN stays NaN
  const kf = f64x2.nearest(f64x2.mul(x, f64x2.splat(INV_LN2)));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(kf, f64x2.splat(LN2_HI))), f64x2.mul(kf, f64x2.splat(LN2_LO)));
  // Its Taylor polynomial to degree 9 (truncation < 7e−12 relative, 8000× below a float32 half-ulp),
  // in Estrin's scheme (a shorter dependency chain): pairs c_i + c_{i+1} r, then powers r², r⁴, r⁸.
  const r2 = f64x2.mul(r, r);
  const r4 = f64x2.mul(r2, r2);
  const a0 = f64x2.add(f64x2.splat(1.0), r);
  const a1 = f64x2.add(f64x2.splat(0.5), f64x2.mul(r, f64x2.splat(0.16666666666666666)));
  const a2 = f64x2.add(f64x2.splat(0.041666666666666664), f64x2.mul(r, f64x2.splat(0.008333333333333333)));
  const a3 = f64x2.add(f64x2.splat(0.001388888888888889), f64x2.mul(r, f64x2.splat(0.0001984126984126984)));
  const a4 = f64x2.add(f64x2.splat(0.0000248015873015873), f64x2.mul(r, f64x2.splat(0.0000027557319223985893)));
  const b0 = f64x2.add(a0, f64x2.mul(r2, a1));
  const b1 = f64x2.add(a2, f64x2.mul(r2, a3));
  const p = f64x2.add(f64x2.add(b0, f64x2.mul(r4, b1)), f64x2.mul(f64x2.mul(r4, r4), a4));
  return f64x2.mul(p, pow2V(kf));
}

// ---- f32x4: exp (one), σ, the memory's activations -----------------------------------------------

const LOG2E_F32: f32 = 1.44269504;
const LN2_HI_F32: f32 = 0.693359375; // few mantissa bits: n * LN2_HI is exact for |n| <= 256
const LN2_LO_F32: f32 = -2.12194440e-4;
const EXP_MIN: f32 = -87.33; // below: result flushed to 0 (exp(-87.33) is about FLT_MIN)
const EXP_MAX: f32 = 88.8; // above: +inf (2¹²⁸ in the exponent bits)
const ROUNDING_SHIFT: f32 = 12582912.0; // 1.5·2²³: v + it rounds v to an integer (|v| < 2²²)
const ROUNDING_SHIFT_BITS: i32 = 0x4b400000; // its bits; v + it has bits ROUNDING_SHIFT_BITS + v

// e^x in four float32 lanes, THE float32 exp of the kernels (exp1: one lane): x = n ln2 + r with
// |r| <= ln2/2 (Cody-Waite), exp(r) = 1 + r + r² p(r) with the Taylor polynomial to degree 7
// (truncation < 1e-8 relative), times 2^n built in the exponent bits. Max error about 1 ulp for x in
// [-87.33, 88.3]; 0 below -87.33 (and for -inf); +inf above ~88.72; NaN stays NaN.
// @ts-ignore: decorator
@inline
export function exp4(x: v128): v128 {
  // x clamped to [EXP_MIN, EXP_MAX] (NaN stays: pmax(a, b) = a < b ? b : a, pmin(a, b) = b < a ? b : a)
  const xc = f32x4.pmin(f32x4.pmax(x, f32x4.splat(EXP_MIN)), f32x4.splat(EXP_MAX));
  return v128.andnot(expInRange4(xc), f32x4.lt(x, f32x4.splat(EXP_MIN)));
}

// exp4's arithmetic without its clamp and flush: e^x for x in [EXP_MIN, EXP_MAX] (NaN stays NaN);
// lanes outside that range come out as garbage, so a caller that can get them masks them itself
// (softmax weights: x <= 0, zero below ln 2⁻⁶⁴ and for -inf, see attention.ts).
// @ts-ignore: decorator
@inline
export function expInRange4(x: v128): v128 {
  // n = x·log₂e rounded to nearest (ties to even) by adding 1.5·2²³: n sits in the low mantissa bits
  const shifted = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E_F32)), f32x4.splat(ROUNDING_SHIFT));
  const nf = f32x4.sub(shifted, f32x4.splat(ROUNDING_SHIFT));
  let r = f32x4.sub(x, f32x4.mul(nf, f32x4.splat(LN2_HI_F32)));
  r = f32x4.sub(r, f32x4.mul(nf, f32x4.splat(LN2_LO_F32)));
  let p = f32x4.add(f32x4.mul(f32x4.splat(<f32>(1.0 / 5040.0)), r), f32x4.splat(<f32>(1.0 / 720.0)));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(<f32>(1.0 / 120.0)));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(<f32>(1.0 / 24.0)));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(<f32>(1.0 / 6.0)));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(<f32>0.5));
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(r, r), p), r), f32x4.splat(<f32>1));
  const scale = i32x4.shl(i32x4.add(shifted, i32x4.splat(127 - ROUNDING_SHIFT_BITS)), 23); // 2ⁿ
  return f32x4.mul(y, scale);
}

// @ts-ignore: decorator
@inline
export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

export const SILU: i32 = 0;

// The order-th derivative (0, 1, 2) of φ at x: silu(x) = x σ(x) or gelu(x) = x Φ(x).
export function activation(act: i32, order: i32, x: f64): f64 {
  if (act == SILU) {
    if (x < -<f64>TAIL_SILU) return 0;
    if (x > <f64>TAIL_SILU) return order == 0 ? x : order == 1 ? 1 : 0;
    const e = expF64(-x);
    const s = 1.0 / (1.0 + e); // σ(x)
    const c = e / (1.0 + e); // 1 − σ(x), without cancellation
    if (order == 0) return x * s;
    if (order == 1) return s * (1.0 + x * c);
    return s * c * (2.0 + x * (c - s));
  }
  if (x < -<f64>TAIL_GELU) return 0;
  if (x > <f64>TAIL_GELU) return order == 0 ? x : order == 1 ? 1 : 0;
  const pdf = normalPdf(x);
  if (order == 0) return x * normalCdf(x);
  if (order == 1) return normalCdf(x) + x * pdf;
  return (2.0 - x * x) * pdf;
}

// Φ(x) = erfc(−x/√2)/2 in four float32 lanes: erfc by the Chebyshev-fitted rational in
// t = 1/(1 + |u|/2) (Numerical Recipes' erfcc, fractional error < 1.2e−7, i.e. ~2 float32 ulp): the
// float32-lane form of erfcNonNegative above, which the f64 paths use.
@inline export function normalCdf4(x: v128): v128 {
  const u = f32x4.mul(x, f32x4.splat(<f32>-SQRT1_2));
  const z = f32x4.abs(u);
  const one = f32x4.splat(1.0);
  const t = f32x4.div(one, f32x4.add(one, f32x4.mul(f32x4.splat(0.5), z)));
  let p = f32x4.splat(0.17087277);
  p = f32x4.add(f32x4.mul(t, p), f32x4.splat(-0.82215223));
  p = f32x4.add(f32x4.mul(t, p), f32x4.splat(1.48851587));
  p = f32x4.add(f32x4.mul(t, p), f32x4.splat(-1.13520398));
  p = f32x4.add(f32x4.mul(t, p), f32x4.splat(0.27886807));
  p = f32x4.add(f32x4.mul(t, p), f32x4.splat(-0.18628806));
  p = f32x4.add(f32x4.mul(t, p), f32x4.splat(0.09678418));
  p = f32x4.add(f32x4.mul(t, p), f32x4.splat(0.37409196));
  p = f32x4.add(f32x4.mul(t, p), f32x4.splat(1.00002368));
  const arg = f32x4.add(f32x4.sub(f32x4.mul(t, p), f32x4.mul(z, z)), f32x4.splat(-1.26551223));
  const r = f32x4.mul(t, exp4(arg)); // erfc(|u|)
  const erfc = v128.bitselect(r, f32x4.sub(f32x4.splat(2.0), r), f32x4.ge(u, f32x4.splat(0)));
  return f32x4.mul(f32x4.splat(0.5), erfc);
}

// Activation tails are flushed to exact zeros: σ(z) for z < −TAIL_SILU, 1 − σ(z) for z > TAIL_SILU,
// and Φ, the normal density for |z| > TAIL_GELU (all below ~1e−11). Left in, such values make
// denormals further down (products of small numbers), which cost ~70× on some x86 cores.
const TAIL_SILU: f32 = 28.0;
const TAIL_GELU: f32 = 8.0;

// φ, φ', φ'' of four lanes z, stored at offset o of each output that is not 0.
@inline export function activation4(act: i32, z: v128, o: usize, out0: usize, out1: usize, out2: usize): void {
  const one = f32x4.splat(1.0);
  const two = f32x4.splat(2.0);
  const zero = f32x4.splat(0.0);
  if (act == SILU) {
    const e = exp4(f32x4.pmin(f32x4.neg(z), f32x4.splat(80))); // finite: c = e·s never ∞·0 (NaN stays)
    let s = f32x4.div(one, f32x4.add(one, e)); // σ(z)
    let c = f32x4.mul(e, s); // 1 − σ(z)
    s = v128.bitselect(zero, s, f32x4.lt(z, f32x4.splat(-TAIL_SILU)));
    c = v128.bitselect(zero, c, f32x4.gt(z, f32x4.splat(TAIL_SILU)));
    if (out0 != 0) v128.store(out0 + o, f32x4.mul(z, s));
    if (out1 != 0) v128.store(out1 + o, f32x4.mul(s, f32x4.add(one, f32x4.mul(z, c))));
    if (out2 != 0) {
      const inner = f32x4.add(two, f32x4.mul(z, f32x4.sub(c, s)));
      v128.store(out2 + o, f32x4.mul(f32x4.mul(s, c), inner));
    }
  } else {
    const zz = f32x4.mul(z, z);
    let pdf = f32x4.mul(f32x4.splat(<f32>INV_SQRT_2PI), exp4(f32x4.mul(f32x4.splat(-0.5), zz)));
    let cdf = normalCdf4(z);
    const tail = f32x4.gt(f32x4.abs(z), f32x4.splat(TAIL_GELU));
    pdf = v128.bitselect(zero, pdf, tail);
    cdf = v128.bitselect(v128.bitselect(zero, one, f32x4.lt(z, zero)), cdf, tail);
    if (out0 != 0) v128.store(out0 + o, f32x4.mul(z, cdf));
    if (out1 != 0) v128.store(out1 + o, f32x4.add(cdf, f32x4.mul(z, pdf)));
    if (out2 != 0) v128.store(out2 + o, f32x4.mul(f32x4.sub(two, zz), pdf));
  }
}

// φ, φ', φ'' of x (any output pointer may be 0 to skip it). Two vectors per step, so that the
// out-of-order core overlaps their exp chains.
export function activations(act: i32, x: usize, out0: usize, out1: usize, out2: usize, count: i32): void {
  let i: i32 = 0;
  for (; i + 8 <= count; i += 8) {
    const o = <usize>i << 2;
    const z0 = v128.load(x + o);
    const z1 = v128.load(x + o, 16);
    activation4(act, z0, o, out0, out1, out2);
    activation4(act, z1, o + 16, out0, out1, out2);
  }
  for (; i + 4 <= count; i += 4) {
    const o = <usize>i << 2;
    activation4(act, v128.load(x + o), o, out0, out1, out2);
  }
  for (; i < count; i++) {
    const z = <f64>ld(x, i);
    if (out0 != 0) st(out0, i, <f32>activation(act, 0, z));
    if (out1 != 0) st(out1, i, <f32>activation(act, 1, z));
    if (out2 != 0) st(out2, i, <f32>activation(act, 2, z));
  }
}

// σ(x) in four lanes, 1 / (1 + e^{−x}); lanes with σ < 2⁻⁶⁴ (x < −44.36) are exact zeros: a
// sigmoid that small is nothing beside the values it gates or adds to, but multiplied on it would
// land among the float32 denormals, which x86 cores compute on 10–100× slower.
// @ts-ignore: decorator
@inline
export function sigmoid4(x: v128): v128 {
  const one = f32x4.splat(1);
  const s = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(x))));
  return v128.andnot(s, f32x4.lt(x, f32x4.splat(LN_2_POW_MINUS_64)));
}

/** ln 2⁻⁶⁴: the softmax weights and sigmoids below e^this are taken as zeros (never denormals). */
export const LN_2_POW_MINUS_64: f32 = -44.36141956;

// c + a·b in four lanes: one fused multiply-add where the module is built with relaxed SIMD (the
// second build, kernels-relaxed, loaded where the runtime validates it: one rounding instead of
// two), else a multiply then an add (exact IEEE float32, the default build).
// @ts-ignore: decorator
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// The maximum of n floats at p (-inf for n = 0; NaN when one is NaN). pmax is one instruction where
// f32x4.max's NaN rules cost V8 several, so NaN lanes are flagged apart (a softmax row with a NaN
// score stays NaN). Measured: the small SWA step's attention forward 8.2 → 6.2 ms with the inlining.
// @ts-ignore: decorator
@inline
export function maxOf(p: usize, n: i32): f32 {
  let mv = f32x4.splat(f32.NEGATIVE_INFINITY);
  let nan = f32x4.splat(0);
  let c: i32 = 0;
  for (; c + 4 <= n; c += 4) {
    const x = v128.load(p + (<usize>c << 2));
    mv = f32x4.pmax(mv, x);
    nan = v128.or(nan, f32x4.ne(x, x));
  }
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; c < n; c++) m = max(m, load<f32>(p + (<usize>c << 2)));
  return v128.any_true(nan) ? f32.NaN : m;
}

// out[j] = x[j] ⊙ y[j] over `cols` floats (out may be x or y).
export function mulRow(out: usize, x: usize, y: usize, cols: i32): void {
  let j: i32 = 0;
  for (; j + 4 <= cols; j += 4) {
    const o = <usize>j << 2;
    v128.store(out + o, f32x4.mul(v128.load(x + o), v128.load(y + o)));
  }
  for (; j < cols; j++) st(out, j, ld(x, j) * ld(y, j));
}

// dst[j] += s·src[j] over `count` floats.
export function addScaled(dst: usize, s: f32, src: usize, count: i32): void {
  const sv = f32x4.splat(s);
  let j: i32 = 0;
  for (; j + 4 <= count; j += 4) {
    const o = <usize>j << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), f32x4.mul(sv, v128.load(src + o))));
  }
  for (; j < count; j++) st(dst, j, ld(dst, j) + s * ld(src, j));
}

// n 32-bit words from src to dst (no overlap). memory.copy leaves the module in V8, a call that
// costs more than copying a short row (a head's 16 or 32 floats), so rows under 256 words are
// copied on lanes. Measured: the small SWA step's head transposes 2.6 → 1.9 ms.
// @ts-ignore: decorator
@inline
export function copyWords(dst: usize, src: usize, n: i32): void {
  if (n >= 256) {
    memory.copy(dst, src, <usize>n << 2);
    return;
  }
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
  for (; j < n; j++) store<u32>(dst + (<usize>j << 2), load<u32>(src + (<usize>j << 2)));
}

// n 32-bit zero words at dst: on lanes under 256 words, memory.fill above (see copyWords). Measured:
// the small SWA step's attention backward, which clears parts of its score rows, 7.8 → 7.0 ms.
// @ts-ignore: decorator
@inline
export function zeroWords(dst: usize, n: i32): void {
  if (n >= 256) {
    memory.fill(dst, 0, <usize>n << 2);
    return;
  }
  const z = i32x4.splat(0);
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), z);
  for (; j < n; j++) store<u32>(dst + (<usize>j << 2), 0);
}

// ---- denormal guards (why: assembly/memory.ts, "denormal-proof state") ------------------------

// Carried state below 2⁻⁶⁰ (8.7e−19) is flushed: such an entry changes no output beside anything
// of normal size (it is 2⁻³⁶ below float32's resolution of a unit-scale value), and a memory whose
// every entry is below it retrieves < 1e−36 (depth 2), which the layer's RMSNorm (ε = 1e−6) turns
// into nothing. (SPEC's own tests keep memories that collapse to ~1e−15 within 1e−4.)
export const FLUSH_STATE: f32 = 8.6736174e-19; // 2⁻⁶⁰

// Entries of `count` floats at p with |x| < below become exact zeros (NaN and ±∞ stay).
export function flushTiny(p: usize, count: i32, below: f32): void {
  const limit = f32x4.splat(below);
  let j: i32 = 0;
  for (; j + 4 <= count; j += 4) {
    const o = <usize>j << 2;
    const x = v128.load(p + o);
    v128.store(p + o, v128.andnot(x, f32x4.lt(f32x4.abs(x), limit)));
  }
  for (; j < count; j++) if (abs<f32>(ld(p, j)) < below) st(p, j, 0);
}

// Word i of a pool task's arguments: the int32 words after the record's kind (elementwiseTask,
// blocksTask).
// @ts-ignore: decorator
@inline
export function taskWord(args: usize, i: i32): i32 {
  return load<i32>(args + (<usize>(i + 1) << 2));
}
