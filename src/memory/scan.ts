/**
 * memoryScan — the neural long-term memory core of SPEC §1 (paper eq. 12–16), chunk-parallel.
 *
 * Axis legend: … leading batch/head axes, T tokens, n tokens of one chunk piece, d = d_h,
 * h = hidden width of the memory MLP. Derivation: ./chunk-parallel.md.
 *
 * The recurrence, token by token (see scan-reference.ts), with c(t) the chunk-start index:
 *   u_t = ∇_W ℓ(W^{c(t)}; k_t, v_t)          (eq. 16: gradient at the chunk-start weights)
 *   S^t = η_t S^{t−1} − θ_t u_t               (eq. 13–14: momentum / surprise)
 *   W^t = (1 − α_t) W^{t−1} + S^t             (eq. 13: forgetting)
 *   y_t = M_{W^t}(q_t)                        (eq. 15: retrieval after the write)
 * Within a chunk every u_s is an outer product x_s ᵀ δ_s per layer, so
 *   W^t = β_t W + γ_t S − Σ_{s≤t} C[t,s] θ_s x_sᵀ δ_s
 * and retrieval is attention-like: q_t W^t = β_t q_t W + γ_t q_t S − Σ_s C[t,s] θ_s (q_t·x_s) δ_s.
 */
import {
  type BackendBuffer,
  type FusedMemoryScan,
  type MemoryScanBuffers,
  type MemoryScanParams,
  memoryScanOutputShapes,
} from '../engine/backend.js';
import { customOp } from '../engine/custom.js';
import {
  activation,
  add,
  concat,
  cumprod,
  expandDims,
  linearScan,
  matmul,
  mul,
  reshape,
  sliceAxis,
  sub,
  type Tensor,
  tensor,
  zerosLike,
} from '../engine/index.js';
import { formatShape, sizeOf } from '../engine/shape.js';
import { wrapBuffer } from '../engine/tensor.js';
import { type MemoryActivation, memoryGradientFactors } from './memory-mlp.js';

/** Everything needed to continue a stream: a plain immutable record. */
export interface MemoryState {
  /** W^t per layer, (…, d_in, d_out). */
  readonly weights: readonly Tensor[];
  /** S^t per layer, like weights. */
  readonly momentum: readonly Tensor[];
  /** W^{c(t+1)}: the weights the current chunk's gradients are taken at. */
  readonly chunkStartWeights: readonly Tensor[];
  /** Tokens consumed so far; position mod chunkSize is the offset inside the current chunk. */
  readonly position: number;
  /** The chunk size this state was built with (chunks are absolute positions in the stream). */
  readonly chunkSize: number;
}

export interface MemoryScanInputs {
  /** Queries (…, T, d). */
  q: Tensor;
  /** Keys (…, T, d). */
  k: Tensor;
  /** Values (…, T, d). */
  v: Tensor;
  /** Forgetting gate α_t ∈ [0, 1), (…, T). */
  alpha: Tensor;
  /** Momentum decay η_t ∈ [0, 1), (…, T). */
  eta: Tensor;
  /** Inner learning rate θ_t > 0, (…, T). */
  theta: Tensor;
  /** W⁰ (or the carried W^t): one (…, d_in, d_out) matrix per layer; W₁ is d × h. */
  weights: readonly Tensor[];
  /** S⁰ (or the carried S^t); zeros when omitted. */
  momentum?: readonly Tensor[];
  /** When continuing mid-chunk: the current chunk's start weights (from a MemoryState). */
  chunkStartWeights?: readonly Tensor[];
  /** When continuing: tokens already consumed (from a MemoryState). */
  position?: number;
  /** From a MemoryState; checked against options.chunkSize. */
  chunkSize?: number;
}

export interface MemoryScanOptions {
  /** b ≥ 1: tokens per chunk; gradients inside a chunk use the chunk-start weights. */
  chunkSize: number;
  /** φ between the memory MLP's layers (default 'silu'). */
  activation?: MemoryActivation;
  /** M(z) = z + MLP(z) (default false). */
  residual?: boolean;
  /**
   * Use the backend's fused kernel where it has one (`Backend.fusedMemoryScan`; default true).
   * false always composes engine ops (differentiable twice).
   */
  fused?: boolean;
}

