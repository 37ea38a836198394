/**
 * One typed configuration for every model the paper compares (SPEC §3–§4): the four Titans
 * variants and the baselines. A config is plain JSON (it is saved as `config.json` beside the
 * weights); `resolveConfig` fills defaults and `validateConfig` names the first bad field.
 */
import {
  defaultMemoryLayerConfig,
  type MemoryLayerConfig,
  validateMemoryLayerConfig,
} from '../memory/layer.js';
import { checkModelSize, type ModelSizeOptions } from './resources.js';

/**
 * - `mac` memory as context, `mag` memory as gate, `mal` memory as layer, `lmm` memory alone (SPEC §4);
 * - `transformer` Transformer++ (full causal attention), `swa` sliding-window Transformer;
 * - `deltanet` / `gated-deltanet`: linear memories through the memory core (L_M = 1, η = 0, α = 0 / learned α).
 */
export type ModelVariant =
  | 'mac'
  | 'mag'
  | 'mal'
  | 'lmm'
  | 'transformer'
  | 'swa'
  | 'deltanet'
  | 'gated-deltanet';

export const MODEL_VARIANTS: readonly ModelVariant[] = [
  'mac',
  'mag',
  'mal',
  'lmm',
  'transformer',
  'swa',
  'deltanet',
  'gated-deltanet',
];

/** The memory-layer fields a model config may set; dModel comes from the model. */
export type MemoryOptions = Omit<MemoryLayerConfig, 'dModel'>;

/** A model's configuration. Every field except `variant` and `vocabSize` has a default. */
export interface TitansConfig {
  /** Which model (see ModelVariant). */
  variant: ModelVariant;
  /** Tokens in the vocabulary (256 for the byte tokenizer). */
  vocabSize: number;
  /** Model width d. Default 64. */
  dModel: number;
  /** Number of blocks. Default 2. */
  layers: number;
  /** Attention heads; d must divide evenly. Default 4. */
  heads: number;
  /** Hidden width of the SwiGLU MLP. Default: the multiple of 8 nearest to 8d/3 (same parameters as a 4d GELU MLP). */
  mlpHidden: number;
  /** Sliding window w of SWA, MAG and MAL (a token sees positions t−w+1 … t). Default 64. */
  window: number;
  /** MAC segment length C (attention runs within a segment). Default 64. */
  segmentSize: number;
  /**
   * Persistent memory tokens N_p per block of a Titans variant (eq. 19); 0 switches them off.
   * The baselines have none, as in the paper. Default 4.
   */
  persistentTokens: number;
  /** Which layers hold a memory: 'all' or layer indices; the others are SWA blocks. Default 'all'. */
  memoryLayers: 'all' | number[];
  /** The memory layer (SPEC §2); heads and head width default to the attention's. */
  memory: MemoryOptions;
  /** Share the embedding with the output head (logits = x Eᵀ). Default true. */
  tieEmbeddings: boolean;
  /** RoPE base. Default 10000. */
  ropeBase: number;
  /** ε of every RMSNorm. Default 1e−6. */
  normEps: number;
  /** Standard deviation of the embedding initialisation. Default 0.02. */
  initStd: number;
}

/** A config as written by a user or a preset file: everything but the variant and vocabulary is optional. */
export type TitansConfigInput = Partial<Omit<TitansConfig, 'memory'>> &
  Pick<TitansConfig, 'variant' | 'vocabSize'> & { memory?: Partial<MemoryOptions> };

/** config.json's `model_type` (as HuggingFace config files name their model family). */
export const MODEL_TYPE = 'titans';

/** The tags config.json carries beside the config, for tools that read HuggingFace-style configs. */
export interface ConfigFileTags {
  model_type?: string;
  architectures?: string[];
}

/**
 * The object saved as config.json: the config with `model_type: "titans"` and
 * `architectures: ["TitansForCausalLM"]` first. `resolveConfig` accepts (and drops) both, and
 * files without them still load.
 *
 * @example
 * JSON.stringify(configFile(config), null, 2); // {"model_type": "titans", "architectures": [...], "variant": ...}
 */
