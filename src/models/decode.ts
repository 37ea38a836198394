/**
 * Decoding one token at a time (SPEC §5), fast: the state lives in buffers the decoder owns and
 * updates in place — KV caches as ring buffers (a segment buffer for MAC, pages for Transformer++),
 * the memory as SPEC §1's token-by-token recurrence (G at chunk boundaries, flushed there as the
 * chunk-parallel kernels do), conv tails shifted in place — and each block runs as a few dozen
 * single-token kernels (`Backend.decode`) instead of hundreds of engine ops. modelStream uses it
 * for every piece of one token (stream.ts); the results equal modelForward's to float32 rounding.
 *
 * Axis legend: d model width, H attention heads, dh = d/H, Hm memory heads, dm memory head width,
 * C = Hm·dm memory channels, K conv kernel, hm memory hidden width, f MLP width, V vocabulary,
 * N_p persistent tokens, w window, S MAC segment length.
 */
import type { Backend, BackendBuffer, DecodeKernels, FusedPagedAttention } from '../engine/backend.js';
import { keep, noGrad, PAGE_ROWS, type PagedCache, type Tensor, tidy, zeros } from '../engine/index.js';
import { isPagedCache } from '../engine/ops/kv-cache.js';
import { wrapBuffer } from '../engine/tensor.js';
import type { MemoryLayerConfig, MemoryLayerParams } from '../memory/layer.js';
import { memoryLayerConfigOf, type TitansConfig } from './config.js';
import type { AttentionWeights, KeyValueCache } from './layers.js';
import {
  type BlockKind,
  type BlockParams,
  type BlockState,
  blockKind,
  type ModelParams,
  type ModelState,
} from './model.js';

/** A decoder: feeds one token, returns the next-token logits, and can hand its state back. */
export interface TokenDecoder {
  /**
   * Runs token `token` at the current position; returns the logits (1, 1, V) it predicts, a fresh
   * tensor (computed on the device, not read back).
   */
  step(token: number): Tensor;
  /** The state now, as a ModelState of fresh tensors (the decoder keeps its own). */
  snapshot(): ModelState;
  /** Frees the decoder's buffers. */
  dispose(): void;
}

/** What the decoder needs from a backend: its single-token kernels, paged attention, row writes. */
interface Kernels {
  backend: Backend;
  k: DecodeKernels;
  paged: FusedPagedAttention;
  writeRows: NonNullable<Backend['writeRows']>;
}

/** A zeroed float32 buffer the decoder owns. */
function buffer(kx: Kernels, n: number): BackendBuffer {
  return kx.backend.fill(Math.max(n, 1), 0, 'float32');
}

/**
 * A fresh float32 tensor of `shape` holding the elements of a decoder buffer from `at`, copied on
 * the device (nothing is read back: the decoder runs on backends without synchronous reads).
 */
function toTensor(kx: Kernels, b: BackendBuffer, shape: readonly number[], at = 0): Tensor {
  const n = shape.reduce((x, y) => x * y, 1);
  const out = buffer(kx, n);
  kx.k.copy(out, 0, b, at, n);
  return wrapBuffer(kx.backend, out, [...shape], 'float32');
}

/** The decoder's kernels, or null where this backend or config has no fast path. */
function kernelsFor(params: ModelParams, config: TitansConfig): Kernels | null {
  const backend = params.embedding.backend;
  const k = backend.decode;
  const paged = backend.pagedAttention;
  const writeRows = backend.writeRows;
  if (!k || !paged || !writeRows || params.embedding.dtype !== 'float32') return null;
  const dh = config.dModel / config.heads;
  if (dh % 4 !== 0) return null; // the attention kernel's head width
  const memory = memoryLayerConfigOf(config);
  if (params.blocks.some((b) => b.memory) && memory.depth > 2) return null;
  return { backend, k, paged, writeRows: writeRows.bind(backend) };
}

// ---- attention caches ----------------------------------------------------------------------------

/**
 * Keys and values of one attention layer, per head contiguous: N_p unrotated prefix rows, then
 * `capacity` rows used as a ring (a sliding window: the last w tokens, the current one included)
 * or filled from the start (MAC's segment: h_j and n_j of the segment so far, cleared at its end).
 */
class RowCache {
  readonly k: BackendBuffer; // (H, N_p + capacity, dh)
  readonly v: BackendBuffer;
  readonly positions: Int32Array; // of each row; prefix rows 0
  filled = 0;
  private next = 0;

