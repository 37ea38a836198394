/**
 * Every model the paper compares, in one code path (SPEC §3–§5): MAC, MAG, MAL, LMM, and the
 * Transformer++, SWA and DeltaNet-like baselines. A model is parameters (a plain record of
 * tensors) plus a config; `modelForward` maps tokens to logits and carries an inference state
 * (plain data) from one call to the next, so a stream can be processed in pieces of any size.
 *
 * Axis legend: B batch, T tokens, d model width, V vocabulary, H heads, dh head width,
 * N_p persistent tokens, C MAC segment length, j position inside the current segment.
 */
import type { FloatDType } from '../engine/dtype.js';
import {
  add,
  attention,
  concat,
  dispose,
  gather,
  matmul,
  ones,
  type PagedCache,
  type Rng,
  rmsNorm,
  split,
  type Tensor,
  tensor,
  tensorLeaves,
} from '../engine/index.js';
import { formatShape } from '../engine/shape.js';
import {
  initialMemoryLayerState,
  initMemoryLayer,
  type MemoryLayerParams,
  type MemoryLayerState,
  memoryLayer,
  memoryReadInputs,
  memoryReadWith,
  primedMemoryLayerState,
} from '../memory/layer.js';
import { isTitans, layerHasMemory, memoryLayerConfigOf, type TitansConfig } from './config.js';
import {
  type AttentionWeights,
  extendCache,
  type GateWeights,
  gateOutputs,
  initAttention,
  initMlp,
  type KeyValueCache,
  type MlpWeights,
  mergeHeads,
  persistentKeysValues,
  positionRange,
  projectKeysValues,
  projectQueries,
  selfAttention,
  swiglu,
} from './layers.js';

/** What a block computes between its pre-norm and its MLP. */
export type BlockKind = 'attention' | 'memory' | 'mag' | 'mal' | 'mac';

/** The block of layer `index` (a layer without memory in a Titans model is an SWA block). */
export function blockKind(config: TitansConfig, index: number): BlockKind {
  if (!layerHasMemory(config, index)) return 'attention';
  switch (config.variant) {
    case 'mac':
    case 'mag':
    case 'mal':
      return config.variant;
    default:
      return 'memory'; // lmm, deltanet, gated-deltanet
  }
}

/** Parameters of one block; absent parts are null. */
export interface BlockParams {
  norm: Tensor; // (d) pre-norm of the mixer (MAL: of the memory sub-layer)
  attentionNorm: Tensor | null; // (d) MAL only: pre-norm of its attention sub-layer
  attention: AttentionWeights | null;
  persistent: Tensor | null; // (N_p, d) persistent memory P (eq. 19)
  memory: MemoryLayerParams | null;
  gate: GateWeights | null; // MAC, MAG
  mlpNorm: Tensor; // (d)
  mlp: MlpWeights;
}

/** A model's parameters: tensor names in checkpoints are the dotted paths of this record. */
export interface ModelParams {
  embedding: Tensor; // (V, d)
  blocks: BlockParams[];
  finalNorm: Tensor; // (d)
  head: Tensor | null; // (d, V); null when tied to the embedding
}

/** MAC's per-layer streaming state besides the memory (SPEC §5: "the partial segment"). */
export interface MacState {
  /** The memory as it stood at the end of the previous segment: what `read` retrieves with. */
  readonly readWeights: readonly Tensor[];
  /** Conv tail of the read queries (the stream of n), (B, K−1, C_mem); null without conv. */
  readonly readTail: Tensor | null;
  /** Keys and values of the rows h_j and n_j of the current segment so far (positions j). */
  readonly segment: KeyValueCache | null;
}

export interface BlockState {
  /** Attention layers: the window-bounded cache, or (Transformer++) the paged full cache. */
  readonly cache: KeyValueCache | PagedCache | null;
  readonly memory: MemoryLayerState | null;
  readonly mac: MacState | null;
}

/** The inference state of a model (SPEC §5): plain data, passed in and returned. */
export interface ModelState {
  /** Tokens consumed so far. */
  readonly position: number;
  readonly batch: number;
  readonly blocks: readonly BlockState[];
}

/**
 * Fresh parameters for `config`; `rng` decides every draw.
 *
 * @example
 * const config = resolveConfig({ variant: 'mag', vocabSize: 256 });
 * const params = initModel(config, new Rng(0));
 */