export function configFile(config: TitansConfig): TitansConfig & Required<ConfigFileTags> {
  return { model_type: MODEL_TYPE, architectures: ['TitansForCausalLM'], ...config };
}

/** Whether a variant is one of the four Titans models (MAC, MAG, MAL, LMM): they have persistent memory. */
export function isTitans(variant: ModelVariant): boolean {
  return variant === 'mac' || variant === 'mag' || variant === 'mal' || variant === 'lmm';
}

/** Whether a variant's blocks hold a memory layer. */
export function usesMemory(variant: ModelVariant): boolean {
  return variant !== 'transformer' && variant !== 'swa';
}

/** The memory switches a baseline imposes (SPEC §4: DeltaNet-like L_M = 1, η = 0, α = 0). */
function baselineMemory(variant: ModelVariant): Partial<MemoryOptions> {
  if (variant === 'deltanet') return { depth: 1, momentum: false, forgetting: false };
  if (variant === 'gated-deltanet') return { depth: 1, momentum: false, forgetting: true };
  return {};
}

/**
 * Fills every default and validates. Throws a RangeError naming the first bad field, and a
 * `ModelTooLargeError` (also a RangeError, naming the field) when the model's estimated memory is
 * past `options.maxBytes` (default 8 GiB, see models/resources.ts) — checked before anything is
 * allocated. The Hugging Face fields `model_type` and `architectures` are accepted and ignored.
 *
 * @example
 * const config = resolveConfig({ variant: 'mag', vocabSize: 256, dModel: 64, layers: 2 });
 */
export function resolveConfig(input: TitansConfigInput, options: ModelSizeOptions = {}): TitansConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new TypeError('config: expected an object');
  const { model_type: modelType, architectures, ...fields } = input as TitansConfigInput & ConfigFileTags;
  if (modelType !== undefined && modelType !== MODEL_TYPE)
    throw new RangeError(`config: model_type is '${modelType}', not '${MODEL_TYPE}'`);
  if (architectures !== undefined && !Array.isArray(architectures))
    throw new RangeError('config: architectures must be an array of names');
  input = fields;
  for (const key of Object.keys(input)) {
    if (!KNOWN_FIELDS.has(key)) throw new RangeError(`config: unknown field '${key}'`);
  }
  if (
    input.memory !== undefined &&
    (typeof input.memory !== 'object' || input.memory === null || Array.isArray(input.memory))
  )
    throw new RangeError(
      `config: memory must be an object of memory-layer fields, got ${JSON.stringify(input.memory)}`,
    );
  const memoryFields = Object.keys(defaultMemoryLayerConfig({ dModel: 8, heads: 1 }));
  for (const key of Object.keys(input.memory ?? {})) {
    if (!memoryFields.includes(key) || key === 'dModel')
      throw new RangeError(`config: unknown field 'memory.${key}'`);
  }
  const dModel = input.dModel ?? 64;
  const heads = input.heads ?? 4;
  const memoryHeads = input.memory?.heads ?? heads;
  const memory = defaultMemoryLayerConfig({
    dModel,
    heads: memoryHeads,
    headDim: Math.max(1, Math.floor(dModel / memoryHeads)),
    ...input.memory,
    ...gateBiasOf(input.memory?.gateBias),
    ...baselineMemory(input.variant),
  });
  const { dModel: _omit, ...memoryOptions } = memory;
  const config: TitansConfig = {
    variant: input.variant,
    vocabSize: input.vocabSize,
    dModel,
    layers: input.layers ?? 2,
    heads,
    mlpHidden: input.mlpHidden ?? Math.max(8, Math.round((8 * dModel) / 3 / 8) * 8),
    window: input.window ?? 64,
    segmentSize: input.segmentSize ?? 64,
    persistentTokens: input.persistentTokens ?? 4,
    memoryLayers: input.memoryLayers ?? 'all',
    memory: memoryOptions,
    tieEmbeddings: input.tieEmbeddings ?? true,
    ropeBase: input.ropeBase ?? 10000,
    normEps: input.normEps ?? 1e-6,
    initStd: input.initStd ?? 0.02,
  };
  validateConfig(config);
  checkModelSize(config, options);
  return config;
}