/**
 * Runs the memory over a sequence (chunk-parallel) and returns the retrieved values and the
 * state after the last token. Differentiable with respect to every tensor input.
 *
 * @example
 * const { y, state } = memoryScan({ q, k, v, alpha, eta, theta, weights: [W1, W2] }, { chunkSize: 16 });
 * // continue the stream later, in any split:
 * const next = memoryScan({ q: q2, k: k2, v: v2, alpha: a2, eta: e2, theta: t2, ...state }, { chunkSize: 16 });
 */
export function memoryScan(
  inputs: MemoryScanInputs,
  options: MemoryScanOptions,
): { y: Tensor; state: MemoryState } {
  const prepared = prepareScan(inputs, options);
  const fused = options.fused === false ? null : fusedScan(inputs, prepared);
  if (fused) return fused; // one tape node with a hand-written backward (no second derivative)
  const { T, b, model } = prepared;
  let { weights, chunkStart, position } = prepared;
  let momentum = inputs.momentum ?? weights.map((w) => zerosLike(w));
  const outputs: Tensor[] = [];
  let start = 0;
  while (start < T) {
    const offset = position % b;
    const n = Math.min(b - offset, T - start);
    const piece = sliceTokens(inputs, start, n);
    const grads = offset === 0 ? weights : chunkStart;
    const result = scanChunkPiece(piece, weights, momentum, grads, model);
    outputs.push(result.y);
    weights = result.weights;
    momentum = result.momentum;
    position += n;
    start += n;
    chunkStart = position % b === 0 ? weights : grads;
  }
  const y = outputs.length === 1 ? outputs[0]! : concat(outputs, inputs.q.rank - 2);
  return {
    y: T === 0 ? inputs.q : y,
    state: { weights, momentum, chunkStartWeights: chunkStart, position, chunkSize: b },
  };
}

interface Prepared {
  T: number;
  b: number;
  model: { activation: MemoryActivation; residual: boolean };
  weights: readonly Tensor[];
  chunkStart: readonly Tensor[];
  position: number;
}

function prepareScan(inputs: MemoryScanInputs, options: MemoryScanOptions): Prepared {
  const { q, k, v, alpha, eta, theta, weights } = inputs;
  const b = options.chunkSize;
  if (!Number.isInteger(b) || b < 1)
    throw new RangeError(`memoryScan: chunkSize must be an integer ≥ 1, got ${b}`);
  if (inputs.chunkSize !== undefined && inputs.chunkSize !== b) {
    throw new RangeError(
      `memoryScan: the state was built with chunkSize ${inputs.chunkSize} but options.chunkSize is ${b}`,
    );
  }
  const activationName = options.activation ?? 'silu';
  if (activationName !== 'silu' && activationName !== 'gelu') {
    throw new RangeError(`memoryScan: activation must be 'silu' or 'gelu', got '${activationName}'`);
  }
  if (q.rank < 2) throw new RangeError(`memoryScan: q must be (…, T, d_h), got ${formatShape(q.shape)}`);
  for (const [name, t] of [
    ['k', k],
    ['v', v],
  ] as const) {
    if (formatShape(t.shape) !== formatShape(q.shape)) {
      throw new RangeError(
        `memoryScan: ${name} ${formatShape(t.shape)} must have q's shape ${formatShape(q.shape)}`,
      );
    }
  }
  const gateShape = formatShape(q.shape.slice(0, -1));
  for (const [name, t] of [
    ['alpha', alpha],
    ['eta', eta],
    ['theta', theta],
  ] as const) {
    if (formatShape(t.shape) !== gateShape) {
      throw new RangeError(
        `memoryScan: ${name} ${formatShape(t.shape)} must be ${gateShape} (q without its last axis)`,
      );
    }
  }
  for (const t of [k, v, alpha, eta, theta, ...weights]) {
    if (t.dtype !== q.dtype)
      throw new TypeError(`memoryScan: all inputs must share q's dtype ${q.dtype}, found ${t.dtype}`);
  }
  if (weights.length < 1) throw new RangeError('memoryScan: weights must hold at least one matrix');
  const d = q.shape[q.rank - 1]!;
  let width = d;
  weights.forEach((w, l) => {
    if (w.rank < 2 || w.shape[w.rank - 2] !== width) {
      throw new RangeError(
        `memoryScan: weights[${l}] ${formatShape(w.shape)} must be (…, ${width}, d_out) to follow the previous layer`,
      );
    }
    width = w.shape[w.rank - 1]!;
  });
  if (width !== d)
    throw new RangeError(`memoryScan: the last weight must map to d_h = ${d}, it maps to ${width}`);
  if (inputs.momentum) checkLike('momentum', inputs.momentum, weights);
  const position = inputs.position ?? 0;
  if (!Number.isInteger(position) || position < 0) {
    throw new RangeError(`memoryScan: position must be an integer ≥ 0, got ${position}`);
  }
  let chunkStart = inputs.chunkStartWeights ?? weights;
  if (position % b === 0) chunkStart = weights;
  else if (!inputs.chunkStartWeights) {
    throw new RangeError(
      'memoryScan: continuing mid-chunk (position % chunkSize ≠ 0) needs chunkStartWeights',
    );
  }
  checkLike('chunkStartWeights', chunkStart, weights);
  return {
    T: q.shape[q.rank - 2]!,
    b,
    model: { activation: activationName, residual: options.residual ?? false },
    weights,
    chunkStart,
    position,
  };
}

