// AssemblyScript source of the single-token decoding kernels (JS side: src/backends/wasm/decode.ts;
// the decoder: src/models/decode.ts). Generating text feeds one token at a time; through the engine
// that is hundreds of small ops per token, so decoding has its own kernels that update the
// decoder's state in place: row products, norms, the causal-conv step, RoPE, and the memory's
// token-by-token recurrence (SPEC §1).
//
// Memory contract as matmul.ts (no static data, every address passed in). Unlike the other kernels
// these write into buffers the caller owns and reuses (a decoder's state), never into tensors.

import {
  activation,
  activations,
  exp4,
  expF64,
  FLUSH_STATE,
  flushTiny,
  LN_2_POW_MINUS_64,
  SILU,
  sigmoid4,
} from './math';
import { dotRow } from './tiles';
import { MAP_ADD, MAP_MUL, MAP_SIGMOID, MAP_SIGMOID_MUL, MAP_SILU, MAP_SILU_MUL } from './opcodes';

@inline function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function st(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

// ---- rows ------------------------------------------------------------------------------------------

// out[j] (=|+=) Σ_i x[i] W[i·pitch + j], j < n, i < m.
function rowTimes(out: usize, x: usize, w: usize, m: i32, n: i32, pitch: i32, accumulate: bool): void {
  if (!accumulate) memory.fill(out, 0, <usize>n << 2);
  let i: i32 = 0;
  for (; i + 2 <= m; i += 2) {
    const a0 = f32x4.splat(ld(x, i));
    const a1 = f32x4.splat(ld(x, i + 1));
    const r0 = w + (<usize>(i * pitch) << 2);
    const r1 = r0 + (<usize>pitch << 2);
    let j: i32 = 0;
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      const acc = f32x4.add(f32x4.mul(a0, v128.load(r0 + o)), f32x4.mul(a1, v128.load(r1 + o)));
      v128.store(out + o, f32x4.add(v128.load(out + o), acc));
    }
    for (; j < n; j++) st(out, j, ld(out, j) + (ld(x, i) * ld(r0, j) + ld(x, i + 1) * ld(r1, j)));
  }
  for (; i < m; i++) {
    const a = ld(x, i);
    const av = f32x4.splat(a);
    const r = w + (<usize>(i * pitch) << 2);
    let j: i32 = 0;
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      v128.store(out + o, f32x4.add(v128.load(out + o), f32x4.mul(av, v128.load(r + o))));
    }
    for (; j < n; j++) st(out, j, ld(out, j) + a * ld(r, j));
  }
}

/** out (n) = x (m) · W (m × n, row-major); with `accumulate`, added into out. */
export function decodeGemv(out: usize, x: usize, w: usize, m: i32, n: i32, accumulate: i32): void {
  rowTimes(out, x, w, m, n, n, accumulate != 0);
}

/** out[r] = W[r, :] · x for r < rows (W rows × cols, row-major): a tied output head x Eᵀ. */
export function decodeGemvRows(out: usize, x: usize, w: usize, rows: i32, cols: i32): void {
  for (let r: i32 = 0; r < rows; r++) st(out, r, dotRow(w + (<usize>(r * cols) << 2), x, cols));
}

/**
 * RMSNorm of `groups` groups of n floats: out = x / √(mean(x²) + eps) ⊙ scale, the scale of group
 * g at scale + g·scaleStride (0: one scale for all; scale = 0: none). out may equal x.
 */
export function decodeRmsNorm(
  out: usize,
  x: usize,
  scale: usize,
  n: i32,
  groups: i32,
  scaleStride: i32,
  eps: f32,
): void {
  for (let g: i32 = 0; g < groups; g++) {
    const xr = x + (<usize>(g * n) << 2);
    const or = out + (<usize>(g * n) << 2);
    let sum: f64 = 0;
    for (let j: i32 = 0; j < n; j++) sum += <f64>ld(xr, j) * <f64>ld(xr, j);
    const inv = <f32>(1 / Math.sqrt(sum / <f64>n + <f64>eps));
    const sr = scale + (<usize>(g * scaleStride) << 2);
    for (let j: i32 = 0; j < n; j++) st(or, j, scale == 0 ? ld(xr, j) * inv : ld(xr, j) * inv * ld(sr, j));
  }
}

