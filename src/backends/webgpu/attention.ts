/**
 * Fused attention for the WebGPU backend (FlashAttention-2 style; never queries × keys in memory).
 *
 * Forward: one invocation per query row, a workgroup per block of ROWS queries of one batch row.
 * Keys and values are staged in workgroup memory TK at a time; each invocation keeps its query
 * and output accumulator in registers and folds the tile in with an online softmax
 * (m ← max(m, s); l ← l·e^{m_old−m} + e^{s−m}; acc ← acc·e^{m_old−m} + e^{s−m}·v).
 * Output: O (batch, tq, dh) then each row's log-sum-exp (batch, tq), −∞ for rows that see no key.
 *
 * Backward (three dispatches): (Dᵢ = dOᵢ·Oᵢ, lseᵢ) interleaved; dQ per query row over key tiles;
 * dK, dV per key row over query tiles (staged Q, dO, lse, D), with Pᵢⱼ = e^{sᵢⱼ − lseᵢ}
 * recomputed and dSᵢⱼ = Pᵢⱼ (dOᵢ·vⱼ − Dᵢ).
 *
 * Every binding is reached through its skip (the element offset of its window), and batch rows
 * are split over dispatches where one binding cannot hold all their queries or keys (supports()
 * declines only a single batch row that large).
 *
 * Masks are positions (engine/backend.ts AttentionParams): key j is visible to query i iff
 * j < prefix or 0 ≤ qpos[i] − kpos[j] < window — causal, sliding window, persistent prefix, KV
 * cache and MAC's [P; h; n] are all this one rule. Kernels are compiled per head size (registers
 * are arrays of dh floats); head sizes above MAX_HEAD_DIM go to the engine's composed path.
 */
import type { AttentionParams, BackendBuffer, FusedAttention } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import type { Binding, GpuBuffer, GpuContext } from './context.js';
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

/** Binding names whose element offsets (skips) follow the scalars, in this order from word 8. */
const SKIP_NAMES = ['q', 'k', 'v', 'pos', 'dout', 'ld', 'out', 'lse', 'dq', 'gk', 'gv', 'po'] as const;
const SKIPS = SKIP_NAMES.map((name, i) => `  let s_${name} = P(${8 + i}u);`).join('\n');

/** Every access `name[i]` of a bound array becomes `name[s_name + i]` (its binding's skip). */
function withSkips(source: string): string {
  return source.replace(
    new RegExp(`\\b(${SKIP_NAMES.join('|')})\\[`, 'g'),
    (_, name) => `${name}[s_${name} + `,
  );
}

const PARAMS = `${SKIPS}
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
  return withSkips(`${header([
    { name: 'out', type: 'f32', write: true },
    { name: 'lse', type: 'f32', write: true },
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
      lse[row] = -inf();
    } else {
      for (var c = 0u; c < ${dh}u; c++) { out[row * ${dh}u + c] = acc[c] / l; }
      lse[row] = m + log(l);
    }
  }`,
)}`);
}

/** (D_i = dO_i · O_i, lse_i) per query row, interleaved in `ld`: one invocation per row. */
function deltaSource(dh: number): string {
  return withSkips(`${header([
    { name: 'ld', type: 'f32', write: true },
    { name: 'po', type: 'f32' },
    { name: 'lse', type: 'f32' },
    { name: 'dout', type: 'f32' },
  ])}
${entry(
  ROWS,
  `${SKIPS}
  let rows = P(0u);
  if (gid >= rows) { return; }
  var s = 0.0;
  for (var c = 0u; c < ${dh}u; c++) { s += dout[gid * ${dh}u + c] * po[gid * ${dh}u + c]; }
  ld[2u * gid] = s;
  ld[2u * gid + 1u] = lse[gid];`,
)}`);
}

/** dQ: one invocation per query row, keys and values staged per tile. */
function dqSource(dh: number, tk: number): string {
  return withSkips(`${header([
    { name: 'dq', type: 'f32', write: true },
    { name: 'q', type: 'f32' },
    { name: 'k', type: 'f32' },
    { name: 'v', type: 'f32' },
    { name: 'ld', type: 'f32' },
    { name: 'dout', type: 'f32' },
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
    qp = pos[i]; di = ld[2u * row]; lse = ld[2u * row + 1u];
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
)}`);
}

