/**
 * `npm run bench`: throughput on this machine, side by side with a PyTorch peer doing the same
 * work (bench/torch_peer.py, run with /usr/bin/python3 when torch is installed — see
 * scripts/install-torch-peer.sh; the benchmark runs without it). With `--append` the table is
 * appended to BENCHMARKS.md (date, machine, commit). Benchmarks print; tests never time.
 *
 *   node dist/bench/run.js [--append] [--backend wasm,reference] [--threads N] [--tokens 4096]
 *                          [--only matmul,memoryScan,memoryLayer,train,stream,longcontext]
 *                          [--no-torch] [--train-variants mac,mag,mal,lmm,swa] [--stream-variant mac]
 *                          [--stream-tokens 2097152] [--piece 512] [--context 8192,32768,131072]
 *                          [--context-variants mag,mac,transformer]
 * `train`, `stream` and `longcontext` run on wasm only; the PyTorch peer of `train` is
 * bench/torch_models.py. `train` times each step twice: every kernel split across the threads
 * (`train step <variant>`), and the batch shared by rows between the threads, each with its own
 * copy of the model (`train step <variant> data-parallel`, src/train/data-parallel.ts); both rows
 * are compared with the same PyTorch step. Streams (`stream`'s pieces, every `longcontext` item) run in a fresh
 * process each (bench/fresh.ts), so the resident memory reported is that stream's own.
 */
