/**
 * Preset files (presets/*.json at the package root): a model config without its vocabulary, plus
 * training defaults. `loadPreset` accepts a preset name or a path to such a file.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { FileReadError, readRegularFile } from '../io/fs.js';
import type { TitansConfigInput } from '../models/config.js';
import type { TrainOptions } from '../train/trainer.js';

export interface Preset {
  name: string;
  description: string;
  model: Omit<TitansConfigInput, 'vocabSize'> & { vocabSize?: number };
  train: Partial<TrainOptions>;
}

/** The presets folder shipped with the package (dist/src/cli → ../../../presets). */
export const PRESETS_DIR = fileURLToPath(new URL('../../../presets/', import.meta.url));

/** Names of the shipped presets. */
export async function listPresets(): Promise<string[]> {
  return (await readdir(PRESETS_DIR))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
}

/**
 * Loads a preset by name (`small`) or path (`./my-preset.json`); errors name the file and field.
 * @example const { model, train } = await loadPreset('small');
 */
export async function loadPreset(nameOrPath: string): Promise<Preset> {
  const isPath = nameOrPath.includes('/') || nameOrPath.endsWith('.json');
  const path = isPath ? nameOrPath : `${PRESETS_DIR}${nameOrPath}.json`;
  let text: string;
  try {
    text = new TextDecoder().decode(await readRegularFile(path, { maxBytes: 1 << 20 }));
  } catch (error) {
    if (error instanceof FileReadError && error.code !== 'missing')
      throw new Error(`preset file ${error.message}`);
    const known = await listPresets().catch(() => []);
    throw new Error(
      isPath
        ? `preset file not found: ${path}`
        : `unknown preset '${nameOrPath}' (presets: ${known.join(', ')})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const record = json as Record<string, unknown>;
  if (
    typeof record !== 'object' ||
    record === null ||
    typeof record.model !== 'object' ||
    record.model === null
  ) {
    throw new Error(`${path}: a preset needs a "model" object`);
  }
  if (record.train !== undefined && (typeof record.train !== 'object' || record.train === null)) {
    throw new Error(`${path}: "train" must be an object`);
  }
  return {
    name: isPath ? path : nameOrPath,
    description: typeof record.description === 'string' ? record.description : '',
    model: record.model as Preset['model'],
    train: (record.train ?? {}) as Partial<TrainOptions>,
  };
}