export function initModel(config: TitansConfig, rng: Rng, dtype: FloatDType = 'float32'): ModelParams {
  const d = config.dModel;
  const outputStd = 1 / Math.sqrt(d) / Math.sqrt(2 * config.layers); // residual branches sum over layers
  const memoryConfig = memoryLayerConfigOf(config);
  const unit = () => ones([d], { dtype });
  const blocks = Array.from({ length: config.layers }, (_, i): BlockParams => {
    const kind = blockKind(config, i);
    const hasAttention = kind !== 'memory';
    const hasMemory = kind !== 'attention';
    return {
      norm: unit(),
      attentionNorm: kind === 'mal' ? unit() : null,
      attention: hasAttention ? initAttention(d, outputStd, rng, dtype) : null,
      persistent:
        config.persistentTokens > 0 && isTitans(config.variant)
          ? rng.normal([config.persistentTokens, d], { std: 1, dtype })
          : null,
      memory: hasMemory ? initMemoryLayer(memoryConfig, rng, dtype) : null,
      gate: kind === 'mac' || kind === 'mag' ? { normY: unit(), normM: unit() } : null,
      mlpNorm: unit(),
      mlp: initMlp(d, config.mlpHidden, outputStd, rng, dtype),
    };
  });
  return {
    embedding: rng.normal([config.vocabSize, d], { std: config.initStd, dtype }),
    blocks,
    finalNorm: unit(),
    head: config.tieEmbeddings ? null : rng.normal([d, config.vocabSize], { std: 1 / Math.sqrt(d), dtype }),
  };
}

/**
 * The state of a fresh stream of `batch` sequences. Memory layers of MAG, MAL and LMM start with
 * the persistent rows already written (SPEC §3), so this is differentiable in the parameters;
 * `modelForward` builds it itself when given no state.
 */
export function initialModelState(params: ModelParams, config: TitansConfig, batch: number): ModelState {
  const memoryConfig = memoryLayerConfigOf(config);
  const blocks = params.blocks.map((p, i): BlockState => {
    const kind = blockKind(config, i);
    if (kind === 'attention') return { cache: null, memory: null, mac: null };
    const memoryParams = p.memory!;
    if (kind === 'mac') {
      const memory = initialMemoryLayerState(memoryParams, memoryConfig, batch); // MAC: P is not written
      return {
        cache: null,
        memory,
        mac: { readWeights: memory.memory.weights, readTail: memory.convTails?.q ?? null, segment: null },
      };
    }
    const memory = p.persistent
      ? primedMemoryLayerState(memoryParams, memoryConfig, p.persistent, batch)
      : initialMemoryLayerState(memoryParams, memoryConfig, batch);
    return { cache: null, memory, mac: null };
  });
  return { position: 0, batch, blocks };
}

export interface ForwardOptions {
  /** Return the state after the last token (default true); false saves work in training. */
  keepState?: boolean;
  /**
   * Called before every memory-layer call with the layer index, the layer's input (B, t, d) and
   * its state: what an inspection of the memory (gates, surprise, recall error) needs.
   */
  onMemoryLayer?: MemoryObserver;
}

/** See `ForwardOptions.onMemoryLayer`. */
export type MemoryObserver = (layer: number, x: Tensor, state: MemoryLayerState) => void;

/**
 * Logits for tokens (B, T) int32, continuing `state` (a fresh stream when omitted):
 * returns logits (B, T, V) and the state after the last token (null when `keepState` is false).
 * Processing a stream in pieces of any sizes gives the outputs of one pass (SPEC §5).
 *
 * @example
 * const { logits, state } = modelForward(params, config, tokens);       // tokens (B, T)
 * const next = modelForward(params, config, moreTokens, state);         // continues the stream
 */
export function modelForward(
  params: ModelParams,
  config: TitansConfig,
  tokens: Tensor,
  state?: ModelState | null,
  options: ForwardOptions = {},
): { logits: Tensor; state: ModelState | null } {
  if (tokens.dtype !== 'int32' || tokens.rank !== 2) {
    throw new RangeError(
      `modelForward: tokens must be int32 (B, T), got ${tokens.dtype} ${formatShape(tokens.shape)}`,
    );
  }
  const [B, T] = [tokens.shape[0]!, tokens.shape[1]!];
  if (T === 0) throw new RangeError('modelForward: needs at least one token');
  if (state && state.batch !== B) {
    throw new RangeError(
      `modelForward: the state is for a batch of ${state.batch}, the tokens have ${B} rows`,
    );
  }
  const keepState = options.keepState ?? true;
  const current = state ?? initialModelState(params, config, B);
  let x = gather(params.embedding, tokens); // (B, T, d)
  const blocks: BlockState[] = [];
  params.blocks.forEach((p, i) => {
    const observe = options.onMemoryLayer;
    const out = runBlock(
      p,
      config,
      blockKind(config, i),
      x,
      current.blocks[i]!,
      current.position,
      keepState,
      observe && ((input, s) => observe(i, input, s)),
    );
    x = out.x;
    blocks.push(out.state);
  });
  const h = rmsNorm(x, params.finalNorm, config.normEps);
  const logits = params.head ? matmul(h, params.head) : matmul(h, params.embedding, { transposeB: true });
  return { logits, state: keepState ? { position: current.position + T, batch: B, blocks } : null };
}

