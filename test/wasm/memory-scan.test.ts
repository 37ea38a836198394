/**
 * The wasm backend's fused memory scan (src/backends/wasm/memory-scan.ts + assembly/memory.ts)
 * against the composed memoryScan on the reference backend in float64: values, the final state,
 * gradients with respect to every input, the published conformance vectors, extreme gates, the
 * recompute/checkpoint paths of the backward, memory hygiene, and what falls back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryScanLimits } from '../../src/backends/wasm/memory-scan.js';
import {
  add,
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
  wasmBackend,
} from '../../src/index.js';
import { sliceTokens, usesFusedScan } from '../../src/memory/scan.js';
import { enableWasmThreads } from '../../src/node.js';
import { relError } from '../helpers/compare.js';
import { CONFORMANCE_CASES, loadConformanceCase, type StoredArray } from '../helpers/conformance.js';
import {
  mapScanInputs as mapInputs,
  randomScanInputs,
  scanLeaves,
  scanParams,
  TOKEN_KEYS,
} from '../helpers/memory-scan-cases.js';

/** The same values as a float32 tensor on the wasm backend. */
function toWasm(t: Tensor): Tensor {
  return tensor(Float32Array.from(t.dataSync()), t.shape, { dtype: 'float32', backend: 'wasm' });
}

/** Σ y ⊙ c_y + Σ W_T ⊙ c_W + Σ S_T ⊙ c_S (+ Σ chunkStart_T ⊙ c_C), cotangents cast to y's backend. */
interface Cotangents {
  y: Tensor;
  W: Tensor[];
  S: Tensor[];
  C: Tensor[];
}

function randomCotangents(rng: Rng, state: MemoryState, y: Tensor): Cotangents {
  const r = (t: Tensor) => rng.normal(t.shape, { dtype: 'float64', backend: 'reference' });
  return {
    y: r(y),
    W: state.weights.map(r),
    S: state.momentum.map(r),
    C: state.chunkStartWeights.map(r),
  };
}

function lossOf(
  x: MemoryScanInputs,
  options: MemoryScanOptions,
  cot: Cotangents,
  toBackend: (t: Tensor) => Tensor,
  withChunkStart: boolean,
): Tensor {
  const r = memoryScan(x, options);
  let l = sum(mul(r.y, toBackend(cot.y)));
  r.state.weights.forEach((w, i) => {
    l = add(l, sum(mul(w, toBackend(cot.W[i]!))));
  });
  r.state.momentum.forEach((s, i) => {
    l = add(l, sum(mul(s, toBackend(cot.S[i]!))));
  });
  if (withChunkStart) {
    r.state.chunkStartWeights.forEach((c, i) => {
      l = add(l, sum(mul(c, toBackend(cot.C[i]!))));
    });
  }
  return l;
}

const worst = { value: 0, grad: 0 };

/**
 * Runs the case fused (float32, wasm) and composed (float64, reference); asserts y, the final
 * state and (with `grads`) the gradient of every input within the tolerances.
 */
function compare(
  label: string,
  x64: MemoryScanInputs,
  options: MemoryScanOptions,
  { grads = true, valueTol = 1e-4, gradTol = 1e-3, rng = new Rng(7) } = {},
): void {
  tidy(() => {
    const x32 = mapInputs(x64, toWasm);
    const fused = memoryScan(x32, options);
    const ref = memoryScan(x64, options);
    assert.equal(fused.y.backend.name, 'wasm');
    const check = (what: string, a: Tensor, b: Tensor) => {
      assert.deepEqual(a.shape, b.shape, `${label}: ${what} shape`);
      const e = relError(a, b);
      worst.value = Math.max(worst.value, e);
      assert.ok(e < valueTol, `${label}: ${what} differs by ${e}`);
    };
    check('y', fused.y, ref.y);
    assert.equal(fused.state.position, ref.state.position);
    assert.equal(fused.state.chunkSize, ref.state.chunkSize);
    for (const [what, got, want] of [
      ['W', fused.state.weights, ref.state.weights],
      ['S', fused.state.momentum, ref.state.momentum],
      ['chunkStart', fused.state.chunkStartWeights, ref.state.chunkStartWeights],
    ] as const) {
      want.forEach((w, l) => {
        check(`${what}${l}`, got[l]!, w);
      });
    }
    if (!grads) return;
    // The chunk-start weights are their own output only when the stream ends mid-chunk.
    const ends = (ref.state.position % options.chunkSize) as number;
    const cot = randomCotangents(rng, ref.state, ref.y);
    const g64 = grad((p: MemoryScanInputs) => lossOf(p, options, cot, (t) => t, ends !== 0))(x64);
    const g32 = grad((p: MemoryScanInputs) => lossOf(p, options, cot, toWasm, ends !== 0))(x32);
    const want = new Map(scanLeaves(g64));
    for (const [name, got] of scanLeaves(g32)) {
      const e = relError(got, want.get(name)!);
      worst.grad = Math.max(worst.grad, e);
      assert.ok(e < gradTol, `${label}: grad ${name} differs by ${e}`);
    }
  });
}

