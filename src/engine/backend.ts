import type { DType, TypedArray } from './dtype.js';
import type { Shape } from './shape.js';

/**
 * A backend owns buffers and runs kernels on them. Every kernel reads dense row-major inputs and
 * returns a NEW buffer; nothing is updated in place, so the autodiff tape may keep any input.
 * Shapes travel beside the buffers (a buffer is just memory). The engine (ops/*) validates shapes
 * and dtypes before calling a kernel, so a backend may assume its arguments are consistent.
 *
 * To plug in a backend: implement this interface and call `registerBackend(backend)`; the ops,
 * autodiff, optimisers and models then run on it unchanged, and the test suite can be pointed at
 * it (see test/helpers/backends.ts).
 */
export interface Backend extends FusedBlocks {
  readonly name: string;
  /** Float dtypes this backend computes in; `reference` supports both. */
  readonly floatDTypes: readonly DType[];

  // ---- buffers ------------------------------------------------------------------------------
  /** Copies `data` into a new buffer. */
  upload(data: TypedArray, dtype: DType): BackendBuffer;
  /** A buffer of `size` elements all equal to `value`. */
  fill(size: number, value: number, dtype: DType): BackendBuffer;
  /** Asynchronous read-back; every backend supports it (GPU backends only this one). */
  read(buffer: BackendBuffer, dtype: DType): Promise<TypedArray>;
  /** Synchronous read-back where the backend allows it (CPU backends). */
  readSync?(buffer: BackendBuffer, dtype: DType): TypedArray;
  /** Frees the buffer. The engine calls this exactly once, when the last tensor using it is disposed. */
  release(buffer: BackendBuffer): void;
  /** Bytes held by a buffer (for memory accounting). */
  byteLength(buffer: BackendBuffer): number;

  // ---- kernels ------------------------------------------------------------------------------
  cast(x: BackendBuffer, size: number, from: DType, to: DType): BackendBuffer;
  unary(op: UnaryOp, x: BackendBuffer, size: number, dtype: DType): BackendBuffer;
  /** The `order`-th derivative (0 = the function itself) of a smooth activation, elementwise. */
  activation(fn: ActivationFn, order: number, x: BackendBuffer, size: number, dtype: DType): BackendBuffer;
  /** Broadcasting binary op; `outDType` is float for arithmetic, same float dtype for comparisons (0/1). */
  binary(
    op: BinaryOp,
    a: BackendBuffer,
    aShape: Shape,
    b: BackendBuffer,
    bShape: Shape,
    outShape: Shape,
    dtype: DType,
  ): BackendBuffer;
  /** out = cond != 0 ? a : b, all three broadcast to outShape. */
  where(
    cond: BackendBuffer,
    condShape: Shape,
    a: BackendBuffer,
    aShape: Shape,
    b: BackendBuffer,
    bShape: Shape,
    outShape: Shape,
    dtype: DType,
  ): BackendBuffer;
  /** Reduces the given sorted axes; output shape keeps them as size 1. */
  reduce(op: ReduceOp, x: BackendBuffer, shape: Shape, axes: readonly number[], dtype: DType): BackendBuffer;
  /** Index of the maximum along one axis (first on ties), as int32; output keeps the axis as size 1. */
  argMax(x: BackendBuffer, shape: Shape, axis: number, dtype: DType): BackendBuffer;
  /**
   * Batched matrix product with broadcasting over leading axes. a is (..., m, k) or, transposed,
   * (..., k, m); b is (..., k, n) or (..., n, k); out is (outBatch..., m, n).
   */
  matmul(
    a: BackendBuffer,
    aShape: Shape,
    b: BackendBuffer,
    bShape: Shape,
    transposeA: boolean,
    transposeB: boolean,
    outShape: Shape,
    dtype: DType,
  ): BackendBuffer;
  transpose(x: BackendBuffer, shape: Shape, perm: readonly number[], dtype: DType): BackendBuffer;
  /** Copies x (shape) broadcast to outShape. */
  broadcastTo(x: BackendBuffer, shape: Shape, outShape: Shape, dtype: DType): BackendBuffer;
  /** Contiguous box: begin[i] … begin[i]+size[i]−1 on every axis. */
  slice(
    x: BackendBuffer,
    shape: Shape,
    begin: readonly number[],
    size: readonly number[],
    dtype: DType,
  ): BackendBuffer;
  /** Pads with `value`; padding[i] = [before, after]. */
  pad(
    x: BackendBuffer,
    shape: Shape,
    padding: readonly (readonly [number, number])[],
    value: number,
    dtype: DType,
  ): BackendBuffer;
  concat(xs: readonly BackendBuffer[], shapes: readonly Shape[], axis: number, dtype: DType): BackendBuffer;
  /**
   * Gathers rows along `axis` of x with int32 indices: out shape = shape[:axis] + indexShape + shape[axis+1:].
   * Out-of-range indices are an error the engine checks before calling.
   */
  gather(
    x: BackendBuffer,
    shape: Shape,
    indices: BackendBuffer,
    indexSize: number,
    axis: number,
    dtype: DType,
  ): BackendBuffer;
  /** The adjoint of gather: out (shape) = 0, then out[.., idx[i], ..] += g[.., i, ..]. */
  scatterAdd(
    g: BackendBuffer,
    indices: BackendBuffer,
    indexSize: number,
    outShape: Shape,
    axis: number,
    dtype: DType,
  ): BackendBuffer;
  /**
   * First-order linear recurrence along `axis`: h_t = a_t · h_{t−1} + b_t, h_{−1} = 0
   * (or, with reverse, from the end: h_t = a_t · h_{t+1} + b_t). a and b share `shape`.
   * Cumulative sums, cumulative products and gate products are all this scan; it needs no
   * logarithms or divisions, so gates of exactly 0 or 1 are exact.
   */
  linearScan(
    a: BackendBuffer,
    b: BackendBuffer,
    shape: Shape,
    axis: number,
    reverse: boolean,
    dtype: DType,
  ): BackendBuffer;

