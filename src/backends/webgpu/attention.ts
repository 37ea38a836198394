/**
 * Fused attention for the WebGPU backend (FlashAttention-2 style; never queries × keys in memory).
 *
 * Forward: one invocation per query row, a workgroup per block of ROWS queries of one batch row.
 * Keys and values are staged in workgroup memory TK at a time; each invocation keeps its query
 * and output accumulator in registers and folds the tile in with an online softmax
 * (m ← max(m, s); l ← l·e^{m_old−m} + e^{s−m}; acc ← acc·e^{m_old−m} + e^{s−m}·v).
 * Output: O (batch, tq, dh) then each row's log-sum-exp (batch, tq), −∞ for rows that see no key.
 *
 * Backward (three dispatches): Dᵢ = dOᵢ·Oᵢ; dQ per query row over key tiles; dK, dV per key row
 * over query tiles (staged Q, dO, lse, D), with Pᵢⱼ = e^{sᵢⱼ − lseᵢ} recomputed and
 * dSᵢⱼ = Pᵢⱼ (dOᵢ·vⱼ − Dᵢ).
 *
 * Masks are positions (engine/backend.ts AttentionParams): key j is visible to query i iff
 * j < prefix or 0 ≤ qpos[i] − kpos[j] < window — causal, sliding window, persistent prefix, KV
 * cache and MAC's [P; h; n] are all this one rule. Kernels are compiled per head size (registers
 * are arrays of dh floats); head sizes above MAX_HEAD_DIM go to the engine's composed path.
 */
import type { AttentionParams, BackendBuffer, FusedAttention } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import type { GpuBuffer, GpuContext } from './context.js';
import { entry, FLOAT_HELPERS, header } from './wgsl.js';

/** Largest head size the fused kernels take (private arrays of this many floats per invocation). */
export const MAX_HEAD_DIM = 128;
/** Query (forward, dQ) or key (dK/dV) rows per workgroup. */
const ROWS = 64;
const I32_MAX = 0x7fffffff;

/** Keys (or queries) staged per tile: as many as fit `floatsPerRow` floats each in the budget. */
function tileRows(ctx: GpuContext, floatsPerRow: number): number {
  const budget = Math.min(ctx.limits.maxComputeWorkgroupStorageSize, 16384) - 1024;
  return Math.max(1, Math.min(64, Math.floor(budget / (4 * floatsPerRow))));
}

const PARAMS = `
  let batch = P(0u); let tq = P(1u); let tk = P(2u); let dh = P(3u);
  let prefix = P(4u); let window = PI(5u); let scale = PF(6u);
  let blocks = P(7u);`;

const VISIBLE = `
fn visible(j: u32, qp: i32, kp: i32, prefix: u32, window: i32) -> bool {
  let d = qp - kp;
  return j < prefix || (d >= 0 && d < window);
}`;

/** Workgroup arrays for one tile of tk keys: K and V rows and the keys' positions. */
const keyTileDecls = (dh: number, tk: number) => `var<workgroup> Ks: array<f32, ${tk * dh}>;
var<workgroup> Vs: array<f32, ${tk * dh}>;
var<workgroup> Kp: array<i32, ${tk}>;`;

/** Stages keys j0 … j0 + tk − 1 of batch row b (zeros past the end), between barriers. */
const loadKeyTile = (dh: number, tk: number) => `    workgroupBarrier();
    for (var e = lid; e < ${tk * dh}u; e += ${ROWS}u) {
      let j = j0 + e / ${dh}u;
      var kv = 0.0; var vv = 0.0;
      if (b < batch && j < tk) { kv = k[(b * tk + j) * ${dh}u + e % ${dh}u]; vv = v[(b * tk + j) * ${dh}u + e % ${dh}u]; }
      Ks[e] = kv; Vs[e] = vv;
    }
    for (var e = lid; e < ${tk}u; e += ${ROWS}u) { if (j0 + e < tk) { Kp[e] = pos[tq + j0 + e]; } }
    workgroupBarrier();`;

