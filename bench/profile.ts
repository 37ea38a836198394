/**
 * Where a training step's time goes. Two modes:
 *
 *   node dist/bench/profile.js [--variant mac] [--steps 5] [--warmup 2] [--threads 2]
 *        [--out step.cpuprofile]       runs small-preset training steps (what `train step` times)
 *                                      and profiles those after the warm-up (node:inspector, the
 *                                      format of `node --cpu-prof`), then summarises the profile
 *   node dist/bench/profile.js --summarise /tmp/prof/<file>.cpuprofile [--top 25]
 *                                      prints self time by category and the top functions
 *
 * Categories: "wasm kernels" (functions of the WebAssembly module), "engine dispatch" (the JS
 * of src/engine and the backends' JS glue: shape checks, tape, scopes, kernel calls),
 * "models/memory JS" (model, layer and training code), "GC", "idle" (waiting on worker threads),
 * and "other".
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { wasmBackend, withBackend } from '../src/index.js';
import { enableWasmThreads } from '../src/node.js';
import { trainSteps } from './models.js';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function category(frame: ProfileNode['callFrame']): string {
  const { functionName: name, url } = frame;
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)' || name === '(program)') return name === '(idle)' ? 'idle' : 'other';
  if (url.startsWith('wasm://') || /^\$?[a-z].*\b(wasm-function|\[\d+\])/.test(name)) return 'wasm kernels';
  if (url.includes('/src/engine/') || url.includes('/src/backends/')) return 'engine dispatch';
  if (url.includes('/src/')) return 'models/memory JS';
  if (name === 'Atomics.wait' || name === 'wait') return 'idle';
  return 'other';
}

/** Kernel names by function index, when `node scripts/build-wasm.mjs --names` wrote them. */
function kernelNames(): string[] {
  try {
    return JSON.parse(readFileSync(new URL('../wasm/kernels.names.json', import.meta.url), 'utf8'));
  } catch {
    return [];
  }
}

function summarise(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const names = kernelNames();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  let total = 0;
  const categories = new Map<string, number>();
  const functions = new Map<string, { us: number; category: string }>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    const cat = category(frame);
    categories.set(cat, (categories.get(cat) ?? 0) + us);
    const where = frame.url ? `${frame.url.replace(/^.*\/(dist\/)?/, '')}:${frame.lineNumber + 1}` : '';
    const index = /wasm-function\[(\d+)\]/.exec(frame.functionName)?.[1];
    const key =
      index !== undefined && names[Number(index)]
        ? `wasm ${names[Number(index)]}`
        : `${frame.functionName || '(anonymous)'} ${where}`.trim();
    const entry = functions.get(key) ?? { us: 0, category: cat };
    entry.us += us;
    functions.set(key, entry);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  console.log(`profile ${file}: ${(total / 1e6).toFixed(2)} s sampled\n`);
  console.log('self time by category');
  for (const [cat, us] of [...categories].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${pct(us)}  ${(us / 1e6).toFixed(2).padStart(7)} s  ${cat}`);
  }
  console.log(`\ntop ${top} functions by self time`);
  for (const [key, { us, category: cat }] of [...functions].sort((a, b) => b[1].us - a[1].us).slice(0, top)) {
    console.log(`  ${pct(us)}  ${key}  [${cat}]`);
  }
}

/** Posts an inspector command and waits for its answer (the session is synchronous in Node 20). */
function post<T>(session: Session, method: string): T {
  let result: T | undefined;
  let failure: Error | null = null;
  session.post(method, (err, res) => {
    failure = err;
    result = res as T;
  });
  if (failure) throw failure;
  return result!;
}

function runSteps(variant: string, steps: number, warmup: number, threads: number, out: string): void {
  if (wasmBackend && threads > 1) enableWasmThreads(wasmBackend, threads);
  withBackend('wasm', () => {
    const run = trainSteps(variant, 16, 256);
    const session = new Session();
    session.connect();
    post(session, 'Profiler.enable');
    for (let s = 0; s < warmup + steps; s++) {
      if (s === warmup) post(session, 'Profiler.start');
      const t0 = performance.now();
      run.step();
      console.log(`${s < warmup ? 'warm-up' : 'step'} ${s}: ${(performance.now() - t0).toFixed(0)} ms`);
    }
    const { profile } = post<{ profile: Profile }>(session, 'Profiler.stop');
    session.disconnect();
    writeFileSync(out, JSON.stringify(profile));
    run.dispose();
  });
  wasmBackend?.threadPool?.terminate();
}

const file = option('summarise');
if (file) summarise(file, Number(option('top') ?? 25));
else {
  const out = option('out') ?? 'step.cpuprofile';
  runSteps(
    option('variant') ?? 'mac',
    Number(option('steps') ?? 5),
    Number(option('warmup') ?? 2),
    Number(option('threads') ?? 2),
    out,
  );
  summarise(out, Number(option('top') ?? 25));
}
