import { listBackends, registerBackend, wasmBackend } from '../../src/index.js';
import { asyncOnlyBackend } from './async-only-backend.js';

/** The test-only backend without synchronous reads (test/helpers/async-only-backend.ts). */
export const ASYNC_BACKEND = 'async-wasm';

/**
 * The backends every backend-agnostic test runs on: all registered ones, or those named in
 * TITANS_TEST_BACKENDS (comma-separated). A new backend registers itself and the suite covers it;
 * naming `async-wasm` registers the test-only backend without synchronous reads.
 *
 * Float64 checks (finite differences, SPEC tolerances) run only where a backend computes float64;
 * `tolerance(dtype)` gives the relative tolerance for value comparisons.
 */
export function backendsUnderTest(): string[] {
  const wanted = process.env.TITANS_TEST_BACKENDS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (wanted?.includes(ASYNC_BACKEND)) asyncBackend();
  const all = listBackends();
  return wanted ? all.filter((b) => wanted.includes(b)) : all;
}

export function tolerance(dtype: 'float32' | 'float64'): number {
  return dtype === 'float64' ? 1e-9 : 1e-4;
}

/**
 * Registers the test-only backend without synchronous reads (once) and returns its name; null
 * where the wasm backend it wraps is unavailable.
 */
export function asyncBackend(): string | null {
  if (!wasmBackend) return null;
  if (!listBackends().includes(ASYNC_BACKEND)) registerBackend(asyncOnlyBackend(wasmBackend, ASYNC_BACKEND));
  return ASYNC_BACKEND;
}