function forwardSource(dh: number, tk: number): string {
  return `${header([
    { name: 'out', type: 'f32', write: true },
    { name: 'q', type: 'f32' },
    { name: 'k', type: 'f32' },
    { name: 'v', type: 'f32' },
    { name: 'pos', type: 'i32' },
  ])}
${FLOAT_HELPERS}
${VISIBLE}
${keyTileDecls(dh, tk)}
${entry(
  ROWS,
  `${PARAMS}
  let b = group / blocks;
  let i = (group % blocks) * ${ROWS}u + lid;
  let valid = b < batch && i < tq;
  var qr: array<f32, ${dh}>;
  var acc: array<f32, ${dh}>;
  var qp = 0;
  if (valid) {
    qp = pos[i];
    for (var c = 0u; c < ${dh}u; c++) { qr[c] = q[(b * tq + i) * ${dh}u + c] * scale; acc[c] = 0.0; }
  }
  var m = -inf(); var l = 0.0;
  for (var j0 = 0u; j0 < tk; j0 += ${tk}u) {
${loadKeyTile(dh, tk)}
    if (valid) {
      let n = min(${tk}u, tk - j0);
      for (var t = 0u; t < n; t++) {
        if (!visible(j0 + t, qp, Kp[t], prefix, window)) { continue; }
        var s = 0.0;
        for (var c = 0u; c < ${dh}u; c++) { s += qr[c] * Ks[t * ${dh}u + c]; }
        let mNew = max(m, s);
        let correction = exp(m - mNew);
        let p = exp(s - mNew);
        l = l * correction + p;
        for (var c = 0u; c < ${dh}u; c++) { acc[c] = acc[c] * correction + p * Vs[t * ${dh}u + c]; }
        m = mNew;
      }
    }
  }
  if (valid) {
    let row = b * tq + i;
    if (l == 0.0) {
      for (var c = 0u; c < ${dh}u; c++) { out[row * ${dh}u + c] = 0.0; }
      out[batch * tq * ${dh}u + row] = -inf();
    } else {
      for (var c = 0u; c < ${dh}u; c++) { out[row * ${dh}u + c] = acc[c] / l; }
      out[batch * tq * ${dh}u + row] = m + log(l);
    }
  }`,
)}`;
}

/** D_i = dO_i · O_i, one invocation per query row. */
function deltaSource(dh: number): string {
  return `${header([
    { name: 'delta', type: 'f32', write: true },
    { name: 'packed', type: 'f32' },
    { name: 'dout', type: 'f32' },
  ])}
${entry(
  ROWS,
  `  let rows = P(0u);
  if (gid >= rows) { return; }
  var s = 0.0;
  for (var c = 0u; c < ${dh}u; c++) { s += dout[gid * ${dh}u + c] * packed[gid * ${dh}u + c]; }
  delta[gid] = s;`,
)}`;
}

/** dQ: one invocation per query row, keys and values staged per tile. */
function dqSource(dh: number, tk: number): string {
  return `${header([
    { name: 'dq', type: 'f32', write: true },
    { name: 'q', type: 'f32' },
    { name: 'k', type: 'f32' },
    { name: 'v', type: 'f32' },
    { name: 'packed', type: 'f32' },
    { name: 'dout', type: 'f32' },
    { name: 'delta', type: 'f32' },
    { name: 'pos', type: 'i32' },
  ])}
${FLOAT_HELPERS}
${VISIBLE}
${keyTileDecls(dh, tk)}
${entry(
  ROWS,
  `${PARAMS}
  let b = group / blocks;
  let i = (group % blocks) * ${ROWS}u + lid;
  let valid = b < batch && i < tq;
  let row = b * tq + i;
  var qr: array<f32, ${dh}>;
  var dor: array<f32, ${dh}>;
  var acc: array<f32, ${dh}>;
  var qp = 0; var lse = 0.0; var di = 0.0;
  if (valid) {
    qp = pos[i]; lse = packed[batch * tq * ${dh}u + row]; di = delta[row];
    for (var c = 0u; c < ${dh}u; c++) { qr[c] = q[row * ${dh}u + c] * scale; dor[c] = dout[row * ${dh}u + c]; acc[c] = 0.0; }
  }
  for (var j0 = 0u; j0 < tk; j0 += ${tk}u) {
${loadKeyTile(dh, tk)}
    if (valid) {
      let n = min(${tk}u, tk - j0);
      for (var t = 0u; t < n; t++) {
        if (!visible(j0 + t, qp, Kp[t], prefix, window)) { continue; }
        var s = 0.0; var dp = 0.0;
        for (var c = 0u; c < ${dh}u; c++) { s += qr[c] * Ks[t * ${dh}u + c]; dp += dor[c] * Vs[t * ${dh}u + c]; }
        let ds = exp(s - lse) * (dp - di) * scale;
        for (var c = 0u; c < ${dh}u; c++) { acc[c] += ds * Ks[t * ${dh}u + c]; }
      }
    }
  }
  if (valid) { for (var c = 0u; c < ${dh}u; c++) { dq[row * ${dh}u + c] = acc[c]; } }`,
)}`;
}

