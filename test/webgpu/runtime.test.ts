/**
 * The WebGPU backend's runtime (src/backends/webgpu/context.ts): dispatches split to respect the
 * adapter's limits (checked with a second backend planning with tiny limits), clear errors where a
 * shape cannot be split, the buffer pool's reuse and trim, memory accounting of GPU buffers,
 * batching many dispatches into one submission, device loss naming the op, and the loader's null
 * where there is no adapter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sizeClass } from '../../src/backends/webgpu/context.js';
import { loadWebGpuBackend } from '../../src/backends/webgpu/load.js';
import { add, exp, matmul, memory, sum, tensor, tidy } from '../../src/index.js';
import { assertClose, both, gpu, randomF32, seeded, skipReason } from './gpu.js';

describe('webgpu runtime', { skip: skipReason }, () => {
  it('splits dispatches beyond the binding size and the workgroup grid, with the same results', async () => {
    const tiny = await loadWebGpuBackend({
      name: 'webgpu-tiny-limits',
      limits: { maxStorageBufferBindingSize: 16384, maxComputeWorkgroupsPerDimension: 4 },
    });
    assert.ok(tiny);
    const rng = seeded(11);
    const x = randomF32(rng, 20000);
    const y = randomF32(rng, 400);
    const onTiny = async (inputs: Float32Array[], run: (xs: object[]) => object) => {
      const xs = inputs.map((d) => tiny.upload(d, 'float32'));
      const out = run(xs);
      const data = await tiny.read(out, 'float32');
      for (const b of [...xs, out]) tiny.release(b);
      return data;
    };
    const before = tiny.stats().dispatches;
    const ex = await onTiny([x], ([a]) => tiny.unary('exp', a!, x.length, 'float32'));
    assert.ok(tiny.stats().dispatches - before >= 5, 'an 80 KB operand takes several 16 KB windows');
    const [, want] = await both([x], (b, [a]) => b.unary('exp', a!, x.length, 'float32'));
    assertClose(ex, want, 4e-6, 0, 'exp in windows');
    // Broadcast of a small operand against windows of a large one.
    const sum2 = await onTiny([x, y], ([a, b]) =>
      tiny.binary('add', a!, [50, 400], b!, [400], [50, 400], 'float32'),
    );
    const [, wantSum] = await both([x, y], (b, [p, q]) =>
      b.binary('add', p!, [50, 400], q!, [400], [50, 400], 'float32'),
    );
    assertClose(sum2, wantSum, 0, 0, 'broadcast add in windows');
    // Batched matmul whose operands exceed a binding: split by batch.
    const a = randomF32(rng, 16 * 30 * 20);
    const b = randomF32(rng, 16 * 20 * 30);
    const mm = await onTiny([a, b], ([p, q]) =>
      tiny.matmul(p!, [16, 30, 20], q!, [16, 20, 30], false, false, [16, 30, 30], 'float32'),
    );
    const [, wantMm] = await both([a, b], (be, [p, q]) =>
      be.matmul(p!, [16, 30, 20], q!, [16, 20, 30], false, false, [16, 30, 30], 'float32'),
    );
    assertClose(mm, wantMm, 1e-5, 1e-5, 'matmul split by batch');
    // Row reductions in windows of rows.
    const red = await onTiny([x], ([p]) => tiny.reduce('sum', p!, [200, 100], [1], 'float32'));
    const [, wantRed] = await both([x], (be, [p]) => be.reduce('sum', p!, [200, 100], [1], 'float32'));
    assertClose(red, wantRed, 1e-5, 1e-5, 'sum over rows in windows');
    // A grid of more workgroups than one dimension allows (gather: one dispatch, 2-D grid).
    const idx = new Int32Array([3, 1, 2]);
    const g = await (async () => {
      const xs = tiny.upload(x.subarray(0, 4 * 1000), 'float32');
      const is = tiny.upload(idx, 'int32');
      const out = tiny.gather(xs, [4, 1000], is, 3, 0, 'float32');
      const data = await tiny.read(out, 'float32');
      for (const buf of [xs, is, out]) tiny.release(buf);
      return data;
    })();
    assertClose(g.subarray(0, 1000), x.subarray(3000, 4000), 0, 0, 'gather row 3 (a 12-workgroup grid)');
    tiny.destroy();
  });

  it('refuses what it cannot split with an error naming the op and the sizes', async () => {
    const tiny = await loadWebGpuBackend({
      name: 'webgpu-refuses',
      limits: { maxStorageBufferBindingSize: 4096 },
    });
    assert.ok(tiny);
    const x = tiny.upload(new Float32Array(64 * 64), 'float32');
    assert.throws(
      () => tiny.transpose(x, [64, 64], [1, 0], 'float32'),
      /read out of order.*exceeds one storage binding/,
    );
    assert.throws(
      () => tiny.matmul(x, [64, 64], x, [64, 64], false, false, [64, 64], 'float32'),
      /matmul \[64, 64\] × \[64, 64\]: one matrix exceeds a storage binding \(4096 bytes\)/,
    );
    tiny.destroy();
  });

  it('reuses pooled buffers by size class and frees them on trim', async () => {
    const b = gpu!;
    b.trim();
    const t0 = tensor(randomF32(seeded(1), 1000), [1000], { backend: 'webgpu' });
    const created = b.stats().created;
    for (let i = 0; i < 20; i++) {
      tidy(() => {
        exp(add(t0, 1));
      });
    }
    assert.ok(
      b.stats().created - created <= 3,
      `20 rounds of the same sizes created ${b.stats().created - created} buffers`,
    );
    assert.ok(b.stats().reused >= 3 * 19);
    await b.sync();
    assert.ok(b.stats().pooledBytes > 0);
    assert.ok(b.trim() > 0);
    assert.equal(b.stats().pooledBytes, 0);
    t0.dispose();
    assert.equal(sizeClass(1), 256);
    assert.equal(sizeClass(4000), 4096);
    assert.equal(sizeClass(5000), 5120);
  });

  it('counts GPU buffers in memory() and frees them on dispose', () => {
    const before = memory();
    const t = tensor(new Float32Array(3000), [3000], { backend: 'webgpu' });
    const during = memory();
    assert.equal(during.buffers - before.buffers, 1);
    assert.equal(during.bytes - before.bytes, sizeClass(12000));
    assert.equal(gpu!.byteLength(t.buffer), sizeClass(12000));
    t.dispose();
    assert.deepEqual(memory(), before);
  });

  it('encodes many dispatches into one submission and submits on read', async () => {
    const b = gpu!;
    const x = tensor(randomF32(seeded(2), 64), [8, 8], { backend: 'webgpu' });
    await b.sync();
    const submits = b.stats().submits;
    const y = tidy(() => {
      let h = x;
      for (let i = 0; i < 20; i++) h = exp(matmul(h, x, { transposeB: true }));
      return sum(h);
    });
    assert.equal(b.stats().submits, submits, 'nothing submitted before a read');
    await y.data();
    assert.equal(b.stats().submits, submits + 1, 'one submission for 40 dispatches and the read');
    x.dispose();
    y.dispose();
  });

  it('a lost device fails the next op with a message naming it', async () => {
    const doomed = await loadWebGpuBackend({ name: 'webgpu-doomed' });
    assert.ok(doomed);
    const a = doomed.upload(new Float32Array(4), 'float32');
    doomed.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.throws(
      () => doomed.matmul(a, [2, 2], a, [2, 2], false, false, [2, 2], 'float32'),
      /GPU device was lost \(destroyed.*cannot run matmul \(\[2, 2\] × \[2, 2\]\)/,
    );
    await assert.rejects(doomed.read(a, 'float32'), /device was lost/);
  });

  it('loadWebGpuBackend returns null without an adapter', async () => {
    assert.equal(
      await loadWebGpuBackend({ name: 'no-adapter', gpu: { requestAdapter: async () => null } }),
      null,
    );
    assert.equal(await loadWebGpuBackend({ name: 'no-gpu', gpu: null }), null);
  });
});
