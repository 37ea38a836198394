/**
 * The WebGPU fused attention (src/backends/webgpu/attention.ts) against the composed attention on
 * the float64 reference backend: outputs and the gradients of q, k, v under every mask the engine
 * has (causal, sliding window, persistent prefix under a window, KV cache, MAC's [P; h; n]
 * positions, rows with no visible key), with more keys and queries than one tile and head sizes
 * that are not multiples of 4.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AttentionOptions,
  attention,
  mul,
  sum,
  type Tensor,
  tensor,
  tidy,
  valueAndGrad,
} from '../../src/index.js';
import { assertClose, gpu, randomF32, seeded, skipReason } from './gpu.js';

interface Case {
  name: string;
  shape: [number, number, number, number, number]; // B, H, Tq, Tk, dh
  opts: AttentionOptions;
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

const CASES: Case[] = [
  { name: 'causal, two tiles of keys', shape: [2, 2, 70, 70, 8], opts: {} },
  { name: 'sliding window 5', shape: [1, 3, 40, 40, 16], opts: { window: 5 } },
  {
    name: 'persistent prefix under a window',
    shape: [1, 2, 30, 34, 6],
    opts: { window: 4, prefix: 4, queryPositions: range(30), keyPositions: [0, 0, 0, 0, ...range(30)] },
  },
  { name: 'KV cache (Tq < Tk)', shape: [2, 1, 5, 90, 32], opts: {} },
  {
    name: "MAC's [P; h; n] positions",
    shape: [1, 2, 12, 2 + 4 + 12, 8],
    opts: { prefix: 2, queryPositions: range(12, 4), keyPositions: [0, 0, ...range(4), ...range(12, 4)] },
  },
  {
    name: 'rows with no visible key',
    shape: [1, 1, 6, 6, 4],
    opts: { queryPositions: range(6), keyPositions: range(6, 3) },
  },
  { name: 'head size 128, custom scale', shape: [1, 1, 20, 20, 128], opts: { scale: 0.3 } },
];

describe('webgpu fused attention against the composed reference', { skip: skipReason }, () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const [B, H, tq, tk, dh] = c.shape;
      const rng = seeded(tq * 31 + tk);
      const qd = randomF32(rng, B * H * tq * dh);
      const kd = randomF32(rng, B * H * tk * dh);
      const vd = randomF32(rng, B * H * tk * dh);
      const wd = randomF32(rng, B * H * tq * dh);
      const run = async (backend: string, dtype: 'float32' | 'float64') => {
        const make = (d: Float32Array, t: number) =>
          tensor(dtype === 'float64' ? Float64Array.from(d) : d, [B, H, t, dh], { backend });
        const [q, k, v, w] = [make(qd, tq), make(kd, tk), make(vd, tk), make(wd, tq)];
        const f = (x: Tensor, y: Tensor, z: Tensor) => sum(mul(attention(x, y, z, c.opts), w));
        const { value, grads } = valueAndGrad((p: { q: Tensor; k: Tensor; v: Tensor }) => f(p.q, p.k, p.v))({
          q,
          k,
          v,
        });
        const out = tidy(() => attention(q, k, v, c.opts));
        const result = {
          out: await out.data(),
          value: (await value.data())[0]!,
          dq: await grads.q.data(),
          dk: await grads.k.data(),
          dv: await grads.v.data(),
        };
        for (const t of [q, k, v, w, out, value, grads.q, grads.k, grads.v]) t.dispose();
        return result;
      };
      const got = await run('webgpu', 'float32');
      const want = await run('reference', 'float64');
      assertClose(got.out, want.out, 1e-4, 1e-5, 'out');
      assertClose([got.value], [want.value], 1e-4, 1e-4, 'value');
      for (const g of ['dq', 'dk', 'dv'] as const) assertClose(got[g], want[g], 2e-4, 2e-5, g);
    });
  }

  it('takes the fused path (the kernel, not the composed ops)', () => {
    const params = {
      batch: 2,
      queries: 3,
      keys: 3,
      headDim: 8,
      queryPositions: new Int32Array([0, 1, 2]),
      keyPositions: new Int32Array([0, 1, 2]),
      window: Number.POSITIVE_INFINITY,
      prefix: 0,
      scale: 1,
    };
    assert.ok(gpu!.fusedAttention!.supports(params, 'float32'));
    assert.ok(!gpu!.fusedAttention!.supports({ ...params, headDim: 129 }, 'float32'));
    const q = tensor(randomF32(seeded(1), 2 * 3 * 8), [1, 2, 3, 8], { backend: 'webgpu' });
    const dispatches = (fused: boolean) => {
      const before = gpu!.stats().dispatches;
      attention(q, q, q, { fused }).dispose();
      return gpu!.stats().dispatches - before;
    };
    const fused = dispatches(true);
    const composed = dispatches(false);
    // The kernel, the positions' upload and slicing the packed result, against scores, mask,
    // softmax and products.
    assert.ok(fused <= 4 && fused < composed / 2, `fused ${fused} dispatches, composed ${composed}`);
    q.dispose();
  });
});
