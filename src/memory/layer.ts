/**
 * The neural memory layer of SPEC §2 (paper §3.1, §4.4): projections, causal depthwise
 * convolution, SiLU, L2-normalised q/k, data-dependent gates α, η, θ, one memory per head
 * (memoryScan), per-head RMSNorm, SiLU output gate and output projection.
 *
 * Axis legend: B batch, T tokens, d model width, H heads, dh head width (d_h), C = H·dh
 * channels, K conv kernel, h memory hidden width.
 */

import type { FloatDType } from '../engine/dtype.js';
import {
  add,
  broadcastTo,
  concat,
  expandDims,
  full,
  fusedConvSiluNorm,
  fusedGate,
  l2Normalize,
  matmul,
  mul,
  type Rng,
  reshape,
  rmsNorm,
  sigmoid,
  silu,
  slice,
  swigluGate,
  type Tensor,
  transpose,
  zeros,
  zerosLike,
} from '../engine/index.js';
import { formatShape } from '../engine/shape.js';
import { type MemoryActivation, memoryForward } from './memory-mlp.js';
import { type MemoryScanInputs, type MemoryState, memoryScan } from './scan.js';

/** Configuration of one memory layer. Every field has a default (see `defaultMemoryLayerConfig`). */
export interface MemoryLayerConfig {
  /** Model width d. */
  dModel: number;
  /** Number of heads H; each has its own memory. */
  heads: number;
  /** Head width d_h. */
  headDim: number;
  /** Memory MLP depth L_M (1 = linear memory). */
  depth: number;
  /** Hidden width h = expansion · d_h for depth ≥ 2. */
  expansion: number;
  /** φ between memory layers. */
  activation: MemoryActivation;
  /** M(z) = z + MLP(z). */
  residual: boolean;
  /** Chunk size b of the chunk-parallel scan. */
  chunkSize: number;
  /** Kernel of the causal depthwise convolution on q, k, v; 0 switches it off. */
  convKernel: number;
  /** Momentum (past surprise); false makes η = 0 (DeltaNet-like). */
  momentum: boolean;
  /** Forgetting gate; false makes α = 0. */
  forgetting: boolean;
  /**
   * θ = θ_max · σ(·): the cap on the inner learning rate (stability, SPEC §2.4). Default
   * min(0.1, 0.32 / chunkSize): inside a chunk every token's gradient is taken at the chunk-start
   * weights, so b similar keys move the memory b times as far before any correction. With unit
   * keys the loss's curvature is about 2, and the descent stays stable while
   * b · θ_max · 2 / (1 − η_max) stays below about 2. The defaults give 1.28 at b = 16, θ_max = 0.02,
   * η_max = 0.5. Measured: MAC on the small preset with θ_max = 0.1, η_max = 0.9 diverged (memory
   * weights 1e32) at step 80 with the gates still near their initial values (θ ≈ 0.05, η ≈ 0.45:
   * 2.9 by that rule); the same weights were finite with caps giving ≤ 2.1.
   */
  thetaMax: number;
  /** η = η_max · σ(·): the cap on momentum decay (default 0.5; momentum amplifies steps by 1/(1 − η)). */
  etaMax: number;
  /** Initial gate biases; σ(bias) is the gate's starting value before its cap (default α −7, η 0, θ 0). */
  gateBias: { alpha: number; eta: number; theta: number };
  /**
   * Safeguard beyond SPEC (default true): L2-normalise each head's value v like q and k, so the
   * targets the inner descent fits have unit norm. SPEC §2.3 leaves v unnormalised; then |v| (and
   * with it the memory's weights and the curvature of its loss) can grow until the inner descent
   * diverges mid-sequence — measured on the small preset: NaN from step 9 at θ_max = 0.1,
   * η_max = 0.9. The retrieved values are RMS-normalised per head before use (step 6), so their
   * scale carried little information anyway. false gives SPEC's v exactly.
   */
  normalizeValues: boolean;
}

