/**
 * The WebGPU fused memory scan (src/backends/webgpu/memory-scan.ts + memory-scan-wgsl.ts) against
 * the composed memoryScan on the reference backend in float64: values, the final state and the
 * gradients of every input (1e-4 values, 2e-3 gradients), chunk sizes 1 / non-divisor / T, shared
 * and broadcast weights, streams continued mid-chunk (split = whole), the published conformance
 * vectors, the backward's recompute and checkpoint paths, heads split over dispatches where one
 * storage binding cannot hold them, what it declines, and that it frees what it allocates.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadWebGpuBackend } from '../../src/backends/webgpu/load.js';
import { webgpuScanLimits } from '../../src/backends/webgpu/memory-scan.js';
import {
  add,
  dispose,
  grad,
  type MemoryScanInputs,
  type MemoryScanOptions,
  type MemoryState,
  memory,
  memoryScan,
  mul,
  Rng,
  sum,
  type Tensor,
  tensor,
  tidy,
  vjp,
} from '../../src/index.js';
import { sliceTokens, usesFusedScan } from '../../src/memory/scan.js';
import { relError } from '../helpers/compare.js';
import { CONFORMANCE_CASES, loadConformanceCase, type StoredArray } from '../helpers/conformance.js';
import {
  mapScanInputsAsync as mapInputs,
  randomScanInputs,
  scanLeaves,
  scanParams,
  TOKEN_KEYS,
} from '../helpers/memory-scan-cases.js';
import { gpu, skipReason } from './gpu.js';

const VALUE_TOL = 1e-4;
const GRAD_TOL = 2e-3;

/** The same values as a float32 tensor on a WebGPU backend. */
const onGpu =
  (backend = 'webgpu') =>
  async (t: Tensor): Promise<Tensor> =>
    tensor(Float32Array.from(await t.data()), t.shape, { dtype: 'float32', backend });

/** The named outputs of a scan: y and the state's matrices. */
function outputs(r: { y: Tensor; state: MemoryState }): [string, Tensor][] {
  return [
    ['y', r.y],
    ...r.state.weights.map((w, l): [string, Tensor] => [`W${l}`, w]),
    ...r.state.momentum.map((s, l): [string, Tensor] => [`S${l}`, s]),
    ...r.state.chunkStartWeights.map((c, l): [string, Tensor] => [`chunkStart${l}`, c]),
  ];
}

/**
 * Reads named tensors, then disposes them, except those of `inputs` (a state may hand an input
 * back: the chunk-start weights of a call that never left its first chunk).
 */
async function readAll(
  named: [string, Tensor][],
  inputs?: MemoryScanInputs,
): Promise<Map<string, Float32Array | Float64Array>> {
  const data = await Promise.all(named.map(([, t]) => t.data()));
  const out = new Map(named.map(([name], i) => [name, data[i] as Float32Array | Float64Array]));
  const keep = new Set(inputs ? scanLeaves(inputs).map(([, t]) => t) : []);
  dispose([...new Set(named.map(([, t]) => t))].filter((t) => !keep.has(t)));
  return out;
}

/**
 * L = Σ y ⊙ c_y + Σ_l W_l ⊙ c_W + Σ_l S_l ⊙ c_S (+ chunk-start weights when the stream ends
 * mid-chunk), with fixed random float64 cotangents moved to the scan's backend.
 */
async function lossFor(
  rng: Rng,
  ref: { y: Tensor; state: MemoryState },
  backend: string,
): Promise<(r: { y: Tensor; state: MemoryState }) => Tensor> {
  const named = outputs(ref).filter(
    ([name]) => !name.startsWith('chunkStart') || ref.state.position % ref.state.chunkSize !== 0,
  );
  const move = backend === 'reference' ? async (t: Tensor) => t : onGpu(backend);
  const cot = await Promise.all(
    named.map(([, t]) => move(rng.normal(t.shape, { dtype: 'float64', backend: 'reference' }))),
  );
  const names = named.map(([name]) => name);
  return (r) => {
    const all = new Map(outputs(r));
    return names.map((name, i) => sum(mul(all.get(name)!, cot[i]!))).reduce((a, b) => add(a, b));
  };
}

const worst = { value: 0, grad: 0 };

/**
 * Runs the case fused (float32, webgpu) and composed (float64, reference); asserts y, the final
 * state and (with `grads`) the gradient of every input within the float32 tolerances.
 */
