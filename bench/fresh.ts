/**
 * One streaming item of `npm run bench`, run in a fresh process so that its resident memory is
 * its own (bench/run.ts spawns it once per item and reads the JSON line it prints last):
 *
 *   node dist/bench/fresh.js --variant mac --tokens 2097152 [--piece 512] [--threads 2]
 *
 * It streams `tokens` random bytes through the small preset's `variant` in pieces of `piece`
 * (modelStream: each piece's logits computed and read, the old state freed), and reports the
 * tokens/s over the whole stream and over its first and last tenth, the resident memory (RSS) at
 * the end and at its peak, the engine's live tensor bytes and the model state's bytes.
 */
import { resourceUsage } from 'node:process';
import { initModel, memory, modelStream, Rng, stateBytes, wasmBackend, withBackend } from '../src/index.js';
import { enableWasmThreads } from '../src/node.js';
import { smallConfig } from './models.js';

/** What one fresh-process item reports (sizes in bytes, speeds in tokens/s). */
export interface FreshResult {
  variant: string;
  tokens: number;
  piece: number;
  tokensPerSecond: number;
  firstTenth: number;
  lastTenth: number;
  rss: number;
  peakRss: number;
  liveBytes: number;
  stateBytes: number;
}

/** Streams `total` tokens through the small preset's `variant` and measures it. */
export async function streamFresh(variant: string, total: number, piece: number): Promise<FreshResult> {
  const config = smallConfig(variant);
  const params = initModel(config, new Rng(0));
  const rng = new Rng(2);
  const stream = modelStream(params, config);
  const tenth = Math.max(piece, Math.floor(total / 10));
  const started = performance.now();
  let firstTenth = 0;
  let lastFrom = -1;
  let lastStart = 0;
  let lastLog = started;
  for (let done = 0; done < total; ) {
    if (lastFrom < 0 && done >= total - tenth) {
      lastFrom = done;
      lastStart = performance.now();
    }
    const n = Math.min(piece, total - done);
    const ids = Int32Array.from({ length: n }, () => rng.int(256));
    await stream.feed(ids, (logits) => logits); // computed and read, as a consumer would
    done += n;
    if (firstTenth === 0 && done >= tenth) firstTenth = done / ((performance.now() - started) / 1000);
    if (performance.now() - lastLog > 10000) {
      process.stderr.write(
        `  ${variant}: ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} tokens\n`,
      );
      lastLog = performance.now();
    }
  }
  const ended = performance.now();
  (globalThis as { gc?: () => void }).gc?.();
  const result: FreshResult = {
    variant,
    tokens: total,
    piece,
    tokensPerSecond: total / ((ended - started) / 1000),
    firstTenth,
    lastTenth: (total - lastFrom) / ((ended - lastStart) / 1000),
    rss: process.memoryUsage().rss,
    peakRss: resourceUsage().maxRSS * 1024,
    liveBytes: memory().bytes,
    stateBytes: stateBytes(stream.state!),
  };
  stream.close();
  return result;
}

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
if (process.argv[1]?.endsWith('fresh.js') && option('variant')) {
  const threads = Number(option('threads') ?? 1);
  if (wasmBackend && threads > 1) enableWasmThreads(wasmBackend, threads);
  const result = await withBackend('wasm', () =>
    streamFresh(option('variant')!, Number(option('tokens') ?? 8192), Number(option('piece') ?? 512)),
  );
  wasmBackend?.threadPool?.terminate();
  console.log(JSON.stringify(result));
}