/** Defaults measured to keep the inner descent stable at initialisation (SPEC §2.4). */
export function defaultMemoryLayerConfig(
  overrides: Partial<MemoryLayerConfig> & { dModel: number },
): MemoryLayerConfig {
  const config: MemoryLayerConfig = {
    heads: 4, // paper-style multi-head memory
    headDim: Math.max(1, Math.floor(overrides.dModel / (overrides.heads ?? 4))),
    depth: 2, // SPEC default L_M = 2
    expansion: 4, // SPEC default
    activation: 'silu',
    residual: false,
    chunkSize: 16,
    convKernel: 4, // SPEC default K = 4
    momentum: true,
    forgetting: true,
    thetaMax: Math.min(0.1, 0.32 / (overrides.chunkSize ?? 16)), // b·θ_max·2/(1−η_max) ≤ 1.28 (see above)
    etaMax: 0.5,
    // α ≈ 0.0009 at init (a write's half-life ≈ 770 tokens), η ≈ η_max/2, θ ≈ θ_max/2. Measured on
    // the 1-digit pass key 100–200 tokens back (2-layer MAG, batch 8): with α's bias at −4
    // (α ≈ 0.018, half-life ≈ 38 tokens) nothing was learned in 900 steps; at −7 learning began by
    // step 265. A memory that forgets the needle before the question cannot learn to recall it.
    gateBias: { alpha: -7, eta: 0, theta: 0 },
    normalizeValues: true, // safeguard beyond SPEC: unit-norm targets keep the inner descent stable
    ...overrides,
  };
  validateMemoryLayerConfig(config);
  return config;
}

/** Throws naming the first bad field. */
export function validateMemoryLayerConfig(c: MemoryLayerConfig, where = 'memory layer config'): void {
  const positiveInt = (name: keyof MemoryLayerConfig, v: number, min = 1) => {
    if (!Number.isInteger(v) || v < min)
      throw new RangeError(`${where}: ${name} must be an integer ≥ ${min}, got ${v}`);
  };
  positiveInt('dModel', c.dModel);
  positiveInt('heads', c.heads);
  positiveInt('headDim', c.headDim);
  positiveInt('depth', c.depth);
  positiveInt('expansion', c.expansion);
  positiveInt('chunkSize', c.chunkSize);
  positiveInt('convKernel', c.convKernel, 0);
  if (c.activation !== 'silu' && c.activation !== 'gelu') {
    throw new RangeError(`${where}: activation must be 'silu' or 'gelu', got '${c.activation}'`);
  }
  if (!(c.thetaMax > 0) || !Number.isFinite(c.thetaMax)) {
    throw new RangeError(`${where}: thetaMax must be > 0, got ${c.thetaMax}`);
  }
  if (!(c.etaMax >= 0 && c.etaMax <= 1))
    throw new RangeError(`${where}: etaMax must be in [0, 1], got ${c.etaMax}`);
  if (typeof c.normalizeValues !== 'boolean') {
    throw new RangeError(`${where}: normalizeValues must be true or false, got ${c.normalizeValues}`);
  }
  for (const [k, v] of Object.entries(c.gateBias)) {
    if (!Number.isFinite(v)) throw new RangeError(`${where}: gateBias.${k} must be finite, got ${v}`);
  }
}

/** Learned parameters of one memory layer (null where a switch removes the part). */
export interface MemoryLayerParams {
  wq: Tensor; // (d, C)
  wk: Tensor; // (d, C)
  wv: Tensor; // (d, C)
  convQ: Tensor | null; // (K, C) depthwise taps, tap i applies to z_{t−i}
  convK: Tensor | null; // (K, C)
  convV: Tensor | null; // (K, C)
  wAlpha: Tensor | null; // (d, H)
  bAlpha: Tensor | null; // (H)
  wEta: Tensor | null; // (d, H)
  bEta: Tensor | null; // (H)
  wTheta: Tensor; // (d, H)
  bTheta: Tensor; // (H)
  memory: Tensor[]; // W⁰ per memory-MLP layer, (H, d_in, d_out)
  normScale: Tensor; // (H, dh)
  wg: Tensor; // (d, C)
  wo: Tensor; // (C, d)
}

