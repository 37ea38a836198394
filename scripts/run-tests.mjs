#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) under node's own test runner,
// prints the spec report, and closes with one line CI can read: "N passed, N failed".
// Usage: node scripts/run-tests.mjs [filter-substring ...]
// TITANS_TEST_IMPORT=<module> preloads a module into every test process (test:webgpu uses it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function findTests(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(path));
    else if (entry.name.endsWith('.test.js')) out.push(path);
  }
  return out.sort();
}

const filters = process.argv.slice(2);
const files = findTests('dist/test').filter(
  (f) => filters.length === 0 || filters.some((s) => f.includes(s)),
);
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/test (did the build run?)');
  process.exit(1);
}
const tapDir = mkdtempSync(join(tmpdir(), 'titans-tap-'));
const tapFile = join(tapDir, 'report.tap');
const started = Date.now();
const result = spawnSync(
  process.execPath,
  [
    '--expose-gc',
    ...(process.env.TITANS_TEST_IMPORT
      ? ['--import', pathToFileURL(resolve(process.env.TITANS_TEST_IMPORT)).href]
      : []),
    '--test',
    `--test-concurrency=${Math.max(1, availableParallelism())}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  { stdio: 'inherit' },
);
const tap = readFileSync(tapFile, 'utf8');
rmSync(tapDir, { recursive: true, force: true });
const count = (key) => {
  const m = tap.match(new RegExp(`^# ${key} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : 0;
};
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`suite time: ${seconds} s, ${files.length} files`);
console.log(`${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped`);
process.exit(result.status === 0 && count('fail') === 0 ? 0 : 1);
