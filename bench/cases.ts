/**
 * The inputs of the memory benchmarks, built once for every bench that times them (run.ts on the
 * CPU backends, webgpu.ts, wasm-elementwise.ts): the memory core of the size and the
 * memory layer at d = 256, with the loss their fwd+bwd rows differentiate.
 */
import {
  add,
  defaultMemoryLayerConfig,
  initMemoryLayer,
  type MemoryLayerParams,
  type MemoryScanInputs,
  type MemoryScanOptions,
  memoryLayer,
  memoryScan,
  mul,
  type Rng,
  sigmoid,
  sum,
  type Tensor,
} from '../src/index.js';

const dtype = 'float32';

/** The gates of a scan: a function of the random source and the gates' shape [H, T]. */
export type ScanGates = (rng: Rng, shape: number[]) => Pick<MemoryScanInputs, 'alpha' | 'eta' | 'theta'>;

/**
 * Gates of the memoryScan bench. `realistic`: what the memory layer's gates give at
 * initialisation, σ(x w + b) with its default biases and caps (α ≈ 0.001, η ≈ 0.25, θ ≈ 0.01; the
 * logits' spread 0.32 is x w for unit x, d = 256, w ~ N(0, 0.02²)). The stress cases forget hard
 * (α up to 0.05 or 0.5) with a tiny inner learning rate and momentum near 1: the memory then
 * decays towards zero through every float32 range, the denormals included, which x86 cores
 * compute on 10–100× slower unless the kernels keep them out.
 */
export const SCAN_GATES: Record<'realistic' | 'stress α≤0.05' | 'stress α≤0.5', ScanGates> = {
  realistic: (rng, shape) => {
    const gate = (bias: number, cap: number) =>
      mul(sigmoid(rng.normal(shape, { mean: bias, std: 0.32, dtype })), cap);
    return { alpha: gate(-7, 1), eta: gate(0, 0.5), theta: gate(0, 0.02) };
  },
  'stress α≤0.05': (rng, shape) => ({
    alpha: rng.uniform(shape, { low: 0, high: 0.05, dtype }),
    eta: rng.uniform(shape, { low: 0.9, high: 0.999, dtype }),
    theta: rng.uniform(shape, { low: 1e-4, high: 1e-3, dtype }),
  }),
  'stress α≤0.5': (rng, shape) => ({
    alpha: rng.uniform(shape, { low: 0, high: 0.5, dtype }),
    eta: rng.uniform(shape, { low: 0.9, high: 0.999, dtype }),
    theta: rng.uniform(shape, { low: 1e-4, high: 1e-3, dtype }),
  }),
};

/** Uniform moderate gates (α ≤ 0.05, η ∈ [0.3, 0.6], θ ∈ [0.01, 0.05]): the older benches' inputs. */
export const UNIFORM_GATES: ScanGates = (rng, shape) => ({
  alpha: rng.uniform(shape, { low: 0, high: 0.05, dtype }),
  eta: rng.uniform(shape, { low: 0.3, high: 0.6, dtype }),
  theta: rng.uniform(shape, { low: 0.01, high: 0.05, dtype }),
});

/** The memory core's size: H = 4 heads, d_h = 64, expansion 4 (h = 256), depth 2. */
export const SCAN_SIZE = { H: 4, dh: 64, hidden: 256 } as const;

/**
 * Float32 memoryScan inputs of SCAN_SIZE over T tokens: q, k (std 1/√d_h), v, the gates, then the
 * two weight matrices (std 1/√fan-in), drawn in that order from `rng`.
 */
export function scanBenchInputs(rng: Rng, T: number, gates: ScanGates): MemoryScanInputs {
  const { H, dh, hidden } = SCAN_SIZE;
  return {
    q: rng.normal([H, T, dh], { std: 1 / Math.sqrt(dh), dtype }),
    k: rng.normal([H, T, dh], { std: 1 / Math.sqrt(dh), dtype }),
    v: rng.normal([H, T, dh], { dtype }),
    ...gates(rng, [H, T]),
    weights: [
      rng.normal([H, dh, hidden], { std: 1 / Math.sqrt(dh), dtype }),
      rng.normal([H, hidden, dh], { std: 1 / Math.sqrt(hidden), dtype }),
    ],
  };
}

/** What the fwd+bwd rows differentiate: Σ y² + Σ W₁ (every output and the final state feed it). */
export function scanBenchLoss(options: MemoryScanOptions): (p: MemoryScanInputs) => Tensor {
  return (p) => {
    const r = memoryScan(p, options);
    return add(sum(mul(r.y, r.y)), sum(r.state.weights[0]!));
  };
}

/** The memory layer of SPEC §2 at d = 256 (H = 4 × d_h = 64), expansion 4, chunk 16, batch 1. */
export interface LayerBenchCase {
  shape: string;
  params: MemoryLayerParams;
  x: Tensor;
  forward(): Tensor;
  /** Σ y², a function of the parameters (what the fwd+bwd row differentiates). */
  loss(p: MemoryLayerParams): Tensor;
}

/** The memory-layer bench case over T tokens (seeded: the same inputs for every backend). */
export function layerBenchCase(T: number, rng: Rng): LayerBenchCase {
  const config = defaultMemoryLayerConfig({
    dModel: 256,
    heads: 4,
    headDim: 64,
    expansion: 4,
    chunkSize: 16,
  });
  const params = initMemoryLayer(config, rng, dtype);
  const x = rng.normal([1, T, 256], { dtype });
  return {
    shape: `d=256 H=4 dh=64 h=256 T=${T} b=16`,
    params,
    x,
    forward: () => memoryLayer(params, config, x).y,
    loss: (p) => {
      const y = memoryLayer(p, config, x).y;
      return sum(mul(y, y));
    },
  };
}
