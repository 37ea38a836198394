/**
 * Browser-safe reporting (no `node:*`): SVG line charts and a progress line. The Node sink for
 * the progress line is `stderrSink` in `./node-sink.js`.
 */
export * from './plot.js';
export * from './progress.js';
