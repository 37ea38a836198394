/**
 * The wasm backend's worker-thread pool (Node): products split across threads, and fused
 * attention split into batch slices, equal the single-threaded result exactly (each row is
 * computed by one thread with the same kernel).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attentionPoolLimits } from '../../src/backends/wasm/attention.js';
import { elementwisePoolLimits } from '../../src/backends/wasm/elementwise.js';
import { convPoolLimits } from '../../src/backends/wasm/fused.js';
import {
  type AttentionOptions,
  add,
  attention,
  broadcastTo,
  concat,
  exp,
  full,
  fusedConvSiluNorm,
  grad,
  matmul,
  mul,
  pad,
  Rng,
  silu,
  slice,
  sub,
  sum,
  type Tensor,
  tensor,
  tidy,
  transpose,
  wasmBackend,
} from '../../src/index.js';
import { enableWasmThreads } from '../../src/node.js';
import { relError } from '../helpers/compare.js';

/** Records [task kernel, task count] of every runTasks job the pool runs from now on. */
function recordTasks(pool: ReturnType<typeof enableWasmThreads>): [string, number][] {
  const tasks: [string, number][] = [];
  const runTasks = pool.runTasks!.bind(pool);
  pool.runTasks = (name, count, args, argStride, scratchBytes) => {
    tasks.push([name, count]);
    runTasks(name, count, args, argStride, scratchBytes);
  };
  return tasks;
}

describe('wasm worker threads', { skip: !wasmBackend && 'no wasm backend here' }, () => {
  it('row-split products equal single-threaded ones, for every transpose and odd sizes', () => {
    const backend = wasmBackend!;
    const rng = new Rng(4);
    const cases: [number, number, number][] = [
      [257, 63, 129],
      [64, 256, 64],
      [1030, 17, 9],
    ];
    const inputs = cases.map(([m, k, n]) => ({
      a: rng.normal([m, k], { backend: 'wasm' }),
      b: rng.normal([k, n], { backend: 'wasm' }),
      at: rng.normal([k, m], { backend: 'wasm' }),
      bt: rng.normal([n, k], { backend: 'wasm' }),
    }));
    const run = () =>
      inputs.map(({ a, b, at, bt }) =>
        tidy(() => [
          matmul(a, b).dataSync(),
          matmul(at, b, { transposeA: true }).dataSync(),
          matmul(a, bt, { transposeB: true }).dataSync(),
          matmul(at, bt, { transposeA: true, transposeB: true }).dataSync(),
        ]),
      );
    const single = run();
    const pool = enableWasmThreads(backend, 3, 0); // every product goes to the pool
    try {
      assert.equal(backend.threadPool, pool);
      const threaded = run();
      assert.equal(pool.jobs, 12, 'every product ran on the pool');
      threaded.forEach((results, c) => {
        results.forEach((r, t) => {
          assert.deepEqual(r, single[c]![t], `case ${c}, transpose variant ${t}`);
        });
      });
    } finally {
      pool.terminate();
    }
    assert.equal(backend.threadPool, null);
  });

  it('elementwise kernels cut into shares on the pool equal one call bit for bit', () => {
    const backend = wasmBackend!;
    const rng = new Rng(5);
    const x = rng.normal([3, 1, 37, 5], { std: 3, backend: 'wasm' });
    const y = rng.normal([1, 4, 37, 1], { backend: 'wasm' });
    const z = rng.normal([6, 37, 3], { backend: 'wasm' });
    const run = () =>
      tidy(() =>
        [
          add(x, y), // broadcasting on two sides
          mul(x, y),
          sub(y, x),
          silu(z), // activations, order 0 and (inside grad) 1
          grad((t: Tensor) => sum(silu(t)))(z),
          exp(z), // unary
          transpose(z, [2, 0, 1]), // strided copy
          slice(z, [1, 3, 0], [4, 30, -1]),
          pad(z, [
            [1, 0],
            [0, 2],
            [1, 1],
          ]), // fill, then copy
          broadcastTo(y, [3, 4, 37, 5]),
          concat([z, z], 1),
          full([1001], 0.25, { backend: 'wasm' }), // fill
        ].map((t) => Float32Array.from(t.dataSync())),
      );
    const single = run();
    const saved = { ...elementwisePoolLimits };
    const pool = enableWasmThreads(backend, 3);
    const tasks = recordTasks(pool);
    elementwisePoolLimits.minElements = 0; // every call goes to the pool
    try {
      const threaded = run();
      assert.ok(tasks.filter(([t]) => t === 'elementwiseTask').length >= 12, `pool jobs: ${tasks.length}`);
      for (const [i, r] of threaded.entries()) assert.deepEqual(r, single[i], `result ${i}`);
    } finally {
      Object.assign(elementwisePoolLimits, saved);
      pool.terminate();
    }
  });

  it('the memory input block in batch slices on the pool equals one call (the taps gradient to rounding)', () => {
    const backend = wasmBackend!;
    const rng = new Rng(6);
    const [B, T, H, dh, K] = [5, 11, 2, 6, 4];
    const z = rng.normal([B, T, H * dh], { backend: 'wasm' });
    const taps = rng.normal([K, H * dh], { std: 0.5, backend: 'wasm' });
    const tail = rng.normal([B, K - 1, H * dh], { backend: 'wasm' });
    const w = rng.normal([B, H, T, dh], { backend: 'wasm' });
    const run = () =>
      tidy(() => {
        const f = (xs: Tensor[]) => fusedConvSiluNorm(xs[0]!, xs[1]!, xs[2]!, H, true, 1e-6)!;
        const grads = grad((xs: Tensor[]) => sum(mul(f(xs), w)))([z, taps, tail]);
        return [f([z, taps, tail]), ...grads].map((t) => Float32Array.from(t.dataSync()));
      });
    const single = run();
    const saved = convPoolLimits.minElements;
    const pool = enableWasmThreads(backend, 2);
    const tasks = recordTasks(pool);
    convPoolLimits.minElements = 0;
    try {
      const [y, dz, dtaps, dtail] = run();
      assert.deepEqual(
        tasks.filter(([t]) => t === 'convSiluNormTask').length,
        3,
        'forward, recorded forward, backward on the pool',
      );
      assert.deepEqual(y, single[0], 'y');
      assert.deepEqual(dz, single[1], 'dz');
      assert.ok(relError(dtaps!, single[2]!) < 1e-6, 'dtaps');
      assert.deepEqual(dtail, single[3], 'dtail');
    } finally {
      convPoolLimits.minElements = saved;
      pool.terminate();
    }
  });

  it('rejects a bad thread count', () => {
    assert.throws(() => enableWasmThreads(wasmBackend!, 0), /threads must be an integer ≥ 1/);
  });
});

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