  /**
   * Optional fused attention (flash-attention style) behind the `attention` op (ops/attention.ts).
   * Backends without it, or whose `supports` declines a call, get the composed-ops path.
   */
  readonly fusedAttention?: FusedAttention;

  /**
   * Optional fused memory scan behind `memoryScan` (memory/scan.ts). Backends without it, or
   * whose `supports` declines a call, get the composed-ops path.
   */
  readonly fusedMemoryScan?: FusedMemoryScan;
}

/**
 * One fused attention call: q is (batch, queries, headDim), k and v are (batch, keys, headDim),
 * dense row-major (batch = B·H). Key j is visible to query i iff j < prefix, or
 * 0 ≤ queryPositions[i] − keyPositions[j] < window (window = Infinity: no window).
 */
export interface AttentionParams {
  readonly batch: number;
  readonly queries: number;
  readonly keys: number;
  readonly headDim: number;
  readonly queryPositions: Int32Array;
  readonly keyPositions: Int32Array;
  readonly window: number;
  readonly prefix: number;
  readonly scale: number;
}

/** A backend's fused attention kernels (see `Backend.fusedAttention`). */
export interface FusedAttention {
  /** Whether `forward`/`backward` handle these arguments; otherwise the engine composes ops. */
  supports(params: AttentionParams, dtype: DType): boolean;
  /**
   * Softmax attention without materialising queries × keys: [out (batch, queries, headDim), lse
   * (batch, queries)], lse being each row's log-sum-exp of its visible scaled scores (the backward
   * needs it); rows with no visible key have output 0 and log-sum-exp −Infinity.
   */
  forward(
    q: BackendBuffer,
    k: BackendBuffer,
    v: BackendBuffer,
    params: AttentionParams,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer];
  /** Gradients [dq, dk, dv] given `forward`'s out and lse and the output's cotangent dOut. */
  backward(
    q: BackendBuffer,
    k: BackendBuffer,
    v: BackendBuffer,
    out: BackendBuffer,
    lse: BackendBuffer,
    dOut: BackendBuffer,
    params: AttentionParams,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer, BackendBuffer];
}

