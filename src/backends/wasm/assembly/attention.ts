// AssemblyScript source of the fused (flash-attention style) float32 attention kernels; compiled into
// the one kernel module by scripts/build-wasm.mjs (src/backends/wasm/assembly/index.ts re-exports it).
//
// Memory contract (as for matmul.ts): the module owns no linear memory; every address is passed in.
// These functions keep no state between calls and write only to their outputs and their `scratch`.
// No data segments or globals: exp and log come from math.ts (no Math.*), constants are immediates.
//
// Layout: q is (bh, tq, dh), k and v are (bh, tk, dh), row-major float32; O likewise (bh, tq, dh);
// lse is (bh, tq); qpos (tq) and kpos (tk) are int32 position ids shared by every (batch, head).
// Visibility: key j is visible to query i iff j < prefix, or 0 <= qpos[i] - kpos[j] < window.
// Positions must lie in (-2^30, 2^30) so that differences fit in i32; window is clamped by the caller
// to i32 (use i32.MAX_VALUE for "no window"). dh must be a positive multiple of 4.
//
// Forward (FlashAttention-2): for each bh, every query row's output is accumulated in scratch over
// the key blocks of 32 or 64 keys (outer loop, keyBlockWidth) and the query blocks of BR rows that see them (inner loop)
// with an online softmax (running row max m and row sum l, earlier partial sums rescaled by
// exp(m_old - m_new)), then divided by l; lse = m + log(l) is saved. Each row sees the key blocks in
// ascending order either way. S = Q Kᵀ uses a transposed copy of one key block (dh x 64 floats at most), so
// both products are "splat one A element x one contiguous B row" register tiles (4 rows x 8
// columns); the scratch is O((tq + 64)·dh), whatever the number of keys (a long KV cache).
// Backward (FlashAttention-2): D_i = Σ dO_i·O_i; for each key block (K, V transposed into scratch) and
// each query block that sees it, P = exp(S·scale - lse) is recomputed, dV += Pᵀ dO, dP = dO Vᵀ,
// dS = P ⊙ (dP - D)·scale, dQ += dS K, dK += dSᵀ Q. Nothing of size tq x tk is ever stored.
// Tiles whose (query block, key block) pair has no visible entry are skipped, using the min/max
// position of each block (so sliding windows cost O(T·w) when positions are sorted; the prefix's keys
// have blocks of their own, so the window's blocks line up with the queries'); tiles known to be
// fully visible skip the per-entry mask. In a tile that a mask cuts (a window's edge, the causal
// diagonal), each group of 4 query rows works only on the key columns that may be visible to it
// (groupRanges; keyGroupRows for the backward's products over rows), the rest of its score rows
// being zeros. Measured, small SWA step on one thread: attention forward 5.8 → 4.7 ms, backward
// 8.1 → 6.7. Rows with no visible key output 0 and get lse = -inf.
// With a thread pool, the JS glue runs attentionForwardTask / attentionBackwardTask (end of file) on
// contiguous slices of the batch, one argument block per slice.

import { exp1, exp4, expInRange4, LN_2_POW_MINUS_64, logF64, maxOf, zeroWords } from './math';
import { gemm } from './tiles';

const BR: i32 = 32; // query rows per tile (multiple of 4)
const BC_MAX: i32 = 64; // keys per tile at most (multiples of 8; the scratch is sized for it)
const BC_MIN: i32 = 32; // keys per tile at least

// Keys per tile: 32 where masks cut tiles (a sliding window, or up to 256 keys, where the causal
// diagonal and MAC's [h; n] halves are a large share), 64 over long fully visible key runs (a long
// KV cache). Measured, small preset (d_h = 16) on one thread: the SWA step's attention 24.7 → 20.2
// ms and MAC's 32.3 → 26.7 ms at 32; Transformer++ streaming at 8K/32K of context 6% slower at 32.
function keyBlockWidth(tk: i32, kbase: i32, window: i32): i32 {
  return window < tk || tk - kbase <= 256 ? BC_MIN : BC_MAX;
}
const NO_KEY: i32 = 0x7fffffff; // block minimum position when a block has no non-prefix key

// exp and log: assembly/math.ts (exp4, logF64).

// Softmax weights e^x (x = a score minus its row's maximum or log-sum-exp, so x ≤ 0) below 2⁻⁶⁴
// are exact zeros. A row's weights sum to at least 1, so even 2¹⁷ keys of such weights move it by
// less than 2⁻⁴⁷; kept, they would multiply values into the float32 denormals, which x86 cores
// compute on 10–100× slower (WebAssembly cannot flush them).
const WEIGHT_MIN = LN_2_POW_MINUS_64;

// x is a score minus its row's maximum or log-sum-exp: at most 0, or -inf (masked), or NaN. Lanes
// below WEIGHT_MIN (and -inf, which comes out of expInRange4 as NaN) are masked to zero here, so exp4's
// own clamp and flush would be redundant work.
// @ts-ignore: decorator
@inline
function softmaxWeight(x: v128): v128 {
  return v128.andnot(expInRange4(x), f32x4.lt(x, f32x4.splat(WEIGHT_MIN)));
}

