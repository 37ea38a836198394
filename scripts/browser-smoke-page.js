// The page half of scripts/browser-smoke.mjs: runs in Chromium as an ES module, imports the core
// entry from dist/, runs a few kernels on the default backend (wasm where the page is
// cross-origin isolated) against the float64 reference, writes a JSON report into the DOM and
// POSTs it back to the server that served the page.

import { KERNELS_WASM_BASE64 } from '../dist/src/backends/wasm/kernels.wasm.js';
import {
  attention,
  enableWasmWorkers,
  getBackend,
  grad,
  listBackends,
  loadWasmBackend,
  loadWebGpuBackend,
  matmul,
  memoryScan,
  mul,
  Rng,
  sum,
  tensor,
  tidy,
  wasmBackend,
} from '../dist/src/index.js';

// Captured before loadWasmBackend(): whether the import itself registered wasm (a synchronous
// compile on this thread that the browser allowed).
const wasmAtImport = wasmBackend !== null;

/** Whether this thread allows a synchronous compile of the kernels (Chrome has refused > 4 KB). */
function syncCompileAllowed() {
  try {
    const bytes = Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0));
    new WebAssembly.Module(bytes);
    return { allowed: true, bytes: bytes.length };
  } catch (e) {
    return { allowed: false, error: String(e) };
  }
}

/** Whether a shared WebAssembly.Memory can be created here. */
function sharedWasmMemory() {
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    return true;
  } catch {
    return false;
  }
}

/** max |a − b| / max |b|. */
function relDiff(a, b) {
  const x = a.dataSync();
  const y = b.dataSync();
  if (x.length !== y.length) return Number.POSITIVE_INFINITY;
  let err = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    err = Math.max(err, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return scale === 0 ? err : err / scale;
}

/** The same values as a float32 tensor on the default backend (wasm when loaded). */
const toF32 = (t) => tensor(Float32Array.from(t.dataSync()), t.shape, { dtype: 'float32' });

function scanInputs(rng, H, T, d, h, depth) {
  const opts = { dtype: 'float64', backend: 'reference' };
  const dims = [d, ...Array.from({ length: depth - 1 }, () => h), d];
  return {
    q: rng.normal([H, T, d], { std: 1 / Math.sqrt(d), ...opts }),
    k: rng.normal([H, T, d], { std: 1 / Math.sqrt(d), ...opts }),
    v: rng.normal([H, T, d], opts),
    alpha: rng.uniform([H, T], { low: 0, high: 0.2, ...opts }),
    eta: rng.uniform([H, T], { low: 0.3, high: 0.9, ...opts }),
    theta: rng.uniform([H, T], { low: 0.02, high: 0.2, ...opts }),
    weights: dims
      .slice(0, -1)
      .map((din, l) => rng.normal([H, din, dims[l + 1]], { std: 1 / Math.sqrt(din), ...opts })),
  };
}

function mapInputs(x, f) {
  return {
    q: f(x.q),
    k: f(x.k),
    v: f(x.v),
    alpha: f(x.alpha),
    eta: f(x.eta),
    theta: f(x.theta),
    weights: x.weights.map(f),
  };
}

async function run() {
  const report = {
    userAgent: navigator.userAgent,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    wasmSimd: WebAssembly.validate(
      // (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt): wasm-feature-detect's SIMD probe
      new Uint8Array([
        0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253,
        98, 11,
      ]),
    ),
    sharedWasmMemory: sharedWasmMemory(),
    syncCompile: syncCompileAllowed(),
    wasmAtImport,
    simulatedNoSharedMemory: globalThis.__titansNoSharedMemory === true,
  };
  const t0 = performance.now();
  const wasm = await loadWasmBackend();
  report.loadWasmBackend = wasm ? wasm.name : null;
  report.loadMs = Math.round(performance.now() - t0);
  report.backends = listBackends();
  report.defaultBackend = getBackend().name;

  const H = 2;
  const T = 64;
  const d = 16;
  const h = 32;
  const depth = 2;
  const options = { chunkSize: 16 };
  tidy(() => {
    const x64 = scanInputs(new Rng(1), H, T, d, h, depth);
    const x32 = mapInputs(x64, toF32);
    const fast = memoryScan(x32, options);
    const ref = memoryScan(x64, options);
    report.memoryScan = {
      shape: { H, T, d_h: d, hidden: h, depth, chunkSize: options.chunkSize },
      backend: fast.y.backend.name,
      refBackend: ref.y.backend.name,
      dtype: fast.y.dtype,
      relDiffY: relDiff(fast.y, ref.y),
      relDiffWeights: Math.max(...fast.state.weights.map((w, i) => relDiff(w, ref.state.weights[i]))),
    };

    // d/dW of Σ y ⊙ c for a fixed random cotangent c, wasm (fused backward) vs float64 reference.
    const c64 = new Rng(2).normal([H, T, d], { dtype: 'float64', backend: 'reference' });
    const c32 = toF32(c64);
    const loss = (cot) => (weights, x) => sum(mul(memoryScan({ ...x, weights }, options).y, cot));
    const g32 = grad(loss(c32))(x32.weights, x32);
    const g64 = grad(loss(c64))(x64.weights, x64);
    report.grad = {
      backend: g32[0].backend.name,
      relDiff: Math.max(...g32.map((g, i) => relDiff(g, g64[i]))),
    };

    const rng = new Rng(3);
    const qkv = ['q', 'k', 'v'].map(() =>
      rng.normal([1, H, T, d], { std: 1 / Math.sqrt(d), dtype: 'float64', backend: 'reference' }),
    );
    const [q32, k32, v32] = qkv.map(toF32);
    const a32 = attention(q32, k32, v32);
    const a64 = attention(qkv[0], qkv[1], qkv[2]);
    report.attention = { causal: true, backend: a32.backend.name, relDiff: relDiff(a32, a64) };
  });
  if (wasm) report.workers = await workerPool(wasm, report.crossOriginIsolated);
  report.webgpu = await webgpuChecks();
  report.totalMs = Math.round(performance.now() - t0);
  return report;
}

/** max |a − b| over two arrays of the same length. */
function maxAbsDiff(x, y) {
  if (x.length !== y.length) return Number.POSITIVE_INFINITY;
  let err = 0;
  for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(x[i] - y[i]));
  return err;
}

