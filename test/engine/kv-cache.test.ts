/**
 * The paged KV cache (engine/ops/kv-cache.ts): attention over pages read in place equals attention
 * over the dense keys, on every backend (the wasm backend writes and reads pages in place, the
 * reference backend splices copies); older cache values stay valid and branch correctly; and a
 * Transformer++ streamed in pieces across page boundaries equals one pass.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  appendToCache,
  attendCache,
  attention,
  concat,
  dispose,
  initModel,
  memory,
  modelForward,
  modelStream,
  PAGE_ROWS,
  type PagedCache,
  Rng,
  resolveConfig,
  sliceAxis,
  type Tensor,
  tokenTensor,
  wasmBackend,
} from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { relError } from '../helpers/compare.js';
import { readAll, valuesOf } from '../helpers/read.js';

for (const backend of backendsUnderTest()) {
  const dtype = backend === 'reference' ? 'float64' : 'float32';
  const tol = dtype === 'float64' ? 1e-12 : 1e-5;
  describe(`paged KV cache on ${backend}`, () => {
    it('attention over pages filled in pieces equals attention over the dense keys', async () => {
      const total = PAGE_ROWS + 700; // crosses a page boundary mid-piece
      const pieces = await readAll(() => {
        const rng = new Rng(1);
        const [B, H, dh] = [2, 2, 8];
        const k = rng.normal([B, H, total, dh], { dtype, backend });
        const v = rng.normal([B, H, total, dh], { dtype, backend });
        const q = rng.normal([B, H, total, dh], { dtype, backend });
        let cache: PagedCache | null = null;
        const out: { got: Tensor; want: Tensor; done: number }[] = [];
        for (let done = 0; done < total; ) {
          const n = Math.min(600, total - done);
          const piece = (t: Tensor) => sliceAxis(t, 2, done, n);
          const positions = Array.from({ length: n }, (_, i) => done + i);
          cache = appendToCache(cache, piece(k), piece(v), 0);
          const got = attendCache(piece(q), cache, piece(k), piece(v), { queryPositions: positions });
          const keysSoFar = (t: Tensor) => sliceAxis(t, 2, 0, done + n);
          const want = attention(piece(q), keysSoFar(k), keysSoFar(v), { queryPositions: positions });
          out.push({ got, want, done });
          done += n;
        }
        assert.equal(cache!.length, total);
        assert.equal(cache!.pages.length, 2);
        return out;
      });
      for (const { got, want, done } of pieces) {
        assert.ok(relError(got, want) < tol, `piece at ${done}: ${relError(got, want)}`);
      }
    });

    it('an older cache value stays valid, and appending to it branches', async () => {
      const { got, want, again, want1 } = await readAll(() => {
        const rng = new Rng(2);
        const shape = [1, 2, 5, 4];
        const [k0, v0, k1, v1, k2, v2, q] = Array.from({ length: 7 }, () =>
          rng.normal(shape, { dtype, backend }),
        );
        const at = Array.from({ length: 5 }, (_, i) => 5 + i);
        const join = (a: Tensor, b: Tensor) => concat([a, b], 2);
        const base = appendToCache(null, k0!, v0!, 0);
        const first = appendToCache(base, k1!, v1!, 0); // written in place after base's rows
        const second = appendToCache(base, k2!, v2!, 0); // base again: must not see k1
        return {
          got: attendCache(q!, second, k2!, v2!, { queryPositions: at }),
          want: attention(q!, join(k0!, k2!), join(v0!, v2!), { queryPositions: at }),
          again: attendCache(q!, first, k1!, v1!, { queryPositions: at }),
          want1: attention(q!, join(k0!, k1!), join(v0!, v1!), { queryPositions: at }),
        };
      });
      assert.ok(relError(got, want) < tol, 'the branch sees its own rows');
      assert.ok(relError(again, want1) < tol, 'the first branch is intact');
    });
  });
}

describe('Transformer++ streaming on wasm', { skip: wasmBackend === null && 'no wasm backend' }, () => {
  it('pieces across page boundaries equal one pass, and the pages are the only growth', async () => {
    const config = resolveConfig({ variant: 'transformer', vocabSize: 32, dModel: 16, layers: 2, heads: 2 });
    const params = initModel(config, new Rng(3));
    const rng = new Rng(4);
    const T = PAGE_ROWS + 500;
    const ids = Array.from({ length: T }, () => rng.int(32));
    const whole = await valuesOf(() => modelForward(params, config, tokenTensor(ids, 1, T), null).logits);
    const before = memory().tensors;
    const stream = modelStream(params, config);
    let worst = 0;
    await stream.feedPieces(
      ids,
      300,
      (logits) => logits,
      (got, start) => {
        for (let i = 0; i < got.length; i++) {
          const e = whole[start * 32 + i]!;
          worst = Math.max(worst, Math.abs(got[i]! - e) / Math.max(1, Math.abs(e)));
        }
      },
    );
    assert.ok(worst < 1e-4, `pieces differ from the whole by ${worst}`);
    const cache = stream.state!.blocks[0]!.cache as PagedCache;
    assert.equal(cache.length, T);
    assert.equal(cache.pages.length, 2);
    stream.close();
    assert.equal(memory().tensors, before, 'nothing left behind');
    dispose(params);
  });
});