/** Streaming state of one memory layer: the memory (leading axes B, H) and the conv tails. */
export interface MemoryLayerState {
  readonly memory: MemoryState;
  /** The last K−1 pre-convolution rows of q̃, k̃, ṽ, (B, K−1, C); null without convolution. */
  readonly convTails: { q: Tensor; k: Tensor; v: Tensor } | null;
}

/** Initial parameters; `rng` decides every draw. */
export function initMemoryLayer(
  config: MemoryLayerConfig,
  rng: Rng,
  dtype: FloatDType = 'float32',
): MemoryLayerParams {
  const { dModel: d, heads: H, headDim: dh, convKernel: K } = config;
  const C = H * dh;
  const normal = (shape: number[], std: number) => rng.normal(shape, { std, dtype });
  const conv = () =>
    K > 0 ? rng.uniform([K, C], { low: -1 / Math.sqrt(K), high: 1 / Math.sqrt(K), dtype }) : null;
  const hidden = config.depth === 1 ? dh : config.expansion * dh;
  const dims = [dh, ...Array.from({ length: config.depth - 1 }, () => hidden), dh];
  return {
    wq: normal([d, C], 1 / Math.sqrt(d)),
    wk: normal([d, C], 1 / Math.sqrt(d)),
    wv: normal([d, C], 1 / Math.sqrt(d)),
    convQ: conv(),
    convK: conv(),
    convV: conv(),
    wAlpha: config.forgetting ? normal([d, H], 0.02) : null,
    bAlpha: config.forgetting ? full([H], config.gateBias.alpha, { dtype }) : null,
    wEta: config.momentum ? normal([d, H], 0.02) : null,
    bEta: config.momentum ? full([H], config.gateBias.eta, { dtype }) : null,
    wTheta: normal([d, H], 0.02),
    bTheta: full([H], config.gateBias.theta, { dtype }),
    memory: dims.slice(0, -1).map((din, l) => normal([H, din, dims[l + 1]!], 1 / Math.sqrt(din))),
    normScale: full([H, dh], 1, { dtype }),
    wg: normal([d, C], 1 / Math.sqrt(d)),
    wo: normal([C, d], 1 / Math.sqrt(C)),
  };
}

/**
 * Causal depthwise convolution c_t = Σ_{i<K} w_i ⊙ z_{t−i} (SPEC §2.2), continuing from `tail`
 * (the previous call's last K−1 rows, zeros at the start of a stream).
 * z (B, T, C), taps (K, C), tail (B, K−1, C) → out (B, T, C) and the new tail.
 */
export function causalConv(z: Tensor, taps: Tensor, tail: Tensor): { out: Tensor; tail: Tensor } {
  const K = taps.shape[0]!;
  const T = z.shape[1]!;
  const extended = K > 1 ? concat([tail, z], 1) : z; // (B, K−1+T, C)
  let out: Tensor | null = null;
  for (let i = 0; i < K; i++) {
    const tap = reshape(slice(taps, [i, 0], [1, -1]), [taps.shape[1]!]); // (C)
    const shifted = slice(extended, [0, K - 1 - i, 0], [-1, T, -1]); // z_{t−i}
    const term = mul(shifted, tap);
    out = out ? add(out, term) : term;
  }
  return { out: out!, tail: convTail(z, tail, K) };
}

/** The last K−1 rows of [tail; z] (B, K−1, C): the tail the next call continues from. */
function convTail(z: Tensor, tail: Tensor, K: number): Tensor {
  if (K <= 1) return tail;
  const T = z.shape[1]!;
  if (T >= K - 1) return slice(z, [0, T - (K - 1), 0], [-1, K - 1, -1]);
  const extended = concat([tail, z], 1); // (B, K−1+T, C)
  return slice(extended, [0, T, 0], [-1, K - 1, -1]);
}

/** ε of the L2 normalisation of q, k (and v) per head (SPEC §2.3). */
const L2_EPS = 1e-6;

