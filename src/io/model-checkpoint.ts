/**
 * Model checkpoints (Node only): a directory others can read —
 *   config.json          the TitansConfig (src/models/config.ts), plain JSON
 *   model.safetensors    the parameters, named by their dotted paths (README: "Tensor names")
 *   tokenizer.json       HuggingFace `tokenizers` format (when a tokenizer is saved)
 *   optimizer.safetensors, trainer.json   to resume training exactly (optional)
 * Written atomically: a crash mid-save leaves the previous checkpoint intact.
 */
import type { FloatDType } from '../engine/dtype.js';
import { Rng } from '../engine/random.js';
import { dispose } from '../engine/tensor.js';
import { resolveConfig, type TitansConfig, type TitansConfigInput } from '../models/config.js';
import { initModel, type ModelParams } from '../models/model.js';
import { type Tokenizer, tokenizerFromJSON } from '../tokenizer/tokenizer.js';
import type { OptimizerState } from '../train/optimizer.js';
import type { TrainerState } from '../train/trainer.js';
import { CheckpointError, CONFIG_FILE } from './checkpoint.js';
import { loadTensorCheckpoint, saveTensorCheckpoint } from './tensor-checkpoint.js';

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
 * Saves a model (and optionally its tokenizer and training state) to `dir`, atomically.
 * @example await saveModelCheckpoint('runs/mag/checkpoint', { config, params, tokenizer });
 */
export async function saveModelCheckpoint(dir: string, checkpoint: ModelCheckpoint): Promise<void> {
  await saveTensorCheckpoint(dir, {
    config: checkpoint.config,
    params: checkpoint.params,
    ...(checkpoint.optimizer ? { optimizer: checkpoint.optimizer } : {}),
    ...(checkpoint.trainer ? { trainer: checkpoint.trainer } : {}),
    metadata: { format: 'titans-ts', variant: checkpoint.config.variant },
    ...(checkpoint.tokenizer ? { extraJsonFiles: { [TOKENIZER_FILE]: checkpoint.tokenizer.toJSON() } } : {}),
  });
}

/**
 * Loads a model checkpoint. The config is validated first (errors name `config.json` and the
 * field); every tensor must be present with the shape the config implies (errors name the file
 * and the tensor). Float32 by default; pass `dtype: 'float64'` for the reference oracle.
 *
 * @example
 * const { config, params, tokenizer } = await loadModelCheckpoint('runs/mag/checkpoint');
 */
export async function loadModelCheckpoint(
  dir: string,
  options: { dtype?: FloatDType } = {},
): Promise<Required<ModelCheckpoint>> {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const configPath = join(dir, CONFIG_FILE);
  let raw: string;
  try {
    raw = await readFile(configPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      configPath,
      code === 'ENOENT' ? 'not found (is this a checkpoint directory?)' : `cannot be read (${code ?? e})`,
    );
  }
  let config: TitansConfig;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new CheckpointError(configPath, `not valid JSON (${(e as Error).message})`);
  }
  try {
    config = resolveConfig(withoutMarkers(json) as TitansConfigInput);
  } catch (e) {
    throw new CheckpointError(configPath, e instanceof Error ? e.message : String(e));
  }
  const dtype = options.dtype ?? 'float32';
  const template = initModel(config, new Rng(0), dtype);
  const loaded = await loadTensorCheckpoint(dir, template, { dtype }).finally(() => dispose(template));
  let tokenizer: Tokenizer | null = null;
  const tokenizerPath = join(dir, TOKENIZER_FILE);
  let tokenizerText: string | null = null;
  try {
    tokenizerText = await readFile(tokenizerPath, 'utf8');
  } catch {
    tokenizerText = null;
  }
  if (tokenizerText !== null) {
    try {
      tokenizer = tokenizerFromJSON(JSON.parse(tokenizerText), tokenizerPath);
    } catch (e) {
      throw new CheckpointError(tokenizerPath, e instanceof Error ? e.message : String(e));
    }
    if (tokenizer.vocabSize > config.vocabSize) {
      throw new CheckpointError(
        tokenizerPath,
        `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabSize is ${config.vocabSize}`,
      );
    }
  }
  return { config, params: loaded.params, tokenizer, optimizer: loaded.optimizer, trainer: loaded.trainer };
}

/** The agreed Hugging Face-style markers ("model_type", "architectures") are accepted and ignored. */
function withoutMarkers(json: unknown): unknown {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return json;
  const { model_type: _type, architectures: _architectures, ...fields } = json as Record<string, unknown>;
  return fields;
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
): Promise<void> {
  const { step, rng, history, evals, badSteps } = c.state;
  await saveModelCheckpoint(dir, {
    config: c.config,
    params: c.state.params,
    tokenizer: c.tokenizer,
    optimizer: c.state.optimizer,
    trainer: { ...c.extra, step, rng, history, evals, badSteps },
  });
}

/**
 * Loads what `saveTrainingCheckpoint` wrote: the trainer state to continue exactly, and the rest
 * of trainer.json as `extra`. Errors name the file when the optimizer state or step is missing.
 * @example const { config, state, extra } = await loadTrainingCheckpoint('runs/mag/checkpoint');
 */
export async function loadTrainingCheckpoint(dir: string): Promise<{
  config: TitansConfig;
  tokenizer: Tokenizer | null;
  state: TrainerState;
  extra: Record<string, unknown>;
}> {
  const ckpt = await loadModelCheckpoint(dir);
  const { step, rng, history, evals, badSteps, ...extra } = ckpt.trainer as Record<string, unknown>;
  if (!ckpt.optimizer) throw new CheckpointError(dir, 'no optimizer state to resume from');
  if (typeof step !== 'number' || !Array.isArray(rng)) {
    throw new CheckpointError(
      `${dir}/trainer.json`,
      'needs the step and the data sampler state (rng) to resume',
    );
  }
  const state: TrainerState = {
    step,
    params: ckpt.params,
    optimizer: ckpt.optimizer,
    rng: rng as number[],
    history: (history as TrainerState['history']) ?? [],
    evals: (evals as TrainerState['evals']) ?? [],
    badSteps: (badSteps as TrainerState['badSteps']) ?? [],
  };
  return { config: ckpt.config, tokenizer: ckpt.tokenizer, state, extra };
}
