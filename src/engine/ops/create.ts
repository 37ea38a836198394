import { allocArray, type DType, dtypeOfArray, isFloat, type TypedArray } from '../dtype.js';
import { assertValidShape, formatShape, type Shape, sizeOf } from '../shape.js';
import { record } from '../tape.js';
import { backendFor, supportsDType, Tensor, wrapBuffer } from '../tensor.js';

/** Where and how to create a tensor. */
export interface CreateOptions {
  dtype?: DType;
  /** Backend name; the default backend when omitted. */
  backend?: string;
}

/** Numbers nested in arrays, every level rectangular: `[[1, 2], [3, 4]]`. */
export type NestedArray = readonly (number | NestedArray)[];

/**
 * A tensor from a typed array, a number array or nested number arrays. The shape defaults to the
 * nesting's (a flat array: 1-D); the dtype to the typed array's own (plain numbers: float32).
 * Ragged nesting or a value that is not a number is an error naming where.
 *
 * @example
 * const w = tensor(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * const m = tensor([[1, 2], [3, 4]]); // shape [2, 2]
 * const i = tensor(new Int32Array([0, 2]), [2]);
 */
export function tensor(values: TypedArray | NestedArray, shape?: Shape, options: CreateOptions = {}): Tensor {
  const nested = ArrayBuffer.isView(values) ? null : flattenNested(values as NestedArray);
  const data = nested ? nested.data : (values as TypedArray);
  const dtype = options.dtype ?? (nested ? 'float32' : dtypeOfArray(data as TypedArray));
  const finalShape = shape ?? nested?.shape ?? [data.length];
  assertValidShape(finalShape);
  if (sizeOf(finalShape) !== data.length) {
    throw new RangeError(`tensor: ${data.length} values do not fill shape ${formatShape(finalShape)}`);
  }
  const array = allocArray(dtype, data.length);
  for (let i = 0; i < data.length; i++) array[i] = data[i]!;
  if (dtype === 'int32') {
    for (let i = 0; i < data.length; i++) {
      if (array[i] !== data[i])
        throw new RangeError(`tensor: value ${data[i]} at index ${i} is not an int32`);
    }
  }
  const backend = backendFor(dtype, options.backend);
  return wrapBuffer(backend, backend.upload(array, dtype), finalShape, dtype, array);
}

/** The numbers of a nested array in row-major order and its shape; throws naming the first bad spot. */
function flattenNested(values: NestedArray): { data: number[]; shape: number[] } {
  if (!Array.isArray(values)) throw new TypeError(`tensor: expected a typed array or an array of numbers`);
  const shape: number[] = [];
  for (let level: unknown = values; Array.isArray(level); level = level[0]) shape.push(level.length);
  const data: number[] = [];
  const walk = (node: unknown, axis: number, where: string) => {
    if (axis === shape.length) {
      if (typeof node !== 'number')
        throw new TypeError(
          `tensor: value at ${where} is ${Array.isArray(node) ? 'an array' : typeof node}, expected a number (nesting is ragged?)`,
        );
      data.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[axis])
      throw new RangeError(
        `tensor: ragged nested array: ${where} has ${Array.isArray(node) ? `${node.length} ${node.length === 1 ? 'entry' : 'entries'}` : `a ${typeof node}`} where ${shape[axis]} were expected (shape ${formatShape(shape)})`,
      );
    for (let i = 0; i < node.length; i++) walk(node[i], axis + 1, `${where}[${i}]`);
  };
  walk(values, 0, 'values');
  return { data, shape };
}

/** A rank-0 tensor. */
export function scalar(value: number, options: CreateOptions = {}): Tensor {
  return full([], value, options);
}

/** A tensor of `shape` filled with `value` (dtype float32 unless given). */
export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  assertValidShape(shape);
  const dtype = options.dtype ?? 'float32';
  const backend = backendFor(dtype, options.backend);
  return wrapBuffer(backend, backend.fill(sizeOf(shape), value, dtype), shape, dtype);
}

export function zeros(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** A tensor like `t` (shape, dtype, backend) filled with `value`. */
export function fullLike(t: Tensor, value: number): Tensor {
  return wrapBuffer(t.backend, t.backend.fill(t.size, value, t.dtype), t.shape, t.dtype);
}

export function zerosLike(t: Tensor): Tensor {
  return fullLike(t, 0);
}

export function onesLike(t: Tensor): Tensor {
  return fullLike(t, 1);
}

/** A scalar on `like`'s backend with `like`'s dtype (how plain numbers enter binary ops). */
export function scalarLike(value: number, like: Tensor): Tensor {
  return wrapBuffer(like.backend, like.backend.fill(1, value, like.dtype), [], like.dtype);
}

/** 0, 1, …, n−1. */
export function arange(n: number, options: CreateOptions = {}): Tensor {
  const dtype = options.dtype ?? 'float32';
  const data = allocArray(dtype, n);
  for (let i = 0; i < n; i++) data[i] = i;
  return tensor(data, [n], { ...options, dtype });
}

/**
 * Converts to another dtype (a copy; float → int32 truncates toward zero). Differentiable
 * between floats. When x's backend does not compute `dtype` (float64 on wasm), the result goes
 * to the backend `backendFor(dtype)` picks.
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  if (!supportsDType(x.backend, dtype)) return cast(toBackend(x, backendFor(dtype).name), dtype);
  const out = wrapBuffer(x.backend, x.backend.cast(x.buffer, x.size, x.dtype, dtype), x.shape, dtype);
  if (isFloat(x.dtype) && isFloat(dtype)) record('cast', [x], out, (g) => [cast(g, x.dtype)]);
  return out;
}

/**
 * The same values on another backend (a copy; differentiable: the gradient moves back).
 * Synchronous, so the values must be known without waiting: the source backend reads
 * synchronously (CPU backends), or the tensor is an int32 upload whose host values the engine
 * kept. Otherwise (a GPU tensor) use `await toBackendAsync(x, name)`.
 * @example const x64 = cast(toBackend(x, 'reference'), 'float64');
 */
export function toBackend(x: Tensor, name: string): Tensor {
  const target = backendFor(x.dtype, name);
  if (target === x.backend) return x;
  const values = x.knownValues();
  if (values === null) {
    throw new Error(
      `toBackend: backend '${x.backend.name}' reads asynchronously; move ${x.dtype} ${formatShape(x.shape)} with 'await toBackendAsync(x, '${name}')'`,
    );
  }
  const out = wrapBuffer(target, target.upload(values, x.dtype), x.shape, x.dtype, values);
  if (isFloat(x.dtype)) record('toBackend', [x], out, (g) => [toBackend(g, x.backend.name)]);
  return out;
}

/**
 * The same values on another backend, read back asynchronously: works from every backend,
 * including GPU backends without synchronous reads. Not recorded by autodiff (a tape is
 * synchronous); inside a differentiated function use `toBackend`.
 * @example const onCpu = await toBackendAsync(gpuTensor, 'reference');
 */
export async function toBackendAsync(x: Tensor, name: string): Promise<Tensor> {
  const target = backendFor(x.dtype, name);
  if (target === x.backend) return x;
  const values = x.knownValues() ?? (await x.data());
  return wrapBuffer(target, target.upload(values, x.dtype), x.shape, x.dtype, values);
}

export { Tensor };