/** dK and dV (packed: dK then dV): one invocation per key row, queries staged per tile. */
function dkvSource(dh: number, tq: number): string {
  return `${header([
    { name: 'dkv', type: 'f32', write: true },
    { name: 'q', type: 'f32' },
    { name: 'k', type: 'f32' },
    { name: 'v', type: 'f32' },
    { name: 'packed', type: 'f32' },
    { name: 'dout', type: 'f32' },
    { name: 'delta', type: 'f32' },
    { name: 'pos', type: 'i32' },
  ])}
${FLOAT_HELPERS}
${VISIBLE}
var<workgroup> Qs: array<f32, ${tq * dh}>;
var<workgroup> Ds: array<f32, ${tq * dh}>;
var<workgroup> Ls: array<f32, ${tq}>;
var<workgroup> Dl: array<f32, ${tq}>;
var<workgroup> Qp: array<i32, ${tq}>;
${entry(
  ROWS,
  `${PARAMS}
  let b = group / blocks;
  let j = (group % blocks) * ${ROWS}u + lid;
  let valid = b < batch && j < tk;
  let row = b * tk + j;
  var kr: array<f32, ${dh}>;
  var vr: array<f32, ${dh}>;
  var dk: array<f32, ${dh}>;
  var dv: array<f32, ${dh}>;
  var kp = 0;
  if (valid) {
    kp = pos[tq + j];
    for (var c = 0u; c < ${dh}u; c++) { kr[c] = k[row * ${dh}u + c]; vr[c] = v[row * ${dh}u + c]; dk[c] = 0.0; dv[c] = 0.0; }
  }
  for (var i0 = 0u; i0 < tq; i0 += ${tq}u) {
    workgroupBarrier();
    for (var e = lid; e < ${tq * dh}u; e += ${ROWS}u) {
      let i = i0 + e / ${dh}u;
      var qv = 0.0; var dv_ = 0.0;
      if (b < batch && i < tq) { qv = q[(b * tq + i) * ${dh}u + e % ${dh}u] * scale; dv_ = dout[(b * tq + i) * ${dh}u + e % ${dh}u]; }
      Qs[e] = qv; Ds[e] = dv_;
    }
    for (var e = lid; e < ${tq}u; e += ${ROWS}u) {
      if (b < batch && i0 + e < tq) {
        Qp[e] = pos[i0 + e]; Ls[e] = packed[batch * tq * ${dh}u + b * tq + i0 + e]; Dl[e] = delta[b * tq + i0 + e];
      }
    }
    workgroupBarrier();
    if (valid) {
      let n = min(${tq}u, tq - i0);
      for (var t = 0u; t < n; t++) {
        if (!visible(j, Qp[t], kp, prefix, window)) { continue; }
        var s = 0.0; var dp = 0.0;
        for (var c = 0u; c < ${dh}u; c++) { s += Qs[t * ${dh}u + c] * kr[c]; dp += Ds[t * ${dh}u + c] * vr[c]; }
        let p = exp(s - Ls[t]);
        let ds = p * (dp - Dl[t]);
        for (var c = 0u; c < ${dh}u; c++) { dv[c] += p * Ds[t * ${dh}u + c]; dk[c] += ds * Qs[t * ${dh}u + c]; }
      }
    }
  }
  if (valid) {
    for (var c = 0u; c < ${dh}u; c++) { dkv[row * ${dh}u + c] = dk[c]; dkv[batch * tk * ${dh}u + row * ${dh}u + c] = dv[c]; }
  }`,
)}`;
}

