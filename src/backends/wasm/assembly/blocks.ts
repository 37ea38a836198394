// AssemblyScript source of the fused training blocks (JS side: src/backends/wasm/fused.ts; engine
// ops: src/engine/ops/blocks.ts): RMSNorm, the SwiGLU nonlinearity and softmax cross-entropy,
// forward and backward, each one pass over its rows instead of a chain of elementwise kernels.
// Memory contract as matmul.ts: no static data, every address passed in, outputs never overlap
// inputs. Sums are accumulated in f64.

import { exp4, LN_2_POW_MINUS_64, logF64, sigmoid4 } from './math';

@inline function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function st(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

// ---- RMSNorm ----------------------------------------------------------------------------------------
// y = x · r ⊙ s per row of n, r = 1/√(mean(x²) + ε); row i uses scale row ⌊i / repeat⌋ mod
// scaleRows (scale = 0: none). Backward, u = g ⊙ s: dx = r·u − x · r³ · Σ(u ⊙ x) / n and
// ds[row of i] += g ⊙ x · r.

// @ts-ignore: decorator
@inline
function scaleRow(scale: usize, i: i32, n: i32, scaleRows: i32, repeat: i32): usize {
  return scale + (<usize>(((i / repeat) % scaleRows) * n) << 2);
}

/** out (rows × n) = RMSNorm(x) ⊙ scale; rinv (rows) receives r. */
export function rmsNormForward(
  x: usize,
  scale: usize,
  out: usize,
  rinv: usize,
  rows: i32,
  n: i32,
  scaleRows: i32,
  repeat: i32,
  eps: f32,
): void {
  for (let i: i32 = 0; i < rows; i++) {
    const xr = x + (<usize>(i * n) << 2);
    const or = out + (<usize>(i * n) << 2);
    let sum: f64 = 0;
    for (let j: i32 = 0; j < n; j++) sum += <f64>ld(xr, j) * <f64>ld(xr, j);
    // the composed op: mean in f32, + ε, rsqrt in f64 rounded to f32
    const r = <f32>(1 / Math.sqrt(<f64>(<f32>(<f32>sum / <f32>n) + eps)));
    st(rinv, i, r);
    const rv = f32x4.splat(r);
    let j: i32 = 0;
    if (scale == 0) {
      for (; j + 4 <= n; j += 4) v128.store(or + (<usize>j << 2), f32x4.mul(v128.load(xr + (<usize>j << 2)), rv));
      for (; j < n; j++) st(or, j, ld(xr, j) * r);
    } else {
      const sr = scaleRow(scale, i, n, scaleRows, repeat);
      for (; j + 4 <= n; j += 4) {
        const o = <usize>j << 2;
        v128.store(or + o, f32x4.mul(f32x4.mul(v128.load(xr + o), rv), v128.load(sr + o)));
      }
      for (; j < n; j++) st(or, j, ld(xr, j) * r * ld(sr, j));
    }
  }
}

/** dx (rows × n) and, with a scale, dscale (scaleRows × n, zeroed here) from g. */
export function rmsNormBackward(
  x: usize,
  scale: usize,
  rinv: usize,
  g: usize,
  dx: usize,
  dscale: usize,
  rows: i32,
  n: i32,
  scaleRows: i32,
  repeat: i32,
): void {
  if (scale != 0) memory.fill(dscale, 0, <usize>(scaleRows * n) << 2);
  for (let i: i32 = 0; i < rows; i++) {
    const xr = x + (<usize>(i * n) << 2);
    const gr = g + (<usize>(i * n) << 2);
    const dr = dx + (<usize>(i * n) << 2);
    const r = ld(rinv, i);
    const sr: usize = scale == 0 ? 0 : scaleRow(scale, i, n, scaleRows, repeat);
    let dot: f64 = 0;
    for (let j: i32 = 0; j < n; j++) {
      const u = scale == 0 ? ld(gr, j) : ld(gr, j) * ld(sr, j);
      dot += <f64>u * <f64>ld(xr, j);
    }
    const c = <f32>(((<f64>r * <f64>r * <f64>r) * dot) / <f64>n);
    for (let j: i32 = 0; j < n; j++) {
      const u = scale == 0 ? ld(gr, j) : ld(gr, j) * ld(sr, j);
      st(dr, j, r * u - ld(xr, j) * c);
    }
    if (scale != 0) {
      const ds = scaleRow(dscale, i, n, scaleRows, repeat);
      for (let j: i32 = 0; j < n; j++) st(ds, j, ld(ds, j) + ld(gr, j) * ld(xr, j) * r);
    }
  }
}

// ---- SwiGLU ------------------------------------------------------------------------------------------
// out = silu(a) ⊙ b = a σ(a) ⊙ b; backward: da = g ⊙ b ⊙ σ(a)(1 + a(1 − σ(a))), db = g ⊙ silu(a).

/** out[i] = silu(a[i]) · b[i] for i < n. */
export function swigluForward(a: usize, b: usize, out: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const av = v128.load(a + o);
    v128.store(out + o, f32x4.mul(f32x4.mul(av, sigmoid4(av)), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const av = f32x4.splat(ld(a, i));
    st(out, i, f32x4.extract_lane(f32x4.mul(av, sigmoid4(av)), 0) * ld(b, i));
  }
}

/** da, db from the cotangent g of swigluForward. */
export function swigluBackward(a: usize, b: usize, g: usize, da: usize, db: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i: i32 = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const av = v128.load(a + o);
    const s = sigmoid4(av);
    const gv = v128.load(g + o);
    const d1 = f32x4.mul(s, f32x4.add(one, f32x4.mul(av, f32x4.sub(one, s)))); // silu'(a)
    v128.store(da + o, f32x4.mul(f32x4.mul(gv, v128.load(b + o)), d1));
    v128.store(db + o, f32x4.mul(gv, f32x4.mul(av, s)));
  }
  for (; i < n; i++) {
    const a1 = ld(a, i);
    const s = f32x4.extract_lane(sigmoid4(f32x4.splat(a1)), 0);
    st(da, i, ld(g, i) * ld(b, i) * (s * (1 + a1 * (1 - s))));
    st(db, i, ld(g, i) * (a1 * s));
  }
}

// ---- softmax cross-entropy ---------------------------------------------------------------------------
// Per row of V logits with target t: lse = m + log Σ e^{x − m}, loss = lse − x_t (0 where t is the
// ignored index). Backward: dx = g_row · (e^{x − lse} − [c = t]) (0 on ignored rows).

// Σ_c e^{x_c − m} over V floats, four lanes at a time (f32 exp, f64 sum).
function sumExp(x: usize, V: i32, m: f32): f64 {
  const mv = f32x4.splat(m);
  let acc: f64 = 0;
  let c: i32 = 0;
  for (; c + 4 <= V; c += 4) {
    const e = exp4(f32x4.sub(v128.load(x + (<usize>c << 2)), mv));
    acc +=
      <f64>f32x4.extract_lane(e, 0) +
      <f64>f32x4.extract_lane(e, 1) +
      <f64>f32x4.extract_lane(e, 2) +
      <f64>f32x4.extract_lane(e, 3);
  }
  for (; c < V; c++) acc += <f64>f32x4.extract_lane(exp4(f32x4.splat(ld(x, c) - m)), 0);
  return acc;
}

/** losses (rows) and lse (rows) of logits (rows × V) against int32 targets (rows). */
export function crossEntropyForward(
  logits: usize,
  targets: usize,
  losses: usize,
  lse: usize,
  rows: i32,
  V: i32,
  ignoreIndex: i32,
  hasIgnore: i32,
): void {
  for (let r: i32 = 0; r < rows; r++) {
    const x = logits + (<usize>(r * V) << 2);
    let m: f32 = -Infinity;
    for (let c: i32 = 0; c < V; c++) m = max(m, ld(x, c));
    const l = <f64>m + logF64(sumExp(x, V, m));
    st(lse, r, <f32>l);
    const t = load<i32>(targets + (<usize>r << 2));
    st(losses, r, hasIgnore != 0 && t == ignoreIndex ? 0 : <f32>(l - <f64>ld(x, t)));
  }
}

/** dlogits (rows × V) from the losses' cotangent g (rows). */
export function crossEntropyBackward(
  logits: usize,
  targets: usize,
  lse: usize,
  g: usize,
  dlogits: usize,
  rows: i32,
  V: i32,
  ignoreIndex: i32,
  hasIgnore: i32,
): void {
  for (let r: i32 = 0; r < rows; r++) {
    const x = logits + (<usize>(r * V) << 2);
    const d = dlogits + (<usize>(r * V) << 2);
    const t = load<i32>(targets + (<usize>r << 2));
    if (hasIgnore != 0 && t == ignoreIndex) {
      memory.fill(d, 0, <usize>V << 2);
      continue;
    }
    const gr = ld(g, r);
    const gv = f32x4.splat(gr);
    const lv = f32x4.splat(ld(lse, r));
    let c: i32 = 0;
    const lim = f32x4.splat(LN_2_POW_MINUS_64);
    for (; c + 4 <= V; c += 4) {
      const o = <usize>c << 2;
      const z = f32x4.sub(v128.load(x + o), lv);
      v128.store(d + o, f32x4.mul(gv, v128.andnot(exp4(z), f32x4.lt(z, lim)))); // p < 2⁻⁶⁴: 0
    }
    for (; c < V; c++) {
      const z = ld(x, c) - ld(lse, r);
      st(d, c, z < LN_2_POW_MINUS_64 ? 0 : gr * f32x4.extract_lane(exp4(f32x4.splat(z)), 0));
    }
    st(d, t, ld(d, t) - gr);
  }
}