/**
 * One fused memory-scan call (SPEC §1, paper eq. 12–16; the op is `memoryScan` in
 * memory/scan.ts, which validates every argument before a backend sees it). Axis legend: … the
 * leading axes `lead` (batch·heads; `heads` = their product, 1 when empty), T tokens,
 * d = widths[0] = widths[depth].
 *
 * Per head i (row-major over `lead`) the scan is independent: it reads token rows i of
 * q, k, v (…, T, d) and of the gates α, η, θ (…, T), and matrix i of every state matrix after
 * broadcasting its leading axes to `lead` (right-aligned, each axis 1 or equal to lead's; a
 * matrix with no leading axes is shared by all heads).
 *
 * Chunks are absolute: tokens whose stream positions `position + t` share ⌊· / chunkSize⌋ take
 * their gradients at the same chunk-start weights. When `position % chunkSize ≠ 0` the call
 * begins inside a chunk whose start weights the caller passes (`chunkStart`).
 */
export interface MemoryScanParams {
  /** The leading axes of q (…); the scan runs once per index. */
  readonly lead: Shape;
  /** T ≥ 1: tokens in this call. */
  readonly tokens: number;
  /**
   * Layer widths of the memory MLP: layer l maps widths[l] → widths[l + 1]
   * (depth = widths.length − 1 ≥ 1; widths[0] = widths[depth] = d, all ≥ 1).
   */
  readonly widths: readonly number[];
  /** φ between layers (none after the last). */
  readonly activation: 'silu' | 'gelu';
  /** M(z) = z + MLP(z) when true. */
  readonly residual: boolean;
  /** b ≥ 1: tokens per chunk. */
  readonly chunkSize: number;
  /** Tokens of the stream consumed before this call (≥ 0). */
  readonly position: number;
  /** The leading axes of weights[l] (its shape without the last two axes). */
  readonly weightLeads: readonly Shape[];
  /** The leading axes of momentum[l]; null when the scan starts from zero momentum. */
  readonly momentumLeads: readonly Shape[] | null;
  /** The leading axes of chunkStart[l]; non-null exactly when position % chunkSize ≠ 0. */
  readonly chunkStartLeads: readonly Shape[] | null;
}

/**
 * The buffers of one fused memory-scan call, dense row-major, all of the call's dtype: the
 * inputs of `forward`, and (same shapes) the gradients `backward` returns.
 */
export interface MemoryScanBuffers {
  /** Queries, keys, values: (…, T, d). */
  readonly q: BackendBuffer;
  readonly k: BackendBuffer;
  readonly v: BackendBuffer;
  /** Gates α_t (forgetting), η_t (momentum decay), θ_t (inner learning rate): (…, T). */
  readonly alpha: BackendBuffer;
  readonly eta: BackendBuffer;
  readonly theta: BackendBuffer;
  /** W⁰ per layer: (weightLeads[l], widths[l], widths[l + 1]). */
  readonly weights: readonly BackendBuffer[];
  /** S⁰ per layer, shaped by momentumLeads; null with `momentumLeads` null. */
  readonly momentum: readonly BackendBuffer[] | null;
  /** The current chunk's start weights per layer, shaped by chunkStartLeads; null with it null. */
  readonly chunkStart: readonly BackendBuffer[] | null;
}

/**
 * The outputs of a fused memory scan in the order `forward` packs them into one flat buffer:
 * y (…, T, d); the final weights W^T per layer, then the final momentum S^T per layer, each
 * (…, widths[l], widths[l + 1]) with the full leading axes `lead`; then, only when the call
 * crosses a chunk boundary and ends inside a chunk, the weights at that last chunk's start, per
 * layer, shaped likewise. (Otherwise the chunk-start weights after the call are W^T when it
 * ends on a boundary, or the input's — `weights` or `chunkStart` — when it never left its
 * first chunk.)
 *
 * @example memoryScanOutputShapes(p).reduce((n, s) => n + sizeOf(s), 0); // the packed length
 */
