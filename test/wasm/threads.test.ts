/**
 * The wasm backend's worker-thread pool (Node): products split across threads equal the
 * single-threaded result exactly (each row is computed by one thread with the same kernel).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matmul, Rng, tidy, wasmBackend } from '../../src/index.js';
import { enableWasmThreads } from '../../src/node.js';

describe('wasm worker threads', { skip: !wasmBackend && 'no wasm backend here' }, () => {
  it('row-split products equal single-threaded ones, for every transpose and odd sizes', () => {
    const backend = wasmBackend!;
    const rng = new Rng(4);
    const cases: [number, number, number][] = [
      [257, 63, 129],
      [64, 256, 64],
      [1030, 17, 9],
    ];
    const inputs = cases.map(([m, k, n]) => ({
      a: rng.normal([m, k], { backend: 'wasm' }),
      b: rng.normal([k, n], { backend: 'wasm' }),
      at: rng.normal([k, m], { backend: 'wasm' }),
      bt: rng.normal([n, k], { backend: 'wasm' }),
    }));
    const run = () =>
      inputs.map(({ a, b, at, bt }) =>
        tidy(() => [
          matmul(a, b).dataSync(),
          matmul(at, b, { transposeA: true }).dataSync(),
          matmul(a, bt, { transposeB: true }).dataSync(),
          matmul(at, bt, { transposeA: true, transposeB: true }).dataSync(),
        ]),
      );
    const single = run();
    const pool = enableWasmThreads(backend, 3, 0); // every product goes to the pool
    try {
      assert.equal(backend.threadPool, pool);
      const threaded = run();
      assert.equal(pool.jobs, 12, 'every product ran on the pool');
      threaded.forEach((results, c) => {
        results.forEach((r, t) => {
          assert.deepEqual(r, single[c]![t], `case ${c}, transpose variant ${t}`);
        });
      });
    } finally {
      pool.terminate();
    }
    assert.equal(backend.threadPool, null);
  });

  it('rejects a bad thread count', () => {
    assert.throws(() => enableWasmThreads(wasmBackend!, 0), /threads must be an integer ≥ 1/);
  });
});