function checkLike(name: string, list: readonly Tensor[], weights: readonly Tensor[]): void {
  if (list.length !== weights.length) {
    throw new RangeError(`memoryScan: ${name} has ${list.length} matrices, weights has ${weights.length}`);
  }
  list.forEach((m, l) => {
    const w = weights[l]!;
    if (formatShape(m.shape.slice(-2)) !== formatShape(w.shape.slice(-2)) || m.dtype !== w.dtype) {
      throw new RangeError(
        `memoryScan: ${name}[${l}] ${m.dtype}${formatShape(m.shape)} does not match weights[${l}] ${w.dtype}${formatShape(w.shape)}`,
      );
    }
  });
}

/**
 * @internal whether memoryScan runs these arguments on the backend's fused kernels (tests ask).
 * @example assert.ok(usesFusedScan(inputs, { chunkSize: 16 }));
 */
export function usesFusedScan(inputs: MemoryScanInputs, options: MemoryScanOptions): boolean {
  return options.fused !== false && fusedCall(inputs, prepareScan(inputs, options)) !== null;
}

/** The fused kernels and the parameters of this call, or null where there are none or they decline. */
function fusedCall(
  inputs: MemoryScanInputs,
  prepared: Prepared,
): { kernels: FusedMemoryScan; params: MemoryScanParams; all: Tensor[] } | null {
  const { q, alpha, eta, theta, weights } = inputs;
  const kernels = q.backend.fusedMemoryScan;
  if (!kernels) return null;
  const { T, b, position } = prepared;
  const momentum = inputs.momentum ?? null;
  const chunkStart = position % b !== 0 ? prepared.chunkStart : null;
  const all = [
    q,
    inputs.k,
    inputs.v,
    alpha,
    eta,
    theta,
    ...weights,
    ...(momentum ?? []),
    ...(chunkStart ?? []),
  ];
  if (all.some((t) => t.backend !== q.backend)) return null;
  const leads = (list: readonly Tensor[]) => list.map((t) => t.shape.slice(0, -2));
  const params: MemoryScanParams = {
    lead: q.shape.slice(0, -2),
    tokens: T,
    widths: [q.shape[q.rank - 1]!, ...weights.map((w) => w.shape[w.rank - 1]!)],
    activation: prepared.model.activation,
    residual: prepared.model.residual,
    chunkSize: b,
    position,
    weightLeads: leads(weights),
    momentumLeads: momentum && leads(momentum),
    chunkStartLeads: chunkStart && leads(chunkStart),
  };
  if (T === 0 || params.widths.includes(0) || !kernels.supports(params, q.dtype)) return null;
  return { kernels, params, all };
}

/**
 * The backend's fused kernels (`Backend.fusedMemoryScan`) as one tape node with their
 * hand-written backward, or null where the backend has none or declines the call (then
 * memoryScan composes ops). The backend sees buffers and plain numbers; the tensors, the tape
 * and the state record are made here.
 */
