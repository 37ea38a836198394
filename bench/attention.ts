/**
 * Attention throughput: the wasm backend's fused (flash-attention style) kernels against the
 * composed path (scores materialised), in tokens per second, forward and forward+backward.
 *
 *   npm run build && node dist/bench/attention.js [--runs 3] [--threads 1]
 *     [--only causal-1024,swa128-4096] [--paths fused,wasm-composed,reference]
 *     [--pool-min-work N] [--tasks-per-thread N]
 *
 * float32. Cases: B = 1, H = 4, dh = 64 causal at T = 1024 / 4096 and sliding window 128 at
 * T = 4096 / 16384; the small model's shape (B = 16, H = 4, T = 256, dh = 16, window 64). The
 * composed path runs only at T ≤ 1024 (it stores B·H·T² scores, several times over for the
 * backward). `--threads N` (N > 1) attaches a wasm thread pool of N threads, which the fused
 * kernels use for batches (B·H) of 2 or more above `attentionPoolLimits.minWork` (overridden by
 * `--pool-min-work`; `--tasks-per-thread` likewise). The median of `--runs` timed runs after one
 * warm-up.
 */
import { attentionPoolLimits } from '../src/backends/wasm/attention.js';
import {
  attention,
  grad,
  listBackends,
  mul,
  Rng,
  sum,
  type Tensor,
  tensor,
  tidy,
  wasmBackend,
} from '../src/index.js';
import { enableWasmThreads } from '../src/node.js';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const RUNS = Number(option('runs') ?? 3);
const THREADS = Number(option('threads') ?? 1);
const only = option('only')?.split(',');
const onlyPaths = option('paths')?.split(',');
const minWork = option('pool-min-work');
if (minWork !== undefined) attentionPoolLimits.minWork = Number(minWork);
const tasksPerThread = option('tasks-per-thread');
if (tasksPerThread !== undefined) attentionPoolLimits.tasksPerThread = Number(tasksPerThread);

interface Case {
  name: string;
  b: number;
  h: number;
  t: number;
  dh: number;
  window: number;
}
const cases: Case[] = [
  { name: 'small-swa64-256', b: 16, h: 4, t: 256, dh: 16, window: 64 },
  { name: 'causal-1024', b: 1, h: 4, t: 1024, dh: 64, window: Number.POSITIVE_INFINITY },
  { name: 'causal-4096', b: 1, h: 4, t: 4096, dh: 64, window: Number.POSITIVE_INFINITY },
  { name: 'swa128-4096', b: 1, h: 4, t: 4096, dh: 64, window: 128 },
  { name: 'swa128-16384', b: 1, h: 4, t: 16384, dh: 64, window: 128 },
];

function median(fn: () => void): number {
  fn(); // warm-up (tier-up of the wasm and JS code)
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function random(rng: Rng, shape: number[], backend: string): Tensor {
  const data = new Float32Array(shape.reduce((n, d) => n * d, 1));
  for (let i = 0; i < data.length; i++) data[i] = 2 * rng.next() - 1;
  return tensor(data, shape, { backend });
}

const rng = new Rng(7);
const paths: { id: string; label: string; backend: string; fused: boolean; maxT: number }[] = [
  { id: 'fused', label: 'wasm fused', backend: 'wasm', fused: true, maxT: Number.POSITIVE_INFINITY },
  { id: 'wasm-composed', label: 'wasm composed', backend: 'wasm', fused: false, maxT: 1024 },
  { id: 'reference', label: 'reference composed', backend: 'reference', fused: false, maxT: 1024 },
].filter((p) => !onlyPaths || onlyPaths.includes(p.id));
const pool = wasmBackend && THREADS > 1 ? enableWasmThreads(wasmBackend, THREADS) : null;
console.log(
  `attention bench: float32, wasm threads ${pool?.threads ?? 1}, median of ${RUNS}` +
    (pool
      ? `, pool min work ${attentionPoolLimits.minWork}, ${attentionPoolLimits.tasksPerThread} tasks/thread`
      : ''),
);
try {
  for (const c of cases) {
    if (only && !only.includes(c.name)) continue;
    for (const path of paths) {
      if (c.t > path.maxT || !listBackends().includes(path.backend)) continue;
      const shape = [c.b, c.h, c.t, c.dh];
      const [q, k, v, w] = [0, 1, 2, 3].map(() => random(rng, shape, path.backend)) as [
        Tensor,
        Tensor,
        Tensor,
        Tensor,
      ];
      const opts = { window: c.window, fused: path.fused };
      const fwd = median(() => tidy(() => void attention(q, k, v, opts)));
      const fwdBwd = median(() =>
        tidy(() => void grad((p: Tensor[]) => sum(mul(attention(p[0]!, p[1]!, p[2]!, opts), w)))([q, k, v])),
      );
      const tokens = c.t * c.b;
      console.log(
        [
          `${c.name} (B=${c.b} H=${c.h} dh=${c.dh})`,
          path.label,
          `fwd ${(tokens / fwd).toFixed(0)} tok/s (${(fwd * 1000).toFixed(2)} ms)`,
          `fwd+bwd ${(tokens / fwdBwd).toFixed(0)} tok/s (${(fwdBwd * 1000).toFixed(2)} ms)`,
        ].join('  '),
      );
      for (const t of [q, k, v, w]) t.dispose();
    }
  }
} finally {
  pool?.terminate();
}
