#!/usr/bin/env node
// Browser smoke test (not part of `npm test`: CI has no browser). Serves the repository root on
// 127.0.0.1, loads scripts/browser-smoke-page.js in headless Chromium twice — once cross-origin
// isolated (COOP same-origin + COEP require-corp: wasm backend expected) and once without those
// headers (reference backend expected) — and checks the numbers the page reports.
// Usage: node scripts/browser-smoke.mjs [path-to-chromium]   (after `npm run build`)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const chromium = process.argv[2] ?? process.env.CHROMIUM ?? 'chromium';
const TIMEOUT_MS = 90_000;
const VALUE_TOL = 1e-4; // float32 vs float64
const GRAD_TOL = 1e-3; // a gradient through the scan accumulates more float32 rounding (as in test/wasm)
const POOL_TOL = 1e-6; // enableWasmWorkers vs one thread: the same kernels on the same rows

// ---- 1. the core entry's import graph must have no bare specifiers and no node:* imports --------
function importGraph(entry) {
  const seen = new Set();
  const bad = [];
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    // static imports, dynamic imports, and worker scripts (new URL('./x.js', import.meta.url));
    // not a module handed to importNode(…) (src/api/runtime.ts): that loads only when running in
    // Node, so a browser never fetches it.
    const re =
      /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|(?<!importNode\(\s*)new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/gm;
    for (const m of text.matchAll(re)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec.startsWith('./') || spec.startsWith('../')) stack.push(resolve(dirname(file), spec));
      else bad.push(`${file.slice(root.length + 1)} imports '${spec}'`);
    }
  }
  return { files: seen.size, bad };
}

const entry = join(root, 'dist/src/index.js');
if (!existsSync(entry)) {
  console.error('dist/src/index.js is missing: run `npm run build` first');
  process.exit(1);
}
const graph = importGraph(entry);
console.log(
  `import graph of dist/src/index.js: ${graph.files} files, ${graph.bad.length} non-relative imports`,
);
for (const b of graph.bad) console.log(`  ${b}`);

// ---- 2. a static server: /iso/* with COOP/COEP, /plain/* without --------------------------------
const TYPES = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.map': 'application/json',
  '.json': 'application/json',
  '.html': 'text/html',
  '.wasm': 'application/wasm',
};
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>titans-ts browser smoke</title></head>
<body><pre id="result">running…</pre>
<script type="module">
if (location.search.includes('noshared')) {
  // Simulates a browser that refuses shared WebAssembly memory without cross-origin isolation.
  const Memory = WebAssembly.Memory;
  WebAssembly.Memory = function (d) {
    if (d && d.shared) throw new TypeError('shared memory refused (simulated)');
    return new Memory(d);
  };
  globalThis.__titansNoSharedMemory = true;
}
import('./scripts/browser-smoke-page.js').catch((e) =>
  fetch('/result', { method: 'POST', body: JSON.stringify({ error: 'import failed: ' + (e && e.stack || e) }) }));
