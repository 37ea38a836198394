/**
 * What a model will cost, worked out from its config before anything is allocated, and the
 * limit that refuses absurd configs (a `layers` or `vocabSize` of 10⁹ from a typo or a damaged
 * config.json) with a message naming the field, instead of growing until the machine gives out.
 *
 * The parameter count mirrors `initModel` (models/model.ts) shape by shape; a test holds the two
 * together for every variant.
 */
import { formatBytes } from '../report/progress.js';
import { isTitans, type TitansConfig, usesMemory } from './config.js';

/**
 * The default limit on a model's estimated memory: 8 GiB, which fits a 24 GiB machine with room
 * to spare (the wasm backend's heap stops at 4 GiB in any case). Raise it with the `maxBytes`
 * option or the CLI's `--max-memory`.
 *
 * @example
 * resolveConfig(input, { maxBytes: 2 * DEFAULT_MAX_MODEL_BYTES });
 */
export const DEFAULT_MAX_MODEL_BYTES = 8 * 2 ** 30;

/**
 * Training sizes that add to the estimate: a batch of B sequences of T tokens.
 *
 * @example
 * const training: TrainingShape = { batchSize: 16, seqLen: 256 };
 */
export interface TrainingShape {
  batchSize: number;
  seqLen: number;
}

/**
 * Options of `checkModelSize` (and of `resolveConfig`, which passes them on).
 *
 * @example
 * const options: ModelSizeOptions = { maxBytes: 16 * 2 ** 30, bytesPerValue: 8 };
 */
export interface ModelSizeOptions {
  /** The limit in bytes; default `DEFAULT_MAX_MODEL_BYTES`. `Infinity` switches the check off. */
  maxBytes?: number;
  /** 4 for float32 (the default), 8 for float64. */
  bytesPerValue?: number;
  /** When training: the batch whose logits add to the estimate (and four copies of the weights). */
  training?: TrainingShape;
}

/**
 * The number of parameters `initModel(config)` creates, computed without creating them.
 *
 * @example
 * parameterCount(resolveConfig({ variant: 'mag', vocabSize: 256 })); // same as countParameters(initModel(…))
 */
export function parameterCount(config: TitansConfig): number {
  const d = config.dModel;
  const m = config.memory;
  const C = m.heads * m.headDim;
  const hidden = m.expansion * m.headDim;
  // Memory MLP (H, d_in, d_out) per layer: d_h → hidden → … → d_h, or d_h → d_h when linear.
  const memoryMlp =
    m.depth === 1
      ? m.heads * m.headDim * m.headDim
      : m.heads * (2 * m.headDim * hidden + (m.depth - 2) * hidden * hidden);
  const memoryLayer =
    3 * d * C + // wq, wk, wv
    (m.convKernel > 0 ? 3 * m.convKernel * C : 0) +
    (m.forgetting ? d * m.heads + m.heads : 0) +
    (m.momentum ? d * m.heads + m.heads : 0) +
    d * m.heads +
    m.heads + // wTheta, bTheta
    memoryMlp +
    m.heads * m.headDim + // normScale
    2 * d * C; // wg, wo
  const persistent =
    config.persistentTokens > 0 && isTitans(config.variant) ? config.persistentTokens * d : 0;
  const mlp = d + 3 * d * config.mlpHidden; // mlpNorm, wGate, wUp, wDown
  const memoryLayers = countMemoryLayers(config);
  // Blocks with attention: all but the memory-only blocks of LMM and the DeltaNet-likes.
  const hybrid = config.variant === 'mac' || config.variant === 'mag' || config.variant === 'mal';
  const attentionLayers = config.layers - (hybrid ? 0 : memoryLayers);
  const perLayer =
    config.layers * (d + persistent + mlp) + // norm, persistent P, MLP
    attentionLayers * 4 * d * d + // wq, wk, wv, wo
    memoryLayers * memoryLayer +
    (config.variant === 'mal' ? memoryLayers * d : 0) + // MAL's attention pre-norm
    (config.variant === 'mac' || config.variant === 'mag' ? memoryLayers * 2 * d : 0); // gate norms
  const embedding = config.vocabSize * d;
  return embedding + perLayer + d + (config.tieEmbeddings ? 0 : d * config.vocabSize);
}

/** How many layers hold a memory layer (without visiting each: `layers` may be huge). */
function countMemoryLayers(config: TitansConfig): number {
  if (!usesMemory(config.variant)) return 0;
  return config.memoryLayers === 'all' ? config.layers : new Set(config.memoryLayers).size;
}

