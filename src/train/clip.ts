import { mul, square } from '../engine/ops/elementwise.js';
import { sum } from '../engine/ops/reduce.js';
import { stack } from '../engine/ops/shape.js';
import { dispose, Tensor, tidy } from '../engine/tensor.js';
import { forEachLeaf, mapLeaves } from './tree.js';

/**
 * The L2 norm of all tensor leaves of a tree taken together, √(Σ_leaves Σ g²), as a number.
 * Each leaf's sum of squares is computed in the leaf's dtype and accumulated in float64 here, so
 * many leaves do not lose precision; a float32 leaf with entries beyond ~1e19 overflows to ∞.
 * Reads values back synchronously (CPU-style backends). Leaves that are not tensors are skipped.
 *
 * @example
 * globalNorm({ w: tensor([3, 4]), b: tensor([12]) }); // 13
 */
export function globalNorm(tree: unknown): number {
  let total = 0;
  forEachLeaf(tree, (leaf) => {
    if (leaf instanceof Tensor) total += tidy(() => sum(square(leaf)).item());
  });
  return Math.sqrt(total);
}

/**
 * `globalNorm` read back asynchronously, with one `data()` per dtype instead of a synchronous
 * read per leaf, so it runs on every backend (GPU ones included). Same value as `globalNorm`:
 * each leaf's sum of squares in its dtype, accumulated in float64 in leaf order.
 *
 * @example
 * const norm = await globalNormAsync(grads);
 */
export async function globalNormAsync(tree: unknown): Promise<number> {
  const leaves: Tensor[] = [];
  forEachLeaf(tree, (leaf) => {
    if (leaf instanceof Tensor) leaves.push(leaf);
  });
  const squares = new Array<number>(leaves.length);
  for (const dtype of new Set(leaves.map((t) => t.dtype))) {
    const at = leaves.flatMap((t, i) => (t.dtype === dtype ? [i] : []));
    const sums = tidy(() => stack(at.map((i) => sum(square(leaves[i]!)))));
    const values = await sums.data();
    dispose(sums);
    at.forEach((i, k) => {
      squares[i] = values[k]!;
    });
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
 * Ownership: scaled leaves are new tensors in the current scope (an enclosing `tidy` frees
 * them); the input grads are never disposed here.
 *
 * @example
 * const { grads: clipped, norm } = clipByGlobalNorm(grads, 1.0);
 * if (!Number.isFinite(norm)) throw new Error(`step ${step}: gradient norm is ${norm}`);
 */
export function clipByGlobalNorm<G>(grads: G, maxNorm: number): { grads: G; norm: number } {
  if (!(maxNorm > 0)) throw new RangeError(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  if (!Number.isFinite(norm) || norm <= maxNorm) return { grads, norm };
  const scale = maxNorm / norm;
  // tidy frees the scalar each mul makes of `scale`; the scaled leaves it returns survive.
  const scaled = tidy(() =>
    mapLeaves(grads, (leaf) => (leaf instanceof Tensor ? mul(leaf, scale) : leaf)),
  ) as G;
  return { grads: scaled, norm };
}
