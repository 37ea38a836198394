/**
 * The two kernel builds (scripts/build-wasm.mjs): where the runtime validates relaxed SIMD the
 * relaxed build runs (matmul's multiply-adds fused), elsewhere the exact SIMD build. Node 20
 * validates relaxed SIMD only with --experimental-wasm-relaxed-simd, so each path runs in a child
 * process with the flag on and off; both must match float64 products.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const index = fileURLToPath(new URL('../../src/index.js', import.meta.url));
const kernels = fileURLToPath(new URL('../../src/backends/wasm/kernels.js', import.meta.url));

// Run in the child: which build it loaded, and its worst relative error on matmuls of several
// shapes and transposes against float64 products computed in JS.
const script = `
import { matmul, tensor, Rng } from ${JSON.stringify(index)};
import { kernelFeatures } from ${JSON.stringify(kernels)};
const rng = new Rng(1);
let worst = 0;
for (const [m, k, n, ta, tb] of [[3, 5, 7, false, false], [64, 64, 64, true, false], [130, 257, 33, false, true], [256, 64, 512, true, true]]) {
  const a = rng.normal(ta ? [k, m] : [m, k]);
  const b = rng.normal(tb ? [n, k] : [k, n]);
  const c = matmul(a, b, { transposeA: ta, transposeB: tb }).dataSync();
  const A = a.dataSync(), B = b.dataSync();
  let scale = 0, err = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += A[ta ? p * m + i : i * k + p] * B[tb ? j * k + p : p * n + j];
    err = Math.max(err, Math.abs(c[i * n + j] - s));
    scale = Math.max(scale, Math.abs(s));
  }
  worst = Math.max(worst, err / scale);
}
console.log(JSON.stringify({ relaxedSimd: kernelFeatures().relaxedSimd, worst }));
`;

function run(flag: string): { relaxedSimd: boolean; worst: number } {
  const file = join(tmpdir(), `titans-relaxed-${process.pid}.mjs`);
  writeFileSync(file, script);
  const out = execFileSync(process.execPath, [flag, file], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('kernel builds: relaxed SIMD where the runtime has it, exact SIMD elsewhere', () => {
  it('with relaxed SIMD validated, the relaxed build runs and matches float64', () => {
    const r = run('--experimental-wasm-relaxed-simd');
    assert.equal(r.relaxedSimd, true);
    assert.ok(r.worst < 1e-5, `worst relative error ${r.worst}`);
  });

  it('without it, the exact build runs and matches float64', () => {
    const r = run('--no-experimental-wasm-relaxed-simd');
    assert.equal(r.relaxedSimd, false);
    assert.ok(r.worst < 1e-5, `worst relative error ${r.worst}`);
  });
});
