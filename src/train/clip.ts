import { mul, square } from '../engine/ops/elementwise.js';
import { sum } from '../engine/ops/reduce.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { forEachLeaf, mapTensors } from '../engine/tree.js';

/**
 * The L2 norm of all tensor leaves of a tree taken together, √(Σ_leaves Σ g²), as a number.
 * Each leaf's sum of squares is computed in the leaf's dtype on its backend, and the sums are
 * read back together (one batch of reads, asynchronously, so it runs on every backend) and
 * accumulated in float64 here, so many leaves do not lose precision; a float32 leaf with entries
 * beyond ~1e19 overflows to ∞. Leaves that are not tensors are skipped.
 *
 * @example
 * await globalNorm({ w: tensor([3, 4]), b: tensor([12]) }); // 13
 */
export async function globalNorm(tree: unknown): Promise<number> {
  // Every tensor leaf counts, a tensor at two places twice.
  const leaves: Tensor[] = [];
  forEachLeaf(tree, (leaf) => {
    if (leaf instanceof Tensor) leaves.push(leaf);
  });
  const squares = tidy(() => leaves.map((leaf) => sum(square(leaf))));
  try {
    const values = await Promise.all(squares.map((s) => s.data()));
    let total = 0;
    for (const v of values) total += v[0]!;
    return Math.sqrt(total);
  } finally {
    for (const s of squares) s.dispose();
  }
}

/**
 * Rescales a gradient tree so its global L2 norm is at most `maxNorm` (Pascanu et al.): when the
 * norm exceeds `maxNorm` every leaf is multiplied by maxNorm/norm, keeping the direction;
 * otherwise the same tree (same tensors) comes back. `norm` is the norm before clipping.
 *
 * A non-finite norm (NaN or ∞: the loss blew up) is returned as is with the grads untouched —
 * scaling by NaN would poison every parameter — so the caller can stop with a clear message.
 *
 * Ownership: scaled leaves are new tensors the caller owns (dispose them, or the tree); the
 * input grads are never disposed here.
 *
 * @example
 * const { grads: clipped, norm } = await clipByGlobalNorm(grads, 1.0);
 * if (!Number.isFinite(norm)) throw new Error(`step ${step}: gradient norm is ${norm}`);
 */
export async function clipByGlobalNorm<G>(grads: G, maxNorm: number): Promise<{ grads: G; norm: number }> {
  if (!(maxNorm > 0)) throw new RangeError(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = await globalNorm(grads);
  if (!Number.isFinite(norm) || norm <= maxNorm) return { grads, norm };
  const scale = maxNorm / norm;
  // tidy frees the scalar each mul makes of `scale`; the scaled leaves it returns survive.
  const scaled = tidy(() => mapTensors(grads, (leaf) => mul(leaf, scale))) as G;
  return { grads: scaled, norm };
}
