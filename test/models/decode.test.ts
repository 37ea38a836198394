/**
 * The decoding fast path (src/models/decode.ts) equals the normal forward on every variant:
 * decoding token by token = one pass (cached = uncached), pieces and single tokens interleaved in
 * any order = one pass (split = whole), the state it hands back continues the stream exactly, and
 * a stream frees everything it made. On the wasm backend and on the test backend without
 * synchronous reads (float32; the reference backend has no decoding kernels and streams through
 * modelForward): the decoder reads nothing back, the stream reads what a selector picks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createDecoder,
  dispose,
  initialModelState,
  initModel,
  memory,
  modelForward,
  modelStream,
  noGrad,
  Rng,
  tidy,
  tokenTensor,
  wasmBackend,
  withBackend,
} from '../../src/index.js';
import { MODEL_VARIANTS, resolveConfig } from '../../src/models/config.js';
import { asyncBackend } from '../helpers/backends.js';
import { valuesOf } from '../helpers/read.js';

/** A small model whose head widths suit the kernels (multiples of 4), crossing windows, segments, chunks. */
function model(variant: (typeof MODEL_VARIANTS)[number]) {
  const config = resolveConfig({
    variant,
    vocabSize: 40,
    dModel: 16,
    layers: 2,
    heads: 2,
    window: 6,
    segmentSize: 8,
    persistentTokens: 2,
    memory: { heads: 2, headDim: 8, expansion: 2, chunkSize: 4 },
  });
  return { config, params: initModel(config, new Rng(7), 'float32') };
}

const T = 37;

// The wasm backend, and the same kernels behind asynchronous reads only (null without wasm).
const decodingBackends = wasmBackend ? ['wasm', asyncBackend()!] : [];

for (const backend of decodingBackends) {
  describe(`decoding fast path (${backend})`, () => {
    for (const variant of MODEL_VARIANTS) {
      it(`${variant}: token by token and in mixed pieces equals one pass, and its state continues the stream`, () =>
        withBackend(backend, async () => {
          const { config, params } = model(variant);
          const rng = new Rng(3);
          const ids = Array.from({ length: T }, () => rng.int(config.vocabSize));
          const whole = await valuesOf(
            () => modelForward(params, config, tokenTensor(ids, 1, T), null).logits,
          );
          const V = config.vocabSize;
          const check = (label: string, start: number, got: ArrayLike<number>) => {
            let worst = 0;
            for (let i = 0; i < got.length; i++) {
              const e = whole[start * V + i]!;
              worst = Math.max(worst, Math.abs(got[i]! - e) / Math.max(1, Math.abs(e)));
            }
            assert.ok(worst < 2e-4, `${variant} ${label} at ${start}: differs by ${worst}`);
          };
          const before = memory().tensors;
          // the decoder exists for this model on this backend
          const probe = noGrad(() => tidy(() => initialModelState(params, config, 1)));
          const decoder = createDecoder(params, config, probe);
          assert.ok(decoder, 'a decoder for this variant');
          decoder.dispose();
          dispose(probe);
          // 1. every token on its own (the decoder throughout)
          const tokens = modelStream(params, config);
          for (let t = 0; t < T; t++) check('token by token', t, (await tokens.feed([ids[t]!], (l) => l))!);
          tokens.close();
          // 2. pieces and tokens interleaved: the state goes from the decoder to modelForward and back
          const mixed = modelStream(params, config);
          const plan = [5, 1, 1, 1, 7, 1, 3, 1, 1, 1, 1, 2, 1, 11];
          let done = 0;
          for (const n of plan) {
            const piece = ids.slice(done, done + n);
            check(`piece of ${n}`, done, (await mixed.feed(piece, (l) => l))!);
            done += n;
          }
          assert.equal(done, T);
          // 3. its state as data: modelForward continues from it exactly like the stream would
          const state = mixed.state!;
          assert.equal(state.position, T);
          mixed.close();
          assert.equal(memory().tensors, before, `${variant}: tensors left behind`);
          dispose(params);
        }));
    }

    it('a stream continued from a decoded state by modelForward matches one pass', () =>
      withBackend(backend, async () => {
        const { config, params } = model('mac');
        const rng = new Rng(5);
        const ids = Array.from({ length: 30 }, () => rng.int(config.vocabSize));
        const whole = await valuesOf(
          () => modelForward(params, config, tokenTensor(ids, 1, 30), null).logits,
        );
        const stream = modelStream(params, config);
        for (let t = 0; t < 19; t++) await stream.feed([ids[t]!]); // nothing read
        const state = stream.state!; // handed back by the decoder mid-segment, mid-chunk
        const rest = await valuesOf(
          () => modelForward(params, config, tokenTensor(ids.slice(19), 1, 11), state).logits,
        );
        let worst = 0;
        for (let i = 0; i < rest.length; i++) {
          worst = Math.max(worst, Math.abs(rest[i]! - whole[19 * config.vocabSize + i]!));
        }
        assert.ok(worst < 2e-4, `differs by ${worst}`);
        stream.close();
        dispose(params);
      }));
  });
}
