#!/usr/bin/env node
/** The `titans` executable: see main.ts. */
import { main } from './main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // After a signal (130, 143) the handlers still catch further ones; exit now, while they do,
  // rather than let a late Ctrl-C kill the process during its teardown with the wrong status.
  if (code === 130 || code === 143) process.exit(code);
});