/** dst[i] = exp(src[i]) for i < n with the kernels' own exp (exposed for accuracy tests). */
export function attentionExp(src: usize, dst: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 4 <= n; i += 4) {
    v128.store(dst + (<usize>i << 2), exp4(v128.load(src + (<usize>i << 2))));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), exp1(load<f32>(src + (<usize>i << 2))));
}

// Register tiles and gemm: assembly/tiles.ts (shared with matmul).

// ---- helpers -----------------------------------------------------------------------------------

function ceil8(x: i32): i32 {
  return (x + 7) & ~7;
}

function align16(x: i32): i32 {
  return (x + 15) & ~15;
}

// Blocks of `size` entries, except that the first `base` entries (the persistent prefix) get blocks
// of their own: block b is [blockStart(b), blockEnd(b)). With the prefix apart, the key blocks of a
// sliding window line up with the query blocks' positions; with it inside block 0, every query block
// would compute block 0, and every later block would straddle two query blocks' windows.
function blockCount(n: i32, size: i32, base: i32): i32 {
  return (base + size - 1) / size + (n - base + size - 1) / size;
}

function blockStart(b: i32, size: i32, base: i32): i32 {
  const own = (base + size - 1) / size; // blocks of the first `base` entries
  return b < own ? b * size : base + (b - own) * size;
}

function blockEnd(b: i32, n: i32, size: i32, base: i32): i32 {
  const own = (base + size - 1) / size;
  return b < own ? min(base, (b + 1) * size) : min(n, base + (b - own + 1) * size);
}

// Min and max position of each block (see blockStart; entries below `prefix` are left out; a block
// with none gets min = NO_KEY, max = -NO_KEY): info[2b], info[2b + 1].
function blockRanges(pos: usize, n: i32, size: i32, base: i32, prefix: i32, info: usize): void {
  const blocks = blockCount(n, size, base);
  for (let blk: i32 = 0; blk < blocks; blk++) {
    const j0 = blockStart(blk, size, base);
    const j1 = blockEnd(blk, n, size, base);
    let lo = NO_KEY;
    let hi = -NO_KEY;
    for (let j = max(j0, prefix); j < j1; j++) {
      const p = load<i32>(pos + (<usize>j << 2));
      lo = min(lo, p);
      hi = max(hi, p);
    }
    store<i32>(info + (<usize>blk << 3), lo);
    store<i32>(info + (<usize>blk << 3), hi, 4);
  }
}

// 0: no entry of the tile is visible; 1: every entry is; 2: some may be (apply the mask per entry).
function classify(
  qinfo: usize,
  qb: i32,
  kinfo: usize,
  kb: i32,
  j0: i32,
  j1: i32,
  prefix: i32,
  window: i32,
): i32 {
  if (j1 <= prefix) return 1;
  const qlo = load<i32>(qinfo + (<usize>qb << 3));
  const qhi = load<i32>(qinfo + (<usize>qb << 3), 4);
  const klo = load<i32>(kinfo + (<usize>kb << 3));
  const khi = load<i32>(kinfo + (<usize>kb << 3), 4);
  const hasPrefix = j0 < prefix;
  if (klo > qhi || qlo - khi >= window) return hasPrefix ? 2 : 0;
  if (!hasPrefix && khi <= qlo && qhi - klo < window) return 1;
  return 2;
}

// Transposes rows j0 .. j0+bc of x (n x dh) into dst (dh x bw), zero-filling columns bc .. bw.
function transposeBlock(x: usize, j0: i32, bc: i32, dh: i32, dst: usize, bw: i32): void {
  for (let c: i32 = 0; c < bc; c++) {
    const src = x + (<usize>((j0 + c) * dh) << 2);
    let d = dst + (<usize>c << 2);
    for (let p: i32 = 0; p < dh; p++) {
      store<f32>(d, load<f32>(src + (<usize>p << 2)));
      d += <usize>bw << 2;
    }
  }
  if (bc < bw) {
    for (let p: i32 = 0; p < dh; p++) {
      zeroWords(dst + (<usize>(p * bw + bc) << 2), bw - bc);
    }
  }
}

