/**
 * The wasm backend's worker-thread pool (Node): products split across threads, and fused
 * attention split into batch slices, equal the single-threaded result exactly (each row is
 * computed by one thread with the same kernel).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { attentionPoolLimits } from '../../src/backends/wasm/attention.js';
import { elementwisePoolLimits } from '../../src/backends/wasm/elementwise.js';
import { convPoolLimits } from '../../src/backends/wasm/fused.js';
import { controlWords, taker } from '../../src/backends/wasm/pool-protocol.js';
import {
  type AttentionOptions,
  add,
  attention,
  broadcastTo,
  concat,
  crossEntropy,
  exp,
  full,
  fusedConvSiluNorm,
  grad,
  matmul,
  mul,
  pad,
  Rng,
  rmsNorm,
  rope,
  ropeHeads,
  silu,
  slice,
  sub,
  sum,
  swigluGate,
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

const src = (path: string) => JSON.stringify(fileURLToPath(new URL(`../../src/${path}`, import.meta.url)));

/**
 * Runs products, elementwise kernels, fused blocks and attention on one thread, then on a pool of
 * 3 threads whose 2 workers never start; prints what went to the pool and which results differ.
 */
const lonePoolScript = `
import { add, attention, matmul, Rng, rmsNorm, swigluGate, tidy, transpose, wasmBackend } from ${src('index.js')};
import { attentionPoolLimits } from ${src('backends/wasm/attention.js')};
import { elementwisePoolLimits } from ${src('backends/wasm/elementwise.js')};
import { blockUntilDone, controlWords, createPoolClient, GATE, SEQ } from ${src('backends/wasm/pool-protocol.js')};
const backend = wasmBackend;
const rng = new Rng(9);
const a = rng.normal([300, 70], { backend: 'wasm' });
const b = rng.normal([70, 90], { backend: 'wasm' });
const x = rng.normal([6, 37, 40], { backend: 'wasm' });
const y = rng.normal([6, 37, 40], { backend: 'wasm' });
const q = rng.normal([2, 2, 33, 8], { backend: 'wasm' });
const run = () => tidy(() => [
  matmul(a, b),
  matmul(a, a, { transposeB: true }),
  add(x, y),
  transpose(x, [2, 0, 1]),
  swigluGate(x, y),
  rmsNorm(x, null, 1e-6),
  attention(q, q, q, { window: 9 }),
].map((t) => Float32Array.from(t.dataSync())));
const single = run();
const control = new Int32Array(new SharedArrayBuffer(4 * controlWords(3)));
const pool = createPoolClient(backend, control, 3, blockUntilDone, () => {});
const kernels = [];
const runTasks = pool.runTasks.bind(pool);
pool.runTasks = (name, ...rest) => { kernels.push(name); runTasks(name, ...rest); };
backend.setThreadPool(pool, 0);
elementwisePoolLimits.minElements = 0;
attentionPoolLimits.minWork = 0;
const alone = run();
const differs = alone.flatMap((r, i) => (r.every((v, j) => Object.is(v, single[i][j])) ? [] : [i]));
console.log(JSON.stringify({ jobs: pool.jobs, kernels, posted: pool.jobs + kernels.length, seq: control[SEQ], gate: control[GATE], differs }));
process.exit(0);
`;

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

  it('RMSNorm, SwiGLU, cross-entropy, RoPE and RoPE with heads in shares on the pool equal one call bit for bit, gradients too', () => {
    const backend = wasmBackend!;
    const rng = new Rng(7);
    const x = rng.normal([3, 5, 7, 36], { std: 2, backend: 'wasm' });
    const scale = rng.normal([36], { backend: 'wasm' }); // one scale row
    const scaleRows = rng.normal([5, 1, 36], { backend: 'wasm' }); // 5 scale rows, each over 7 rows
    const a = rng.normal([1003], { std: 3, backend: 'wasm' }); // not a multiple of 16
    const b = rng.normal([1003], { backend: 'wasm' });
    const logits = rng.normal([2, 19, 11], { std: 4, backend: 'wasm' });
    const targets = tensor(
      Array.from({ length: 38 }, (_, i) => (i % 7 === 3 ? -1 : (i * 5) % 11)),
      [2, 19],
      { dtype: 'int32', backend: 'wasm' },
    );
    const q = rng.normal([2, 2, 13, 8], { backend: 'wasm' });
    const positions = Array.from({ length: 13 }, (_, t) => 2 * t + 1);
    const w = rng.normal([3, 5, 7, 36], { backend: 'wasm' });
    const wq = rng.normal([2, 2, 13, 8], { backend: 'wasm' });
    const heads = 2;
    const xLong = rng.normal([3, 300, 36], { backend: 'wasm' }); // RMSNorm's backward: 4 blocks of 256 rows
    const wLong = rng.normal([3, 300, 36], { backend: 'wasm' });
    const qTokens = rng.normal([5, 13, heads * 8], { backend: 'wasm' }); // cut by batch rows
    const wHeads = rng.normal([5, heads, 13, 8], { backend: 'wasm' });
    const run = () =>
      tidy(() => {
        const norm = (s: Tensor) =>
          grad((xs: Tensor[]) => sum(mul(rmsNorm(xs[0]!, xs[1]!, 1e-6), w)))([x, s]);
        const glu = grad((xs: Tensor[]) => sum(mul(swigluGate(xs[0]!, xs[1]!), xs[1]!)))([a, b]);
        const ce = (l: Tensor) => crossEntropy(l, targets, { ignoreIndex: -1, reduction: 'sum' });
        const ro = (t: Tensor) => sum(mul(rope(t, positions), wq));
        const roHeads = (t: Tensor) => sum(mul(ropeHeads(t, heads, positions), wHeads));
        return [
          rmsNorm(x, scale, 1e-6),
          rmsNorm(x, scaleRows, 1e-6),
          rmsNorm(x, null, 1e-6),
          ...norm(scale),
          ...norm(scaleRows),
          swigluGate(a, b),
          ...glu,
          ce(logits),
          grad(ce)(logits),
          rope(q, positions),
          grad(ro)(q),
          ropeHeads(qTokens, heads, positions),
          grad(roHeads)(qTokens),
          ...grad((xs: Tensor[]) => sum(mul(rmsNorm(xs[0]!, xs[1]!, 1e-6), wLong)))([xLong, scale]),
        ].map((t) => Float32Array.from(t.dataSync()));
      });
    const single = run();
    const saved = { ...elementwisePoolLimits };
    const pool = enableWasmThreads(backend, 3);
    const tasks = recordTasks(pool);
    elementwisePoolLimits.minElements = 0; // every block goes to the pool
    try {
      const threaded = run();
      // rmsNorm: 3 + 2 (recorded) + 1 forwards, one backward over 4 blocks (the others have one
      // block, one call); swiglu, cross-entropy, rope and ropeHeads: 2 forwards + 1 backward each
      assert.equal(
        tasks.filter(([t]) => t === 'blocksTask').length,
        19,
        `pool jobs: ${JSON.stringify(tasks)}`,
      );
      for (const [i, r] of threaded.entries()) assert.deepEqual(r, single[i], `result ${i}`);
    } finally {
      Object.assign(elementwisePoolLimits, saved);
      pool.terminate();
    }
  });

  it('a job waits only for workers that entered it: with none running, the calling thread does it all', () => {
    // In a child process with a time limit: the protocol before the gate waited for every worker,
    // and a thread blocked in Atomics.wait cannot be stopped by the test runner's timeout.
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', lonePoolScript], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    assert.ok(r.jobs >= 2, `products on the pool: ${r.jobs}`);
    for (const kernel of ['elementwiseTask', 'blocksTask', 'attentionForwardTask']) {
      assert.ok(r.kernels.includes(kernel), `${kernel} on the pool: ${r.kernels}`);
    }
    assert.equal(r.seq, r.posted, 'every job posted');
    assert.equal(r.gate, 0, 'the gate is closed between jobs');
    assert.deepEqual(r.differs, [], 'results that differ from one thread');
  });

  it('each thread takes its own range of a job first, then helps the others; every index once', () => {
    const control = new Int32Array(controlWords(3));
    const drain = (next: () => number) => {
      const got: number[] = [];
      for (let i = next(); i >= 0; i = next()) got.push(i);
      return got;
    };
    // alone, thread 1 of 3 takes its range [3, 6) of 10, then thread 2's [6, 10), then thread 0's
    assert.deepEqual(drain(taker(control, 1, 10)), [3, 4, 5, 6, 7, 8, 9, 0, 1, 2]);
    // three threads taking in turn (thread 0 late by 4 turns): each takes its own range in order,
    // the early ones then help, and no index is taken twice
    control.fill(0);
    const next = [0, 1, 2].map((me) => taker(control, me, 11));
    const got: number[][] = [[], [], []];
    for (let turn = 0; turn < 30; turn++) {
      for (const me of [0, 1, 2]) {
        if (me === 0 && turn < 4) continue;
        const i = next[me]!();
        if (i >= 0) got[me]!.push(i);
      }
    }
    // ranges [0, 3), [3, 7), [7, 11); threads 1 and 2 finish theirs by turn 3 and take thread 0's
    // 1 and 2 while thread 0 takes 0
    assert.deepEqual(got, [[0], [3, 4, 5, 6, 1], [7, 8, 9, 10, 2]]);
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
