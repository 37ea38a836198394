/**
 * The engine on a backend without synchronous reads (a GPU backend; here the test-only
 * async-wasm): reads are `await t.data()` / `await t.array()`, index checks use the host values
 * an index tensor was uploaded from, moving a tensor off such a backend is `toBackendAsync`, and
 * streaming reads once per piece. The rest of the suite runs on it with
 * TITANS_TEST_BACKENDS=async-wasm (`npm run test:async`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  argMax,
  assertFinite,
  crossEntropy,
  dispose,
  gather,
  getBackend,
  initModel,
  modelStream,
  Rng,
  resolveConfig,
  tensor,
  toBackend,
  toBackendAsync,
  withBackend,
} from '../../src/index.js';
import { asyncBackend } from '../helpers/backends.js';
import { valuesOf } from '../helpers/read.js';

const name = asyncBackend();

describe('reading from a backend without synchronous reads', {
  skip: name === null && 'no wasm backend',
}, () => {
  const on = (fn: () => Promise<void>) => () => withBackend(name!, fn);

  it(
    'has no readSync: dataSync, item and toArray say to await, data and array read',
    on(async () => {
      assert.equal(getBackend(name!).readSync, undefined);
      const t = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      assert.throws(() => t.dataSync(), /cannot read synchronously; use 'await tensor.data\(\)'/);
      assert.throws(() => t.toArray(), /cannot read synchronously/);
      assert.deepEqual([...(await t.data())], [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(await t.array(), [
        [1, 2, 3],
        [4, 5, 6],
      ]);
      assert.equal(await tensor([7], []).array(), 7);
      dispose(t);
    }),
  );

  it('withBackend keeps an async function on its backend across awaits, then restores the default', async () => {
    const before = getBackend().name;
    await withBackend(name!, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(tensor([1]).backend.name, name);
    });
    assert.equal(getBackend().name, before);
    await assert.rejects(
      withBackend(name!, async () => {
        throw new Error('inside');
      }),
      /inside/,
    );
    assert.equal(getBackend().name, before);
  });

  it(
    'gather and crossEntropy check uploaded indices without a read-back, and take device-computed ones',
    on(async () => {
      const table = tensor([10, 11, 20, 21, 30, 31], [3, 2]);
      assert.throws(
        () => gather(table, tensor(new Int32Array([0, 3]), [2])),
        /index 3 at position 1 is out of range \[0, 3\)/,
      );
      const logits = tensor([0, 2, 1, 5, 0, 0], [2, 3]);
      assert.throws(
        () => crossEntropy(logits, tensor(new Int32Array([1, 3]), [2])),
        /target 3 at position 1 is outside \[0, 3\)/,
      );
      // argMax's result exists only on the device: no check, no read, same values
      const picked = await valuesOf(() => gather(table, argMax(logits, -1)));
      assert.deepEqual([...picked], [20, 21, 10, 11]);
      // ignoreIndex with targets computed on the device: counted there, the same mean
      const targets = new Int32Array([1, -1]);
      const host = await valuesOf(() => crossEntropy(logits, tensor(targets, [2]), { ignoreIndex: -1 }));
      const device = await valuesOf(() => {
        const order = argMax(tensor([1, 0, 0, 1], [2, 2]), -1); // [0, 1]
        return crossEntropy(logits, gather(tensor(targets, [2]), order), { ignoreIndex: -1 });
      });
      assert.equal(device[0], host[0]);
      assert.ok(Math.abs(host[0]! - (Math.log(1 + Math.exp(2) + Math.E) - 2)) < 1e-6);
      dispose([table, logits]);
    }),
  );
});

describe('moving tensors off a backend without synchronous reads', {
  skip: name === null && 'no wasm backend',
}, () => {
  it('toBackend says to use toBackendAsync, which moves the values (host-known int32 still moves synchronously)', async () => {
    const x = tensor([1.5, -2], [2], { backend: name! });
    assert.throws(
      () => toBackend(x, 'reference'),
      /reads asynchronously; move float32 \[2\] with 'await toBackendAsync/,
    );
    const moved = await toBackendAsync(x, 'reference');
    assert.equal(moved.backend.name, 'reference');
    assert.deepEqual([...moved.dataSync()], [1.5, -2]);
    const ids = tensor(new Int32Array([4, 5]), [2], { backend: name! });
    assert.deepEqual([...toBackend(ids, 'reference').dataSync()], [4, 5]);
    await assert.rejects(
      assertFinite(tensor([1, Number.NaN], [2], { backend: name! }), 'the loss'),
      /the loss contains NaN at flat index 1/,
    );
    await assertFinite(x, 'x');
    dispose([x, moved, ids]);
  });
});

describe('streaming on a backend without synchronous reads', {
  skip: name === null && 'no wasm backend',
}, () => {
  it('reads each piece once, and a selector may hand back a parameter (read through a view)', async () => {
    await withBackend(name!, async () => {
      const config = resolveConfig({
        variant: 'mag',
        vocabSize: 11,
        dModel: 8,
        layers: 1,
        heads: 2,
        window: 4,
        segmentSize: 4,
        persistentTokens: 0,
        memory: { heads: 2, headDim: 4, chunkSize: 2 },
      });
      const params = initModel(config, new Rng(1));
      const backend = getBackend(name!);
      let reads = 0;
      const read = backend.read;
      (backend as { read: typeof read }).read = (buffer, dtype) => {
        reads++;
        return read(buffer, dtype);
      };
      try {
        const stream = modelStream(params, config);
        const rows = await stream.feedPieces([1, 2, 3, 4, 5, 6, 7], 3, (logits) => argMax(logits, -1));
        assert.deepEqual(
          rows.map((r) => r.length),
          [3, 3, 1],
        );
        assert.equal(reads, 3, 'one read per piece');
        const embedding = await stream.feed([8], () => params.embedding);
        assert.equal(embedding!.length, 11 * 8);
        assert.ok(!params.embedding.disposed, 'the parameter itself is not freed');
        stream.close();
      } finally {
        (backend as { read: typeof read }).read = read;
        dispose(params);
      }
    });
  });
});
