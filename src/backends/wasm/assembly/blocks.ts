// AssemblyScript source of the fused training blocks (JS side: src/backends/wasm/fused.ts; engine
// ops: src/engine/ops/blocks.ts): RMSNorm, the SwiGLU nonlinearity and softmax cross-entropy,
// forward and backward, each one pass over its rows instead of a chain of elementwise kernels.
// Memory contract as matmul.ts: no static data, every address passed in, outputs never overlap
// inputs. Sums are accumulated in f64.

import { copyWords, exp4, LN_2_POW_MINUS_64, logF64, maxOf, sigmoid4, taskWord } from './math';
import {
  BLOCK_TASK_CROSS_ENTROPY_BACKWARD,
  BLOCK_TASK_CROSS_ENTROPY_FORWARD,
  BLOCK_TASK_RMSNORM_BACKWARD,
  BLOCK_TASK_RMSNORM_FORWARD,
  BLOCK_TASK_ROPE,
  BLOCK_TASK_ROPE_HEADS,
  BLOCK_TASK_SWIGLU_BACKWARD,
  BLOCK_TASK_SWIGLU_FORWARD,
} from './opcodes';

@inline function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function st(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

// acc (f64x2) + the four products a ⊙ b, each taken in f64 (exact for float32 factors).
// @ts-ignore: decorator
@inline
function addProducts64(acc: v128, a: v128, b: v128): v128 {
  const lo = f64x2.mul(f64x2.promote_low_f32x4(a), f64x2.promote_low_f32x4(b));
  const hi = f64x2.mul(
    f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3)),
    f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3)),
  );
  return f64x2.add(acc, f64x2.add(lo, hi));
}

// @ts-ignore: decorator
@inline
function lanesSum64(acc: v128): f64 {
  return f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
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
    let acc = f64x2.splat(0);
    let k: i32 = 0;
    for (; k + 4 <= n; k += 4) {
      const v = v128.load(xr + (<usize>k << 2));
      acc = addProducts64(acc, v, v);
    }
    let sum = lanesSum64(acc);
    for (; k < n; k++) sum += <f64>ld(xr, k) * <f64>ld(xr, k);
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
    // u = g ⊙ scale (g without a scale)
    let acc = f64x2.splat(0);
    let j: i32 = 0;
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      const u = scale == 0 ? v128.load(gr + o) : f32x4.mul(v128.load(gr + o), v128.load(sr + o));
      acc = addProducts64(acc, u, v128.load(xr + o));
    }
    let dot = lanesSum64(acc);
    for (; j < n; j++) {
      const u = scale == 0 ? ld(gr, j) : ld(gr, j) * ld(sr, j);
      dot += <f64>u * <f64>ld(xr, j);
    }
    const c = <f32>(((<f64>r * <f64>r * <f64>r) * dot) / <f64>n);
    const rv = f32x4.splat(r);
    const cv = f32x4.splat(c);
    j = 0;
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      const u = scale == 0 ? v128.load(gr + o) : f32x4.mul(v128.load(gr + o), v128.load(sr + o));
      v128.store(dr + o, f32x4.sub(f32x4.mul(rv, u), f32x4.mul(v128.load(xr + o), cv)));
    }
    for (; j < n; j++) {
      const u = scale == 0 ? ld(gr, j) : ld(gr, j) * ld(sr, j);
      st(dr, j, r * u - ld(xr, j) * c);
    }
    if (scale != 0) {
      const ds = scaleRow(dscale, i, n, scaleRows, repeat);
      j = 0;
      for (; j + 4 <= n; j += 4) {
        const o = <usize>j << 2;
        const add = f32x4.mul(f32x4.mul(v128.load(gr + o), v128.load(xr + o)), rv);
        v128.store(ds + o, f32x4.add(v128.load(ds + o), add));
      }
      for (; j < n; j++) st(ds, j, ld(ds, j) + ld(gr, j) * ld(xr, j) * r);
    }
  }
}

