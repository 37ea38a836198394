/**
 * Throughput of the wasm backend's elementwise kernels (src/backends/wasm/elementwise.ts) against the
 * JavaScript kernels they replace, then the memory scan with and without them.
 *
 *   npm run build && node dist/bench/wasm-elementwise.js [--seconds 0.1] [--rounds 10] [--scan-runs 3] [--no-scan]
 *
 * Columns: `wasm` = the backend as built (WebAssembly kernels); `wasm (JS kernels)` = the same backend
 * and memory with the reference kernels swapped back in (what the wasm backend ran before); `reference`
 * = the reference backend in float32 (JavaScript heap). Values are output elements per second, best
 * round of `--rounds` (other processes only ever slow a round down).
 *
 * Then the memory scan composed of engine ops (`fused: false`, the path these kernels speed up), timed
 * in this process on both backends; then `node dist/bench/run.js --only memoryScan --tokens 1024
 * --backend wasm` (which takes the backend's fused scan where it has one), run `--scan-runs` times each
 * way, best kept; its "JS kernels" runs preload this file with TITANS_BENCH_JS_KERNELS=1, which swaps
 * the kernels back before run.js starts.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHostBackend } from '../src/backends/reference/reference.js';
import { createWasmBackend } from '../src/backends/wasm/wasm-backend.js';
import {
  activation,
  add,
  type Backend,
  grad,
  memoryScan,
  Rng,
  registerBackend,
  sum,
  type Tensor,
  tensor,
  tidy,
  transpose,
  wasmBackend,
  withBackend,
} from '../src/index.js';
import { scanBenchInputs, scanBenchLoss, UNIFORM_GATES } from './cases.js';

/** The methods src/backends/wasm/elementwise.ts installs. */
const REPLACED = [
  'fill',
  'cast',
  'unary',
  'activation',
  'binary',
  'where',
  'reduce',
  'argMax',
  'transpose',
  'broadcastTo',
  'slice',
  'pad',
  'concat',
  'gather',
  'scatterAdd',
  'linearScan',
] as const;

/** Swaps the reference kernels (on the backend's own heap) back into a wasm backend. */
function useJsKernels(backend: NonNullable<typeof wasmBackend>): void {
  const host = createHostBackend(backend.name, ['float32'], backend.heap);
  const target = backend as unknown as Record<string, unknown>;
  for (const key of REPLACED) target[key] = host[key];
}

if (process.env.TITANS_BENCH_JS_KERNELS === '1') {
  // Preloaded into run.js (node --import): patch the registered wasm backend and stop here.
  if (wasmBackend) useJsKernels(wasmBackend);
} else {
  main();
}