/** A 256×256 product and the small memoryScan on the wasm backend, as plain arrays. */
function poolWorkload() {
  return tidy(() => {
    const rng = new Rng(4);
    const a = toF32(rng.normal([256, 256], { dtype: 'float64', backend: 'reference' }));
    const b = toF32(rng.normal([256, 256], { dtype: 'float64', backend: 'reference' }));
    const x32 = mapInputs(scanInputs(new Rng(1), 2, 64, 16, 32, 2), toF32);
    const scan = memoryScan(x32, { chunkSize: 16 });
    const c = matmul(a, b);
    return {
      backend: c.backend.name,
      matmul: c.dataSync().slice(),
      scanY: scan.y.dataSync().slice(),
      scanWeights: scan.state.weights.map((w) => w.dataSync().slice()),
    };
  });
}

/**
 * Cross-origin isolated: the same workload on one thread and on enableWasmWorkers(wasm, 2).
 * Otherwise enableWasmWorkers must reject (the shared memory cannot reach a worker).
 */
async function workerPool(wasm, isolated) {
  const out = { isolated, mainThreadCanWait: mainThreadCanWait() };
  if (!isolated) {
    try {
      const pool = await enableWasmWorkers(wasm, 2);
      pool.terminate();
      out.rejected = false;
    } catch (e) {
      out.rejected = true;
      out.error = String(e?.message ?? e);
    }
    return out;
  }
  try {
    const single = poolWorkload();
    const t0 = performance.now();
    const pool = await enableWasmWorkers(wasm, 2);
    out.startMs = Math.round(performance.now() - t0);
    out.threads = pool.threads;
    out.attached = wasm.threadPool === pool;
    const pooled = poolWorkload();
    out.jobs = pool.jobs;
    out.backend = pooled.backend;
    out.matmulMaxAbsDiff = maxAbsDiff(pooled.matmul, single.matmul);
    out.scanYMaxAbsDiff = maxAbsDiff(pooled.scanY, single.scanY);
    out.scanWeightsMaxAbsDiff = Math.max(
      ...pooled.scanWeights.map((w, i) => maxAbsDiff(w, single.scanWeights[i])),
    );
    pool.terminate();
    out.detached = wasm.threadPool === null;
  } catch (e) {
    out.error = String(e?.stack ?? e);
  }
  return out;
}

/** Whether Atomics.wait is allowed on this (main) thread: the pool spins where it is not. */
function mainThreadCanWait() {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0);
    return true;
  } catch {
    return false;
  }
}

/** max |a − b| / max |b|, read asynchronously (the webgpu backend has no synchronous read). */
async function relDiffAsync(a, b) {
  const [x, y] = [await a.data(), await b.data()];
  let err = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    err = Math.max(err, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return x.length !== y.length ? Number.POSITIVE_INFINITY : scale === 0 ? err : err / scale;
}

/** The same kernels on the WebGPU backend where the browser exposes an adapter. */
async function webgpuChecks() {
  if (!navigator.gpu) return { available: false, reason: 'no navigator.gpu' };
  const gpu = await loadWebGpuBackend();
  if (!gpu) return { available: false, reason: 'requestAdapter() gave no adapter' };
  const onGpu = (t) =>
    tensor(Float32Array.from(t.dataSync()), t.shape, { dtype: 'float32', backend: 'webgpu' });
  const x64 = scanInputs(new Rng(1), 2, 64, 16, 32, 2);
  const xg = mapInputs(x64, onGpu);
  const fast = memoryScan(xg, { chunkSize: 16 });
  const ref = memoryScan(x64, { chunkSize: 16 });
  const qkv = ['q', 'k', 'v'].map(() =>
    new Rng(3).normal([1, 2, 64, 16], { dtype: 'float64', backend: 'reference' }),
  );
  const attn = ([q, k, v]) => sum(mul(attention(q, k, v), q));
  const g32 = grad(attn)(qkv.map(onGpu));
  const g64 = grad(attn)(qkv);
  return {
    available: true,
    adapter: gpu.adapterName,
    backend: fast.y.backend.name,
    memoryScanRelDiffY: await relDiffAsync(fast.y, ref.y),
    attentionGradRelDiff: Math.max(...(await Promise.all(g32.map((g, i) => relDiffAsync(g, g64[i]))))),
  };
}

async function send(report) {
  const text = JSON.stringify(report, null, 2);
  const pre = document.getElementById('result');
  pre.textContent = text;
  pre.dataset.done = 'true';
  await fetch('/result', { method: 'POST', body: text, headers: { 'content-type': 'application/json' } });
}

run().then(send, (e) => send({ error: String(e?.stack ?? e) }));
