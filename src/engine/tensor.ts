import type { Backend, BackendBuffer } from './backend.js';
import type { DType, TypedArray } from './dtype.js';
import { formatValues } from './format.js';
import { formatShape, type Shape, sizeOf } from './shape.js';
import { tensorLeaves } from './tree.js';

/**
 * The engine's runtime: the backend registry, the live-tensor accounting and the scopes that
 * release intermediate buffers deterministically (`tidy`). The autodiff tape lives in tape.ts.
 */

/** A buffer shared by a tensor and its views (reshape); released when its last tensor is disposed. */
interface Storage {
  readonly backend: Backend;
  buffer: BackendBuffer | null;
  refs: number;
  readonly bytes: number;
  /**
   * The host values the buffer was uploaded from, kept for int32 tensors only (token ids,
   * targets: small), so index checks need no read-back from a device. Never mutated.
   */
  readonly host: TypedArray | null;
}

let nextTensorId = 1;
const backends = new Map<string, Backend>();
let defaultBackend: Backend | null = null;
const live = { tensors: 0, bytes: 0, buffers: 0 };

/** One set per open `tidy`: the tensors created inside it, innermost last. */
const scopeStack: Set<Tensor>[] = [];

/**
 * An n-dimensional array on a backend. Immutable: every op returns a new tensor.
 *
 * @example
 * const t = tensor(new Float64Array([1, 2, 3, 4]), [2, 2]);
 * console.log(t.shape, await t.data()); // [2, 2] Float64Array [1, 2, 3, 4]
 */
export class Tensor {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  /** @internal */ storage: Storage;
  /** @internal number of live autodiff tapes that saved this tensor for their backward pass */
  savedBy = 0;
  /** @internal dispose requested while saved by a tape; done when the tape releases it */
  pendingDispose = false;
  private isDisposed = false;