// Scales a score row and applies the mask: row[c] = visible ? row[c]·scale : -inf for c < n (key
// j0 + c), and -inf for the padding columns n .. npad (npad a multiple of 4, at least n).
// @ts-ignore: decorator
@inline
function maskRow(
  row: usize,
  n: i32,
  npad: i32,
  cls: i32,
  scale: f32,
  qp: i32,
  kpos: usize,
  j0: i32,
  prefix: i32,
  window: i32,
): void {
  const ninf = f32.NEGATIVE_INFINITY;
  if (cls == 1) {
    const sv = f32x4.splat(scale);
    for (let c: i32 = 0; c < npad; c += 4) {
      const o = <usize>c << 2;
      v128.store(row + o, f32x4.mul(v128.load(row + o), sv));
    }
  } else {
    // visible = j < prefix or 0 ≤ qp − kpos[j] < window, four keys at a time
    const sv = f32x4.splat(scale);
    const prefixV = i32x4.splat(prefix);
    const windowV = i32x4.splat(window);
    const qpV = i32x4.splat(qp);
    const zero = i32x4.splat(0);
    const lanes = i32x4(0, 1, 2, 3);
    const ninfV = f32x4.splat(ninf);
    let c: i32 = 0;
    for (; c + 4 <= n; c += 4) {
      const o = <usize>c << 2;
      const d = i32x4.sub(qpV, v128.load(kpos + (<usize>(j0 + c) << 2)));
      const inWindow = v128.and(i32x4.ge_s(d, zero), i32x4.lt_s(d, windowV));
      const visible = v128.or(i32x4.lt_s(i32x4.add(i32x4.splat(j0 + c), lanes), prefixV), inWindow);
      v128.store(row + o, v128.bitselect(f32x4.mul(v128.load(row + o), sv), ninfV, visible));
    }
    for (; c < n; c++) {
      const j = j0 + c;
      const o = <usize>c << 2;
      let visible = j < prefix;
      if (!visible) {
        const d = qp - load<i32>(kpos + (<usize>j << 2));
        visible = d >= 0 && d < window;
      }
      store<f32>(row + o, visible ? load<f32>(row + o) * scale : ninf);
    }
  }
  for (let c = n; c < npad; c++) store<f32>(row + (<usize>c << 2), ninf);
}

// The columns each group of 4 query rows (rows i0 + 4g ..) of a tile needs: [lo, hi) holds every key
// of the tile (keys j0 .. j0 + bc) visible to one of the group's rows, lo and hi multiples of 4
// (hi <= ceil8(bc)); lo = hi = 0 when none is. Stored as i32 pairs at out + 8g. A fully visible tile
// (cls 1) gives every group [0, ceil8(bc)). The test is on the group's least and greatest position,
// so the range may hold keys that no row sees (the per-entry mask still applies); what it leaves
// out, no row sees. Where a mask cuts the tile (a window's edge, the causal diagonal), about half the
// tile lies outside every group's range: the products, the mask and the exps skip it.
function groupRanges(
  out: usize,
  cls: i32,
  br: i32,
  bc: i32,
  qpos: usize,
  i0: i32,
  kpos: usize,
  j0: i32,
  prefix: i32,
  window: i32,
): void {
  const groups = (br + 3) >> 2;
  for (let g: i32 = 0; g < groups; g++) {
    let lo: i32 = 0;
    let hi: i32 = ceil8(bc);
    if (cls != 1) {
      const r0 = i0 + (g << 2);
      const r1 = min(r0 + 4, i0 + br);
      let qlo = load<i32>(qpos + (<usize>r0 << 2));
      let qhi = qlo;
      for (let r = r0 + 1; r < r1; r++) {
        const p = load<i32>(qpos + (<usize>r << 2));
        qlo = min(qlo, p);
        qhi = max(qhi, p);
      }
      // key j may be visible to a row of the group iff j < prefix, or qhi − kpos ≥ 0 and qlo − kpos < window
      const qloV = i32x4.splat(qlo);
      const qhiV = i32x4.splat(qhi);
      const windowV = i32x4.splat(window);
      const prefixV = i32x4.splat(prefix);
      const lanes = i32x4(0, 1, 2, 3);
      let first: i32 = -1;
      let last: i32 = -1;
      let c: i32 = 0;
      for (; c + 4 <= bc; c += 4) {
        const kp = v128.load(kpos + (<usize>(j0 + c) << 2));
        const near = v128.and(
          i32x4.ge_s(i32x4.sub(qhiV, kp), i32x4.splat(0)),
          i32x4.lt_s(i32x4.sub(qloV, kp), windowV),
        );
        const bits = i32x4.bitmask(v128.or(i32x4.lt_s(i32x4.add(i32x4.splat(j0 + c), lanes), prefixV), near));
        if (bits != 0) {
          if (first < 0) first = c + ctz(bits);
          last = c + 31 - clz(bits);
        }
      }
      for (; c < bc; c++) {
        const j = j0 + c;
        const kp = load<i32>(kpos + (<usize>j << 2));
        if (j < prefix || (qhi - kp >= 0 && qlo - kp < window)) {
          if (first < 0) first = c;
          last = c;
        }
      }
      lo = first < 0 ? 0 : first & ~3;
      hi = first < 0 ? 0 : (last + 4) & ~3;
    }
    store<i32>(out + (<usize>g << 3), lo);
    store<i32>(out + (<usize>g << 3), hi, 4);
  }
}

