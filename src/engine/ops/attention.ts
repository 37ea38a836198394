/**
 * Softmax attention with position-based masking (causal, sliding window, a persistent prefix,
 * KV caches, MAC's [P; h; n]) and rotary position embeddings (SPEC §3–§4).
 *
 * `attention` runs a backend's fused kernel where it has one (`Backend.fusedAttention`: the wasm
 * backend's tiled flash-attention kernels) and otherwise composes differentiable engine ops — the
 * obviously-right path, which materialises the queries × keys scores and is the oracle in tests.
 */
import type { AttentionParams, BackendBuffer } from '../backend.js';
import { customOp } from '../custom.js';
import { isFloat } from '../dtype.js';
import { formatShape } from '../shape.js';
import { noGrad } from '../tape.js';
import { type Tensor, wrapBuffer } from '../tensor.js';
import { tensor } from './create.js';
import { add, div, exp, mul, sub, where } from './elementwise.js';
import { matmul } from './matmul.js';
import { max, sum } from './reduce.js';
import { concat, reshape, slice, transpose } from './shape.js';

export type { AttentionParams, FusedAttention } from '../backend.js';

/** Position ids, one per token: an int array or plain integers. */
export type Positions = Int32Array | readonly number[];

export interface AttentionOptions {
  /** Position of each query (length Tq). Default: Tk − Tq, …, Tk − 1 (the last Tq key positions). */
  queryPositions?: Positions;
  /** Position of each key (length Tk). Default: 0, …, Tk − 1. */
  keyPositions?: Positions;
  /** Sliding window w: a query at position p sees keys at positions p − w + 1 … p. Default Infinity. */
  window?: number;
  /** The first `prefix` keys are visible to every query whatever the positions (persistent memory). */
  prefix?: number;
  /** Multiplies q·k before the softmax. Default 1/√dh. */
  scale?: number;
  /**
   * Use the backend's fused kernel when it has one (default true). False forces the composed
   * path. The fused op is one `customOp` with no second derivative: to differentiate twice
   * (grad of grad through attention) pass `fused: false` or use the reference backend.
   */
  fused?: boolean;
}

/** Positions beyond ±2^30 are rejected, so that position differences stay exact in int32. */
const POSITION_LIMIT = 2 ** 30;

function toPositions(p: Positions | undefined, n: number, fallback: (i: number) => number, what: string) {
  const out = new Int32Array(n);
  if (p === undefined) {
    for (let i = 0; i < n; i++) out[i] = fallback(i);
    return out;
  }
  if (p.length !== n) throw new RangeError(`attention: ${what} has length ${p.length}, expected ${n}`);
  for (let i = 0; i < n; i++) {
    const v = p[i]!;
    if (!Number.isInteger(v) || v <= -POSITION_LIMIT || v >= POSITION_LIMIT) {
      throw new RangeError(`attention: ${what}[${i}] = ${v} is not an integer in (−2^30, 2^30)`);
    }
    out[i] = v;
  }
  return out;
}

/**
 * Whether key j is visible to query i: j < prefix, or 0 ≤ queryPositions[i] − keyPositions[j] < window.
 * Returned row-major (Tq × Tk) as 0/1; used by the composed path and handy in tests.
 */
export function attentionMask(
  queryPositions: Positions,
  keyPositions: Positions,
  window = Number.POSITIVE_INFINITY,
  prefix = 0,
): Uint8Array {
  const tq = queryPositions.length;
  const tk = keyPositions.length;
  const mask = new Uint8Array(tq * tk);
  for (let i = 0; i < tq; i++) {
    const qp = queryPositions[i]!;
    for (let j = 0; j < tk; j++) {
      const d = qp - keyPositions[j]!;
      mask[i * tk + j] = j < prefix || (d >= 0 && d < window) ? 1 : 0;
    }
  }
  return mask;
}

