/**
 * The engine's boundary: src/engine/** imports nothing from outside src/engine/ — no memory,
 * models or backends types, no packages, no `node:*` — so a backend (which sees only the engine's
 * buffer-level interface) and the engine can each be read and replaced on their own. Checked on
 * the TypeScript sources, where type-only imports are still visible.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const engine = join(root, 'src', 'engine');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module specifier of a source file: static, type-only, re-export and dynamic imports. */
function importSpecifiers(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  return found;
}

describe('engine boundary', () => {
  it('finds the specifiers of every import form', () => {
    const source = [
      "import { a } from './a.js';",
      "import type { B } from '../memory/scan.js';",
      "export { c } from './ops/c.js';",
      "export * from 'some-package';",
      "const m = await import('node:fs');",
      "import './side-effect.js';",
    ].join('\n');
    assert.deepEqual(importSpecifiers(source), [
      './a.js',
      '../memory/scan.js',
      './ops/c.js',
      'some-package',
      'node:fs',
      './side-effect.js',
    ]);
  });

  it('src/engine/** imports only modules inside src/engine/', () => {
    const files = sourceFiles(engine);
    assert.ok(files.length >= 15, `found the engine's sources (${files.length})`);
    const outside: string[] = [];
    for (const file of files) {
      for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
        const target = spec.startsWith('.') ? resolve(dirname(file), spec) : null;
        const inside = target !== null && !relative(engine, target).startsWith('..');
        if (!inside) outside.push(`${relative(root, file)} imports '${spec}'`);
      }
    }
    assert.deepEqual(outside, []);
  });
});
