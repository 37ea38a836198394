#!/usr/bin/env node
// Compiles the AssemblyScript kernels (src/backends/wasm/assembly/index.ts) to WebAssembly, twice:
// SIMD (the default) and SIMD + relaxed SIMD (fused multiply-adds; loaded where the runtime validates
// it, see kernels.ts), and writes
//   - src/backends/wasm/kernels.wasm.ts  (generated, git-ignored): `export const KERNELS_WASM_BASE64` and
//     `KERNELS_RELAXED_WASM_BASE64`, so the same code loads the binaries in Node and in browsers
//     without fs or fetch;
//   - dist/wasm/kernels.wasm, kernels-relaxed.wasm   the binaries themselves.
// Run before `tsc`. Offline (the compiler comes from node_modules), a few seconds, exits 1 on any error.
// Usage: node scripts/build-wasm.mjs [--wat] [--names]
//   --wat    also writes dist/wasm/kernels.wat
//   --names  also writes dist/wasm/kernels.names.json: the function names by index (from a second,
//            --debug compile whose functions come in the same order), for bench/profile.ts
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = 'src/backends/wasm/assembly/index.ts';
const generated = 'src/backends/wasm/kernels.wasm.ts';
const wasmOut = 'dist/wasm/kernels.wasm';
const watOut = 'dist/wasm/kernels.wat';

// Memory contract, mirrored in src/backends/wasm/kernels.ts: the module imports env.memory, shared,
// declared with minimum 1 page and maximum 65536 pages (4 GiB, the wasm32 limit); any imported memory
// with initial >= 1 and maximum <= 65536 pages fits.
const INITIAL_PAGES = 1;
const MAXIMUM_PAGES = 65536;

const ascArgs = [
  entry,
  '--optimizeLevel',
  '3',
  '--shrinkLevel',
  '0',
  '--noAssert',
  '--runtime',
  'stub',
  '--enable',
  'simd,threads',
  '--importMemory',
  '--noExportMemory',
  '--sharedMemory',
  '--initialMemory',
  String(INITIAL_PAGES),
  '--maximumMemory',
  String(MAXIMUM_PAGES),
  '--outFile',
  'kernels.wasm',
  '--textFile',
  'kernels.wat',
];

function fail(message) {
  console.error(`build-wasm: ${message}`);
  process.exit(1);
}

let asc;
try {
  asc = (await import('assemblyscript/asc')).default;
} catch (err) {
  fail(`cannot load the AssemblyScript compiler (npm install -D assemblyscript@0.28): ${err.message}`);
}

const started = Date.now();

/** Compiles with `args`; returns the outputs by file name (kernels.wasm, kernels.wat). */
async function compile(args) {
  const outputs = new Map();
  const stderr = asc.createMemoryStream();
  const result = await asc.main(args, {
    baseDir: root,
    stdout: asc.createMemoryStream(),
    stderr,
    writeFile(name, contents) {
      outputs.set(name.replace(/^.*[\\/]/, ''), contents);
    },
  });
  const diagnostics = stderr.toString().trim();
  if (result.error || !outputs.has('kernels.wasm')) {
    if (diagnostics) console.error(diagnostics);
    fail(`asc failed: ${result.error?.message ?? 'no binary written'}`);
  }
  if (diagnostics) console.error(diagnostics); // warnings
  return outputs;
}

const relaxedArgs = ascArgs.map((a) => (a === 'simd,threads' ? 'simd,threads,relaxed-simd' : a));
const outputs = await compile(ascArgs);
const wasm = Buffer.from(outputs.get('kernels.wasm'));
const relaxed = Buffer.from((await compile(relaxedArgs)).get('kernels.wasm'));

