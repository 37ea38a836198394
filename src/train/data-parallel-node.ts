/**
 * Data-parallel training steps in Node: `threads − 1` worker threads (worker_threads, each with a
 * single-threaded wasm backend and its own copy of the model) and the calling thread share each
 * batch by rows (data-parallel.ts). While the calling thread computes its shard the wasm backend's
 * thread pool is detached, so every core runs one shard and no kernel waits on another thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { WasmBackend } from '../backends/wasm/wasm-backend.js';
import type { TitansConfig } from '../models/config.js';
import type { ModelParams } from '../models/model.js';
import {
  DataParallel,
  type GradientWorker,
  type GradientWorkerSetup,
  gradientWorkerSetup,
  type ShardReply,
  type ShardRequest,
} from './data-parallel.js';

type Reply = { id: number } & ({ ok: true; reply: ShardReply } | { ok: false; error: string });

/** One worker thread computing shards; the first failure of the thread itself fails every request after it. */
function startWorker(setup: GradientWorkerSetup, index: number): GradientWorker {
  const worker = new Worker(new URL('./data-parallel-worker.js', import.meta.url), { workerData: setup });
  worker.unref(); // an idle worker never keeps the process alive; one with work in flight does
  const pending = new Map<number, { resolve: (r: ShardReply) => void; reject: (e: Error) => void }>();
  let next = 0;
  let broken: Error | null = null;
  const fail = (e: Error) => {
    broken ??= e;
    for (const p of pending.values()) p.reject(broken);
    pending.clear();
    worker.unref();
  };
  worker.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) worker.unref();
    if (m.ok) p.resolve(m.reply);
    else p.reject(new Error(`data parallel worker ${index}: ${m.error}`));
  });
  worker.on('error', (e) => fail(new Error(`data parallel worker ${index} failed: ${e.message}`)));
  worker.on('exit', (code) => fail(new Error(`data parallel worker ${index} exited with code ${code}`)));
  return {
    compute(request: ShardRequest) {
      if (broken) return Promise.reject(broken);
      const id = next++;
      worker.ref();
      return new Promise<ShardReply>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage(
          { id, request },
          request.params.map((a) => a.buffer as ArrayBuffer),
        );
      });
    },
    close() {
      fail(new Error(`data parallel worker ${index} was closed`));
      void worker.terminate();
    },
  };
}

/**
 * Starts `threads − 1` workers for `config` and parameters shaped like `params` (values are sent
 * with every step). The parameters must live on the wasm backend (float32) or the reference
 * backend (float64). Close the client when done (an idle one does not keep the process alive
 * either way).
 *
 * @example
 * const parallel = startDataParallel(config, params, 2);
 * const { loss, grads } = await parallel.lossAndGrads(params, inputs, targets, 16, 256);
 * parallel.close();
 */
export function startDataParallel(
  config: TitansConfig,
  params: ModelParams,
  threads = availableParallelism(),
): DataParallel {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`startDataParallel: threads must be an integer ≥ 1, got ${threads}`);
  }
  const setup = gradientWorkerSetup(config, params);
  if (setup.backend !== 'wasm' && setup.backend !== 'reference') {
    throw new RangeError(
      `startDataParallel: the parameters must live on the wasm backend (float32) or the reference backend (float64), as in the workers; they are on '${setup.backend}'`,
    );
  }
  const backend = params.embedding.backend as Partial<WasmBackend>;
  const workers = Array.from({ length: threads - 1 }, (_, w) => startWorker(setup, w + 1));
  return new DataParallel(config, workers, (fn) => {
    const pool = backend.threadPool;
    if (!pool || !backend.setThreadPool) return fn();
    backend.setThreadPool(null); // each core runs one shard: no kernel is split across threads
    try {
      return fn();
    } finally {
      backend.setThreadPool(pool);
    }
  });
}
