/**
 * The Node side of `Progress`: a sink on the process's standard error. Kept out of
 * `./progress.ts` and `./index.ts` so those stay browser-safe; this file only touches the
 * `process` global, so it needs no `node:*` import.
 */

import type { ProgressSink } from './progress.js';

/**
 * A `ProgressSink` writing to `process.stderr` (stdout stays free for results). It counts as a
 * terminal only when stderr is a TTY and `TERM` is not `dumb`; `columns` follows resizes.
 *
 * @example
 * const progress = new Progress({ total: 1000, label: 'train', sink: stderrSink() });
 */
export function stderrSink(): ProgressSink {
  const stream = process.stderr;
  return {
    write(text: string): void {
      stream.write(text);
    },
    isTTY: stream.isTTY === true && process.env.TERM !== 'dumb',
    get columns(): number | undefined {
      return stream.isTTY ? stream.columns : undefined;
    },
  };
}
