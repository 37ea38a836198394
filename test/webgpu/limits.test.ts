/**
 * Kernels whose operands exceed one storage binding split their work instead of refusing it:
 * argMax and linearScan (column blocks and axis segments joined by a carry), gather and
 * scatterAdd (windows of the output against windows of the source), and fused attention (groups
 * of batch rows). Each runs on a backend planning with 4 KiB bindings (1 024 floats) and must
 * agree with the reference backend — or, for attention, with the unsplit run bit for bit. Also:
 * bind groups are made once per set of buffers, and a device that cannot make more says why.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadWebGpuBackend, type WebGpuBackend } from '../../src/backends/webgpu/load.js';
import {
  type AttentionParams,
  type Backend,
  type BackendBuffer,
  referenceBackend,
  type TypedArray,
} from '../../src/index.js';
import { assertClose, gpu, randomF32, seeded, skipReason } from './gpu.js';

/** Runs `kernel` on `backend` with `inputs` uploaded, and reads every output back. */
async function runOn(
  backend: Backend,
  inputs: readonly TypedArray[],
  kernel: (b: Backend, xs: BackendBuffer[]) => BackendBuffer | BackendBuffer[],
  dtype: 'float32' | 'int32' = 'float32',
): Promise<TypedArray[]> {
  const xs = inputs.map((x) => backend.upload(x, x instanceof Int32Array ? 'int32' : 'float32'));
  const result = kernel(backend, xs);
  const outs = Array.isArray(result) ? result : [result];
  const data = await Promise.all(outs.map((o) => backend.read(o, dtype)));
  for (const b of [...xs, ...outs]) backend.release(b);
  return data;
}

