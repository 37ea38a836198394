#!/usr/bin/env node
// Serves the web demo (web/) and what it loads — the built library (dist/src), the shipped models
// (models/) and presets (presets/) — as static files, cross-origin isolated (COOP same-origin +
// COEP require-corp) so that the page gets shared WebAssembly memory and worker threads.
// Any static host that sends those two headers can serve the same folders.
// Usage: node scripts/serve-web.mjs [--port N]   (after `npm run build`; `npm run demo:web` does both)
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SERVED = ['web', 'dist/src', 'dist/wasm', 'models', 'presets'];
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
  '.svg': 'image/svg+xml',
};

/**
 * Starts the server on `port` (0: any free port) and resolves to its base URL and a close function.
 * @example const { url, close } = await serveWeb(0);
 */
export async function serveWeb(port = 8080, host = '127.0.0.1') {
  const server = createServer(async (req, res) => {
    const headers = {
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cross-origin-resource-policy': 'same-origin',
      'cache-control': 'no-store',
    };
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (path === '/' || path === '/web') {
      res.writeHead(302, { ...headers, location: '/web/' }).end();
      return;
    }
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
    if (!SERVED.some((dir) => file.startsWith(join(root, dir) + sep))) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    try {
      const data = await readFile(file);
      res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(data);
    } catch {
      res.writeHead(404, headers).end('not found');
    }
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, ok);
  });
  const address = server.address();
  return {
    url: `http://${host}:${address.port}/web/`,
    close: () => new Promise((ok) => server.close(ok)),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!existsSync(join(root, 'dist/src/index.js'))) {
    console.error('serve-web: dist/ is missing: run `npm run build` first (npm run demo:web does)');
    process.exit(1);
  }
  const at = process.argv.indexOf('--port');
  const port = Number(at >= 0 ? process.argv[at + 1] : (process.env.PORT ?? 8080));
  const { url } = await serveWeb(port);
  console.log(`titans-ts web demo: ${url}  (cross-origin isolated; Ctrl-C to stop)`);
}