// dst[j] = (…((dst[j] + p_0[j]) + p_1[j]) + …) + p_{count-1}[j] for j < n: partial sums of n floats,
// n apart at `partials`, added in order (one float32 rounding each) — the blocked scale gradient
// of RMSNorm's backward (src/backends/wasm/fused.ts).
export function addPartials(dst: usize, partials: usize, n: i32, count: i32): void {
  const stride = <usize>n << 2;
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    let acc = v128.load(dst + o);
    for (let b: i32 = 0; b < count; b++) acc = f32x4.add(acc, v128.load(partials + <usize>b * stride + o));
    v128.store(dst + o, acc);
  }
  for (; j < n; j++) {
    let acc = ld(dst, j);
    for (let b: i32 = 0; b < count; b++) acc += ld(partials + <usize>b * stride, j);
    st(dst, j, acc);
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
  // two f64x2 accumulators (the halves of each four exponentials): independent add chains
  const mv = f32x4.splat(m);
  let lo = f64x2.splat(0);
  let hi = f64x2.splat(0);
  let c: i32 = 0;
  for (; c + 4 <= V; c += 4) {
    const e = exp4(f32x4.sub(v128.load(x + (<usize>c << 2)), mv));
    lo = f64x2.add(lo, f64x2.promote_low_f32x4(e));
    hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 2, 3)));
  }
  let acc = lanesSum64(f64x2.add(lo, hi));
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
    const m = maxOf(x, V);
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

// ---- the memory layer's input block (SPEC §2.2–2.3) ---------------------------------------------------
// z (B, T, C), C = H·dh channels → y (B, H, T, dh): causal depthwise conv with K taps (K, C), tap i on
// z_{t−i}, continuing from tail (B, K−1, C) (K = 0: no conv); SiLU; then per head, when `normalize`,
// y = s · r with r = 1/√(Σ s² + ε). The composed ops it replaces: memory/layer.ts causalConv, silu,
// splitHeads and l2Normalize. Backward (a = conv output, s = silu(a)):
//   ds = r·g − r³·s·(g·s)   (g itself without the norm)
//   da = ds ⊙ silu'(a),  silu'(a) = σ(a)(1 + a(1 − σ(a)))
//   dz_t = Σ_i w_i ⊙ da_{t+i} (t + i < T),  dtail likewise for the rows before 0,
//   dw_i = Σ_{b,t} da_t ⊙ z_{t−i} (z_{t−i} from the tail when t − i < 0).

// @ts-ignore: decorator
@inline
function convRow(z: usize, taps: usize, tail: usize, out: usize, t: i32, K: i32, C: i32, width: i32): void {
  // out (width) = Σ_{i<K} w_i ⊙ z_{t−i} over `width` channels of rows of C: z is this batch row's
  // (T, C), tail its (K−1, C), taps (K, C), each already offset to the first channel.
  const rowBytes = <usize>C << 2;
  for (let i: i32 = 0; i < K; i++) {
    const s = t - i;
    const src = s >= 0 ? z + <usize>s * rowBytes : tail + <usize>(K - 1 + s) * rowBytes;
    const w = taps + <usize>i * rowBytes;
    let c: i32 = 0;
    if (i == 0) {
      for (; c + 4 <= width; c += 4) {
        const o = <usize>c << 2;
        v128.store(out + o, f32x4.mul(v128.load(w + o), v128.load(src + o)));
      }
      for (; c < width; c++) st(out, c, ld(w, c) * ld(src, c));
    } else {
      for (; c + 4 <= width; c += 4) {
        const o = <usize>c << 2;
        v128.store(out + o, f32x4.add(v128.load(out + o), f32x4.mul(v128.load(w + o), v128.load(src + o))));
      }
      for (; c < width; c++) st(out, c, ld(out, c) + ld(w, c) * ld(src, c));
    }
  }
}

// silu(x) in one lane, by the kernels' one σ.
// @ts-ignore: decorator
@inline
function silu1(x: f32): f32 {
  return x * f32x4.extract_lane(sigmoid4(f32x4.splat(x)), 0);
}

