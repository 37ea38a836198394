/**
 * What the fused memoryScan tests of every backend share (test/wasm, test/webgpu): a case's
 * random float64 inputs on the reference backend, the inputs' named leaves, and the fused call's
 * parameters to ask a backend's `supports` with.
 */
import type { MemoryScanParams } from '../../src/engine/backend.js';
import type { MemoryScanInputs, Rng, Tensor } from '../../src/index.js';

/** The per-token inputs of a memory scan. */
export const TOKEN_KEYS = ['q', 'k', 'v', 'alpha', 'eta', 'theta'] as const;

export interface ScanCase {
  lead: number[];
  T: number;
  d: number;
  h: number;
  depth: number;
  /** Leading axes of the weights (and momentum): [] shares one memory across heads. */
  weightLead?: number[];
  momentum?: boolean;
  alpha?: [number, number];
  eta?: [number, number];
  theta?: [number, number];
}

/**
 * Random well-scaled float64 inputs on the reference backend: q, k (std 1/√d), v, the gates
 * uniform in the case's ranges, weights (std 1/√fan-in) and momentum (std 0.1), drawn in that order.
 */
export function randomScanInputs(rng: Rng, c: ScanCase): MemoryScanInputs {
  const opts = { dtype: 'float64', backend: 'reference' } as const;
  const { lead, T, d, depth } = c;
  const dims = [d, ...Array.from({ length: depth - 1 }, () => c.h), d];
  const wl = c.weightLead ?? lead;
  const gate = ([lo, hi]: [number, number]) => rng.uniform([...lead, T], { low: lo, high: hi, ...opts });
  const matrices = (std: (din: number) => number) =>
    dims.slice(0, -1).map((din, l) => rng.normal([...wl, din, dims[l + 1]!], { std: std(din), ...opts }));
  return {
    q: rng.normal([...lead, T, d], { std: 1 / Math.sqrt(d), ...opts }),
    k: rng.normal([...lead, T, d], { std: 1 / Math.sqrt(d), ...opts }),
    v: rng.normal([...lead, T, d], opts),
    alpha: gate(c.alpha ?? [0, 0.2]),
    eta: gate(c.eta ?? [0.3, 0.9]),
    theta: gate(c.theta ?? [0.02, 0.2]),
    weights: matrices((din) => 1 / Math.sqrt(din)),
    ...(c.momentum === false ? {} : { momentum: matrices(() => 0.1) }),
  };
}

/** The differentiable leaves of an inputs record, named. */
export function scanLeaves(x: MemoryScanInputs): [string, Tensor][] {
  return [
    ...TOKEN_KEYS.map((key): [string, Tensor] => [key, x[key]]),
    ...x.weights.map((w, l): [string, Tensor] => [`W${l}`, w]),
    ...(x.momentum ?? []).map((s, l): [string, Tensor] => [`S${l}`, s]),
    ...(x.chunkStartWeights ?? []).map((c, l): [string, Tensor] => [`chunkStart${l}`, c]),
  ];
}

/** Every tensor of an inputs record mapped through f, once each: shared tensors stay shared. */
export function mapScanInputs(x: MemoryScanInputs, convert: (t: Tensor) => Tensor): MemoryScanInputs {
  const done = new Map<Tensor, Tensor>();
  const f = (t: Tensor): Tensor => {
    let out = done.get(t);
    if (!out) {
      out = convert(t);
      done.set(t, out);
    }
    return out;
  };
  return {
    ...x,
    ...Object.fromEntries(TOKEN_KEYS.map((key) => [key, f(x[key])])),
    weights: x.weights.map(f),
    ...(x.momentum ? { momentum: x.momentum.map(f) } : {}),
    ...(x.chunkStartWeights ? { chunkStartWeights: x.chunkStartWeights.map(f) } : {}),
  };
}

/** mapScanInputs with an asynchronous convert (each distinct tensor converted once, concurrently). */
export async function mapScanInputsAsync(
  x: MemoryScanInputs,
  convert: (t: Tensor) => Promise<Tensor>,
): Promise<MemoryScanInputs> {
  const distinct = [...new Set(scanLeaves(x).map(([, t]) => t))];
  const converted = await Promise.all(distinct.map(convert));
  const of = new Map(distinct.map((t, i) => [t, converted[i]!]));
  return mapScanInputs(x, (t) => of.get(t)!);
}

/** The fused call's parameters for inputs at the start of a stream (for asking `supports`). */
export function scanParams(x: MemoryScanInputs, chunkSize: number): MemoryScanParams {
  return {
    lead: x.q.shape.slice(0, -2),
    tokens: x.q.shape[x.q.rank - 2]!,
    widths: [x.q.shape[x.q.rank - 1]!, ...x.weights.map((w) => w.shape[w.rank - 1]!)],
    activation: 'silu',
    residual: false,
    chunkSize,
    position: 0,
    weightLeads: x.weights.map((w) => w.shape.slice(0, -2)),
    momentumLeads: x.momentum?.map((s) => s.shape.slice(0, -2)) ?? null,
    chunkStartLeads: null,
  };
}