async function compare(
  label: string,
  x64: MemoryScanInputs,
  options: MemoryScanOptions,
  { grads = true, backend = 'webgpu', seed = 7 } = {},
): Promise<void> {
  const x32 = await mapInputs(x64, onGpu(backend));
  assert.ok(usesFusedScan(x32, options), `${label}: the fused kernels run it`);
  const ref = memoryScan(x64, options);
  const fused = memoryScan(x32, options);
  assert.equal(fused.y.backend.name, backend);
  assert.equal(fused.state.position, ref.state.position);
  const loss64 = await lossFor(new Rng(seed), ref, 'reference');
  const loss32 = await lossFor(new Rng(seed), ref, backend);
  const want = await readAll(outputs(ref), x64);
  const got = await readAll(outputs(fused), x32);
  for (const [name, w] of want) {
    const e = relError(got.get(name)!, w);
    worst.value = Math.max(worst.value, e);
    assert.ok(e < VALUE_TOL, `${label}: ${name} differs by ${e}`);
  }
  if (grads) {
    const g64 = await readAll(scanLeaves(grad((p: MemoryScanInputs) => loss64(memoryScan(p, options)))(x64)));
    const g32 = await readAll(scanLeaves(grad((p: MemoryScanInputs) => loss32(memoryScan(p, options)))(x32)));
    for (const [name, w] of g64) {
      const e = relError(g32.get(name)!, w);
      worst.grad = Math.max(worst.grad, e);
      assert.ok(e < GRAD_TOL, `${label}: grad ${name} differs by ${e}`);
    }
  }
  dispose([...new Set(scanLeaves(x32).map(([, t]) => t))]);
}