/** y (B, H, T, dh) from z (B, T, C); taps/tail 0 when K = 0 (tail 0 also when K = 1). */
export function convSiluNormForward(
  z: usize,
  taps: usize,
  tail: usize,
  y: usize,
  B: i32,
  T: i32,
  H: i32,
  dh: i32,
  K: i32,
  normalize: i32,
  eps: f32,
): void {
  const C = H * dh;
  for (let b: i32 = 0; b < B; b++) {
    const zb = z + (<usize>(b * T * C) << 2);
    const tb = tail + (<usize>(b * (K - 1) * C) << 2);
    for (let t: i32 = 0; t < T; t++) {
      for (let h: i32 = 0; h < H; h++) {
        const yr = y + (<usize>(((b * H + h) * T + t) * dh) << 2);
        // the conv for this head's channels only: out row = yr (dh floats)
        const at = <usize>(h * dh) << 2; // this head's first channel
        if (K > 0) convRow(zb + at, taps + at, tb + at, yr, t, K, C, dh);
        else copyWords(yr, zb + (<usize>(t * C) << 2) + at, dh);
        let sums = f64x2.splat(0);
        let j: i32 = 0;
        for (; j + 4 <= dh; j += 4) {
          const o = <usize>j << 2;
          const a = v128.load(yr + o);
          const s = f32x4.mul(a, sigmoid4(a));
          v128.store(yr + o, s);
          sums = addProducts64(sums, s, s);
        }
        let sum = lanesSum64(sums);
        for (; j < dh; j++) {
          const s = silu1(ld(yr, j));
          st(yr, j, s);
          sum += <f64>s * <f64>s;
        }
        if (normalize != 0) scaleRow4(yr, dh, <f32>(1 / Math.sqrt(sum + <f64>eps)));
      }
    }
  }
}

// p[0..n) *= r.
// @ts-ignore: decorator
@inline
function scaleRow4(p: usize, n: i32, r: f32): void {
  const rv = f32x4.splat(r);
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) v128.store(p + (<usize>j << 2), f32x4.mul(v128.load(p + (<usize>j << 2)), rv));
  for (; j < n; j++) st(p, j, ld(p, j) * r);
}

/**
 * dz (B, T, C), dtaps (K, C) and dtail (B, K−1, C) from gy (B, H, T, dh), the cotangent of
 * convSiluNormForward's y; dtaps and dtail 0 when the call has none. dz first holds da (the conv
 * output's cotangent), then is turned into dz in place.
 */
