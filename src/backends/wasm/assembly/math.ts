// AssemblyScript source of the kernels' shared math: exp, erfc and the memory's activations
// (SiLU, GELU) with their first two derivatives, in f64 scalars and f32x4 lanes. No tables, no
// Math.* (whose exp/log use lookup tables, i.e. data segments): range reduction and polynomials.
// Imported by the kernel files; nothing here is a module export.

@inline function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function st(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

// e^x in double precision (relative error ~1e−15 for |x| ≤ 700; clamped outside).
export function expd(x: f64): f64 {
  if (x > 700.0) x = 700.0;
  if (x < -700.0) x = -700.0;
  const k = nearest<f64>(x * 1.4426950408889634);
  const r = x - k * 6.93147180369123816490e-1 - k * 1.90821492927058770002e-10; // |r| ≤ ln2/2
  let p = 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  return p * reinterpret<f64>((<i64>k + 1023) << 52);
}

// erfc(x), fractional error below ~1.2e−7 everywhere (Chebyshev-fitted rational in t = 1/(1 + z/2)).
export function erfcd(x: f64): f64 {
  const z = abs<f64>(x);
  const t = 1.0 / (1.0 + 0.5 * z);
  let p = 0.17087277;
  p = -0.82215223 + t * p;
  p = 1.48851587 + t * p;
  p = -1.13520398 + t * p;
  p = 0.27886807 + t * p;
  p = -0.18628806 + t * p;
  p = 0.09678418 + t * p;
  p = 0.37409196 + t * p;
  p = 1.00002368 + t * p;
  const r = t * expd(-z * z - 1.26551223 + t * p);
  return x >= 0 ? r : 2.0 - r;
}

export const SILU: i32 = 0;
const INV_SQRT2: f64 = 0.7071067811865476;
const INV_SQRT_2PI: f64 = 0.3989422804014327;

// The order-th derivative (0, 1, 2) of φ at x: silu(x) = x σ(x) or gelu(x) = x Φ(x).
export function activation(act: i32, order: i32, x: f64): f64 {
  if (act == SILU) {
    if (x < -<f64>TAIL_SILU) return 0;
    if (x > <f64>TAIL_SILU) return order == 0 ? x : order == 1 ? 1 : 0;
    const e = expd(-x);
    const s = 1.0 / (1.0 + e); // σ(x)
    const c = e / (1.0 + e); // 1 − σ(x), without cancellation
    if (order == 0) return x * s;
    if (order == 1) return s * (1.0 + x * c);
    return s * c * (2.0 + x * (c - s));
  }
  if (x < -<f64>TAIL_GELU) return 0;
  if (x > <f64>TAIL_GELU) return order == 0 ? x : order == 1 ? 1 : 0;
  const pdf = INV_SQRT_2PI * expd(-0.5 * x * x);
  if (order == 0) return x * 0.5 * erfcd(-x * INV_SQRT2);
  if (order == 1) return 0.5 * erfcd(-x * INV_SQRT2) + x * pdf;
  return (2.0 - x * x) * pdf;
}

// e^x in four float32 lanes (relative error ~2e−7; x clamped to [−80, 88], so never 0, ∞ or a
// denormal: results stay ≥ 1.8e−35, and so do their products with the factors used below).
// k = round(x / ln 2) by the 1.5·2²³ trick (its bits minus the magic's are k), r = x − k ln 2,
// e^r by its degree-6 Taylor polynomial (|r| ≤ ln2/2: remainder < 1.3e−7), times 2^k from bits.
@inline export function exp4(x: v128): v128 {
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-80.0)), f32x4.splat(88.0));
  const magic = f32x4.splat(12582912.0);
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504)), magic);
  const k = f32x4.sub(t, magic);
  let r = f32x4.sub(x, f32x4.mul(k, f32x4.splat(0.693359375)));
  r = f32x4.add(r, f32x4.mul(k, f32x4.splat(2.12194440e-4))); // ln 2 = 0.693359375 − 2.12194440e−4
  let p = f32x4.splat(1.0 / 720.0);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 120.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 24.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 6.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(0.5));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  const scale = i32x4.shl(i32x4.add(i32x4.sub(t, magic), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

// Φ(x) = erfc(−x/√2)/2 in four lanes (same rational form as erfcd).
@inline export function normalCdf4(x: v128): v128 {
  const u = f32x4.mul(x, f32x4.splat(<f32>-INV_SQRT2));
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
    const e = exp4(f32x4.neg(z));
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
