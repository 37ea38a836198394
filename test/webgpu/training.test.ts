/**
 * A tiny-preset training run on the WebGPU backend follows the same run on wasm: the same
 * initial weights, batches and AdamW steps give the same losses to float32 noise (the two
 * backends round differently: different summation orders, fused vs composed kernels).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  adamw,
  dispose,
  initModel,
  languageModelLoss,
  listBackends,
  Rng,
  resolveConfig,
  tidy,
  valueAndGrad,
  withBackend,
} from '../../src/index.js';
import { skipReason } from './gpu.js';

const preset = JSON.parse(readFileSync(new URL('../../../presets/tiny.json', import.meta.url), 'utf8'));

async function losses(backend: string, steps: number, batch: number, seq: number): Promise<number[]> {
  const config = resolveConfig({ ...preset.model, vocabSize: 256 });
  let params = withBackend(backend, () => initModel(config, new Rng(0)));
  const optimizer = adamw({ weightDecay: 0.1 });
  let state = withBackend(backend, () => optimizer.init(params));
  const data = new Rng(1);
  const lossAndGrads = valueAndGrad((p: typeof params, inputs: Int32Array, targets: Int32Array) =>
    languageModelLoss(p, config, inputs, targets, batch, seq),
  );
  const out: number[] = [];
  for (let step = 0; step < steps; step++) {
    const tokens = Int32Array.from({ length: batch * (seq + 1) }, () => 97 + data.int(8));
    const inputs = new Int32Array(batch * seq);
    const targets = new Int32Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      inputs.set(tokens.subarray(b * (seq + 1), b * (seq + 1) + seq), b * seq);
      targets.set(tokens.subarray(b * (seq + 1) + 1, (b + 1) * (seq + 1)), b * seq);
    }
    const next = withBackend(backend, () =>
      tidy(() => {
        const { value, grads } = lossAndGrads(params, inputs, targets);
        return { value, ...optimizer.update(params, grads, state, 3e-3) };
      }),
    );
    out.push((await next.value.data())[0]!);
    dispose([params, state, next.value]);
    params = next.params;
    state = next.state;
  }
  dispose([params, state]);
  return out;
}

describe('training on webgpu', {
  skip: skipReason || (!listBackends().includes('wasm') && 'no wasm backend to compare with'),
}, () => {
  it('a tiny-preset run follows the wasm run step by step', async () => {
    const steps = 6;
    const onWasm = await losses('wasm', steps, 4, 16);
    const onGpu = await losses('webgpu', steps, 4, 16);
    assert.ok(onWasm[steps - 1]! < onWasm[0]!, `the loss falls on wasm: ${onWasm.join(', ')}`);
    onGpu.forEach((loss, i) => {
      const rel = Math.abs(loss - onWasm[i]!) / onWasm[i]!;
      assert.ok(
        rel < 1e-4,
        `step ${i}: webgpu ${loss}, wasm ${onWasm[i]} (relative difference ${rel.toExponential(2)})`,
      );
    });
  });
});