describe('webgpu kernels beyond one storage binding', { skip: skipReason }, () => {
  let tiny: WebGpuBackend;
  const split = async (
    inputs: readonly TypedArray[],
    kernel: (b: Backend, xs: BackendBuffer[]) => BackendBuffer,
    dtype: 'float32' | 'int32' = 'float32',
  ) => {
    const before = tiny.stats().dispatches;
    const [got] = await runOn(tiny, inputs, kernel, dtype);
    const dispatches = tiny.stats().dispatches - before;
    const [want] = await runOn(referenceBackend, inputs, kernel, dtype);
    return { got: got!, want: want!, dispatches };
  };

  it('loads a backend that plans with 4 KiB bindings', async () => {
    const loaded = await loadWebGpuBackend({
      name: 'webgpu-4k-bindings',
      limits: { maxStorageBufferBindingSize: 4096 },
    });
    assert.ok(loaded);
    tiny = loaded;
  });

  it('argMax: axis segments with a carry, column blocks, whole blocks of outers', async () => {
    const rng = seeded(21);
    for (const [shape, axis] of [
      [[3, 700, 5], 1], // a (700 × 5) block exceeds a binding: segments of the axis
      [[2, 50, 2000], 1], // one row of 2000 columns exceeds it: column blocks, one axis row each
      [[30, 100], 0],
      [[40, 20], 1], // fits: one dispatch
    ] as const) {
      const size = shape.reduce((a, b) => a * b, 1);
      const x = randomF32(rng, size);
      // ties: the first index wins across segment boundaries too
      for (let i = 0; i < size; i += 7) x[i] = 3;
      const r = await split([x], (b, [a]) => b.argMax(a!, shape, axis, 'float32'), 'int32');
      assertClose(r.got, r.want, 0, 0, `argMax ${JSON.stringify(shape)} axis ${axis}`);
      if (size > 1024) assert.ok(r.dispatches > 1, `${JSON.stringify(shape)} is split`);
    }
  });

  it('linearScan: forward and reversed, in segments joined by a carry', async () => {
    const rng = seeded(22);
    for (const [shape, axis] of [
      [[3, 700, 5], 1],
      [[2, 50, 2000], 1],
      [[30, 100], 0],
    ] as const) {
      const size = shape.reduce((a, b) => a * b, 1);
      const a = randomF32(rng, size, 0.5, 1);
      const b = randomF32(rng, size);
      for (const reverse of [false, true]) {
        const r = await split([a, b], (be, [x, y]) => be.linearScan(x!, y!, shape, axis, reverse, 'float32'));
        assertClose(r.got, r.want, 2e-5, 2e-5, `linearScan ${JSON.stringify(shape)} axis ${axis} ${reverse}`);
        assert.ok(r.dispatches > 1, `${JSON.stringify(shape)} is split`);
      }
    }
  });

  it('gather: output windows against source windows, along either axis', async () => {
    const rng = seeded(23);
    const x = randomF32(rng, 600 * 4);
    const idx = Int32Array.from({ length: 500 }, () => rng.int(600));
    const rows = await split([x, idx], (b, [t, i]) => b.gather(t!, [600, 4], i!, 500, 0, 'float32'));
    assertClose(rows.got, rows.want, 0, 0, 'gather rows of a [600, 4] table');
    assert.ok(rows.dispatches >= 4, 'two output windows × three source windows');
    const y = randomF32(rng, 3 * 700 * 2);
    const idy = Int32Array.from({ length: 10 }, () => rng.int(700));
    const mid = await split([y, idy], (b, [t, i]) => b.gather(t!, [3, 700, 2], i!, 10, 1, 'float32'));
    assertClose(mid.got, mid.want, 0, 0, 'gather along axis 1 of [3, 700, 2]');
  });

  it('scatterAdd: rows of g added in order into windows of the output, also past one row per binding', async () => {
    const rng = seeded(24);
    const g = randomF32(rng, 500 * 4);
    const idx = Int32Array.from({ length: 500 }, () => rng.int(600)); // repeated rows add up
    const rows = await split([g, idx], (b, [t, i]) => b.scatterAdd(t!, i!, 500, [600, 4], 0, 'float32'));
    assertClose(rows.got, rows.want, 1e-6, 1e-6, 'scatterAdd into [600, 4]');
    const wide = randomF32(rng, 5 * 2000);
    const idw = Int32Array.from([2, 0, 2, 1, 2]);
    const long = await split([wide, idw], (b, [t, i]) => b.scatterAdd(t!, i!, 5, [3, 2000], 0, 'float32'));
    assertClose(long.got, long.want, 1e-6, 1e-6, 'scatterAdd of 2000-column rows');
    assert.ok(long.dispatches > 3, 'column blocks');
  });

  it('fused attention: batch rows split into groups give the unsplit results bit for bit', async () => {
    const rng = seeded(25);
    const [batch, tq, tk, dh] = [6, 40, 40, 8];
    const range = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
    const p: AttentionParams = {
      batch,
      queries: tq,
      keys: tk,
      headDim: dh,
      queryPositions: range(tq),
      keyPositions: range(tk),
      window: 16,
      prefix: 2,
      scale: 1 / Math.sqrt(dh),
    };
    assert.ok(tiny.fusedAttention!.supports(p, 'float32'), 'the tiny backend splits rather than declines');
    const q = randomF32(rng, batch * tq * dh);
    const k = randomF32(rng, batch * tk * dh);
    const v = randomF32(rng, batch * tk * dh);
    const dOut = randomF32(rng, batch * tq * dh);
    const attend = (b: Backend, [qb, kb, vb, gb]: BackendBuffer[]) => {
      const [out, lse] = b.fusedAttention!.forward(qb!, kb!, vb!, p, 'float32');
      return [out, lse, ...b.fusedAttention!.backward(qb!, kb!, vb!, out, lse, gb!, p, 'float32')];
    };
    const before = tiny.stats().dispatches;
    const got = await runOn(tiny, [q, k, v, dOut], attend);
    assert.ok(tiny.stats().dispatches - before >= 8, 'two groups of three batch rows per kernel');
    const want = await runOn(gpu!, [q, k, v, dOut], attend);
    got.forEach((g, i) => {
      assertClose(g, want[i]!, 0, 0, ['output', 'log-sum-exps', 'dq', 'dk', 'dv'][i]);
    });
    // one batch row's keys beyond a binding: declined (the composed path takes it)
    assert.equal(
      tiny.fusedAttention!.supports({ ...p, keys: 200, keyPositions: range(200) }, 'float32'),
      false,
    );
  });

  it('makes one bind group per set of buffers and reuses it', async () => {
    const x = tiny.upload(randomF32(seeded(26), 100), 'float32');
    const made = tiny.stats().bindGroups;
    for (let i = 0; i < 50; i++) tiny.release(tiny.unary('exp', x, 100, 'float32'));
    assert.ok(tiny.stats().bindGroups - made <= 2, `50 identical ops made ${tiny.stats().bindGroups - made}`);
    tiny.release(x);
  });

  it('a device that cannot make more bind groups fails with an error naming the cause', async () => {
    const capped = await loadWebGpuBackend({ name: 'webgpu-capped', maxBindGroups: 3 });
    assert.ok(capped);
    const xs = Array.from({ length: 5 }, () => capped.upload(new Float32Array(100), 'float32'));
    assert.throws(() => {
      for (const x of xs) capped.unary('exp', x, 100, 'float32');
    }, /exp \(100 elements\) needs a new bind group, but 3 were made on this device.*tidy\(\) or dispose\(\)/);
    capped.destroy();
    tiny.destroy();
  });
});
