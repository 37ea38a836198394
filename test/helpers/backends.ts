import { listBackends } from '../../src/index.js';

/**
 * The backends every backend-agnostic test runs on: all registered ones, or those named in
 * TITANS_TEST_BACKENDS (comma-separated). A new backend registers itself and the suite covers it.
 *
 * Float64 checks (finite differences, SPEC tolerances) run only where a backend computes float64;
 * `tolerance(dtype)` gives the relative tolerance for value comparisons.
 */
export function backendsUnderTest(): string[] {
  const wanted = process.env.TITANS_TEST_BACKENDS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const all = listBackends();
  return wanted ? all.filter((b) => wanted.includes(b)) : all;
}

export function tolerance(dtype: 'float32' | 'float64'): number {
  return dtype === 'float64' ? 1e-9 : 1e-4;
}