interface AttentionCase {
  name: string;
  b: number;
  h: number;
  tq: number;
  tk: number;
  dh: number;
  opts: AttentionOptions;
}

const attentionCases: AttentionCase[] = [
  { name: 'causal, B·H = 5', b: 1, h: 5, tq: 70, tk: 70, dh: 8, opts: {} },
  { name: 'sliding window 16, B·H = 6', b: 2, h: 3, tq: 130, tk: 130, dh: 16, opts: { window: 16 } },
  {
    name: 'causal, B·H = 13 (uneven slices of 1 and 2 rows)',
    b: 13,
    h: 1,
    tq: 33,
    tk: 33,
    dh: 4,
    opts: { scale: 0.3 },
  },
  {
    name: 'persistent prefix (N_p = 5) under window 16, B·H = 3',
    b: 1,
    h: 3,
    tq: 130,
    tk: 135,
    dh: 8,
    opts: {
      prefix: 5,
      window: 16,
      queryPositions: range(130),
      keyPositions: [...range(5).map(() => 0), ...range(130)],
    },
  },
  {
    name: 'MAC [P; h; n] (N_p = 4, C = 40), B·H = 5',
    b: 1,
    h: 5,
    tq: 84,
    tk: 84,
    dh: 8,
    opts: {
      prefix: 4,
      queryPositions: [...range(4).map(() => 0), ...range(40), ...range(40)],
      keyPositions: [...range(4).map(() => 0), ...range(40), ...range(40)],
    },
  },
  { name: 'causal, batch 1 (runs on one thread)', b: 1, h: 1, tq: 130, tk: 130, dh: 8, opts: {} },
];

