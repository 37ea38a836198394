/**
 * The pieces every block is made of (SPEC §3–§4): multi-head attention with RoPE, a persistent
 * prefix and a window-bounded key/value cache; the SwiGLU MLP; the gate ⊗ of MAC and MAG.
 *
 * Axis legend: B batch, T tokens, d model width, H attention heads, dh = d/H, n cached tokens,
 * N_p persistent tokens, f MLP hidden width.
 */
import type { FloatDType } from '../engine/dtype.js';
import {
  appendToCache,
  attendCache,
  attention,
  broadcastTo,
  concat,
  expandDims,
  isPagedCache,
  matmul,
  mul,
  type PagedCache,
  type Positions,
  type Rng,
  reshape,
  rmsNorm,
  ropeHeads,
  sigmoid,
  sliceAxis,
  swigluGate,
  type Tensor,
  transpose,
} from '../engine/index.js';

/** Attention projections; the heads are H column blocks of width dh. */
export interface AttentionWeights {
  wq: Tensor; // (d, d)
  wk: Tensor; // (d, d)
  wv: Tensor; // (d, d)
  wo: Tensor; // (d, d)
}

/** SwiGLU MLP: (SiLU(x W_gate) ⊙ x W_up) W_down. */
export interface MlpWeights {
  wGate: Tensor; // (d, f)
  wUp: Tensor; // (d, f)
  wDown: Tensor; // (f, d)
}

/** gate(y, m) = RMSNorm_a(y) ⊙ σ(RMSNorm_b(m)) (SPEC §4), learned vector scales. */
export interface GateWeights {
  normY: Tensor; // (d)
  normM: Tensor; // (d)
}

/**
 * Rotated keys and values of the last n tokens an attention layer saw, with their positions.
 * Bounded by the window (w − 1 tokens), so its size does not grow with the stream (SPEC §5).
 */
export interface KeyValueCache {
  readonly k: Tensor; // (B, H, n, dh), RoPE applied
  readonly v: Tensor; // (B, H, n, dh)
  readonly positions: readonly number[]; // length n
}

export function initAttention(d: number, outputStd: number, rng: Rng, dtype: FloatDType): AttentionWeights {
  const std = 1 / Math.sqrt(d);
  return {
    wq: rng.normal([d, d], { std, dtype }),
    wk: rng.normal([d, d], { std, dtype }),
    wv: rng.normal([d, d], { std, dtype }),
    wo: rng.normal([d, d], { std: outputStd, dtype }),
  };
}

export function initMlp(d: number, f: number, outputStd: number, rng: Rng, dtype: FloatDType): MlpWeights {
  return {
    wGate: rng.normal([d, f], { std: 1 / Math.sqrt(d), dtype }),
    wUp: rng.normal([d, f], { std: 1 / Math.sqrt(d), dtype }),
    wDown: rng.normal([f, d], { std: outputStd, dtype }),
  };
}

/** (B, T, H·dh) → (B, H, T, dh). */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [B, T] = [x.shape[0]!, x.shape[1]!];
  return transpose(reshape(x, [B, T, heads, -1]), [0, 2, 1, 3]);
}

/** (B, H, T, dh) → (B, T, H·dh). */
export function mergeHeads(x: Tensor): Tensor {
  const [B, H, T, dh] = x.shape as [number, number, number, number];
  return reshape(transpose(x, [0, 2, 1, 3]), [B, T, H * dh]);
}

