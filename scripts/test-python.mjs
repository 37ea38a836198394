#!/usr/bin/env node
// `npm run test:python` (after the build): the PyTorch twin's tests. Generates titans-ts's float64
// parity vectors (dist/test/python/vectors.js) into a temporary folder, then runs
// `/usr/bin/python3 -m pytest python/tests` with TITANS_VECTORS pointing there; pytest's summary
// line ends the run and its exit code is ours. Needs Debian's python3-torch and python3-pytest:
// scripts/install-python-deps.sh installs them.
// Usage: node scripts/test-python.mjs [pytest arguments, e.g. -k parity]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const python = '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch, pytest'], { stdio: 'ignore' });
if (probe.status !== 0) {
  console.error(
    `test:python: ${python} cannot import torch and pytest; install them with: sudo bash scripts/install-python-deps.sh`,
  );
  process.exit(1);
}
const folder = mkdtempSync(join(tmpdir(), 'titans-vectors-'));
let status = 1;
try {
  const vectors = spawnSync(process.execPath, ['dist/test/python/vectors.js', folder], { stdio: 'inherit' });
  if (vectors.status !== 0) {
    console.error('test:python: generating the parity vectors failed');
  } else {
    const env = { ...process.env, TITANS_VECTORS: folder, PYTHONDONTWRITEBYTECODE: '1' };
    const args = ['-m', 'pytest', 'python/tests', '-p', 'no:cacheprovider', '-rs', ...process.argv.slice(2)];
    status = spawnSync(python, args, { stdio: 'inherit', env }).status ?? 1;
  }
} finally {
  rmSync(folder, { recursive: true, force: true });
}
process.exit(status);
