/**
 * `loadModel`: a model from wherever it lives — a checkpoint directory (Node), a URL, the name of
 * a model shipped in this package's models/, or the three files as bytes, text or `File`s (a
 * browser's file input). Browser-safe.
 */
import { Rng } from '../engine/random.js';
import { dispose } from '../engine/tensor.js';
import { flattenTree, unflattenInto } from '../engine/tree.js';
import { describeNonFinite, nonFiniteValues, parseSafetensors } from '../io/safetensors.js';
import { fromNamedArrays } from '../io/tensors.js';
import { resolveConfig, type TitansConfig, type TitansConfigInput } from '../models/config.js';
import { initModel, type ModelParams } from '../models/model.js';
import { byteTokenizer, type Tokenizer, tokenizerFromJSON } from '../tokenizer/tokenizer.js';
import { TitansModel } from './model.js';
import { fetchBytes, importNode, isNode, readPackageFile, useAllCoresByDefault } from './runtime.js';

/** The models shipped in this package's models/ folder (each has a README.md model card). */
export const SHIPPED_MODELS = ['passkey-mag', 'sotu-mag'] as const;

/** Something that can hand over its bytes: a `Blob` or `File`, or a fetch `Response`. */
export interface BytesSource {
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** One checkpoint file's content: bytes, text (the JSON files), a parsed object, or a File/Blob. */
export type FileContent = Uint8Array | ArrayBuffer | string | BytesSource | object;

/** A checkpoint as its files: config.json, model.safetensors and (optionally) tokenizer.json. */
export interface CheckpointFiles {
  config: FileContent;
  weights: FileContent;
  /** tokenizer.json; the byte tokenizer when absent. */
  tokenizer?: FileContent | null;
}

/**
 * Where `loadModel` finds a model:
 * - the name of a shipped model (`'passkey-mag'`, `'sotu-mag'`);
 * - a URL (`'https://…/passkey-mag/'`, or a `URL`): config.json, model.safetensors and
 *   tokenizer.json are fetched from beside it;
 * - in Node, a checkpoint directory (`'runs/small-mag'` or its `checkpoint/` folder);
 * - the files themselves (`{ config, weights, tokenizer }`).
 */
export type ModelSource = string | { href: string } | CheckpointFiles;

/**
 * How `loadModel` checks what it loads.
 *
 * @example
 * await loadModel('runs/odd', { allowNonFinite: true, maxBytes: 16 * 2 ** 30 });
 */
export interface ModelLoadOptions {
  /** Load weights that hold NaN or ±Infinity (refused by default, naming the tensors). */
  allowNonFinite?: boolean;
  /** The limit on the model's estimated memory, checked from config.json before allocating (default 8 GiB). */
  maxBytes?: number;
}

/**
 * Loads a model and its tokenizer. In Node it also starts a worker thread per core (see
 * `setThreads`). Errors name the file and the problem.
 *
 * @example
 * const model = await loadModel('passkey-mag');
 * const run = await loadModel('runs/small-mag');                   // Node: a training run's folder
 * const web = await loadModel(new URL('models/sotu-mag/', location.href));
 * const mine = await loadModel({ config: configFile, weights: weightsFile, tokenizer: tokenizerFile });
 */
export async function loadModel(source: ModelSource, options: ModelLoadOptions = {}): Promise<TitansModel> {
  await useAllCoresByDefault();
  if (typeof source === 'object' && 'weights' in source) return modelFromFiles(source, '<files>', options);
  const text = typeof source === 'string' ? source : source.href;
  const isUrl = /^[a-z][a-z+.-]*:/i.test(text) && !/^[a-z]:[\\/]/i.test(text); // not a Windows drive
  if (isUrl) return modelFromUrl(text, options);
  // In Node a path wins over a shipped model's name; anything path-like is read as a directory
  // (a missing one fails naming its config.json).
  if (isNode && ((await isDirectory(text)) || /[\\/]/.test(text))) return modelFromDirectory(text, options);
  if ((SHIPPED_MODELS as readonly string[]).includes(text)) {
    const file = (name: string) => readPackageFile(`models/${text}/${name}`);
    return modelFromFiles(
      {
        config: await file('config.json'),
        weights: await file('model.safetensors'),
        tokenizer: await file('tokenizer.json'),
      },
      `models/${text}`,
      options,
    );
  }
  if (isNode)
    throw new Error(
      `loadModel: ${text} is neither a checkpoint directory nor a shipped model (${SHIPPED_MODELS.join(', ')})`,
    );
  return modelFromUrl(text, options); // a relative path in a browser is a URL relative to the page
}

async function isDirectory(path: string): Promise<boolean> {
  const { stat } = await importNode<typeof import('node:fs/promises')>('node:fs/promises');
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function modelFromUrl(base: string, options: ModelLoadOptions): Promise<TitansModel> {
  if (isNode && base.startsWith('file:')) {
    const { fileURLToPath } = await importNode<typeof import('node:url')>('node:url');
    return modelFromDirectory(fileURLToPath(base), options);
  }
  const dir = base.endsWith('/') ? base : `${base}/`;
  const at = (name: string) => new URL(name, dir).href;
  const [config, weights] = await Promise.all([
    fetchBytes(at('config.json')),
    fetchBytes(at('model.safetensors')),
  ]);
  const tokenizer = await fetchBytes(at('tokenizer.json')).catch((e: Error) => {
    if (/HTTP 404/.test(e.message)) return null; // no tokenizer.json: the byte tokenizer
    throw e;
  });
  return modelFromFiles({ config, weights, tokenizer }, dir, options);
}

async function modelFromDirectory(path: string, options: ModelLoadOptions): Promise<TitansModel> {
  const { checkpointDir, checkpointTokenizer, loadModelCheckpoint } = await importNode<
    typeof import('../io/model-checkpoint.js')
  >(new URL('../io/model-checkpoint.js', import.meta.url).href);
  // A training run's folder holds its checkpoint in checkpoint/; a save a crash interrupted is
  // recovered first.
  const dir = await checkpointDir(path);
  const checkpoint = await loadModelCheckpoint(dir, options);
  return new TitansModel(checkpoint.config, checkpoint.params, checkpointTokenizer(checkpoint, dir));
}

/** Bytes of one file's content, or its parsed JSON for the JSON files. */
async function asBytes(content: FileContent): Promise<Uint8Array> {
  if (content instanceof Uint8Array) return content;
  if (content instanceof ArrayBuffer) return new Uint8Array(content);
  if (typeof content === 'string') return new TextEncoder().encode(content);
  if (typeof (content as BytesSource).arrayBuffer === 'function')
    return new Uint8Array(await (content as BytesSource).arrayBuffer());
  return new TextEncoder().encode(JSON.stringify(content));
}

async function asJson(content: FileContent, where: string): Promise<unknown> {
  if (
    typeof content === 'object' &&
    !(content instanceof Uint8Array) &&
    !(content instanceof ArrayBuffer) &&
    typeof (content as BytesSource).arrayBuffer !== 'function'
  )
    return content;
  const text = new TextDecoder().decode(await asBytes(content));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * A model from its files' contents (`source` names them in errors).
 * @example const model = await modelFromFiles({ config, weights, tokenizer }, 'upload');
 */
export async function modelFromFiles(
  files: CheckpointFiles,
  source: string,
  options: ModelLoadOptions = {},
): Promise<TitansModel> {
  const configJson = await asJson(files.config, `${source}/config.json`);
  let config: TitansConfig;
  try {
    config = resolveConfig(
      configJson as TitansConfigInput,
      options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes },
    );
  } catch (e) {
    throw new Error(`${source}/config.json: ${(e as Error).message}`);
  }
  let tokenizer: Tokenizer = byteTokenizer();
  if (files.tokenizer === undefined || files.tokenizer === null) {
    if (config.vocabSize !== tokenizer.vocabSize)
      throw new Error(
        `${source}/tokenizer.json: missing, and the model's vocabulary has ${config.vocabSize} tokens, not the byte tokenizer's ${tokenizer.vocabSize}`,
      );
  } else {
    const where = `${source}/tokenizer.json`;
    tokenizer = tokenizerFromJSON(await asJson(files.tokenizer, where), where);
    if (tokenizer.vocabSize > config.vocabSize) {
      throw new Error(
        `${where}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabSize is ${config.vocabSize}`,
      );
    }
  }
  const params = paramsFromSafetensors(
    config,
    await asBytes(files.weights),
    `${source}/model.safetensors`,
    options.allowNonFinite ?? false,
  );
  return new TitansModel(config, params, tokenizer);
}

/** Parameters for `config` from safetensors bytes: every tensor present, with the shape the config implies. */
function paramsFromSafetensors(
  config: TitansConfig,
  bytes: Uint8Array,
  where: string,
  allowNonFinite: boolean,
): ModelParams {
  const { tensors } = parseSafetensors(bytes, where);
  const nonFinite = allowNonFinite ? null : nonFiniteValues(tensors);
  if (nonFinite && nonFinite.count > 0)
    throw new Error(
      `${where}: ${describeNonFinite(nonFinite)}; refusing to load weights that are not finite (the allowNonFinite option loads them anyway)`,
    );
  const template = initModel(config, new Rng(0));
  try {
    const expected = flattenTree(template);
    const problems: string[] = [];
    for (const [name, t] of Object.entries(expected)) {
      const got = tensors[name];
      if (!got) problems.push(`tensor "${name}" is missing (expected shape [${t.shape.join(', ')}])`);
      else if (got.shape.join() !== t.shape.join())
        problems.push(
          `tensor "${name}" has shape [${got.shape.join(', ')}], expected [${t.shape.join(', ')}]`,
        );
    }
    for (const name of Object.keys(tensors))
      if (!(name in expected)) problems.push(`unexpected tensor "${name}"`);
    if (problems.length > 0) throw new Error(`${where}: ${problems.join('; ')}`);
    return unflattenInto(template, fromNamedArrays(tensors, { dtype: 'float32' }));
  } finally {
    dispose(template);
  }
}