/** One block: its mixer (attention, memory, or both) then x ← x + MLP(RMSNorm(x)). */
function runBlock(
  p: BlockParams,
  config: TitansConfig,
  kind: BlockKind,
  x: Tensor,
  state: BlockState,
  start: number,
  keepState: boolean,
  observe?: (x: Tensor, state: MemoryLayerState) => void,
): { x: Tensor; state: BlockState } {
  const eps = config.normEps;
  const memoryConfig = memoryLayerConfigOf(config);
  const memory = (input: Tensor, s: MemoryLayerState) => {
    observe?.(input, s);
    return memoryLayer(p.memory!, memoryConfig, input, s);
  };
  const swa = (input: Tensor, cache: BlockState['cache'], window: number) =>
    selfAttention(p.attention!, input, {
      heads: config.heads,
      window,
      ropeBase: config.ropeBase,
      start,
      persistent: p.persistent,
      cache,
      keepCache: keepState,
    });
  let next: BlockState;
  switch (kind) {
    case 'attention': {
      // Transformer++ / SWA: x ← x + Attn(RMSNorm(x)).
      const window = config.variant === 'transformer' ? Number.POSITIVE_INFINITY : config.window;
      const a = swa(rmsNorm(x, p.norm, eps), state.cache, window);
      x = add(x, a.y);
      next = { cache: a.cache, memory: null, mac: null };
      break;
    }
    case 'memory': {
      // LMM (and the linear baselines): x ← x + MemoryLayer(RMSNorm(x)).
      const m = memory(rmsNorm(x, p.norm, eps), state.memory!);
      x = add(x, m.y);
      next = { cache: null, memory: m.state, mac: null };
      break;
    }
    case 'mag': {
      // eq. 26–28: n = RMSNorm(x); a = SWA*(n); m = M(n); x ← x + a ⊗ m.
      const n = rmsNorm(x, p.norm, eps);
      const a = swa(n, state.cache, config.window);
      const m = memory(n, state.memory!);
      x = add(x, gateOutputs(p.gate!, a.y, m.y, eps));
      next = { cache: a.cache, memory: m.state, mac: null };
      break;
    }
    case 'mal': {
      // eq. 29–31: x ← x + M(RMSNorm(x)); x ← x + SWA*(RMSNorm(x)).
      const m = memory(rmsNorm(x, p.norm, eps), state.memory!);
      x = add(x, m.y);
      const a = swa(rmsNorm(x, p.attentionNorm!, eps), state.cache, config.window);
      x = add(x, a.y);
      next = { cache: a.cache, memory: m.state, mac: null };
      break;
    }
    case 'mac': {
      const out = macMixer(p, config, x, state, start, memory);
      x = out.x;
      next = out.state;
      break;
    }
  }
  x = add(x, swiglu(p.mlp, rmsNorm(x, p.mlpNorm, eps)));
  return { x, state: next };
}

/**
 * MAC (eq. 21–25), segment by segment: pieces of x that end at segment boundaries (the first may
 * continue a partial segment). For each piece with normalised rows n:
 *   h = read(n) with the memory at the end of the previous segment            (eq. 21)
 *   a = Attn over [P ; h ; n], outputs at the rows of n                       (eq. 22–23)
 *   m = MemoryLayer(a): write a into the memory, retrieve after each write   (eq. 24)
 *   x ← x + a ⊗ m                                                            (eq. 25)
 * What does not depend on the memory — n, its queries, keys and values, the read's queries and
 * output gate, and the gate ⊗ — is computed for every piece at once (row by row, so each piece gets
 * what it would alone) and split by piece; only the chain read → attention → write runs per piece.
 */
