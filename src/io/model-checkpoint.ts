/**
 * Model checkpoints (Node only): a directory others can read —
 *   config.json          the TitansConfig (src/models/config.ts), plain JSON, with the Hugging
 *                        Face fields model_type "titans" and architectures ["TitansForCausalLM"]
 *   model.safetensors    the parameters, named by their dotted paths (README: "Tensor names")
 *   tokenizer.json       HuggingFace `tokenizers` format (when a tokenizer is saved)
 *   optimizer.safetensors, trainer.json   to resume training exactly (optional)
 *   manifest.json        sizes and SHA-256 of the others, written last
 * Written atomically (checkpoint.ts): a crash mid-save leaves a state that recovers to the
 * newest complete checkpoint.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/random.js';
import { configFile, resolveConfig, type TitansConfig, type TitansConfigInput } from '../models/config.js';
import { initModel, type ModelParams } from '../models/model.js';
import { byteTokenizer, type Tokenizer, tokenizerFromJSON } from '../tokenizer/tokenizer.js';
import { boundHistory, type HistoryRecord } from '../train/history.js';
import type { OptimizerState } from '../train/optimizer.js';
import type { TrainerState } from '../train/trainer.js';
import { CheckpointError, CONFIG_FILE, recoverCheckpoint, type SaveCheckpointOptions } from './checkpoint.js';
import { MANIFEST_FILE } from './manifest.js';
import {
  type LoadTensorCheckpointOptions,
  loadTensorCheckpoint,
  saveTensorCheckpoint,
  TRAINER_FILE,
} from './tensor-checkpoint.js';

export const TOKENIZER_FILE = 'tokenizer.json';

export interface ModelCheckpoint {
  config: TitansConfig;
  params: ModelParams;
  tokenizer: Tokenizer | null;
  /** Optimizer state, to resume training. */
  optimizer?: OptimizerState<ModelParams> | null;
  /** The trainer's own record (step, RNG, history, options…), saved as trainer.json. */
  trainer?: Record<string, unknown>;
}

/**
 * Options of `loadModelCheckpoint`.
 *
 * @example
 * const options: LoadModelOptions = { dtype: 'float64', allowNonFinite: true, maxBytes: 16 * 2 ** 30 };
 */
export interface LoadModelOptions extends Omit<LoadTensorCheckpointOptions, 'backend'> {
  /**
   * The limit on the model's estimated memory, checked from config.json before anything is
   * allocated (default 8 GiB: `DEFAULT_MAX_MODEL_BYTES`). The CLI's `--max-memory`.
   */
  maxBytes?: number;
}

/**
 * Saves a model (and optionally its tokenizer and training state) to `dir`, atomically.
 * @example await saveModelCheckpoint('runs/mag/checkpoint', { config, params, tokenizer });
 */
export async function saveModelCheckpoint(
  dir: string,
  checkpoint: ModelCheckpoint,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  await saveTensorCheckpoint(
    dir,
    {
      config: configFile(checkpoint.config),
      params: checkpoint.params,
      ...(checkpoint.optimizer ? { optimizer: checkpoint.optimizer } : {}),
      ...(checkpoint.trainer ? { trainer: checkpoint.trainer } : {}),
      metadata: { format: 'titans-ts', variant: checkpoint.config.variant },
      ...(checkpoint.tokenizer
        ? { extraJsonFiles: { [TOKENIZER_FILE]: checkpoint.tokenizer.toJSON() } }
        : {}),
    },
    options,
  );
}

/**
 * Loads a model checkpoint, after recovering an interrupted save. The config is validated first
 * (errors name `config.json` and the field), including the model's estimated memory against
 * `maxBytes`, before anything is allocated; every tensor must be present with the shape the config
 * implies, match its checksums and be finite (errors name the file and the tensor). Float32 by
 * default; pass `dtype: 'float64'` for the reference oracle.
 *
 * @example
 * const { config, params, tokenizer } = await loadModelCheckpoint('runs/mag/checkpoint');
 */
