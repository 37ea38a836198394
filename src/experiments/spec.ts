/**
 * What an experiment is (Node): the spec saved as experiment.json, built from a preset file in
 * presets/experiments/ (base.json shared, one file per experiment) and the command line's
 * overrides; the task it names; where its needles may go.
 *
 * A preset file holds `task`, `taskOptions` and `models` (name → the fields that differ from
 * base.json's model, usually just the variant), and may override any of base.json's `trainLength`,
 * `steps`, `batchSize`, `lr`, `examples` and `seed`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { maxDepthBeyondWindow } from '../eval/tasks/placement.js';
import type { Task } from '../eval/tasks/types.js';
import type { ModelVariant, TitansConfigInput } from '../models/config.js';
import type { TrainOptions } from '../train/trainer.js';

/** A model config without its vocabulary (experiments use the byte tokenizer's 256). */
export type ExperimentModel = Omit<TitansConfigInput, 'vocabSize'>;

/** Everything that defines an experiment; saved as experiment.json. */
export interface ExperimentSpec {
  /** Task name (see taskByName) and its options, for the record. */
  task: string;
  taskOptions: Record<string, unknown>;
  /** Model name → config (without vocabSize; the byte tokenizer's 256 is used). */
  models: Record<string, ExperimentModel>;
  /** Training sequence length (the task's prompt + answer fill it). */
  trainLength: number;
  /** Context lengths to evaluate at. */
  evalLengths: number[];
  /** Examples per evaluation length. */
  examples: number;
  train: Partial<TrainOptions>;
  seed: number;
  /** Needles are placed at depths in [0, maxNeedleDepth] of the context (keeps them out of the window). */
  maxNeedleDepth: number;
}

export interface ModelResult {
  name: string;
  variant: ModelVariant;
  parameters: number;
  /** Wall-clock seconds of training (of the last session, if it was resumed). */
  trainSeconds: number;
  /** Wall-clock seconds of the evaluation at every length. */
  evalSeconds?: number;
  tokensPerSecond: number;
  finalLoss: number;
  accuracy: Record<string, number>;
}

export interface ExperimentReport {
  task: string;
  chance: number;
  lengths: number[];
  models: ModelResult[];
}

/** An experiment preset file merged over base.json. */
export interface ExperimentPreset {
  name: string;
  description: string;
  task: string;
  taskOptions: Record<string, unknown>;
  /** Name → the full model config (base.json's model with the preset's fields over it). */
  models: Record<string, ExperimentModel>;
  trainLength: number;
  steps: number;
  batchSize: number;
  lr: number;
  examples: number;
  seed: number;
}

/** The experiment presets shipped with the package (dist/src/experiments → ../../../presets/experiments). */
export const EXPERIMENT_PRESETS_DIR = fileURLToPath(
  new URL('../../../presets/experiments/', import.meta.url),
);

/** The names `loadExperimentPreset` accepts (every file but base.json). */
export async function listExperimentPresets(): Promise<string[]> {
  return (await readdir(EXPERIMENT_PRESETS_DIR))
    .filter((f) => f.endsWith('.json') && f !== 'base.json')
    .map((f) => f.slice(0, -5))
    .sort();
}