/** L2-normalises `groups` groups of n floats in place: z / √(Σ z² + eps). */
export function decodeL2Normalize(x: usize, n: i32, groups: i32, eps: f32): void {
  for (let g: i32 = 0; g < groups; g++) {
    const xr = x + (<usize>(g * n) << 2);
    let sum: f64 = 0;
    for (let j: i32 = 0; j < n; j++) sum += <f64>ld(xr, j) * <f64>ld(xr, j);
    const inv = <f32>(1 / Math.sqrt(sum + <f64>eps));
    for (let j: i32 = 0; j < n; j++) st(xr, j, ld(xr, j) * inv);
  }
}

// op codes (./opcodes, from ../opcodes.json): MAP_ADD a + b, MAP_MUL a ⊙ b, MAP_SILU silu(a),
// MAP_SIGMOID s·σ(a), MAP_SILU_MUL silu(a) ⊙ b, MAP_SIGMOID_MUL a ⊙ σ(b)

/** Elementwise over n floats: out = op(a, b) (codes above; s scales σ). out may equal a or b. */
export function decodeMap(op: i32, out: usize, a: usize, b: usize, n: i32, s: f32): void {
  let j: i32 = 0;
  if (op >= MAP_SILU) {
    // the activations four lanes at a time (float32 exp, ~2e−7 relative), the rest below
    const sv = f32x4.splat(s);
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      const x = v128.load(a + o);
      let r: v128;
      if (op == MAP_SILU) r = f32x4.mul(x, sigmoid4(x));
      else if (op == MAP_SIGMOID) r = f32x4.mul(sv, sigmoid4(x));
      else if (op == MAP_SILU_MUL) r = f32x4.mul(f32x4.mul(x, sigmoid4(x)), v128.load(b + o));
      else r = f32x4.mul(x, sigmoid4(v128.load(b + o)));
      v128.store(out + o, r);
    }
  }
  for (; j < n; j++) {
    const x = <f64>ld(a, j);
    let r: f64;
    if (op == MAP_ADD) r = x + <f64>ld(b, j);
    else if (op == MAP_MUL) r = x * <f64>ld(b, j);
    else if (op == MAP_SILU) r = activation(SILU, 0, x);
    else if (op == MAP_SIGMOID) r = <f64>s / (1 + expF64(-x));
    else if (op == MAP_SILU_MUL) r = <f64><f32>activation(SILU, 0, x) * <f64>ld(b, j);
    else r = x * <f64><f32>(1 / (1 + expF64(-<f64>ld(b, j))));
    st(out, j, <f32>r);
  }
}

/**
 * One step of the causal depthwise convolution (SPEC §2.2) over C channels with K taps (K, C):
 * out = Σ_{i<K} taps[i] ⊙ z_{t−i}, z_t = z and z_{t−i} = tail[K−1−i] (tail: the last K−1 rows,
 * oldest first); then the tail drops its oldest row and takes z.
 */
export function decodeConvStep(out: usize, z: usize, taps: usize, tail: usize, K: i32, C: i32): void {
  for (let c: i32 = 0; c < C; c++) {
    let acc: f32 = ld(taps, c) * ld(z, c);
    for (let i: i32 = 1; i < K; i++) acc += ld(taps, i * C + c) * ld(tail, (K - 1 - i) * C + c);
    st(out, c, acc);
  }
  if (K > 1) {
    memory.copy(tail, tail + (<usize>C << 2), <usize>((K - 2) * C) << 2);
    memory.copy(tail + (<usize>((K - 2) * C) << 2), z, <usize>C << 2);
  }
}

/**
 * RoPE (halves convention) in place on `heads` rows of dh: feature i pairs with i + dh/2, rotated
 * by the angle whose cos and sin are cs[i] and cs[dh/2 + i].
 */
export function decodeRope(x: usize, heads: i32, dh: i32, cs: usize): void {
  const half = dh >> 1;
  for (let h: i32 = 0; h < heads; h++) {
    const r = x + (<usize>(h * dh) << 2);
    for (let i: i32 = 0; i < half; i++) {
      const c = ld(cs, i);
      const s = ld(cs, half + i);
      const a = ld(r, i);
      const b = ld(r, half + i);
      st(r, i, a * c - b * s);
      st(r, half + i, a * s + b * c);
    }
  }
}

const WEIGHT_MIN = LN_2_POW_MINUS_64; // smaller softmax weights are zeros (as attention.ts)

/**
 * Softmax attention of one query per head over every row of a cache: out[h] = Σ_r p_r v[h, r],
 * p = softmax(scale · q[h]·k[h, r]) over r < keys. k and v: (H, rows, dh), each head's rows
 * contiguous. A decoder's window ring and MAC segment hold only visible rows, so no mask.
 * scratch: `keys` floats.
 */