function macMixer(
  p: BlockParams,
  config: TitansConfig,
  x: Tensor,
  state: BlockState,
  start: number,
  write: (a: Tensor, s: MemoryLayerState) => { y: Tensor; state: MemoryLayerState },
): { x: Tensor; state: BlockState } {
  const memoryConfig = memoryLayerConfigOf(config);
  const C = config.segmentSize;
  const [B, T] = [x.shape[0]!, x.shape[1]!];
  const w = p.attention!;
  let mac = state.mac!;
  let memory = state.memory!;
  const persistent = p.persistent ? persistentKeysValues(w, p.persistent, config.heads, B) : null;
  const prefix = p.persistent ? p.persistent.shape[0]! : 0;
  const lengths: number[] = [];
  for (let done = 0; done < T; done += lengths[lengths.length - 1]!) {
    lengths.push(Math.min(T - done, C - ((start + done) % C)));
  }
  // Every piece at once: positions are segment-local (h_j and n_j both at j).
  const n = rmsNorm(x, p.norm, config.normEps); // (B, T, d)
  const local = Array.from({ length: T }, (_, i) => (start + i) % C);
  const reads = memoryReadInputs(p.memory!, memoryConfig, n, mac.readTail);
  const nkv = projectKeysValues(w, n, config.heads, local, config.ropeBase);
  const byPiece = (t: Tensor, axis: number) => split(t, lengths, axis);
  const queries = byPiece(projectQueries(w, n, config.heads, local, config.ropeBase), 2); // (B, H, t, dh) each
  const [nks, nvs] = [byPiece(nkv.k, 2), byPiece(nkv.v, 2)];
  const [readQs, readGates] = [byPiece(reads.inputs.q, 2), byPiece(reads.inputs.xg, 1)];
  const as: Tensor[] = [];
  const ms: Tensor[] = [];
  let done = 0;
  lengths.forEach((length, i) => {
    const offset = (start + done) % C; // j of the piece's first token
    const h = memoryReadWith(p.memory!, memoryConfig, { q: readQs[i]!, xg: readGates[i]! }, mac.readWeights);
    const positions = positionRange(offset, length);
    const hkv = projectKeysValues(w, h, config.heads, positions, config.ropeBase);
    // keys [P; h so far; n so far] in one concat (the segment's cache is built apart, below, only
    // when the segment goes on into the next piece)
    const before = [...(persistent ? [persistent] : []), ...(mac.segment ? [mac.segment] : [])];
    const keys = concat([...before.map((c) => c.k), hkv.k, nks[i]!], 2);
    const values = concat([...before.map((c) => c.v), hkv.v, nvs[i]!], 2);
    const keyPositions = [
      ...new Array<number>(prefix).fill(0),
      ...(mac.segment?.positions ?? []),
      ...positions,
      ...positions,
    ];
    const attended = attention(queries[i]!, keys, values, {
      queryPositions: positions,
      keyPositions,
      prefix,
    });
    const a = matmul(mergeHeads(attended), w.wo); // (B, t, d)
    const m = write(a, memory);
    memory = m.state;
    as.push(a);
    ms.push(m.y);
    const segmentDone = offset + length === C;
    mac = segmentDone
      ? { readWeights: memory.memory.weights, readTail: reads.queryTail, segment: null }
      : {
          readWeights: mac.readWeights,
          readTail: reads.queryTail,
          segment: extendCache(
            extendCache(mac.segment, hkv.k, hkv.v, positions, Number.POSITIVE_INFINITY),
            nks[i]!,
            nvs[i]!,
            positions,
            Number.POSITIVE_INFINITY,
          ),
        };
    done += length;
  });
  const joined = (ts: Tensor[]) => (ts.length === 1 ? ts[0]! : concat(ts, 1));
  const mixed = gateOutputs(p.gate!, joined(as), joined(ms), config.normEps);
  return { x: add(x, mixed), state: { cache: null, memory, mac } };
}

/**
 * Frees the tensors of a state that its successor `next` does not share (states share unchanged
 * parts, e.g. MAC's read weights within a segment); never touches the parameters.
 * @example const out = modelForward(params, config, tokens, state); releaseState(state, out.state!);
 */
export function releaseState(old: ModelState, next: ModelState | null): void {
  const live = new Set(next ? tensorLeaves(next) : []);
  dispose(tensorLeaves(old).filter((t) => !live.has(t)));
}

/** Number of scalar parameters (a tensor at two places in the tree counts once). */
export function countParameters(params: ModelParams): number {
  return tensorLeaves(params).reduce((total, t) => total + t.size, 0);
}

/** Tokens as an int32 (B, T) tensor from a flat array. */
export function tokenTensor(ids: ArrayLike<number>, batch: number, length: number): Tensor {
  return tensor(Int32Array.from(ids as ArrayLike<number>), [batch, length], { dtype: 'int32' });
}