// The transpose of groupRanges' table, for the products over a tile's rows (Pᵀ dO, dSᵀ Q): for
// each group of 4 keys (columns 4k ..), the rows [lo, hi) of every query group whose range meets it
// (lo = hi = 0 when none does), i32 pairs at out + 8k. Rows inside that span but outside their own
// group's range hold zeros there, so the span is all the products need.
function keyGroupRows(ranges: usize, br: i32, bc: i32, out: usize): void {
  const keyGroups = (bc + 3) >> 2;
  for (let k: i32 = 0; k < keyGroups; k++) {
    store<i32>(out + (<usize>k << 3), br);
    store<i32>(out + (<usize>k << 3), 0, 4);
  }
  for (let g: i32 = 0; g < br; g += 4) {
    const lo = load<i32>(ranges + (<usize>g << 1));
    const hi = min(load<i32>(ranges + (<usize>g << 1), 4), bc);
    for (let k = lo >> 2; k < (hi + 3) >> 2; k++) {
      const e = out + (<usize>k << 3);
      store<i32>(e, min(load<i32>(e), g));
      store<i32>(e, max(load<i32>(e, 4), min(g + 4, br)), 4);
    }
  }
  for (let k: i32 = 0; k < keyGroups; k++) {
    const e = out + (<usize>k << 3);
    if (load<i32>(e) >= load<i32>(e, 4)) {
      store<i32>(e, 0);
      store<i32>(e, 0, 4);
    }
  }
}

// dst (the tile's bc key rows, rowBytes apart) += Xᵀ Y, each group of 4 keys over the query rows
// keyRows gives it: X holds the tile's query rows (sRow bytes apart, one column per key), Y the
// query block's rows (rowBytes apart). The backward's Pᵀ dO and dSᵀ Q.
function keyGroupProducts(
  dst: usize,
  x: usize,
  y: usize,
  keyRows: usize,
  bc: i32,
  dh: i32,
  sRow: usize,
  rowBytes: usize,
): void {
  for (let c: i32 = 0; c < bc; c += 4) {
    const rlo = load<i32>(keyRows + (<usize>c << 1));
    const rhi = load<i32>(keyRows + (<usize>c << 1), 4);
    if (rhi <= rlo) continue;
    const xc = x + <usize>rlo * sRow + (<usize>c << 2);
    gemm(dst + <usize>c * rowBytes, rowBytes, xc, 4, sRow, y + <usize>rlo * rowBytes, rowBytes, min(4, bc - c), dh, rhi - rlo, true);
  }
}

// ---- forward -------------------------------------------------------------------------------------

function fwdLayout(tq: i32, tk: i32, dh: i32, scratch: usize, which: i32): usize {
  const nkb = (tk + BC_MIN - 1) / BC_MIN;
  const nqb = (tq + BR - 1) / BR;
  let off: i32 = 0;
  const kt = off;
  off += align16(dh * BC_MAX * 4);
  const s = off;
  off += BR * BC_MAX * 4;
  const oacc = off;
  off += align16(tq * dh * 4);
  const m = off;
  off += align16(tq * 4);
  const l = off;
  off += align16(tq * 4);
  const kinfo = off;
  off += align16((nkb + 1) * 8); // + 1: the prefix's own block
  const qinfo = off;
  off += align16(nqb * 8);
  const ranges = off;
  off += (BR >> 2) * 8;
  switch (which) {
    case 0:
      return scratch + <usize>kt;
    case 1:
      return scratch + <usize>s;
    case 2:
      return scratch + <usize>oacc;
    case 3:
      return scratch + <usize>m;
    case 4:
      return scratch + <usize>l;
    case 5:
      return scratch + <usize>kinfo;
    case 6:
      return scratch + <usize>qinfo;
    case 7:
      return scratch + <usize>ranges;
    default:
      return <usize>off; // total bytes
  }
}

/**
 * Scratch bytes `attentionForward` needs (16-byte aligned start recommended): about 4·dh·(tq + 64)
 * + tk/8 + 8 KiB — the queries' accumulators and one key block, not the keys.
 */
export function attentionForwardScratchBytes(tq: i32, tk: i32, dh: i32): i32 {
  return <i32>fwdLayout(max(tq, 1), max(tk, 1), max(dh, 4), 0, 8);
}

/**
 * out[b, i] = Σ_j softmax_j(scale · q[b, i]·k[b, j], visible j) v[b, j]; lse[b, i] = log Σ_visible exp(...)
 * (-inf and out row 0 where no key is visible). Pointers are byte addresses; see the file header.
 *
 * The keys and values come in pages of `pageRows` rows: `pages` holds u32 pairs (k, v) of byte
 * addresses, page p holding keys p·pageRows … for every (batch, head), each head's rows contiguous:
 * key j of row b (b counted from `batch0`, the slice's first row) is at
 * k_p + 4·((batch0 + b)·pageRows + j − p·pageRows)·dh. pageRows must be a multiple of 64 (BC_MAX)
 * unless one page holds every key. A dense (bh, tk, dh) pair is one page of tk rows; a KV cache
 * read in place is a list of pages it appends to. Loops over key blocks outermost, so each key
 * block is transposed once and the scratch holds the queries' accumulators, never the keys.
 */
