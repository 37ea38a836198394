/**
 * `npm run bench`: prints a table of throughput numbers on this machine, and with `--append`
 * appends it (date, machine, commit) to BENCHMARKS.md. Benchmarks print; tests never time.
 *
 *   node dist/bench/run.js [--append] [--backend reference] [--only matmul,memoryScan]
 */
import { execSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import {
  add,
  type FloatDType,
  grad,
  listBackends,
  matmul,
  memoryScan,
  mul,
  Rng,
  sum,
  type Tensor,
  tidy,
  withBackend,
} from '../src/index.js';

interface Row {
  bench: string;
  shape: string;
  backend: string;
  dtype: string;
  value: string;
  unit: string;
}

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const backends = option('backend')?.split(',') ?? listBackends();
const only = option('only')?.split(',');
const wanted = (name: string) => !only || only.includes(name);

/** Median seconds of `runs` timed calls after `warmup` untimed ones. */
function time(fn: () => void, runs = 3, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const rows: Row[] = [];
function report(row: Row): void {
  rows.push(row);
  console.log(
    `${row.bench.padEnd(26)} ${row.shape.padEnd(34)} ${row.backend.padEnd(10)} ${row.dtype.padEnd(8)} ${row.value.padStart(10)} ${row.unit}`,
  );
}

function benchMatmul(backend: string, dtype: FloatDType): void {
  const rng = new Rng(0);
  const shapes: [number, number, number][] = [
    [128, 128, 128],
    [256, 256, 256],
    [512, 512, 512],
    [4096, 64, 256],
  ];
  for (const [m, k, n] of shapes) {
    tidy(() => {
      const a = rng.normal([m, k], { dtype });
      const b = rng.normal([k, n], { dtype });
      const runs = m * k * n > 5e7 ? 1 : 3;
      const s = time(() => tidy(() => matmul(a, b)), runs);
      report({
        bench: 'matmul',
        shape: `${m}×${k} @ ${k}×${n}`,
        backend,
        dtype,
        value: ((2 * m * k * n) / s / 1e9).toFixed(2),
        unit: 'GFLOP/s',
      });
    });
  }
}

/** The memory core at the size: H = 4 heads, d_h = 64, expansion 4 (h = 256), depth 2. */
function benchMemoryScan(backend: string, dtype: FloatDType, T: number): void {
  const H = 4;
  const dh = 64;
  const hidden = 4 * dh;
  for (const chunkSize of [16, 64]) {
    tidy(() => {
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
      const options = { chunkSize };
      const shape = `H=${H} dh=${dh} h=${hidden} T=${T} b=${chunkSize}`;
      // One timed run each, no warm-up run: at this size the JIT is warm after the first chunks.
      const forward = time(() => tidy(() => memoryScan(inputs, options).y), 1, 0);
      report({
        bench: 'memoryScan forward',
        shape,
        backend,
        dtype,
        value: (T / forward).toFixed(0),
        unit: 'tokens/s',
      });
      const loss = (p: typeof inputs): Tensor => {
        const r = memoryScan(p, options);
        return add(sum(mul(r.y, r.y)), sum(r.state.weights[0]!));
      };
      const both = time(() => tidy(() => grad(loss)(inputs)), 1, 0);
      report({
        bench: 'memoryScan fwd+bwd',
        shape,
        backend,
        dtype,
        value: (T / both).toFixed(0),
        unit: 'tokens/s',
      });
    });
  }
}

const T = Number(option('tokens') ?? 4096);
console.log(
  `titans-ts benchmarks — ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}\n`,
);
for (const backend of backends) {
  withBackend(backend, () => {
    if (wanted('matmul')) benchMatmul(backend, 'float32');
    if (wanted('memoryScan')) benchMemoryScan(backend, 'float32', T);
  });
}

if (flag('append')) {
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
    if (execSync('git status --porcelain', { encoding: 'utf8' }).trim()) commit += '+dirty';
  } catch {
    // not a git checkout
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
  const file = 'BENCHMARKS.md';
  if (!existsSync(file)) {
    writeFileSync(
      file,
      '# Benchmarks\n\nAppended by `npm run bench -- --append`; newest last. Never edit old rows.\n',
    );
  }
  const table = [
    `\n## ${new Date().toISOString().slice(0, 10)} — commit ${commit}\n`,
    `Machine: ${machine}\n`,
    '| bench | shape | backend | dtype | value | unit |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.bench} | ${r.shape} | ${r.backend} | ${r.dtype} | ${r.value} | ${r.unit} |`),
    '',
  ].join('\n');
  appendFileSync(file, table);
  console.log(`\nappended to ${file}`);
}