  constructor(
    private readonly kx: Kernels,
    readonly heads: number,
    readonly dh: number,
    readonly prefix: number,
    readonly capacity: number,
    readonly ring: boolean,
  ) {
    const rows = prefix + capacity;
    this.k = buffer(kx, heads * rows * dh);
    this.v = buffer(kx, heads * rows * dh);
    this.positions = new Int32Array(rows);
  }

  get rows(): number {
    return this.prefix + this.capacity;
  }

  /** Writes a row (H, dh) of keys and values at the next slot, for position `position`. */
  append(k: BackendBuffer, kAt: number, v: BackendBuffer, vAt: number, position: number): void {
    const slot = this.ring ? this.next : this.filled;
    this.writeRow(this.k, k, kAt, this.prefix + slot);
    this.writeRow(this.v, v, vAt, this.prefix + slot);
    this.positions[this.prefix + slot] = position;
    if (this.ring) this.next = (this.next + 1) % this.capacity;
    this.filled = Math.min(this.filled + 1, this.capacity);
  }

  private writeRow(dst: BackendBuffer, src: BackendBuffer, srcAt: number, row: number): void {
    for (let h = 0; h < this.heads; h++) {
      this.kx.k.copy(dst, (h * this.rows + row) * this.dh, src, srcAt + h * this.dh, this.dh);
    }
  }

  /**
   * Softmax attention of one query row q (H, dh) into out (H, dh) over the prefix and the rows so
   * far: every one of them is visible (the ring holds the window, the segment its own past).
   */
  attend(q: BackendBuffer, out: BackendBuffer): void {
    this.kx.k.attend(
      out,
      q,
      this.k,
      this.v,
      this.heads,
      this.rows,
      this.prefix + this.filled,
      this.dh,
      1 / Math.sqrt(this.dh),
    );
  }

  /** The rows in the order they were written (the ring's oldest first) as a KeyValueCache. */
  snapshot(): KeyValueCache | null {
    if (this.filled === 0) return null;
    const order = Array.from({ length: this.filled }, (_, i) =>
      this.ring && this.filled === this.capacity ? (this.next + i) % this.capacity : i,
    );
    const take = (src: BackendBuffer) => {
      const out = buffer(this.kx, this.heads * this.filled * this.dh); // (H, filled, dh)
      for (let h = 0; h < this.heads; h++) {
        order.forEach((slot, i) => {
          const from = (h * this.rows + this.prefix + slot) * this.dh;
          this.kx.k.copy(out, (h * this.filled + i) * this.dh, src, from, this.dh);
        });
      }
      return wrapBuffer(this.kx.backend, out, [1, this.heads, this.filled, this.dh], 'float32');
    };
    return {
      k: take(this.k),
      v: take(this.v),
      positions: order.map((slot) => this.positions[this.prefix + slot]!),
    };
  }

  /** Loads a KeyValueCache's rows (oldest first) into the slots after the prefix. */
  load(cache: KeyValueCache | null): void {
    this.filled = 0;
    this.next = 0;
    if (!cache) return;
    const n = cache.positions.length;
    for (let h = 0; h < this.heads; h++) {
      for (let i = 0; i < n; i++) {
        const row = (h * this.rows + this.prefix + i) * this.dh;
        this.kx.k.copy(this.k, row, cache.k.buffer, (h * n + i) * this.dh, this.dh);
        this.kx.k.copy(this.v, row, cache.v.buffer, (h * n + i) * this.dh, this.dh);
      }
    }
    cache.positions.forEach((p, i) => {
      this.positions[this.prefix + i] = p;
    });
    this.filled = n;
    this.next = n % this.capacity;
  }

  dispose(): void {
    this.kx.backend.release(this.k);
    this.kx.backend.release(this.v);
  }
}

/** Transformer++'s cache: the PagedCache itself, a row appended in place per token. */
class PageCache {
  cache: PagedCache | null;

  constructor(
    private readonly kx: Kernels,
    readonly heads: number,
    readonly dh: number,
    cache: PagedCache | null,
  ) {
    this.cache = cache;
  }

