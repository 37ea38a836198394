// AssemblyScript source of the fused memory read: M_W(q) of SPEC §1 at fixed weights, depth 2, for
// every token of every (batch, head), forward and backward (MAC's read h = M(q) of SPEC §4; JS glue in
// ../fused.ts). Memory contract as matmul.ts: no static data, every address passed in.
//
// Layout (row-major float32): q (B, H, T, d); W₁ (Bw, H, d, h), W₂ (Bw, H, h, d) with Bw = 1 (the
// weights broadcast over the batch) or B; y (B, H, T, d). Tokens are taken in blocks of ROWS so the
// scratch does not grow with T.
//   forward:  Z = q W₁, X = φ(Z), y = X W₂ (+ q)
//   backward: dX = dy W₂ᵀ, dZ = dX ⊙ φ'(Z), dW₂ += Xᵀ dy, dW₁ += qᵀ dZ, dq = dZ W₁ᵀ (+ dy), the
//             forward's Z and X recomputed; with Bw = 1 dW sums over the batch.
// Every product is a register tile on the operands (tiles.ts gemm; the backward transposes W₁ and W₂
// once per head, or per (batch, head) when Bw = B, with elementwise.ts ewTranspose2); φ and φ' are
// the scan's (math.ts activations), the row helpers math.ts's.

import { ewTranspose2 } from './elementwise';
import { activations, addScaled, mulRow } from './math';
import { gemm } from './tiles';

const ROWS: i32 = 64;

@inline function addr(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

/** Bytes of scratch the read's forward and backward need for (d, h). */
export function memoryReadScratchBytes(d: i32, h: i32): i32 {
  return (4 * ROWS * h + 2 * d * h) * 4;
}

/** y = M_W(q) for all (b, h); d and h multiples of 4 (the glue checks). */
export function memoryReadForward(
  q: usize,
  w1: usize,
  w2: usize,
  y: usize,
  B: i32,
  H: i32,
  T: i32,
  d: i32,
  h: i32,
  Bw: i32,
  act: i32,
  residual: i32,
  scratch: usize,
): void {
  const Z = scratch;
  const X = addr(Z, ROWS * h);
  const dRow = <usize>d << 2;
  const hRow = <usize>h << 2;
  for (let b: i32 = 0; b < B; b++) {
    for (let hd: i32 = 0; hd < H; hd++) {
      const wi = (Bw == 1 ? 0 : b) * H + hd;
      const W1 = addr(w1, wi * d * h);
      const W2 = addr(w2, wi * h * d);
      const base = (b * H + hd) * T * d;
      for (let t0: i32 = 0; t0 < T; t0 += ROWS) {
        const n = min(ROWS, T - t0);
        const qr = addr(q, base + t0 * d);
        const yr = addr(y, base + t0 * d);
        gemm(Z, hRow, qr, dRow, 4, W1, hRow, n, h, d, false); // Z = q W₁
        activations(act, Z, X, 0, 0, n * h); // X = φ(Z)
        gemm(yr, dRow, X, hRow, 4, W2, dRow, n, d, h, false); // y = X W₂
        if (residual != 0) addScaled(yr, 1, qr, n * d);
      }
    }
  }
}

/**
 * dq (B, H, T, d), dW₁ (Bw, H, d, h), dW₂ (Bw, H, h, d) from y's cotangent gy; all three are
 * overwritten.
 */
export function memoryReadBackward(
  q: usize,
  w1: usize,
  w2: usize,
  gy: usize,
  dq: usize,
  dw1: usize,
  dw2: usize,
  B: i32,
  H: i32,
  T: i32,
  d: i32,
  h: i32,
  Bw: i32,
  act: i32,
  residual: i32,
  scratch: usize,
): void {
  const Z = scratch;
  const X = addr(Z, ROWS * h);
  const phi1 = addr(X, ROWS * h);
  const dZ = addr(phi1, ROWS * h);
  const W1t = addr(dZ, ROWS * h); // (h, d)
  const W2t = addr(W1t, d * h); // (d, h)
  const dRow = <usize>d << 2;
  const hRow = <usize>h << 2;
  memory.fill(dw1, 0, <usize>(Bw * H * d * h) << 2);
  memory.fill(dw2, 0, <usize>(Bw * H * h * d) << 2);
  for (let hd: i32 = 0; hd < H; hd++) {
    for (let b: i32 = 0; b < B; b++) {
      const wi = (Bw == 1 ? 0 : b) * H + hd;
      const W1 = addr(w1, wi * d * h);
      const W2 = addr(w2, wi * h * d);
      const dW1 = addr(dw1, wi * d * h);
      const dW2 = addr(dw2, wi * h * d);
      if (Bw != 1 || b == 0) {
        ewTranspose2(W1t, W1, 1, d, h);
        ewTranspose2(W2t, W2, 1, h, d);
      }
      const base = (b * H + hd) * T * d;
      for (let t0: i32 = 0; t0 < T; t0 += ROWS) {
        const n = min(ROWS, T - t0);
        const qr = addr(q, base + t0 * d);
        const gr = addr(gy, base + t0 * d);
        const dqr = addr(dq, base + t0 * d);
        gemm(Z, hRow, qr, dRow, 4, W1, hRow, n, h, d, false); // Z = q W₁
        activations(act, Z, X, phi1, 0, n * h); // X = φ(Z), φ'(Z)
        gemm(dZ, hRow, gr, dRow, 4, W2t, hRow, n, h, d, false); // dX = dy W₂ᵀ
        mulRow(dZ, dZ, phi1, n * h); // dZ = dX ⊙ φ'(Z)
        gemm(dW2, dRow, X, 4, hRow, gr, dRow, h, d, n, true); // dW₂ += Xᵀ dy
        gemm(dW1, hRow, qr, 4, dRow, dZ, hRow, d, h, n, true); // dW₁ += qᵀ dZ
        gemm(dqr, dRow, dZ, hRow, 4, W1t, dRow, n, d, h, false); // dq = dZ W₁ᵀ
        if (residual != 0) addScaled(dqr, 1, gr, n * d);
      }
    }
  }
}