/**
 * Steps 2–3 for one of q, k, v: z (B, T, C) → (B, H, T, dh) after the causal conv continuing
 * `tail` (none when taps or tail is null), SiLU, heads split, and the per-head L2 norm when
 * `normalize`; with the new tail. One fused kernel where the backend has it (engine/ops/blocks.ts
 * `fusedConvSiluNorm`), else these ops composed — the float64 reference path.
 */
function convActivate(
  z: Tensor,
  taps: Tensor | null,
  tail: Tensor | null,
  H: number,
  normalize: boolean,
): { out: Tensor; tail: Tensor | null } {
  const conv = taps && tail ? { taps, tail } : null;
  const fused = fusedConvSiluNorm(z, conv?.taps ?? null, conv?.tail ?? null, H, normalize, L2_EPS);
  if (fused) return { out: fused, tail: conv ? convTail(z, conv.tail, conv.taps.shape[0]!) : tail };
  const { out: a, tail: next } = conv ? causalConv(z, conv.taps, conv.tail) : { out: z, tail };
  const s = splitHeads(silu(a), H); // (B, H, T, dh)
  return { out: normalize ? l2Normalize(s, -1, L2_EPS) : s, tail: next };
}

/** A fresh stream's state for a batch of B (memory = the learned W⁰, zero momentum and tails). */
export function initialMemoryLayerState(
  params: MemoryLayerParams,
  config: MemoryLayerConfig,
  batch: number,
): MemoryLayerState {
  const C = config.heads * config.headDim;
  const K = config.convKernel;
  const dtype = params.wq.dtype as FloatDType;
  const backend = params.wq.backend.name; // the parameters' backend, whatever the default
  const weights = params.memory.map((w) => expandDims(w, 0)); // (1, H, d_in, d_out): broadcasts over B
  const tails =
    K > 0
      ? {
          q: zeros([batch, K - 1, C], { dtype, backend }),
          k: zeros([batch, K - 1, C], { dtype, backend }),
          v: zeros([batch, K - 1, C], { dtype, backend }),
        }
      : null;
  return {
    memory: {
      weights,
      momentum: weights.map((w) => zerosLike(w)),
      chunkStartWeights: weights,
      position: 0,
      chunkSize: config.chunkSize,
    },
    convTails: tails,
  };
}

/** (B, T, H·dh) → (B, H, T, dh). */
function splitHeads(x: Tensor, H: number): Tensor {
  const [B, T] = [x.shape[0]!, x.shape[1]!];
  return transpose(reshape(x, [B, T, H, -1]), [0, 2, 1, 3]);
}

/** (B, H, T, dh) → (B, T, H·dh). */
function mergeHeads(x: Tensor): Tensor {
  const [B, H, T, dh] = x.shape as [number, number, number, number];
  return reshape(transpose(x, [0, 2, 1, 3]), [B, T, H * dh]);
}

/** A gate per token and head: cap · σ(x w + b), (B, H, T). */
function gate(x: Tensor, w: Tensor, b: Tensor, cap: number): Tensor {
  const z = matmul(x, w); // (B, T, H)
  const fused = fusedGate(z, b, cap); // one kernel where the backend has it
  if (fused) return fused;
  const g = sigmoid(add(z, b));
  return transpose(cap === 1 ? g : mul(g, cap), [0, 2, 1]);
}

/** What the memory layer writes and reads with: per-head q, k, v (B, H, T, dh), gates (B, H, T). */
export interface MemoryLayerWrites
  extends Pick<MemoryScanInputs, 'q' | 'k' | 'v' | 'alpha' | 'eta' | 'theta'> {
  /** The conv tails after x (null without convolution). */
  tails: MemoryLayerState['convTails'];
}

/**
 * Steps 1–4 of the memory layer on x (B, T, d) after `state`: the queries, keys, values and gates
 * the memory is written and read with — what `memoryLayer` feeds the scan, and what an inspection
 * of the memory (surprise, recall error, gates per token) needs.
 *
 * @example
 * const { k, v, theta } = memoryLayerWrites(params, config, x, initialMemoryLayerState(params, config, 1));
 */