export function attentionForward(
  q: usize,
  pages: usize,
  pageRows: i32,
  batch0: i32,
  out: usize,
  lse: usize,
  qpos: usize,
  kpos: usize,
  bh: i32,
  tq: i32,
  tk: i32,
  dh: i32,
  prefix: i32,
  window: i32,
  scale: f32,
  scratch: usize,
): void {
  const nqb = (tq + BR - 1) / BR;
  const kt = fwdLayout(tq, tk, dh, scratch, 0);
  const s = fwdLayout(tq, tk, dh, scratch, 1);
  const oacc = fwdLayout(tq, tk, dh, scratch, 2);
  const mrow = fwdLayout(tq, tk, dh, scratch, 3);
  const lrow = fwdLayout(tq, tk, dh, scratch, 4);
  const kinfo = fwdLayout(tq, tk, dh, scratch, 5);
  const qinfo = fwdLayout(tq, tk, dh, scratch, 6);
  const ranges = fwdLayout(tq, tk, dh, scratch, 7);
  const rowBytes = <usize>dh << 2;
  const ninf = f32.NEGATIVE_INFINITY;
  // The prefix's own key blocks only when the keys are one page (a block must not straddle pages).
  const kbase = pageRows >= tk ? min(prefix, tk) : 0;
  const bw = keyBlockWidth(tk, kbase, window);
  const sRow = <usize>bw << 2;
  const nkb = blockCount(tk, bw, kbase);
  blockRanges(kpos, tk, bw, kbase, prefix, kinfo);
  blockRanges(qpos, tq, BR, 0, 0, qinfo);
  for (let b: i32 = 0; b < bh; b++) {
    const qh = q + <usize>b * <usize>tq * rowBytes;
    const headRow = <usize>(batch0 + b) * <usize>pageRows; // this head's first row in every page
    const oh = out + <usize>b * <usize>tq * rowBytes;
    const lh = lse + (<usize>(b * tq) << 2);
    for (let r: i32 = 0; r < tq; r++) {
      store<f32>(mrow + (<usize>r << 2), ninf);
      store<f32>(lrow + (<usize>r << 2), 0);
    }
    memory.fill(oacc, 0, <usize>tq * rowBytes);
    for (let kb: i32 = 0; kb < nkb; kb++) {
      const j0 = blockStart(kb, bw, kbase);
      const bc = blockEnd(kb, tk, bw, kbase) - j0;
      const page = pages + (<usize>(j0 / pageRows) << 3);
      const rowInPage = (headRow + <usize>(j0 % pageRows)) * rowBytes;
      const kblk = <usize>load<u32>(page) + rowInPage;
      const vblk = <usize>load<u32>(page, 4) + rowInPage;
      let transposed = false;
      for (let qb: i32 = 0; qb < nqb; qb++) {
        const cls = classify(qinfo, qb, kinfo, kb, j0, j0 + bc, prefix, window);
        if (cls == 0) continue;
        if (!transposed) {
          transposeBlock(kblk, 0, bc, dh, kt, bw);
          transposed = true;
        }
        const i0 = qb * BR;
        const br = min(BR, tq - i0);
        groupRanges(ranges, cls, br, bc, qpos, i0, kpos, j0, prefix, window);
        for (let g: i32 = 0; g < br; g += 4) {
          const lo = load<i32>(ranges + (<usize>g << 1));
          const hi = load<i32>(ranges + (<usize>g << 1), 4);
          if (hi <= lo) continue; // no row of the group sees a key of the tile
          const gr = min(4, br - g);
          const n = min(hi, bc) - lo; // keys in the range (hi - lo with the padding)
          const sg = s + <usize>g * sRow + (<usize>lo << 2);
          // S = Q Kᵀ over the group's rows and range
          gemm(sg, sRow, qh + <usize>(i0 + g) * rowBytes, rowBytes, 4, kt + (<usize>lo << 2), sRow, gr, hi - lo, dh, false);
          for (let r: i32 = 0; r < gr; r++) {
            const row = sg + <usize>r * sRow;
            const qi = i0 + g + r;
            const qp = load<i32>(qpos + (<usize>qi << 2));
            maskRow(row, n, hi - lo, cls, scale, qp, kpos, j0 + lo, prefix, window);
            const rmax = maxOf(row, hi - lo); // -inf when nothing is visible
            const mold = load<f32>(mrow + (<usize>qi << 2));
            const mnew = max(mold, rmax);
            if (mnew == ninf) {
              zeroWords(row, hi - lo);
              continue;
            }
            const mv = f32x4.splat(mnew);
            let sum = f32x4.splat(0);
            for (let c: i32 = 0; c < hi - lo; c += 4) {
              const o = <usize>c << 2;
              const pv = softmaxWeight(f32x4.sub(v128.load(row + o), mv));
              v128.store(row + o, pv);
              sum = f32x4.add(sum, pv);
            }
            const rowSum =
              f32x4.extract_lane(sum, 0) +
              f32x4.extract_lane(sum, 1) +
              (f32x4.extract_lane(sum, 2) + f32x4.extract_lane(sum, 3));
            const alpha = f32x4.extract_lane(softmaxWeight(f32x4.splat(mold - mnew)), 0); // rescales O_acc
            store<f32>(lrow + (<usize>qi << 2), load<f32>(lrow + (<usize>qi << 2)) * alpha + rowSum);
            store<f32>(mrow + (<usize>qi << 2), mnew);
            if (alpha != 1) {
              const orow = oacc + <usize>qi * rowBytes;
              const av = f32x4.splat(alpha);
              for (let c: i32 = 0; c < dh; c += 4) {
                const o = <usize>c << 2;
                v128.store(orow + o, f32x4.mul(v128.load(orow + o), av));
              }
            }
          }
          // O_acc += P V over the group's rows and range
          const vg = vblk + <usize>lo * rowBytes;
          gemm(oacc + <usize>(i0 + g) * rowBytes, rowBytes, sg, sRow, 4, vg, rowBytes, gr, dh, n, true);
        }
      }
    }
    for (let r: i32 = 0; r < tq; r++) {
      const l = load<f32>(lrow + (<usize>r << 2));
      const orow = oacc + <usize>r * rowBytes;
      const dst = oh + <usize>r * rowBytes;
      const inv = f32x4.splat(l > 0 ? <f32>1 / l : <f32>0);
      for (let c: i32 = 0; c < dh; c += 4) {
        const o = <usize>c << 2;
        v128.store(dst + o, f32x4.mul(v128.load(orow + o), inv));
      }
      const m = load<f32>(mrow + (<usize>r << 2));
      store<f32>(lh + (<usize>r << 2), l > 0 ? <f32>(<f64>m + logF64(<f64>l)) : ninf);
    }
  }
}

