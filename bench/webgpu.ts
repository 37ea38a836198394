/**
 * The benchmark rows of bench/run.ts (matmul, memoryScan, memoryLayer) on the WebGPU backend.
 * GPU work is asynchronous, so each run is timed until the GPU has finished it (`sync()`), not
 * just until it was encoded. On a machine without a GPU the adapter is a software driver
 * (lavapipe on the CPU): those numbers show that the backend runs, not how fast a GPU is — the
 * backend column says which.
 */
import {
  add,
  defaultMemoryLayerConfig,
  getBackend,
  grad,
  initMemoryLayer,
  loadWebGpuBackend,
  matmul,
  memoryLayer,
  memoryScan,
  mul,
  Rng,
  setBackend,
  sum,
  type Tensor,
  tidy,
} from '../src/index.js';

export interface WebGpuBenchRow {
  bench: string;
  shape: string;
  backend: string;
  value: number;
  unit: string;
}

/** Median seconds of `runs` runs of fn, each until the GPU finished (after `warmup` runs). */
async function timeGpu(
  fn: () => void,
  sync: () => Promise<void>,
  runs: number,
  warmup: number,
): Promise<number> {
  for (let i = 0; i < warmup; i++) {
    fn();
    await sync();
  }
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    await sync();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/**
 * Runs the rows `wanted` selects at T tokens and the matmul `shapes`; returns false (and prints
 * why) where there is no WebGPU adapter.
 */
export async function benchWebGpu(
  shapes: readonly [number, number, number][],
  T: number,
  wanted: (name: string) => boolean,
  report: (row: WebGpuBenchRow) => void,
): Promise<boolean> {
  const gpu = await loadWebGpuBackend();
  if (!gpu) {
    console.log('webgpu: no adapter found (see scripts/setup-webgpu.sh); skipped');
    return false;
  }
  const backend = gpu.software ? 'webgpu (software driver: correctness, not speed)' : 'webgpu';
  console.log(`webgpu adapter: ${gpu.adapterName}`);
  const sync = () => gpu.sync();
  const dtype = 'float32';
  const add_ = (r: Omit<WebGpuBenchRow, 'backend'>) => report({ ...r, backend });
  const previous = getBackend().name;
  setBackend('webgpu');
  try {
    if (wanted('matmul')) {
      const rng = new Rng(0);
      for (const [m, k, n] of shapes) {
        const a = rng.normal([m, k], { dtype });
        const b = rng.normal([k, n], { dtype });
        const s = await timeGpu(() => tidy(() => void matmul(a, b)), sync, 5, 2);
        add_({ bench: 'matmul', shape: `${m}x${k}x${n}`, value: (2 * m * k * n) / s / 1e9, unit: 'GFLOP/s' });
        a.dispose();
        b.dispose();
      }
    }
    if (wanted('memoryScan')) {
      const [H, dh, hidden] = [4, 64, 256];
      for (const chunkSize of [16, 64]) {
        const rng = new Rng(1);
        const inputs = {
          q: rng.normal([H, T, dh], { std: 1 / Math.sqrt(dh), dtype }),
          k: rng.normal([H, T, dh], { std: 1 / Math.sqrt(dh), dtype }),
          v: rng.normal([H, T, dh], { dtype }),
          alpha: rng.uniform([H, T], { low: 0, high: 0.05, dtype }),
          eta: rng.uniform([H, T], { low: 0.3, high: 0.6, dtype }),
          theta: rng.uniform([H, T], { low: 0.01, high: 0.05, dtype }),
          weights: [
            rng.normal([H, dh, hidden], { std: 1 / Math.sqrt(dh), dtype }),
            rng.normal([H, hidden, dh], { std: 1 / Math.sqrt(hidden), dtype }),
          ],
        };
        const shape = `H=${H} dh=${dh} h=${hidden} T=${T} b=${chunkSize}`;
        const forward = await timeGpu(() => tidy(() => void memoryScan(inputs, { chunkSize }).y), sync, 3, 1);
        add_({ bench: 'memoryScan fwd', shape, value: T / forward, unit: 'tokens/s' });
        const loss = (p: typeof inputs): Tensor => {
          const r = memoryScan(p, { chunkSize });
          return add(sum(mul(r.y, r.y)), sum(r.state.weights[0]!));
        };
        const both = await timeGpu(() => tidy(() => void grad(loss)(inputs)), sync, 3, 1);
        add_({ bench: 'memoryScan fwd+bwd', shape, value: T / both, unit: 'tokens/s' });
        for (const t of [
          inputs.q,
          inputs.k,
          inputs.v,
          inputs.alpha,
          inputs.eta,
          inputs.theta,
          ...inputs.weights,
        ])
          t.dispose();
      }
    }
    if (wanted('memoryLayer')) {
      const config = defaultMemoryLayerConfig({
        dModel: 256,
        heads: 4,
        headDim: 64,
        expansion: 4,
        chunkSize: 16,
      });
      const rng = new Rng(2);
      const params = initMemoryLayer(config, rng, dtype);
      const x = rng.normal([1, T, 256], { dtype });
      const shape = `d=256 H=4 dh=64 h=256 T=${T} b=16`;
      const forward = await timeGpu(() => tidy(() => void memoryLayer(params, config, x).y), sync, 3, 1);
      add_({ bench: 'memoryLayer fwd', shape, value: T / forward, unit: 'tokens/s' });
      const loss = (p: typeof params) => {
        const y = memoryLayer(p, config, x).y;
        return sum(mul(y, y));
      };
      const both = await timeGpu(() => tidy(() => void grad(loss)(params)), sync, 3, 1);
      add_({ bench: 'memoryLayer fwd+bwd', shape, value: T / both, unit: 'tokens/s' });
    }
  } finally {
    setBackend(previous);
  }
  return true;
}
