/**
 * Attention throughput: the wasm backend's fused (flash-attention style) kernels against the
 * composed path (scores materialised), in tokens per second, forward and forward+backward.
 *
 *   npm run build && node dist/bench/attention.js [--runs 3] [--only causal-1024,swa128-4096]
 *     [--paths fused,wasm-composed,reference]
 *
 * B = 1, H = 4, dh = 64, float32. Cases: causal T = 1024 / 4096, sliding window 128 at T = 4096 /
 * 16384. The composed path runs only at T ≤ 1024 (it stores B·H·T² scores, several times over
 * for the backward). Single-threaded; the median of `--runs` timed runs after one warm-up.
 */
import { attention, grad, listBackends, mul, Rng, sum, type Tensor, tensor, tidy } from '../src/index.js';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const RUNS = Number(option('runs') ?? 3);
const only = option('only')?.split(',');
const onlyPaths = option('paths')?.split(',');

const B = 1;
const H = 4;
const DH = 64;

interface Case {
  name: string;
  t: number;
  window: number;
}
const cases: Case[] = [
  { name: 'causal-1024', t: 1024, window: Number.POSITIVE_INFINITY },
  { name: 'causal-4096', t: 4096, window: Number.POSITIVE_INFINITY },
  { name: 'swa128-4096', t: 4096, window: 128 },
  { name: 'swa128-16384', t: 16384, window: 128 },
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

const rows: string[][] = [];
function report(row: string[]): void {
  rows.push(row);
  console.log(row.join('  '));
}

const rng = new Rng(7);
const paths: { id: string; label: string; backend: string; fused: boolean; maxT: number }[] = [
  { id: 'fused', label: 'wasm fused', backend: 'wasm', fused: true, maxT: Number.POSITIVE_INFINITY },
  { id: 'wasm-composed', label: 'wasm composed', backend: 'wasm', fused: false, maxT: 1024 },
  { id: 'reference', label: 'reference composed', backend: 'reference', fused: false, maxT: 1024 },
].filter((p) => !onlyPaths || onlyPaths.includes(p.id));
console.log(`attention bench: B=${B} H=${H} dh=${DH} float32, median of ${RUNS}`);
for (const c of cases) {
  if (only && !only.includes(c.name)) continue;
  for (const path of paths) {
    if (c.t > path.maxT || !listBackends().includes(path.backend)) continue;
    const shape = [B, H, c.t, DH];
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
    report([
      c.name,
      path.label,
      `fwd ${((c.t * B) / fwd).toFixed(0)} tok/s (${(fwd * 1000).toFixed(1)} ms)`,
      `fwd+bwd ${((c.t * B) / fwdBwd).toFixed(0)} tok/s (${(fwdBwd * 1000).toFixed(1)} ms)`,
    ]);
    for (const t of [q, k, v, w]) t.dispose();
  }
}