  /** @internal use the creation ops (tensor, zeros, …) instead. */
  constructor(storage: Storage, shape: Shape, dtype: DType) {
    this.id = nextTensorId++;
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    storage.refs++;
    live.tensors++;
    const scope = scopeStack[scopeStack.length - 1];
    if (scope) scope.add(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get backend(): Backend {
    return this.storage.backend;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** @internal the backend buffer; throws if the tensor was disposed. */
  get buffer(): BackendBuffer {
    if (this.isDisposed || this.storage.buffer === null) {
      throw new Error(`tensor #${this.id} ${formatShape(this.shape)} was used after it was disposed`);
    }
    return this.storage.buffer;
  }

  /** Reads the values back (a copy). Works on every backend. */
  async data(): Promise<TypedArray> {
    return this.backend.read(this.buffer, this.dtype);
  }

  /**
   * Reads the values back synchronously (a copy); only on backends that allow it (CPU backends:
   * `reference`, `wasm`). Code that should run on every backend uses `await data()`.
   */
  dataSync(): TypedArray {
    const b = this.backend;
    if (!b.readSync) {
      throw new Error(`backend '${b.name}' cannot read synchronously; use 'await tensor.data()'`);
    }
    return b.readSync(this.buffer, this.dtype);
  }

  /** The single value of a size-1 tensor (synchronous backends only; else `(await t.data())[0]`). */
  item(): number {
    if (this.size !== 1)
      throw new RangeError(`item() needs a tensor of size 1, got shape ${formatShape(this.shape)}`);
    return this.dataSync()[0]!;
  }

  /** Nested JS arrays of the values (synchronous backends only; else `await array()`). */
  toArray(): unknown {
    return nest(this.dataSync(), this.shape);
  }

  /**
   * Nested JS arrays of the values, read back asynchronously (every backend); a rank-0 tensor
   * gives its number.
   * @example await tensor([1, 2, 3, 4], [2, 2]).array(); // [[1, 2], [3, 4]]
   */
  async array(): Promise<unknown> {
    return nest(await this.data(), this.shape);
  }

  /**
   * @internal the values if they are known without waiting: the host copy an int32 tensor was
   * uploaded from, else a synchronous read where the backend allows one, else null (a device
   * tensor on an asynchronous backend). For checks that must not force a read-back.
   */
  knownValues(): TypedArray | null {
    if (this.storage.host) return this.storage.host;
    return this.backend.readSync ? this.dataSync() : null;
  }

  /** Releases this tensor's buffer (once no other view uses it). Safe to call twice. */
  dispose(): void {
    if (this.isDisposed) return;
    if (this.savedBy > 0) {
      this.pendingDispose = true;
      return;
    }
    this.isDisposed = true;
    live.tensors--;
    for (const scope of scopeStack) scope.delete(this);
    const s = this.storage;
    s.refs--;
    if (s.refs === 0 && s.buffer !== null) {
      s.backend.release(s.buffer);
      s.buffer = null;
      live.bytes -= s.bytes;
      live.buffers--;
    }
  }

  /**
   * The tensor for people: dtype, shape, backend and its values (long axes cut to their ends);
   * values are left out where the backend cannot read synchronously, or once disposed.
   * @example String(tensor([[1, 2], [3, 4]])); // 'Tensor(float32 [2, 2] on wasm)\n[[1, 2],\n [3, 4]]'
   */
  toString(): string {
    const head = `Tensor(${this.dtype} ${formatShape(this.shape)} on ${this.backend.name}`;
    if (this.isDisposed) return `${head}, disposed)`;
    if (!this.backend.readSync) return `${head}; read it with await tensor.data())`;
    return `${head})\n${formatValues(this.dataSync(), this.shape, this.dtype)}`;
  }

  /** How Node's console.log and util.inspect show a tensor (as `toString`). */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** Row-major values as nested arrays of `shape` (rank 0: the number itself). */
function nest(data: TypedArray, shape: Shape): unknown {
  const build = (axis: number, offset: number): unknown => {
    if (axis === shape.length) return data[offset];
    const n = shape[axis]!;
    const stride = sizeOf(shape.slice(axis + 1));
    return Array.from({ length: n }, (_, i) => build(axis + 1, offset + i * stride));
  };
  return build(0, 0);
}

/**
 * @internal wraps a fresh backend buffer into a tensor; `host` (int32 only) is the array it was
 * uploaded from, which the caller hands over and never changes.
 */
export function wrapBuffer(
  backend: Backend,
  buffer: BackendBuffer,
  shape: Shape,
  dtype: DType,
  host: TypedArray | null = null,
): Tensor {
  const bytes = backend.byteLength(buffer);
  live.bytes += bytes;
  live.buffers++;
  return new Tensor({ backend, buffer, refs: 0, bytes, host: dtype === 'int32' ? host : null }, shape, dtype);
}

/** @internal the id the next tensor will get: tensors with a smaller id existed before. */
export function nextTensorIdValue(): number {
  return nextTensorId;
}

/** @internal a new tensor sharing `t`'s buffer with another shape of the same size (reshape). */
export function viewOf(t: Tensor, shape: Shape): Tensor {
  t.buffer; // throws if disposed
  return new Tensor(t.storage, shape, t.dtype);
}

// ---- backends --------------------------------------------------------------------------------

/** Makes a backend available by name; the first registered becomes the default. */
export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
  if (defaultBackend === null) defaultBackend = backend;
}

/** Chooses the backend that creation ops use when none is given. */
export function setBackend(name: string): void {
  const b = backends.get(name);
  if (!b)
    throw new Error(`unknown backend '${name}' (registered: ${[...backends.keys()].join(', ') || 'none'})`);
  defaultBackend = b;
}

export function getBackend(name?: string): Backend {
  if (name !== undefined) {
    const b = backends.get(name);
    if (!b)
      throw new Error(`unknown backend '${name}' (registered: ${[...backends.keys()].join(', ') || 'none'})`);
    return b;
  }
  if (defaultBackend === null) throw new Error('no backend is registered');
  return defaultBackend;
}

/** Whether a backend stores and computes `dtype` (int32 everywhere; floats as it declares). */
export function supportsDType(backend: Backend, dtype: DType): boolean {
  return dtype === 'int32' || backend.floatDTypes.includes(dtype);
}

/**
 * The backend a new tensor of `dtype` goes to: the named one (which must support it), else the
 * default backend if it supports the dtype, else the first registered backend that does — so
 * with a float32-only default (wasm), float64 tensors land on the reference backend.
 */
export function backendFor(dtype: DType, name?: string): Backend {
  if (name !== undefined) {
    const b = getBackend(name);
    if (!supportsDType(b, dtype)) {
      throw new TypeError(
        `backend '${name}' does not compute ${dtype} (it computes ${b.floatDTypes.join(', ')}); use another backend for ${dtype}`,
      );
    }
    return b;
  }
  const d = getBackend();
  if (supportsDType(d, dtype)) return d;
  for (const b of backends.values()) if (supportsDType(b, dtype)) return b;
  throw new TypeError(`no registered backend computes ${dtype}`);
}

export function listBackends(): string[] {
  return [...backends.keys()];
}

/**
 * Runs `fn` with `name` as the default backend, then restores the previous default. An async
 * `fn` keeps the default until its promise settles (so do not interleave two of them).
 * @example await withBackend('reference', async () => (await tensor([1, 2]).data())[0]);
 */
export function withBackend<T>(name: string, fn: () => T): T {
  const previous = defaultBackend;
  setBackend(name);
  const restore = () => {
    defaultBackend = previous;
  };
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

// ---- memory accounting and scopes ------------------------------------------------------------

/** Live tensors, distinct buffers and their bytes (views share a buffer). */
export function memory(): { tensors: number; buffers: number; bytes: number } {
  return { ...live };
}

/**
 * Runs `fn` and disposes every tensor it created except those it returns (anywhere inside the
 * returned value: its tensor leaves, engine/tree.ts) and those passed to `keep`. Tensors an
 * active autodiff tape still needs are freed when that tape lets go of them instead.
 *
 * @example
 * const y = tidy(() => sum(mul(x, x))); // the x*x intermediate is released here
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopeStack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopeStack.pop();
    endScope(scope, new Set());
    throw e;
  }
  scopeStack.pop();
  if (result instanceof Promise) {
    throw new Error('tidy: the function must be synchronous (it returned a Promise)');
  }
  endScope(scope, new Set(tensorLeaves(result)));
  return result;
}

function endScope(scope: Set<Tensor>, kept: Set<Tensor>): void {
  const parent = scopeStack[scopeStack.length - 1];
  for (const t of scope) {
    if (kept.has(t)) {
      parent?.add(t);
    } else {
      // One a tape still needs is only marked here; the tape frees it when it lets go.
      t.dispose();
    }
  }
}

/** Removes a tensor from every scope so that no `tidy` disposes it; returns it. */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of scopeStack) scope.delete(t);
  return t;
}

/** Disposes every tensor leaf of a tree (engine/tree.ts: arrays and plain objects are searched). */
export function dispose(value: unknown): void {
  for (const t of tensorLeaves(value)) t.dispose();
}