export function decodeAttend(
  out: usize,
  q: usize,
  k: usize,
  v: usize,
  heads: i32,
  rows: i32,
  keys: i32,
  dh: i32,
  scale: f32,
  scratch: usize,
): void {
  for (let h: i32 = 0; h < heads; h++) {
    const qh = q + (<usize>(h * dh) << 2);
    const kh = k + (<usize>(h * rows * dh) << 2);
    const vh = v + (<usize>(h * rows * dh) << 2);
    const oh = out + (<usize>(h * dh) << 2);
    let m: f32 = -Infinity;
    for (let r: i32 = 0; r < keys; r++) {
      const sc = dotRow(qh, kh + (<usize>(r * dh) << 2), dh) * scale;
      st(scratch, r, sc);
      if (sc > m) m = sc;
    }
    // p = e^{s − m}, four lanes at a time; below e^WEIGHT_MIN a zero, as attention.ts (never a
    // denormal)
    const mv = f32x4.splat(m);
    const lim = f32x4.splat(WEIGHT_MIN);
    let acc = f32x4.splat(0);
    let r: i32 = 0;
    for (; r + 4 <= keys; r += 4) {
      const o = <usize>r << 2;
      const x = f32x4.sub(v128.load(scratch + o), mv);
      const p = v128.andnot(exp4(x), f32x4.lt(x, lim));
      v128.store(scratch + o, p);
      acc = f32x4.add(acc, p);
    }
    let sum: f64 =
      <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
    for (; r < keys; r++) {
      const x = ld(scratch, r) - m;
      const p: f32 = x < WEIGHT_MIN ? 0 : <f32>expF64(<f64>x);
      st(scratch, r, p);
      sum += <f64>p;
    }
    rowTimes(oh, scratch, vh, keys, dh, dh, false);
    const inv = <f32>(1 / sum);
    for (let c: i32 = 0; c < dh; c++) st(oh, c, ld(oh, c) * inv);
  }
}

// ---- the memory, one token (SPEC §1) ---------------------------------------------------------------
//
// Per head, weights W_l, momentum S_l and chunk-start weights G_l (d_in × d_out each, every
// head's matrix after the previous one). For the token:
//   u = ∇_W ℓ(G; k, v)  (eq. 12, 16)    S ← η S − θ u (eq. 13–14)    W ← (1 − α) W + S (eq. 13)
//   y = M_W(q)  (eq. 15)
// with G ← W first when the token starts a chunk, and the state flushed below FLUSH_STATE when it
// ends one (as the chunk-parallel kernels do, assembly/memory.ts).

// M_W(q) for one head: y (d) from q (d) with W1 (d × hh) and, for depth 2, W2 (hh × d); r is hh
// floats of scratch.
function retrieve(y: usize, q: usize, w1: usize, w2: usize, d: i32, hh: i32, depth: i32, act: i32, residual: bool, r: usize): void {
  if (depth == 2) {
    rowTimes(r, q, w1, d, hh, hh, false);
    activations(act, r, r, 0, 0, hh);
    rowTimes(y, r, w2, hh, d, d, false);
  } else {
    rowTimes(y, q, w1, d, d, d, false);
  }
  if (residual) for (let c: i32 = 0; c < d; c++) st(y, c, ld(y, c) + ld(q, c));
}

// S ← η S − θ xᵀ δ, W ← (1 − α) W + S over an rows × cols layer.
function layerUpdate(w: usize, s: usize, x: usize, delta: usize, rows: i32, cols: i32, alpha: f32, eta: f32, theta: f32): void {
  const keep = f32x4.splat(1 - alpha);
  const ev = f32x4.splat(eta);
  for (let i: i32 = 0; i < rows; i++) {
    const c = f32x4.splat(theta * ld(x, i));
    const wr = w + (<usize>(i * cols) << 2);
    const sr = s + (<usize>(i * cols) << 2);
    let j: i32 = 0;
    for (; j + 4 <= cols; j += 4) {
      const o = <usize>j << 2;
      const sn = f32x4.sub(f32x4.mul(ev, v128.load(sr + o)), f32x4.mul(c, v128.load(delta + o)));
      v128.store(sr + o, sn);
      v128.store(wr + o, f32x4.add(f32x4.mul(keep, v128.load(wr + o)), sn));
    }
    for (; j < cols; j++) {
      const sn = eta * ld(sr, j) - theta * ld(x, i) * ld(delta, j);
      st(sr, j, sn);
      st(wr, j, (1 - alpha) * ld(wr, j) + sn);
    }
  }
}

