/**
 * The package's shape: the core entry reaches no `node:*` module (so it runs in a browser), the
 * exports map points at built files, and the CLI answers --help and bad arguments cleanly.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function reachableModules(entry: string): { modules: Set<string>; nodeImports: string[] } {
  const modules = new Set<string>();
  const nodeImports: string[] = [];
  const visit = (file: string) => {
    if (modules.has(file)) return;
    modules.add(file);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) nodeImports.push(`${file}: ${spec}`);
      else if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
    }
  };
  visit(entry);
  return { modules, nodeImports };
}

describe('package', () => {
  it('the core entry imports nothing from node:* (browser-safe)', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const core = join(root, pkg.exports['.'].default);
    const { modules, nodeImports } = reachableModules(core);
    assert.ok(modules.size > 10, 'the walk found the engine modules');
    assert.deepEqual(nodeImports, []);
  });

  it('every exports-map target and the bin exist after the build', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    for (const [key, value] of Object.entries(
      pkg.exports as Record<string, string | Record<string, string>>,
    )) {
      const targets = typeof value === 'string' ? [value] : Object.values(value);
      for (const t of targets) assert.ok(existsSync(join(root, t)), `exports['${key}'] → ${t} is missing`);
    }
    assert.ok(existsSync(join(root, pkg.bin.titans)));
  });

  it('the CLI prints help, and bad arguments give a one-line error without a stack trace', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const bin = join(root, pkg.bin.titans);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: titans/);
    const bad = spawnSync(process.execPath, [bin, 'memorize', '--pairs', '4,x'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /expected a positive integer, got 'x'/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
    const missing = spawnSync(process.execPath, [bin, 'inspect', join(root, 'no-such-file.safetensors')], {
      encoding: 'utf8',
    });
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
    assert.match(missing.stderr, /titans: error: .*no-such-file/);
  });
});