// --- Checks on the binary: it must own no linear memory, so several instances can share one memory. ---
function readU32(bytes, pos) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, pos];
  }
}
function readName(bytes, pos) {
  const [len, p] = readU32(bytes, pos);
  return [bytes.subarray(p, p + len).toString('utf8'), p + len];
}
const SECTION = { import: 2, global: 6, start: 8, data: 11, dataCount: 12 };
/** Fails unless the binary owns no linear memory and imports exactly env.memory as the contract says. */
function checkContract(wasm) {
  const imports = [];
  for (let pos = 8; pos < wasm.length; ) {
    const id = wasm[pos];
    const [size, body] = readU32(wasm, pos + 1);
    if (id === SECTION.data || id === SECTION.dataCount) fail('the module has data segments (static data)');
    if (id === SECTION.start) fail('the module has a start function');
    if (id === SECTION.global) fail('the module has globals (the stub runtime or static state leaked in)');
    if (id === SECTION.import) {
      let [count, p] = readU32(wasm, body);
      for (; count > 0; count--) {
        let module;
        let name;
        [module, p] = readName(wasm, p);
        [name, p] = readName(wasm, p);
        const kind = wasm[p++];
        if (kind !== 2) fail(`unexpected import ${module}.${name} (kind ${kind})`);
        const flags = wasm[p++];
        let min;
        let max;
        [min, p] = readU32(wasm, p);
        if (flags & 1) [max, p] = readU32(wasm, p);
        imports.push({ module, name, shared: (flags & 2) !== 0, min, max });
      }
    }
    pos = body + size;
  }
  const mem = imports[0];
  if (imports.length !== 1 || mem.module !== 'env' || mem.name !== 'memory') {
    fail(`expected exactly one import, env.memory; got ${JSON.stringify(imports)}`);
  }
  if (!mem.shared || mem.min !== INITIAL_PAGES || mem.max !== MAXIMUM_PAGES) {
    fail(`env.memory must be shared ${INITIAL_PAGES}..${MAXIMUM_PAGES} pages; got ${JSON.stringify(mem)}`);
  }
}
checkContract(wasm);
checkContract(relaxed);

// --- Smoke test: instantiate on a shared memory and multiply 3x2 by 2x5 (each build this runtime runs). ---
function smokeTest(wasm) {
  const module = new WebAssembly.Module(wasm);
  const exportNames = WebAssembly.Module.exports(module)
    .map((e) => e.name)
    .sort();
  for (const name of ['matmul', 'matmulScratchBytes']) {
    if (!exportNames.includes(name)) fail(`missing export ${name} (exports: ${exportNames.join()})`);
  }
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 16, shared: true });
  const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const f32 = new Float32Array(memory.buffer);
  const base = 65536 / 4; // HEAP_START in floats
  const [m, n, k] = [3, 5, 2];
  const [aOff, bOff, cOff, sOff] = [base, base + 16, base + 32, base + 64];
  for (let i = 0; i < m * k; i++) f32[aOff + i] = i + 1;
  for (let i = 0; i < k * n; i++) f32[bOff + i] = i - 3;
  kernels.matmul(aOff * 4, bOff * 4, cOff * 4, m, n, k, k, 1, n, 1, 0, m, sOff * 4);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let want = 0;
      for (let p = 0; p < k; p++) want += f32[aOff + i * k + p] * f32[bOff + p * n + j];
      if (f32[cOff + i * n + j] !== want)
        fail(`smoke test: C[${i},${j}] = ${f32[cOff + i * n + j]}, want ${want}`);
    }
  }
}
smokeTest(wasm);
if (WebAssembly.validate(relaxed)) smokeTest(relaxed);

// --- Outputs. ---
const lines = [
  '// Generated by scripts/build-wasm.mjs from src/backends/wasm/assembly/matmul.ts. Do not edit.',
  `// ${wasm.length} bytes, asc ${asc.version} ${ascArgs.slice(1, -4).join(' ')}`,
  `export const KERNELS_WASM_BASE64: string =\n  '${wasm.toString('base64')}';`,
  `// ${relaxed.length} bytes, the same with relaxed SIMD (fused multiply-adds)`,
  `export const KERNELS_RELAXED_WASM_BASE64: string =\n  '${relaxed.toString('base64')}';`,
  '',
];
writeFileSync(join(root, generated), lines.join('\n'));
mkdirSync(join(root, dirname(wasmOut)), { recursive: true });
writeFileSync(join(root, wasmOut), wasm);
writeFileSync(join(root, wasmOut.replace('.wasm', '-relaxed.wasm')), relaxed);
if (process.argv.includes('--wat')) writeFileSync(join(root, watOut), outputs.get('kernels.wat'));
if (process.argv.includes('--names')) {
  const named = new Map();
  const debug = await asc.main([...ascArgs, '--debug'], {
    baseDir: root,
    stdout: asc.createMemoryStream(),
    stderr: asc.createMemoryStream(),
    writeFile(name, contents) {
      named.set(name.replace(/^.*[\\/]/, ''), contents);
    },
  });
  if (debug.error) fail(`asc --debug failed: ${debug.error.message}`);
  const names = [...named.get('kernels.wat').matchAll(/^ \(func \$(\S+)/gm)].map((m) =>
    m[1].replace(/^.*\//, ''),
  );
  writeFileSync(join(root, 'dist/wasm/kernels.names.json'), `${JSON.stringify(names)}\n`);
}
console.log(
  `build-wasm: ${wasm.length} + ${relaxed.length} (relaxed SIMD) bytes -> ${generated}, ${wasmOut} (${Date.now() - started} ms)`,
);
