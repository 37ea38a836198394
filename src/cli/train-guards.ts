/**
 * What `titans train` checks before it starts work, and how it stops: `--set` against the config
 * schema, the model config and its memory estimate (errors naming the flag or file at fault),
 * `--resume` against the checkpoint, and the SIGINT / SIGTERM handlers that end a run with a
 * checkpoint. The command itself is in train.ts.
 */

import { dispose } from '../engine/index.js';
import type { loadTrainingCheckpoint } from '../io/model-checkpoint.js';
import { resolveConfig, type TitansConfig, type TitansConfigInput } from '../models/config.js';
import { checkModelSize, ModelTooLargeError } from '../models/resources.js';
import type { TrainOptions } from '../train/trainer.js';
import type { Preset } from './presets.js';

/** The flags of `titans train` (undefined: not given). */
export interface TrainCommandOptions {
  preset?: string;
  variant?: string;
  data?: string;
  out?: string;
  tokenizer?: string;
  steps?: number;
  batchSize?: number;
  seqLen?: number;
  accumulate?: number;
  lr?: number;
  seed?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  threads?: number;
  /** Threads that share each batch by rows, each with its own copy of the model (--data-parallel). */
  dataParallel?: number;
  set: string[];
  resume?: boolean;
  /** Load a checkpoint whose weights are not all finite (--allow-nonfinite). */
  allowNonfinite?: boolean;
  /** The memory limit in bytes (--max-memory); default 8 GiB. */
  maxMemory?: number;
}

/**
 * A command that ended because of a signal, after saving: main() prints the message and exits
 * with `exitCode` (130 for SIGINT, 143 for SIGTERM, as a shell reports a signal's death).
 *
 * @example
 * throw new InterruptedError('interrupted at step 12', 130);
 */
export class InterruptedError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'InterruptedError';
  }
}

/** Keys that could reach an object's prototype through a dotted path. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Applies `key=value` overrides (dotted paths, JSON values, else the text itself) to a config
 * object, checked against `schema` (a complete config, e.g. the resolved defaults): every key of
 * the path must be a field there, a field that is an object there takes only an object (merged
 * field by field, so `memory={"thetaMax":0.05}` keeps the other memory settings) and a scalar
 * field takes no sub-path; `__proto__`, `constructor` and `prototype` are refused. Errors start
 * with `--set <setting>`.
 *
 * @example
 * applySettings({ variant: 'mag', memory: { heads: 2 } }, ['memory.thetaMax=0.05'], schema);
 * // { variant: 'mag', memory: { heads: 2, thetaMax: 0.05 } }
 */
