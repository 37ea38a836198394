import type { FloatDType } from '../../src/engine/dtype.js';
import { Rng } from '../../src/index.js';
import { type ModelVariant, resolveConfig, type TitansConfig } from '../../src/models/config.js';
import { initModel, type ModelParams } from '../../src/models/model.js';

/**
 * A tiny model of each variant: 2 layers, d = 8, window 4, MAC segments of 4, memory chunks of 2,
 * so that a dozen tokens cross windows, segments and chunks (and mid-chunk state hand-overs).
 */
export function tinyConfig(variant: ModelVariant, overrides: Partial<TitansConfig> = {}): TitansConfig {
  return resolveConfig({
    variant,
    vocabSize: 12,
    dModel: 8,
    layers: 2,
    heads: 2,
    window: 4,
    segmentSize: 4,
    persistentTokens: 2,
    memory: { heads: 2, headDim: 4, expansion: 2, chunkSize: 2 },
    ...overrides,
  });
}

export function tinyModel(
  variant: ModelVariant,
  dtype: FloatDType = 'float64',
  seed = 1,
): { config: TitansConfig; params: ModelParams } {
  const config = tinyConfig(variant);
  return { config, params: initModel(config, new Rng(seed), dtype) };
}

/** Random token ids in [0, vocab). */
export function randomTokens(n: number, vocab: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.int(vocab));
}

/** Rows [from, to) of a (B, T) row-major token array. */
export function columns(
  ids: readonly number[],
  batch: number,
  length: number,
  from: number,
  to: number,
): number[] {
  const out: number[] = [];
  for (let b = 0; b < batch; b++) for (let t = from; t < to; t++) out.push(ids[b * length + t]!);
  return out;
}