/**
 * Causal softmax attention, masked by positions: out[b,h,i] = Σ_j softmax_j(scale·q_i·k_j) v_j over
 * the keys visible to query i, where key j is visible iff j < prefix, or
 * keyPositions[j] ≤ queryPositions[i] and queryPositions[i] − keyPositions[j] < window.
 *
 * - causal self-attention: the defaults (positions 0 … T−1);
 * - sliding window w: `window: w`;
 * - persistent memory P (N_p rows) as an always-visible prefix: k = [k_P; k], `prefix: N_p`;
 * - a KV cache: keys at earlier positions than the queries (the default query positions assume the
 *   queries are the last Tq keys);
 * - MAC over [P; h; n]: prefix N_p and positions [0…C−1, 0…C−1] for both queries and keys (the
 *   prefix rows' own query positions still apply to what they see besides P).
 *
 * Rows with no visible key output 0 (and pass no gradient). q is (B, H, Tq, dh), k and v are
 * (B, H, Tk, dh); the result is (B, H, Tq, dh). On a backend with fused attention (wasm, float32,
 * dh a multiple of 4) the kernel never materialises Tq × Tk; elsewhere the composed path does.
 *
 * @example
 * const y = attention(q, k, v, { window: 128 }); // causal sliding-window attention
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  for (const [t, name] of [
    [q, 'q'],
    [k, 'k'],
    [v, 'v'],
  ] as const) {
    if (t.rank !== 4) {
      throw new RangeError(`attention: ${name} must be (B, H, T, dh), got ${formatShape(t.shape)}`);
    }
    if (!isFloat(t.dtype) || t.dtype !== q.dtype) {
      throw new TypeError(
        `attention: q, k, v must share one float dtype, got ${q.dtype}, ${k.dtype}, ${v.dtype}`,
      );
    }
    if (t.backend !== q.backend) throw new Error('attention: q, k, v live on different backends');
  }
  const [b, h, tq, dh] = q.shape as [number, number, number, number];
  const tk = k.shape[2]!;
  if (k.shape[0] !== b || k.shape[1] !== h || k.shape[3] !== dh || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new RangeError(
      `attention: shapes do not match: q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)} (need k = v = (B, H, Tk, dh))`,
    );
  }
  if (tq < 1 || tk < 1 || dh < 1) {
    throw new RangeError(`attention: needs Tq, Tk, dh ≥ 1, got ${tq}, ${tk}, ${dh}`);
  }
  const window = options.window ?? Number.POSITIVE_INFINITY;
  if (!(window === Number.POSITIVE_INFINITY || (Number.isInteger(window) && window >= 1))) {
    throw new RangeError(`attention: window must be a positive integer or Infinity, got ${window}`);
  }
  const prefix = options.prefix ?? 0;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > tk) {
    throw new RangeError(`attention: prefix must be an integer in [0, ${tk}], got ${prefix}`);
  }
  const scale = options.scale ?? 1 / Math.sqrt(dh);
  if (!Number.isFinite(scale)) throw new RangeError(`attention: scale must be finite, got ${scale}`);
  const params: AttentionParams = {
    batch: b * h,
    queries: tq,
    keys: tk,
    headDim: dh,
    queryPositions: toPositions(options.queryPositions, tq, (i) => tk - tq + i, 'queryPositions'),
    keyPositions: toPositions(options.keyPositions, tk, (j) => j, 'keyPositions'),
    window,
    prefix,
    scale,
  };
  const fused = q.backend.fusedAttention;
  if (options.fused !== false && fused?.supports(params, q.dtype)) return fusedAttention(q, k, v, params);
  return composedAttention(q, k, v, params);
}

/** The composed path: scores, −Infinity masking via `where`, softmax, @ v. */
function composedAttention(q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): Tensor {
  const { queries: tq, keys: tk } = p;
  const visible = attentionMask(p.queryPositions, p.keyPositions, p.window, p.prefix);
  const maskData = new Float64Array(tq * tk);
  const anyData = new Float64Array(tq);
  for (let i = 0; i < tq; i++) {
    for (let j = 0; j < tk; j++) {
      if (visible[i * tk + j]) {
        maskData[i * tk + j] = 1;
        anyData[i] = 1;
      }
    }
  }
  const opts = { dtype: q.dtype, backend: q.backend.name };
  const mask = tensor(maskData, [tq, tk], opts);
  const rowHasKey = tensor(anyData, [tq, 1], opts);
  const scores = mul(matmul(q, k, { transposeB: true }), p.scale);
  const masked = where(mask, scores, Number.NEGATIVE_INFINITY);
  // The row maximum is a constant shift (softmax is invariant to it); 0 for rows with no visible key.
  const shift = noGrad(() => where(rowHasKey, max(masked, -1, true), 0));
  const e = exp(sub(masked, shift)); // exactly 0 where masked
  const denominator = where(rowHasKey, sum(e, -1, true), 1); // rows with no key: 0 / 1 = 0
  return matmul(div(e, denominator), v);
}

