/**
 * Runs the compiled `titans` command line in a child process (dist/src/cli/bin.js) and returns
 * its exit code and output, for the CLI tests.
 */
import { spawnSync } from 'node:child_process';

/** The compiled executable. */
export const TITANS_BIN = new URL('../../src/cli/bin.js', import.meta.url).pathname;

/**
 * `titans …args` in a child process (CI=1: two wasm threads unless told otherwise).
 *
 * @example
 * const { code, stdout, stderr } = titans('inspect', 'model.safetensors');
 */
export function titans(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [TITANS_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