export function memoryScanOutputShapes(p: MemoryScanParams): Shape[] {
  const depth = p.widths.length - 1;
  const matrices = (): Shape[] =>
    Array.from({ length: depth }, (_, l) => [...p.lead, p.widths[l]!, p.widths[l + 1]!]);
  const end = p.position + p.tokens;
  const b = p.chunkSize;
  const newChunkStart = end % b !== 0 && Math.floor(end / b) > Math.floor(p.position / b);
  return [
    [...p.lead, p.tokens, p.widths[0]!],
    ...matrices(),
    ...matrices(),
    ...(newChunkStart ? matrices() : []),
  ];
}

/**
 * A backend's fused memory-scan kernels (see `Backend.fusedMemoryScan`): the whole scan of SPEC
 * §1 over a sequence and its hand-written backward, on buffers. The engine records it as one
 * tape node (it has no second derivative).
 *
 * Lifetime of what `forward` keeps for the backward (`saved`): it is owned by the engine from
 * the moment `forward` returns. The engine passes it to `backward` at most once (a later backward
 * of the same forward, never needed in practice, gets null and must recompute), and releases it
 * with `Backend.release` exactly once — when the tape that recorded the call lets go of it, after
 * the backward ran or without it ever running. `backward` must neither release it nor keep it;
 * it may overwrite its contents. `byteLength(saved)` is counted in `memory()`.
 */
export interface FusedMemoryScan {
  /** Whether `forward`/`backward` handle this call; otherwise the engine composes ops. */
  supports(params: MemoryScanParams, dtype: DType): boolean;
  /**
   * The scan: returns the outputs packed into one new flat buffer in the order of
   * `memoryScanOutputShapes(params)`, and `saved`, a new buffer of intermediates for `backward`
   * or null. `recording` says whether a tape records the call: when false, `backward` is never
   * called for this forward and `saved` must be null. Reads its inputs and changes none.
   */
  forward(
    inputs: MemoryScanBuffers,
    params: MemoryScanParams,
    dtype: DType,
    recording: boolean,
  ): { packed: BackendBuffer; saved: BackendBuffer | null };
  /**
   * Gradients of every input given the cotangent of the packed outputs (one flat buffer in the
   * same layout, zeros for unused outputs) — new buffers shaped like the inputs, the weights'
   * gradients summed over the heads that share a matrix. `inputs` are the forward's, unchanged;
   * `saved` is what the forward returned, or null (then recompute).
   */
  backward(
    inputs: MemoryScanBuffers,
    saved: BackendBuffer | null,
    cotangent: BackendBuffer,
    params: MemoryScanParams,
    dtype: DType,
  ): MemoryScanBuffers;
}

/** A backend's buffer; opaque to everything but its backend. */
export type BackendBuffer = object;

export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'abs'
  | 'sign'
  | 'reciprocal'
  | 'square'
  | 'log1p';

export type ActivationFn = 'sigmoid' | 'tanh' | 'silu' | 'gelu' | 'softplus';

/** Highest derivative order a backend must provide for `activation` (the backward of order 3 needs 4). */
export const MAX_ACTIVATION_ORDER = 4;

export type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'pow'
  | 'maximum'
  | 'minimum'
  | 'greater'
  | 'greaterEqual'
  | 'less'
  | 'lessEqual'
  | 'equal'
  | 'notEqual';

export type ReduceOp = 'sum' | 'max' | 'min';

// ---- optional fused blocks ---------------------------------------------------------------------
// Buffer-level kernels for compositions that would otherwise be many small ops. Each sits behind an
// engine op (engine/ops/optim.ts, engine/ops/blocks.ts) that validates shapes, owns the tape node
// (a fused block has no second derivative) and composes ops when the backend has no such entry or
// its `supports` declines. Like every kernel here they return new buffers.