/**
 * The fused path: the backend kernel as one custom op. Its one output is O; the rows' log-sum-exps
 * are kept for the backward beside it (saved), never handed out.
 */
function fusedAttention(q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): Tensor {
  const kernels = q.backend.fusedAttention!;
  const { backend, dtype } = q;
  let out: Tensor | null = null;
  let lse: Tensor | null = null;
  const [y] = customOp({
    name: 'attention',
    inputs: [q, k, v],
    outputShapes: [q.shape],
    forward: () => {
      const [o, l] = kernels.forward(q.buffer, k.buffer, v.buffer, p, dtype);
      out = wrapBuffer(backend, o, [q.size], dtype);
      lse = wrapBuffer(backend, l, [p.batch * p.queries], dtype);
      return { flat: out, saved: [lse] };
    },
    backward: (g) => {
      const grads = kernels.backward(
        q.buffer,
        k.buffer,
        v.buffer,
        out!.buffer,
        lse!.buffer,
        g.buffer,
        p,
        dtype,
      );
      return [
        wrapBuffer(backend, grads[0], q.shape, dtype),
        wrapBuffer(backend, grads[1], k.shape, dtype),
        wrapBuffer(backend, grads[2], v.shape, dtype),
      ];
    },
  });
  return y!;
}

/**
 * RoPE's angles for rows of d features at `positions`: row s holds cos θ_s,i for i < d/2, then
 * sin θ_s,i, with θ_s,i = positions[s] · base^(−2i/d) (the layout of FusedRope's table).
 */
function ropeAngles(positions: Positions, d: number, base: number): Float64Array {
  const half = d / 2;
  const table = new Float64Array(positions.length * d);
  for (let i = 0; i < half; i++) {
    const freq = base ** ((-2 * i) / d);
    for (let s = 0; s < positions.length; s++) {
      const angle = positions[s]! * freq;
      table[s * d + i] = Math.cos(angle);
      table[s * d + half + i] = Math.sin(angle);
    }
  }
  return table;
}

/** Checks rope's arguments for rows of d features at t positions. */
function checkRope(name: string, t: number, d: number, positions: Positions, base: number): void {
  if (d % 2 !== 0 || d === 0) throw new RangeError(`${name}: the last axis must be even, got ${d}`);
  if (positions.length !== t) {
    throw new RangeError(`${name}: ${positions.length} positions for ${t} tokens`);
  }
  if (!(base > 0)) throw new RangeError(`${name}: base must be positive, got ${base}`);
}

/**
 * One tape node of a fused RoPE kernel: `run(v, inverse)` rotates v by the angles (by −θ with
 * `inverse`, the backward, which also maps the output's layout back to x's); out has `shape`.
 */
function rotation(
  name: string,
  x: Tensor,
  angles: Tensor,
  shape: readonly number[],
  run: (v: Tensor, inverse: boolean) => BackendBuffer,
): Tensor {
  const { backend, dtype } = x;
  const [out] = customOp({
    name,
    inputs: [x],
    outputShapes: [shape],
    forward: () => ({ flat: wrapBuffer(backend, run(x, false), [x.size], dtype), saved: [angles] }),
    backward: (g) => [wrapBuffer(backend, run(g, true), x.shape, dtype)],
  });
  return out!;
}

/** rope on the backend's fused kernel; null where it has none. */
function fusedRope(x: Tensor, table: Float64Array, t: number, d: number): Tensor | null {
  const kernels = x.backend.fusedRope;
  if (!kernels?.supports(x.dtype) || x.size === 0) return null;
  const angles = tensor(table, [t, d], { dtype: x.dtype, backend: x.backend.name });
  return rotation('rope', x, angles, x.shape, (v, inverse) =>
    kernels.apply(v.buffer, angles.buffer, x.size / d, t, d, inverse, x.dtype),
  );
}