function fusedScan(inputs: MemoryScanInputs, prepared: Prepared): { y: Tensor; state: MemoryState } | null {
  const call = fusedCall(inputs, prepared);
  if (!call) return null;
  const { kernels, params, all } = call;
  const { q, k, v, alpha, eta, theta, weights } = inputs;
  const { T, b, position } = prepared;
  const momentum = inputs.momentum ?? null;
  const chunkStart = params.chunkStartLeads ? prepared.chunkStart : null;
  const backend = q.backend;
  const dtype = q.dtype;

  const buffers = (): MemoryScanBuffers => ({
    q: q.buffer,
    k: k.buffer,
    v: v.buffer,
    alpha: alpha.buffer,
    eta: eta.buffer,
    theta: theta.buffer,
    weights: weights.map((w) => w.buffer),
    momentum: momentum?.map((s) => s.buffer) ?? null,
    chunkStart: chunkStart?.map((c) => c.buffer) ?? null,
  });
  const outputShapes = memoryScanOutputShapes(params);
  const total = outputShapes.reduce((n, s) => n + sizeOf(s), 0);
  // The kernels' intermediates for the backward, as an opaque tensor (its bytes count in
  // memory(); its values are never read): the tape keeps it, and one backward may use it.
  let saved: Tensor | null = null;
  const outputs = customOp({
    name: 'memoryScan (fused)',
    inputs: all,
    outputShapes,
    forward: (recording) => {
      const result = kernels.forward(buffers(), params, dtype, recording);
      const flat = wrapBuffer(backend, result.packed, [total], dtype);
      if (result.saved === null) return flat;
      saved = wrapBuffer(backend, result.saved, [0], dtype);
      return { flat, saved: [saved] };
    },
    backward: (cotangent) => {
      if (cotangent.backend !== backend) {
        throw new Error(
          `memoryScan (fused): the cotangent is on backend '${cotangent.backend.name}', the scan on '${backend.name}'`,
        );
      }
      const use = saved;
      saved = null; // a second backward (never needed) recomputes
      const g = kernels.backward(buffers(), use?.buffer ?? null, cotangent.buffer, params, dtype);
      const wrap = (buffer: BackendBuffer, t: Tensor) => wrapBuffer(backend, buffer, t.shape, dtype);
      const wrapAll = (list: readonly BackendBuffer[] | null, like: readonly Tensor[] | null) =>
        list && like ? list.map((buffer, l) => wrap(buffer, like[l]!)) : [];
      return [
        wrap(g.q, q),
        wrap(g.k, k),
        wrap(g.v, v),
        wrap(g.alpha, alpha),
        wrap(g.eta, eta),
        wrap(g.theta, theta),
        ...wrapAll(g.weights, weights),
        ...wrapAll(g.momentum, momentum),
        ...wrapAll(g.chunkStart, chunkStart),
      ];
    },
  });
  const depth = weights.length;
  const y = outputs[0]!;
  const finalWeights = outputs.slice(1, 1 + depth);
  const finalMomentum = outputs.slice(1 + depth, 1 + 2 * depth);
  const end = position + T;
  let chunkStartWeights: readonly Tensor[];
  if (end % b === 0) chunkStartWeights = finalWeights;
  else if (outputs.length > 1 + 2 * depth) chunkStartWeights = outputs.slice(1 + 2 * depth);
  else chunkStartWeights = chunkStart ?? weights; // the call never left its first chunk
  return {
    y,
    state: { weights: finalWeights, momentum: finalMomentum, chunkStartWeights, position: end, chunkSize: b },
  };
}

interface Piece {
  q: Tensor; // (…, n, d)
  k: Tensor;
  v: Tensor;
  alpha: Tensor; // (…, n)
  eta: Tensor;
  theta: Tensor;
}

/**
 * Tokens [start, start + n) of every per-token input (q, k, v along the token axis; the gates
 * along theirs); weights and any carried state are passed through unchanged.
 * @example const rest = sliceTokens(inputs, 16, 48); // tokens 16…63
 */
export function sliceTokens(x: MemoryScanInputs, start: number, n: number): MemoryScanInputs {
  const rows = (t: Tensor) => sliceAxis(t, -2, start, n);
  const gates = (t: Tensor) => sliceAxis(t, -1, start, n);
  return {
    ...x,
    q: rows(x.q),
    k: rows(x.k),
    v: rows(x.v),
    alpha: gates(x.alpha),
    eta: gates(x.eta),
    theta: gates(x.theta),
  };
}

/**
 * Lower-triangular products of a gate within a piece: D[t, j] = Π_{i=j+1..t} g_i for j ≤ t, else 0.
 * Built by the recurrence D[t, ·] = g_t D[t−1, ·] + e_t (no logarithms, no division), so gates of
 * exactly 0 or 1 are exact; every entry is ≤ 1 for gates in [0, 1].
 */