  append(k: BackendBuffer, kAt: number, v: BackendBuffer, vAt: number, position: number): void {
    const c = this.cache;
    const length = c?.length ?? 0;
    let pages = c ? [...c.pages] : [];
    let written = c?.written ?? { rows: 0 };
    if (c && written.rows !== length) {
      // This stream's cache was branched by a later value: continue on copies of its pages.
      pages = pages.map((p) => ({
        k: keep(toTensor(this.kx, p.k.buffer, p.k.shape)),
        v: keep(toTensor(this.kx, p.v.buffer, p.v.shape)),
      }));
      written = { rows: length };
    }
    const index = Math.floor(length / PAGE_ROWS);
    if (index === pages.length) {
      const shape = [1, this.heads, PAGE_ROWS, this.dh];
      const options = { dtype: 'float32', backend: this.kx.backend.name } as const;
      pages.push({ k: keep(zeros(shape, options)), v: keep(zeros(shape, options)) }); // owned by the cache
    }
    const page = pages[index]!;
    const row = length % PAGE_ROWS;
    for (let h = 0; h < this.heads; h++) {
      this.kx.k.copy(page.k.buffer, (h * PAGE_ROWS + row) * this.dh, k, kAt + h * this.dh, this.dh);
      this.kx.k.copy(page.v.buffer, (h * PAGE_ROWS + row) * this.dh, v, vAt + h * this.dh, this.dh);
    }
    written.rows = length + 1;
    this.cache = { pages, length: length + 1, first: c?.first ?? position, written };
  }

  attend(q: BackendBuffer, out: BackendBuffer, position: number): void {
    const c = this.cache!;
    const result = this.kx.paged.forward(
      q,
      c.pages.map((p) => [p.k.buffer, p.v.buffer] as const),
      PAGE_ROWS,
      {
        batch: this.heads,
        queries: 1,
        keys: c.length,
        headDim: this.dh,
        queryPositions: Int32Array.of(position),
        keyPositions: Int32Array.from({ length: c.length }, (_, j) => c.first + j),
        window: Number.POSITIVE_INFINITY,
        prefix: 0,
        scale: 1 / Math.sqrt(this.dh),
      },
      'float32',
    );
    this.kx.k.copy(out, 0, result, 0, this.heads * this.dh);
    this.kx.backend.release(result);
  }
}

// ---- the memory layer, one token ------------------------------------------------------------------

/** A memory layer's state (SPEC §1–§2) in the decoder's buffers, stepped one token at a time. */
class MemoryDecoder {
  readonly weights: BackendBuffer[];
  readonly momentum: BackendBuffer[];
  readonly chunkStart: BackendBuffer[];
  readonly tails: { q: BackendBuffer; k: BackendBuffer; v: BackendBuffer } | null;
  position = 0;
  private readonly sizes: number[];
  readonly hidden: number;
  // per-token rows: projections (3C), convolved (3C), gates (3H), y (C), output gate (C)
  private readonly z: BackendBuffer;
  private readonly c: BackendBuffer;
  private readonly gates: BackendBuffer;
  private readonly y: BackendBuffer;
  private readonly g: BackendBuffer;

  constructor(
    private readonly kx: Kernels,
    private readonly p: MemoryLayerParams,
    private readonly config: MemoryLayerConfig,
  ) {
    const { heads: H, headDim: dm, depth } = config;
    this.hidden = depth === 2 ? config.expansion * dm : dm;
    const dims = depth === 2 ? [dm, this.hidden, dm] : [dm, dm];
    this.sizes = dims.slice(0, -1).map((din, l) => H * din * dims[l + 1]!);
    this.weights = this.sizes.map((n) => buffer(kx, n));
    this.momentum = this.sizes.map((n) => buffer(kx, n));
    this.chunkStart = this.sizes.map((n) => buffer(kx, n));
    const C = H * dm;
    const tail = () => buffer(kx, (config.convKernel - 1) * C);
    this.tails = config.convKernel > 0 && p.convQ ? { q: tail(), k: tail(), v: tail() } : null;
    this.z = buffer(kx, 3 * C);
    this.c = buffer(kx, 3 * C);
    this.gates = buffer(kx, 3 * H);
    this.y = buffer(kx, C);
    this.g = buffer(kx, C);
  }

  /** Loads a MemoryLayerState (batch 1). */
  load(state: BlockState['memory']): void {
    const s = state!;
    const m = s.memory;
    this.sizes.forEach((n, l) => {
      this.kx.k.copy(this.weights[l]!, 0, m.weights[l]!.buffer, 0, n);
      this.kx.k.copy(this.momentum[l]!, 0, m.momentum[l]!.buffer, 0, n);
      this.kx.k.copy(this.chunkStart[l]!, 0, m.chunkStartWeights[l]!.buffer, 0, n);
    });
    this.position = m.position;
    if (this.tails && s.convTails) {
      const n = (this.config.convKernel - 1) * this.config.heads * this.config.headDim;
      this.kx.k.copy(this.tails.q, 0, s.convTails.q.buffer, 0, n);
      this.kx.k.copy(this.tails.k, 0, s.convTails.k.buffer, 0, n);
      this.kx.k.copy(this.tails.v, 0, s.convTails.v.buffer, 0, n);
    }
  }

