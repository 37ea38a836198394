import type { ActivationFn, BinaryOp, UnaryOp } from '../backend.js';
import { MAX_ACTIVATION_ORDER } from '../backend.js';
import { isFloat } from '../dtype.js';
import { broadcastShapes, formatShape, type Shape, shapesEqual } from '../shape.js';
import { isRecording, record } from '../tape.js';
import { type Tensor, wrapBuffer } from '../tensor.js';
import { scalarLike, zerosLike } from './create.js';
import { sum } from './reduce.js';
import { reshape } from './shape.js';

/** A tensor or a plain number (which takes the other operand's dtype and backend). */
export type TensorLike = Tensor | number;

function assertFloat(x: Tensor, op: string): void {
  if (!isFloat(x.dtype)) throw new TypeError(`${op}: expected a float tensor, got ${x.dtype}`);
}

function sameBackend(a: Tensor, b: Tensor, op: string): void {
  if (a.backend !== b.backend) {
    throw new Error(
      `${op}: tensors live on different backends ('${a.backend.name}' and '${b.backend.name}')`,
    );
  }
}

/** Lifts numbers to scalars of the tensor operand's dtype; checks dtypes and backends agree. */
function operands(a: TensorLike, b: TensorLike, op: string): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') {
    throw new TypeError(`${op}: at least one operand must be a tensor`);
  }
  const ta = typeof a === 'number' ? scalarLike(a, b as Tensor) : a;
  const tb = typeof b === 'number' ? scalarLike(b, ta) : b;
  sameBackend(ta, tb, op);
  if (ta.dtype !== tb.dtype) {
    throw new TypeError(`${op}: dtypes differ (${ta.dtype} and ${tb.dtype}); cast one of them first`);
  }
  return [ta, tb];
}

/**
 * Sums a broadcast gradient back to `shape` (the adjoint of broadcasting).
 * @internal used by every broadcasting op's backward.
 */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const offset = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < offset || (shape[i - offset] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, axes, true), shape);
}

// ---- unary ------------------------------------------------------------------------------------

function unary(op: UnaryOp, x: Tensor, backward: ((g: Tensor, out: Tensor) => Tensor) | null): Tensor {
  assertFloat(x, op);
  const out = wrapBuffer(x.backend, x.backend.unary(op, x.buffer, x.size, x.dtype), x.shape, x.dtype);
  if (backward && isRecording([x])) record(op, [x], out, (g) => [backward(g, out)]);
  return out;
}

export const neg = (x: Tensor): Tensor => unary('neg', x, (g) => neg(g));
export const exp = (x: Tensor): Tensor => unary('exp', x, (g, out) => mul(g, out));
export const log = (x: Tensor): Tensor => unary('log', x, (g) => div(g, x));
/** log(1 + x), accurate for small x. */
export const log1p = (x: Tensor): Tensor => unary('log1p', x, (g) => div(g, add(x, 1)));
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x, (g, out) => div(mul(g, 0.5), out));
/** 1/√x. */
export const rsqrt = (x: Tensor): Tensor =>
  unary('rsqrt', x, (g, out) => mul(mul(g, -0.5), mul(out, mul(out, out))));
export const abs = (x: Tensor): Tensor => unary('abs', x, (g) => mul(g, sign(x)));
/** −1, 0 or 1; its gradient is zero (not recorded). */
export const sign = (x: Tensor): Tensor => unary('sign', x, null);
export const reciprocal = (x: Tensor): Tensor =>
  unary('reciprocal', x, (g, out) => neg(mul(g, mul(out, out))));
export const square = (x: Tensor): Tensor => unary('square', x, (g) => mul(g, mul(x, 2)));

// ---- smooth activations and their derivatives ------------------------------------------------

/**
 * The `order`-th derivative of a smooth activation, as an op with its own backward (which is
 * the next derivative). This is what lets training differentiate through an analytic gradient
 * such as the memory's inner ∇_W ℓ, which contains φ'(z).
 *
 * @example
 * const d1 = activation('silu', z, 1); // silu'(z)
 */
