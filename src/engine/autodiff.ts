import { isFloat } from './dtype.js';
import { onesLike, zeros, zerosLike } from './ops/create.js';
import { add } from './ops/elementwise.js';
import { concat } from './ops/shape.js';
import { formatShape, shapesEqual } from './shape.js';
import { type AssemblePieces, backpropagate, record, Tape, withTape } from './tape.js';
import { nextTensorIdValue, Tensor, tidy, viewOf } from './tensor.js';
import { mapLeaves, tensorLeaves } from './tree.js';

/** Runs `f` on a fresh tape watching the float leaves of `params`; returns the outputs and the tape. */
function traced<P, R>(f: () => R, params: P): { out: R; tape: Tape; leaves: Tensor[] } {
  const tape = new Tape();
  const leaves = tensorLeaves(params).filter((t) => isFloat(t.dtype));
  for (const leaf of leaves) tape.watch(leaf);
  let out: R;
  try {
    out = withTape(tape, f);
  } catch (e) {
    tape.release(); // else the tensors it saved (the params among them) could never be freed
    throw e;
  }
  return { out, tape, leaves };
}

/**
 * A tensor's cotangent from its pieces' cotangents (`split` pieces, custom-op outputs among them):
 * one concat along the axis, with zeros where no piece had a cotangent.
 */
const assemblePieces: AssemblePieces = (pieces, whole, axis) => {
  const sorted = [...pieces].sort((a, b) => a[0] - b[0]);
  const { backend, dtype } = sorted[0]![1];
  const gap = (n: number) =>
    zeros(
      whole.shape.map((d, i) => (i === axis ? n : d)),
      { dtype, backend: backend.name },
    );
  const parts: Tensor[] = [];
  let at = 0;
  for (const [offset, g] of sorted) {
    if (offset > at) parts.push(gap(offset - at));
    parts.push(g);
    at = offset + g.shape[axis]!;
  }
  if (at < whole.shape[axis]!) parts.push(gap(whole.shape[axis]! - at));
  return parts.length === 1 ? parts[0]! : concat(parts, axis);
};

/** A new tensor object on `t`'s storage, recorded as the identity so enclosing tapes see through it. */
function alias(t: Tensor): Tensor {
  const out = viewOf(t, t.shape);
  if (isFloat(t.dtype)) record('identity', [t], out, (g) => [g]);
  return out;
}

/**
 * The gradient tree. Every returned gradient is a tensor of its own: one that is also another
 * leaf's gradient (add(a, b) gives both the cotangent), or is the cotangent or the output
 * itself, is handed out as a view, so that disposing one gradient never frees another tensor.
 */
function gradTree<P>(params: P, leaves: Tensor[], grads: Map<number, Tensor>, taken: readonly Tensor[]): P {
  const handedOut = new Set<Tensor>(taken);
  const leafIds = new Set(leaves.map((l) => l.id));
  // Leaves that are not tensors, and tensors the tape did not watch (int32), get null.
  return mapLeaves(params, (t) => {
    if (!(t instanceof Tensor) || !leafIds.has(t.id)) return null;
    let g = grads.get(t.id) ?? zerosLike(t);
    if (handedOut.has(g)) g = alias(g);
    handedOut.add(g);
    return g;
  }) as P;
}

/**
 * Turns `f(params, ...rest) → scalar` into a function returning the value and the gradient with
 * respect to every float tensor in `params` (a tensor, or a nested record/array of tensors; the
 * gradient has the same structure). `rest` is passed through undifferentiated. Intermediates are
 * released before it returns. Nesting works: `grad(p => grad(f)(p) …)` is a second derivative.
 *
 * @example
 * const step = valueAndGrad((p: { w: Tensor }, x: Tensor, y: Tensor) => mean(square(sub(matmul(x, p.w), y))));
 * const { value, grads } = step({ w }, x, y); // grads.w has w's shape
 */
export function valueAndGrad<P, Rest extends unknown[]>(
  f: (params: P, ...rest: Rest) => Tensor,
): (params: P, ...rest: Rest) => { value: Tensor; grads: P } {
  return (params, ...rest) =>
    tidy(() => {
      const result = vjp((p: P) => f(p, ...rest), params);
      if (result.value.size !== 1) {
        result.release();
        throw new RangeError(
          `valueAndGrad: the function must return a scalar, got shape ${formatShape(result.value.shape)}; use vjp for non-scalar outputs`,
        );
      }
      const grads = result.backward(onesLike(result.value));
      return { value: result.value, grads };
    });
}

/**
 * Like valueAndGrad but returns only the gradient.
 * @example const g = grad((x: Tensor) => sum(silu(x)))(x); // silu'(x)
 */
export function grad<P, Rest extends unknown[]>(
  f: (params: P, ...rest: Rest) => Tensor,
): (params: P, ...rest: Rest) => P {
  const vg = valueAndGrad(f);
  return (params, ...rest) => {
    const { value, grads } = vg(params, ...rest);
    value.dispose();
    return grads;
  };
}

/**
 * Vector–Jacobian product: evaluates `f(params)` and returns a `backward(cotangent)` that gives
 * Σ cotangent ⊙ ∂f/∂params, with the structure of `params`. `backward` may be called once; call
 * `release()` instead if it is not needed. Intermediates of the forward pass are freed by
 * `backward`/`release` (run inside `tidy` to free them as well).
 *
 * @example
 * const { value: y, backward } = vjp((p: Tensor[]) => matmul(p[0], p[1]), [a, b]);
 * const [ga, gb] = backward(onesLike(y));
 */
export function vjp<P>(
  f: (params: P) => Tensor,
  params: P,
): { value: Tensor; backward: (cotangent: Tensor) => P; release: () => void } {
  const firstNew = nextTensorIdValue();
  const { out, tape, leaves } = traced(() => f(params), params);
  if (!(out instanceof Tensor)) {
    tape.release();
    throw new TypeError('vjp/valueAndGrad: the function must return a Tensor');
  }
  // A function that returns an existing tensor (an input, a captured constant) gets a view of it
  // as its value, so that disposing the value (as `grad` does) never frees the caller's tensor.
  const value = out.id < firstNew ? alias(out) : out;
  let used = false;
  const release = (): void => {
    used = true;
    tape.release();
  };
  const backward = (cotangent: Tensor): P => {
    if (used) throw new Error('vjp: backward was already called (or released)');
    if (!shapesEqual(cotangent.shape, out.shape) || cotangent.dtype !== out.dtype) {
      release();
      throw new RangeError(
        `vjp: cotangent ${cotangent.dtype}${formatShape(cotangent.shape)} does not match output ${out.dtype}${formatShape(out.shape)}`,
      );
    }
    try {
      const grads = backpropagate(tape, [out], [cotangent], add, assemblePieces);
      return gradTree(params, leaves, grads, [cotangent, out, value]);
    } finally {
      release();
    }
  };
  return { value, backward, release };
}