export function convSiluNormBackward(
  z: usize,
  taps: usize,
  tail: usize,
  gy: usize,
  dz: usize,
  dtaps: usize,
  dtail: usize,
  B: i32,
  T: i32,
  H: i32,
  dh: i32,
  K: i32,
  normalize: i32,
  eps: f32,
): void {
  const C = H * dh;
  const rowBytes = <usize>C << 2;
  const one = f32x4.splat(1);
  if (dtaps != 0) memory.fill(dtaps, 0, <usize>K * rowBytes);
  for (let b: i32 = 0; b < B; b++) {
    const zb = z + <usize>(b * T) * rowBytes;
    const tb = tail + <usize>(b * (K - 1)) * rowBytes;
    const db = dz + <usize>(b * T) * rowBytes;
    // pass 1: da per row, and dw_i += da_t ⊙ z_{t−i}
    for (let t: i32 = 0; t < T; t++) {
      const dr = db + <usize>t * rowBytes;
      for (let h: i32 = 0; h < H; h++) {
        const at = <usize>(h * dh) << 2;
        const a = dr + at; // a (dh), then da in place
        const g = gy + (<usize>(((b * H + h) * T + t) * dh) << 2);
        if (K > 0) convRow(zb + at, taps + at, tb + at, a, t, K, C, dh);
        else copyWords(a, zb + <usize>t * rowBytes + at, dh);
        let sums = f64x2.splat(0);
        let dots = f64x2.splat(0);
        let k: i32 = 0;
        for (; k + 4 <= dh; k += 4) {
          const av = v128.load(a + (<usize>k << 2));
          const s = f32x4.mul(av, sigmoid4(av));
          sums = addProducts64(sums, s, s);
          dots = addProducts64(dots, s, v128.load(g + (<usize>k << 2)));
        }
        let sum = lanesSum64(sums);
        let dot = lanesSum64(dots);
        for (; k < dh; k++) {
          const s = silu1(ld(a, k));
          sum += <f64>s * <f64>s;
          dot += <f64>s * <f64>ld(g, k);
        }
        const r: f32 = normalize != 0 ? <f32>(1 / Math.sqrt(sum + <f64>eps)) : 1;
        const c3: f32 = normalize != 0 ? <f32>(<f64>r * <f64>r * <f64>r * dot) : 0;
        const rv = f32x4.splat(r);
        const cv = f32x4.splat(c3);
        let j: i32 = 0;
        for (; j + 4 <= dh; j += 4) {
          const o = <usize>j << 2;
          const av = v128.load(a + o);
          const sg = sigmoid4(av);
          const ds = f32x4.sub(f32x4.mul(rv, v128.load(g + o)), f32x4.mul(cv, f32x4.mul(av, sg)));
          v128.store(a + o, f32x4.mul(ds, f32x4.mul(sg, f32x4.add(one, f32x4.mul(av, f32x4.sub(one, sg))))));
        }
        for (; j < dh; j++) {
          const av = ld(a, j);
          const sg = f32x4.extract_lane(sigmoid4(f32x4.splat(av)), 0);
          const ds = r * ld(g, j) - c3 * (av * sg);
          st(a, j, ds * (sg * (1 + av * (1 - sg))));
        }
      }
      for (let i: i32 = 0; i < K && dtaps != 0; i++) {
        const s = t - i;
        const src = s >= 0 ? zb + <usize>s * rowBytes : tb + <usize>(K - 1 + s) * rowBytes;
        const w = dtaps + <usize>i * rowBytes;
        let c: i32 = 0;
        for (; c + 4 <= C; c += 4) {
          const o = <usize>c << 2;
          v128.store(w + o, f32x4.add(v128.load(w + o), f32x4.mul(v128.load(dr + o), v128.load(src + o))));
        }
        for (; c < C; c++) st(w, c, ld(w, c) + ld(dr, c) * ld(src, c));
      }
    }
    if (K == 0) continue;
    // pass 2: dtail rows (ext index s = r − (K−1) < 0), then dz_t = Σ_i w_i ⊙ da_{t+i} in place,
    // ascending t: row t is read (i = 0) before it is written, rows above t are still da.
    if (dtail != 0) {
      for (let r: i32 = 0; r < K - 1; r++) {
        const out = dtail + <usize>(b * (K - 1) + r) * rowBytes;
        adjointRow(db, taps, out, r - (K - 1), T, K, C);
      }
    }
    for (let t: i32 = 0; t < T; t++) adjointRow(db, taps, db + <usize>t * rowBytes, t, T, K, C);
  }
}

// out (C) = Σ_{i<K, 0 ≤ s+i < T} w_i ⊙ da_{s+i} over rows of C at da; out may be row s of da itself
// (each group of four channels is read before it is written).
// @ts-ignore: decorator
@inline
function adjointRow(da: usize, taps: usize, out: usize, s: i32, T: i32, K: i32, C: i32): void {
  const rowBytes = <usize>C << 2;
  const first = max<i32>(0, -s);
  const last = min<i32>(K, T - s); // i < last
  let c: i32 = 0;
  for (; c + 4 <= C; c += 4) {
    const o = <usize>c << 2;
    let acc = f32x4.splat(0);
    for (let i = first; i < last; i++) {
      acc = f32x4.add(acc, f32x4.mul(v128.load(taps + <usize>i * rowBytes + o), v128.load(da + <usize>(s + i) * rowBytes + o)));
    }
    v128.store(out + o, acc);
  }
  for (; c < C; c++) {
    let acc: f32 = 0;
    for (let i = first; i < last; i++) acc += ld(taps + <usize>i * rowBytes, c) * ld(da + <usize>(s + i) * rowBytes, c);
    st(out, c, acc);
  }
}

