// AssemblyScript source of the fused memory-scan kernels (the neural long-term memory of
// src/memory/scan.ts; derivation in src/memory/chunk-parallel.md), forward and reverse mode.
//
// Entry points: memoryScanForwardHead / memoryScanBackwardHead run every chunk piece (n tokens that
// share the gradient weights G) of ONE leading (batch·head) index, reading their arguments from a
// parameter block (see "per-head drivers" below); the JS glue (../memory-scan.ts) fills one block
// per head and runs the heads, on several threads when a pool is attached.
//
// Memory contract: like matmul.ts, no static data, no globals; every address is passed in, and a
// call writes only its head's outputs and its own scratch (memoryScanScratchBytes for a piece, plus
// the driver's state blocks). Token rows are row-major float32 with pitch d.
// Depth 1: W₁ is d×d; depth 2: W₁ is d×h, W₂ is h×d.
//
// State blocks. The state (W_l, S_l) of all layers lives in one block: for each layer a
// d_in × 2·d_out row-major matrix [W_l | S_l] (layer 2 right after layer 1), so that the products
// with W and S share one matmul: R [W | S], Xᵀ [pΔ | εΔ], X [dW | dS], [pΔ | εΔ] [dW | dS]ᵀ.
// Adjoint blocks have the same layout. G (the chunk-start weights) is passed per layer with its
// row pitch (2·d_out when it is the W part of a block, d_out when it is a plain matrix).
//
// Forward (per piece, rows are tokens):
//   A[t,j] = Π_{i=j+1..t}(1−α_i), E[t,j] = Π_{i=j+1..t} η_i (recurrence, no logs or division),
//   β_t = Π_{i≤t}(1−α_i), m_t = Π_{i≤t} η_i, C = A E, γ = A m, P[t,s] = C[t,s] θ_s.
//   Key pass at G: X₁ = K, Z = K G₁, X₂ = φ(Z), out = X₂ G₂ (+K), Δ₂ = 2(out − V),
//   B = Δ₂ G₂ᵀ, Δ₁ = B ⊙ φ'(Z)  (depth 1: Δ₁ = 2(K G₁ (+K) − V)).
//   Retrieval: Z_l = β⊙(R_l W_l) + γ⊙(R_l S_l) − (P ⊙ R_l X_lᵀ) Δ_l, R₁ = Q, R₂ = φ(Z₁), y = Z_L (+Q).
//   State: W_l ← β_n W_l + γ_n S_l − X_lᵀ diag(P[n−1,:]) Δ_l, S_l ← m_n S_l − X_lᵀ diag(E[n−1,:]θ) Δ_l.
//
// Backward (per piece, in reverse; d· is the cotangent, p = P[n−1,:], ε = E[n−1,:] ⊙ θ):
//   state:     dX_l = −[p⊙Δ_l | ε⊙Δ_l][dW' | dS']ᵀ, dΔ_l = −(p⊙X_l dW' + ε⊙X_l dS'),
//              dp_s = −(X_l dW')_s·Δ_s, dε_s = −(X_l dS')_s·Δ_s, dβ_n, dγ_n, dm_n = ⟨dW',W⟩, ⟨dW',S⟩, ⟨dS',S⟩,
//              dW = β_n dW', dS = γ_n dW' + m_n dS'.
//   retrieval: dβ_t = dZ_t·(R W)_t, dγ_t = dZ_t·(R S)_t, [dW | dS] += Rᵀ[β⊙dZ | γ⊙dZ],
//              dR = [β⊙dZ | γ⊙dZ][W | S]ᵀ + dM X, dM = −(dZ Δᵀ) ⊙ P (lower), dP −= (dZ Δᵀ) ⊙ R Xᵀ,
//              dΔ −= (P ⊙ R Xᵀ)ᵀ dZ, dX += dMᵀ R; layer 1 gets dZ₁ = dR₂ ⊙ φ'(Z₁); dQ = dR₁ (+dy).
//   key pass:  dB = dΔ₁ ⊙ φ'(Z), dZ = dΔ₁ ⊙ B ⊙ φ''(Z) + (dX₂ + dout G₂ᵀ) ⊙ φ'(Z) with
//              dout = 2 (dΔ₂ + dB G₂); dG₂ += dBᵀ Δ₂ + X₂ᵀ dout, dG₁ += Kᵀ dZ, dK = dX₁ + dZ G₁ᵀ (+dout),
//              dV = −dout (depth 1: dout = 2 dΔ₁, dG₁ += Kᵀ dout, dK = dX₁ + dout G₁ᵀ (+dout)).
//   gates:     dC = dP ⊙ θ_row, dθ_s = Σ_t dP[t,s] C[t,s] + dε_s E[n−1,s], dE[n−1,:] += dε ⊙ θ;
//              dA = dC Eᵀ + dγ mᵀ, dE += Aᵀ dC, dm += Aᵀ dγ; for a product D[t,j] = Π_{i=j+1..t} g_i
//              and its prefix c_t = Π_{i≤t} g_i: dg_i = Σ_{t≥i} D[t,i] (Σ_{j<i} dD[t,j] D[i−1,j] + c_{i−1} dc_t)
//              (no division, exact for gates of 0 or 1); dα = −d(1−α).

import { activations, addScaled, copyWords, FLUSH_STATE, flushTiny, mulRow } from './math';
import { dotRow, gemm } from './tiles';
import { matmul, matmulScratchBytes } from './matmul';

// ---- small helpers ------------------------------------------------------------------------------