  /** The state as a MemoryLayerState of fresh tensors (leading axes 1, H). */
  snapshot(): NonNullable<BlockState['memory']> {
    const { heads: H, headDim: dm, depth, chunkSize, convKernel: K } = this.config;
    const dims = depth === 2 ? [dm, this.hidden, dm] : [dm, dm];
    const shape = (l: number) => [1, H, dims[l]!, dims[l + 1]!];
    const weights = this.weights.map((b, l) => toTensor(this.kx, b, shape(l)));
    const momentum = this.momentum.map((b, l) => toTensor(this.kx, b, shape(l)));
    const chunkStartWeights =
      this.position % chunkSize === 0
        ? weights
        : this.chunkStart.map((b, l) => toTensor(this.kx, b, shape(l)));
    const C = H * dm;
    const tails = this.tails
      ? {
          q: toTensor(this.kx, this.tails.q, [1, K - 1, C]),
          k: toTensor(this.kx, this.tails.k, [1, K - 1, C]),
          v: toTensor(this.kx, this.tails.v, [1, K - 1, C]),
        }
      : null;
    return {
      memory: { weights, momentum, chunkStartWeights, position: this.position, chunkSize },
      convTails: tails,
    };
  }

  /** The memory layer (SPEC §2) on one row x (d) into out (d): write x, retrieve after it. */
  step(x: BackendBuffer, xAt: number, out: BackendBuffer, outAt: number): void {
    const { k } = this.kx;
    const { p, config } = this;
    const { heads: H, headDim: dm, dModel: d, convKernel: K } = config;
    const C = H * dm;
    // 1–3. projections, causal conv (tails in place), SiLU, L2 per head (v too: normalizeValues)
    const proj = [p.wq, p.wk, p.wv];
    const taps = [p.convQ, p.convK, p.convV];
    const tails = this.tails ? [this.tails.q, this.tails.k, this.tails.v] : null;
    for (let i = 0; i < 3; i++) {
      k.gemv(this.z, i * C, x, xAt, proj[i]!.buffer, d, C, false);
      if (tails) k.convStep(this.c, i * C, this.z, i * C, taps[i]!.buffer, tails[i]!, K, C);
      else k.copy(this.c, i * C, this.z, i * C, C);
      k.map('silu', this.c, i * C, this.c, i * C, null, 0, C, 1);
      if (i < 2 || config.normalizeValues) k.l2Normalize(this.c, i * C, dm, H, 1e-6);
    }
    // 4. gates α, η, θ per head
    const gate = (i: number, w: Tensor | null, b: Tensor | null, cap: number, on: boolean) => {
      if (!on || !w || !b) return; // switched off: its slots stay 0
      k.gemv(this.gates, i * H, x, xAt, w.buffer, d, H, false);
      k.map('add', this.gates, i * H, this.gates, i * H, b.buffer, 0, H, 1);
      k.map('sigmoid', this.gates, i * H, this.gates, i * H, null, 0, H, cap);
    };
    gate(0, p.wAlpha, p.bAlpha, 1, config.forgetting);
    gate(1, p.wEta, p.bEta, config.etaMax, config.momentum);
    gate(2, p.wTheta, p.bTheta, config.thetaMax, true);
    // 5. one token of the memory (eq. 12–16), in place
    const b = config.chunkSize;
    k.memoryStep({
      q: this.c,
      k: this.c,
      v: this.c,
      gates: this.gates,
      at: [0, C, 2 * C, 0, H, 2 * H],
      weights: this.weights,
      momentum: this.momentum,
      chunkStart: this.chunkStart,
      y: this.y,
      heads: H,
      d: dm,
      hidden: this.hidden,
      depth: config.depth,
      activation: config.activation,
      residual: config.residual,
      start: this.position % b === 0,
      end: (this.position + 1) % b === 0,
    });
    this.position += 1;
    this.output(x, xAt, this.y, out, outAt);
  }

