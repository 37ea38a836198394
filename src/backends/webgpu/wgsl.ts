/**
 * WGSL pieces shared by the WebGPU kernels: the parameter block, the entry point with a linear
 * invocation index over a 2-D grid of workgroups (grids above the per-dimension limit spread over
 * y), and float32 special functions that match the reference backend (src/backends/reference) to
 * float32 rounding: exact-at-zero log1p, tanh without cancellation, σ without overflow, erfc with
 * relative error < 1.2e−7, and the activation derivatives of order 0–4.
 */
import type { DType } from '../../engine/dtype.js';
import { PARAM_WORDS } from './context.js';

/** Threads per workgroup of the one-thread-per-element kernels. */
export const WORKGROUP = 256;

/** The WGSL scalar type of a dtype's elements. */
export function wgslType(dtype: DType): 'f32' | 'i32' {
  return dtype === 'int32' ? 'i32' : 'f32';
}

export interface StorageDecl {
  name: string;
  type: 'f32' | 'i32' | 'u32';
  write?: boolean;
}

/**
 * Where storage array i is declared: groups 1 and 2 hold the first two alone, group 3 the rest
 * (see GpuContext.pipeline: a bind group per buffer for the first two).
 */
export function storageSlot(i: number): string {
  return i < 2 ? `@group(${i + 1}) @binding(0)` : `@group(3) @binding(${i - 2})`;
}

/**
 * The declarations every kernel starts with: the parameter block (group 0; P(i): word i as u32,
 * PF(i) as f32, PI(i) as i32) and the storage arrays in the order given (storageSlot).
 */
export function header(storage: readonly StorageDecl[]): string {
  const arrays = storage
    .map(
      (s, i) =>
        `${storageSlot(i)} var<storage, ${s.write ? 'read_write' : 'read'}> ${s.name}: array<${s.type}>;`,
    )
    .join('\n');
  return `
struct Params { w: array<vec4<u32>, ${PARAM_WORDS / 4}> }
@group(0) @binding(0) var<uniform> params: Params;
${arrays}
fn P(i: u32) -> u32 { return params.w[i >> 2u][i & 3u]; }
fn PF(i: u32) -> f32 { return bitcast<f32>(P(i)); }
fn PI(i: u32) -> i32 { return bitcast<i32>(P(i)); }
`;
}

/**
 * A `main` with `size` threads per workgroup whose body sees `gid` (the linear invocation index
 * across the whole grid), `group` (the linear workgroup index) and `lid` (the local index).
 */
export function entry(size: number, body: string): string {
  return `
@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let group = wid.y * nwg.x + wid.x;
  let gid = group * ${size}u + lid;
${body}
}
`;
}

/**
 * Float helpers. The compiler may assume that no NaN reaches a comparison (WGSL allows it), so
 * NaN is tested on the bits. Infinity and NaN are made at run time from private variables (a constant
 * expression may not produce them).
 */
export const FLOAT_HELPERS = `
var<private> INF_BITS: u32 = 0x7f800000u;
var<private> NAN_BITS: u32 = 0x7fc00000u;
fn inf() -> f32 { return bitcast<f32>(INF_BITS); }
fn nan() -> f32 { return bitcast<f32>(NAN_BITS); }
fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
// log(1 + x): a series below |x| = 0.1 (where 1 + x would round away digits of x), else log.
// (The compiler may simplify (1 + x) − 1 to x, so the usual correction trick cannot be used.)
fn log1p_(x: f32) -> f32 {
  if (abs(x) < 0.1) {
    return x * (1.0 + x * (-1.0 / 2.0 + x * (1.0 / 3.0 + x * (-1.0 / 4.0 + x * (1.0 / 5.0 +
      x * (-1.0 / 6.0 + x * (1.0 / 7.0 + x * (-1.0 / 8.0))))))));
  }
  return log(1.0 + x);
}
fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn tanh_(x: f32) -> f32 {
  let a = abs(x);
  var t: f32;
  if (a < 0.25) {
    let s = a * a;
    t = a * (1.0 + s * (-1.0 / 3.0 + s * (2.0 / 15.0 + s * (-17.0 / 315.0 + s * (62.0 / 2835.0 + s * (-1382.0 / 155925.0))))));
  } else {
    t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
  }
  return select(t, -t, x < 0.0);
}
// 1 − tanh² = 4e/(1+e)² with e = exp(−2|x|): no cancellation, no overflow.
fn sech2(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  return 4.0 * e / ((1.0 + e) * (1.0 + e));
}
// erfc with relative error below 1.2e-7 everywhere (a Chebyshev fit in t = 1/(1 + |x|/2)).
fn erfc_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r, 2.0 - r, x < 0.0);
}
fn normalCdf(x: f32) -> f32 { return 0.5 * erfc_(-x * 0.70710678118654752); }
fn normalPdf(x: f32) -> f32 { return 0.3989422804014327 * exp(-0.5 * x * x); }
fn sigmoidD(x: f32, n: u32) -> f32 {
  let s = sigmoid_(x);
  if (n == 0u) { return s; }
  let d = s * sigmoid_(-x);
  switch (n) {
    case 1u: { return d; }
    case 2u: { return d * (1.0 - 2.0 * s); }
    case 3u: { return d * (1.0 - 6.0 * s + 6.0 * s * s); }
    default: { return d * (1.0 - 14.0 * s + 36.0 * s * s - 24.0 * s * s * s); }
  }
}
fn tanhD(x: f32, n: u32) -> f32 {
  let t = tanh_(x);
  let d = sech2(x);
  switch (n) {
    case 0u: { return t; }
    case 1u: { return d; }
    case 2u: { return -2.0 * t * d; }
    case 3u: { return -2.0 * d * (1.0 - 3.0 * t * t); }
    default: { return 8.0 * t * d * (2.0 - 3.0 * t * t); }
  }
}
fn siluD(x: f32, n: u32) -> f32 {
  if (n == 0u) { return x * sigmoid_(x); }
  return x * sigmoidD(x, n) + f32(n) * sigmoidD(x, n - 1u);
}
fn geluD(x: f32, n: u32) -> f32 {
  // Beyond |x| ≈ 14 the density underflows: the derivatives of order ≥ 2 are 0 (x⁴ would overflow).
  if (n >= 2u && abs(x) > 20.0 && abs(x) < inf()) { return 0.0; }
  switch (n) {
    case 0u: { return x * normalCdf(x); }
    case 1u: { return x * normalPdf(x) + normalCdf(x); }
    case 2u: { return (2.0 - x * x) * normalPdf(x); }
    case 3u: { return (x * x * x - 4.0 * x) * normalPdf(x); }
    default: { return (-x * x * x * x + 7.0 * x * x - 4.0) * normalPdf(x); }
  }
}
fn softplusD(x: f32, n: u32) -> f32 {
  if (n == 0u) { return max(x, 0.0) + log1p_(exp(-abs(x))); }
  return sigmoidD(x, n - 1u);
}
`;