export function createWebGpuAttention(ctx: GpuContext): FusedAttention {
  const buf = (b: BackendBuffer) => b as GpuBuffer;
  const describe = (p: AttentionParams) => () =>
    `batch ${p.batch}, ${p.queries} queries × ${p.keys} keys, head ${p.headDim}`;
  const scalars = (p: AttentionParams, blocks: number) => {
    const scale = new Uint32Array(new Float32Array([p.scale]).buffer)[0]!;
    return [p.batch, p.queries, p.keys, p.headDim, p.prefix, Math.min(p.window, I32_MAX), scale, blocks];
  };
  /** Query positions then key positions, in one int32 buffer. */
  const positions = (p: AttentionParams): GpuBuffer => {
    const both = new Int32Array(p.queries + p.keys);
    both.set(p.queryPositions, 0);
    both.set(p.keyPositions, p.queries);
    return ctx.upload(both, both.length, 'int32');
  };
  const groupsFor = (batch: number, rows: number) => batch * Math.ceil(rows / ROWS);

  return {
    supports(p: AttentionParams, dtype: DType): boolean {
      if (dtype !== 'float32' || p.headDim < 1 || p.headDim > MAX_HEAD_DIM) return false;
      if (p.queries === 0 || p.keys === 0 || p.batch === 0) return false;
      const limit = ctx.limits.maxStorageBufferBindingSize / 4;
      const biggest = p.batch * Math.max(p.queries, p.keys) * (p.headDim + 1) * 2;
      return (
        biggest <= limit &&
        groupsFor(p.batch, Math.max(p.queries, p.keys)) <= ctx.limits.maxComputeWorkgroupsPerDimension ** 2
      );
    },

    forward(q, k, v, p) {
      ctx.begin('attention forward', describe(p));
      const dh = p.headDim;
      const tk = tileRows(ctx, 2 * dh + 1);
      const pipeline = ctx.pipeline(`attention-forward:${dh}:${tk}`, () => forwardSource(dh, tk));
      const out = ctx.alloc(p.batch * p.queries * (dh + 1), 'float32');
      const pos = positions(p);
      const blocks = Math.ceil(p.queries / ROWS);
      ctx.dispatch(
        pipeline,
        scalars(p, blocks),
        [out, buf(q), buf(k), buf(v), pos],
        groupsFor(p.batch, p.queries),
      );
      ctx.release(pos);
      return out;
    },

    backward(q, k, v, packed, dOut, p) {
      ctx.begin('attention backward', describe(p));
      const dh = p.headDim;
      const rows = p.batch * p.queries;
      const pos = positions(p);
      const delta = ctx.alloc(rows, 'float32');
      ctx.dispatch(
        ctx.pipeline(`attention-delta:${dh}`, () => deltaSource(dh)),
        [rows],
        [delta, buf(packed), buf(dOut)],
        Math.ceil(rows / ROWS),
      );
      const common = [buf(q), buf(k), buf(v), buf(packed), buf(dOut), delta, pos];
      const tk = tileRows(ctx, 2 * dh + 1);
      const dq = ctx.alloc(rows * dh, 'float32');
      const qBlocks = Math.ceil(p.queries / ROWS);
      ctx.dispatch(
        ctx.pipeline(`attention-dq:${dh}:${tk}`, () => dqSource(dh, tk)),
        scalars(p, qBlocks),
        [dq, ...common],
        groupsFor(p.batch, p.queries),
      );
      const tq = tileRows(ctx, 2 * dh + 3);
      const dkv = ctx.alloc(2 * p.batch * p.keys * dh, 'float32');
      const kBlocks = Math.ceil(p.keys / ROWS);
      ctx.dispatch(
        ctx.pipeline(`attention-dkv:${dh}:${tq}`, () => dkvSource(dh, tq)),
        scalars(p, kBlocks),
        [dkv, ...common],
        groupsFor(p.batch, p.keys),
      );
      // Split the packed dK, dV into the two buffers the interface returns.
      const half = p.batch * p.keys * dh;
      const dk = ctx.alloc(half, 'float32');
      const dv = ctx.alloc(half, 'float32');
      const gpu = ctx.gpuOf(dkv);
      ctx.copy(gpu, 0, ctx.gpuOf(dk), 0, half * 4);
      ctx.copy(gpu, half * 4, ctx.gpuOf(dv), 0, half * 4);
      for (const b of [delta, pos, dkv]) ctx.release(b);
      return [dq, dk, dv];
    },
  };
}