async function readPresetFile(name: string): Promise<Record<string, unknown>> {
  const path = `${EXPERIMENT_PRESETS_DIR}${name}.json`;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    const known = await listExperimentPresets().catch(() => []);
    throw new Error(`unknown experiment '${name}' (experiments: ${known.join(', ')})`);
  }
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
    return json as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not a JSON object (${(e as Error).message})`);
  }
}

/**
 * Loads presets/experiments/<name>.json over base.json; errors name the file and the field.
 * @example const niah = await loadExperimentPreset('niah'); // niah.models.mag.variant === 'mag'
 */
export async function loadExperimentPreset(name: string): Promise<ExperimentPreset> {
  if (name === 'base' || !/^[\w-]+$/.test(name))
    throw new Error(
      `unknown experiment '${name}' (experiments: ${(await listExperimentPresets()).join(', ')})`,
    );
  const base = await readPresetFile('base');
  const own = await readPresetFile(name);
  const merged = { ...base, ...own };
  const where = `${EXPERIMENT_PRESETS_DIR}${name}.json`;
  const field = <T>(key: string, check: (v: unknown) => boolean, kind: string): T => {
    const v = merged[key];
    if (!check(v)) throw new Error(`${where}: "${key}" must be ${kind}`);
    return v as T;
  };
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const isPositiveInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  const baseModel = field<ExperimentModel>('model', isObject, 'an object');
  const models = field<Record<string, Partial<ExperimentModel>>>('models', isObject, 'an object');
  return {
    name,
    description: typeof own.description === 'string' ? own.description : '',
    task: field<string>('task', (v) => typeof v === 'string', 'a task name'),
    taskOptions: field<Record<string, unknown>>('taskOptions', isObject, 'an object'),
    models: Object.fromEntries(
      Object.entries(models).map(([model, fields]) => [model, mergeModel(baseModel, fields)]),
    ),
    trainLength: field<number>('trainLength', isPositiveInt, 'a positive integer'),
    steps: field<number>('steps', isPositiveInt, 'a positive integer'),
    batchSize: field<number>('batchSize', isPositiveInt, 'a positive integer'),
    lr: field<number>('lr', (v) => typeof v === 'number' && v > 0, 'a positive number'),
    examples: field<number>('examples', isPositiveInt, 'a positive integer'),
    seed: field<number>('seed', (v) => Number.isInteger(v) && (v as number) >= 0, 'an integer ≥ 0'),
  };
}

/** `fields` over `base`, the memory options merged one level down. */
function mergeModel(base: ExperimentModel, fields: Partial<ExperimentModel>): ExperimentModel {
  const merged = { ...base, ...fields } as ExperimentModel;
  if (fields.memory) merged.memory = { ...base.memory, ...fields.memory };
  return merged;
}

/**
 * The spec of an experiment: evaluated at 1×, 2× and 4× its training length, every needle kept
 * beyond what the attention layers can reach. Key order is part of the format: a folder resumes
 * only when its experiment.json reads the same.
 *
 * @example
 * const spec = experimentSpec(await loadExperimentPreset('niah'), { steps: 100 });
 */
export function experimentSpec(
  preset: ExperimentPreset,
  o: {
    steps?: number;
    batchSize?: number;
    lr?: number;
    trainLength?: number;
    examples?: number;
    seed?: number;
    taskOptions?: Record<string, unknown>;
    models?: Record<string, ExperimentModel>;
    /** Warm-up steps (default min(50, steps)). */
    warmupSteps?: number;
  } = {},
): ExperimentSpec {
  const steps = o.steps ?? preset.steps;
  const trainLength = o.trainLength ?? preset.trainLength;
  const models = o.models ?? preset.models;
  const first = Object.values(models)[0] ?? {};
  return {
    task: preset.task,
    taskOptions: o.taskOptions ?? preset.taskOptions,
    models,
    trainLength,
    evalLengths: [trainLength, 2 * trainLength, 4 * trainLength],
    examples: o.examples ?? preset.examples,
    train: {
      steps,
      batchSize: o.batchSize ?? preset.batchSize,
      lr: o.lr ?? preset.lr,
      warmupSteps: o.warmupSteps ?? Math.min(50, steps),
      checkpointEvery: Math.max(1, Math.floor(steps / 4)),
    },
    seed: o.seed ?? preset.seed,
    maxNeedleDepth: maxDepthBeyondWindow(trainLength, first),
  };
}

export { maxDepthBeyondWindow, shallowNeedles } from '../eval/tasks/placement.js';

/** Options of the tasks an experiment or `titans eval` can build by name. */
export interface TaskOptions {
  digits?: number;
  cue?: 'question' | 'recall';
  noise?: 'filler' | 'text' | 'mixed';
  layout?: 'power-law' | 'block';
}

/**
 * Builds a task by name, loading the haystack corpus (builtin:sotu) when the task hides its facts
 * in natural text.
 * @example const task = await loadTask('niah1', { digits: 1, cue: 'recall', noise: 'mixed' });
 */
export async function loadTask(name: string, options: TaskOptions = {}): Promise<Task> {
  const { loadText } = await import('../data/corpus.js');
  const tasks = await import('../eval/tasks/index.js');
  const { layout, ...passkey } = options;
  const haystack = async () => tasks.Haystack.fromText((await loadText('builtin:sotu')).text);
  if (name === 'niah1' && passkey.noise !== undefined && passkey.noise !== 'filler')
    return tasks.passkeyTask({ ...passkey, haystack: await haystack() });
  if (name === 'niah1' && (passkey.digits !== undefined || passkey.cue !== undefined))
    return tasks.passkeyTask(passkey);
  if (name === 'mqar' && layout !== undefined) return tasks.mqarTask({ layout });
  const needsText = name !== 'niah1' && name !== 'mqar';
  return tasks.taskByName(
    name,
    needsText ? await haystack() : tasks.Haystack.fromText('unused haystack text'),
  );
}

/** The task an experiment names (`spec.task` with `spec.taskOptions`). */
export function taskOfSpec(spec: ExperimentSpec): Promise<Task> {
  return loadTask(spec.task, spec.taskOptions as TaskOptions);
}
