/**
 * The SPEC §1 conformance vectors (test/memory/fixtures/case_N.json, copied from the project's
 * shared/conformance): inputs and options for memoryScan, and the expected values and gradients.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemoryScanInputs, MemoryScanOptions, Tensor } from '../../src/index.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../../test/memory/fixtures');

/** A flattened row-major array with its shape, as the fixtures store every tensor. */
export interface StoredArray {
  shape: number[];
  data: number[];
}

export interface ConformanceCase {
  /** The memory depth (number of weight matrices). */
  depth: number;
  inputs: MemoryScanInputs;
  options: MemoryScanOptions;
  /** The raw fixture: `expected`, `cotangents` and `grads`, keyed as the fixture README says. */
  data: {
    expected: Record<string, StoredArray>;
    cotangents: Record<string, StoredArray>;
    grads: Record<string, StoredArray>;
  };
}

export const CONFORMANCE_CASES = [0, 1, 2, 3];

/** Loads case `c`, building every stored array into a tensor with `toTensor`. */
export function loadConformanceCase(c: number, toTensor: (a: StoredArray) => Tensor): ConformanceCase {
  const data = JSON.parse(readFileSync(join(fixtures, `case_${c}.json`), 'utf8'));
  const depth: number = data.options.depth;
  const layers = Array.from({ length: depth }, (_, i) => i);
  const I = data.inputs;
  return {
    depth,
    inputs: {
      q: toTensor(I.q),
      k: toTensor(I.k),
      v: toTensor(I.v),
      alpha: toTensor(I.alpha),
      eta: toTensor(I.eta),
      theta: toTensor(I.theta),
      weights: layers.map((i) => toTensor(I[`W0_${i}`])),
      momentum: layers.map((i) => toTensor(I[`S0_${i}`])),
    },
    options: {
      chunkSize: data.options.chunkSize,
      activation: data.options.activation,
      residual: data.options.residual,
    },
    data,
  };
}