// ---- the memory layer's gates (SPEC §2.4) ------------------------------------------------------------
// out[b, h, t] = cap · σ(z[b, t, h] + bias[h]): α, η or θ per token and head from the projection z
// (B, T, H), moved to the scan's (B, H, T) layout. Backward: dz[b, t, h] = g[b, h, t] · cap · σ(1 − σ),
// dbias[h] = Σ_{b,t} dz[b, t, h] (f64 sums).

// @ts-ignore: decorator
@inline
function sigmoid1(x: f32): f32 {
  return f32x4.extract_lane(sigmoid4(f32x4.splat(x)), 0);
}

/** out (B, H, T) from z (B, T, H) and bias (H). */
export function gateForward(z: usize, bias: usize, out: usize, B: i32, T: i32, H: i32, cap: f32): void {
  for (let b: i32 = 0; b < B; b++) {
    for (let t: i32 = 0; t < T; t++) {
      const zr = z + (<usize>((b * T + t) * H) << 2);
      for (let h: i32 = 0; h < H; h++) st(out, (b * H + h) * T + t, cap * sigmoid1(ld(zr, h) + ld(bias, h)));
    }
  }
}

/** dz (B, T, H) and dbias (H) from the cotangent g (B, H, T) of gateForward's out. */
export function gateBackward(
  z: usize,
  bias: usize,
  g: usize,
  dz: usize,
  dbias: usize,
  B: i32,
  T: i32,
  H: i32,
  cap: f32,
): void {
  for (let h: i32 = 0; h < H; h++) {
    let sum: f64 = 0;
    const bh = ld(bias, h);
    for (let b: i32 = 0; b < B; b++) {
      const gr = g + (<usize>((b * H + h) * T) << 2);
      for (let t: i32 = 0; t < T; t++) {
        const i = (b * T + t) * H + h;
        const s = sigmoid1(ld(z, i) + bh);
        const d = ld(gr, t) * cap * (s * (1 - s));
        st(dz, i, d);
        sum += <f64>d;
      }
    }
    st(dbias, h, <f32>sum);
  }
}

// One batch slice of convSiluNormForward (word 0 = 0) or convSiluNormBackward (word 0 = 1) for the
// thread pool: int32 words at args: direction, z, taps, tail, y (forward) or gy (backward), dz,
// dtaps, dtail, B, T, H, dh, K, normalize, eps (float32 bits). The caller advances the batch-indexed
// pointers to the slice's first row, and gives each backward slice its own dtaps to sum afterwards.
export function convSiluNormTask(args: usize, scratch: usize): void {
  // (scratch unused)
  const eps = reinterpret<f32>(load<i32>(args + 56));
  if (load<i32>(args) == 0) {
    convSiluNormForward(
      <usize>load<i32>(args + 4),
      <usize>load<i32>(args + 8),
      <usize>load<i32>(args + 12),
      <usize>load<i32>(args + 16),
      load<i32>(args + 32),
      load<i32>(args + 36),
      load<i32>(args + 40),
      load<i32>(args + 44),
      load<i32>(args + 48),
      load<i32>(args + 52),
      eps,
    );
  } else {
    convSiluNormBackward(
      <usize>load<i32>(args + 4),
      <usize>load<i32>(args + 8),
      <usize>load<i32>(args + 12),
      <usize>load<i32>(args + 16),
      <usize>load<i32>(args + 20),
      <usize>load<i32>(args + 24),
      <usize>load<i32>(args + 28),
      load<i32>(args + 32),
      load<i32>(args + 36),
      load<i32>(args + 40),
      load<i32>(args + 44),
      load<i32>(args + 48),
      load<i32>(args + 52),
      eps,
    );
  }
}