// ---- backward ------------------------------------------------------------------------------------

function bwdLayout(tq: i32, tk: i32, dh: i32, scratch: usize, which: i32): usize {
  const nkb = (tk + BC_MIN - 1) / BC_MIN;
  const nqb = (tq + BR - 1) / BR;
  let off: i32 = 0;
  const kt = off;
  off += align16(dh * BC_MAX * 4);
  const vt = off;
  off += align16(dh * BC_MAX * 4);
  const p = off;
  off += BR * BC_MAX * 4;
  const ds = off;
  off += BR * BC_MAX * 4;
  const dd = off;
  off += align16(tq * 4);
  const kinfo = off;
  off += align16((nkb + 1) * 8); // + 1: the prefix's own block
  const qinfo = off;
  off += align16(nqb * 8);
  const ranges = off;
  off += (BR >> 2) * 8;
  const keyRows = off;
  off += (BC_MAX >> 2) * 8;
  switch (which) {
    case 0:
      return scratch + <usize>kt;
    case 1:
      return scratch + <usize>vt;
    case 2:
      return scratch + <usize>p;
    case 3:
      return scratch + <usize>ds;
    case 4:
      return scratch + <usize>dd;
    case 5:
      return scratch + <usize>kinfo;
    case 6:
      return scratch + <usize>qinfo;
    case 7:
      return scratch + <usize>ranges;
    case 8:
      return scratch + <usize>keyRows;
    default:
      return <usize>off;
  }
}

/** Scratch bytes `attentionBackward` needs. About 8·dh·64 + 4·tq + 16 KiB. */
export function attentionBackwardScratchBytes(tq: i32, tk: i32, dh: i32): i32 {
  return <i32>bwdLayout(max(tq, 1), max(tk, 1), max(dh, 4), 0, 9);
}

/**
 * Gradients of attentionForward: given q, k, v, its out and lse and the output cotangent dout
 * (bh, tq, dh), writes dq (bh, tq, dh), dk and dv (bh, tk, dh) (overwritten, not accumulated into).
 */
