/**
 * The two kernel builds (scripts/build-wasm.mjs): the relaxed build (multiply-adds fused) wherever
 * the runtime can validate it (Node 20 too: the loader turns on V8's relaxed SIMD there), the exact
 * SIMD build with TITANS_WASM_SIMD=exact. The build is chosen once a process, so each case runs in
 * a child process; both builds must match float64 products.
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

// Run in the child: which build it loaded, its worst relative error on matmuls of several shapes
// and transposes against float64 products computed in JS, and one product where fusing shows:
// [-1, x]·[1, x] with x = 1 + 2⁻¹² is x² − 1 = 2⁻¹¹ + 2⁻²⁴ exactly; rounding x² to float32 first
// (1 + 2⁻¹¹, a tie to even) loses the 2⁻²⁴.
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
const x = 1 + 2 ** -12;
const tie = matmul(tensor([-1, x], [1, 2]), tensor([1, x], [2, 1])).dataSync()[0];
console.log(JSON.stringify({ relaxedSimd: kernelFeatures().relaxedSimd, worst, tie }));
`;

function run(env: Record<string, string>): { relaxedSimd: boolean; worst: number; tie: number } {
  const file = join(tmpdir(), `titans-relaxed-${process.pid}.mjs`);
  writeFileSync(file, script);
  const out = execFileSync(process.execPath, [file], {
    encoding: 'utf8',
    env: { ...process.env, TITANS_WASM_SIMD: '', ...env },
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('kernel builds: relaxed SIMD wherever the runtime can run it, exact SIMD on request', () => {
  it('by default the relaxed build runs (on Node 20 too) and matches float64', () => {
    const r = run({});
    assert.equal(r.relaxedSimd, true);
    assert.ok(r.worst < 1e-5, `worst relative error ${r.worst}`);
  });

  it('with TITANS_WASM_SIMD=exact the exact build runs: float32 multiply, then add', () => {
    const r = run({ TITANS_WASM_SIMD: 'exact' });
    assert.equal(r.relaxedSimd, false);
    assert.ok(r.worst < 1e-5, `worst relative error ${r.worst}`);
    assert.equal(r.tie, 2 ** -11);
  });

  it('TITANS_WASM_SIMD=relaxed is the default', () => {
    assert.equal(run({ TITANS_WASM_SIMD: 'relaxed' }).relaxedSimd, true);
  });

  it('any other value of TITANS_WASM_SIMD is refused, naming the variable', () => {
    assert.throws(
      () => run({ TITANS_WASM_SIMD: 'fast' }),
      (e: Error & { stderr?: string }) =>
        /TITANS_WASM_SIMD must be 'relaxed' or 'exact', got 'fast'/.test(String(e.stderr)),
    );
  });
});
