/**
 * A test-only backend that reads like a GPU backend: the wasm backend's buffers and kernels, but
 * no synchronous read-back (`readSync` is absent, so `dataSync`, `item` and `toArray` throw) and
 * every read resolves on a later turn of the event loop, as a mapped GPU buffer does. The values
 * are copied when the read is issued (a GPU backend queues its copy then), so disposing a tensor
 * while its read is pending is legal. `TITANS_TEST_BACKENDS=async-wasm` runs the
 * backend-parameterised suite on it (`npm run test:async`): the proof that the engine, the
 * models, evaluation and the tests themselves never need a synchronous read.
 */
import type { Backend } from '../../src/index.js';

/** `base` without synchronous reads, registered under `name`. */
export function asyncOnlyBackend(base: Backend, name: string): Backend {
  const { readSync, ...rest } = base;
  if (!readSync) throw new Error(`asyncOnlyBackend: '${base.name}' already reads asynchronously only`);
  return {
    ...rest,
    name,
    read(buffer, dtype) {
      const copy = readSync.call(base, buffer, dtype);
      return new Promise((resolve) => setImmediate(() => resolve(copy)));
    },
  };
}