export async function loadModelCheckpoint(
  dir: string,
  options: LoadModelOptions = {},
): Promise<Required<ModelCheckpoint>> {
  const { maxBytes, ...rest } = options;
  const dtype = options.dtype ?? 'float32';
  let config: TitansConfig | undefined;
  const loaded = await loadTensorCheckpoint(
    dir,
    (json) => {
      config = resolveConfig(json as unknown as TitansConfigInput, {
        ...(maxBytes === undefined ? {} : { maxBytes }),
        bytesPerValue: dtype === 'float64' ? 8 : 4,
      });
      return initModel(config, new Rng(0), dtype);
    },
    { ...rest, dtype },
  );
  const resolved = config!;
  let tokenizer: Tokenizer | null = null;
  const tokenizerJson = loaded.extraJsonFiles[TOKENIZER_FILE];
  const tokenizerPath = `${dir}/${TOKENIZER_FILE}`;
  if (tokenizerJson !== undefined) {
    try {
      tokenizer = tokenizerFromJSON(tokenizerJson, tokenizerPath);
    } catch (e) {
      throw new CheckpointError(tokenizerPath, e instanceof Error ? e.message : String(e));
    }
    if (tokenizer.vocabSize > resolved.vocabSize) {
      throw new CheckpointError(
        tokenizerPath,
        `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabSize is ${resolved.vocabSize}`,
      );
    }
  }
  return {
    config: resolved,
    params: loaded.params,
    tokenizer,
    optimizer: loaded.optimizer,
    trainer: loaded.trainer,
  };
}

/**
 * The tokenizer to read and write a checkpoint's text with: its tokenizer.json, or the byte
 * tokenizer when there is none and the model's vocabulary is the byte tokenizer's 256. A model
 * with any other vocabulary and no tokenizer.json is an error (a BPE model read as bytes would
 * give wrong text and wrong scores, silently).
 *
 * @example
 * const tok = checkpointTokenizer(await loadModelCheckpoint(dir), dir);
 */
export function checkpointTokenizer(
  checkpoint: Pick<ModelCheckpoint, 'config' | 'tokenizer'>,
  dir: string,
): Tokenizer {
  if (checkpoint.tokenizer) return checkpoint.tokenizer;
  const byte = byteTokenizer();
  if (checkpoint.config.vocabSize === byte.vocabSize) return byte;
  throw new CheckpointError(
    `${dir}/${TOKENIZER_FILE}`,
    `missing, and the model's vocabulary has ${checkpoint.config.vocabSize} tokens, not the byte tokenizer's ${byte.vocabSize}: the tokenizer it was trained with is needed to read and write its text`,
  );
}

/**
 * The checkpoint directory inside a run folder, or the folder itself when it is one — after
 * recovering an interrupted save at either place, so a checkpoint caught between its renames is
 * found (and put back) rather than reported missing.
 *
 * @example
 * await checkpointDir('runs/mag'); // 'runs/mag/checkpoint'
 */
export async function checkpointDir(path: string): Promise<string> {
  await recoverCheckpoint(path);
  if (!existsSync(path))
    throw new Error(`${path}: not found (expected a run folder or a checkpoint directory)`);
  if (existsSync(join(path, CONFIG_FILE)) || existsSync(join(path, MANIFEST_FILE))) return path;
  const inside = join(path, 'checkpoint');
  await recoverCheckpoint(inside);
  return inside;
}

/**
 * Saves a training run's state (parameters, optimizer, step, data-sampler RNG, history) with its
 * config and tokenizer; `extra` goes into trainer.json beside it (options, data source…).
 * @example await saveTrainingCheckpoint('runs/mag/checkpoint', { config, state, tokenizer, extra: { options } });
 */
export async function saveTrainingCheckpoint(
  dir: string,
  c: {
    config: TitansConfig;
    state: TrainerState;
    tokenizer: Tokenizer | null;
    extra?: Record<string, unknown>;
  },
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const { step, rng, history, evals, badSteps } = c.state;
  await saveModelCheckpoint(
    dir,
    {
      config: c.config,
      params: c.state.params,
      tokenizer: c.tokenizer,
      optimizer: c.state.optimizer,
      trainer: { ...c.extra, step, rng, history, evals, badSteps },
    },
    options,
  );
}

/**
 * Loads what `saveTrainingCheckpoint` wrote: the trainer state to continue exactly, and the rest
 * of trainer.json as `extra`. trainer.json is checked (errors name it and the field): the step,
 * the sampler state, the history, and that the step agrees with the optimizer's step, the
 * steps the history counts and the non-finite steps (an edited or damaged file is refused, not
 * trusted). A history written before it was bounded (one record per step) loads too.
 * @example const { config, state, extra } = await loadTrainingCheckpoint('runs/mag/checkpoint');
 */