  /** Step 6: (RMSNorm_h(y) ⊙ SiLU(x W_G)) W_O into out. */
  output(x: BackendBuffer, xAt: number, y: BackendBuffer, out: BackendBuffer, outAt: number): void {
    const { k } = this.kx;
    const { heads: H, headDim: dm, dModel: d } = this.config;
    const C = H * dm;
    k.rmsNorm(y, 0, y, 0, this.p.normScale.buffer, dm, H, dm, 1e-6);
    k.gemv(this.g, 0, x, xAt, this.p.wg.buffer, d, C, false);
    k.map('siluMul', this.g, 0, this.g, 0, y, 0, C, 1);
    k.gemv(out, outAt, this.g, 0, this.p.wo.buffer, C, d, false);
  }

  /**
   * MAC's read (SPEC §4.1): queries from x through W_Q, conv (its own tail), SiLU, L2; M_W(q)
   * with the fixed weights `read`; then step 6.
   */
  read(
    x: BackendBuffer,
    xAt: number,
    read: readonly BackendBuffer[],
    tail: BackendBuffer | null,
    out: BackendBuffer,
    outAt: number,
  ): void {
    const { k } = this.kx;
    const { p, config } = this;
    const { heads: H, headDim: dm, dModel: d, convKernel: K } = config;
    const C = H * dm;
    k.gemv(this.z, 0, x, xAt, p.wq.buffer, d, C, false);
    if (tail && p.convQ) k.convStep(this.c, 0, this.z, 0, p.convQ.buffer, tail, K, C);
    else k.copy(this.c, 0, this.z, 0, C);
    k.map('silu', this.c, 0, this.c, 0, null, 0, C, 1);
    k.l2Normalize(this.c, 0, dm, H, 1e-6);
    k.memoryRead(this.c, 0, read, this.y, H, dm, this.hidden, config.activation, config.residual);
    this.output(x, xAt, this.y, out, outAt);
  }

  dispose(): void {
    const release = (b: BackendBuffer) => this.kx.backend.release(b);
    [
      ...this.weights,
      ...this.momentum,
      ...this.chunkStart,
      this.z,
      this.c,
      this.gates,
      this.y,
      this.g,
    ].forEach(release);
    if (this.tails) [this.tails.q, this.tails.k, this.tails.v].forEach(release);
  }
}

// ---- blocks ----------------------------------------------------------------------------------------

/**
 * RoPE's cosines then sines (dh/2 each) at `position` into `out`, as rope() computes them
 * (ops/attention.ts).
 */
function ropeTable(position: number, dh: number, base: number, out: Float32Array): Float32Array {
  const half = dh / 2;
  for (let i = 0; i < half; i++) {
    const angle = position * base ** ((-2 * i) / dh);
    out[i] = Math.cos(angle);
    out[half + i] = Math.sin(angle);
  }
  return out;
}

/** The rows one block needs per token. */
interface Rows {
  n: BackendBuffer; // (d) normed input
  q: BackendBuffer; // (d) queries (H, dh)
  kv: BackendBuffer; // (4d): k, v of n, then k, v of h (MAC)
  att: BackendBuffer; // (d) attention output before W_O
  a: BackendBuffer; // (d)
  m: BackendBuffer; // (d)
  h: BackendBuffer; // (d) MAC's read
  u: BackendBuffer; // (2f) MLP hidden
  t: BackendBuffer; // (2d) gate scratch
}

/** One block of the model, decoding. */
class BlockDecoder {
  private readonly cache: RowCache | PageCache | null = null;
  private readonly memory: MemoryDecoder | null = null;
  // MAC: the memory at the end of the previous segment, and the read queries' conv tail
  private readonly readWeights: BackendBuffer[] = [];
  private readonly readTail: BackendBuffer | null = null;
  private readonly cosSin: Float32Array;

  constructor(
    private readonly kx: Kernels,
    private readonly p: BlockParams,
    private readonly config: TitansConfig,
    readonly kind: BlockKind,
    private readonly rows: Rows,
  ) {
    const { dModel: d, heads: H } = config;
    const dh = d / H;
    this.cosSin = new Float32Array(dh);
    const prefix = p.persistent ? p.persistent.shape[0]! : 0;
    if (kind !== 'memory') {
      if (kind === 'mac') this.cache = new RowCache(kx, H, dh, prefix, 2 * config.segmentSize, false);
      else if (kind === 'attention' && config.variant === 'transformer')
        this.cache = new PageCache(kx, H, dh, null);
      else this.cache = new RowCache(kx, H, dh, prefix, config.window, true);
      if (this.cache instanceof RowCache && prefix > 0)
        this.loadPrefix(p.attention!, p.persistent!, this.cache);
    }
    if (p.memory) {
      this.memory = new MemoryDecoder(kx, p.memory, { ...memoryLayerConfigOf(config) });
      if (kind === 'mac') {
        this.readWeights = this.memory.weights.map((_, l) => buffer(kx, this.memorySize(l)));
        const mc = memoryLayerConfigOf(config);
        this.readTail =
          mc.convKernel > 0 && p.memory.convQ
            ? buffer(kx, (mc.convKernel - 1) * mc.heads * mc.headDim)
            : null;
      }
    }
  }