// ---- RoPE (halves convention) ---------------------------------------------------------------------
// One row of d features: out = x with feature pairs (i, i + d/2) rotated by the angles of the table
// row at `angles` (the cosines, then the sines, d/2 each); sign = −1 rotates back (the backward). The
// same float32 multiplies and adds, in the same order, as the composed op (ops/attention.ts `rope`).
// @ts-ignore: decorator
@inline
function rotateRow(xr: usize, or: usize, angles: usize, d: i32, sign: f32): void {
  const half = d >> 1;
  const hb = <usize>half << 2;
  const sv = f32x4.splat(sign);
  let i: i32 = 0;
  for (; i + 4 <= half; i += 4) {
    const o = <usize>i << 2;
    const x1 = v128.load(xr + o);
    const x2 = v128.load(xr + hb + o);
    const c = v128.load(angles + o);
    const s = f32x4.mul(v128.load(angles + hb + o), sv);
    v128.store(or + o, f32x4.sub(f32x4.mul(x1, c), f32x4.mul(x2, s)));
    v128.store(or + hb + o, f32x4.add(f32x4.mul(x1, s), f32x4.mul(x2, c)));
  }
  for (; i < half; i++) {
    const x1 = ld(xr, i);
    const x2 = ld(xr, half + i);
    const c = ld(angles, i);
    const s = ld(angles, half + i) * sign;
    st(or, i, x1 * c - x2 * s);
    st(or, half + i, x1 * s + x2 * c);
  }
}

// out (rows × d) = x rotated: row r by row r mod T of `table` (T × d).
export function ropeRows(x: usize, out: usize, table: usize, rows: i32, T: i32, d: i32, sign: f32): void {
  let t: i32 = 0; // r mod T, kept without a division per row
  for (let r: i32 = 0; r < rows; r++) {
    rotateRow(x + (<usize>(r * d) << 2), out + (<usize>(r * d) << 2), table + (<usize>(t * d) << 2), d, sign);
    if (++t == T) t = 0;
  }
}

// RoPE with the heads split or merged on the way (ops/attention.ts `ropeHeads`): `tokens` is
// (batch, T, H, d), `heads` is (batch, H, T, d), and row (b, t, h) of one is row (b, h, t) of the
// other, rotated by row t of `table` (T × d). toHeads = 1 reads `tokens` and writes `heads` (the
// forward: rope of the split heads); 0 reads `heads` and writes `tokens` (with sign = −1, the
// backward: rotated back, heads merged). One pass instead of a transpose and a rotation.
export function ropeHeads(
  tokens: usize,
  heads: usize,
  table: usize,
  batch: i32,
  T: i32,
  H: i32,
  d: i32,
  sign: f32,
  toHeads: i32,
): void {
  const rowBytes = <usize>d << 2;
  const headBytes = <usize>T * rowBytes; // from one head to the next in `heads`
  for (let b: i32 = 0; b < batch; b++) {
    let tr = tokens + <usize>b * <usize>H * headBytes; // row (b, t, 0) of `tokens`
    for (let t: i32 = 0; t < T; t++) {
      const angles = table + <usize>t * rowBytes;
      let hr = heads + (<usize>(b * H) * <usize>T + <usize>t) * rowBytes; // row (b, 0, t) of `heads`
      for (let h: i32 = 0; h < H; h++) {
        if (toHeads) rotateRow(tr, hr, angles, d, sign);
        else rotateRow(hr, tr, angles, d, sign);
        tr += rowBytes;
        hr += headBytes;
      }
    }
  }
}