/**
 * One token through the memories of H heads, in place. q, k, v: (H, d) rows; alpha, eta, theta:
 * (H); w1, s1, g1: (H, d, hh); w2, s2, g2: (H, hh, d) (depth 2; 0 for depth 1, where hh = d);
 * y: (H, d) written. `start` copies W into G first (the token starts a chunk); `end` flushes W and
 * S after (it ends one). scratch: 4·hh + 2·d floats.
 */
export function memoryTokenStep(
  q: usize,
  k: usize,
  v: usize,
  alpha: usize,
  eta: usize,
  theta: usize,
  w1: usize,
  s1: usize,
  g1: usize,
  w2: usize,
  s2: usize,
  g2: usize,
  y: usize,
  H: i32,
  d: i32,
  hh: i32,
  depth: i32,
  act: i32,
  residual: i32,
  start: i32,
  end: i32,
  scratch: usize,
): void {
  const size1 = d * hh;
  const size2 = hh * d;
  const z = scratch; // hh: k G₁
  const x2 = z + (<usize>hh << 2); // hh: φ(z)
  const p1 = x2 + (<usize>hh << 2); // hh: φ'(z)
  const b = p1 + (<usize>hh << 2); // hh: δ₂ G₂ᵀ, then δ₁
  const out = b + (<usize>hh << 2); // d: M_G(k), then δ₂
  for (let h: i32 = 0; h < H; h++) {
    const qh = q + (<usize>(h * d) << 2);
    const kh = k + (<usize>(h * d) << 2);
    const vh = v + (<usize>(h * d) << 2);
    const W1 = w1 + (<usize>(h * size1) << 2);
    const S1 = s1 + (<usize>(h * size1) << 2);
    const G1 = g1 + (<usize>(h * size1) << 2);
    const W2 = w2 + (<usize>(h * size2) << 2);
    const S2 = s2 + (<usize>(h * size2) << 2);
    const G2 = g2 + (<usize>(h * size2) << 2);
    if (start != 0) {
      memory.copy(G1, W1, <usize>size1 << 2);
      if (depth == 2) memory.copy(G2, W2, <usize>size2 << 2);
    }
    const a = ld(alpha, h);
    const e = ld(eta, h);
    const t = ld(theta, h);
    // u at G (eq. 12): factors (k, δ₁) and (φ(z), δ₂).
    if (depth == 2) {
      rowTimes(z, kh, G1, d, hh, hh, false);
      activations(act, z, x2, p1, 0, hh); // φ(z), φ'(z) (the chunk kernels' own, memory.ts)
      rowTimes(out, x2, G2, hh, d, d, false);
    } else {
      rowTimes(out, kh, G1, d, d, d, false);
    }
    for (let c: i32 = 0; c < d; c++) {
      const o = residual != 0 ? ld(out, c) + ld(kh, c) : ld(out, c);
      st(out, c, 2 * (o - ld(vh, c))); // δ₂ (depth 1: δ₁)
    }
    if (depth == 2) {
      for (let j: i32 = 0; j < hh; j++) st(b, j, dotRow(G2 + (<usize>(j * d) << 2), out, d) * ld(p1, j)); // δ₁
      layerUpdate(W1, S1, kh, b, d, hh, a, e, t);
      layerUpdate(W2, S2, x2, out, hh, d, a, e, t);
    } else {
      layerUpdate(W1, S1, kh, out, d, d, a, e, t);
    }
    if (end != 0) {
      flushTiny(W1, size1, FLUSH_STATE);
      flushTiny(S1, size1, FLUSH_STATE);
      if (depth == 2) {
        flushTiny(W2, size2, FLUSH_STATE);
        flushTiny(S2, size2, FLUSH_STATE);
      }
    }
    retrieve(y + (<usize>(h * d) << 2), qh, W1, W2, d, hh, depth, act, residual != 0, z);
  }
}

/** y (H, d) = M_W(q) per head with fixed weights w1 (H, d, hh), w2 (H, hh, d): MAC's read. */
export function memoryTokenRead(
  q: usize,
  w1: usize,
  w2: usize,
  y: usize,
  H: i32,
  d: i32,
  hh: i32,
  depth: i32,
  act: i32,
  residual: i32,
  scratch: usize,
): void {
  for (let h: i32 = 0; h < H; h++) {
    retrieve(
      y + (<usize>(h * d) << 2),
      q + (<usize>(h * d) << 2),
      w1 + (<usize>(h * d * hh) << 2),
      w2 + (<usize>(h * hh * d) << 2),
      d,
      hh,
      depth,
      act,
      residual != 0,
      scratch,
    );
  }
}