  private memorySize(l: number): number {
    const mc = memoryLayerConfigOf(this.config);
    const hidden = mc.depth === 2 ? mc.expansion * mc.headDim : mc.headDim;
    const dims = mc.depth === 2 ? [mc.headDim, hidden, mc.headDim] : [mc.headDim, mc.headDim];
    return mc.heads * dims[l]! * dims[l + 1]!;
  }

  /** P's keys and values (not rotated, SPEC §3) into the prefix rows of a cache. */
  private loadPrefix(w: AttentionWeights, persistent: Tensor, cache: RowCache): void {
    const { k } = this.kx;
    const { dModel: d, heads: H } = this.config;
    const dh = d / H;
    const rows = persistent.shape[0]!;
    for (let r = 0; r < rows; r++) {
      k.gemv(this.rows.kv, 0, persistent.buffer, r * d, w.wk.buffer, d, d, false);
      k.gemv(this.rows.kv, d, persistent.buffer, r * d, w.wv.buffer, d, d, false);
      for (let h = 0; h < H; h++) {
        k.copy(cache.k, (h * cache.rows + r) * dh, this.rows.kv, h * dh, dh);
        k.copy(cache.v, (h * cache.rows + r) * dh, this.rows.kv, d + h * dh, dh);
      }
    }
  }

  load(state: BlockState): void {
    if (this.cache instanceof RowCache) {
      const rows = this.kind === 'mac' ? state.mac!.segment : state.cache;
      if (rows && isPagedCache(rows)) throw new Error('decode: a paged cache in a windowed layer');
      this.cache.load(rows as KeyValueCache | null);
    } else if (this.cache instanceof PageCache) {
      this.cache.cache = isPagedCache(state.cache) ? state.cache : null;
      if (state.cache && !isPagedCache(state.cache)) {
        throw new Error('decode: Transformer++ state without a paged cache');
      }
    }
    if (this.memory) this.memory.load(state.memory);
    if (this.kind === 'mac') {
      const mac = state.mac!;
      mac.readWeights.forEach((w, l) => {
        this.kx.k.copy(this.readWeights[l]!, 0, w.buffer, 0, this.memorySize(l));
      });
      if (this.readTail && mac.readTail) {
        const mc = memoryLayerConfigOf(this.config);
        this.kx.k.copy(this.readTail, 0, mac.readTail.buffer, 0, (mc.convKernel - 1) * mc.heads * mc.headDim);
      }
    }
  }

  snapshot(): BlockState {
    const memory = this.memory ? this.memory.snapshot() : null;
    if (this.kind === 'mac') {
      const mc = memoryLayerConfigOf(this.config);
      const segmentStart = this.memory!.position % this.config.segmentSize === 0;
      const readWeights = segmentStart
        ? memory!.memory.weights
        : this.readWeights.map((b, l) => toTensor(this.kx, b, [...memory!.memory.weights[l]!.shape]));
      const C = mc.heads * mc.headDim;
      const readTail = this.readTail ? toTensor(this.kx, this.readTail, [1, mc.convKernel - 1, C]) : null;
      const segment = segmentStart ? null : (this.cache as RowCache).snapshot();
      return { cache: null, memory, mac: { readWeights, readTail, segment } };
    }
    const cache =
      this.cache instanceof RowCache
        ? this.cache.snapshot()
        : this.cache instanceof PageCache
          ? this.cache.cache
          : null;
    return { cache, memory, mac: null };
  }