/**
 * Rotary position embedding on the last axis (size d, even) of x (…, T, d): the halves convention
 * (GPT-NeoX / "rotate half"): feature i and feature i + d/2 form a pair, rotated by the angle
 * positions[t] · base^(−2i/d), i < d/2:
 *   out[i] = x[i] cos θ − x[i + d/2] sin θ,   out[i + d/2] = x[i] sin θ + x[i + d/2] cos θ.
 * A rotation, so it preserves norms, and ⟨rope(q, m), rope(k, n)⟩ depends on m − n only.
 * Differentiable (the backward rotates by −θ); composed of engine ops, so it runs on every backend.
 *
 * @example
 * const qr = rope(q, positions); // q (B, H, T, dh), positions length T
 */
export function rope(x: Tensor, positions: Positions, base = 10000): Tensor {
  if (!isFloat(x.dtype)) throw new TypeError(`rope: expected a float tensor, got ${x.dtype}`);
  if (x.rank < 2) throw new RangeError(`rope: needs (…, T, d), got ${formatShape(x.shape)}`);
  const t = x.shape[x.rank - 2]!;
  const d = x.shape[x.rank - 1]!;
  checkRope('rope', t, d, positions, base);
  const table = ropeAngles(positions, d, base);
  const fused = fusedRope(x, table, t, d);
  if (fused) return fused;
  const half = d / 2;
  const opts = { dtype: x.dtype, backend: x.backend.name };
  const angles = tensor(table, [t, d], opts);
  const cos = slice(angles, [0, 0], [t, half]);
  const sin = slice(angles, [0, half], [t, half]);
  const begin = x.shape.map(() => 0);
  const size = x.shape.map((n, i) => (i === x.rank - 1 ? half : n));
  const x1 = slice(x, begin, size);
  const x2 = slice(
    x,
    begin.map((z, i) => (i === x.rank - 1 ? half : z)),
    size,
  );
  return concat([sub(mul(x1, cos), mul(x2, sin)), add(mul(x1, sin), mul(x2, cos))], -1);
}

/**
 * rope of the heads of x (B, T, H·dh): the same as rope(transpose(reshape(x, [B, T, H, dh]),
 * [0, 2, 1, 3]), positions, base), (B, H, T, dh), bit for bit, in one pass where the backend has
 * the kernel (FusedRope.applyHeads): the heads are split on the way in, and merged back on the way
 * out of the backward. Attention's queries and keys (models/layers.ts).
 *
 * @example
 * const q = ropeHeads(matmul(x, wq), heads, positions); // (B, H, T, dh)
 */
export function ropeHeads(x: Tensor, heads: number, positions: Positions, base = 10000): Tensor {
  if (!isFloat(x.dtype)) throw new TypeError(`ropeHeads: expected a float tensor, got ${x.dtype}`);
  if (x.rank !== 3) throw new RangeError(`ropeHeads: needs (B, T, H·dh), got ${formatShape(x.shape)}`);
  const [b, t, width] = x.shape as [number, number, number];
  if (!Number.isInteger(heads) || heads < 1 || width % heads !== 0) {
    throw new RangeError(`ropeHeads: ${width} features do not split into ${heads} heads`);
  }
  const d = width / heads;
  checkRope('ropeHeads', t, d, positions, base);
  const kernels = x.backend.fusedRope;
  if (!kernels?.applyHeads || !kernels.supports(x.dtype) || x.size === 0) {
    return rope(transpose(reshape(x, [b, t, heads, d]), [0, 2, 1, 3]), positions, base);
  }
  const applyHeads = kernels.applyHeads.bind(kernels);
  const angles = tensor(ropeAngles(positions, d, base), [t, d], { dtype: x.dtype, backend: x.backend.name });
  return rotation('ropeHeads', x, angles, [b, heads, t, d], (v, inverse) =>
    applyHeads(v.buffer, angles.buffer, b, t, heads, d, inverse, x.dtype),
  );
}