export async function loadTrainingCheckpoint(
  dir: string,
  options: LoadModelOptions = {},
): Promise<{
  config: TitansConfig;
  tokenizer: Tokenizer | null;
  state: TrainerState;
  extra: Record<string, unknown>;
}> {
  const ckpt = await loadModelCheckpoint(dir, options);
  const { step, rng, history, evals, badSteps, optimizerStep: _, ...extra } = ckpt.trainer;
  if (!ckpt.optimizer) throw new CheckpointError(dir, 'no optimizer state to resume from');
  const state: TrainerState = {
    step: step as number,
    params: ckpt.params,
    optimizer: ckpt.optimizer,
    rng: rng as number[],
    history: (history as HistoryRecord[] | undefined) ?? [],
    evals: (evals as TrainerState['evals'] | undefined) ?? [],
    badSteps: (badSteps as TrainerState['badSteps'] | undefined) ?? [],
  };
  const checked = checkTrainerRecord(`${dir}/${TRAINER_FILE}`, state, ckpt.trainer);
  return { config: ckpt.config, tokenizer: ckpt.tokenizer, state: { ...state, history: checked }, extra };
}

/**
 * Validates trainer.json's fields and that they agree with each other and with the optimizer;
 * returns the history as the trainer keeps it (history.ts): a record without `firstStep` and
 * `steps` (written before the history was bounded) is one step, and a log longer than
 * MAX_HISTORY_RECORDS is merged down to it.
 */
function checkTrainerRecord(
  path: string,
  state: TrainerState,
  raw: Record<string, unknown>,
): HistoryRecord[] {
  const fail = (problem: string): never => {
    throw new CheckpointError(path, problem);
  };
  const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (raw.step === undefined || raw.rng === undefined) {
    fail('needs the step and the data sampler state (rng) to resume');
  }
  if (!isCount(state.step)) fail(`step must be a non-negative integer, got ${JSON.stringify(raw.step)}`);
  if (
    !Array.isArray(state.rng) ||
    state.rng.length !== 4 ||
    !state.rng.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) ||
    state.rng.every((w) => w === 0)
  ) {
    fail(`rng must be four 32-bit unsigned integers, not all zero, got ${JSON.stringify(raw.rng)}`);
  }
  const records = (name: string, value: unknown, fields: Record<string, 'number' | 'string'>) => {
    if (!Array.isArray(value)) fail(`${name} must be an array, got ${JSON.stringify(value)}`);
    (value as unknown[]).forEach((r, i) => {
      const ok =
        typeof r === 'object' &&
        r !== null &&
        Object.entries(fields).every(([k, type]) => typeof (r as Record<string, unknown>)[k] === type);
      if (!ok || !isCount((r as { step: unknown }).step)) {
        fail(`${name}[${i}] must be {${Object.keys(fields).join(', ')}}, got ${JSON.stringify(r)}`);
      }
    });
  };
  records('history', state.history, {
    step: 'number',
    loss: 'number',
    lr: 'number',
    gradNorm: 'number',
    tokensPerSecond: 'number',
  });
  records('evals', state.evals, { step: 'number', loss: 'number' });
  records('badSteps', state.badSteps, { step: 'number', reason: 'string' });
  const history = state.history.map((r, i): HistoryRecord => {
    const { firstStep, steps } = r as Partial<HistoryRecord>;
    if (firstStep === undefined && steps === undefined) return { ...r, firstStep: r.step, steps: 1 };
    if (
      !isCount(firstStep) ||
      !isCount(steps) ||
      firstStep! < 1 ||
      steps! < 1 ||
      firstStep! > r.step ||
      steps! > r.step - firstStep! + 1
    ) {
      fail(
        `history[${i}] must summarise 1 ≤ steps ≤ step − firstStep + 1 updates, firstStep ≥ 1, got ${JSON.stringify(r)}`,
      );
    }
    return r as HistoryRecord;
  });
  history.forEach((r, i) => {
    const previous = history[i - 1];
    if (previous && r.firstStep <= previous.step) {
      fail(
        `history[${i}] starts at step ${r.firstStep}, not after history[${i - 1}] (step ${previous.step})`,
      );
    }
  });
  // Every step is either an applied update (counted in the history, one optimizer step) or a
  // non-finite one (a badSteps record, nothing applied).
  const applied = state.step - state.badSteps.length;
  const counted = history.reduce((n, r) => n + r.steps, 0);
  if (state.optimizer.step !== applied || counted !== applied) {
    fail(
      `step ${state.step} does not agree with the rest of the record: ${state.badSteps.length} non-finite steps, ` +
        `a history of ${counted} steps and optimizer step ${state.optimizer.step} ` +
        `(expected ${applied} of each): the file was edited or damaged`,
    );
  }
  const last = history[history.length - 1];
  if (last && last.step > state.step) fail(`history runs to step ${last.step}, past step ${state.step}`);
  return boundHistory(history);
}