  /** x (d) ← this block applied to x, at stream position `position`. */
  step(x: BackendBuffer, position: number): void {
    const { k } = this.kx;
    const { p, config, rows } = this;
    const d = config.dModel;
    const eps = config.normEps;
    switch (this.kind) {
      case 'attention':
        k.rmsNorm(rows.n, 0, x, 0, p.norm.buffer, d, 1, 0, eps);
        this.attention(rows.n, position);
        k.map('add', x, 0, x, 0, rows.a, 0, d, 1);
        break;
      case 'memory':
        k.rmsNorm(rows.n, 0, x, 0, p.norm.buffer, d, 1, 0, eps);
        this.memory!.step(rows.n, 0, rows.m, 0);
        k.map('add', x, 0, x, 0, rows.m, 0, d, 1);
        break;
      case 'mag':
        k.rmsNorm(rows.n, 0, x, 0, p.norm.buffer, d, 1, 0, eps);
        this.attention(rows.n, position);
        this.memory!.step(rows.n, 0, rows.m, 0);
        this.gate(x);
        break;
      case 'mal':
        k.rmsNorm(rows.n, 0, x, 0, p.norm.buffer, d, 1, 0, eps);
        this.memory!.step(rows.n, 0, rows.m, 0);
        k.map('add', x, 0, x, 0, rows.m, 0, d, 1);
        k.rmsNorm(rows.n, 0, x, 0, p.attentionNorm!.buffer, d, 1, 0, eps);
        this.attention(rows.n, position);
        k.map('add', x, 0, x, 0, rows.a, 0, d, 1);
        break;
      case 'mac':
        this.mac(x, position);
        break;
    }
    // x ← x + SwiGLU(RMSNorm(x))
    const f = config.mlpHidden;
    k.rmsNorm(rows.n, 0, x, 0, p.mlpNorm.buffer, d, 1, 0, eps);
    k.gemv(rows.u, 0, rows.n, 0, p.mlp.wGate.buffer, d, f, false);
    k.gemv(rows.u, f, rows.n, 0, p.mlp.wUp.buffer, d, f, false);
    k.map('siluMul', rows.u, 0, rows.u, 0, rows.u, f, f, 1);
    k.gemv(rows.m, 0, rows.u, 0, p.mlp.wDown.buffer, f, d, false);
    k.map('add', x, 0, x, 0, rows.m, 0, d, 1);
  }

  /**
   * a = Attn(n) W_O at stream position `position` over the cache (the new row appended first:
   * the window's ring, or Transformer++'s pages).
   */
  private attention(n: BackendBuffer, position: number): void {
    const { k } = this.kx;
    const { p, config, rows } = this;
    const { dModel: d, heads: H } = config;
    const dh = d / H;
    const w = p.attention!;
    const cs = ropeTable(position, dh, config.ropeBase, this.cosSin);
    k.gemv(rows.q, 0, n, 0, w.wq.buffer, d, d, false);
    k.rope(rows.q, 0, H, dh, cs);
    k.gemv(rows.kv, 0, n, 0, w.wk.buffer, d, d, false);
    k.rope(rows.kv, 0, H, dh, cs);
    k.gemv(rows.kv, d, n, 0, w.wv.buffer, d, d, false);
    this.cache!.append(rows.kv, 0, rows.kv, d, position);
    if (this.cache instanceof PageCache) this.cache.attend(rows.q, rows.att, position);
    else this.cache!.attend(rows.q, rows.att);
    k.gemv(rows.a, 0, rows.att, 0, w.wo.buffer, d, d, false);
  }

  /** x ← x + gate(a, m) = x + RMSNorm_a(a) ⊙ σ(RMSNorm_b(m)) (SPEC §4). */
  private gate(x: BackendBuffer): void {
    const { k } = this.kx;
    const { p, config, rows } = this;
    const d = config.dModel;
    k.rmsNorm(rows.t, 0, rows.a, 0, p.gate!.normY.buffer, d, 1, 0, config.normEps);
    k.rmsNorm(rows.t, d, rows.m, 0, p.gate!.normM.buffer, d, 1, 0, config.normEps);
    k.map('mulSigmoid', rows.t, 0, rows.t, 0, rows.t, d, d, 1);
    k.map('add', x, 0, x, 0, rows.t, 0, d, 1);
  }

