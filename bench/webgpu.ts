/**
 * The benchmark rows of bench/run.ts (matmul, memoryScan, memoryLayer) on the WebGPU backend.
 * GPU work is asynchronous, so each run is timed until the GPU has finished it (`sync()`), not
 * just until it was encoded. On a machine without a GPU the adapter is a software driver
 * (lavapipe on the CPU): those numbers show that the backend runs, not how fast a GPU is — the
 * backend column says which.
 */
import {
  dispose,
  getBackend,
  grad,
  loadWebGpuBackend,
  matmul,
  memoryScan,
  Rng,
  setBackend,
  tidy,
} from '../src/index.js';
import { layerBenchCase, SCAN_SIZE, scanBenchInputs, scanBenchLoss, UNIFORM_GATES } from './cases.js';

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
      const { H, dh, hidden } = SCAN_SIZE;
      for (const chunkSize of [16, 64]) {
        const inputs = scanBenchInputs(new Rng(1), T, UNIFORM_GATES);
        const shape = `H=${H} dh=${dh} h=${hidden} T=${T} b=${chunkSize} uniform α≤0.05`;
        const forward = await timeGpu(() => tidy(() => void memoryScan(inputs, { chunkSize }).y), sync, 3, 1);
        add_({ bench: 'memoryScan fwd', shape, value: T / forward, unit: 'tokens/s' });
        const loss = scanBenchLoss({ chunkSize });
        const both = await timeGpu(() => tidy(() => void grad(loss)(inputs)), sync, 3, 1);
        add_({ bench: 'memoryScan fwd+bwd', shape, value: T / both, unit: 'tokens/s' });
        dispose(inputs);
      }
    }
    if (wanted('memoryLayer')) {
      const c = layerBenchCase(T, new Rng(2));
      const forward = await timeGpu(() => tidy(() => void c.forward()), sync, 3, 1);
      add_({ bench: 'memoryLayer fwd', shape: c.shape, value: T / forward, unit: 'tokens/s' });
      const both = await timeGpu(() => tidy(() => void grad(c.loss)(c.params)), sync, 3, 1);
      add_({ bench: 'memoryLayer fwd+bwd', shape: c.shape, value: T / both, unit: 'tokens/s' });
      dispose([c.params, c.x]);
    }
  } finally {
    setBackend(previous);
  }
  return true;
}