describe('fused memoryScan on webgpu', { skip: skipReason }, () => {
  it('runs depth 1–2 float32 fused, and declines depth 3, float64 and weights that do not broadcast', async () => {
    const kernels = gpu!.fusedMemoryScan!;
    const rng = new Rng(1);
    for (const depth of [1, 2, 3]) {
      const x = await mapInputs(randomScanInputs(rng, { lead: [2], T: 5, d: 4, h: 8, depth }), onGpu());
      assert.equal(usesFusedScan(x, { chunkSize: 2 }), depth !== 3, `depth ${depth}`);
      dispose(scanLeaves(x).map(([, t]) => t));
    }
    const x64 = randomScanInputs(rng, { lead: [2], T: 5, d: 4, h: 8, depth: 2 });
    assert.equal(kernels.supports(scanParams(x64, 2), 'float64'), false);
    assert.equal(kernels.supports(scanParams(x64, 2), 'float32'), true);
    const wide = randomScanInputs(rng, { lead: [2], T: 5, d: 4, h: 8, depth: 2, weightLead: [3] });
    assert.equal(kernels.supports(scanParams(wide, 2), 'float32'), false);
    // depth 3 composes engine ops on webgpu, still matching the reference
    const deep = randomScanInputs(rng, { lead: [1], T: 4, d: 3, h: 5, depth: 3 });
    const deep32 = await mapInputs(deep, onGpu());
    const got = await readAll(outputs(memoryScan(deep32, { chunkSize: 2 })), deep32);
    const want = await readAll(outputs(memoryScan(deep, { chunkSize: 2 })), deep);
    for (const [name, w] of want) assert.ok(relError(got.get(name)!, w) < VALUE_TOL, `depth 3 ${name}`);
  });

  it('matches float64 values and gradients: depth 1–2, SiLU/GELU, residual, chunk 1 / 3 / T', async () => {
    const rng = new Rng(11);
    for (const depth of [1, 2]) {
      for (const activation of ['silu', 'gelu'] as const) {
        for (const residual of [false, true]) {
          for (const chunkSize of [1, 3, 9]) {
            // odd widths where the chunk does not divide T
            const [d, h] = chunkSize === 3 ? [3, 5] : [4, 8];
            const x = randomScanInputs(rng, { lead: [2], T: 9, d, h, depth });
            const label = `depth ${depth} ${activation} residual ${residual} chunk ${chunkSize}`;
            await compare(label, x, { chunkSize, activation, residual }, { seed: chunkSize });
          }
        }
      }
    }
  });

  it('leading axes [2, 3] with per-head, shared and broadcast weights, with and without momentum', async () => {
    const rng = new Rng(13);
    for (const weightLead of [[2, 3], [], [3], [2, 1]]) {
      for (const momentum of [true, false]) {
        const x = randomScanInputs(rng, { lead: [2, 3], T: 7, d: 4, h: 8, depth: 2, weightLead, momentum });
        await compare(`weights lead [${weightLead}] momentum ${momentum}`, x, {
          chunkSize: 3,
          activation: 'gelu',
        });
      }
    }
  });

  it('continues a stream mid-chunk (chunk-start weights in and out) like the reference', async () => {
    const rng = new Rng(14);
    for (const depth of [1, 2]) {
      const chunkSize = 4;
      const whole = randomScanInputs(rng, { lead: [2], T: 16, d: 4, h: 8, depth });
      const prefix = (n: number) => memoryScan(sliceTokens(whole, 0, n), { chunkSize }).state;
      for (const [start, n] of [
        [3, 1], // completes the chunk: chunk-start weights = final weights
        [3, 2], // crosses a boundary and ends mid-chunk: chunk-start weights are a new output
        [3, 10], // several chunks, ends mid-chunk
        [4, 3], // starts at a boundary, ends mid-chunk: chunk-start weights = the input weights
      ] as const) {
        const x: MemoryScanInputs = { ...sliceTokens(whole, start, n), ...prefix(start) };
        await compare(`depth ${depth} tokens ${start}+${n}`, x, { chunkSize, residual: depth === 1 });
      }
    }
  });

  it('a stream split into calls gives the whole stream’s outputs on webgpu (split = whole)', async () => {
    const rng = new Rng(15);
    for (const depth of [1, 2]) {
      const options = { chunkSize: 4, activation: 'gelu' as const };
      const x = await mapInputs(randomScanInputs(rng, { lead: [2], T: 14, d: 4, h: 8, depth }), onGpu());
      const whole = memoryScan(x, options);
      const first = memoryScan(sliceTokens(x, 0, 5), options);
      const second = memoryScan({ ...sliceTokens(x, 5, 2), ...first.state }, options);
      const third = memoryScan({ ...sliceTokens(x, 7, 7), ...second.state }, options);
      const want = await readAll(outputs(whole), x);
      const parts = await readAll([
        ['y0', first.y],
        ['y1', second.y],
        ['y2', third.y],
      ]);
      const split = await readAll(outputs(third).filter(([name]) => name !== 'y'));
      const ys = want.get('y')!;
      // y is (2, 14, 4): rows 0–4, 5–6 and 7–13 of each head come from the three calls
      const joined = new Float32Array(ys.length);
      for (let head = 0; head < 2; head++) {
        joined.set(parts.get('y0')!.subarray(head * 20, head * 20 + 20), head * 56);
        joined.set(parts.get('y1')!.subarray(head * 8, head * 8 + 8), head * 56 + 20);
        joined.set(parts.get('y2')!.subarray(head * 28, head * 28 + 28), head * 56 + 28);
      }
      assert.ok(relError(joined, ys) < 1e-5, `depth ${depth}: y of the split stream`);
      for (const [name, w] of want) {
        if (name !== 'y') assert.ok(relError(split.get(name)!, w) < 1e-5, `depth ${depth}: ${name}`);
      }
      dispose(scanLeaves(x).map(([, t]) => t));
    }
  });

  it('matches the published conformance vectors (1e-4 values, 2e-3 gradients)', async () => {
    for (const c of CONFORMANCE_CASES) {
      const t = (o: StoredArray) =>
        tensor(Float32Array.from(o.data), o.shape, { dtype: 'float32', backend: 'webgpu' });
      const { depth, inputs, options, data } = loadConformanceCase(c, t);
      const layers = Array.from({ length: depth }, (_, i) => i);
      assert.ok(usesFusedScan(inputs, options), `case ${c} is fused`);
      const { y, state } = memoryScan(inputs, options);
      const expect = (what: string, got: ArrayLike<number>, want: number[], tol: number) => {
        const e = relError(got, want);
        worst[tol === VALUE_TOL ? 'value' : 'grad'] = Math.max(
          worst[tol === VALUE_TOL ? 'value' : 'grad'],
          e,
        );
        assert.ok(e < tol, `case ${c}: ${what} differs by ${e}`);
      };
      const values = await readAll([
        ['y', y],
        ...layers.map((i): [string, Tensor] => [`W_${i}`, state.weights[i]!]),
        ...layers.map((i): [string, Tensor] => [`S_${i}`, state.momentum[i]!]),
      ]);
      for (const [name, got] of values) expect(name, got, data.expected[name]!.data, VALUE_TOL);
      const g = grad((p: MemoryScanInputs) => {
        const r = memoryScan(p, options);
        let l = sum(mul(r.y, t(data.cotangents.y!)));
        for (const i of layers) l = add(l, sum(mul(r.state.weights[i]!, t(data.cotangents[`W_${i}`]!))));
        return l;
      })(inputs);
      const grads = await readAll([
        ...TOKEN_KEYS.map((key): [string, Tensor] => [key, g[key]]),
        ...layers.map((i): [string, Tensor] => [`W0_${i}`, g.weights[i]!]),
        ...layers.map((i): [string, Tensor] => [`S0_${i}`, g.momentum![i]!]),
      ]);
      for (const [name, got] of grads) expect(`grad ${name}`, got, data.grads[name]!.data, GRAD_TOL);
      dispose(scanLeaves(inputs).map(([, x]) => x));
    }
  });

  it('gates exactly 0 (η = 0, α = 0) and near 1 stay finite and accurate', async () => {
    const rng = new Rng(16);
    for (const [alpha, eta] of [
      [0, 0],
      [1 - 1e-6, 1 - 1e-6],
      [1 - 1e-6, 0],
    ] as const) {
      for (const depth of [1, 2]) {
        const x = randomScanInputs(rng, {
          lead: [1],
          T: 40,
          d: 4,
          h: 8,
          depth,
          alpha: [alpha, alpha],
          eta: [eta, eta],
          theta: [0.001, 0.003],
        });
        await compare(`α=${alpha} η=${eta} depth ${depth}`, x, { chunkSize: 16 });
      }
    }
  });

  it('the backward recomputes the piece-start states (also with √P checkpoints) when the forward keeps none', async () => {
    const rng = new Rng(17);
    const saved = { ...webgpuScanLimits };
    try {
      webgpuScanLimits.saveBytes = 0; // the forward keeps nothing: the backward recomputes
      const x = randomScanInputs(rng, { lead: [2], T: 23, d: 4, h: 8, depth: 2 });
      await compare('recomputed states', x, { chunkSize: 2 });
      webgpuScanLimits.stateBytes = 0; // and checkpoints every ⌈√P⌉ pieces
      await compare('checkpointed states', x, { chunkSize: 2, activation: 'gelu' });
      const mid = { ...sliceTokens(x, 1, 20), ...memoryScan(sliceTokens(x, 0, 1), { chunkSize: 3 }).state };
      await compare('checkpointed, mid-chunk', mid, { chunkSize: 3 });
    } finally {
      Object.assign(webgpuScanLimits, saved);
    }
  });

  it('splits the heads over dispatches where one binding cannot hold them, and declines a head too large', async () => {
    const tiny = await loadWebGpuBackend({
      name: 'webgpu-scan-tiny',
      limits: { maxStorageBufferBindingSize: 4096 },
    });
    assert.ok(tiny);
    try {
      const rng = new Rng(18);
      const before = tiny.stats().dispatches;
      const x = randomScanInputs(rng, { lead: [2, 3], T: 7, d: 4, h: 8, depth: 2, weightLead: [3] });
      await compare('one head per dispatch', x, { chunkSize: 3 }, { backend: 'webgpu-scan-tiny' });
      const mid = { ...sliceTokens(x, 2, 5), ...memoryScan(sliceTokens(x, 0, 2), { chunkSize: 3 }).state };
      await compare(
        'one head per dispatch, mid-chunk',
        mid,
        { chunkSize: 3 },
        { backend: 'webgpu-scan-tiny' },
      );
      assert.ok(tiny.stats().dispatches - before > 100, 'stages run per head');
      // 200 tokens of width 8 do not fit a 4 KiB binding for one head: the composed path runs it
      const big = randomScanInputs(rng, { lead: [1], T: 200, d: 8, h: 8, depth: 1 });
      assert.equal(tiny.fusedMemoryScan!.supports(scanParams(big, 4), 'float32'), false);
    } finally {
      tiny.destroy();
    }
  });

  it('frees everything it allocates: tensors and GPU bytes after forward, backward and a released tape', async () => {
    const backend = gpu!;
    const x = await mapInputs(
      randomScanInputs(new Rng(19), { lead: [2], T: 12, d: 4, h: 8, depth: 2 }),
      onGpu(),
    );
    const options = { chunkSize: 5 };
    const loss = (p: MemoryScanInputs) => sum(mul(memoryScan(p, options).y, 1));
    const settle = async () => {
      await backend.sync();
      backend.trim();
    };
    const warm = tidy(() => grad(loss)(x).q);
    await warm.data();
    warm.dispose();
    await settle();
    const tensors = memory().tensors;
    const live = backend.stats().liveBytes;
    const y = tidy(() => memoryScan(x, options).y);
    await y.data();
    y.dispose();
    const g = tidy(() => scanLeaves(grad(loss)(x)).map(([, t]) => t));
    await Promise.all(g.map((t) => t.data()));
    dispose(g);
    await settle();
    assert.equal(memory().tensors, tensors, 'live tensors');
    assert.equal(backend.stats().liveBytes, live, 'GPU bytes in use');
    // a recorded forward whose backward never runs: its saved states go when the tape does
    tidy(() => {
      const pending = vjp(loss, x);
      assert.ok(backend.stats().liveBytes > live, 'the recorded forward keeps its piece-start states');
      pending.release();
    });
    await settle();
    assert.equal(backend.stats().liveBytes, live, 'GPU bytes after a released tape');
    assert.equal(memory().tensors, tensors, 'live tensors after a released tape');
    dispose(scanLeaves(x).map(([, t]) => t));
  });

  it('reports the worst relative errors seen against float64', (t) => {
    t.diagnostic(
      `worst value error ${worst.value.toExponential(2)}, worst gradient error ${worst.grad.toExponential(2)}`,
    );
    assert.ok(worst.value < VALUE_TOL && worst.grad < GRAD_TOL);
  });
});