/** Output and gradients (of Σ w ⊙ out) of attention on the wasm backend in float32. */
function attentionRun(c: AttentionCase, data: Float32Array[], fused: boolean): Float32Array[] {
  return tidy(() => {
    const opts = { backend: 'wasm', dtype: 'float32' as const };
    const q = tensor(data[0]!, [c.b, c.h, c.tq, c.dh], opts);
    const k = tensor(data[1]!, [c.b, c.h, c.tk, c.dh], opts);
    const v = tensor(data[2]!, [c.b, c.h, c.tk, c.dh], opts);
    const w = tensor(data[3]!, [c.b, c.h, c.tq, c.dh], opts);
    const o = { ...c.opts, fused };
    const out = attention(q, k, v, o);
    const grads = grad((p: Tensor[]) => sum(mul(attention(p[0]!, p[1]!, p[2]!, o), w)))([q, k, v]);
    return [out, ...grads].map((t) => Float32Array.from(t.dataSync()));
  });
}

function attentionInputs(c: AttentionCase, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  const n = c.b * c.h;
  const uniform = (size: number, lo: number, hi: number) =>
    Float32Array.from({ length: size }, () => lo + (hi - lo) * rng.next());
  return [
    uniform(n * c.tq * c.dh, -2, 2),
    uniform(n * c.tk * c.dh, -1, 1),
    uniform(n * c.tk * c.dh, -1, 1),
    uniform(n * c.tq * c.dh, -1, 1),
  ];
}

describe('wasm worker threads: fused attention', { skip: !wasmBackend && 'no wasm backend here' }, () => {
  it('batch slices on 2 threads equal one thread bit for bit and match the composed path', () => {
    const backend = wasmBackend!;
    const data = attentionCases.map((c, i) => attentionInputs(c, 40 + i));
    const single = attentionCases.map((c, i) => attentionRun(c, data[i]!, true));
    const composed = attentionCases.map((c, i) => attentionRun(c, data[i]!, false));
    const saved = attentionPoolLimits.minWork;
    const pool = enableWasmThreads(backend, 2);
    const tasks = recordTasks(pool);
    attentionPoolLimits.minWork = 0; // every call with batch ≥ 2 goes to the pool
    try {
      attentionCases.forEach((c, i) => {
        tasks.length = 0;
        const threaded = attentionRun(c, data[i]!, true);
        const batch = c.b * c.h;
        const expected: [string, number][] = [];
        if (batch > 1) {
          const slices = Math.min(batch, 2 * attentionPoolLimits.tasksPerThread);
          // the plain forward, then the recorded forward and its backward
          expected.push(['attentionForwardTask', slices], ['attentionForwardTask', slices]);
          expected.push(['attentionBackwardTask', slices]);
        }
        assert.deepEqual(tasks, expected, `${c.name}: pool tasks`);
        ['out', 'dq', 'dk', 'dv'].forEach((name, j) => {
          assert.deepEqual(threaded[j], single[i]![j], `${c.name}: ${name} equals the single-threaded one`);
          const err = relError(threaded[j]!, composed[i]![j]!);
          assert.ok(err <= 1e-4, `${c.name}: ${name} vs composed, relative error ${err.toExponential(2)}`);
        });
      });
    } finally {
      attentionPoolLimits.minWork = saved;
      pool.terminate();
    }
    assert.equal(backend.threadPool, null);
  });

  it('small calls stay on the calling thread', () => {
    const backend = wasmBackend!;
    const c = attentionCases[0]!;
    const data = attentionInputs(c, 9);
    const pool = enableWasmThreads(backend, 2);
    let calls = 0;
    const runTasks = pool.runTasks!.bind(pool);
    pool.runTasks = (...args) => {
      calls++;
      runTasks(...args);
    };
    try {
      assert.ok(c.b * c.h * c.tq * c.tk * c.dh < attentionPoolLimits.minWork, 'the case is below the limit');
      attentionRun(c, data, true);
      assert.equal(calls, 0);
    } finally {
      pool.terminate();
    }
  });
});