// ---- the blocks on the thread pool -------------------------------------------------------------------
// One task of `runTasks('blocksTask', …)`: the record at `args` (int32 words) names the block and its
// arguments for one share of the work. src/backends/wasm/fused.ts cuts the shares so that every
// element is computed exactly as in one call: flat ranges at multiples of 16, rows at multiples of
// the period of their scale or table rows; RMSNorm's backward runs in fixed blocks of rows, each
// summing its own part of the scale gradient (fused.ts adds them up in order).
//   0 swiglu forward:         a, b, out, n
//   1 swiglu backward:        a, b, g, da, db, n
//   2 rmsnorm forward:        x, scale, out, rinv, rows, n, scaleRows, repeat, eps (float32 bits)
//   7 rmsnorm backward:       x, scale, rinv, g, dx, dscale, rows, n, scaleRows, repeat
//   3 cross-entropy forward:  logits, targets, losses, lse, rows, V, ignoreIndex, hasIgnore
//   4 cross-entropy backward: logits, targets, lse, g, dlogits, rows, V, ignoreIndex, hasIgnore
//   5 rope:                   x, out, table, rows, T, d, sign (float32 bits)
//   6 rope with heads:        tokens, heads, table, batch, T, H, d, sign (float32 bits), toHeads
// (the kind codes: BLOCK_TASK_* of opcodes.json)
// @ts-ignore: decorator
@inline
function addr(args: usize, i: i32): usize {
  return <usize>taskWord(args, i);
}

// `scratch` is unused: the blocks need none.
export function blocksTask(args: usize, scratch: usize): void {
  const kind = load<i32>(args);
  if (kind == BLOCK_TASK_SWIGLU_FORWARD) {
    swigluForward(addr(args, 0), addr(args, 1), addr(args, 2), taskWord(args, 3));
  } else if (kind == BLOCK_TASK_SWIGLU_BACKWARD) {
    swigluBackward(addr(args, 0), addr(args, 1), addr(args, 2), addr(args, 3), addr(args, 4), taskWord(args, 5));
  } else if (kind == BLOCK_TASK_RMSNORM_FORWARD) {
    rmsNormForward(
      addr(args, 0),
      addr(args, 1),
      addr(args, 2),
      addr(args, 3),
      taskWord(args, 4),
      taskWord(args, 5),
      taskWord(args, 6),
      taskWord(args, 7),
      reinterpret<f32>(taskWord(args, 8)),
    );
  } else if (kind == BLOCK_TASK_CROSS_ENTROPY_FORWARD) {
    crossEntropyForward(
      addr(args, 0),
      addr(args, 1),
      addr(args, 2),
      addr(args, 3),
      taskWord(args, 4),
      taskWord(args, 5),
      taskWord(args, 6),
      taskWord(args, 7),
    );
  } else if (kind == BLOCK_TASK_CROSS_ENTROPY_BACKWARD) {
    crossEntropyBackward(
      addr(args, 0),
      addr(args, 1),
      addr(args, 2),
      addr(args, 3),
      addr(args, 4),
      taskWord(args, 5),
      taskWord(args, 6),
      taskWord(args, 7),
      taskWord(args, 8),
    );
  } else if (kind == BLOCK_TASK_ROPE) {
    ropeRows(
      addr(args, 0),
      addr(args, 1),
      addr(args, 2),
      taskWord(args, 3),
      taskWord(args, 4),
      taskWord(args, 5),
      reinterpret<f32>(taskWord(args, 6)),
    );
  } else if (kind == BLOCK_TASK_RMSNORM_BACKWARD) {
    rmsNormBackward(
      addr(args, 0),
      addr(args, 1),
      addr(args, 2),
      addr(args, 3),
      addr(args, 4),
      addr(args, 5),
      taskWord(args, 6),
      taskWord(args, 7),
      taskWord(args, 8),
      taskWord(args, 9),
    );
  } else if (kind == BLOCK_TASK_ROPE_HEADS) {
    ropeHeads(
      addr(args, 0),
      addr(args, 1),
      addr(args, 2),
      taskWord(args, 3),
      taskWord(args, 4),
      taskWord(args, 5),
      taskWord(args, 6),
      reinterpret<f32>(taskWord(args, 7)),
      taskWord(args, 8),
    );
  }
}
