/**
 * `train`: a model from a preset (or config) and data — text, or a long-context task that makes
 * its own examples — in one call, with progress and cancellation. Browser-safe (presets are read
 * from the package: from disk in Node, fetched in a browser).
 */
import { splitTokens } from '../data/dataset.js';
import { Rng } from '../engine/random.js';
import { dispose } from '../engine/tensor.js';
import { taskBatchSource } from '../eval/longcontext.js';
import type { Task } from '../eval/tasks/types.js';
import { resolveConfig, type TitansConfigInput } from '../models/config.js';
import { initModel } from '../models/model.js';
import { trainBpe } from '../tokenizer/bpe.js';
import { byteTokenizer, type Tokenizer } from '../tokenizer/tokenizer.js';
import {
  initialTrainerState,
  resolveTrainOptions,
  type TrainOptions,
  trainLanguageModel,
} from '../train/trainer.js';
import { TitansModel } from './model.js';
import { importNode, isNode, readPackageFile, useAllCoresByDefault } from './runtime.js';

/** A preset: a model config without its vocabulary, and training defaults (presets/*.json). */
export interface TrainPreset {
  model: Omit<TitansConfigInput, 'vocabSize'> & { vocabSize?: number };
  train?: Partial<TrainOptions>;
}

/** One report of `train`'s progress. */
export interface TrainProgress {
  /** Updates done so far, of `steps`. */
  step: number;
  steps: number;
  /** Training loss of this step (nats per predicted token). */
  loss: number;
  /** Learning rate of this step. */
  lr: number;
  tokensPerSecond: number;
  /** The latest validation loss, when one was measured (every `evalEvery` steps). */
  validationLoss?: number;
}

/** What to train, on what, for how long. Any `TrainOptions` field overrides the preset's. */
export interface TrainRequest extends Partial<TrainOptions> {
  /** A preset name from presets/ ('tiny', 'small', …) or a preset object. Default 'tiny'. */
  preset?: string | TrainPreset;
  /** Model fields over the preset's (e.g. `{ variant: 'mac' }`), or a whole config. */
  config?: Partial<TitansConfigInput>;
  /**
   * Training text, or a long-context task (e.g. `passkeyTask({ digits: 1, cue: 'recall' })`)
   * whose examples are the training rows, with the loss on the answer only.
   */
  data: string | Task;
  /** 'byte' (default), 'bpe:N' (a byte-level BPE of N tokens trained on the text) or a tokenizer. */
  tokenizer?: 'byte' | `bpe:${number}` | Tokenizer;
  /** Fraction of the text held out for validation. Default 0.05. */
  validationFraction?: number;
  onProgress?: (progress: TrainProgress) => void;
  /** Training stops after the current step once `aborted` is true (an `AbortSignal` works). */
  signal?: { readonly aborted: boolean };
  /**
   * Threads that share each batch by rows, each with its own copy of the model (Node only; default
   * 1: every kernel split across the threads instead). Faster for small models on a few cores
   * (BENCHMARKS.md: the small preset's steps 1.01–1.25× on 2 cores, MAC the most); the steps match to
   * float rounding.
   */
  dataParallel?: number;
}

/**
 * Trains a model and resolves to it. Stopped through `signal`, it resolves to the model as
 * trained so far (`onProgress` said how far). In Node it uses every core (see `setThreads`).
 *
 * @example
 * const model = await train({ preset: 'tiny', data: text, steps: 200, onProgress: (p) => console.log(p.step, p.loss) });
 * await model.save('models/tiny');
 * const passkey = await train({ preset: 'tiny', data: passkeyTask({ digits: 1, cue: 'recall' }), seqLen: 128 });
 */
