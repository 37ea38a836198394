/**
 * A data-parallel worker thread (data-parallel-node.ts): workerData is the GradientWorkerSetup;
 * each message { id, request } is one shard, answered with { id, ok, reply } (the gradients'
 * buffers transferred) or { id, ok: false, error }. The wasm backend runs single-threaded here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import '../index.js'; // registers the backends (wasm the default), as the CLI's entry does
import { type GradientWorkerSetup, gradientServer, type ShardRequest } from './data-parallel.js';

const serve = gradientServer(workerData as GradientWorkerSetup);
parentPort!.on('message', ({ id, request }: { id: number; request: ShardRequest }) => {
  try {
    const reply = serve(request);
    parentPort!.postMessage(
      { id, ok: true, reply },
      reply.grads.map((g) => g.buffer as ArrayBuffer),
    );
  } catch (e) {
    parentPort!.postMessage({ id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
});