function main(): void {
  if (!wasmBackend) {
    console.log('wasm backend unavailable in this runtime');
    return;
  }
  const args = process.argv.slice(2);
  const option = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const roundSeconds = option('seconds', 0.1);
  const rounds = option('rounds', 10);
  const scanRuns = option('scan-runs', 3);

  const jsOnWasm = createWasmBackend({ name: 'wasm-js-kernels' });
  useJsKernels(jsOnWasm);
  registerBackend(jsOnWasm as Backend);

  const backends: [string, string][] = [
    ['wasm', 'wasm'],
    ['wasm (JS kernels)', 'wasm-js-kernels'],
    ['reference', 'reference'],
  ];

  function random(shape: number[], backend: string): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.random() * 4 - 2;
    return tensor(data, shape, { backend, dtype: 'float32' });
  }

  /** Output elements per second of `op` (best round). */
  function measure(op: () => Tensor, elements: number): number {
    const call = () => op().dispose();
    let t0 = performance.now();
    for (let i = 0; i < 10 || performance.now() - t0 < 100; i++) call(); // warm-up / tier-up
    t0 = performance.now();
    call();
    const once = Math.max(performance.now() - t0, 1e-3);
    const calls = Math.max(1, Math.round((roundSeconds * 1000) / once));
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < rounds; r++) {
      t0 = performance.now();
      for (let i = 0; i < calls; i++) call();
      best = Math.min(best, (performance.now() - t0) / calls);
    }
    return (elements / best) * 1e3;
  }

  const cases: [string, number, (backend: string) => () => Tensor][] = [
    [
      'add (64,4096)+(64,4096)',
      64 * 4096,
      (b) => {
        const [x, y] = [random([64, 4096], b), random([64, 4096], b)];
        return () => add(x, y);
      },
    ],
    [
      'add (4,16,256)+(4,16,1)',
      4 * 16 * 256,
      (b) => {
        const [x, y] = [random([4, 16, 256], b), random([4, 16, 1], b)];
        return () => add(x, y);
      },
    ],
    [
      'silu order 1 (64,4096)',
      64 * 4096,
      (b) => {
        const x = random([64, 4096], b);
        return () => activation('silu', x, 1);
      },
    ],
    [
      'sum last axis (1024,256)',
      1024 * 256,
      (b) => {
        const x = random([1024, 256], b);
        return () => sum(x, -1);
      },
    ],
    [
      'transpose (4,16,256)->(4,256,16)',
      4 * 16 * 256,
      (b) => {
        const x = random([4, 16, 256], b);
        return () => transpose(x, [0, 2, 1]);
      },
    ],
  ];

  const header = ['kernel', ...backends.map(([label]) => `${label} (elem/s)`), 'wasm speed-up vs JS kernels'];
  const rows: string[][] = [header];
  for (const [name, elements, make] of cases) {
    const rates = backends.map(([, b]) => tidy(() => measure(make(b), elements)));
    rows.push([name, ...rates.map((r) => r.toExponential(2)), `${(rates[0]! / rates[1]!).toFixed(1)}x`]);
  }
  const widths = header.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, col) => cell.padEnd(widths[col]!)).join(' | ')} |`;
  console.log(`wasm elementwise kernels, float32, best of ${rounds} rounds of ${roundSeconds} s`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows.slice(1)) console.log(line(row));

  if (args.includes('--no-scan')) return;

  // The memory scan composed of engine ops (fused: false), in this process, on both backends: the
  // path whose time the elementwise kernels replace.
  function composedScan(backend: string, chunkSize: number): [number, number] {
    return withBackend(backend, () =>
      tidy(() => {
        const T = 1024;
        const inputs = scanBenchInputs(new Rng(1), T, UNIFORM_GATES);
        const options = { chunkSize, fused: false };
        const loss = scanBenchLoss(options);
        const best = (fn: () => unknown) => {
          tidy(fn); // warm-up
          let t = Number.POSITIVE_INFINITY;
          for (let r = 0; r < scanRuns; r++) {
            const t0 = performance.now();
            tidy(fn);
            t = Math.min(t, performance.now() - t0);
          }
          return (T / t) * 1e3;
        };
        return [best(() => memoryScan(inputs, options).y), best(() => grad(loss)(inputs))];
      }),
    );
  }
  console.log(
    `\nmemoryScan composed of ops (fused: false), tokens/s, best of ${scanRuns} runs, T=1024 H=4 dh=64 h=256`,
  );
  console.log('| bench | JS kernels (before) | wasm kernels (after) | speed-up |');
  console.log('|---|---|---|---|');
  for (const b of [16, 64]) {
    const [jsFwd, jsBoth] = composedScan('wasm-js-kernels', b);
    const [fwd, both] = composedScan('wasm', b);
    console.log(`| fwd b=${b} | ${jsFwd.toFixed(0)} | ${fwd.toFixed(0)} | ${(fwd / jsFwd).toFixed(2)}x |`);
    console.log(
      `| fwd+bwd b=${b} | ${jsBoth.toFixed(0)} | ${both.toFixed(0)} | ${(both / jsBoth).toFixed(2)}x |`,
    );
  }
  const runJs = fileURLToPath(new URL('./run.js', import.meta.url));
  const self = fileURLToPath(import.meta.url);
  const scanArgs = [runJs, '--only', 'memoryScan', '--tokens', '1024', '--backend', 'wasm', '--no-torch'];
  /** Best tokens/s per memoryScan line over `scanRuns` runs. */
  function scan(jsKernels: boolean): Map<string, number> {
    const best = new Map<string, number>();
    for (let r = 0; r < scanRuns; r++) {
      const output = execFileSync(process.execPath, jsKernels ? ['--import', self, ...scanArgs] : scanArgs, {
        encoding: 'utf8',
        env: { ...process.env, TITANS_BENCH_JS_KERNELS: jsKernels ? '1' : '' },
      });
      for (const text of output.split('\n')) {
        const m = /^(memoryScan \S+)\s+(.*?)\s+wasm\s+([\d.]+) tokens\/s/.exec(text);
        if (!m) continue;
        const key = `${m[1]} ${m[2]}`;
        best.set(key, Math.max(best.get(key) ?? 0, Number(m[3])));
      }
    }
    return best;
  }
  const before = scan(true);
  const after = scan(false);
  console.log(`\nmemoryScan on wasm, tokens/s (best of ${scanRuns} runs of dist/bench/run.js each)`);
  console.log('| bench | JS kernels (before) | wasm kernels (after) | speed-up |');
  console.log('|---|---|---|---|');
  for (const [key, value] of after) {
    const old = before.get(key);
    const ratio = old ? `${(value / old).toFixed(2)}x` : '—';
    console.log(`| ${key} | ${old?.toFixed(0) ?? '—'} | ${value.toFixed(0)} | ${ratio} |`);
  }
}
