/**
 * Parity vectors for the PyTorch twin (python/, `npm run test:python`): for every variant, and a
 * few configs that switch on the rarer paths, the reference backend in float64 computes the
 * config, the weights, the tokens, the logits, the loss, the gradient of every parameter, and the
 * logits of the same tokens streamed in pieces. Plus resolved configs (the defaults must agree),
 * a trained BPE tokenizer with encodings, and draws of the seeded generator.
 *
 *   node dist/test/python/vectors.js <out dir>
 *
 * Writes <out>/configs.json, <out>/rng.json, <out>/bpe/{tokenizer.json,encodings.json} and, per
 * case, <out>/cases/<name>.json (config, shapes, pieces, loss) with <out>/cases/<name>.safetensors
 * (F64 `param.<name>`, `grad.<name>`, `logits`, `streamed`; I32 `tokens`, `targets`).
 * Not a test itself: python/tests reads what it writes.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor as TensorClass } from '../../src/engine/tensor.js';
import {
  add,
  concat,
  crossEntropy,
  flattenTree,
  initModel,
  type ModelParams,
  type ModelState,
  modelForward,
  type NamedArray,
  noGrad,
  Rng,
  reshape,
  resolveConfig,
  serializeSafetensors,
  type Tensor,
  type TitansConfigInput,
  tensor,
  tokenTensor,
  trainBpe,
  valueAndGrad,
} from '../../src/index.js';
import { type MemoryOptions, MODEL_VARIANTS, type ModelVariant } from '../../src/models/config.js';
import { tinyConfig } from '../models/util.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: node dist/test/python/vectors.js <out dir>');
  process.exit(2);
}
const B = 2;
const T = 13; // crosses windows (4), MAC segments (4) and memory chunks (2) mid-way
const PIECES = [1, 3, 2, 5, 2]; // streamed in these pieces (sum T), mid-chunk and mid-segment splits

/**
 * The tiny model of test/models (d = 8, 2 layers: windows, segments and chunks of 4, 4 and 2), with
 * some fields and memory fields overridden.
 */
function tinyInput(
  variant: ModelVariant,
  fields: Partial<TitansConfigInput> = {},
  memory: Partial<MemoryOptions> = {},
): TitansConfigInput {
  const base = tinyConfig(variant);
  return { ...base, ...fields, memory: { ...base.memory, ...memory } };
}

const CASES: Record<string, TitansConfigInput> = {
  ...Object.fromEntries(MODEL_VARIANTS.map((v) => [v, tinyInput(v)])),
  // depth 3, GELU, residual memory, untied head, 3 persistent rows primed into chunks of 2
  'mal-deep-gelu': tinyInput(
    'mal',
    { persistentTokens: 3, tieEmbeddings: false },
    { depth: 3, activation: 'gelu', residual: true },
  ),
  // memory in layer 1 only (layer 0 is an SWA block with P), no conv, SPEC's unnormalised v,
  // segments of 5 over chunks of 3 (segment ends fall mid-chunk)
  'mac-mixed': tinyInput(
    'mac',
    { memoryLayers: [1], segmentSize: 5 },
    { chunkSize: 3, convKernel: 0, normalizeValues: false },
  ),
  // kernel-1 conv, no momentum, one memory head wider than the attention heads
  'lmm-conv1': tinyInput('lmm', {}, { heads: 1, headDim: 6, chunkSize: 4, convKernel: 1, momentum: false }),
  // no persistent memory, one chunk longer than the window
  'mag-plain': tinyInput('mag', { persistentTokens: 0 }, { chunkSize: 5, thetaMax: 0.064 }),
};

/** Initial weights with the scales and gate biases moved off their constant initial values. */
function parityParams(input: TitansConfigInput, seed: number): ModelParams {
  const config = resolveConfig(input);
  const params = initModel(config, new Rng(seed), 'float64');
  const rng = new Rng(seed + 100);
  const walk = (node: unknown, path: string): unknown => {
    if (node instanceof TensorClass) {
      if (!/(norm|Norm|normScale|normY|normM|bAlpha|bEta|bTheta)$/.test(path)) return node;
      const shift = path.endsWith('bAlpha') ? 4 : 0; // α ≈ 0.05: forgetting that matters in 13 tokens
      return add(add(node, rng.normal([...node.shape], { std: 0.3, dtype: 'float64' })), shift);
    }
    if (Array.isArray(node)) return node.map((child, i) => walk(child, `${path}.${i}`));
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([k, child]) => [k, walk(child, `${path}.${k}`)]));
    }
    return node;
  };
  return walk(params, '') as ModelParams;
}

async function named(prefix: string, tree: unknown): Promise<Record<string, NamedArray>> {
  const result: Record<string, NamedArray> = {};
  for (const [name, t] of Object.entries(flattenTree(tree))) {
    result[`${prefix}${name}`] = {
      dtype: 'float64',
      shape: [...t.shape],
      data: (await t.data()) as Float64Array,
    };
  }
  return result;
}

