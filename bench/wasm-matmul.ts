/**
 * Single-thread GFLOP/s of the WebAssembly matmul kernel (src/backends/wasm/assembly/matmul.ts).
 *
 *   node scripts/build-wasm.mjs && npx tsc -p tsconfig.json && node dist/bench/wasm-matmul.js [--seconds 0.1] [--rounds 20]
 *
 * Each shape is warmed up first (V8 compiles WebAssembly with its baseline tier and tiers hot functions
 * up lazily), then timed over `--rounds` rounds of about `--seconds` each; the best round is reported,
 * since other processes on the machine only ever slow a round down.
 */
import {
  compileKernels,
  createSharedMemory,
  HEAP_START,
  instantiateKernels,
  WASM_PAGE_BYTES,
} from '../src/backends/wasm/kernels.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const roundSeconds = option('seconds', 0.1);
const ROUNDS = option('rounds', 20);

// [m, n, k, layout]: 'NN' = both row-major; 'TN' = A stored transposed (k x m); 'NT' = B stored transposed.
type Layout = 'NN' | 'TN' | 'NT';
const shapes: [number, number, number, Layout][] = [
  [256, 256, 256, 'NN'],
  [512, 512, 512, 'NN'],
  [1024, 1024, 1024, 'NN'],
  [4096, 256, 64, 'NN'],
  [4096, 256, 64, 'TN'],
  [4096, 256, 64, 'NT'],
  [16, 256, 64, 'NN'],
  [16, 256, 64, 'NT'],
  [16, 256, 16, 'NN'],
  [64, 256, 16, 'NN'],
];

const memory = createSharedMemory(1, 16384);
const kernels = instantiateKernels(compileKernels(), memory);

function bench(m: number, n: number, k: number, layout: Layout): { gflops: number; msPerCall: number } {
  let top = HEAP_START;
  const alloc = (bytes: number) => {
    const ptr = top;
    top = Math.ceil((top + bytes) / 64) * 64;
    const need = Math.ceil(top / WASM_PAGE_BYTES) - memory.buffer.byteLength / WASM_PAGE_BYTES;
    if (need > 0) memory.grow(need);
    return ptr;
  };
  const a = alloc(m * k * 4);
  const b = alloc(k * n * 4);
  const c = alloc(m * n * 4);
  const scratch = alloc(kernels.matmulScratchBytes(m, n, k));
  const f = new Float32Array(memory.buffer);
  for (let i = 0; i < m * k; i++) f[a / 4 + i] = Math.random() - 0.5;
  for (let i = 0; i < k * n; i++) f[b / 4 + i] = Math.random() - 0.5;
  const [aRow, aCol] = layout === 'TN' ? [1, m] : [k, 1];
  const [bRow, bCol] = layout === 'NT' ? [1, k] : [n, 1];
  const call = () => kernels.matmul(a, b, c, m, n, k, aRow, aCol, bRow, bCol, 0, m, scratch);

  const flops = 2 * m * n * k;
  // Warm-up: enough calls for tier-up, and at least ~0.2 s of work.
  let t0 = performance.now();
  for (let i = 0; i < 20 || performance.now() - t0 < 200; i++) call();
  // Calibrate calls per round.
  t0 = performance.now();
  call();
  const once = Math.max(performance.now() - t0, 1e-3);
  const calls = Math.max(1, Math.round((roundSeconds * 1000) / once));
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    t0 = performance.now();
    for (let i = 0; i < calls; i++) call();
    best = Math.min(best, (performance.now() - t0) / calls);
  }
  return { gflops: flops / (best * 1e6), msPerCall: best };
}

const rows: string[][] = [['shape (m x k @ k x n)', 'layout', 'GFLOP/s', 'ms/call']];
for (const [m, n, k, layout] of shapes) {
  const { gflops, msPerCall } = bench(m, n, k, layout);
  rows.push([`${m}x${k} @ ${k}x${n}`, layout, gflops.toFixed(1), msPerCall.toFixed(4)]);
}
const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
const line = (row: string[]) => `| ${row.map((cell, col) => cell.padEnd(widths[col])).join(' | ')} |`;
console.log(`wasm matmul kernel, 1 thread, float32, best of ${ROUNDS} rounds of ${roundSeconds} s`);
console.log(line(rows[0]));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows.slice(1)) console.log(line(row));