describe('fused memoryScan on wasm', { skip: wasmBackend === null && 'no wasm backend' }, () => {
  it('is what memoryScan runs on wasm (depth 1–2), and declines depth 3, T = 0 and float64', () => {
    assert.equal(typeof wasmBackend!.fusedMemoryScan?.supports, 'function');
    tidy(() => {
      const rng = new Rng(1);
      for (const depth of [1, 2, 3]) {
        const x = mapInputs(randomScanInputs(rng, { lead: [2], T: 5, d: 4, h: 8, depth }), toWasm);
        assert.equal(usesFusedScan(x, { chunkSize: 2 }), depth !== 3, `depth ${depth}`);
        // the composed path still serves depth 3 on wasm
        assert.equal(memoryScan(x, { chunkSize: 2 }).y.backend.name, 'wasm');
      }
      const x = mapInputs(randomScanInputs(rng, { lead: [2], T: 0, d: 4, h: 8, depth: 2 }), toWasm);
      assert.equal(usesFusedScan(x, { chunkSize: 2 }), false);
      const x64 = randomScanInputs(rng, { lead: [2], T: 5, d: 4, h: 8, depth: 2 });
      assert.equal(wasmBackend!.fusedMemoryScan!.supports(scanParams(x64, 2), 'float64'), false);
      // weights whose leading axes do not broadcast to q's
      const wide = mapInputs(
        randomScanInputs(rng, { lead: [2], T: 5, d: 4, h: 8, depth: 2, weightLead: [3] }),
        toWasm,
      );
      assert.equal(usesFusedScan(wide, { chunkSize: 2 }), false);
    });
  });

  it('matches the float64 reference: depth 1–2, SiLU/GELU, residual, chunk 1 / non-divisor / T', () => {
    const rng = new Rng(11);
    for (const depth of [1, 2]) {
      for (const activation of ['silu', 'gelu'] as const) {
        for (const residual of [false, true]) {
          for (const chunkSize of [1, 3, 10]) {
            // odd widths exercise the kernels' scalar tails, multiples of 4 their SIMD paths
            const [d, h] = chunkSize === 3 ? [3, 5] : [4, 8];
            const x = randomScanInputs(rng, { lead: [2], T: 10, d, h, depth });
            const label = `depth ${depth} ${activation} residual ${residual} chunk ${chunkSize}`;
            compare(label, x, { chunkSize, activation, residual }, { grads: false });
          }
        }
      }
    }
  });

  it('gradients of every input match float64 autodiff of the composed scan (same grid)', () => {
    const rng = new Rng(12);
    for (const depth of [1, 2]) {
      for (const activation of ['silu', 'gelu'] as const) {
        for (const residual of [false, true]) {
          for (const chunkSize of [1, 3, 9]) {
            const [d, h] = chunkSize === 3 ? [3, 5] : [4, 8];
            const x = randomScanInputs(rng, { lead: [2], T: 9, d, h, depth });
            const label = `depth ${depth} ${activation} residual ${residual} chunk ${chunkSize}`;
            compare(label, x, { chunkSize, activation, residual }, { rng });
          }
        }
      }
    }
  });

  it('leading axes [2, 3] with per-head, shared and partly broadcast weights, with and without momentum', () => {
    const rng = new Rng(13);
    for (const weightLead of [[2, 3], [], [3], [2, 1]]) {
      for (const momentum of [true, false]) {
        const x = randomScanInputs(rng, { lead: [2, 3], T: 7, d: 4, h: 8, depth: 2, weightLead, momentum });
        compare(`weights lead [${weightLead}] momentum ${momentum}`, x, { chunkSize: 3 }, { rng });
      }
    }
  });

  it('continues a stream mid-chunk (chunk-start weights in and out), in any split', () => {
    const rng = new Rng(14);
    for (const depth of [1, 2]) {
      const chunkSize = 4;
      const whole = randomScanInputs(rng, { lead: [2], T: 16, d: 4, h: 8, depth });
      // a prefix of 3 tokens leaves the stream one token before a chunk boundary
      const prefix = memoryScan(sliceTokens(whole, 0, 3), { chunkSize });
      for (const [start, n] of [
        [3, 1], // completes the chunk: chunk-start weights = final weights
        [3, 2], // crosses a boundary and ends mid-chunk: chunk-start weights are a new output
        [3, 10], // several chunks, ends mid-chunk
        [4, 3], // starts at a boundary, ends mid-chunk: chunk-start weights = the input weights
      ] as const) {
        const first = start === 3 ? prefix.state : memoryScan(sliceTokens(whole, 0, 4), { chunkSize }).state;
        const x: MemoryScanInputs = { ...sliceTokens(whole, start, n), ...first };
        compare(`depth ${depth} tokens ${start}+${n}`, x, { chunkSize, residual: depth === 1 }, { rng });
      }
    }
  });

  it('matches the published conformance vectors in float32 (values and gradients, 1e-3)', () => {
    for (const c of CONFORMANCE_CASES) {
      tidy(() => {
        const t = (o: StoredArray) =>
          tensor(Float32Array.from(o.data), o.shape, { dtype: 'float32', backend: 'wasm' });
        const { depth, inputs, options, data } = loadConformanceCase(c, t);
        const layers = Array.from({ length: depth }, (_, i) => i);
        assert.ok(usesFusedScan(inputs, options), `case ${c} is fused`);
        const { y, state } = memoryScan(inputs, options);
        const expect = (what: string, got: Tensor, want: number[], tol: number) => {
          const e = relError(got, want);
          assert.ok(e < tol, `case ${c}: ${what} differs by ${e}`);
        };
        expect('y', y, data.expected.y.data, 1e-3);
        for (const i of layers) {
          expect(`W_${i}`, state.weights[i]!, data.expected[`W_${i}`].data, 1e-3);
          expect(`S_${i}`, state.momentum[i]!, data.expected[`S_${i}`].data, 1e-3);
        }
        const g = grad((p: MemoryScanInputs) => {
          const r = memoryScan(p, options);
          let l = sum(mul(r.y, t(data.cotangents.y)));
          for (const i of layers) l = add(l, sum(mul(r.state.weights[i]!, t(data.cotangents[`W_${i}`]))));
          return l;
        })(inputs);
        for (const key of TOKEN_KEYS) expect(`grad ${key}`, g[key], data.grads[key].data, 1e-3);
        for (const i of layers) {
          expect(`grad W0_${i}`, g.weights[i]!, data.grads[`W0_${i}`].data, 1e-3);
          expect(`grad S0_${i}`, g.momentum![i]!, data.grads[`S0_${i}`].data, 1e-3);
        }
      });
    }
  });

  it('gates exactly 0 (η = 0, α = 0) and near 1 stay finite and accurate', () => {
    const rng = new Rng(15);
    for (const [alpha, eta] of [
      [0, 0],
      [1 - 1e-6, 1 - 1e-6],
      [1e-6, 1 - 1e-6],
      [1 - 1e-6, 0],
    ] as const) {
      for (const depth of [1, 2]) {
        const x = randomScanInputs(rng, {
          lead: [1],
          T: 70,
          d: 4,
          h: 8,
          depth,
          alpha: [alpha, alpha],
          eta: [eta, eta],
          theta: [0.001, 0.003],
        });
        const label = `α=${alpha} η=${eta} depth ${depth}`;
        tidy(() => {
          const r = memoryScan(mapInputs(x, toWasm), { chunkSize: 16 });
          assert.ok(
            r.y.dataSync().every((u) => Number.isFinite(u)),
            `${label}: non-finite output`,
          );
        });
        compare(label, x, { chunkSize: 16 }, { rng });
      }
    }
  });

  it('the backward recomputes the piece-start states (also with √P checkpoints) when the forward keeps none', () => {
    const rng = new Rng(16);
    const saved = { ...memoryScanLimits };
    try {
      memoryScanLimits.saveBytes = 0; // the forward keeps nothing: the backward recomputes
      const x = randomScanInputs(rng, { lead: [2], T: 23, d: 4, h: 8, depth: 2 });
      compare('recomputed states', x, { chunkSize: 2 }, { rng });
      memoryScanLimits.stateBytes = 0; // and checkpoints every ⌈√P⌉ pieces
      compare('checkpointed states', x, { chunkSize: 2, activation: 'gelu' }, { rng });
      const mid = { ...sliceTokens(x, 1, 20), ...memoryScan(sliceTokens(x, 0, 1), { chunkSize: 3 }).state };
      compare('checkpointed, mid-chunk', mid, { chunkSize: 3 }, { rng });
    } finally {
      Object.assign(memoryScanLimits, saved);
    }
  });

  it('runs heads on the worker threads with the same results, bit for bit', () => {
    const backend = wasmBackend!;
    const rng = new Rng(19);
    const x = mapInputs(
      randomScanInputs(rng, { lead: [2, 3], T: 13, d: 4, h: 8, depth: 2, weightLead: [3] }),
      toWasm,
    );
    const start = memoryScan(
      mapInputs(
        sliceTokens(
          randomScanInputs(rng, { lead: [2, 3], T: 2, d: 4, h: 8, depth: 2, weightLead: [3] }),
          0,
          2,
        ),
        toWasm,
      ),
      { chunkSize: 5 },
    );
    const mid: MemoryScanInputs = { ...x, ...start.state };
    const options = { chunkSize: 5, activation: 'gelu' as const };
    const run = () =>
      tidy(() => {
        const r = memoryScan(mid, options);
        const loss = (p: MemoryScanInputs) => {
          const o = memoryScan(p, options);
          return add(sum(mul(o.y, o.y)), sum(o.state.chunkStartWeights[1]!));
        };
        const g = grad(loss)(mid);
        return [r.y, ...r.state.weights, ...scanLeaves(g).map(([, t]) => t)].map((t) => t.dataSync());
      });
    const single = run();
    const pool = enableWasmThreads(backend, 3);
    try {
      assert.ok(pool.runTasks, 'the pool runs tasks');
      const threaded = run();
      threaded.forEach((values, j) => {
        assert.deepEqual(values, single[j], `result ${j}`);
      });
    } finally {
      pool.terminate();
    }
  });

  it('has no second derivative: differentiating twice through it throws the customOp error', () => {
    tidy(() => {
      const x = mapInputs(randomScanInputs(new Rng(17), { lead: [2], T: 6, d: 4, h: 8, depth: 2 }), toWasm);
      const options = { chunkSize: 2 };
      const inner = (w: Tensor[]) => sum(mul(memoryScan({ ...x, weights: w }, options).y, 1));
      // the inner cotangent does not depend on the weights, but the outer tape tracks them
      assert.throws(
        () => grad((w: Tensor[]) => sum(grad(inner)(w)[0]!))([...x.weights]),
        /no second derivative/,
      );
      // a cotangent that depends on the outer variables as well
      const sq = (w: Tensor[]) => {
        const y = memoryScan({ ...x, weights: w }, options).y;
        return sum(mul(y, y));
      };
      assert.throws(
        () => grad((w: Tensor[]) => sum(grad(sq)(w)[1]!))([...x.weights]),
        /no second derivative/,
      );
      // the composed path (fused: false) differentiates twice on wasm
      const composed = (w: Tensor[]) =>
        sum(mul(memoryScan({ ...x, weights: w }, { ...options, fused: false }).y, 1));
      const g2 = grad((w: Tensor[]) => sum(grad(composed)(w)[0]!))([...x.weights]);
      assert.ok(g2[0]!.dataSync().every((u) => Number.isFinite(u)));
    });
  });

  it('frees everything it allocates: tensors and heap bytes after forward, backward and a released tape', () => {
    const heap = wasmBackend!.heap;
    const x = mapInputs(randomScanInputs(new Rng(18), { lead: [2], T: 12, d: 4, h: 8, depth: 2 }), toWasm);
    const options = { chunkSize: 5 };
    const loss = (p: MemoryScanInputs) => sum(mul(memoryScan(p, options).y, 1));
    tidy(() => {
      grad(loss)(x); // warms the allocator's free lists
    });
    const tensors = memory().tensors;
    const bytes = heap.inUse;
    tidy(() => {
      memoryScan(x, options);
    });
    tidy(() => {
      grad(loss)(x);
    });
    assert.equal(memory().tensors, tensors, 'live tensors');
    assert.equal(heap.inUse, bytes, 'heap bytes in use');
    // a recorded forward whose backward never runs: the saved states go when the tape does
    tidy(() => {
      const pending = vjp(loss, x);
      assert.ok(heap.inUse > bytes, 'the recorded forward keeps its piece-start states');
      pending.release();
    });
    assert.equal(heap.inUse, bytes, 'heap bytes after a released tape');
    assert.equal(memory().tensors, tensors, 'live tensors after a released tape');
  });

  it('reports the worst relative errors seen against float64', (t) => {
    t.diagnostic(
      `worst value error ${worst.value.toExponential(2)}, worst gradient error ${worst.grad.toExponential(2)}`,
    );
    assert.ok(worst.value < 1e-4 && worst.grad < 1e-3);
  });
});
