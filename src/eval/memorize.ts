/**
 * Test-time memorisation with no outer training: write N random (key, value) pairs into a fresh
 * memory with memoryScan, then query with the keys and count how many retrieved values are
 * nearest (L2) to their own value. This is the memory's raw associative capacity (eq. 12–16),
 * with the paper's ablation switches: depth, momentum, forgetting.
 */
import {
  argMax,
  concat,
  full,
  l2Normalize,
  matmul,
  mul,
  Rng,
  sub,
  sum,
  tidy,
  zeros,
} from '../engine/index.js';
import { memoryForward } from '../memory/memory-mlp.js';
import { memoryScan } from '../memory/scan.js';

export interface MemorizeOptions {
  /** Number of (key, value) pairs. */
  pairs: number;
  /** Key/value width d_h. */
  dim?: number;
  /** Memory depth L_M (1 = linear, starts from zero weights; ≥ 2 starts from a random MLP). */
  depth?: number;
  /** Hidden width = expansion · d_h. */
  expansion?: number;
  /** Inner learning rate θ (constant). */
  theta?: number;
  /** Momentum decay η (0 = off). */
  eta?: number;
  /** Forgetting α (0 = off). */
  alpha?: number;
  /** How many times the pairs are streamed through the memory (test-time epochs). */
  passes?: number;
  chunkSize?: number;
  seed?: number;
  /** Precision (default float32: runs on the fastest backend; float64 on the reference). */
  dtype?: 'float32' | 'float64';
}

/**
 * Fraction of keys whose retrieved value is nearest to their own value (chance = 1/pairs); the
 * nearest indices are read back once, asynchronously.
 * @example await memorizeRecall({ pairs: 64, depth: 2 }); // e.g. 0.98
 */
export async function memorizeRecall(options: MemorizeOptions): Promise<number> {
  const N = options.pairs;
  const d = options.dim ?? 32;
  const depth = options.depth ?? 2;
  const passes = options.passes ?? 16;
  if (!Number.isInteger(N) || N < 1)
    throw new RangeError(`memorizeRecall: pairs must be an integer ≥ 1, got ${N}`);
  if (!Number.isInteger(passes) || passes < 1)
    throw new RangeError(`memorizeRecall: passes must be ≥ 1, got ${passes}`);
  const nearest = tidy(() => {
    const rng = new Rng(options.seed ?? 1);
    const dtype = options.dtype ?? 'float32';
    const keys = l2Normalize(rng.normal([N, d], { dtype })); // (N, d), unit norm
    const values = rng.normal([N, d], { dtype }); // (N, d)
    const hidden = depth === 1 ? d : (options.expansion ?? 4) * d;
    const dims = [d, ...Array.from({ length: depth - 1 }, () => hidden), d];
    const weights = dims
      .slice(0, -1)
      .map((din, l) =>
        depth === 1
          ? zeros([din, dims[l + 1]!], { dtype })
          : rng.normal([din, dims[l + 1]!], { std: 1 / Math.sqrt(din), dtype }),
      );
    const T = N * passes;
    const stream = (x: typeof keys) =>
      concat(
        Array.from({ length: passes }, () => x),
        0,
      ); // (T, d)
    const gate = (value: number) => full([T], value, { dtype });
    const { state } = memoryScan(
      {
        q: stream(keys),
        k: stream(keys),
        v: stream(values),
        alpha: gate(options.alpha ?? 0),
        eta: gate(options.eta ?? 0),
        theta: gate(options.theta ?? 0.02),
        weights,
      },
      { chunkSize: options.chunkSize ?? 16 },
    );
    const retrieved = memoryForward(keys, state.weights, { activation: 'silu', residual: false }); // (N, d)
    // argmin_j ‖r_i − v_j‖² = argmax_j (2 r_i·v_j − ‖v_j‖²)
    const score = sub(mul(matmul(retrieved, values, { transposeB: true }), 2), sum(mul(values, values), -1));
    return argMax(score, -1); // (N)
  });
  try {
    const index = await nearest.data();
    let correct = 0;
    for (let i = 0; i < N; i++) if (index[i] === i) correct++;
    return correct / N;
  } finally {
    nearest.dispose();
  }
}