@inline function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function st(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

@inline function align16(bytes: i32): i32 {
  return (bytes + 15) & ~15;
}

// ---- denormal-proof state ------------------------------------------------------------------------
//
// WebAssembly cannot set flush-to-zero, and x86 cores compute on float32 denormals (|x| < 2⁻¹²⁶),
// and on products that land among them, 10–100× slower. A memory that forgets faster than it
// writes decays geometrically through the whole float32 range (measured, α ∈ [0, 0.05]: after
// 4096 tokens 65,531 of 65,536 entries of W₁ were denormals, and the scan ran 19× slower than
// with α = 0). Flushing the carried state only below 2⁻¹²⁶ is not enough: while it passes
// 1e−18…1e−25 the key pass multiplies two state-sized factors (φ(K G₁) G₂), and while it passes
// 1e−31…1e−38 it meets gate-sized ones; each range measured 10–60× slower per chunk. The backward
// meets the same decay in the state's cotangent (shrinking by β_n and m_n per chunk, backwards)
// and in dy = ∂/∂y of a decaying memory's retrievals, and multiplies them with the state.
// So, at chunk boundaries (the same whatever the calls' split points, so a split stream still
// equals the whole one), the carried state is flushed below FLUSH_STATE, and the backward flushes
// the state's cotangent and dy below FLUSH_COTANGENT times the largest cotangent entering the
// head (never below 2⁻¹²⁶). A state entry × a cotangent entry × a gate-sized factor then stays
// above 2⁻¹¹⁸ of the cotangents' scale. Measured after this: the stress gates of the bench
// (α ≤ 0.05 or ≤ 0.5, θ ~ 1e−4, η near 1) run fwd+bwd as fast as realistic ones. The backward
// treats every flush as the identity (the derivative of SPEC's recurrence). NaN and ±∞ stay.

// The smallest normal float32, 2⁻¹²⁶.
const FLT_MIN: f32 = 1.17549435e-38;
// Cotangents 2⁻³⁰ (9.3e−10) below the largest one entering a head's backward are flushed: each
// one's share of any gradient is below 1e−9 of that gradient's scale.
const FLUSH_COTANGENT: f32 = 9.3132257e-10; // 2⁻³⁰

// C (m×n, dense, pitch n) = A B with A[i,p] at a[i·ars + p·acs], B[p,j] at b[p·brs + j·bcs].
// Rows of B contiguous (bcs = 1): the register tiles straight on the operands (gemm), no packing:
// these products are small (a chunk's n rows), and packing A and B cost more than it saved
// (measured: MAC's scan, d_h = 32, h = 64, b = 16, fwd+bwd 7–8 % faster; d_h = 64, h = 256 the same).
// For k ≤ 256 the sums are the packed path's, in the same order. Bᵀ stored: matmul, which packs it.
@inline function mm(
  a: usize,
  ars: i32,
  acs: i32,
  b: usize,
  brs: i32,
  bcs: i32,
  c: usize,
  m: i32,
  n: i32,
  k: i32,
  ws: usize,
): void {
  if (bcs == 1 && (n & 3) == 0 && k >= 1) {
    gemm(c, <usize>n << 2, a, <usize>ars << 2, <usize>acs << 2, b, <usize>brs << 2, m, n, k, false);
    return;
  }
  matmul(a, b, c, m, n, k, ars, acs, brs, bcs, 0, m, ws);
}

// max |x| over `count` floats at p (NaN is ignored).
function maxAbs(p: usize, count: i32): f32 {
  let acc = f32x4.splat(0);
  let j: i32 = 0;
  for (; j + 4 <= count; j += 4) acc = f32x4.pmax(acc, f32x4.abs(v128.load(p + (<usize>j << 2))));
  let r = max(
    max(f32x4.extract_lane(acc, 0), f32x4.extract_lane(acc, 1)),
    max(f32x4.extract_lane(acc, 2), f32x4.extract_lane(acc, 3)),
  );
  for (; j < count; j++) {
    const x = abs<f32>(ld(p, j));
    if (x > r) r = x;
  }
  return r;
}

// out[j] = a·x[j] + b·y[j] over `cols` floats (y = 0: out = a·x). out may equal x or y.
function axpby(out: usize, a: f32, x: usize, b: f32, y: usize, cols: i32): void {
  const av = f32x4.splat(a);
  const bv = f32x4.splat(b);
  let j: i32 = 0;
  if (y == 0) {
    for (; j + 4 <= cols; j += 4) {
      const o = <usize>j << 2;
      v128.store(out + o, f32x4.mul(av, v128.load(x + o)));
    }
    for (; j < cols; j++) st(out, j, a * ld(x, j));
    return;
  }
  for (; j + 4 <= cols; j += 4) {
    const o = <usize>j << 2;
    v128.store(out + o, f32x4.add(f32x4.mul(av, v128.load(x + o)), f32x4.mul(bv, v128.load(y + o))));
  }
  for (; j < cols; j++) st(out, j, a * ld(x, j) + b * ld(y, j));
}

// dst (rows × cols, pitch dstStride) += src (dense, pitch cols).
function addRows(dst: usize, dstStride: i32, src: usize, rows: i32, cols: i32): void {
  for (let i: i32 = 0; i < rows; i++) addScaled(at(dst, i * dstStride), 1, at(src, i * cols), cols);
}

// out (n × 2·cols) = [s1[t]·x[t, :] | s2[t]·x[t, :]] for an n×cols matrix x.
function scaleRows2(out: usize, s1: usize, s2: usize, sign: f32, x: usize, n: i32, cols: i32): void {
  for (let t: i32 = 0; t < n; t++) {
    const xr = at(x, t * cols);
    const o = at(out, 2 * t * cols);
    axpby(o, sign * ld(s1, t), xr, 0, 0, cols);
    axpby(at(o, cols), sign * ld(s2, t), xr, 0, 0, cols);
  }
}

// ---- scratch layout -------------------------------------------------------------------------------

// The scratch region: [matmul workspace][VECS vectors of n][SQUARES n×n][ROWS n × 2·wide]
// [one wide × 2·wide matrix], wide = max(d, h).
const VECS: i32 = 10;
const SQUARES: i32 = 11;
const ROWS: i32 = 21; // the backward's last: the piece's flushed dy (headBackwardPiece)

@inline function hidden(d: i32, h: i32, depth: i32): i32 {
  return depth == 2 ? h : d;
}

function workspaceBytes(n: i32, d: i32, h: i32, depth: i32): i32 {
  const widest = max(max(2 * n, 2 * d), 2 * hidden(d, h, depth));
  return align16(matmulScratchBytes(128, widest, 256));
}

@inline function vecBytes(n: i32): i32 {
  return align16(n * 4);
}

@inline function squareBytes(n: i32): i32 {
  return align16(n * n * 4);
}

@inline function rowBytes(n: i32, d: i32, h: i32, depth: i32): i32 {
  return align16(n * 2 * max(d, hidden(d, h, depth)) * 4);
}

@inline function bigBytes(d: i32, h: i32, depth: i32): i32 {
  return align16(max(d, hidden(d, h, depth)) * 2 * max(d, hidden(d, h, depth)) * 4);
}

/** Bytes of scratch memoryScanForwardPiece / memoryScanBackwardPiece need for one piece of n tokens. */
export function memoryScanScratchBytes(n: i32, d: i32, h: i32, depth: i32): i32 {
  return (
    workspaceBytes(n, d, h, depth) +
    VECS * vecBytes(n) +
    SQUARES * squareBytes(n) +
    ROWS * rowBytes(n, d, h, depth) +
    bigBytes(d, h, depth)
  );
}

@inline function vecAt(scratch: usize, n: i32, d: i32, h: i32, depth: i32, i: i32): usize {
  return scratch + <usize>workspaceBytes(n, d, h, depth) + <usize>(i * vecBytes(n));
}

@inline function squareAt(scratch: usize, n: i32, d: i32, h: i32, depth: i32, i: i32): usize {
  return vecAt(scratch, n, d, h, depth, VECS) + <usize>(i * squareBytes(n));
}

@inline function rowAt(scratch: usize, n: i32, d: i32, h: i32, depth: i32, i: i32): usize {
  return squareAt(scratch, n, d, h, depth, SQUARES) + <usize>(i * rowBytes(n, d, h, depth));
}

@inline function bigAt(scratch: usize, n: i32, d: i32, h: i32, depth: i32): usize {
  return rowAt(scratch, n, d, h, depth, ROWS);
}

// Gate products (entries ≤ 1, diagonal 1) below 1e−20 are stored as exact zeros, and so are the
// masked scores P ⊙ R Xᵀ below 1e−30: nothing next to the other terms in float32, but products of
// such numbers make denormals, which cost ~70× on some x86 cores.
@inline function flush(x: f64): f32 {
  return abs<f64>(x) < 1e-20 ? 0 : <f32>x;
}

@inline function flushProduct(x: f32): f32 {
  return abs<f32>(x) < <f32>1e-30 ? 0 : x;
}

// ---- piece records -----------------------------------------------------------------------------
//
// When the forward keeps what the backward needs, each piece also writes a record (n tokens):
// depth 2: Z, B, X₂, φ'(Z), φ''(Z), Δ₁, R₂ = φ(Z₁), φ'(Z₁) (n×h each, B and X₂ adjacent),
// R₁ [W₁ | S₁] (n×2h), Δ₂ and a free n×d slot after it, R₁ X₁ᵀ and R₂ X₂ᵀ (n×n);
// depth 1: Δ₁ (n×d), R₁ X₁ᵀ (n×n). The backward then skips recomputing them (and may overwrite
// the record: it is read once).

@inline function recordFloats(n: i32, d: i32, hh: i32, depth: i32): i32 {
  return depth == 2 ? 10 * n * hh + 2 * n * d + 2 * n * n : n * d + n * n;
}

/** Floats of one piece record for pieces of up to n tokens. */
export function memoryScanRecordFloats(n: i32, d: i32, h: i32, depth: i32): i32 {
  return recordFloats(n, d, hidden(d, h, depth), depth);
}

// ---- forward building blocks ----------------------------------------------------------------------

// Gate products of one piece: A, E, C, P (n×n, zero above the diagonal), β, m, γ, and the last rows
// pRow = P[n−1, :], eRow = E[n−1, :] ⊙ θ.
function gates(
  n: i32,
  alpha: usize,
  eta: usize,
  theta: usize,
  A: usize,
  E: usize,
  C: usize,
  P: usize,
  beta: usize,
  m: usize,
  gamma: usize,
  pRow: usize,
  eRow: usize,
): void {
  let b: f64 = 1;
  let mm: f64 = 1;
  for (let t: i32 = 0; t < n; t++) {
    const keep = 1.0 - <f64>ld(alpha, t);
    const e = <f64>ld(eta, t);
    const row = t * n;
    for (let j: i32 = 0; j < t; j++) {
      st(A, row + j, flush(keep * <f64>ld(A, row - n + j)));
      st(E, row + j, flush(e * <f64>ld(E, row - n + j)));
    }
    st(A, row + t, 1);
    st(E, row + t, 1);
    for (let j = t + 1; j < n; j++) {
      st(A, row + j, 0);
      st(E, row + j, 0);
    }
    b = <f64>flush(b * keep);
    mm = <f64>flush(mm * e);
    st(beta, t, <f32>b);
    st(m, t, <f32>mm);
  }
  for (let t: i32 = 0; t < n; t++) {
    const row = t * n;
    let g: f64 = 0;
    for (let s: i32 = 0; s <= t; s++) {
      let c: f64 = 0;
      for (let j = s; j <= t; j++) c += <f64>ld(A, row + j) * <f64>ld(E, j * n + s);
      st(C, row + s, flush(c));
      st(P, row + s, flush(c * <f64>ld(theta, s)));
      g += <f64>ld(A, row + s) * <f64>ld(m, s);
    }
    for (let s = t + 1; s < n; s++) {
      st(C, row + s, 0);
      st(P, row + s, 0);
    }
    st(gamma, t, flush(g));
  }
  const last = (n - 1) * n;
  for (let s: i32 = 0; s < n; s++) {
    st(pRow, s, ld(P, last + s));
    st(eRow, s, flush(<f64>ld(E, last + s) * <f64>ld(theta, s)));
  }
}

// The gradient factors at G (eq. 12). Depth 2 fills Z = K G₁, X₂ = φ(Z), phi1 = φ'(Z),
// phi2 = φ''(Z) (phi2 = 0: skipped), Δ₂, B = Δ₂ G₂ᵀ and Δ₁ = B ⊙ φ'(Z); depth 1 fills Δ₁.
// g1/g2 have row pitches gs1/gs2.
function keyPass(
  n: i32,
  d: i32,
  hh: i32,
  depth: i32,
  act: i32,
  residual: i32,
  k: usize,
  v: usize,
  g1: usize,
  gs1: i32,
  g2: usize,
  gs2: i32,
  Z: usize,
  X2: usize,
  B: usize,
  D1: usize,
  D2: usize,
  phi1: usize,
  phi2: usize,
  ws: usize,
): void {
  const out = depth == 2 ? D2 : D1;
  if (depth == 2) {
    mm(k, d, 1, g1, gs1, 1, Z, n, hh, d, ws);
    activations(act, Z, X2, phi1, phi2, n * hh);
    mm(X2, hh, 1, g2, gs2, 1, D2, n, d, hh, ws);
  } else {
    mm(k, d, 1, g1, gs1, 1, D1, n, d, d, ws);
  }
  const count = n * d;
  if (residual) axpby(out, 2, out, 2, k, count);
  else axpby(out, 2, out, 0, 0, count);
  addScaled(out, -2, v, count);
  if (depth == 2) {
    mm(D2, d, 1, g2, 1, gs2, B, n, hh, d, ws); // Δ₂ G₂ᵀ
    mulRow(D1, B, phi1, n * hh);
  }
}

// One retrieval layer: Z = β⊙(R W) + γ⊙(R S) − (P ⊙ R Xᵀ) Δ with WS = [W | S] (din × 2·dout);
// keeps RWS = R [W | S] and M = R Xᵀ; PM (n×n) and Att (n×dout) are temporaries.
function retrieveLayer(
  n: i32,
  din: i32,
  dout: i32,
  R: usize,
  WS: usize,
  X: usize,
  D: usize,
  P: usize,
  beta: usize,
  gamma: usize,
  Z: usize,
  RWS: usize,
  M: usize,
  PM: usize,
  Att: usize,
  ws: usize,
): void {
  mm(R, din, 1, WS, 2 * dout, 1, RWS, n, 2 * dout, din, ws);
  mm(R, din, 1, X, 1, din, M, n, n, din, ws); // R Xᵀ
  for (let t: i32 = 0; t < n; t++) {
    const row = t * n;
    for (let s: i32 = 0; s <= t; s++) st(PM, row + s, flushProduct(ld(P, row + s) * ld(M, row + s)));
    for (let s = t + 1; s < n; s++) st(PM, row + s, 0);
  }
  mm(PM, n, 1, D, dout, 1, Att, n, dout, n, ws);
  for (let t: i32 = 0; t < n; t++) {
    const zr = at(Z, t * dout);
    const rw = at(RWS, 2 * t * dout);
    axpby(zr, ld(beta, t), rw, ld(gamma, t), at(rw, dout), dout);
    addScaled(zr, -1, at(Att, t * dout), dout);
  }
}

// The state after the piece for one layer: [W | S] ← [β_n W + γ_n S | m_n S] − Xᵀ [pΔ | εΔ],
// flushed below FLUSH_STATE when the piece ends at a chunk boundary (`boundary`).
function stateUpdate(
  n: i32,
  din: i32,
  dout: i32,
  X: usize,
  D: usize,
  pRow: usize,
  eRow: usize,
  betaN: f32,
  gammaN: f32,
  mN: f32,
  WS: usize,
  WSo: usize,
  boundary: bool,
  T2: usize,
  U: usize,
  ws: usize,
): void {
  scaleRows2(T2, pRow, eRow, 1, D, n, dout);
  mm(X, 1, din, T2, 2 * dout, 1, U, din, 2 * dout, n, ws); // Xᵀ [pΔ | εΔ]
  const pitch = 2 * dout;
  for (let i: i32 = 0; i < din; i++) {
    const w = at(WS, i * pitch);
    const o = at(WSo, i * pitch);
    const u = at(U, i * pitch);
    axpby(o, betaN, w, gammaN, at(w, dout), dout);
    addScaled(o, -1, u, dout);
    axpby(at(o, dout), mN, at(w, dout), 0, 0, dout);
    addScaled(at(o, dout), -1, at(u, dout), dout);
    if (boundary) flushTiny(o, pitch, FLUSH_STATE);
  }
}

/**
 * One chunk piece forward for one head. q, k, v, y: n×d rows; alpha, eta, theta: n gates; state:
 * the state block before the piece; g1/g2 with row pitches gs1/gs2: the gradient weights G;
 * stateOut receives the block after the piece (must not overlap the inputs). y = 0 skips the
 * retrieval (state only).
 */
function memoryScanForwardPiece(
  n: i32,
  d: i32,
  h: i32,
  depth: i32,
  act: i32,
  residual: i32,
  q: usize,
  k: usize,
  v: usize,
  alpha: usize,
  eta: usize,
  theta: usize,
  state: usize,
  g1: usize,
  gs1: i32,
  g2: usize,
  gs2: i32,
  y: usize,
  stateOut: usize,
  boundary: bool,
  record: usize,
  scratch: usize,
): void {
  const hh = hidden(d, h, depth);
  const ws = scratch;
  const beta = vecAt(scratch, n, d, h, depth, 0);
  const m = vecAt(scratch, n, d, h, depth, 1);
  const gamma = vecAt(scratch, n, d, h, depth, 2);
  const pRow = vecAt(scratch, n, d, h, depth, 3);
  const eRow = vecAt(scratch, n, d, h, depth, 4);
  const A = squareAt(scratch, n, d, h, depth, 0);
  const E = squareAt(scratch, n, d, h, depth, 1);
  const C = squareAt(scratch, n, d, h, depth, 2);
  const P = squareAt(scratch, n, d, h, depth, 3);
  const PM = squareAt(scratch, n, d, h, depth, 5);
  const RWS = rowAt(scratch, n, d, h, depth, 6);
  const Att = rowAt(scratch, n, d, h, depth, 7);
  const Zq = rowAt(scratch, n, d, h, depth, 8);
  const T2 = rowAt(scratch, n, d, h, depth, 10);
  const U = bigAt(scratch, n, d, h, depth);
  // Kept in the record when there is one, else scratch.
  let Z = rowAt(scratch, n, d, h, depth, 0);
  let X2 = rowAt(scratch, n, d, h, depth, 1);
  let B = rowAt(scratch, n, d, h, depth, 2);
  let D1 = rowAt(scratch, n, d, h, depth, 3);
  let D2 = rowAt(scratch, n, d, h, depth, 4);
  let phi1 = rowAt(scratch, n, d, h, depth, 5);
  let R2 = rowAt(scratch, n, d, h, depth, 9);
  let phi2: usize = 0;
  let phiq: usize = 0;
  let RWS1 = RWS;
  let M1 = squareAt(scratch, n, d, h, depth, 4);
  let M2 = M1;
  if (record != 0) {
    const nh = <usize>(n * hh) << 2;
    if (depth == 2) {
      Z = record;
      B = record + nh;
      X2 = record + 2 * nh;
      phi1 = record + 3 * nh;
      phi2 = record + 4 * nh;
      D1 = record + 5 * nh;
      R2 = record + 6 * nh;
      phiq = record + 7 * nh;
      RWS1 = record + 8 * nh;
      D2 = record + 10 * nh;
      M1 = D2 + (<usize>(2 * n * d) << 2);
      M2 = M1 + (<usize>(n * n) << 2);
    } else {
      D1 = record;
      M1 = record + (<usize>(n * d) << 2);
    }
  }
  const ws1 = state;
  const ws2 = state + (<usize>(2 * d * hh) << 2);
  const wso1 = stateOut;
  const wso2 = stateOut + (<usize>(2 * d * hh) << 2);

  gates(n, alpha, eta, theta, A, E, C, P, beta, m, gamma, pRow, eRow);
  keyPass(n, d, hh, depth, act, residual, k, v, g1, gs1, g2, gs2, Z, X2, B, D1, D2, phi1, phi2, ws);
  if (y != 0) {
    if (depth == 2) {
      retrieveLayer(n, d, hh, q, ws1, k, D1, P, beta, gamma, Zq, RWS1, M1, PM, Att, ws);
      activations(act, Zq, R2, phiq, 0, n * hh);
      retrieveLayer(n, hh, d, R2, ws2, X2, D2, P, beta, gamma, y, RWS, M2, PM, Att, ws);
    } else {
      retrieveLayer(n, d, d, q, ws1, k, D1, P, beta, gamma, y, RWS, M1, PM, Att, ws);
    }
    if (residual) addScaled(y, 1, q, n * d);
  }
  const last = n - 1;
  const betaN = ld(beta, last);
  const gammaN = ld(gamma, last);
  const mN = ld(m, last);
  stateUpdate(n, d, hh, k, D1, pRow, eRow, betaN, gammaN, mN, ws1, wso1, boundary, T2, U, ws);
  if (depth == 2) stateUpdate(n, hh, d, X2, D2, pRow, eRow, betaN, gammaN, mN, ws2, wso2, boundary, T2, U, ws);
}

// ---- backward building blocks ---------------------------------------------------------------------

// Adjoint of the state update of one layer given dWSn = [dWn | dSn] (the cotangent of the state
// after the piece). Initialises dX and dD (∂/∂X, ∂/∂Δ of this term) and writes dWS (the state
// before); accumulates into dP's last row (dPlast), dEps (∂/∂eRow) and the last entries of dBeta,
// dGamma, dM.
function stateUpdateBack(
  n: i32,
  din: i32,
  dout: i32,
  X: usize,
  D: usize,
  pRow: usize,
  eRow: usize,
  betaN: f32,
  gammaN: f32,
  mN: f32,
  WS: usize,
  dWSn: usize,
  dX: usize,
  dD: usize,
  dPlast: usize,
  dEps: usize,
  dBeta: usize,
  dGamma: usize,
  dM: usize,
  dWS: usize,
  Y: usize,
  T2: usize,
  ws: usize,
): void {
  const pitch = 2 * dout;
  mm(X, din, 1, dWSn, pitch, 1, Y, n, pitch, din, ws); // [X dWn | X dSn]
  for (let s: i32 = 0; s < n; s++) {
    const yw = at(Y, s * pitch);
    const ys = at(yw, dout);
    const dr = at(D, s * dout);
    st(dPlast, s, ld(dPlast, s) - dotRow(yw, dr, dout));
    st(dEps, s, ld(dEps, s) - dotRow(ys, dr, dout));
    axpby(at(dD, s * dout), -ld(pRow, s), yw, -ld(eRow, s), ys, dout);
  }
  scaleRows2(T2, pRow, eRow, -1, D, n, dout);
  mm(T2, pitch, 1, dWSn, 1, pitch, dX, n, din, pitch, ws); // −[pΔ | εΔ] [dWn | dSn]ᵀ
  let db: f64 = 0;
  let dg: f64 = 0;
  let dm: f64 = 0;
  for (let i: i32 = 0; i < din; i++) {
    const w = at(WS, i * pitch);
    const g = at(dWSn, i * pitch);
    const o = at(dWS, i * pitch);
    db += <f64>dotRow(g, w, dout);
    dg += <f64>dotRow(g, at(w, dout), dout);
    dm += <f64>dotRow(at(g, dout), at(w, dout), dout);
    axpby(o, betaN, g, 0, 0, dout);
    axpby(at(o, dout), gammaN, g, mN, at(g, dout), dout);
  }
  const last = n - 1;
  st(dBeta, last, ld(dBeta, last) + <f32>db);
  st(dGamma, last, ld(dGamma, last) + <f32>dg);
  st(dM, last, ld(dM, last) + <f32>dm);
}

// Adjoint of one retrieval layer Z = β⊙(R W) + γ⊙(R S) − (P ⊙ M) Δ with M = R Xᵀ, given dZ.
// With haveRWS, RWS = R [W | S] from the forward gives ∂/∂β, ∂/∂γ; otherwise they come from
// dZ Wᵀ and dZ Sᵀ. Accumulates into dBeta, dGamma, dWS, dX, dD, dP; writes dR. M is overwritten.
function retrieveLayerBack(
  n: i32,
  din: i32,
  dout: i32,
  haveRWS: bool,
  dZ: usize,
  R: usize,
  WS: usize,
  X: usize,
  D: usize,
  P: usize,
  beta: usize,
  gamma: usize,
  RWS: usize,
  M: usize,
  dBeta: usize,
  dGamma: usize,
  dWS: usize,
  dR: usize,
  dX: usize,
  dD: usize,
  dP: usize,
  t1: usize,
  T2: usize,
  Hm: usize,
  U: usize,
  ws: usize,
): void {
  const pitch = 2 * dout;
  scaleRows2(T2, beta, gamma, 1, dZ, n, dout); // [β⊙dZ | γ⊙dZ]
  if (haveRWS) {
    for (let t: i32 = 0; t < n; t++) {
      const z = at(dZ, t * dout);
      const rw = at(RWS, t * pitch);
      st(dBeta, t, ld(dBeta, t) + dotRow(z, rw, dout));
      st(dGamma, t, ld(dGamma, t) + dotRow(z, at(rw, dout), dout));
    }
    mm(T2, pitch, 1, WS, 1, pitch, dR, n, din, pitch, ws); // [β⊙dZ | γ⊙dZ] [W | S]ᵀ
  } else {
    mm(dZ, dout, 1, WS, 1, pitch, dR, n, din, dout, ws); // dZ Wᵀ
    mm(dZ, dout, 1, at(WS, dout), 1, pitch, t1, n, din, dout, ws); // dZ Sᵀ
    for (let t: i32 = 0; t < n; t++) {
      const r = at(R, t * din);
      const u1 = at(dR, t * din);
      const u2 = at(t1, t * din);
      st(dBeta, t, ld(dBeta, t) + dotRow(r, u1, din));
      st(dGamma, t, ld(dGamma, t) + dotRow(r, u2, din));
      axpby(u1, ld(beta, t), u1, ld(gamma, t), u2, din);
    }
  }
  mm(R, 1, din, T2, pitch, 1, U, din, pitch, n, ws); // Rᵀ [β⊙dZ | γ⊙dZ]
  addScaled(dWS, 1, U, din * pitch);
  mm(dZ, dout, 1, D, 1, dout, Hm, n, n, dout, ws); // dZ Δᵀ
  for (let t: i32 = 0; t < n; t++) {
    const row = t * n;
    for (let s: i32 = 0; s <= t; s++) {
      const hm = ld(Hm, row + s);
      const mv = ld(M, row + s);
      const p = ld(P, row + s);
      st(dP, row + s, ld(dP, row + s) - hm * mv);
      st(Hm, row + s, -hm * p); // dM
      st(M, row + s, flushProduct(p * mv)); // P ⊙ M
    }
    for (let s = t + 1; s < n; s++) {
      st(Hm, row + s, 0);
      st(M, row + s, 0);
    }
  }
  mm(M, 1, n, dZ, dout, 1, t1, n, dout, n, ws); // (P⊙M)ᵀ dZ
  addScaled(dD, -1, t1, n * dout);
  mm(Hm, n, 1, X, din, 1, t1, n, din, n, ws); // dM X
  addScaled(dR, 1, t1, n * din);
  mm(Hm, 1, n, R, din, 1, t1, n, din, n, ws); // dMᵀ R
  addScaled(dX, 1, t1, n * din);
}

// Adjoint of a gate-product matrix D[t,j] = Π_{i=j+1..t} g_i and of the cumulative product
// c_t = Π_{i≤t} g_i: writes dg_i = Σ_{t≥i} D[t,i] (Σ_{j<i} dD[t,j] D[i−1,j] + c_{i−1} dc_t).
function gateProductBack(n: i32, D: usize, dD: usize, c: usize, dc: usize, dg: usize): void {
  for (let i: i32 = 0; i < n; i++) {
    const cPrev: f64 = i > 0 ? <f64>ld(c, i - 1) : 1.0;
    const prev = (i - 1) * n;
    let acc: f64 = 0;
    for (let t = i; t < n; t++) {
      const row = t * n;
      let f: f64 = cPrev * <f64>ld(dc, t);
      for (let j: i32 = 0; j < i; j++) f += <f64>ld(dD, row + j) * <f64>ld(D, prev + j);
      acc += <f64>ld(D, row + i) * f;
    }
    st(dg, i, <f32>acc);
  }
}

/**
 * One chunk piece backward for one head. Inputs as memoryScanForwardPiece (the state block before
 * the piece and G), plus dy (n×d) and dStateNext, the cotangent block of the state after the piece.
 * Writes dq, dk, dv (n×d), dAlpha, dEta, dTheta (n) and dState (the cotangent block of the state
 * before the piece, without G's part); ADDS the cotangent of G into dg1/dg2 (row pitches
 * dgs1/dgs2), which may be the W parts of dState.
 */
function memoryScanBackwardPiece(
  n: i32,
  d: i32,
  h: i32,
  depth: i32,
  act: i32,
  residual: i32,
  q: usize,
  k: usize,
  v: usize,
  alpha: usize,
  eta: usize,
  theta: usize,
  state: usize,
  g1: usize,
  gs1: i32,
  g2: usize,
  gs2: i32,
  dy: usize,
  dStateNext: usize,
  dq: usize,
  dk: usize,
  dv: usize,
  dAlpha: usize,
  dEta: usize,
  dTheta: usize,
  dState: usize,
  dg1: usize,
  dgs1: i32,
  dg2: usize,
  dgs2: i32,
  record: usize,
  scratch: usize,
): void {
  const hh = hidden(d, h, depth);
  const ws = scratch;
  const beta = vecAt(scratch, n, d, h, depth, 0);
  const m = vecAt(scratch, n, d, h, depth, 1);
  const gamma = vecAt(scratch, n, d, h, depth, 2);
  const pRow = vecAt(scratch, n, d, h, depth, 3);
  const eRow = vecAt(scratch, n, d, h, depth, 4);
  const dBeta = vecAt(scratch, n, d, h, depth, 5);
  const dGamma = vecAt(scratch, n, d, h, depth, 6);
  const dM = vecAt(scratch, n, d, h, depth, 7);
  const dEps = vecAt(scratch, n, d, h, depth, 8);
  const A = squareAt(scratch, n, d, h, depth, 0);
  const E = squareAt(scratch, n, d, h, depth, 1);
  const C = squareAt(scratch, n, d, h, depth, 2);
  const P = squareAt(scratch, n, d, h, depth, 3);
  const dA = squareAt(scratch, n, d, h, depth, 4);
  const dE = squareAt(scratch, n, d, h, depth, 5);
  const dP = squareAt(scratch, n, d, h, depth, 6);
  const PM = squareAt(scratch, n, d, h, depth, 9);
  const Hm = squareAt(scratch, n, d, h, depth, 10);
  const Z = rowAt(scratch, n, d, h, depth, 0);
  const Zq = rowAt(scratch, n, d, h, depth, 7);
  // From the forward's record when there is one, else recomputed into scratch.
  let M1 = squareAt(scratch, n, d, h, depth, 7);
  let M2 = squareAt(scratch, n, d, h, depth, 8);
  let BX = rowAt(scratch, n, d, h, depth, 1); // [B; X₂]: B rows, then X₂ rows (2n × h)
  let D1 = rowAt(scratch, n, d, h, depth, 2);
  let DD = rowAt(scratch, n, d, h, depth, 3); // [Δ₂; ∂out]: Δ₂ rows, then ∂/∂out rows (2n × d)
  let phi1 = rowAt(scratch, n, d, h, depth, 4);
  let phi2 = rowAt(scratch, n, d, h, depth, 5);
  let phiq = rowAt(scratch, n, d, h, depth, 6);
  let R2 = rowAt(scratch, n, d, h, depth, 8);
  let RWS1 = rowAt(scratch, n, d, h, depth, 9);
  if (record != 0) {
    const nh = <usize>(n * hh) << 2;
    if (depth == 2) {
      BX = record + nh;
      phi1 = record + 3 * nh;
      phi2 = record + 4 * nh;
      D1 = record + 5 * nh;
      R2 = record + 6 * nh;
      phiq = record + 7 * nh;
      RWS1 = record + 8 * nh;
      DD = record + 10 * nh;
      M1 = DD + (<usize>(2 * n * d) << 2);
      M2 = M1 + (<usize>(n * n) << 2);
    } else {
      D1 = record;
      M1 = record + (<usize>(n * d) << 2);
    }
  }
  const X2 = BX + (<usize>(n * hh) << 2);
  const dO2 = DD + (<usize>(n * d) << 2);
  const dX1 = rowAt(scratch, n, d, h, depth, 10);
  const dX2 = rowAt(scratch, n, d, h, depth, 11);
  const dD1 = rowAt(scratch, n, d, h, depth, 12);
  const dD2 = rowAt(scratch, n, d, h, depth, 13);
  const dZ = rowAt(scratch, n, d, h, depth, 14);
  const dR = rowAt(scratch, n, d, h, depth, 15);
  const t1 = rowAt(scratch, n, d, h, depth, 16);
  const T2 = rowAt(scratch, n, d, h, depth, 17);
  const Att = rowAt(scratch, n, d, h, depth, 18);
  const U = bigAt(scratch, n, d, h, depth);
  const layer2 = <usize>(2 * d * hh) << 2;
  const ws1 = state;
  const ws2 = state + layer2;
  const dws1 = dState;
  const dws2 = dState + layer2;
  const D2 = DD;

  // 1. The gates, and (without a record) the piece's forward intermediates (the last layer's
  //    R [W | S] is not needed).
  gates(n, alpha, eta, theta, A, E, C, P, beta, m, gamma, pRow, eRow);
  if (record == 0) {
    keyPass(n, d, hh, depth, act, residual, k, v, g1, gs1, g2, gs2, Z, X2, BX, D1, D2, phi1, phi2, ws);
    if (depth == 2) {
      retrieveLayer(n, d, hh, q, ws1, k, D1, P, beta, gamma, Zq, RWS1, M1, PM, Att, ws);
      activations(act, Zq, R2, phiq, 0, n * hh);
      mm(R2, hh, 1, X2, 1, hh, M2, n, n, hh, ws); // R₂ X₂ᵀ
    } else {
      mm(q, d, 1, k, 1, d, M1, n, n, d, ws); // Q Kᵀ
    }
  }

  // 2. Zero the accumulators.
  memory.fill(dBeta, 0, <usize>(4 * vecBytes(n))); // dBeta, dGamma, dM, dEps (consecutive)
  memory.fill(dA, 0, <usize>(3 * squareBytes(n))); // dA, dE, dP (consecutive)

  // 3. The state update (last rows of the coefficient matrices).
  const last = n - 1;
  const betaN = ld(beta, last);
  const gammaN = ld(gamma, last);
  const mN = ld(m, last);
  const dPlast = at(dP, last * n);
  stateUpdateBack(n, d, hh, k, D1, pRow, eRow, betaN, gammaN, mN, ws1, dStateNext,
    dX1, dD1, dPlast, dEps, dBeta, dGamma, dM, dws1, t1, T2, ws);
  if (depth == 2) {
    stateUpdateBack(n, hh, d, X2, D2, pRow, eRow, betaN, gammaN, mN, ws2, dStateNext + layer2,
      dX2, dD2, dPlast, dEps, dBeta, dGamma, dM, dws2, t1, T2, ws);
  }

  // 4. The retrieval, last layer first.
  if (depth == 2) {
    retrieveLayerBack(n, hh, d, false, dy, R2, ws2, X2, D2, P, beta, gamma, 0, M2,
      dBeta, dGamma, dws2, dR, dX2, dD2, dP, t1, T2, Hm, U, ws);
    mulRow(dZ, dR, phiq, n * hh);
    retrieveLayerBack(n, d, hh, true, dZ, q, ws1, k, D1, P, beta, gamma, RWS1, M1,
      dBeta, dGamma, dws1, dR, dX1, dD1, dP, t1, T2, Hm, U, ws);
  } else {
    retrieveLayerBack(n, d, d, false, dy, q, ws1, k, D1, P, beta, gamma, 0, M1,
      dBeta, dGamma, dws1, dR, dX1, dD1, dP, t1, T2, Hm, U, ws);
  }
  const nd = n * d;
  if (residual) axpby(dq, 1, dR, 1, dy, nd);
  else axpby(dq, 1, dR, 0, 0, nd);

  // 5. The gradient factors at G (second order: through φ' and φ'').
  let dO = dD1; // becomes ∂/∂out = 2 ∂/∂Δ_L
  if (depth == 2) {
    const hc = n * hh;
    const dZk = dZ; // ∂/∂Z (the key pre-activation)
    mulRow(dZk, dD1, BX, hc);
    mulRow(dZk, dZk, phi2, hc); // through φ'(Z) in Δ₁
    mulRow(BX, dD1, phi1, hc); // ∂/∂B
    mm(BX, hh, 1, g2, gs2, 1, t1, n, d, hh, ws); // ∂B G₂
    addScaled(dD2, 1, t1, nd);
    dO = dO2;
    axpby(dO, 2, dD2, 0, 0, nd);
    mm(BX, 1, hh, DD, d, 1, U, hh, d, 2 * n, ws); // ∂Bᵀ Δ₂ + X₂ᵀ ∂out
    addRows(dg2, dgs2, U, hh, d);
    mm(dO, d, 1, g2, 1, gs2, t1, n, hh, d, ws); // ∂out G₂ᵀ
    addScaled(dX2, 1, t1, hc);
    mulRow(dX2, dX2, phi1, hc);
    addScaled(dZk, 1, dX2, hc);
    mm(dZk, hh, 1, g1, 1, gs1, t1, n, d, hh, ws); // ∂Z G₁ᵀ
    mm(k, 1, d, dZk, hh, 1, U, d, hh, n, ws); // Kᵀ ∂Z
    addRows(dg1, dgs1, U, d, hh);
  } else {
    axpby(dO, 2, dO, 0, 0, nd);
    mm(dO, d, 1, g1, 1, gs1, t1, n, d, d, ws); // ∂out G₁ᵀ
    mm(k, 1, d, dO, d, 1, U, d, d, n, ws); // Kᵀ ∂out
    addRows(dg1, dgs1, U, d, d);
  }
  axpby(dv, -1, dO, 0, 0, nd);
  axpby(dk, 1, dX1, 1, t1, nd);
  if (residual) addScaled(dk, 1, dO, nd);

  // 6. The gates: P = C ⊙ θ_row, γ = A m, C = A E, then the products themselves.
  for (let s: i32 = 0; s < n; s++) {
    const th = ld(theta, s);
    let acc: f64 = <f64>ld(dEps, s) * <f64>ld(E, last * n + s);
    st(dE, last * n + s, ld(dE, last * n + s) + ld(dEps, s) * th);
    for (let t = s; t < n; t++) {
      const i = t * n + s;
      const dp = ld(dP, i);
      acc += <f64>dp * <f64>ld(C, i);
      st(dP, i, dp * th); // dC
    }
    st(dTheta, s, <f32>acc);
  }
  for (let t: i32 = 0; t < n; t++) {
    const row = t * n;
    const dg = <f64>ld(dGamma, t);
    for (let j: i32 = 0; j <= t; j++) {
      let acc: f64 = dg * <f64>ld(m, j);
      for (let s: i32 = 0; s <= j; s++) acc += <f64>ld(dP, row + s) * <f64>ld(E, j * n + s);
      st(dA, row + j, <f32>acc);
    }
  }
  for (let j: i32 = 0; j < n; j++) {
    let dmj: f64 = <f64>ld(dM, j);
    for (let t = j; t < n; t++) dmj += <f64>ld(A, t * n + j) * <f64>ld(dGamma, t);
    st(dM, j, <f32>dmj);
    const row = j * n;
    for (let s: i32 = 0; s <= j; s++) {
      let acc: f64 = <f64>ld(dE, row + s);
      for (let t = j; t < n; t++) acc += <f64>ld(A, t * n + j) * <f64>ld(dP, t * n + s);
      st(dE, row + s, <f32>acc);
    }
  }
  gateProductBack(n, A, dA, beta, dBeta, dAlpha); // ∂/∂(1 − α)
  for (let i: i32 = 0; i < n; i++) st(dAlpha, i, -ld(dAlpha, i));
  gateProductBack(n, E, dE, m, dM, dEta);
}

/**
 * Copies (mode 0) or adds (mode 1) a rows × cols matrix: dst[i, j] (=|+=) src[i, j], with row
 * pitches dstStride and srcStride. src = 0 stands for zeros.
 */
export function memoryScanCopyRows(
  dst: usize,
  dstStride: i32,
  src: usize,
  srcStride: i32,
  rows: i32,
  cols: i32,
  mode: i32,
): void {
  for (let i: i32 = 0; i < rows; i++) {
    const o = at(dst, i * dstStride);
    if (src == 0) {
      if (mode == 0) memory.fill(o, 0, <usize>cols << 2);
    } else if (mode == 0) {
      copyWords(o, at(src, i * srcStride), cols);
    } else {
      addScaled(o, 1, at(src, i * srcStride), cols);
    }
  }
}


// ---- per-head drivers -------------------------------------------------------------------------------
//
// memoryScanForwardHead / memoryScanBackwardHead run every piece of one (batch·head) index, reading
// their arguments from a parameter block of i32 words (the P_* indices below, written by the JS
// glue). `scratch` holds the piece scratch (memoryScanScratchBytes, in word P_PIECE_BYTES) followed
// by the driver's state blocks (forward: 3; backward: see memoryScanBackwardHead). One head touches
// only its own outputs, so different heads may run on different threads with their own scratch.

const P_D: i32 = 0;
const P_H: i32 = 1;
const P_DEPTH: i32 = 2;
const P_ACT: i32 = 3;
const P_RESIDUAL: i32 = 4;
const P_T: i32 = 5; // tokens in this call
const P_B: i32 = 6; // chunk size
const P_OFFSET: i32 = 7; // position mod b at the first token
const P_Q: i32 = 8; // q, k, v, alpha, eta, theta of this head (6 words)
const P_W: i32 = 14; // input W_l (2 words, pitch d_out)
const P_S: i32 = 16; // input S_l (2 words; 0 = zeros)
const P_C: i32 = 18; // carried chunk-start weights G_l (2 words; used when P_OFFSET ≠ 0)
const P_Y: i32 = 20; // y rows of this head
const P_WO: i32 = 21; // final W_l, S_l, chunk-start W_l (2 words each; chunk-start 0 = none)
const P_SO: i32 = 23;
const P_CO: i32 = 25;
const P_SAVED: i32 = 27; // this head's P piece-start state blocks, then P piece records (0 = none)
const P_PIECE_BYTES: i32 = 28; // bytes of piece scratch at the start of `scratch`
const P_DY: i32 = 29; // backward: cotangents of y, W_l, S_l, chunk-start W_l (0 = none)
const P_DWO: i32 = 30;
const P_DSO: i32 = 32;
const P_DCO: i32 = 34;
const P_DQ: i32 = 36; // dq, dk, dv, dAlpha, dEta, dTheta of this head (6 words)
const P_DINIT: i32 = 42; // receives the cotangent block of the input state
const P_DC: i32 = 43; // ADDS the cotangent of G_l (2 words, pitch d_out) for a carried G
const P_SEG: i32 = 45; // pieces per recomputed segment (checkpoints every P_SEG pieces)

/** Words in a driver parameter block. */
export function memoryScanParamWords(): i32 {
  return 48;
}

@inline function word(params: usize, i: i32): i32 {
  return load<i32>(params + (<usize>i << 2));
}

@inline function ptrWord(params: usize, i: i32): usize {
  return <usize>load<u32>(params + (<usize>i << 2));
}

/** Floats of one state block: [W_l | S_l] for every layer. */
export function memoryScanStateFloats(d: i32, h: i32, depth: i32): i32 {
  const hh = hidden(d, h, depth);
  return depth == 2 ? 4 * d * hh : 2 * d * d;
}

@inline function layerIn(d: i32, hh: i32, l: i32): i32 {
  return l == 0 ? d : hh;
}

@inline function layerOut(d: i32, hh: i32, depth: i32, l: i32): i32 {
  return l == 0 && depth == 2 ? hh : d;
}

// Byte address of layer l's [W | S] in a block.
@inline function layerAt(block: usize, d: i32, hh: i32, l: i32): usize {
  return l == 0 ? block : block + (<usize>(2 * d * hh) << 2);
}

// Pieces: the first runs to the end of its chunk, the others are whole chunks (the last may be short).
@inline function pieceCount(T: i32, b: i32, offset: i32): i32 {
  const first = min(b - offset, T);
  return 1 + (T - first + b - 1) / b;
}

@inline function pieceStart(p: i32, T: i32, b: i32, offset: i32): i32 {
  return p == 0 ? 0 : min(b - offset, T) + (p - 1) * b;
}

@inline function pieceLength(p: i32, T: i32, b: i32, offset: i32): i32 {
  return min(p == 0 ? b - offset : b, T - pieceStart(p, T, b, offset));
}

// Runs piece p of the head described by `params` from the block `cur` into `next` (y = 0: state only).
function headForwardPiece(
  params: usize,
  p: i32,
  cur: usize,
  next: usize,
  withY: bool,
  record: usize,
  scratch: usize,
): void {
  const d = word(params, P_D);
  const h = word(params, P_H);
  const depth = word(params, P_DEPTH);
  const hh = hidden(d, h, depth);
  const T = word(params, P_T);
  const b = word(params, P_B);
  const offset = word(params, P_OFFSET);
  const start = pieceStart(p, T, b, offset);
  const n = pieceLength(p, T, b, offset);
  const carried = p == 0 && offset != 0;
  const g1 = carried ? ptrWord(params, P_C) : cur;
  const g2 = carried ? ptrWord(params, P_C + 1) : layerAt(cur, d, hh, 1);
  const rows = <usize>(start * d) << 2;
  const gates = <usize>start << 2;
  memoryScanForwardPiece(
    n,
    d,
    h,
    depth,
    word(params, P_ACT),
    word(params, P_RESIDUAL),
    ptrWord(params, P_Q) + rows,
    ptrWord(params, P_Q + 1) + rows,
    ptrWord(params, P_Q + 2) + rows,
    ptrWord(params, P_Q + 3) + gates,
    ptrWord(params, P_Q + 4) + gates,
    ptrWord(params, P_Q + 5) + gates,
    cur,
    g1,
    carried ? layerOut(d, hh, depth, 0) : 2 * layerOut(d, hh, depth, 0),
    depth == 2 ? g2 : 0,
    carried ? d : 2 * d,
    withY ? ptrWord(params, P_Y) + rows : 0,
    next,
    (offset + start + n) % b == 0,
    record,
    scratch,
  );
}

// The saved region of a head: P state blocks, then P piece records.
@inline function recordAt(params: usize, p: i32, P: i32): usize {
  const saved = ptrWord(params, P_SAVED);
  if (saved == 0) return 0;
  const d = word(params, P_D);
  const h = word(params, P_H);
  const depth = word(params, P_DEPTH);
  const n = min(word(params, P_B), word(params, P_T));
  const blockBytes = <usize>memoryScanStateFloats(d, h, depth) << 2;
  const recordBytes = <usize>recordFloats(n, d, hidden(d, h, depth), depth) << 2;
  return saved + <usize>P * blockBytes + <usize>p * recordBytes;
}

// Copies the input state (W_l, S_l; zeros for a missing S) into a block.
function loadState(params: usize, block: usize): void {
  const d = word(params, P_D);
  const depth = word(params, P_DEPTH);
  const hh = hidden(d, word(params, P_H), depth);
  for (let l: i32 = 0; l < depth; l++) {
    const r = layerIn(d, hh, l);
    const c = layerOut(d, hh, depth, l);
    const at = layerAt(block, d, hh, l);
    memoryScanCopyRows(at, 2 * c, ptrWord(params, P_W + l), c, r, c, 0);
    memoryScanCopyRows(at + (<usize>c << 2), 2 * c, ptrWord(params, P_S + l), c, r, c, 0);
  }
}

/** Runs the forward of one head (see the parameter block above). */
export function memoryScanForwardHead(params: usize, scratch: usize): void {
  const d = word(params, P_D);
  const depth = word(params, P_DEPTH);
  const hh = hidden(d, word(params, P_H), depth);
  const T = word(params, P_T);
  const b = word(params, P_B);
  const offset = word(params, P_OFFSET);
  const P = pieceCount(T, b, offset);
  const blockBytes = <usize>memoryScanStateFloats(d, word(params, P_H), depth) << 2;
  const blocks = scratch + <usize>word(params, P_PIECE_BYTES);
  const saved = ptrWord(params, P_SAVED);
  let cur = saved != 0 ? saved : blocks;
  loadState(params, cur);
  for (let p: i32 = 0; p < P; p++) {
    const last = p == P - 1;
    let next: usize;
    if (last) next = blocks + 2 * blockBytes;
    else if (saved != 0) next = saved + <usize>(p + 1) * blockBytes;
    else next = blocks + <usize>((p + 1) & 1) * blockBytes;
    headForwardPiece(params, p, cur, next, true, recordAt(params, p, P), scratch);
    if (last) {
      for (let l: i32 = 0; l < depth; l++) {
        const r = layerIn(d, hh, l);
        const c = layerOut(d, hh, depth, l);
        const nl = layerAt(next, d, hh, l);
        memoryScanCopyRows(ptrWord(params, P_WO + l), c, nl, 2 * c, r, c, 0);
        memoryScanCopyRows(ptrWord(params, P_SO + l), c, nl + (<usize>c << 2), 2 * c, r, c, 0);
        const co = ptrWord(params, P_CO + l);
        if (co != 0) memoryScanCopyRows(co, c, layerAt(cur, d, hh, l), 2 * c, r, c, 0);
      }
    }
    cur = next;
  }
}

/**
 * Runs the backward of one head. Piece-start states come from P_SAVED, or are recomputed: the
 * scratch then holds, after the piece scratch, ⌈P / seg⌉ checkpoint blocks and seg segment blocks
 * (seg = P_SEG), and in any case 2 adjoint blocks last.
 */
export function memoryScanBackwardHead(params: usize, scratch: usize): void {
  const d = word(params, P_D);
  const h = word(params, P_H);
  const depth = word(params, P_DEPTH);
  const hh = hidden(d, h, depth);
  const T = word(params, P_T);
  const b = word(params, P_B);
  const offset = word(params, P_OFFSET);
  const P = pieceCount(T, b, offset);
  const blockBytes = <usize>memoryScanStateFloats(d, h, depth) << 2;
  const blocks = scratch + <usize>word(params, P_PIECE_BYTES);
  const saved = ptrWord(params, P_SAVED);
  const seg = saved != 0 ? P : word(params, P_SEG);
  const segments = (P + seg - 1) / seg;
  const stored = saved != 0 ? 0 : segments + seg; // checkpoint and segment blocks
  let dNext = blocks + <usize>stored * blockBytes;
  let dPrev = dNext + blockBytes;

  // 1. Checkpoints at pieces 0, seg, 2·seg, … (state-only forward).
  if (saved == 0) {
    loadState(params, blocks);
    let cur = blocks;
    const upTo = (segments - 1) * seg;
    for (let p: i32 = 0; p < upTo; p++) {
      const next =
        (p + 1) % seg == 0
          ? blocks + <usize>((p + 1) / seg) * blockBytes
          : blocks + <usize>(segments + (p & 1)) * blockBytes;
      headForwardPiece(params, p, cur, next, false, 0, scratch);
      cur = next;
    }
  }
  // 2. The cotangent of the final state, as a block, and the scale of what enters this backward.
  let scale = maxAbs(ptrWord(params, P_DY), T * d);
  for (let l: i32 = 0; l < depth; l++) {
    const r = layerIn(d, hh, l);
    const c = layerOut(d, hh, depth, l);
    const at = layerAt(dNext, d, hh, l);
    memoryScanCopyRows(at, 2 * c, ptrWord(params, P_DWO + l), c, r, c, 0);
    memoryScanCopyRows(at + (<usize>c << 2), 2 * c, ptrWord(params, P_DSO + l), c, r, c, 0);
    const dco = ptrWord(params, P_DCO + l);
    if (dco != 0) scale = max(scale, maxAbs(dco, r * c));
  }
  scale = max(scale, maxAbs(dNext, <i32>(blockBytes >> 2)));
  // The state's cotangent and dy are flushed below this (see FLUSH_COTANGENT).
  const cotangentFloor = scale < Infinity ? max(FLT_MIN, scale * FLUSH_COTANGENT) : FLT_MIN;
  // 3. Segments in reverse: their piece-start states, then the pieces backward.
  for (let c = segments - 1; c >= 0; c--) {
    const first = c * seg;
    const end = min(P, first + seg);
    if (saved == 0) {
      for (let p = first; p + 1 < end; p++) {
        const from = p == first ? blocks + <usize>c * blockBytes : blocks + <usize>(segments + p - first) * blockBytes;
        const to = blocks + <usize>(segments + p + 1 - first) * blockBytes;
        headForwardPiece(params, p, from, to, false, 0, scratch);
      }
    }
    for (let p = end - 1; p >= first; p--) {
      let state: usize;
      if (saved != 0) state = saved + <usize>p * blockBytes;
      else if (p == first) state = blocks + <usize>c * blockBytes;
      else state = blocks + <usize>(segments + p - first) * blockBytes;
      headBackwardPiece(params, p, state, dNext, dPrev, recordAt(params, p, P), cotangentFloor, scratch);
      if (p == P - 1) {
        for (let l: i32 = 0; l < depth; l++) {
          const dco = ptrWord(params, P_DCO + l);
          const cols = layerOut(d, hh, depth, l);
          if (dco != 0) memoryScanCopyRows(layerAt(dPrev, d, hh, l), 2 * cols, dco, cols, layerIn(d, hh, l), cols, 1);
        }
      }
      if (p > 0 || offset == 0) flushTiny(dPrev, <i32>(blockBytes >> 2), cotangentFloor);
      const swap = dNext;
      dNext = dPrev;
      dPrev = swap;
    }
  }
  // 4. The input state's cotangent.
  memory.copy(ptrWord(params, P_DINIT), dNext, blockBytes);
}

// Backward of piece p from the state block `state`, given the cotangent block after it (dNext);
// writes the cotangent block before it into dPrev (with G's part when G is that state's W).
function headBackwardPiece(
  params: usize,
  p: i32,
  state: usize,
  dNext: usize,
  dPrev: usize,
  record: usize,
  cotangentFloor: f32,
  scratch: usize,
): void {
  const d = word(params, P_D);
  const h = word(params, P_H);
  const depth = word(params, P_DEPTH);
  const hh = hidden(d, h, depth);
  const T = word(params, P_T);
  const b = word(params, P_B);
  const offset = word(params, P_OFFSET);
  const start = pieceStart(p, T, b, offset);
  const n = pieceLength(p, T, b, offset);
  const carried = p == 0 && offset != 0;
  const c1 = layerOut(d, hh, depth, 0);
  const rows = <usize>(start * d) << 2;
  const gates = <usize>start << 2;
  const dy = rowAt(scratch, n, d, h, depth, ROWS - 1); // flushed like the state's cotangent
  memory.copy(dy, ptrWord(params, P_DY) + rows, <usize>(n * d) << 2);
  flushTiny(dy, n * d, cotangentFloor);
  memoryScanBackwardPiece(
    n,
    d,
    h,
    depth,
    word(params, P_ACT),
    word(params, P_RESIDUAL),
    ptrWord(params, P_Q) + rows,
    ptrWord(params, P_Q + 1) + rows,
    ptrWord(params, P_Q + 2) + rows,
    ptrWord(params, P_Q + 3) + gates,
    ptrWord(params, P_Q + 4) + gates,
    ptrWord(params, P_Q + 5) + gates,
    state,
    carried ? ptrWord(params, P_C) : state,
    carried ? c1 : 2 * c1,
    depth == 2 ? (carried ? ptrWord(params, P_C + 1) : layerAt(state, d, hh, 1)) : 0,
    carried ? d : 2 * d,
    dy,
    dNext,
    ptrWord(params, P_DQ) + rows,
    ptrWord(params, P_DQ + 1) + rows,
    ptrWord(params, P_DQ + 2) + rows,
    ptrWord(params, P_DQ + 3) + gates,
    ptrWord(params, P_DQ + 4) + gates,
    ptrWord(params, P_DQ + 5) + gates,
    dPrev,
    carried ? ptrWord(params, P_DC) : dPrev,
    carried ? c1 : 2 * c1,
    depth == 2 ? (carried ? ptrWord(params, P_DC + 1) : layerAt(dPrev, d, hh, 1)) : 0,
    carried ? d : 2 * d,
    record,
    scratch,
  );
}