/** The optional fused blocks a backend may implement (see `Backend`). */
export interface FusedBlocks {
  /** One AdamW step on flat buffers (`adamwStep`, engine/ops/optim.ts). */
  readonly fusedAdamW?: FusedAdamW;
  /** Attention over a paged KV cache read in place, forward only (engine/ops/kv-cache.ts). */
  readonly pagedAttention?: FusedPagedAttention;
  /** In-place single-token kernels for decoding (models/decode.ts). */
  readonly decode?: DecodeKernels;
  /**
   * Copies `src` (groups, rows, rowSize) into rows [at, at + rows) of `dst` (groups, dstRows,
   * rowSize). The one kernel that writes into an existing buffer: only for KV-cache pages, which
   * no tape holds (engine/ops/kv-cache.ts).
   */
  writeRows?(
    dst: BackendBuffer,
    src: BackendBuffer,
    groups: number,
    dstRows: number,
    rows: number,
    rowSize: number,
    at: number,
    dtype: DType,
  ): void;
  /** RMSNorm over the last axis with a scale, forward and backward (`rmsNorm`, ops/nn.ts). */
  readonly fusedRmsNorm?: FusedRmsNorm;
  /** silu(a) ⊙ b, SwiGLU's nonlinearity, forward and backward (`swigluGate`, ops/blocks.ts). */
  readonly fusedSwiGLU?: FusedSwiGLU;
  /** Softmax cross-entropy per row against int32 targets (`crossEntropy`, ops/nn.ts). */
  readonly fusedCrossEntropy?: FusedCrossEntropy;
  /**
   * The memory layer's input block: causal depthwise conv, SiLU, heads split and L2-normalised
   * (`fusedConvSiluNorm`, ops/blocks.ts; composed in memory/layer.ts).
   */
  readonly fusedConvSiluNorm?: FusedConvSiluNorm;
  /** Rotary position embedding on rows of d (`rope`, ops/attention.ts). */
  readonly fusedRope?: FusedRope;
  /** The memory layer's gates cap · σ(z + bias), moved to (batch, heads, tokens) (`fusedGate`, ops/blocks.ts). */
  readonly fusedGate?: FusedGate;
  /** M_W(q) at fixed weights, depth 2, all tokens and heads (`memoryForward`, memory/memory-mlp.ts). */
  readonly fusedMemoryRead?: FusedMemoryRead;
}

/**
 * The memory model of SPEC §1 applied at fixed weights (MAC's read): q (batch, heads, tokens, d),
 * W₁ (weightBatch, heads, d, hidden), W₂ (weightBatch, heads, hidden, d), weightBatch 1 (broadcast
 * over the batch) or batch; y = φ(q W₁) W₂ (+ q with `residual`), (batch, heads, tokens, d).
 */
export interface MemoryReadParams {
  readonly batch: number;
  readonly heads: number;
  readonly tokens: number;
  readonly d: number;
  readonly hidden: number;
  readonly weightBatch: number;
  readonly activation: 'silu' | 'gelu';
  readonly residual: boolean;
}

/** A backend's fused memory read (see `FusedBlocks.fusedMemoryRead`). */
export interface FusedMemoryRead {
  supports(params: MemoryReadParams, dtype: DType): boolean;
  /** y from q, W₁, W₂. */
  forward(
    q: BackendBuffer,
    w1: BackendBuffer,
    w2: BackendBuffer,
    params: MemoryReadParams,
    dtype: DType,
  ): BackendBuffer;
  /** [dq, dW₁, dW₂] from y's cotangent gy (the forward recomputed; dW summed over a broadcast batch). */
  backward(
    q: BackendBuffer,
    w1: BackendBuffer,
    w2: BackendBuffer,
    gy: BackendBuffer,
    params: MemoryReadParams,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer, BackendBuffer];
}

/** A backend's fused RoPE (see `FusedBlocks.fusedRope`). */
export interface FusedRope {
  supports(dtype: DType): boolean;
  /**
   * x (rows × d) with features i and i + d/2 rotated, row r by row r mod tokens of `table`
   * (tokens × d: cos θ then sin θ, d/2 each); `inverse` rotates by −θ (the backward).
   */
  apply(
    x: BackendBuffer,
    table: BackendBuffer,
    rows: number,
    tokens: number,
    d: number,
    inverse: boolean,
    dtype: DType,
  ): BackendBuffer;
  /**
   * RoPE with the heads split or merged on the way (`ropeHeads`, ops/attention.ts): row (b, t, h)
   * of `tokens` (batch × tokens × heads rows of d) is row (b, h, t) of the heads layout (batch ×
   * heads × tokens rows of d), rotated by row t of `table`. inverse = false reads x in the tokens
   * layout and returns the heads layout (the forward); true reads x in the heads layout, rotates by
   * −θ and returns the tokens layout (the backward). Optional: without it the op transposes.
   */
  applyHeads?(
    x: BackendBuffer,
    table: BackendBuffer,
    batch: number,
    tokens: number,
    heads: number,
    d: number,
    inverse: boolean,
    dtype: DType,
  ): BackendBuffer;
}