export function attentionBackward(
  q: usize,
  k: usize,
  v: usize,
  o: usize,
  lse: usize,
  dout: usize,
  dq: usize,
  dk: usize,
  dv: usize,
  qpos: usize,
  kpos: usize,
  bh: i32,
  tq: i32,
  tk: i32,
  dh: i32,
  prefix: i32,
  window: i32,
  scale: f32,
  scratch: usize,
): void {
  const nqb = (tq + BR - 1) / BR;
  const kt = bwdLayout(tq, tk, dh, scratch, 0);
  const vt = bwdLayout(tq, tk, dh, scratch, 1);
  const pbuf = bwdLayout(tq, tk, dh, scratch, 2);
  const dsbuf = bwdLayout(tq, tk, dh, scratch, 3);
  const dd = bwdLayout(tq, tk, dh, scratch, 4);
  const kinfo = bwdLayout(tq, tk, dh, scratch, 5);
  const qinfo = bwdLayout(tq, tk, dh, scratch, 6);
  const ranges = bwdLayout(tq, tk, dh, scratch, 7);
  const keyRows = bwdLayout(tq, tk, dh, scratch, 8);
  const rowBytes = <usize>dh << 2;
  const ninf = f32.NEGATIVE_INFINITY;
  const sv = f32x4.splat(scale);
  const kbase = min(prefix, tk); // the prefix's own key blocks (see blockStart)
  const bw = keyBlockWidth(tk, kbase, window);
  const sRow = <usize>bw << 2;
  const nkb = blockCount(tk, bw, kbase);
  blockRanges(kpos, tk, bw, kbase, prefix, kinfo);
  blockRanges(qpos, tq, BR, 0, 0, qinfo);
  for (let b: i32 = 0; b < bh; b++) {
    const qh = q + <usize>b * <usize>tq * rowBytes;
    const kh = k + <usize>b * <usize>tk * rowBytes;
    const vh = v + <usize>b * <usize>tk * rowBytes;
    const oh = o + <usize>b * <usize>tq * rowBytes;
    const doh = dout + <usize>b * <usize>tq * rowBytes;
    const dqh = dq + <usize>b * <usize>tq * rowBytes;
    const dkh = dk + <usize>b * <usize>tk * rowBytes;
    const dvh = dv + <usize>b * <usize>tk * rowBytes;
    const lh = lse + (<usize>(b * tq) << 2);
    // D_i = Σ dO_i · O_i
    for (let i: i32 = 0; i < tq; i++) {
      const orow = oh + <usize>i * rowBytes;
      const grow = doh + <usize>i * rowBytes;
      let acc = f32x4.splat(0);
      for (let c: i32 = 0; c < dh; c += 4) {
        const off = <usize>c << 2;
        acc = f32x4.add(acc, f32x4.mul(v128.load(orow + off), v128.load(grow + off)));
      }
      store<f32>(
        dd + (<usize>i << 2),
        f32x4.extract_lane(acc, 0) +
          f32x4.extract_lane(acc, 1) +
          (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3)),
      );
    }
    memory.fill(dqh, 0, <usize>tq * rowBytes);
    memory.fill(dkh, 0, <usize>tk * rowBytes);
    memory.fill(dvh, 0, <usize>tk * rowBytes);
    for (let kb: i32 = 0; kb < nkb; kb++) {
      const j0 = blockStart(kb, bw, kbase);
      const bc = blockEnd(kb, tk, bw, kbase) - j0;
      const bcp = ceil8(bc);
      let transposed = false;
      const kblk = kh + <usize>j0 * rowBytes;
      const dkblk = dkh + <usize>j0 * rowBytes;
      const dvblk = dvh + <usize>j0 * rowBytes;
      for (let qb: i32 = 0; qb < nqb; qb++) {
        const i0 = qb * BR;
        const cls = classify(qinfo, qb, kinfo, kb, j0, j0 + bc, prefix, window);
        if (cls == 0) continue;
        if (!transposed) {
          transposeBlock(kh, j0, bc, dh, kt, bw);
          transposeBlock(vh, j0, bc, dh, vt, bw);
          transposed = true;
        }
        const br = min(BR, tq - i0);
        const qblk = qh + <usize>i0 * rowBytes;
        const doblk = doh + <usize>i0 * rowBytes;
        groupRanges(ranges, cls, br, bc, qpos, i0, kpos, j0, prefix, window);
        // P = exp(S·scale - lse) over each group's range, 0 elsewhere (Pᵀ dO reads whole rows)
        for (let g: i32 = 0; g < br; g += 4) {
          const lo = load<i32>(ranges + (<usize>g << 1));
          const hi = load<i32>(ranges + (<usize>g << 1), 4);
          const gr = min(4, br - g);
          const pg = pbuf + <usize>g * sRow;
          if (hi > lo) {
            gemm(pg + (<usize>lo << 2), sRow, qblk + <usize>g * rowBytes, rowBytes, 4, kt + (<usize>lo << 2), sRow, gr, hi - lo, dh, false);
          }
          for (let r: i32 = 0; r < gr; r++) {
            const row = pg + <usize>r * sRow;
            const l = load<f32>(lh + (<usize>(i0 + g + r) << 2));
            if (l == ninf || hi <= lo) {
              zeroWords(row, bcp);
              continue;
            }
            const qp = load<i32>(qpos + (<usize>(i0 + g + r) << 2));
            const rl = row + (<usize>lo << 2);
            maskRow(rl, min(hi, bc) - lo, hi - lo, cls, scale, qp, kpos, j0 + lo, prefix, window);
            const lv = f32x4.splat(l);
            for (let c: i32 = 0; c < hi - lo; c += 4) {
              const off = <usize>c << 2;
              v128.store(rl + off, softmaxWeight(f32x4.sub(v128.load(rl + off), lv)));
            }
            zeroWords(row, lo);
            zeroWords(row + (<usize>hi << 2), bcp - hi);
          }
        }
        // dV_blk += Pᵀ dO_blk, each group of 4 keys over the rows that see it
        keyGroupRows(ranges, br, bc, keyRows);
        keyGroupProducts(dvblk, pbuf, doblk, keyRows, bc, dh, sRow, rowBytes);
        // per group: dP = dO Vᵀ, then dS = P ⊙ (dP - D)·scale (in place; 0 outside the range, for
        // dSᵀ Q), and dQ += dS K
        for (let g: i32 = 0; g < br; g += 4) {
          const lo = load<i32>(ranges + (<usize>g << 1));
          const hi = load<i32>(ranges + (<usize>g << 1), 4);
          const gr = min(4, br - g);
          const dg = dsbuf + <usize>g * sRow;
          if (hi <= lo) {
            zeroWords(dg, gr * bw);
            continue;
          }
          gemm(dg + (<usize>lo << 2), sRow, doblk + <usize>g * rowBytes, rowBytes, 4, vt + (<usize>lo << 2), sRow, gr, hi - lo, dh, false);
          for (let r: i32 = 0; r < gr; r++) {
            const prow = pbuf + <usize>(g + r) * sRow + (<usize>lo << 2);
            const row = dg + <usize>r * sRow;
            const drow = row + (<usize>lo << 2);
            const dv4 = f32x4.splat(load<f32>(dd + (<usize>(i0 + g + r) << 2)));
            for (let c: i32 = 0; c < hi - lo; c += 4) {
              const off = <usize>c << 2;
              const gv = f32x4.mul(f32x4.sub(v128.load(drow + off), dv4), sv);
              v128.store(drow + off, f32x4.mul(v128.load(prow + off), gv));
            }
            zeroWords(row, lo);
            zeroWords(row + (<usize>hi << 2), bcp - hi);
          }
          gemm(dqh + <usize>(i0 + g) * rowBytes, rowBytes, dg + (<usize>lo << 2), sRow, 4, kblk + <usize>lo * rowBytes, rowBytes, gr, dh, min(hi, bc) - lo, true);
        }
        // dK_blk += dSᵀ Q_blk, as dV
        keyGroupProducts(dkblk, dsbuf, qblk, keyRows, bc, dh, sRow, rowBytes);
      }
    }
  }
}

