// AssemblyScript source of the fused optimizer steps (JS side: src/backends/wasm/fused.ts; the
// engine op: src/engine/ops/optim.ts). Memory contract as matmul.ts: no static data, every address
// passed in, outputs never overlap inputs.
//
// adamwStep computes, per element and in float32 with the same operations in the same order as the
// composed engine ops (so the results are the same bits):
//   m' = m·β₁ + g·(1−β₁),  v' = v·β₂ + g²·(1−β₂),  p' = p·shrink − (m' / (√v'·invSqrtBc2 + ε))·stepSize
// with two differences that only touch the float32 denormals, which x86 cores compute on 10–100×
// slower and WebAssembly cannot flush: g² is 0 when |g| < 2⁻⁶³ (its exact value is below 2⁻¹²⁶),
// and moments below 2⁻¹²⁶ are stored as 0 (a moment unused for long decays by β per step into
// them: an embedding row of a byte that never occurs, say).

const FLT_MIN: f32 = 1.17549435e-38; // 2⁻¹²⁶
const SQRT_FLT_MIN: f32 = 1.08420217e-19; // 2⁻⁶³

// @ts-ignore: decorator
@inline
function flushed(x: v128): v128 {
  return v128.andnot(x, f32x4.lt(f32x4.abs(x), f32x4.splat(FLT_MIN)));
}

/**
 * One AdamW step over n floats: reads p, g, m, v, writes outP, outM, outV (byte addresses). The
 * scalars are float32 values of what the engine op passes (oneMinusBeta1 = f32(1 − β₁), …).
 */
export function adamwStep(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  outP: usize,
  outM: usize,
  outV: usize,
  n: i32,
  beta1: f32,
  oneMinusBeta1: f32,
  beta2: f32,
  oneMinusBeta2: f32,
  eps: f32,
  stepSize: f32,
  invSqrtBc2: f32,
  shrink: f32,
): void {
  const b1 = f32x4.splat(beta1);
  const c1 = f32x4.splat(oneMinusBeta1);
  const b2 = f32x4.splat(beta2);
  const c2 = f32x4.splat(oneMinusBeta2);
  const ev = f32x4.splat(eps);
  const sv = f32x4.splat(stepSize);
  const iv = f32x4.splat(invSqrtBc2);
  const kv = f32x4.splat(shrink);
  const small = f32x4.splat(SQRT_FLT_MIN);
  const decay = shrink != 1;
  let i: i32 = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = v128.load(g + o);
    const g2 = v128.andnot(f32x4.mul(gv, gv), f32x4.lt(f32x4.abs(gv), small));
    const mn = flushed(f32x4.add(f32x4.mul(v128.load(m + o), b1), f32x4.mul(gv, c1)));
    const vn = flushed(f32x4.add(f32x4.mul(v128.load(v + o), b2), f32x4.mul(g2, c2)));
    const dir = f32x4.div(mn, f32x4.add(f32x4.mul(f32x4.sqrt(vn), iv), ev));
    let pv = v128.load(p + o);
    if (decay) pv = f32x4.mul(pv, kv);
    v128.store(outP + o, f32x4.sub(pv, f32x4.mul(dir, sv)));
    v128.store(outM + o, mn);
    v128.store(outV + o, vn);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gs = load<f32>(g + o);
    const g2: f32 = abs<f32>(gs) < SQRT_FLT_MIN ? 0 : gs * gs;
    let mn = load<f32>(m + o) * beta1 + gs * oneMinusBeta1;
    let vn = load<f32>(v + o) * beta2 + g2 * oneMinusBeta2;
    if (abs<f32>(mn) < FLT_MIN) mn = 0;
    if (abs<f32>(vn) < FLT_MIN) vn = 0;
    const dir = mn / (sqrt<f32>(vn) * invSqrtBc2 + eps);
    const pv = decay ? load<f32>(p + o) * shrink : load<f32>(p + o);
    store<f32>(outP + o, pv - dir * stepSize);
    store<f32>(outM + o, mn);
    store<f32>(outV + o, vn);
  }
}