/** A backend's fused gate (see `FusedBlocks.fusedGate`): z (batch, tokens, heads), bias (heads). */
export interface FusedGate {
  supports(dtype: DType): boolean;
  /** out (batch, heads, tokens) = cap · σ(z + bias). */
  forward(
    z: BackendBuffer,
    bias: BackendBuffer,
    batch: number,
    tokens: number,
    heads: number,
    cap: number,
    dtype: DType,
  ): BackendBuffer;
  /** [dz (batch, tokens, heads), dbias (heads)] from out's cotangent g. */
  backward(
    z: BackendBuffer,
    bias: BackendBuffer,
    g: BackendBuffer,
    batch: number,
    tokens: number,
    heads: number,
    cap: number,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer];
}

/**
 * One input block of the memory layer (SPEC §2.2–2.3) on z (batch, tokens, heads·headDim):
 * a_t = Σ_{i<kernel} w_i ⊙ z_{t−i} continuing from a tail (batch, kernel−1, heads·headDim) (kernel 0:
 * a = z), s = SiLU(a), split into heads (batch, heads, tokens, headDim), and when `normalize`
 * y = s / √(Σ s² + eps) per head and token.
 */
export interface ConvSiluNormParams {
  readonly batch: number;
  readonly tokens: number;
  readonly heads: number;
  readonly headDim: number;
  /** Taps K (0: no convolution; then taps and tail are null, as the tail is for K = 1). */
  readonly kernel: number;
  readonly normalize: boolean;
  readonly eps: number;
}

/** A backend's fused memory-layer input block (see `FusedBlocks.fusedConvSiluNorm`). */
export interface FusedConvSiluNorm {
  supports(params: ConvSiluNormParams, dtype: DType): boolean;
  /** y (batch, heads, tokens, headDim) from z, taps (kernel, C) and tail (batch, kernel − 1, C). */
  forward(
    z: BackendBuffer,
    taps: BackendBuffer | null,
    tail: BackendBuffer | null,
    params: ConvSiluNormParams,
    dtype: DType,
  ): BackendBuffer;
  /**
   * [dz, dtaps, dtail] from y's cotangent gy (the forward is recomputed from its inputs); dtaps
   * null without taps, dtail null without a tail or when `needTail` is false.
   */
  backward(
    z: BackendBuffer,
    taps: BackendBuffer | null,
    tail: BackendBuffer | null,
    gy: BackendBuffer,
    params: ConvSiluNormParams,
    needTail: boolean,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer | null, BackendBuffer | null];
}

/**
 * One RMSNorm: rows × n values, y = x / √(mean(x²) + eps) ⊙ scale, where row i uses scale row
 * ⌊i / scaleRepeat⌋ mod scaleRows (a (n) scale: scaleRows = 1; the memory's per-head (H, 1, dh)
 * scale on (B, H, T, dh): scaleRows = H, scaleRepeat = T).
 */
export interface RmsNormParams {
  readonly rows: number;
  readonly n: number;
  readonly scaleRows: number;
  readonly scaleRepeat: number;
  readonly eps: number;
}

/** A backend's fused RMSNorm (see `FusedBlocks.fusedRmsNorm`). */
export interface FusedRmsNorm {
  supports(params: RmsNormParams, dtype: DType): boolean;
  /** [y (rows × n), each row's r = 1/√(mean(x²) + eps) (rows)]; scale null for none. */
  forward(
    x: BackendBuffer,
    scale: BackendBuffer | null,
    params: RmsNormParams,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer];
  /** [dx, dscale (scaleRows × n; null without a scale)] from the forward's r and y's cotangent g. */
  backward(
    x: BackendBuffer,
    scale: BackendBuffer | null,
    r: BackendBuffer,
    g: BackendBuffer,
    params: RmsNormParams,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer | null];
}

