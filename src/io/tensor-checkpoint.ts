/**
 * Saving and loading parameter records (and optimizer state) as checkpoint directories
 * (Node only): `config.json` + `model.safetensors` (+ `optimizer.safetensors`, `trainer.json`).
 * Tensor names are the dotted paths of the parameter record (`layers.0.memory.wq`).
 */
import { type FloatDType, isFloat } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';
import { flattenTree, unflattenInto } from '../engine/tree.js';
import type { OptimizerState } from '../train/optimizer.js';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
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
export async function saveTensorCheckpoint<P>(dir: string, checkpoint: TensorCheckpoint<P>): Promise<void> {
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
  await saveCheckpoint(dir, {
    config: checkpoint.config,
    tensors,
    ...(checkpoint.metadata ? { metadata: checkpoint.metadata } : {}),
    extraTensorFiles,
    extraJsonFiles: { ...(checkpoint.extraJsonFiles ?? {}), [TRAINER_FILE]: trainer },
  });
}

/**
 * Loads a checkpoint into the structure of `template` (a parameter record of the right shapes,
 * e.g. freshly initialised): every tensor must be present with the template's shape, and no
 * other tensor may be. Errors name the file and the tensor.
 */
export async function loadTensorCheckpoint<P>(
  dir: string,
  template: P,
  options: { backend?: string; dtype?: FloatDType } = {},
): Promise<{
  config: Record<string, unknown>;
  params: P;
  optimizer: OptimizerState<P> | null;
  trainer: Record<string, unknown>;
}> {
  const expected = Object.fromEntries(
    Object.entries(flattenTree(template)).map(([name, t]) => [name, { shape: [...t.shape] }]),
  );
  const loaded = await loadCheckpoint(dir, { expectTensors: expected });
  const upload = { ...options, ...(options.dtype ? {} : { dtype: dtypeOf(template) }) };
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
  return { config: loaded.config, params, optimizer, trainer };
}

function dtypeOf(template: unknown): FloatDType | undefined {
  const first = Object.values(flattenTree(template)).find((t: Tensor) => isFloat(t.dtype));
  return first?.dtype as FloatDType | undefined;
}