export function gateProducts(g: Tensor): Tensor {
  const n = g.shape[g.rank - 1]!;
  const identity = new Float64Array(n * n);
  for (let i = 0; i < n; i++) identity[i * n + i] = 1;
  const eye = tensor(g.dtype === 'float64' ? identity : Float32Array.from(identity), [n, n], {
    backend: g.backend.name,
  });
  return linearScan(expandDims(g, -1), eye, -2); // (…, n, n)
}

/**
 * One piece of a chunk (n tokens that share the gradient weights `grads`), starting from the
 * current weights W and momentum S. Returns y (…, n, d) and W, S after the piece.
 */
function scanChunkPiece(
  piece: Piece,
  weights: readonly Tensor[],
  momentum: readonly Tensor[],
  grads: readonly Tensor[],
  model: { activation: MemoryActivation; residual: boolean },
): { y: Tensor; weights: Tensor[]; momentum: Tensor[] } {
  const n = piece.q.shape[piece.q.rank - 2]!;
  const depth = weights.length;
  const keep = sub(1, piece.alpha); // 1 − α_t, (…, n)

  // Gate products (…, n, n): A[t,j] = Π_{i=j+1..t}(1−α_i), E[j,s] = Π_{i=s+1..j} η_i.
  const A = gateProducts(keep);
  const E = gateProducts(piece.eta);
  const C = matmul(A, E); // C[t,s] = Σ_j A[t,j] E[j,s]: how token s's gradient reaches W^t
  const beta = cumprod(keep, -1); // β_t = Π_{i≤t}(1−α_i), (…, n)
  const m = cumprod(piece.eta, -1); // m_t = Π_{i≤t} η_i
  const gamma = reshape(matmul(A, expandDims(m, -1)), m.shape); // γ_t = Σ_j A[t,j] m_j

  // Per-token gradients at the chunk-start weights, factored: u_l[s] = x_l[s]ᵀ δ_l[s] (eq. 12, 16).
  const { inputs: xs, deltas } = memoryGradientFactors(piece.k, piece.v, grads, model);
  const thetaRow = expandDims(piece.theta, -2); // (…, 1, n): scales column s
  const coefficient = mul(C, thetaRow); // C[t,s] θ_s

  // Retrieval y_t = M_{W^t}(q_t), layer by layer, without materialising any W^t (eq. 15).
  const betaCol = expandDims(beta, -1);
  const gammaCol = expandDims(gamma, -1);
  let r = piece.q;
  for (let l = 0; l < depth; l++) {
    const base = add(mul(betaCol, matmul(r, weights[l]!)), mul(gammaCol, matmul(r, momentum[l]!)));
    const scores = mul(coefficient, matmul(r, xs[l]!, { transposeB: true })); // (…, n, n), lower-triangular
    const z = sub(base, matmul(scores, deltas[l]!));
    r = l < depth - 1 ? activation(model.activation, z) : z;
  }
  const y = model.residual ? add(r, piece.q) : r;

  // State after the piece: the last row of the coefficient matrices.
  const lastRow = (M: Tensor): Tensor => reshape(sliceAxis(M, -2, n - 1, 1), [...M.shape.slice(0, -2), n]); // (…, n)
  const lastOf = (g: Tensor): Tensor => expandDims(sliceAxis(g, -1, n - 1, 1), -1); // (…, 1, 1)
  const wCoef = expandDims(mul(lastRow(C), piece.theta), -1); // (…, n, 1): C[n,s] θ_s
  const sCoef = expandDims(mul(lastRow(E), piece.theta), -1); // E[n,s] θ_s
  const betaN = lastOf(beta);
  const gammaN = lastOf(gamma);
  const mN = lastOf(m);
  const newWeights: Tensor[] = [];
  const newMomentum: Tensor[] = [];
  for (let l = 0; l < depth; l++) {
    const x = xs[l]!;
    const delta = deltas[l]!;
    const wUpdate = matmul(x, mul(delta, wCoef), { transposeA: true }); // Σ_s C[n,s] θ_s x_sᵀ δ_s
    const sUpdate = matmul(x, mul(delta, sCoef), { transposeA: true });
    newWeights.push(sub(add(mul(betaN, weights[l]!), mul(gammaN, momentum[l]!)), wUpdate));
    newMomentum.push(sub(mul(mN, momentum[l]!), sUpdate));
  }
  return { y, weights: newWeights, momentum: newMomentum };
}