/** A backend's fused SwiGLU nonlinearity (see `FusedBlocks.fusedSwiGLU`). */
export interface FusedSwiGLU {
  supports(dtype: DType): boolean;
  /** silu(a) ⊙ b over `size` elements. */
  forward(a: BackendBuffer, b: BackendBuffer, size: number, dtype: DType): BackendBuffer;
  /** [da, db] from the cotangent g. */
  backward(
    a: BackendBuffer,
    b: BackendBuffer,
    g: BackendBuffer,
    size: number,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer];
}

/** A backend's fused softmax cross-entropy (see `FusedBlocks.fusedCrossEntropy`). */
export interface FusedCrossEntropy {
  supports(rows: number, classes: number, dtype: DType): boolean;
  /**
   * [the losses (rows) of logits (rows × classes) against int32 targets (rows), each row's
   * log-sum-exp (rows)]; loss = logsumexp(row) − row[target], 0 where target = ignoreIndex (when
   * given).
   */
  forward(
    logits: BackendBuffer,
    targets: BackendBuffer,
    rows: number,
    classes: number,
    ignoreIndex: number | undefined,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer];
  /**
   * dlogits = g_row · (softmax(row) − onehot(target)), 0 on ignored rows, from the forward's
   * log-sum-exps and the losses' cotangent g.
   */
  backward(
    logits: BackendBuffer,
    targets: BackendBuffer,
    lse: BackendBuffer,
    g: BackendBuffer,
    rows: number,
    classes: number,
    ignoreIndex: number | undefined,
    dtype: DType,
  ): BackendBuffer;
}

/** Elementwise ops of `DecodeKernels.map`: a + b, a ⊙ b, silu(a), s·σ(a), silu(a) ⊙ b, a ⊙ σ(b). */
export type DecodeMapOp = 'add' | 'mul' | 'silu' | 'sigmoid' | 'siluMul' | 'mulSigmoid';

/** One token through the memories of H heads (`DecodeKernels.memoryStep`); see memoryTokenStep. */
export interface MemoryStepArgs {
  /** q, k, v (H, d) and the gates α, η, θ (H), each a buffer and an element offset. */
  q: BackendBuffer;
  k: BackendBuffer;
  v: BackendBuffer;
  gates: BackendBuffer;
  /** Offsets of q, k, v, and of α, η, θ in `gates`. */
  at: readonly [number, number, number, number, number, number];
  /** W_l, S_l, G_l per layer (H, d_in, d_out). */
  weights: readonly BackendBuffer[];
  momentum: readonly BackendBuffer[];
  chunkStart: readonly BackendBuffer[];
  /** y (H, d), written. */
  y: BackendBuffer;
  heads: number;
  d: number;
  hidden: number;
  depth: number;
  activation: 'silu' | 'gelu';
  residual: boolean;
  /** The token starts a chunk (G ← W first) / ends one (the state is flushed after). */
  start: boolean;
  end: boolean;
}

/**
 * In-place single-token kernels for decoding (`TokenDecoder`, models/decode.ts). Each operand is
 * a buffer and an element offset into it. Unlike every other kernel these write into existing
 * buffers, which a decoder owns and reuses: never a buffer of a tensor a tape may hold.
 */
