/**
 * The WebGPU backend's elementwise and data-movement kernels, all one mapped kernel (mapped.ts)
 * with a different body: fill, cast, unary ops, activations and their derivatives (order 0–4),
 * broadcasting binary ops, where, and the strided copies behind transpose, broadcastTo, slice,
 * pad and concat. Copies move 32-bit words, so they serve float32 and int32 alike.
 */
import type { ActivationFn, Backend, BinaryOp, UnaryOp } from '../../engine/backend.js';
import { MAX_ACTIVATION_ORDER } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import { broadcastStrides, formatShape, type Shape, sizeOf, stridesOf } from '../../engine/shape.js';
import type { GpuBuffer, GpuContext } from './context.js';
import { extraParam, mappedSource, type Operand, runMapped } from './mapped.js';
import { FLOAT_HELPERS, wgslType } from './wgsl.js';

const UNARY: Record<UnaryOp, string> = {
  neg: '-x',
  exp: 'exp(x)',
  log: 'log(x)',
  sqrt: 'sqrt(x)',
  rsqrt: '1.0 / sqrt(x)',
  abs: 'abs(x)',
  sign: 'select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0)',
  reciprocal: '1.0 / x',
  square: 'x * x',
  log1p: 'log1p_(x)',
};

const ACTIVATION: Record<ActivationFn, string> = {
  sigmoid: 'sigmoidD',
  tanh: 'tanhD',
  silu: 'siluD',
  gelu: 'geluD',
  softplus: 'softplusD',
};

const BINARY: Record<BinaryOp, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  pow: 'pow_(a, b)',
  maximum: 'select(b, a, a >= b || isNan(a))',
  minimum: 'select(b, a, a <= b || isNan(a))',
  greater: 'select(0.0, 1.0, a > b)',
  greaterEqual: 'select(0.0, 1.0, a >= b)',
  less: 'select(0.0, 1.0, a < b)',
  lessEqual: 'select(0.0, 1.0, a <= b)',
  equal: 'select(0.0, 1.0, a == b && !isNan(a))',
  notEqual: 'select(0.0, 1.0, a != b || isNan(a) || isNan(b))',
};

/** Math.pow's cases for a float32 kernel: negative bases with integer exponents, 0⁰ = 1, NaN. */
const POW = `
fn pow_(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (isNan(a) || isNan(b)) { return nan(); }
  if (a == 0.0) {
    if (b < 0.0) { return inf(); }
    return 0.0;
  }
  let m = exp2(b * log2(abs(a)));
  if (a > 0.0) { return m; }
  if (floor(b) != b) { return nan(); }
  let odd = abs(b) < 16777216.0 && (i32(abs(b)) & 1) == 1;
  return select(m, -m, odd);
}
`;

const contiguous = (shape: Shape): number[] => stridesOf(shape);

export type ElementwiseMethods = Pick<
  Backend,
  | 'fill'
  | 'cast'
  | 'unary'
  | 'activation'
  | 'binary'
  | 'where'
  | 'transpose'
  | 'broadcastTo'
  | 'slice'
  | 'pad'
  | 'concat'
>;

/** Strided word copies, fills and float sums between GPU buffers (shared by several kernels). */
export interface Moves {
  /** dst[box] = src[box]: a word copy of `shape` between two strided operands. */
  copy(dst: Operand, src: Operand, shape: Shape): void;
  /** dst[box] += src[box] in float32. */
  accumulate(dst: Operand, src: Operand, shape: Shape): void;
  /** dst[box] = value. */
  fill(dst: Operand, shape: Shape, value: number, dtype: DType): void;
}

export function createMoves(ctx: GpuContext): Moves {
  const twoOperands = (key: string, type: 'u32' | 'f32', expr: string) =>
    ctx.pipeline(key, () =>
      mappedSource(
        [
          { name: 'dst', type, write: true },
          { name: 'src', type },
        ],
        expr,
      ),
    );
  return {
    copy(dst, src, shape) {
      runMapped(ctx, twoOperands('copy', 'u32', 'dst[o0] = src[o1];'), shape, [dst, src]);
    },
    accumulate(dst, src, shape) {
      runMapped(ctx, twoOperands('accumulate', 'f32', 'dst[o0] = dst[o0] + src[o1];'), shape, [dst, src]);
    },
    fill(dst, shape, value, dtype) {
      const words = new Uint32Array(
        dtype === 'int32' ? new Int32Array([value]).buffer : new Float32Array([value]).buffer,
      );
      const pipeline = ctx.pipeline('fill', () =>
        mappedSource([{ name: 'dst', type: 'u32', write: true }], `dst[o0] = P(${extraParam(1)}u);`),
      );
      runMapped(ctx, pipeline, shape, [dst], [words[0]!]);
    },
  };
}

