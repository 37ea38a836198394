/**
 * A wasm-backend worker thread (Node): instantiates the kernels on the shared memory, then
 * waits for jobs on the control block (see threads-node.ts) and computes row chunks of products (taken from a shared counter) or tasks.
 */
import { workerData } from 'node:worker_threads';
import { instantiateKernels } from './kernels.js';
import { ARGS, CHUNK, DONE, KIND, NEXT, QUIT, ROWS, SEQ, TASK_KERNELS } from './threads-node.js';

const { module, memory, control, index } = workerData as {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: Int32Array;
  index: number;
};
const kernels = instantiateKernels(module, memory);

// The pool's control block is new, so its first job is SEQ = 1 even if it was posted before this
// worker started.
let seen = 0;
for (;;) {
  Atomics.wait(control, SEQ, seen);
  seen = Atomics.load(control, SEQ);
  if (Atomics.load(control, QUIT) === 1) break;
  const a = (i: number) => control[ARGS + i]!;
  const row = ROWS + 3 * index;
  const kind = control[KIND]!;
  if (kind > 0) {
    // tasks: take indices from the shared counter until none is left
    const task = (kernels as unknown as Record<string, (args: number, scratch: number) => void>)[
      TASK_KERNELS[kind - 1]!
    ]!;
    for (let i = Atomics.add(control, ARGS + 3, 1); i < a(0); i = Atomics.add(control, ARGS + 3, 1)) {
      task(a(1) + i * a(2), control[row + 2]!);
    }
    Atomics.add(control, DONE, 1);
    Atomics.notify(control, DONE);
    continue;
  }
  // a product: take row chunks from the shared counter until none is left
  const m = a(3);
  const chunk = control[CHUNK]!;
  for (let i = Atomics.add(control, NEXT, 1); i * chunk < m; i = Atomics.add(control, NEXT, 1)) {
    kernels.matmul(
      a(0),
      a(1),
      a(2),
      m,
      a(4),
      a(5),
      a(6),
      a(7),
      a(8),
      a(9),
      i * chunk,
      Math.min(m, (i + 1) * chunk),
      control[row + 2]!,
    );
  }
  Atomics.add(control, DONE, 1);
  Atomics.notify(control, DONE);
}