export function memoryLayerWrites(
  params: MemoryLayerParams,
  config: MemoryLayerConfig,
  x: Tensor,
  state: MemoryLayerState,
): MemoryLayerWrites {
  const [B, T] = [x.shape[0]!, x.shape[1]!];
  const H = config.heads;

  // 1–3. projections (no bias), causal depthwise conv, SiLU, L2-normalised q and k per head.
  const prev = state.convTails;
  const conv = prev && params.convQ && params.convK && params.convV;
  const cq = convActivate(matmul(x, params.wq), conv ? params.convQ : null, prev?.q ?? null, H, true);
  const ck = convActivate(matmul(x, params.wk), conv ? params.convK : null, prev?.k ?? null, H, true);
  // v normalised too by default: a safeguard (see the config)
  const cv = convActivate(
    matmul(x, params.wv),
    conv ? params.convV : null,
    prev?.v ?? null,
    H,
    config.normalizeValues,
  );
  const [q, k, v] = [cq.out, ck.out, cv.out]; // (B, H, T, dh)
  const tails = conv ? { q: cq.tail!, k: ck.tail!, v: cv.tail! } : prev;

  // 4. data-dependent gates (B, H, T).
  const dtype = x.dtype as FloatDType;
  const alpha =
    config.forgetting && params.wAlpha && params.bAlpha
      ? gate(x, params.wAlpha, params.bAlpha, 1)
      : zeros([B, H, T], { dtype, backend: x.backend.name });
  const eta =
    config.momentum && params.wEta && params.bEta
      ? gate(x, params.wEta, params.bEta, config.etaMax)
      : zeros([B, H, T], { dtype, backend: x.backend.name });
  const theta = gate(x, params.wTheta, params.bTheta, config.thetaMax);
  return { q, k, v, alpha, eta, theta, tails };
}

/**
 * Runs the memory layer over x (B, T, d), continuing `state` (a fresh stream when omitted).
 * Returns the output (B, T, d) and the state after the last token.
 *
 * @example
 * const config = defaultMemoryLayerConfig({ dModel: 64 });
 * const params = initMemoryLayer(config, new Rng(0));
 * const { y, state } = memoryLayer(params, config, x);          // x: (B, T, 64)
 * const next = memoryLayer(params, config, x2, state);           // same as one call on [x; x2]
 */
export function memoryLayer(
  params: MemoryLayerParams,
  config: MemoryLayerConfig,
  x: Tensor,
  state?: MemoryLayerState,
): { y: Tensor; state: MemoryLayerState } {
  if (x.rank !== 3 || x.shape[2] !== config.dModel) {
    throw new RangeError(`memoryLayer: input must be (B, T, ${config.dModel}), got ${formatShape(x.shape)}`);
  }
  const current = state ?? initialMemoryLayerState(params, config, x.shape[0]!);
  const { q, k, v, alpha, eta, theta, tails } = memoryLayerWrites(params, config, x, current);

  // 5. one memory per head (eq. 12–16).
  const { y: retrieved, state: memory } = memoryScan(
    { q, k, v, alpha, eta, theta, ...current.memory },
    { chunkSize: config.chunkSize, activation: config.activation, residual: config.residual },
  );

  return { y: memoryOutput(params, matmul(x, params.wg), retrieved), state: { memory, convTails: tails } };
}

/** Step 6: o = (RMSNorm_h(y) ⊙ SiLU(X W_G)) W_O, the norm per head with a learned scale; xg = X W_G. */
function memoryOutput(params: MemoryLayerParams, xg: Tensor, retrieved: Tensor): Tensor {
  const normed = rmsNorm(retrieved, expandDims(params.normScale, 1)); // (B, H, T, dh) · (H, 1, dh)
  const gated = swigluGate(xg, mergeHeads(normed)); // SiLU(X W_G) ⊙ …, (B, T, C)
  return matmul(gated, params.wo); // (B, T, d)
}