export interface DecodeKernels {
  /** out (n) = x (m) · W (m × n, row-major), or += with `accumulate`. */
  gemv(
    out: BackendBuffer,
    outAt: number,
    x: BackendBuffer,
    xAt: number,
    w: BackendBuffer,
    m: number,
    n: number,
    accumulate: boolean,
  ): void;
  /** out[r] = W[r, :] · x for r < rows (W rows × cols): a tied output head. */
  gemvRows(
    out: BackendBuffer,
    x: BackendBuffer,
    xAt: number,
    w: BackendBuffer,
    rows: number,
    cols: number,
  ): void;
  /** RMSNorm of `groups` groups of n: the scale of group g at g·scaleStride (0: shared; null: none). */
  rmsNorm(
    out: BackendBuffer,
    outAt: number,
    x: BackendBuffer,
    xAt: number,
    scale: BackendBuffer | null,
    n: number,
    groups: number,
    scaleStride: number,
    eps: number,
  ): void;
  /** L2-normalises `groups` groups of n in place (z / √(Σ z² + eps)). */
  l2Normalize(x: BackendBuffer, xAt: number, n: number, groups: number, eps: number): void;
  /** out = op(a, b) over n elements (b unused by silu and sigmoid; s scales sigmoid). */
  map(
    op: DecodeMapOp,
    out: BackendBuffer,
    outAt: number,
    a: BackendBuffer,
    aAt: number,
    b: BackendBuffer | null,
    bAt: number,
    n: number,
    s: number,
  ): void;
  /** One causal-conv step over C channels, K taps (K, C); tail (K−1, C) updated in place. */
  convStep(
    out: BackendBuffer,
    outAt: number,
    z: BackendBuffer,
    zAt: number,
    taps: BackendBuffer,
    tail: BackendBuffer,
    K: number,
    C: number,
  ): void;
  /** RoPE in place on `heads` rows of dh: cosSin holds the dh/2 cosines then the dh/2 sines. */
  rope(x: BackendBuffer, xAt: number, heads: number, dh: number, cosSin: Float32Array): void;
  copy(dst: BackendBuffer, dstAt: number, src: BackendBuffer, srcAt: number, n: number): void;
  /**
   * Softmax attention of one query row q (H, dh) over the first `keys` rows of k and v (H, rows,
   * dh), all of them visible, into out (H, dh).
   */
  attend(
    out: BackendBuffer,
    q: BackendBuffer,
    k: BackendBuffer,
    v: BackendBuffer,
    heads: number,
    rows: number,
    keys: number,
    dh: number,
    scale: number,
  ): void;
  memoryStep(args: MemoryStepArgs): void;
  /** y (H, d) = M_W(q) with fixed weights w1 (H, d, hidden), w2 (H, hidden, d; depth 2). */
  memoryRead(
    q: BackendBuffer,
    qAt: number,
    weights: readonly BackendBuffer[],
    y: BackendBuffer,
    heads: number,
    d: number,
    hidden: number,
    activation: 'silu' | 'gelu',
    residual: boolean,
  ): void;
}

/** A backend's attention over a paged KV cache (see `FusedBlocks.pagedAttention`). */
export interface FusedPagedAttention {
  /** Whether `forward` handles these arguments with pages of `pageRows` rows. */
  supports(params: AttentionParams, pageRows: number, dtype: DType): boolean;
  /**
   * The output (batch, queries, headDim) of softmax attention as `FusedAttention.forward`, whose
   * `params.keys` keys and values are read from `pages`: (k, v) buffer pairs, each (batch,
   * pageRows, headDim), page p holding keys p·pageRows … of every (batch, head).
   */
  forward(
    q: BackendBuffer,
    pages: readonly (readonly [BackendBuffer, BackendBuffer])[],
    pageRows: number,
    params: AttentionParams,
    dtype: DType,
  ): BackendBuffer;
}

/**
 * One AdamW update of `size` parameters (t = step + 1; every factor already folded into scalars):
 *   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← shrink·p − stepSize·m/(√v·invSqrtBc2 + ε).
 */
export interface AdamWParams {
  readonly size: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** lr / (1 − β₁ᵗ). */
  readonly stepSize: number;
  /** 1 / √(1 − β₂ᵗ). */
  readonly invSqrtBc2: number;
  /** 1 − lr·λ where weight decay applies, else 1. */
  readonly shrink: number;
}

/** A backend's fused AdamW (see `FusedBlocks.fusedAdamW`). */
export interface FusedAdamW {
  supports(dtype: DType): boolean;
  /** New [p, m, v] from p, g, m, v (each `size` elements). */
  step(
    p: BackendBuffer,
    g: BackendBuffer,
    m: BackendBuffer,
    v: BackendBuffer,
    params: AdamWParams,
    dtype: DType,
  ): [BackendBuffer, BackendBuffer, BackendBuffer];
}