/** A partial `memory.gateBias` completed with the defaults (nothing when it is not given). */
function gateBiasOf(given: unknown): Partial<MemoryOptions> {
  if (given === undefined) return {};
  const defaults = defaultMemoryLayerConfig({ dModel: 8, heads: 1 }).gateBias;
  if (typeof given !== 'object' || given === null || Array.isArray(given))
    throw new RangeError(`config: memory.gateBias must be an object, got ${JSON.stringify(given)}`);
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(defaults, key)) throw new RangeError(`config: unknown field 'memory.gateBias.${key}'`);
  }
  return { gateBias: { ...defaults, ...given } };
}

const KNOWN_FIELDS = new Set<string>([
  'variant',
  'vocabSize',
  'dModel',
  'layers',
  'heads',
  'mlpHidden',
  'window',
  'segmentSize',
  'persistentTokens',
  'memoryLayers',
  'memory',
  'tieEmbeddings',
  'ropeBase',
  'normEps',
  'initStd',
]);

/** Throws naming the first bad field of a complete config (also catches unknown fields: typos). */
export function validateConfig(c: TitansConfig): void {
  for (const key of Object.keys(c)) {
    if (!KNOWN_FIELDS.has(key)) throw new RangeError(`config: unknown field '${key}'`);
  }
  if (!MODEL_VARIANTS.includes(c.variant)) {
    throw new RangeError(`config: variant must be one of ${MODEL_VARIANTS.join(', ')}, got '${c.variant}'`);
  }
  const int = (name: string, v: unknown, min: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new RangeError(`config: ${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
  };
  int('vocabSize', c.vocabSize, 2);
  int('dModel', c.dModel, 1);
  int('layers', c.layers, 1);
  int('heads', c.heads, 1);
  int('mlpHidden', c.mlpHidden, 1);
  int('window', c.window, 1);
  int('segmentSize', c.segmentSize, 1);
  int('persistentTokens', c.persistentTokens, 0);
  if (c.dModel % c.heads !== 0) {
    throw new RangeError(`config: dModel (${c.dModel}) must be divisible by heads (${c.heads})`);
  }
  if ((c.dModel / c.heads) % 2 !== 0) {
    throw new RangeError(
      `config: the attention head width dModel/heads = ${c.dModel / c.heads} must be even (RoPE)`,
    );
  }
  if (c.memoryLayers !== 'all') {
    if (!Array.isArray(c.memoryLayers))
      throw new RangeError(`config: memoryLayers must be 'all' or an array of layer indices`);
    for (const i of c.memoryLayers) {
      if (!Number.isInteger(i) || i < 0 || i >= c.layers) {
        throw new RangeError(
          `config: memoryLayers has ${JSON.stringify(i)}, not a layer index in [0, ${c.layers})`,
        );
      }
    }
  }
  if (typeof c.tieEmbeddings !== 'boolean')
    throw new RangeError('config: tieEmbeddings must be true or false');
  for (const [name, v] of [
    ['ropeBase', c.ropeBase],
    ['normEps', c.normEps],
    ['initStd', c.initStd],
  ] as const) {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`config: ${name} must be a positive number, got ${JSON.stringify(v)}`);
    }
  }
  if (typeof c.memory !== 'object' || c.memory === null)
    throw new RangeError('config: memory must be an object');
  validateMemoryLayerConfig({ ...c.memory, dModel: c.dModel }, 'config.memory');
}

/** Whether layer `index` holds a memory layer. */
export function layerHasMemory(config: TitansConfig, index: number): boolean {
  if (!usesMemory(config.variant)) return false;
  return config.memoryLayers === 'all' || config.memoryLayers.includes(index);
}

/** The full memory-layer config of a model's memory layers. */
export function memoryLayerConfigOf(config: TitansConfig): MemoryLayerConfig {
  return { ...config.memory, dModel: config.dModel };
}