export function createElementwise(ctx: GpuContext, moves: Moves = createMoves(ctx)): ElementwiseMethods {
  const buf = (b: object) => b as GpuBuffer;
  const flat = (b: GpuBuffer, _size: number): Operand => ({ buffer: b, strides: [1], offset: 0 });
  const out = (size: number, dtype: DType) => ctx.alloc(size, dtype);
  const { copy } = moves;
  const fillInto = (dst: GpuBuffer, size: number, value: number, dtype: DType) =>
    moves.fill(flat(dst, size), [size], value, dtype);

  return {
    fill(size, value, dtype) {
      ctx.begin('fill', () => `${size} × ${value}`);
      const o = out(size, dtype);
      fillInto(o, size, value, dtype);
      return o;
    },

    cast(x, size, from, to) {
      ctx.begin('cast', () => `${size} ${from} → ${to}`);
      const o = out(size, to);
      if (from === to || (from !== 'int32' && to !== 'int32')) {
        copy(flat(o, size), flat(buf(x), size), [size]);
        return o;
      }
      const expr = to === 'int32' ? 'dst[o0] = i32(trunc(src[o1]));' : 'dst[o0] = f32(src[o1]);';
      const pipeline = ctx.pipeline(`cast:${to}`, () =>
        mappedSource(
          [
            { name: 'dst', type: wgslType(to), write: true },
            { name: 'src', type: wgslType(from) },
          ],
          expr,
          FLOAT_HELPERS,
        ),
      );
      runMapped(ctx, pipeline, [size], [flat(o, size), flat(buf(x), size)]);
      return o;
    },

    unary(op, x, size, dtype) {
      ctx.begin(op, () => `${size} elements`);
      const o = out(size, dtype);
      const pipeline = ctx.pipeline(`unary:${op}`, () =>
        mappedSource(
          [
            { name: 'dst', type: 'f32', write: true },
            { name: 'src', type: 'f32' },
          ],
          `let x = src[o1]; dst[o0] = ${UNARY[op]};`,
          FLOAT_HELPERS,
        ),
      );
      runMapped(ctx, pipeline, [size], [flat(o, size), flat(buf(x), size)]);
      return o;
    },

    activation(fn, order, x, size, dtype) {
      ctx.begin(`${fn} (order ${order})`, () => `${size} elements`);
      if (!Number.isInteger(order) || order < 0 || order > MAX_ACTIVATION_ORDER) {
        throw new RangeError(`webgpu backend: ${fn} derivative of order ${order} is not provided`);
      }
      const o = out(size, dtype);
      const pipeline = ctx.pipeline(`activation:${fn}:${order}`, () =>
        mappedSource(
          [
            { name: 'dst', type: 'f32', write: true },
            { name: 'src', type: 'f32' },
          ],
          `dst[o0] = ${ACTIVATION[fn]}(src[o1], ${order}u);`,
          FLOAT_HELPERS,
        ),
      );
      runMapped(ctx, pipeline, [size], [flat(o, size), flat(buf(x), size)]);
      return o;
    },

    binary(op, a, aShape, b, bShape, outShape, dtype) {
      ctx.begin(op, () => `${formatShape(aShape)} and ${formatShape(bShape)}`);
      const size = sizeOf(outShape);
      const o = out(size, dtype);
      const pipeline = ctx.pipeline(`binary:${op}`, () =>
        mappedSource(
          [
            { name: 'dst', type: 'f32', write: true },
            { name: 'x', type: 'f32' },
            { name: 'y', type: 'f32' },
          ],
          `let a = x[o1]; let b = y[o2]; dst[o0] = ${BINARY[op]};`,
          FLOAT_HELPERS + (op === 'pow' ? POW : ''),
        ),
      );
      runMapped(ctx, pipeline, outShape, [
        { buffer: o, strides: contiguous(outShape), offset: 0 },
        { buffer: buf(a), strides: broadcastStrides(aShape, outShape), offset: 0 },
        { buffer: buf(b), strides: broadcastStrides(bShape, outShape), offset: 0 },
      ]);
      return o;
    },

    where(cond, condShape, a, aShape, b, bShape, outShape, dtype) {
      ctx.begin('where', () => `${formatShape(condShape)}, ${formatShape(aShape)}, ${formatShape(bShape)}`);
      const size = sizeOf(outShape);
      const o = out(size, dtype);
      const condType = wgslType(buf(cond).dtype);
      const pipeline = ctx.pipeline(`where:${condType}`, () =>
        mappedSource(
          [
            { name: 'dst', type: 'u32', write: true },
            { name: 'c', type: condType },
            { name: 'x', type: 'u32' },
            { name: 'y', type: 'u32' },
          ],
          `dst[o0] = select(y[o3], x[o2], c[o1] != ${condType === 'i32' ? '0' : '0.0'});`,
        ),
      );
      runMapped(ctx, pipeline, outShape, [
        { buffer: o, strides: contiguous(outShape), offset: 0 },
        { buffer: buf(cond), strides: broadcastStrides(condShape, outShape), offset: 0 },
        { buffer: buf(a), strides: broadcastStrides(aShape, outShape), offset: 0 },
        { buffer: buf(b), strides: broadcastStrides(bShape, outShape), offset: 0 },
      ]);
      return o;
    },

    transpose(x, shape, perm, dtype) {
      ctx.begin('transpose', () => `${formatShape(shape)} by [${perm.join(', ')}]`);
      const outShape = perm.map((p) => shape[p]!);
      const inStrides = stridesOf(shape);
      const o = out(sizeOf(shape), dtype);
      copy(
        { buffer: o, strides: contiguous(outShape), offset: 0 },
        { buffer: buf(x), strides: perm.map((p) => inStrides[p]!), offset: 0 },
        outShape,
      );
      return o;
    },

    broadcastTo(x, shape, outShape, dtype) {
      ctx.begin('broadcastTo', () => `${formatShape(shape)} → ${formatShape(outShape)}`);
      const o = out(sizeOf(outShape), dtype);
      copy(
        { buffer: o, strides: contiguous(outShape), offset: 0 },
        { buffer: buf(x), strides: broadcastStrides(shape, outShape), offset: 0 },
        outShape,
      );
      return o;
    },

    slice(x, shape, begin, size, dtype) {
      ctx.begin('slice', () => `${formatShape(shape)} at [${begin.join(', ')}] size ${formatShape(size)}`);
      const strides = stridesOf(shape);
      const o = out(sizeOf(size), dtype);
      copy(
        { buffer: o, strides: contiguous(size), offset: 0 },
        { buffer: buf(x), strides, offset: begin.reduce((s, b, i) => s + b * strides[i]!, 0) },
        size,
      );
      return o;
    },

    pad(x, shape, padding, value, dtype) {
      ctx.begin('pad', () => `${formatShape(shape)} by ${JSON.stringify(padding)}`);
      const outShape = shape.map((d, i) => d + padding[i]![0] + padding[i]![1]);
      const outStrides = stridesOf(outShape);
      const size = sizeOf(outShape);
      const o = out(size, dtype);
      fillInto(o, size, value, dtype);
      copy(
        {
          buffer: o,
          strides: outStrides,
          offset: padding.reduce((s, [before], i) => s + before * outStrides[i]!, 0),
        },
        { buffer: buf(x), strides: contiguous(shape), offset: 0 },
        shape,
      );
      return o;
    },

    concat(xs, shapes, axis, dtype) {
      ctx.begin('concat', () => shapes.map(formatShape).join(', '));
      const outShape = [...shapes[0]!];
      outShape[axis] = shapes.reduce((s, sh) => s + sh[axis]!, 0);
      const outStrides = stridesOf(outShape);
      const o = out(sizeOf(outShape), dtype);
      let at = 0;
      xs.forEach((x, i) => {
        const shape = shapes[i]!;
        copy(
          { buffer: o, strides: outStrides, offset: at * outStrides[axis]! },
          { buffer: buf(x), strides: contiguous(shape), offset: 0 },
          shape,
        );
        at += shape[axis]!;
      });
      return o;
    },
  };
}