</script></body></html>`;

let onResult = null;
const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'POST' && url.pathname === '/result') {
    let body = '';
    for await (const chunk of req) body += chunk;
    res.writeHead(204).end();
    onResult?.(body);
    return;
  }
  const [, mode, ...rest] = url.pathname.split('/');
  if (mode !== 'iso' && mode !== 'plain') return void res.writeHead(404).end();
  const headers = { 'cache-control': 'no-store' };
  if (mode === 'iso') {
    headers['cross-origin-opener-policy'] = 'same-origin';
    headers['cross-origin-embedder-policy'] = 'require-corp';
  }
  const rel = rest.join('/');
  if (rel === '' || rel === 'index.html') {
    res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    return;
  }
  const file = normalize(join(root, decodeURIComponent(rel)));
  const allowed = [join(root, 'dist') + sep, join(root, 'scripts') + sep].some((p) => file.startsWith(p));
  if (!allowed) return void res.writeHead(404).end();
  try {
    const data = await readFile(file);
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    res.writeHead(200, { ...headers, 'content-type': type }).end(data);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const port = server.address().port;

// ---- 3. one headless Chromium run per mode -----------------------------------------------------
function runPage(url) {
  const profile = mkdtempSync(join(tmpdir(), 'titans-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--enable-unsafe-webgpu', // WebGPU on Linux (headless Chromium then offers SwiftShader's adapter)
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    `--user-data-dir=${profile}`,
    url,
  ];
  // Its own process group, so that the browser's helper processes are stopped with it.
  const child = spawn(chromium, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  child.stdout.on('data', (d) => {
    log += d;
  });
  child.stderr.on('data', (d) => {
    log += d;
  });
  return new Promise((ok, fail) => {
    const finish = (err, value) => {
      clearTimeout(timer);
      onResult = null;
      child.removeAllListeners('exit');
      child.once('exit', () => {
        try {
          rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
        } catch {
          // a helper process still writing: leave the temp profile behind
        }
        if (err) fail(err);
        else ok(value);
      });
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          child.kill('SIGTERM');
        }
      } else child.emit('exit');
    };
    const timer = setTimeout(
      () => finish(new Error(`${url}: no result within ${TIMEOUT_MS / 1000} s\n${log.slice(-4000)}`)),
      TIMEOUT_MS,
    );
    child.once('error', (e) => finish(new Error(`${url}: cannot start ${chromium}: ${e.message}`)));
    child.once('exit', (code) =>
      finish(new Error(`${url}: chromium exited (${code}) before reporting\n${log.slice(-4000)}`)),
    );
    onResult = (body) => {
      try {
        finish(null, JSON.parse(body));
      } catch (e) {
        finish(new Error(`${url}: bad report ${body}: ${e}`));
      }
    };
  });
}

// ---- 4. checks ---------------------------------------------------------------------------------
// mode: 'iso' must run on wasm; 'noshared' (shared wasm memory refused) must fall back to the
// reference backend; 'plain' (no COOP/COEP) runs on whichever loadWasmBackend() gave.
function check(mode, r) {
  const problems = [];
  const expect = (ok, what) => {
    if (!ok) problems.push(what);
  };
  if (r.error) return [`page error: ${r.error}`];
  const want = { iso: 'wasm', noshared: null, plain: r.loadWasmBackend }[mode];
  const backend = want ?? 'reference';
  expect(r.crossOriginIsolated === (mode === 'iso'), `crossOriginIsolated is ${r.crossOriginIsolated}`);
  expect(r.loadWasmBackend === want, `loadWasmBackend() gave ${r.loadWasmBackend}, expected ${want}`);
  expect(r.backends.join() === (want ? 'reference,wasm' : 'reference'), `backends ${r.backends.join(', ')}`);
  expect(r.defaultBackend === backend, `default backend ${r.defaultBackend}, expected ${backend}`);
  expect(r.memoryScan.backend === backend, `memoryScan ran on ${r.memoryScan.backend}`);
  expect(r.memoryScan.dtype === 'float32', `memoryScan dtype ${r.memoryScan.dtype}`);
  expect(r.memoryScan.refBackend === 'reference', `float64 memoryScan ran on ${r.memoryScan.refBackend}`);
  expect(r.memoryScan.relDiffY < VALUE_TOL, `memoryScan y differs by ${r.memoryScan.relDiffY}`);
  expect(r.memoryScan.relDiffWeights < VALUE_TOL, `memoryScan W differs by ${r.memoryScan.relDiffWeights}`);
  expect(r.grad.backend === backend, `grad ran on ${r.grad.backend}`);
  expect(r.grad.relDiff < GRAD_TOL, `grad differs by ${r.grad.relDiff}`);
  expect(r.attention.backend === backend, `attention ran on ${r.attention.backend}`);
  expect(r.attention.relDiff < VALUE_TOL, `attention differs by ${r.attention.relDiff}`);
  // WebGPU where the browser offers an adapter: the same numbers as the float64 reference.
  if (r.webgpu?.available) {
    expect(r.webgpu.backend === 'webgpu', `webgpu memoryScan ran on ${r.webgpu.backend}`);
    expect(
      r.webgpu.memoryScanRelDiffY < VALUE_TOL,
      `webgpu memoryScan y differs by ${r.webgpu.memoryScanRelDiffY}`,
    );
    expect(
      r.webgpu.attentionGradRelDiff < GRAD_TOL,
      `webgpu attention grads differ by ${r.webgpu.attentionGradRelDiff}`,
    );
  }
  const w = r.workers;
  if (mode === 'iso') {
    // enableWasmWorkers(wasm, 2): the same numbers as one thread, and the pool was used
    expect(w && !w.error, `enableWasmWorkers failed: ${w?.error ?? 'no report'}`);
    if (w && !w.error) {
      expect(
        w.threads === 2 && w.attached && w.detached,
        `pool threads ${w.threads}, attached ${w.attached}`,
      );
      expect(w.backend === 'wasm', `pooled workload ran on ${w.backend}`);
      expect(w.jobs > 0, `pool.jobs is ${w.jobs}`);
      for (const key of ['matmulMaxAbsDiff', 'scanYMaxAbsDiff', 'scanWeightsMaxAbsDiff']) {
        expect(w[key] <= POOL_TOL, `pooled ${key} ${w[key]} > ${POOL_TOL}`);
      }
    }
  } else if (w) {
    // wasm without cross-origin isolation: starting workers must fail with a clear error
    expect(w.rejected === true, 'enableWasmWorkers did not reject without cross-origin isolation');
  }
  return problems;
}

let failed = graph.bad.length > 0;
try {
  for (const [mode, path, title] of [
    ['iso', '/iso/', 'cross-origin isolated (COOP/COEP): wasm backend expected'],
    ['plain', '/plain/', 'no COOP/COEP: whichever backend loadWasmBackend() gives'],
    ['noshared', '/plain/?noshared', 'no COOP/COEP, shared wasm memory refused: reference backend expected'],
  ]) {
    const url = `http://127.0.0.1:${port}${path}`;
    console.log(`\n== ${title}: ${url}`);
    let problems;
    try {
      const report = await runPage(url);
      if (mode === 'plain') {
        console.log(
          `note: without cross-origin isolation this browser ${report.sharedWasmMemory ? 'allows' : 'refuses'} shared WebAssembly.Memory, so loadWasmBackend() gave ${report.loadWasmBackend}`,
        );
      }
      console.log(JSON.stringify(report, null, 2));
      problems = check(mode, report);
    } catch (e) {
      problems = [String(e?.message ?? e)];
    }
    for (const p of problems) console.log(`FAIL ${mode}: ${p}`);
    console.log(problems.length === 0 ? `ok ${mode}` : `not ok ${mode}`);
    failed ||= problems.length > 0;
  }
} finally {
  server.close();
}
console.log(failed ? '\nbrowser smoke: FAILED' : '\nbrowser smoke: all checks passed');
process.exit(failed ? 1 : 0);
