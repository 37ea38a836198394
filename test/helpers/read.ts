/**
 * Reading values back in tests the way code must on a GPU backend: asynchronously. Every helper
 * here works on a backend without synchronous reads (test/helpers/async-only-backend.ts).
 */
import { nextTensorIdValue } from '../../src/engine/tensor.js';
import { mapLeaves, noGrad, Tensor, type TypedArray, tensorLeaves, tidy } from '../../src/index.js';

/** A tensor's values as a plain array. */
export async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/**
 * Runs `fn` (without recording, inside a scope) and resolves to the values of the tensor it
 * returns, which is then freed; everything else it made is freed before the read.
 * @example const best = await valuesOf(() => argMax(logits, -1));
 */
export async function valuesOf(fn: () => Tensor): Promise<TypedArray> {
  const t = noGrad(() => tidy(fn));
  try {
    return await t.data();
  } finally {
    t.dispose();
  }
}

/** A tree with every tensor leaf replaced by its values. */
export type ValuesOf<T> = T extends Tensor
  ? TypedArray
  : T extends readonly (infer U)[]
    ? ValuesOf<U>[]
    : T extends object
      ? { [K in keyof T]: ValuesOf<T[K]> }
      : T;

/**
 * Runs `fn` inside a scope and resolves to what it returns with every tensor replaced by its
 * values, all read back together (one batch of asynchronous reads, as a step on a GPU would);
 * the tensors it made are freed, tensors that existed before it are left alone.
 * @example const { y, w } = await readAll(() => ({ y: f(x), w: state.weights[0]! }));
 */
export async function readAll<T>(fn: () => T): Promise<ValuesOf<T>> {
  const first = nextTensorIdValue();
  const result = tidy(fn);
  const leaves = tensorLeaves(result);
  try {
    const read = await Promise.all(leaves.map((t) => t.data()));
    const byTensor = new Map(leaves.map((t, i) => [t, read[i]!]));
    return mapLeaves(result, (leaf) => (leaf instanceof Tensor ? byTensor.get(leaf) : leaf)) as ValuesOf<T>;
  } finally {
    for (const t of leaves) if (t.id >= first) t.dispose();
  }
}

/** The single value of a size-1 tensor. */
export async function item(t: Tensor): Promise<number> {
  if (t.size !== 1) throw new RangeError(`item: expected a tensor of size 1, got ${t.size} values`);
  return (await t.data())[0]!;
}