/** What a read takes from its input x (B, T, d): the queries (B, H, T, dh) and X W_G (B, T, C). */
export interface MemoryReadInputs {
  q: Tensor;
  xg: Tensor;
}

/**
 * The part of `memoryRead` that does not depend on the memory, for all of x (B, T, d) at once:
 * queries through the layer's projection, conv (continuing `queryTail` (B, K−1, C); null without
 * conv), SiLU and L2 norm, and the output gate's X W_G. Row by row, so a piece of the result equals
 * the result for that piece of x (the conv continuing the tail before it): MAC computes a whole call's
 * reads here and splits them by segment.
 */
export function memoryReadInputs(
  params: MemoryLayerParams,
  config: MemoryLayerConfig,
  x: Tensor,
  queryTail: Tensor | null,
): { inputs: MemoryReadInputs; queryTail: Tensor | null } {
  if (x.rank !== 3 || x.shape[2] !== config.dModel) {
    throw new RangeError(`memoryRead: input must be (B, T, ${config.dModel}), got ${formatShape(x.shape)}`);
  }
  const { out: q, tail } = convActivate(matmul(x, params.wq), params.convQ, queryTail, config.heads, true); // (B, H, T, dh)
  return { inputs: { q, xg: matmul(x, params.wg) }, queryTail: tail };
}

/**
 * Retrieval with fixed `weights` (…, H, d_in, d_out) per memory-MLP layer, broadcasting over B, from
 * `memoryReadInputs`: M_W(q), then the output norm, gate and projection of step 6. Returns (B, T, d).
 */
export function memoryReadWith(
  params: MemoryLayerParams,
  config: MemoryLayerConfig,
  inputs: MemoryReadInputs,
  weights: readonly Tensor[],
): Tensor {
  const retrieved = memoryForward(inputs.q, weights, {
    activation: config.activation,
    residual: config.residual,
  });
  return memoryOutput(params, inputs.xg, retrieved);
}

/**
 * Retrieval without writing (MAC's h = read(n), SPEC §4): queries from x (B, T, d) through the
 * layer's projection, conv (its tail `queryTail` (B, K−1, C) carried across calls, null without
 * conv), SiLU and L2 norm; M_W(q) with fixed `weights` (…, H, d_in, d_out) per memory-MLP layer,
 * broadcasting over B; then the output norm, gate and projection of step 6. Returns (B, T, d).
 *
 * @example
 * const { y: h, queryTail } = memoryRead(params, config, n, state.memory.weights, tail);
 */
export function memoryRead(
  params: MemoryLayerParams,
  config: MemoryLayerConfig,
  x: Tensor,
  weights: readonly Tensor[],
  queryTail: Tensor | null,
): { y: Tensor; queryTail: Tensor | null } {
  const read = memoryReadInputs(params, config, x, queryTail);
  return { y: memoryReadWith(params, config, read.inputs, weights), queryTail: read.queryTail };
}

/**
 * The state of a stream whose first `rows.shape[0]` inputs were `rows` (N_p, d): SPEC §3's
 * persistent memory written into the memory layer "as if they were the first N_p tokens", their
 * outputs discarded. Differentiable in `rows` and the layer's parameters. The memory tensors keep a
 * leading axis of 1 (they broadcast over the batch); the conv tails are broadcast to `batch`.
 */
export function primedMemoryLayerState(
  params: MemoryLayerParams,
  config: MemoryLayerConfig,
  rows: Tensor,
  batch: number,
): MemoryLayerState {
  const fresh = initialMemoryLayerState(params, config, 1);
  if (rows.shape[0] === 0) return initialMemoryLayerState(params, config, batch);
  const { state } = memoryLayer(params, config, expandDims(rows, 0), fresh);
  const tails = state.convTails;
  const widen = (t: Tensor) => broadcastTo(t, [batch, t.shape[1]!, t.shape[2]!]);
  return {
    memory: state.memory,
    convTails: tails ? { q: widen(tails.q), k: widen(tails.k), v: widen(tails.v) } : null,
  };
}
