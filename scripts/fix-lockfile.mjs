#!/usr/bin/env node
// `npm ci` refuses a lock file that lacks any optional dependency of a package, even one for
// another platform. On this workplace's registry, `npm install` records only the Linux builds of
// Biome's CLI, so `npm ci` then fails ("Missing: @biomejs/cli-darwin-arm64@ from lock file").
// This adds platform-only entries (no download URL: npm skips them on other platforms) for every
// optional dependency the lock file lacks. Run it after `npm install` changes package-lock.json.
import { readFileSync, writeFileSync } from 'node:fs';

const file = 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;
let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (packages[key]) continue;
    // Biome's names say the platform: cli-<os>-<cpu>[-musl]
    const m = /cli-(\w+)-(\w+?)(-musl)?$/.exec(name);
    if (!m) throw new Error(`${file}: ${path} needs ${name}, whose platform cannot be read from its name`);
    packages[key] = {
      version,
      cpu: [m[2]],
      dev: entry.dev ?? false,
      optional: true,
      os: [m[1]],
      ...(m[3] ? { libc: ['musl'] } : {}),
    };
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync(file, `${JSON.stringify({ ...lock, packages: sorted }, null, 2)}\n`);
console.log(`fix-lockfile: added ${added} platform entries`);
