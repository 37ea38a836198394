/**
 * Saving and loading parameter records (and optimizer state) as checkpoint directories
 * (Node only): `config.json` + `model.safetensors` (+ `optimizer.safetensors`, `trainer.json`).
 * Tensor names are the dotted paths of the parameter record (`layers.0.memory.wq`).
 */
import { type FloatDType, isFloat } from '../engine/dtype.js';
import { dispose, type Tensor } from '../engine/tensor.js';
import { flattenTree, unflattenInto } from '../engine/tree.js';
import type { OptimizerState } from '../train/optimizer.js';
import {
  CheckpointError,
  type LoadCheckpointOptions,
  loadCheckpoint,
  type SaveCheckpointOptions,
  saveCheckpoint,
} from './checkpoint.js';
import { fromNamedArrays, toNamedArrays } from './tensors.js';

export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_FILE = 'trainer.json';

export interface TensorCheckpoint<P> {
  config: object;
  params: P;
  /** Optimizer state to resume from (saved as optimizer.safetensors + its step in trainer.json). */
  optimizer?: OptimizerState<P>;
  /** Anything else a trainer needs to resume exactly (step, RNG state, data position…). */
  trainer?: Record<string, unknown>;
  metadata?: Record<string, string>;
  /** More JSON files to write in the directory (e.g. tokenizer.json). */
  extraJsonFiles?: Record<string, unknown>;
}

/**
 * Writes a checkpoint directory atomically: a crash mid-save leaves the previous one intact.
 * @example await saveTensorCheckpoint('runs/mac/step-1000', { config, params, optimizer: state });
 */
export async function saveTensorCheckpoint<P>(
  dir: string,
  checkpoint: TensorCheckpoint<P>,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const tensors = await toNamedArrays(flattenTree(checkpoint.params));
  const extraTensorFiles: Record<string, Awaited<ReturnType<typeof toNamedArrays>>> = {};
  const trainer: Record<string, unknown> = { ...(checkpoint.trainer ?? {}) };
  if (checkpoint.optimizer) {
    const flat = {
      ...(checkpoint.optimizer.m ? flattenTree(checkpoint.optimizer.m, 'm') : {}),
      ...(checkpoint.optimizer.v ? flattenTree(checkpoint.optimizer.v, 'v') : {}),
    };
    extraTensorFiles[OPTIMIZER_FILE] = await toNamedArrays(flat);
    trainer.optimizerStep = checkpoint.optimizer.step;
  }
  await saveCheckpoint(
    dir,
    {
      config: checkpoint.config,
      tensors,
      ...(checkpoint.metadata ? { metadata: checkpoint.metadata } : {}),
      extraTensorFiles,
      extraJsonFiles: { ...(checkpoint.extraJsonFiles ?? {}), [TRAINER_FILE]: trainer },
    },
    options,
  );
}

/**
 * Options of `loadTensorCheckpoint`: where the tensors go, and the checks of `loadCheckpoint`.
 *
 * @example
 * const options: LoadTensorCheckpointOptions = { dtype: 'float64', allowNonFinite: true };
 */
export interface LoadTensorCheckpointOptions extends Omit<LoadCheckpointOptions, 'expectTensors'> {
  /** The backend the tensors are uploaded to (default: the default backend). */
  backend?: string;
  /** Float tensors are converted to this dtype (default: the template's). */
  dtype?: FloatDType;
}

/**
 * Loads a checkpoint into the structure of `template` (a parameter record of the right shapes,
 * e.g. freshly initialised): every tensor must be present with the template's shape, and no
 * other tensor may be. Errors name the file and the tensor. `template` may be a function of the
 * checkpoint's config.json, called after that file is checked and before the weights are read
 * (its own template is disposed afterwards); what it throws is an error naming config.json.
 *
 * @example
 * const { params, optimizer } = await loadTensorCheckpoint('runs/ckpt', initModel(config, new Rng(0)));
 */
export async function loadTensorCheckpoint<P>(
  dir: string,
  template: P | ((config: Record<string, unknown>) => P),
  options: LoadTensorCheckpointOptions = {},
): Promise<{
  config: Record<string, unknown>;
  params: P;
  optimizer: OptimizerState<P> | null;
  trainer: Record<string, unknown>;
  extraJsonFiles: Record<string, unknown>;
}> {
  const { backend, dtype, ...checks } = options;
  let built: P | null = null;
  // Shapes, and float tensors must be float in the file (an int tensor would load as wrong values).
  const shapesOf = (t: P) =>
    Object.fromEntries(
      Object.entries(flattenTree(t)).map(([name, x]) => [
        name,
        { shape: [...x.shape], dtype: isFloat(x.dtype) ? ('float' as const) : (x.dtype as 'int32') },
      ]),
    );
  try {
    const loaded = await loadCheckpoint(dir, {
      ...checks,
      expectTensors:
        typeof template === 'function'
          ? (config) => {
              built = (template as (config: Record<string, unknown>) => P)(config);
              return shapesOf(built);
            }
          : shapesOf(template),
    });
    return fromLoaded(dir, loaded, (built ?? template) as P, { backend, dtype });
  } finally {
    if (built !== null) dispose(built);
  }
}

/** The parameter and optimizer records of a loaded checkpoint, in the template's structure. */
function fromLoaded<P>(
  dir: string,
  loaded: Awaited<ReturnType<typeof loadCheckpoint>>,
  template: P,
  options: { backend?: string | undefined; dtype?: FloatDType | undefined },
) {
  const upload = {
    ...(options.backend ? { backend: options.backend } : {}),
    dtype: options.dtype ?? dtypeOf(template),
  };
  const params = unflattenInto(template, fromNamedArrays(loaded.tensors, upload));
  const trainer = (loaded.extraJsonFiles[TRAINER_FILE] as Record<string, unknown> | undefined) ?? {};
  let optimizer: OptimizerState<P> | null = null;
  const optimizerTensors = loaded.extraTensorFiles[OPTIMIZER_FILE];
  if (optimizerTensors) {
    const flat = fromNamedArrays(optimizerTensors, upload);
    const step = trainer.optimizerStep;
    if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) {
      throw new CheckpointError(
        `${dir}/${TRAINER_FILE}`,
        `optimizerStep must be a non-negative integer, got ${step}`,
      );
    }
    try {
      const has = (prefix: string) => Object.keys(flat).some((k) => k.startsWith(`${prefix}.`));
      optimizer = {
        step,
        m: has('m') ? unflattenInto(template, flat, 'm') : null,
        v: has('v') ? unflattenInto(template, flat, 'v') : null,
      };
    } catch (e) {
      throw new CheckpointError(`${dir}/${OPTIMIZER_FILE}`, e instanceof Error ? e.message : String(e));
    }
  }
  return { config: loaded.config, params, optimizer, trainer, extraJsonFiles: loaded.extraJsonFiles };
}

function dtypeOf(template: unknown): FloatDType | undefined {
  const first = Object.values(flattenTree(template)).find((t: Tensor) => isFloat(t.dtype));
  return first?.dtype as FloatDType | undefined;
}