/** dK and dV: one invocation per key row, queries staged per tile. */
function dkvSource(dh: number, tq: number): string {
  return withSkips(`${header([
    { name: 'gk', type: 'f32', write: true },
    { name: 'gv', type: 'f32', write: true },
    { name: 'q', type: 'f32' },
    { name: 'k', type: 'f32' },
    { name: 'v', type: 'f32' },
    { name: 'ld', type: 'f32' },
    { name: 'dout', type: 'f32' },
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
        Qp[e] = pos[i0 + e]; Ls[e] = ld[2u * (b * tq + i0 + e) + 1u]; Dl[e] = ld[2u * (b * tq + i0 + e)];
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
    for (var c = 0u; c < ${dh}u; c++) { gk[row * ${dh}u + c] = dk[c]; gv[row * ${dh}u + c] = dv[c]; }
  }`,
)}`);
}

export function createWebGpuAttention(ctx: GpuContext): FusedAttention {
  const buf = (b: BackendBuffer) => b as GpuBuffer;
  const describe = (p: AttentionParams) => () =>
    `batch ${p.batch}, ${p.queries} queries × ${p.keys} keys, head ${p.headDim}`;
  /** Query positions then key positions, in one int32 buffer. */
  const positions = (p: AttentionParams): GpuBuffer => {
    const both = new Int32Array(p.queries + p.keys);
    both.set(p.queryPositions, 0);
    both.set(p.keyPositions, p.queries);
    return ctx.upload(both, both.length, 'int32');
  };
  const groupsFor = (batch: number, rows: number) => batch * Math.ceil(rows / ROWS);
  /** Batch rows per dispatch: all of them, unless one binding cannot hold their queries or keys. */
  const batchGroup = (p: AttentionParams) =>
    Math.min(
      p.batch,
      Math.floor(ctx.windowElements / (Math.max(p.queries, p.keys) * p.headDim)),
      Math.floor(ctx.windowElements / (2 * p.queries)),
      Math.floor(ctx.maxInvocations(1) / Math.ceil(Math.max(p.queries, p.keys) / ROWS)),
    );

  /**
   * Runs `dispatch` once per group of batch rows [b0, b0 + nb) with `views`: for each named
   * binding, its window over those rows (a buffer and the elements per batch row at an offset).
   */
  function byBatch(
    p: AttentionParams,
    views: Record<string, [GpuBuffer, number, number?]>,
    dispatch: (nb: number, bound: Record<string, { binding: Binding; skip: number }>) => void,
  ): void {
    const group = batchGroup(p);
    for (let b0 = 0; b0 < p.batch; b0 += group) {
      const nb = Math.min(group, p.batch - b0);
      const bound: Record<string, { binding: Binding; skip: number }> = {};
      for (const [name, [buffer, perRow, at = 0]] of Object.entries(views)) {
        bound[name] = perRow === 0 ? ctx.bind(buffer) : ctx.bind(buffer, at + b0 * perRow, nb * perRow);
      }
      dispatch(nb, bound);
    }
  }

  /** The scalars (batch = the group's rows) and every binding's skip, then the bindings in `order`. */
  function run(
    pipeline: GPUComputePipeline,
    p: AttentionParams,
    nb: number,
    blocks: number,
    bound: Record<string, { binding: Binding; skip: number }>,
    order: readonly string[],
    groups: number,
  ): void {
    const scale = new Uint32Array(new Float32Array([p.scale]).buffer)[0]!;
    const scalars = [nb, p.queries, p.keys, p.headDim, p.prefix, Math.min(p.window, I32_MAX), scale, blocks];
    const skips = SKIP_NAMES.map((name) => bound[name]?.skip ?? 0);
    ctx.dispatch(
      pipeline,
      [...scalars, ...skips],
      order.map((name) => bound[name]!.binding),
      groups,
    );
  }

  return {
    supports(p: AttentionParams, dtype: DType): boolean {
      if (dtype !== 'float32' || p.headDim < 1 || p.headDim > MAX_HEAD_DIM) return false;
      if (p.queries === 0 || p.keys === 0 || p.batch === 0) return false;
      // Batch rows are split over dispatches; one row's queries, keys and positions must fit a binding.
      return batchGroup(p) >= 1 && p.queries + p.keys <= ctx.windowElements;
    },

    forward(q, k, v, p) {
      ctx.begin('attention forward', describe(p));
      const dh = p.headDim;
      const tk = tileRows(ctx, 2 * dh + 1);
      const pipeline = ctx.pipeline(`attention-forward:${dh}:${tk}`, () => forwardSource(dh, tk));
      const rows = p.batch * p.queries;
      const out = ctx.alloc(rows * dh, 'float32');
      const lse = ctx.alloc(rows, 'float32');
      const pos = positions(p);
      const blocks = Math.ceil(p.queries / ROWS);
      const views = {
        out: [out, p.queries * dh],
        lse: [lse, p.queries],
        q: [buf(q), p.queries * dh],
        k: [buf(k), p.keys * dh],
        v: [buf(v), p.keys * dh],
        pos: [pos, 0],
      } satisfies Record<string, [GpuBuffer, number, number?]>;
      byBatch(p, views, (nb, bound) =>
        run(pipeline, p, nb, blocks, bound, ['out', 'lse', 'q', 'k', 'v', 'pos'], groupsFor(nb, p.queries)),
      );
      ctx.release(pos);
      return [out, lse];
    },

    backward(q, k, v, out, lse, dOut, p) {
      ctx.begin('attention backward', describe(p));
      const dh = p.headDim;
      const rows = p.batch * p.queries;
      const pos = positions(p);
      const ld = ctx.alloc(2 * rows, 'float32');
      const dq = ctx.alloc(rows * dh, 'float32');
      const dk = ctx.alloc(p.batch * p.keys * dh, 'float32');
      const dv = ctx.alloc(p.batch * p.keys * dh, 'float32');
      const views = {
        q: [buf(q), p.queries * dh],
        k: [buf(k), p.keys * dh],
        v: [buf(v), p.keys * dh],
        pos: [pos, 0],
        dout: [buf(dOut), p.queries * dh],
        po: [buf(out), p.queries * dh],
        lse: [buf(lse), p.queries],
        ld: [ld, 2 * p.queries],
        dq: [dq, p.queries * dh],
        gk: [dk, p.keys * dh],
        gv: [dv, p.keys * dh],
      } satisfies Record<string, [GpuBuffer, number, number?]>;
      const delta = ctx.pipeline(`attention-delta:${dh}`, () => deltaSource(dh));
      const tk = tileRows(ctx, 2 * dh + 1);
      const dqPipeline = ctx.pipeline(`attention-dq:${dh}:${tk}`, () => dqSource(dh, tk));
      const tq = tileRows(ctx, 2 * dh + 3);
      const dkvPipeline = ctx.pipeline(`attention-dkv:${dh}:${tq}`, () => dkvSource(dh, tq));
      const qBlocks = Math.ceil(p.queries / ROWS);
      const kBlocks = Math.ceil(p.keys / ROWS);
      byBatch(p, views, (nb, bound) => {
        // The delta kernel takes its row count as the first scalar.
        const groupRows = nb * p.queries;
        run(delta, p, groupRows, 0, bound, ['ld', 'po', 'lse', 'dout'], Math.ceil(groupRows / ROWS));
        const common = ['q', 'k', 'v', 'ld', 'dout', 'pos'];
        run(dqPipeline, p, nb, qBlocks, bound, ['dq', ...common], groupsFor(nb, p.queries));
        run(dkvPipeline, p, nb, kBlocks, bound, ['gk', 'gv', ...common], groupsFor(nb, p.keys));
      });
      for (const b of [ld, pos]) ctx.release(b);
      return [dq, dk, dv];
    },
  };
}