export function applySettings(
  base: Record<string, unknown>,
  settings: readonly string[],
  schema: Record<string, unknown>,
): Record<string, unknown> {
  const out = structuredClone(base);
  for (const setting of settings) {
    const fail = (problem: string): never => {
      throw new Error(`--set ${setting}: ${problem}`);
    };
    const eq = setting.indexOf('=');
    if (eq < 1) fail('expected key=value, e.g. memory.thetaMax=0.05');
    const path = setting.slice(0, eq).split('.');
    const raw = setting.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    let node = out;
    let shape: unknown = schema;
    for (let i = 0; i < path.length; i++) {
      const key = path[i]!;
      const here = path.slice(0, i + 1).join('.');
      if (FORBIDDEN_KEYS.has(key)) fail(`'${key}' is not a config field`);
      if (!isRecord(shape) || !Object.hasOwn(shape, key)) {
        const known = isRecord(shape) ? Object.keys(shape).join(', ') : '';
        fail(
          i === 0 || isRecord(shape)
            ? `'${here}' is not a config field (fields here: ${known})`
            : `'${path.slice(0, i).join('.')}' is not an object`,
        );
      }
      shape = (shape as Record<string, unknown>)[key];
      if (i === path.length - 1) {
        if (isRecord(shape)) {
          if (!isRecord(value)) {
            fail(
              `'${here}' is an object of settings; set one of its fields (e.g. ${here}.${Object.keys(shape)[0]}=…) or give a JSON object`,
            );
          }
          const current = isRecord(node[key]) ? (node[key] as Record<string, unknown>) : {};
          const merged = applySettings(
            current,
            Object.entries(value as Record<string, unknown>).map(([k, v]) => `${k}=${JSON.stringify(v)}`),
            shape,
          );
          node[key] = merged;
        } else {
          if (isRecord(value)) fail(`'${here}' takes a single value, not an object`);
          node[key] = value;
        }
      } else {
        if (!isRecord(shape)) fail(`'${here}' is a single value, so '${path.join('.')}' does not exist`);
        if (!isRecord(node[key])) node[key] = {};
        node = node[key] as Record<string, unknown>;
      }
    }
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A complete config of `variant`: the shape `--set` paths are checked against. */
function configSchema(variant: string): Record<string, unknown> {
  const defaults = resolveConfig({ variant: variant as TitansConfig['variant'], vocabSize: 256 });
  return defaults as unknown as Record<string, unknown>;
}

/**
 * SIGINT and SIGTERM handlers for a training run: the first signal asks the loop to stop (it
 * saves a checkpoint after the current step); any further one only says that the save is under
 * way and will finish — the process never exits halfway through a save. `release` restores the
 * default handlers; after a signal they are kept until the process exits.
 */
export function stopOnSignals(say: (line: string) => void) {
  let received: NodeJS.Signals | null = null;
  let saving = false;
  let stopped = false;
  const handler = (signal: NodeJS.Signals) => {
    if (received === null) {
      received = signal;
      say(
        `${signal}: stopping after the current step with a checkpoint (further ${signal === 'SIGINT' ? 'Ctrl-C' : 'signals'} wait for it)`,
      );
    } else {
      say(
        saving
          ? `${signal}: the checkpoint is being written; exiting as soon as it is complete`
          : stopped
            ? `${signal}: the checkpoint is saved; exiting`
            : `${signal}: already stopping; the checkpoint follows the current step`,
      );
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    get received() {
      return received;
    },
    async whileSaving(save: () => Promise<void>) {
      saving = true;
      try {
        await save();
      } finally {
        saving = false;
        if (received !== null) stopped = true;
      }
    },
    release() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * The model config of a new run: the preset's model, the variant and vocabulary, then --set,
 * validated (with the training memory estimate). Errors name --set when a setting is at fault,
 * else the preset file.
 */
export function resolvedModelConfig(
  preset: Preset,
  variant: string,
  vocabSize: number,
  o: TrainCommandOptions,
  options: TrainOptions,
): TitansConfig {
  const input = applySettings({ ...preset.model, variant, vocabSize }, o.set, configSchema(variant));
  let config: TitansConfig;
  try {
    config = resolveConfig(input as unknown as TitansConfigInput, { maxBytes: Number.POSITIVE_INFINITY });
  } catch (error) {
    throw new Error(`${blame(error, o, `preset ${preset.name}`)}${(error as Error).message}`);
  }
  checkTrainingSize(config, options, o, `preset ${preset.name}`);
  return config;
}

/** The training memory estimate against --max-memory, naming the flag or file at fault. */
export function checkTrainingSize(
  config: TitansConfig,
  options: TrainOptions,
  o: TrainCommandOptions,
  source: string,
) {
  try {
    checkModelSize(config, {
      ...(o.maxMemory === undefined ? {} : { maxBytes: o.maxMemory }),
      training: { batchSize: options.batchSize, seqLen: options.seqLen },
    });
  } catch (error) {
    throw new Error(`${blame(error, o, source)}${(error as Error).message}`);
  }
}

/** `--set layers=…: `, `--seq-len: ` or `<source>: ` for a config error, by the field it names. */
function blame(error: unknown, o: TrainCommandOptions, source: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const field =
    error instanceof ModelTooLargeError
      ? error.field
      : (/^config: (?:unknown field ')?([\w.]+)/.exec(message)?.[1] ?? '');
  if (field === 'batchSize' && o.batchSize !== undefined) return '--batch-size: ';
  if (field === 'seqLen' && o.seqLen !== undefined) return '--seq-len: ';
  const setting = o.set.find((s) => {
    const key = s.slice(0, Math.max(0, s.indexOf('=')));
    return key === field || field.startsWith(`${key}.`) || key.startsWith(`${field}.`);
  });
  return setting ? `--set ${setting}: ` : `${source}: `;
}

/**
 * --resume continues a run as it was: flags that would change it (model, data, tokenizer, batch,
 * learning rate, seed) must agree with the checkpoint; --steps, --eval-every and
 * --checkpoint-every may change. Every contradiction is listed in one error.
 */
export function checkResumeFlags(
  o: TrainCommandOptions,
  preset: Preset,
  saved: Awaited<ReturnType<typeof loadTrainingCheckpoint>>,
  ckptDir: string,
): void {
  const problems: string[] = [];
  const extra = saved.extra;
  const savedOptions = (extra.options ?? {}) as Partial<TrainOptions>;
  if (o.preset !== undefined) {
    if (typeof extra.preset === 'string') {
      if (extra.preset !== preset.name)
        problems.push(`--preset ${o.preset} (it was trained with ${extra.preset})`);
    } else {
      // Older checkpoints do not record the preset: compare the model it gives.
      const fromPreset = resolveConfig(
        {
          ...preset.model,
          variant: saved.config.variant,
          vocabSize: saved.config.vocabSize,
        } as TitansConfigInput,
        { maxBytes: Number.POSITIVE_INFINITY },
      );
      if (!sameJson(fromPreset, saved.config))
        problems.push(`--preset ${o.preset} (its model is not the checkpoint's)`);
    }
  }
  if (o.variant !== undefined && o.variant !== saved.config.variant) {
    problems.push(`--variant ${o.variant} (it is ${saved.config.variant})`);
  }
  if (o.data !== undefined && extra.data !== undefined && o.data !== extra.data) {
    problems.push(`--data ${o.data} (it was trained on ${String(extra.data)})`);
  }
  if (o.tokenizer !== undefined) {
    const was =
      typeof extra.tokenizer === 'string'
        ? extra.tokenizer
        : saved.tokenizer?.kind === 'bpe'
          ? `bpe:${saved.tokenizer.vocabSize}`
          : 'byte';
    if (o.tokenizer !== was) problems.push(`--tokenizer ${o.tokenizer} (it uses ${was})`);
  }
  const flags: [keyof TrainOptions, string][] = [
    ['batchSize', '--batch-size'],
    ['seqLen', '--seq-len'],
    ['accumulate', '--accumulate'],
    ['lr', '--lr'],
    ['seed', '--seed'],
  ];
  for (const [key, flag] of flags) {
    const given = o[key as keyof TrainCommandOptions];
    if (given !== undefined && savedOptions[key] !== undefined && given !== savedOptions[key]) {
      problems.push(`${flag} ${given} (it used ${savedOptions[key]})`);
    }
  }
  for (const setting of o.set) {
    let changed: Record<string, unknown>;
    try {
      changed = applySettings(
        saved.config as unknown as Record<string, unknown>,
        [setting],
        configSchema(saved.config.variant),
      );
    } catch (error) {
      problems.push((error as Error).message);
      continue;
    }
    if (!sameJson(changed, saved.config)) problems.push(`--set ${setting} (the checkpoint's config differs)`);
  }
  if (problems.length > 0) {
    dispose([saved.state.params, saved.state.optimizer]);
    throw new Error(
      `--resume: ${problems.length === 1 ? 'this flag contradicts' : 'these flags contradict'} the checkpoint in ${ckptDir}: ${problems.join('; ')}. Drop ${problems.length === 1 ? 'it' : 'them'} to continue the run as it was, or start a new run with another --out`,
    );
  }
}

/** Equality of two JSON-like values (key order ignored). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]))
    );
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]))
  );
}