export function activation(fn: ActivationFn, x: Tensor, order = 0): Tensor {
  assertFloat(x, fn);
  if (!Number.isInteger(order) || order < 0 || order > MAX_ACTIVATION_ORDER) {
    throw new RangeError(`${fn}: derivative order ${order} is outside 0…${MAX_ACTIVATION_ORDER}`);
  }
  const out = wrapBuffer(
    x.backend,
    x.backend.activation(fn, order, x.buffer, x.size, x.dtype),
    x.shape,
    x.dtype,
  );
  if (isRecording([x])) {
    record(`${fn}^(${order})`, [x], out, (g) => {
      if (order === MAX_ACTIVATION_ORDER) {
        throw new Error(
          `${fn}: cannot differentiate the derivative of order ${order} (the highest provided)`,
        );
      }
      return [mul(g, activation(fn, x, order + 1))];
    });
  }
  return out;
}

export const sigmoid = (x: Tensor): Tensor => activation('sigmoid', x);
export const tanh = (x: Tensor): Tensor => activation('tanh', x);
/** x·σ(x). */
export const silu = (x: Tensor): Tensor => activation('silu', x);
/** The exact GELU, x·Φ(x) with Φ the standard normal CDF. */
export const gelu = (x: Tensor): Tensor => activation('gelu', x);
/** log(1 + eˣ), computed without overflow. */
export const softplus = (x: Tensor): Tensor => activation('softplus', x);

export type DifferentiableFn = ActivationFn | 'exp' | 'log' | 'sqrt' | 'rsqrt';

/**
 * The first, second or third derivative of any of the engine's smooth unary functions, as a
 * differentiable op.
 *
 * @example
 * derivative('log', x, 2); // −1/x²
 */
export function derivative(fn: DifferentiableFn, x: Tensor, order: 1 | 2 | 3): Tensor {
  switch (fn) {
    case 'exp':
      return exp(x);
    case 'log': // (−1)^{n−1} (n−1)! x^{−n}
      return mul(pow(x, -order), [1, -1, 2][order - 1]!);
    case 'sqrt': // x^{1/2}: ½ x^{−1/2}, −¼ x^{−3/2}, ⅜ x^{−5/2}
      return mul(pow(x, 0.5 - order), [0.5, -0.25, 0.375][order - 1]!);
    case 'rsqrt': // x^{−1/2}: −½ x^{−3/2}, ¾ x^{−5/2}, −15/8 x^{−7/2}
      return mul(pow(x, -0.5 - order), [-0.5, 0.75, -1.875][order - 1]!);
    default:
      return activation(fn, x, order);
  }
}

// ---- binary -----------------------------------------------------------------------------------

function binary(
  op: BinaryOp,
  a: TensorLike,
  b: TensorLike,
  backward:
    | ((g: Tensor, ta: Tensor, tb: Tensor, out: Tensor, needs: readonly boolean[]) => (Tensor | null)[])
    | null,
): Tensor {
  const [ta, tb] = operands(a, b, op);
  assertFloat(ta, op);
  const outShape = broadcastShapes(ta.shape, tb.shape, op);
  const buffer = ta.backend.binary(op, ta.buffer, ta.shape, tb.buffer, tb.shape, outShape, ta.dtype);
  const out = wrapBuffer(ta.backend, buffer, outShape, ta.dtype);
  if (backward && isRecording([ta, tb])) {
    record(op, [ta, tb], out, (g, needs) => {
      const [ga, gb] = backward(g, ta, tb, out, needs);
      return [
        ga && needs[0] ? unbroadcast(ga, ta.shape) : null,
        gb && needs[1] ? unbroadcast(gb, tb.shape) : null,
      ];
    });
  }
  return out;
}

export const add = (a: TensorLike, b: TensorLike): Tensor => binary('add', a, b, (g) => [g, g]);
export const sub = (a: TensorLike, b: TensorLike): Tensor =>
  binary('sub', a, b, (g, _a, _b, _o, n) => [g, n[1] ? neg(g) : null]);
export const mul = (a: TensorLike, b: TensorLike): Tensor =>
  binary('mul', a, b, (g, ta, tb, _o, n) => [n[0] ? mul(g, tb) : null, n[1] ? mul(g, ta) : null]);