async function writeCase(name: string, input: TitansConfigInput, seed: number): Promise<void> {
  const config = resolveConfig(input);
  const params = parityParams(input, seed);
  const rng = new Rng(seed + 7);
  const V = config.vocabSize;
  const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(V));
  targets[5] = -1; // ignored by the loss
  const lossOf = (p: ModelParams): Tensor => {
    const { logits } = modelForward(p, config, tokenTensor(ids, B, T), null, { keepState: false });
    const flat = reshape(logits, [B * T, V]);
    return crossEntropy(flat, tensor(targets, [B * T], { dtype: 'int32' }), { ignoreIndex: -1 });
  };
  const { value, grads } = valueAndGrad(lossOf)(params);
  const logits = noGrad(() => modelForward(params, config, tokenTensor(ids, B, T)).logits);
  const streamed = noGrad(() => {
    let state: ModelState | null = null;
    const parts: Tensor[] = [];
    let start = 0;
    for (const n of PIECES) {
      const piece: number[] = [];
      for (let b = 0; b < B; b++) for (let t = start; t < start + n; t++) piece.push(ids[b * T + t]!);
      const r = modelForward(params, config, tokenTensor(piece, B, n), state);
      parts.push(r.logits);
      state = r.state;
      start += n;
    }
    return concat(parts, 1);
  });
  const arrays: Record<string, NamedArray> = {
    ...(await named('param.', params)),
    ...(await named('grad.', grads)),
    logits: { dtype: 'float64', shape: [B, T, V], data: (await logits.data()) as Float64Array },
    streamed: { dtype: 'float64', shape: [B, T, V], data: (await streamed.data()) as Float64Array },
    tokens: { dtype: 'int32', shape: [B, T], data: ids },
    targets: { dtype: 'int32', shape: [B, T], data: targets },
  };
  writeFileSync(join(out!, 'cases', `${name}.safetensors`), serializeSafetensors(arrays));
  const meta = { name, input, config, batch: B, length: T, pieces: PIECES, loss: value.item() };
  writeFileSync(join(out!, 'cases', `${name}.json`), `${JSON.stringify(meta, null, 2)}\n`);
}

/** Inputs whose resolved configs the twin must reproduce: presets, bare variants, edge defaults. */
function configInputs(): TitansConfigInput[] {
  const presetsDir = new URL('../../../presets/', import.meta.url);
  const inputs: TitansConfigInput[] = [];
  for (const preset of ['tiny', 'small', 'paper-170m']) {
    const model = JSON.parse(readFileSync(new URL(`${preset}.json`, presetsDir), 'utf8')).model;
    for (const variant of MODEL_VARIANTS) inputs.push({ ...model, variant, vocabSize: 256 });
  }
  for (const variant of MODEL_VARIANTS) inputs.push({ variant, vocabSize: 300 });
  inputs.push(
    { variant: 'mag', vocabSize: 300, dModel: 100, heads: 5 },
    { variant: 'mac', vocabSize: 2, dModel: 6, heads: 1 },
    { variant: 'mal', vocabSize: 256, dModel: 64, memory: { heads: 3 } },
    { variant: 'lmm', vocabSize: 256, memory: { chunkSize: 64 } },
    { variant: 'lmm', vocabSize: 256, memory: { chunkSize: 1 } },
    { variant: 'lmm', vocabSize: 256, memory: { chunkSize: 3, thetaMax: 0.5 } },
    { variant: 'mag', vocabSize: 256, memoryLayers: [0], tieEmbeddings: false, ropeBase: 500000 },
    { variant: 'deltanet', vocabSize: 256, memory: { depth: 3, momentum: true } },
    { variant: 'gated-deltanet', vocabSize: 256, memory: { gateBias: { alpha: -3, eta: 1, theta: 2 } } },
  );
  return inputs;
}

async function main(): Promise<void> {
  mkdirSync(join(out!, 'cases'), { recursive: true });
  mkdirSync(join(out!, 'bpe'), { recursive: true });
  const configs = configInputs().map((input) => ({ input, resolved: resolveConfig(input) }));
  writeFileSync(join(out!, 'configs.json'), `${JSON.stringify(configs, null, 2)}\n`);

  const draws = [0, 1, 42, 2 ** 31 + 5, -3].map((seed) => {
    const rng = new Rng(seed);
    const ints = Array.from({ length: 8 }, (_, i) => rng.int(1 + i * 997));
    return { seed, ints, next: rng.next(), state: rng.state() };
  });
  writeFileSync(join(out!, 'rng.json'), `${JSON.stringify(draws, null, 2)}\n`);

  const text = [
    'The Congress shall have power to lay and collect taxes, duties, imposts and excises; ',
    "it's the 1st of 23 ways—naïve café, ünïcödé and 中文 text, emoji 🙂🙂, tabs\tand  spaces\n\n",
    "they'll say we've done what I'd've done; 3.14159 and 2,718 are numbers.  ",
  ]
    .join('')
    .repeat(4);
  const bpe = trainBpe(text, { vocabSize: 340 });
  writeFileSync(join(out!, 'bpe', 'tokenizer.json'), `${JSON.stringify(bpe.toJSON(), null, 2)}\n`);
  const samples = [text.slice(0, 200), 'unseen words: zebra 🙂 quickly', ' \n\t  x', "we've 12345 ..."];
  const encodings = samples.map((s) => ({ text: s, ids: Array.from(bpe.encode(s)) }));
  writeFileSync(
    join(out!, 'bpe', 'encodings.json'),
    `${JSON.stringify({ trainedOn: text, vocabSize: 340, encodings }, null, 2)}\n`,
  );

  let seed = 1;
  for (const [name, input] of Object.entries(CASES)) {
    await writeCase(name, input, seed++);
    process.stderr.write(`vectors: ${name}\n`);
  }
}

await main();