export async function train(request: TrainRequest): Promise<TitansModel> {
  await useAllCoresByDefault();
  const {
    preset = 'tiny',
    config,
    data,
    tokenizer: tokenizerSpec,
    validationFraction,
    onProgress,
    signal,
    dataParallel = 1,
    ...overrides
  } = request;
  if (!Number.isInteger(dataParallel) || dataParallel < 1) {
    throw new RangeError(`train: dataParallel must be an integer ≥ 1, got ${dataParallel}`);
  }
  if (dataParallel > 1 && !isNode) throw new Error('train: dataParallel needs Node (worker threads)');
  const chosen = typeof preset === 'string' ? await loadTrainPreset(preset) : preset;
  const options = resolveTrainOptions({ ...chosen.train, ...overrides, checkpointEvery: 1 });
  const text = typeof data === 'string' ? data : null;
  const tokenizer = text === null ? byteTokenizer() : makeTokenizer(tokenizerSpec, text, validationFraction);
  const modelConfig = resolveConfig({
    ...chosen.model,
    ...config,
    variant: config?.variant ?? chosen.model.variant ?? 'mag',
    vocabSize: config?.vocabSize ?? tokenizer.vocabSize,
  } as TitansConfigInput);
  const source =
    text === null
      ? taskBatchSource(data as Task, tokenizer)
      : splitTokens(tokenizer.encode(text), { validationFraction: validationFraction ?? 0.05 });
  const state = initialTrainerState(initModel(modelConfig, new Rng(options.seed)), options);
  let validationLoss: number | undefined;
  const parallel =
    dataParallel > 1
      ? (
          await importNode<typeof import('../train/data-parallel-node.js')>(
            new URL('../train/data-parallel-node.js', import.meta.url).href,
          )
        ).startDataParallel(modelConfig, state.params, dataParallel)
      : null;
  const final = await trainLanguageModel(
    modelConfig,
    source,
    options,
    state,
    {
      onStep: (r) =>
        onProgress?.({
          step: r.step,
          steps: options.steps,
          loss: r.loss,
          lr: r.lr,
          tokensPerSecond: r.tokensPerSecond,
          ...(validationLoss === undefined ? {} : { validationLoss }),
        }),
      onEval: (_step, loss) => {
        validationLoss = loss;
      },
      // Called after every step (checkpointEvery 1): a turn of the event loop, so that a page stays
      // responsive and an abort can arrive.
      checkpoint: () => new Promise<void>((resolve) => setTimeout(resolve, 0)),
      shouldStop: () => signal?.aborted === true,
    },
    parallel,
  ).finally(() => parallel?.close());
  dispose(final.optimizer);
  return new TitansModel(modelConfig, final.params, tokenizer);
}

function makeTokenizer(
  spec: TrainRequest['tokenizer'],
  text: string,
  validationFraction?: number,
): Tokenizer {
  if (spec === undefined || spec === 'byte') return byteTokenizer();
  if (typeof spec === 'object') return spec;
  const m = /^bpe:(\d+)$/.exec(spec);
  if (!m) throw new RangeError(`train: tokenizer must be 'byte', 'bpe:N' or a Tokenizer, got '${spec}'`);
  // Trained on the training part only, so validation stays unseen.
  const trainPart = text.slice(0, Math.floor(text.length * (1 - (validationFraction ?? 0.05))));
  return trainBpe(trainPart, { vocabSize: Number(m[1]) });
}

/**
 * A preset shipped in presets/ (tiny, small, paper-170m).
 * @example const { model, train } = await loadTrainPreset('tiny');
 */
export async function loadTrainPreset(name: string): Promise<TrainPreset> {
  if (!/^[\w-]+$/.test(name)) throw new RangeError(`train: unknown preset '${name}'`);
  let bytes: Uint8Array;
  try {
    bytes = await readPackageFile(`presets/${name}.json`);
  } catch {
    throw new RangeError(`train: unknown preset '${name}' (the package has tiny, small, paper-170m)`);
  }
  const json = JSON.parse(new TextDecoder().decode(bytes)) as TrainPreset;
  if (typeof json.model !== 'object' || json.model === null)
    throw new Error(`presets/${name}.json: a preset needs a "model" object`);
  return json;
}
