import { mul, square } from '../engine/ops/elementwise.js';
import { sum } from '../engine/ops/reduce.js';
import { stack } from '../engine/ops/shape.js';
import { dispose, Tensor, tidy } from '../engine/tensor.js';
import { forEachLeaf, mapTensors } from '../engine/tree.js';

/**
 * The L2 norm of all tensor leaves of a tree taken together, √(Σ_leaves Σ g²), as a number.
 * Each leaf's sum of squares is computed in the leaf's dtype on its backend; the sums of one dtype
 * are stacked and read back together (one asynchronous read per dtype, so it runs on every
 * backend, GPU ones included) and accumulated in float64 here in leaf order, so many leaves do not
 * lose precision; a float32 leaf with entries beyond ~1e19 overflows to ∞. Every tensor leaf
 * counts (a tensor at two places twice); leaves that are not tensors are skipped.
 *
 * @example
 * await globalNorm({ w: tensor([3, 4]), b: tensor([12]) }); // 13
 */
export async function globalNorm(tree: unknown): Promise<number> {
  const leaves: Tensor[] = [];
  forEachLeaf(tree, (leaf) => {
    if (leaf instanceof Tensor) leaves.push(leaf);
  });
  const squares = new Array<number>(leaves.length);
  for (const dtype of new Set(leaves.map((t) => t.dtype))) {
    const at = leaves.flatMap((t, i) => (t.dtype === dtype ? [i] : []));
    const sums = tidy(() => stack(at.map((i) => sum(square(leaves[i]!))))); // [at.length]
    try {
      const values = await sums.data();
      at.forEach((i, k) => {
        squares[i] = values[k]!;
      });
    } finally {
      dispose(sums);
    }
  }
  let total = 0;
  for (const s of squares) total += s;
  return Math.sqrt(total);
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