/**
 * Estimated bytes: the weights (parameters × bytes per value); when training, four copies of the
 * weights (weights, gradients, AdamW's two moments) plus the batch's logits and their gradient
 * (2 · B · T · V values). A lower bound: activations come on top.
 *
 * @example
 * estimatedBytes(config, { training: { batchSize: 16, seqLen: 256 } });
 */
export function estimatedBytes(config: TitansConfig, options: ModelSizeOptions = {}): number {
  const perValue = options.bytesPerValue ?? 4;
  const weights = parameterCount(config) * perValue;
  if (!options.training) return weights;
  const { batchSize, seqLen } = options.training;
  return 4 * weights + 2 * batchSize * seqLen * config.vocabSize * perValue;
}

/**
 * A config whose estimated memory is past the limit. `field` is the config field (dotted, e.g.
 * `memory.headDim`) or training size (`batchSize`, `seqLen`) that contributes most.
 *
 * @example
 * try { resolveConfig({ variant: 'mag', vocabSize: 256, layers: 1e9 }); }
 * catch (e) { if (e instanceof ModelTooLargeError) e.field; } // 'layers'
 */
export class ModelTooLargeError extends RangeError {
  constructor(
    message: string,
    readonly field: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(message);
    this.name = 'ModelTooLargeError';
  }
}

/**
 * The size fields a config can blow up, each with a usual value (the defaults of a small model):
 * the field whose reset to its usual value shrinks the estimate most is the one to name.
 */
const SIZE_FIELDS: [string, number][] = [
  ['vocabSize', 256],
  ['dModel', 64],
  ['layers', 2],
  ['mlpHidden', 176],
  ['persistentTokens', 4],
  ['memory.heads', 4],
  ['memory.headDim', 16],
  ['memory.depth', 2],
  ['memory.expansion', 4],
  ['memory.convKernel', 4],
];

/** `config` with one size field (dotted) set to at most `usual`. */
function withUsual(config: TitansConfig, field: string, usual: number): TitansConfig {
  if (field.startsWith('memory.')) {
    const key = field.slice(7) as 'heads' | 'headDim' | 'depth' | 'expansion' | 'convKernel';
    return { ...config, memory: { ...config.memory, [key]: Math.min(config.memory[key], usual) } };
  }
  const key = field as 'vocabSize' | 'dModel' | 'layers' | 'mlpHidden' | 'persistentTokens';
  const value = Math.min(config[key], usual);
  return key === 'layers' ? { ...config, layers: value, memoryLayers: 'all' } : { ...config, [key]: value };
}

/**
 * Throws `ModelTooLargeError` when `estimatedBytes` is past `maxBytes`, naming the field that
 * contributes most (the one whose reset to a usual value would shrink the estimate most) and its
 * value.
 *
 * @example
 * checkModelSize(config);                                                // weights only
 * checkModelSize(config, { training: { batchSize: 16, seqLen: 256 } });  // a training run
 */
export function checkModelSize(config: TitansConfig, options: ModelSizeOptions = {}): void {
  const limit = options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  const bytes = estimatedBytes(config, options);
  if (bytes <= limit) return;
  let field = SIZE_FIELDS[0]![0];
  let smallest = Number.POSITIVE_INFINITY;
  for (const [name, usual] of SIZE_FIELDS) {
    const rest = estimatedBytes(withUsual(config, name, usual), options);
    if (rest < smallest) [field, smallest] = [name, rest];
  }
  let value: unknown = field.startsWith('memory.')
    ? config.memory[field.slice(7) as keyof TitansConfig['memory']]
    : config[field as keyof TitansConfig];
  if (options.training) {
    const { batchSize, seqLen } = options.training;
    const withoutBatch = estimatedBytes(config, { ...options, training: { batchSize: 1, seqLen: 1 } });
    if (withoutBatch < smallest) {
      field = batchSize >= seqLen ? 'batchSize' : 'seqLen';
      value = Math.max(batchSize, seqLen);
    }
  }
  const parameters = parameterCount(config);
  const what = options.training
    ? `training it needs at least ${formatBytes(bytes)} (four copies of ${formatCount(parameters)} weights, plus the logits of a batch)`
    : `its ${formatCount(parameters)} parameters take ${formatBytes(bytes)}`;
  throw new ModelTooLargeError(
    `config: ${field} = ${JSON.stringify(value)} makes the model too large: ${what}, more than the limit of ${formatBytes(limit)}. Lower ${field}, or raise the limit (the maxBytes option, --max-memory)`,
    field,
    bytes,
    limit,
  );
}

/** 1.2e13, 345,678 — readable parameter counts. */
function formatCount(n: number): string {
  return n >= 1e9 ? n.toExponential(1) : n.toLocaleString('en-US');
}