// ---- pool tasks ----------------------------------------------------------------------------------
// attentionForwardTask / attentionBackwardTask run the kernels above on one contiguous slice of the
// batch, reading their arguments from a block of i32 words (the A_* indices below, written by the JS
// glue, ../attention.ts): the slice's own q/k/v/out/lse/dout/dq/dk/dv addresses, its batch count,
// and the shared sizes, positions, prefix, window and scale. Slices touch disjoint outputs, so they
// may run on different threads, each with its own scratch (the scratch size depends only on tq, tk
// and dh). Each (batch, head) row is computed exactly as in one call over the whole batch.

const A_Q: i32 = 0;
const A_K: i32 = 1; // forward: the pages array (see attentionForward)
const A_V: i32 = 2; // forward: rows per page
const A_O: i32 = 3; // forward: out written; backward: the forward's out read
const A_LSE: i32 = 4;
const A_DOUT: i32 = 5; // backward only
const A_DQ: i32 = 6; // backward only
const A_DK: i32 = 7; // backward only
const A_DV: i32 = 8; // backward only
const A_QPOS: i32 = 9;
const A_KPOS: i32 = 10;
const A_BATCH: i32 = 11; // (batch, head) rows in this slice
const A_TQ: i32 = 12;
const A_TK: i32 = 13;
const A_DH: i32 = 14;
const A_PREFIX: i32 = 15;
const A_WINDOW: i32 = 16;
const A_SCALE: i32 = 17; // f32 bits
const A_BATCH0: i32 = 18; // forward: the slice's first (batch, head) row, for page addresses

/** i32 words of one task's argument block. */
export function attentionTaskWords(): i32 {
  return 19;
}

// @ts-ignore: decorator
@inline
function argWord(args: usize, i: i32): i32 {
  return load<i32>(args + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline
function argPtr(args: usize, i: i32): usize {
  return <usize>load<u32>(args + (<usize>i << 2));
}

/** attentionForward on the slice described by the argument block at `args`. */
export function attentionForwardTask(args: usize, scratch: usize): void {
  attentionForward(
    argPtr(args, A_Q),
    argPtr(args, A_K),
    argWord(args, A_V),
    argWord(args, A_BATCH0),
    argPtr(args, A_O),
    argPtr(args, A_LSE),
    argPtr(args, A_QPOS),
    argPtr(args, A_KPOS),
    argWord(args, A_BATCH),
    argWord(args, A_TQ),
    argWord(args, A_TK),
    argWord(args, A_DH),
    argWord(args, A_PREFIX),
    argWord(args, A_WINDOW),
    load<f32>(args + (<usize>A_SCALE << 2)),
    scratch,
  );
}

/** attentionBackward on the slice described by the argument block at `args`. */
export function attentionBackwardTask(args: usize, scratch: usize): void {
  attentionBackward(
    argPtr(args, A_Q),
    argPtr(args, A_K),
    argPtr(args, A_V),
    argPtr(args, A_O),
    argPtr(args, A_LSE),
    argPtr(args, A_DOUT),
    argPtr(args, A_DQ),
    argPtr(args, A_DK),
    argPtr(args, A_DV),
    argPtr(args, A_QPOS),
    argPtr(args, A_KPOS),
    argWord(args, A_BATCH),
    argWord(args, A_TQ),
    argWord(args, A_TK),
    argWord(args, A_DH),
    argWord(args, A_PREFIX),
    argWord(args, A_WINDOW),
    load<f32>(args + (<usize>A_SCALE << 2)),
    scratch,
  );
}
