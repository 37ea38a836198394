/**
 * The memory at work, token by token: for every memory layer and head, the gates α (forget),
 * η (momentum) and θ (step size), the surprise ‖∇ℓ‖ of the token — the gradient of the memory's
 * loss ℓ(W; k_t, v_t) = ‖M_W(k_t) − v_t‖² (eq. 12) that writes it — and the recall error
 * ‖M_W(k_t) − v_t‖ before the write; plus the model's own loss per token. What a visualisation
 * of the memory needs (the web demo draws these as strips).
 *
 * In the chunk-parallel memory (SPEC §1) every token of a chunk takes its gradient at the weights
 * the chunk started with, so the text is fed chunk by chunk and each token is measured at exactly
 * the weights that wrote it.
 */
import {
  add,
  concat,
  crossEntropy,
  div,
  keep,
  mul,
  reshape,
  sqrt,
  square,
  stack,
  sum,
  type Tensor,
  tensor,
} from '../engine/index.js';
import { memoryLayerWrites } from '../memory/layer.js';
import { memoryGradientFactors } from '../memory/memory-mlp.js';
import { memoryLayerConfigOf, type TitansConfig } from '../models/config.js';
import type { ModelParams } from '../models/model.js';
import { modelStream } from '../models/stream.js';

/** One memory layer's trace: each field is [head][token]. */
export interface MemoryTrace {
  /** The block (layer index) this memory belongs to. */
  layer: number;
  /** ‖∇_W ℓ(W; k_t, v_t)‖ at the weights that wrote token t: how much token t changes the memory. */
  surprise: number[][];
  /** ‖M_W(k_t) − v_t‖ before token t is written: how badly the memory recalled it. */
  recallError: number[][];
  /** Forget gate α_t ∈ [0, 1): how much of the memory decays at t. */
  alpha: number[][];
  /** Momentum gate η_t: how much past surprise carries on. */
  eta: number[][];
  /** Step size θ_t: how strongly token t is written. */
  theta: number[][];
}

/** What `model.inspect(text)` returns. */
export interface Inspection {
  /** The tokens of the text and their text (a byte of a multi-byte character shows as '' except its last). */
  tokens: { id: number; text: string }[];
  /** −log p(token t | tokens before) in nats; NaN for the first token (nothing predicts it). */
  loss: number[];
  /** One trace per memory layer (none for attention-only models). */
  memory: MemoryTrace[];
  /** The attention window w and the number of blocks: a token sees at most layers·(w−1) tokens back through attention. */
  window: number;
  layers: number;
}

/** Per-row squared norm over the last axis: (…, T, n) → (…, T). */
function rowNormSquared(x: Tensor): Tensor {
  return sum(square(x), -1);
}

/**
 * Traces the memory over `ids` (see the module comment).
 * @example const { memory } = await inspectTokens(params, config, tokenizer.encode(text));
 */
export async function inspectTokens(
  params: ModelParams,
  config: TitansConfig,
  ids: Int32Array,
): Promise<Omit<Inspection, 'tokens'>> {
  const memoryConfig = memoryLayerConfigOf(config);
  const perLayer = new Map<number, Tensor[]>(); // layer → (5, H, t) pieces
  const stream = modelStream(params, config, null, {
    onMemoryLayer: (layer, x, state) => {
      const p = params.blocks[layer]!.memory!;
      const { k, v, alpha, eta, theta } = memoryLayerWrites(p, memoryConfig, x, state);
      const weights = state.memory.chunkStartWeights;
      const { inputs, deltas } = memoryGradientFactors(k, v, weights, memoryConfig);
      // ∇_{W_l} ℓ for token t is the outer product inputs_l[t]ᵀ deltas_l[t]: its Frobenius norm is
      // ‖inputs_l[t]‖·‖deltas_l[t]‖; the layers' squares add.
      let gradient: Tensor | null = null;
      inputs.forEach((input, l) => {
        const term = mul(rowNormSquared(input), rowNormSquared(deltas[l]!));
        gradient = gradient ? add(gradient, term) : term;
      });
      // deltas of the last layer are ∂ℓ/∂M = 2 (M(k) − v).
      const recall = div(sqrt(rowNormSquared(deltas[deltas.length - 1]!)), 2);
      const traced = stack([sqrt(gradient!), recall, alpha, eta, theta], 0); // (5, 1, H, t)
      const [, , H, t] = traced.shape as [number, number, number, number];
      const list = perLayer.get(layer) ?? [];
      list.push(keep(reshape(traced, [5, H, t])));
      perLayer.set(layer, list);
    },
  });
  const losses: number[] = [];
  try {
    // Pieces end where memory chunks end, so every token of a piece shares its chunk's weights.
    const chunk = config.memory.chunkSize;
    const primed = firstMemoryPosition(stream.state, params, config);
    for (let start = 0; start < ids.length; ) {
      const position = primed + start;
      const length = Math.min(chunk - (position % chunk), ids.length - start);
      const piece = ids.subarray(start, start + length);
      const targets = Int32Array.from({ length }, (_, i) =>
        start + i + 1 < ids.length ? ids[start + i + 1]! : -1,
      );
      const loss = await stream.feed(piece, (logits) =>
        crossEntropy(
          reshape(logits, [length, config.vocabSize]),
          tensor(targets, [length], { dtype: 'int32' }),
          {
            reduction: 'none',
            ignoreIndex: -1,
          },
        ),
      );
      losses.push(...loss!);
      start += length;
    }
    const read = async (t: Tensor) => {
      try {
        return Array.from(await t.data());
      } finally {
        t.dispose();
      }
    };
    const nextTokenLoss = losses.slice(0, ids.length - 1);
    const memory: MemoryTrace[] = [];
    for (const [layer, pieces] of [...perLayer].sort((a, b) => a[0] - b[0])) {
      const [, H] = pieces[0]!.shape as [number, number, number];
      const values = await read(concatOrOnly(pieces, 2)); // (5, H, T)
      const T = values.length / (5 * H);
      const field = (f: number) =>
        Array.from({ length: H }, (_, h) => values.slice((f * H + h) * T, (f * H + h + 1) * T));
      memory.push({
        layer,
        surprise: field(0),
        recallError: field(1),
        alpha: field(2),
        eta: field(3),
        theta: field(4),
      });
    }
    return { loss: [Number.NaN, ...nextTokenLoss], memory, window: config.window, layers: config.layers };
  } finally {
    stream.close();
  }
}

/** One tensor of pieces joined along `axis` (the pieces are freed). */
function concatOrOnly(pieces: Tensor[], axis = 0): Tensor {
  if (pieces.length === 1) return pieces[0]!;
  const joined = keep(concat(pieces, axis));
  for (const p of pieces) p.dispose();
  return joined;
}

/** Where the memory's stream position starts: after the persistent tokens written into it (MAG, MAL, LMM). */
function firstMemoryPosition(
  state: ReturnType<typeof modelStream>['state'],
  params: ModelParams,
  config: TitansConfig,
): number {
  if (state) return state.blocks.find((b) => b.memory)?.memory?.memory.position ?? 0;
  // A fresh stream builds its state on the first feed: primed layers start after N_p rows.
  const primed = params.blocks.some((b) => b.persistent && b.memory) && config.variant !== 'mac';
  return primed ? config.persistentTokens : 0;
}