/** Consecutive positions start, …, start + n − 1. */
export function positionRange(start: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

/** Queries of x (B, T, d) at `positions`, rotated: (B, H, T, dh). */
export function projectQueries(
  w: AttentionWeights,
  x: Tensor,
  heads: number,
  positions: Positions,
  ropeBase: number,
): Tensor {
  return ropeHeads(matmul(x, w.wq), heads, positions, ropeBase);
}

/** Keys (rotated) and values of x (B, T, d) at `positions`: each (B, H, T, dh). */
export function projectKeysValues(
  w: AttentionWeights,
  x: Tensor,
  heads: number,
  positions: Positions,
  ropeBase: number,
): { k: Tensor; v: Tensor } {
  return {
    k: ropeHeads(matmul(x, w.wk), heads, positions, ropeBase),
    v: splitHeads(matmul(x, w.wv), heads),
  };
}

/**
 * Keys and values of the persistent tokens P (N_p, d), not rotated (SPEC §3: position-free),
 * broadcast to the batch: each (B, H, N_p, dh).
 */
export function persistentKeysValues(
  w: AttentionWeights,
  persistent: Tensor,
  heads: number,
  batch: number,
): { k: Tensor; v: Tensor } {
  const rows = expandDims(persistent, 0); // (1, N_p, d)
  const k = splitHeads(matmul(rows, w.wk), heads); // (1, H, N_p, dh)
  const v = splitHeads(matmul(rows, w.wv), heads);
  const shape = [batch, k.shape[1]!, k.shape[2]!, k.shape[3]!];
  return { k: broadcastTo(k, shape), v: broadcastTo(v, shape) };
}

export interface SelfAttentionOptions {
  heads: number;
  /** Sliding window w (Infinity for full causal attention). */
  window: number;
  ropeBase: number;
  /** Position of x's first token in the stream. */
  start: number;
  /** Persistent tokens P (N_p, d), an always-visible prefix; null for none. */
  persistent: Tensor | null;
  /**
   * Keys and values of earlier tokens of the stream (null at its start): a window-bounded
   * KeyValueCache, or with an unbounded window and no persistent prefix a PagedCache (written in
   * place, read in place).
   */
  cache: KeyValueCache | PagedCache | null;
  /** Return the updated cache (generation, streaming); false in training. */
  keepCache: boolean;
}

/**
 * Causal (sliding-window) self-attention over x (B, T, d) continuing a stream: RoPE at absolute
 * positions, the persistent prefix P that never slides out (eq. 19), the cache of the last w − 1
 * tokens. Returns y (B, T, d) and the new cache (null unless `keepCache`).
 */
export function selfAttention(
  w: AttentionWeights,
  x: Tensor,
  o: SelfAttentionOptions,
): { y: Tensor; cache: KeyValueCache | PagedCache | null } {
  const [B, T] = [x.shape[0]!, x.shape[1]!];
  const positions = positionRange(o.start, T);
  const q = projectQueries(w, x, o.heads, positions, o.ropeBase);
  const { k, v } = projectKeysValues(w, x, o.heads, positions, o.ropeBase);
  const unbounded = o.window === Number.POSITIVE_INFINITY && !o.persistent;
  if (isPagedCache(o.cache) || (unbounded && o.keepCache)) {
    // Full attention over a stream: the cache grows with it, so it is kept in pages written and
    // read in place (engine/ops/kv-cache.ts) instead of being concatenated whole every piece.
    const cache = appendToCache(isPagedCache(o.cache) ? o.cache : null, k, v, o.start);
    const out = attendCache(q, cache, k, v, { queryPositions: positions });
    return { y: matmul(mergeHeads(out), w.wo), cache: o.keepCache ? cache : null };
  }
  const ks: Tensor[] = [];
  const vs: Tensor[] = [];
  const keyPositions: number[] = [];
  const prefix = o.persistent ? o.persistent.shape[0]! : 0;
  if (o.persistent && prefix > 0) {
    const p = persistentKeysValues(w, o.persistent, o.heads, B);
    ks.push(p.k);
    vs.push(p.v);
    keyPositions.push(...new Array<number>(prefix).fill(0));
  }
  if (o.cache && !isPagedCache(o.cache) && o.cache.positions.length > 0) {
    ks.push(o.cache.k);
    vs.push(o.cache.v);
    keyPositions.push(...o.cache.positions);
  }
  ks.push(k);
  vs.push(v);
  keyPositions.push(...positions);
  const out = attention(q, ks.length === 1 ? k : concat(ks, 2), vs.length === 1 ? v : concat(vs, 2), {
    queryPositions: positions,
    keyPositions,
    window: o.window,
    prefix,
  });
  const y = matmul(mergeHeads(out), w.wo);
  if (!o.keepCache) return { y, cache: null };
  return { y, cache: extendCache(isPagedCache(o.cache) ? null : o.cache, k, v, positions, o.window - 1) };
}

/** The cache after appending k, v (B, H, T, dh) at `positions`, keeping at most `limit` tokens. */
export function extendCache(
  cache: KeyValueCache | null,
  k: Tensor,
  v: Tensor,
  positions: readonly number[],
  limit: number,
): KeyValueCache {
  const allK = cache && cache.positions.length > 0 ? concat([cache.k, k], 2) : k;
  const allV = cache && cache.positions.length > 0 ? concat([cache.v, v], 2) : v;
  const allPositions = cache ? [...cache.positions, ...positions] : [...positions];
  const n = allPositions.length;
  const keep = Math.min(n, limit);
  if (keep === n) return { k: allK, v: allV, positions: allPositions };
  return {
    k: sliceAxis(allK, 2, n - keep, keep),
    v: sliceAxis(allV, 2, n - keep, keep),
    positions: allPositions.slice(n - keep),
  };
}

/** SwiGLU MLP on (…, d). */
export function swiglu(w: MlpWeights, x: Tensor): Tensor {
  return matmul(swigluGate(matmul(x, w.wGate), matmul(x, w.wUp)), w.wDown);
}

/** gate(y, m) = RMSNorm_a(y) ⊙ σ(RMSNorm_b(m)) (SPEC §4, the ⊗ of eq. 25 and 28). */
export function gateOutputs(w: GateWeights, y: Tensor, m: Tensor, eps: number): Tensor {
  return mul(rmsNorm(y, w.normY, eps), sigmoid(rmsNorm(m, w.normM, eps)));
}