import { execFileSync, execSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { kernelFeatures } from '../src/backends/wasm/kernels.js';
import {
  type FloatDType,
  grad,
  listBackends,
  MODEL_VARIANTS,
  matmul,
  memoryScan,
  Rng,
  tidy,
  wasmBackend,
  withBackend,
} from '../src/index.js';
import { enableWasmThreads } from '../src/node.js';
import { layerBenchCase, SCAN_GATES, SCAN_SIZE, scanBenchInputs, scanBenchLoss } from './cases.js';
import type { FreshResult } from './fresh.js';
import { benchGeneration, benchTrainStep, TRAIN_RUNS, TRAIN_WARMUP, time } from './models.js';
import { benchWebGpu } from './webgpu.js';

interface Row {
  bench: string;
  shape: string;
  backend: string;
  value: number;
  unit: string;
  /** The same measurement from the PyTorch peer, when it ran. */
  torch?: number;
}

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const backends = option('backend')?.split(',') ?? (wasmBackend ? ['wasm'] : listBackends());
const only = option('only')?.split(',');
const wanted = (name: string) => !only || only.includes(name);
const T = Number(option('tokens') ?? 4096);
const threads = Number(option('threads') ?? availableParallelism());
const dtype: FloatDType = 'float32';
const trainVariants = option('train-variants')?.split(',') ?? ['mac', 'mag', 'mal', 'lmm', 'swa'];

/** The reference backend is ~50× slower: fewer repetitions there. */
const reps = (backend: string) => (backend === 'reference' ? { runs: 1, warmup: 0 } : { runs: 3, warmup: 1 });

const rows: Row[] = [];
function report(row: Row): void {
  rows.push(row);
  console.log(
    `${row.bench.padEnd(20)} ${row.shape.padEnd(36)} ${row.backend.padEnd(10)} ${format(row.value).padStart(10)} ${row.unit}`,
  );
}

function format(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

const MATMUL_SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [512, 512, 512],
  [1024, 1024, 1024],
  [4096, 64, 256],
];

/**
 * The WebAssembly SIMD ceiling of this machine (simdPeak: independent f32x4 multiply-adds, no
 * memory traffic) on one thread and on the pool's threads; returns the pool's GFLOP/s.
 */
function benchCeiling(): number {
  const backend = wasmBackend!;
  const kx = backend.kernels as unknown as { simdPeak(iterations: number): number };
  const iterations = 2e7;
  const flops = 80 * iterations;
  // A ceiling is a maximum: the fastest of several runs (after warm-up runs that tier V8 up).
  const fastest = (fn: () => void) => {
    for (let i = 0; i < 2; i++) fn();
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      fn();
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return best;
  };
  const one = fastest(() => kx.simdPeak(iterations));
  const op = kernelFeatures().relaxedSimd ? 'f32x4 fused multiply-add' : 'f32x4 mul+add';
  report({
    bench: 'wasm ceiling',
    shape: `1 thread, ${op}`,
    backend: 'wasm',
    value: flops / one / 1e9,
    unit: 'GFLOP/s',
  });
  const pool = backend.threadPool;
  if (!pool?.runTasks || pool.threads < 2) return flops / one / 1e9;
  const [args, size] = backend.heap.allocBytes(8 * pool.threads);
  try {
    const words = new Int32Array(backend.memory.buffer, args, 2 * pool.threads);
    for (let t = 0; t < pool.threads; t++) words[2 * t] = iterations;
    const all = fastest(() => pool.runTasks!('simdPeakTask', pool.threads, args, 8, 64));
    const value = (pool.threads * flops) / all / 1e9;
    report({
      bench: 'wasm ceiling',
      shape: `${pool.threads} threads, ${op}`,
      backend: 'wasm',
      value,
      unit: 'GFLOP/s',
    });
    return value;
  } finally {
    backend.heap.freeBytes(args, size);
  }
}

/**
 * Milliseconds each product shape runs untimed before it is timed. V8 starts WebAssembly on its
 * baseline compiler and compiles hot functions again in the background, on these same 2 cores; with
 * 3 untimed products only, the first pass over the shapes in a fresh process measured that: 256³
 * 44–56, 512³ 76–81, 1024³ 86–90 GFLOP/s, against 73–87, 86–93 and 90–97 in later passes of the
 * same process (4 processes, /tmp script). bench/wasm-matmul.ts warms up the same way.
 */
const MATMUL_WARMUP_MS = 300;

/** Calls fn until `ms` milliseconds have passed. */
function warmUp(fn: () => void, ms: number): void {
  const until = performance.now() + ms;
  do fn();
  while (performance.now() < until);
}

function benchMatmul(backend: string): void {
  const ceiling = backend === 'wasm' && wasmBackend ? benchCeiling() : null;
  const rng = new Rng(0);
  for (const [m, k, n] of MATMUL_SHAPES) {
    if (backend === 'reference' && m * k * n > 2e8) continue;
    tidy(() => {
      const a = rng.normal([m, k], { dtype });
      const b = rng.normal([k, n], { dtype });
      const { runs, warmup } = reps(backend);
      const product = () => tidy(() => matmul(a, b));
      if (backend !== 'reference') warmUp(product, MATMUL_WARMUP_MS);
      const s = time(product, Math.max(runs, 5), warmup + 2);
      const value = (2 * m * k * n) / s / 1e9;
      report({ bench: 'matmul', shape: `${m}x${k}x${n}`, backend, value, unit: 'GFLOP/s' });
      if (ceiling && m === 1024 && k === 1024 && n === 1024) {
        report({
          bench: 'matmul / ceiling',
          shape: '1024x1024x1024 (target ≥ 0.9)',
          backend,
          value: value / ceiling,
          unit: '×',
        });
      }
    });
  }
}

/**
 * The memory core at the issue's size: H = 4 heads, d_h = 64, expansion 4 (h = 256), depth 2,
 * with each set of gates of SCAN_GATES; then, per chunk size, how much slower the slowest stress
 * case ran than the realistic one (fwd+bwd; the target is ≤ 1.5×).
 */
function benchMemoryScan(backend: string): void {
  const { H, dh, hidden } = SCAN_SIZE;
  for (const chunkSize of [16, 64]) {
    const both: Record<string, number> = {};
    for (const [gates, makeGates] of Object.entries(SCAN_GATES)) {
      tidy(() => {
        const inputs = scanBenchInputs(new Rng(1), T, makeGates);
        const options = { chunkSize };
        const shape = `H=${H} dh=${dh} h=${hidden} T=${T} b=${chunkSize} ${gates}`;
        const { runs, warmup } = reps(backend);
        const forward = time(() => tidy(() => memoryScan(inputs, options).y), runs, warmup);
        report({ bench: 'memoryScan fwd', shape, backend, value: T / forward, unit: 'tokens/s' });
        const loss = scanBenchLoss(options);
        const seconds = time(() => tidy(() => grad(loss)(inputs)), runs, warmup);
        both[gates] = seconds;
        report({ bench: 'memoryScan fwd+bwd', shape, backend, value: T / seconds, unit: 'tokens/s' });
      });
    }
    const slowest = Math.max(
      ...Object.entries(both)
        .filter(([g]) => g !== 'realistic')
        .map(([, s]) => s),
    );
    report({
      bench: 'memoryScan stress/realistic',
      shape: `fwd+bwd time, slowest stress case, b=${chunkSize}`,
      backend,
      value: slowest / both.realistic!,
      unit: '×',
    });
  }
}

/** The memory layer of SPEC §2 at d = 256 (H = 4 × d_h = 64), expansion 4, chunk 16, batch 1. */
function benchMemoryLayer(backend: string): void {
  tidy(() => {
    const c = layerBenchCase(T, new Rng(2));
    const { runs, warmup } = reps(backend);
    const forward = time(() => tidy(c.forward), runs, warmup);
    report({ bench: 'memoryLayer fwd', shape: c.shape, backend, value: T / forward, unit: 'tokens/s' });
    const both = time(() => tidy(() => grad(c.loss)(c.params)), runs, warmup);
    report({ bench: 'memoryLayer fwd+bwd', shape: c.shape, backend, value: T / both, unit: 'tokens/s' });
  });
}

/** Runs one stream in a fresh process (bench/fresh.ts) and returns what it measured. */
function fresh(variant: string, tokens: number, piece: number): FreshResult {
  const script = fileURLToPath(new URL('./fresh.js', import.meta.url));
  const out = execFileSync(
    process.execPath,
    [
      '--expose-gc',
      script,
      '--variant',
      variant,
      '--tokens',
      String(tokens),
      '--piece',
      String(piece),
    ].concat(['--threads', String(threads)]),
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as FreshResult;
}

const MIB = 2 ** 20;

/** Label of a token count: 65536 → 64K, 2097152 → 2M. */
function tokensLabel(n: number): string {
  return n >= 2 ** 20 ? `${+(n / 2 ** 20).toFixed(1)}M` : `${+(n / 1024).toFixed(1)}K`;
}

/**
 * The streaming rows: `variant` fed `total` tokens in pieces of `piece` in a fresh process — its
 * tokens/s overall and over the first and last tenth, and at the end its resident memory (RSS,
 * and the peak), the engine's live tensor bytes and the model state's bytes.
 */
function benchStream(variant: string, total: number, piece: number): void {
  const r = fresh(variant, total, piece);
  const at = tokensLabel(total);
  const rows: [string, string, number, string][] = [
    [
      `stream ${variant} pieces`,
      `small preset, ${total.toLocaleString('en-US')} tokens in pieces of ${piece}`,
      r.tokensPerSecond,
      'tokens/s',
    ],
    [`stream ${variant} first 10%`, `small preset, pieces of ${piece}`, r.firstTenth, 'tokens/s'],
    [`stream ${variant} last 10%`, `small preset, pieces of ${piece}`, r.lastTenth, 'tokens/s'],
    [`stream ${variant} last/first 10%`, 'speed ratio (target ≥ 0.8)', r.lastTenth / r.firstTenth, '×'],
    [`resident RSS @${at}`, `stream ${variant}, fresh process`, r.rss / MIB, 'MiB'],
    [`peak RSS @${at}`, `stream ${variant}, fresh process`, r.peakRss / MIB, 'MiB'],
    [`live tensors @${at}`, `stream ${variant}`, r.liveBytes / MIB, 'MiB'],
    [`model state @${at}`, `stream ${variant}`, r.stateBytes / 1024, 'KiB'],
  ];
  for (const [bench, shape, value, unit] of rows) report({ bench, shape, backend: 'wasm', value, unit });
}

/**
 * Long context: each variant streamed to each length in pieces of `piece`, one fresh process per
 * item. Rows: tokens/s over the last tenth (the speed at that context) and the peak resident
 * memory; at the longest length, MAG's and MAC's speed and memory against Transformer++'s.
 */
function benchLongContext(variants: string[], lengths: number[], piece: number): void {
  const results = new Map<string, FreshResult>();
  for (const tokens of lengths) {
    for (const variant of variants) {
      const r = fresh(variant, tokens, piece);
      results.set(`${variant}@${tokens}`, r);
      const shape = `@${tokensLabel(tokens)} context, small preset, pieces of ${piece}`;
      report({
        bench: `long context ${variant}`,
        shape,
        backend: 'wasm',
        value: r.lastTenth,
        unit: 'tokens/s',
      });
      report({
        bench: `long context RSS ${variant}`,
        shape,
        backend: 'wasm',
        value: r.peakRss / MIB,
        unit: 'MiB',
      });
    }
  }
  const longest = Math.max(...lengths);
  const base = results.get(`transformer@${longest}`);
  if (!base) return;
  for (const variant of variants.filter((v) => v !== 'transformer')) {
    const r = results.get(`${variant}@${longest}`)!;
    const shape = `@${tokensLabel(longest)}: ${variant} vs Transformer++`;
    report({
      bench: 'long context speed ratio',
      shape,
      backend: 'wasm',
      value: r.lastTenth / base.lastTenth,
      unit: '×',
    });
    report({
      bench: 'long context memory ratio',
      shape,
      backend: 'wasm',
      value: r.peakRss / base.peakRss,
      unit: '×',
    });
  }
}

/** Runs the PyTorch peer and attaches its numbers to the matching rows. */
function torchPeer(): string | null {
  if (flag('no-torch')) return null;
  const python = '/usr/bin/python3';
  try {
    execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    console.log(
      '\n(PyTorch peer skipped: /usr/bin/python3 cannot import torch; see scripts/install-torch-peer.sh)',
    );
    return null;
  }
  const parts = ['matmul', 'memoryScan', 'memoryLayer'].filter(wanted);
  if (parts.length === 0) return null;
  const torchOnly = parts.map(
    (p) => ({ matmul: 'matmul', memoryScan: 'memory_scan', memoryLayer: 'memory_layer' })[p]!,
  );
  console.log(`\nrunning the PyTorch peer (${threads} threads)…`);
  const out = execFileSync(
    python,
    [
      'bench/torch_peer.py',
      '--threads',
      String(threads),
      '--only',
      torchOnly.join(','),
      '--tokens',
      String(T),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const peer = JSON.parse(out);
  for (const row of rows) {
    if (row.bench === 'matmul') row.torch = peer.matmul?.[row.shape];
    const chunk = /b=(\d+)/.exec(row.shape)?.[1];
    const key = row.bench.endsWith('fwd+bwd') ? 'fwd_bwd_tokens_per_s' : 'forward_tokens_per_s';
    if (/^memoryScan fwd/.test(row.bench)) row.torch = peer.memory_scan?.[`b${chunk}`]?.[key];
    if (/^memoryLayer fwd/.test(row.bench)) row.torch = peer.memory_layer?.[key];
  }
  return `torch ${peer.torch_version}, ${peer.threads} threads`;
}

/** Runs bench/torch_models.py (training steps of the same models) and attaches its numbers. */
function torchModelPeer(): string | null {
  const peerVariants = trainVariants.filter((v) => (MODEL_VARIANTS as readonly string[]).includes(v)); // the twin has all
  if (flag('no-torch') || !wanted('train') || peerVariants.length === 0) return null;
  const python = '/usr/bin/python3';
  try {
    execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    return null;
  }
  console.log(`\nrunning the PyTorch model peer (${threads} threads)…`);
  const out = execFileSync(
    python,
    [
      'bench/torch_models.py',
      '--threads',
      String(threads),
      '--variants',
      peerVariants.join(','),
      '--batch',
      '16',
      '--seq',
      '256',
      // timed as the titans-ts rows are: TRAIN_RUNS steps after TRAIN_WARMUP
      '--steps',
      String(TRAIN_RUNS),
      '--warmup',
      String(TRAIN_WARMUP),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const peer = JSON.parse(out);
  for (const row of rows) {
    const m = /^train step (\S+)( data-parallel)?$/.exec(row.bench);
    if (m) row.torch = peer.train_step?.[m[1]!]?.tokens_per_s;
  }
  return `models: torch ${peer.torch_version}, ${peer.threads} threads`;
}

console.log(
  `titans-ts benchmarks — ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}`,
);
if (wasmBackend && backends.includes('wasm') && threads > 1) enableWasmThreads(wasmBackend, threads);
console.log(`wasm threads: ${wasmBackend?.threadPool?.threads ?? 1}\n`);
for (const backend of backends) {
  if (backend === 'webgpu') {
    await benchWebGpu(MATMUL_SHAPES, T, wanted, report); // asynchronous: timed until the GPU finishes
    continue;
  }
  withBackend(backend, () => {
    if (wanted('matmul')) benchMatmul(backend);
    if (wanted('memoryScan')) benchMemoryScan(backend);
    if (wanted('memoryLayer')) benchMemoryLayer(backend);
  });
}
if (backends.includes('wasm') && wasmBackend) {
  await withBackend('wasm', async () => {
    if (wanted('train')) for (const v of trainVariants) await benchTrainStep(v, 16, 256, report);
    if (wanted('train') && threads > 1) {
      for (const v of trainVariants) await benchTrainStep(v, 16, 256, report, threads);
    }
    if (wanted('stream')) await benchGeneration(option('stream-variant') ?? 'mac', report);
  });
}
if (backends.includes('wasm') && wasmBackend) {
  const piece = Number(option('piece') ?? 512);
  if (wanted('stream')) {
    benchStream(option('stream-variant') ?? 'mac', Number(option('stream-tokens') ?? 2 ** 21), piece);
  }
  if (wanted('longcontext')) {
    const lengths = (option('context') ?? '8192,32768,131072').split(',').map(Number);
    benchLongContext(option('context-variants')?.split(',') ?? ['mag', 'mac', 'transformer'], lengths, piece);
  }
}
wasmBackend?.threadPool?.terminate();
const peer = torchPeer();
const modelPeer = torchModelPeer();

const table = [
  '| bench | shape | backend | ours | PyTorch | ours/PyTorch | unit |',
  '|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.bench} | ${r.shape} | ${r.backend} | ${format(r.value)} | ${r.torch === undefined ? '—' : format(r.torch)} | ${r.torch ? (r.value / r.torch).toFixed(2) : '—'} | ${r.unit} |`,
  ),
].join('\n');
const peers = [peer, modelPeer].filter(Boolean).join('; ');
console.log(`\n${table}\n${peers ? `\nPyTorch peer: ${peers}` : ''}`);

if (flag('append')) {
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
    if (execSync('git status --porcelain --untracked-files=no', { encoding: 'utf8' }).trim())
      commit += '+dirty';
  } catch {
    // not a git checkout
  }
  // which kernel build ran: the relaxed one's fused multiply-adds change both speed and rounding
  const build = wasmBackend
    ? `, kernels: ${kernelFeatures().relaxedSimd ? 'relaxed SIMD (fused multiply-adds)' : 'exact SIMD'}`
    : '';
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, wasm threads ${threads}${build}`;
  const file = 'BENCHMARKS.md';
  if (!existsSync(file)) {
    writeFileSync(
      file,
      '# Benchmarks\n\nAppended by `npm run bench -- --append`; newest last. Never edit old entries.\n',
    );
  }
  const command = `node dist/bench/run.js ${args.join(' ')}`.trim();
  appendFileSync(
    file,
    `\n## ${new Date().toISOString().slice(0, 10)} — commit ${commit}\n\nMachine: ${machine}${peers ? `; PyTorch peer: ${peers}` : ''}\nCommand: \`${command}\`\n\n${table}\n`,
  );
  console.log(`appended to ${file}`);
}