export const div = (a: TensorLike, b: TensorLike): Tensor =>
  binary('div', a, b, (g, _a, tb, out, n) => [
    n[0] ? div(g, tb) : null,
    n[1] ? neg(div(mul(g, out), tb)) : null,
  ]);
/** aᵇ elementwise; the gradient with respect to b uses log a (taken as 0 where a ≤ 0). */
export const pow = (a: TensorLike, b: TensorLike): Tensor =>
  binary('pow', a, b, (g, ta, tb, out, n) => [
    n[0] ? mul(g, mul(tb, pow(ta, sub(tb, 1)))) : null,
    n[1] ? mul(g, mul(out, log(where(greater(ta, 0), ta, 1)))) : null,
  ]);
/** Elementwise maximum; on ties the gradient goes to a. */
export const maximum = (a: TensorLike, b: TensorLike): Tensor =>
  binary('maximum', a, b, (g, ta, tb, _o, n) => {
    const pickA = greaterEqual(ta, tb);
    return [n[0] ? mul(g, pickA) : null, n[1] ? mul(g, sub(1, pickA)) : null];
  });
/** Elementwise minimum; on ties the gradient goes to a. */
export const minimum = (a: TensorLike, b: TensorLike): Tensor =>
  binary('minimum', a, b, (g, ta, tb, _o, n) => {
    const pickA = lessEqual(ta, tb);
    return [n[0] ? mul(g, pickA) : null, n[1] ? mul(g, sub(1, pickA)) : null];
  });

/** Comparisons return 0/1 in the operands' float dtype and carry no gradient. */
export const greater = (a: TensorLike, b: TensorLike): Tensor => binary('greater', a, b, null);
export const greaterEqual = (a: TensorLike, b: TensorLike): Tensor => binary('greaterEqual', a, b, null);
export const less = (a: TensorLike, b: TensorLike): Tensor => binary('less', a, b, null);
export const lessEqual = (a: TensorLike, b: TensorLike): Tensor => binary('lessEqual', a, b, null);
export const equal = (a: TensorLike, b: TensorLike): Tensor => binary('equal', a, b, null);
export const notEqual = (a: TensorLike, b: TensorLike): Tensor => binary('notEqual', a, b, null);

/** Clamps into [lo, hi]. */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  if (!(lo <= hi)) throw new RangeError(`clamp: lo ${lo} must not exceed hi ${hi}`);
  return minimum(maximum(x, lo), hi);
}

/**
 * cond ≠ 0 ? a : b, broadcasting all three. `cond` is a 0/1 float mask (from a comparison) of
 * any float dtype; it carries no gradient.
 *
 * @example
 * const relu = where(greater(x, 0), x, 0);
 */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [ta, tb] = operands(a, b, 'where');
  sameBackend(cond, ta, 'where');
  assertFloat(ta, 'where');
  const outShape = broadcastShapes(broadcastShapes(cond.shape, ta.shape, 'where'), tb.shape, 'where');
  const buffer = ta.backend.where(
    cond.buffer,
    cond.shape,
    ta.buffer,
    ta.shape,
    tb.buffer,
    tb.shape,
    outShape,
    ta.dtype,
  );
  const out = wrapBuffer(ta.backend, buffer, outShape, ta.dtype);
  if (isRecording([ta, tb])) {
    record(
      'where',
      [ta, tb],
      out,
      (g, needs) => {
        const zero = zerosLike(g);
        return [
          needs[0] ? unbroadcast(where(cond, g, zero), ta.shape) : null,
          needs[1] ? unbroadcast(where(cond, zero, g), tb.shape) : null,
        ];
      },
      [cond],
    );
  }
  return out;
}

/**
 * Rejects unless every value is finite; names `what`. For guarding inputs and losses (it reads
 * the values back, asynchronously).
 * @example await assertFinite(loss, 'the loss');
 */
export async function assertFinite(x: Tensor, what: string): Promise<void> {
  const data = await x.data();
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new RangeError(`${what} contains ${data[i]} at flat index ${i} (shape ${formatShape(x.shape)})`);
    }
  }
}