  /** MAC (eq. 21–25) for one token at segment offset j (model.ts macMixer). */
  private mac(x: BackendBuffer, position: number): void {
    const { k } = this.kx;
    const { p, config, rows } = this;
    const { dModel: d, heads: H, segmentSize: S } = config;
    const dh = d / H;
    const j = position % S;
    const cache = this.cache as RowCache;
    if (j === 0) cache.filled = 0; // a new segment
    k.rmsNorm(rows.n, 0, x, 0, p.norm.buffer, d, 1, 0, config.normEps);
    this.memory!.read(rows.n, 0, this.readWeights, this.readTail, rows.h, 0); // h = read(n)
    const w = p.attention!;
    const cs = ropeTable(j, dh, config.ropeBase, this.cosSin); // segment-local: h_j and n_j at j
    k.gemv(rows.kv, 2 * d, rows.h, 0, w.wk.buffer, d, d, false);
    k.rope(rows.kv, 2 * d, H, dh, cs);
    k.gemv(rows.kv, 3 * d, rows.h, 0, w.wv.buffer, d, d, false);
    cache.append(rows.kv, 2 * d, rows.kv, 3 * d, j);
    k.gemv(rows.q, 0, rows.n, 0, w.wq.buffer, d, d, false);
    k.rope(rows.q, 0, H, dh, cs);
    k.gemv(rows.kv, 0, rows.n, 0, w.wk.buffer, d, d, false);
    k.rope(rows.kv, 0, H, dh, cs);
    k.gemv(rows.kv, d, rows.n, 0, w.wv.buffer, d, d, false);
    cache.append(rows.kv, 0, rows.kv, d, j);
    cache.attend(rows.q, rows.att);
    k.gemv(rows.a, 0, rows.att, 0, w.wo.buffer, d, d, false);
    this.memory!.step(rows.a, 0, rows.m, 0); // m = MemoryLayer(a)
    this.gate(x);
    if (j === S - 1) {
      this.memory!.weights.forEach((wt, l) => {
        k.copy(this.readWeights[l]!, 0, wt, 0, this.memorySize(l));
      });
    }
  }

  dispose(): void {
    if (this.cache instanceof RowCache) this.cache.dispose();
    this.memory?.dispose();
    for (const b of this.readWeights) this.kx.backend.release(b);
    if (this.readTail) this.kx.backend.release(this.readTail);
  }
}

// ---- the decoder ----------------------------------------------------------------------------------

/**
 * A decoder for one sequence (batch 1) continuing `state` (a fresh stream when null), or null
 * where the backend has no decoding kernels or the config is beyond them (float64, memory depth
 * > 2, odd head widths): then decode with modelForward. The decoder copies the state; the caller
 * keeps owning `state`.
 *
 * @example
 * const decoder = createDecoder(params, config, stream.state);
 * const logits = decoder?.step(token); // (1, 1, V) for the next position
 */
export function createDecoder(
  params: ModelParams,
  config: TitansConfig,
  state: ModelState,
): TokenDecoder | null {
  if (state.batch !== 1) return null;
  const kx = kernelsFor(params, config);
  if (!kx) return null;
  const d = config.dModel;
  const V = config.vocabSize;
  const rows: Rows = {
    n: buffer(kx, d),
    q: buffer(kx, d),
    kv: buffer(kx, 4 * d),
    att: buffer(kx, d),
    a: buffer(kx, d),
    m: buffer(kx, d),
    h: buffer(kx, d),
    u: buffer(kx, 2 * config.mlpHidden),
    t: buffer(kx, 2 * d),
  };
  const x = buffer(kx, d);
  const blocks = params.blocks.map((p, i) => new BlockDecoder(kx, p, config, blockKind(config, i), rows));
  blocks.forEach((b, i) => {
    b.load(state.blocks[i]!);
  });
  let position = state.position;
  let disposed = false;
  const { k } = kx;
  return {
    step(token: number): Tensor {
      if (disposed) throw new Error('decoder: step after dispose');
      if (!Number.isInteger(token) || token < 0 || token >= V) {
        throw new RangeError(`decoder: token ${token} is outside [0, ${V})`);
      }
      k.copy(x, 0, params.embedding.buffer, token * d, d);
      for (const b of blocks) b.step(x, position);
      k.rmsNorm(rows.n, 0, x, 0, params.finalNorm.buffer, d, 1, 0, config.normEps);
      const logits = buffer(kx, V); // (V)
      if (params.head) k.gemv(logits, 0, rows.n, 0, params.head.buffer, d, V, false);
      else k.gemvRows(logits, rows.n, 0, params.embedding.buffer, V, d);
      position += 1;
      return wrapBuffer(kx.backend, logits, [1, 1, V], 'float32');
    },
    snapshot(): ModelState {
      return noGrad(() => tidy(() => ({ position, batch: 1, blocks: blocks.map((b) => b.snapshot()) })));
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      for (const b of blocks) b.dispose();
      for (const b of [...Object.values(rows), x]) kx.backend.release(b);
    },
  };
}
