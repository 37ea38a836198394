/**
 * Parameter records and optimizer state through checkpoint directories: save → load gives the
 * same values, training resumed from a checkpoint takes exactly the same next steps, and bad
 * checkpoints are rejected naming the file and tensor.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  adamw,
  getBackend,
  matmul,
  mean,
  Rng,
  square,
  sub,
  type Tensor,
  tanh,
  tidy,
  valueAndGrad,
} from '../../src/index.js';
import { loadTensorCheckpoint, saveTensorCheckpoint } from '../../src/node.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { valuesOf } from '../helpers/read.js';

interface Params {
  layers: { w: Tensor; b: Tensor }[];
}

function init(rng: Rng, backend: string): Params {
  const dtype = dtypeOf(backend);
  const n = (shape: number[], std: number) => rng.normal(shape, { std, dtype, backend });
  return {
    layers: [
      { w: n([4, 8], 0.5), b: n([8], 0.1) },
      { w: n([8, 2], 0.5), b: n([2], 0.1) },
    ],
  };
}

const loss = (p: Params, x: Tensor, y: Tensor) => {
  let h = x;
  p.layers.forEach((l, i) => {
    h = matmul(h, l.w);
    h = i === 0 ? tanh(h) : h;
  });
  return mean(square(sub(h, y)));
};

/** float64 where the backend computes it, else float32. */
function dtypeOf(backend: string): 'float32' | 'float64' {
  return getBackend(backend).floatDTypes.includes('float64') ? 'float64' : 'float32';
}

for (const backend of backendsUnderTest()) {
  const dtype = dtypeOf(backend);
  describe(`tensor checkpoints on ${backend}`, () => {
    it('save → load → identical values; resumed training takes identical steps', async () => {
      {
        const dir = await mkdtemp(join(tmpdir(), 'titans-ckpt-'));
        try {
          const rng = new Rng(3);
          const x = rng.normal([16, 4], { dtype, backend });
          const y = rng.normal([16, 2], { dtype, backend });
          const opt = adamw({ lr: 0.01 });
          let params = init(rng, backend);
          let state = opt.init(params);
          const step = () => {
            const { grads } = valueAndGrad(loss)(params, x, y);
            ({ params, state } = opt.update(params, grads, state));
          };
          for (let i = 0; i < 3; i++) tidy(step);
          await saveTensorCheckpoint(dir, {
            config: { kind: 'mlp' },
            params,
            optimizer: state,
            trainer: { step: 3 },
          });
          const loaded = await loadTensorCheckpoint(dir, init(new Rng(99), backend), { backend });
          assert.deepEqual(loaded.config, { kind: 'mlp' });
          assert.equal(loaded.trainer.step, 3);
          assert.equal(loaded.optimizer?.step, 3);
          for (const [i, l] of loaded.params.layers.entries()) {
            assert.deepEqual([...(await l.w.data())], [...(await params.layers[i]!.w.data())]);
          }
          // continue both for 3 steps: identical losses
          const continued: number[] = [];
          for (let i = 0; i < 3; i++) {
            tidy(step);
            continued.push((await valuesOf(() => loss(params, x, y)))[0]!);
          }
          params = loaded.params;
          state = loaded.optimizer!;
          const resumed: number[] = [];
          for (let i = 0; i < 3; i++) {
            tidy(step);
            resumed.push((await valuesOf(() => loss(params, x, y)))[0]!);
          }
          assert.deepEqual(resumed, continued);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }
    });

    it('rejects a truncated weights file and a mismatched template, naming file and tensor', async () => {
      {
        const dir = await mkdtemp(join(tmpdir(), 'titans-ckpt-'));
        try {
          const params = init(new Rng(1), backend);
          await saveTensorCheckpoint(dir, { config: {}, params });
          const wrong = init(new Rng(1), backend);
          wrong.layers[1]!.w = new Rng(2).normal([8, 3], { dtype, backend });
          await assert.rejects(
            loadTensorCheckpoint(dir, wrong, { backend }),
            /layers\.1\.w.*\[8, 3\]|\[8, 3\].*layers\.1\.w/,
          );
          await truncate(join(dir, 'model.safetensors'), 50);
          await assert.rejects(loadTensorCheckpoint(dir, params, { backend }), /model\.safetensors/);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }
    });
  });
}
