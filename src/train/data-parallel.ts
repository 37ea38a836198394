/**
 * Data-parallel gradients of the language-model loss (what a training step needs): the batch's
 * rows are cut into shards, each shard's loss and gradients are computed on its own thread — the
 * calling thread takes the first shard, workers the others, each with a whole copy of the model —
 * and the results are combined, weighted by the targets each shard counts, into the gradient of
 * the whole batch's mean loss. No thread waits on another inside the step: the only exchange is
 * the parameters going out and one gradient per worker coming back, so on a few cores this beats
 * splitting every kernel of one step across threads (small models run thousands of small kernels
 * a step, each paying a hand-off).
 *
 * Browser-safe: the transport is the caller's (`GradientWorker`); the Node one is
 * data-parallel-node.ts, whose workers run data-parallel-worker.ts.
 *
 * The combination is exact up to float rounding: mean loss L = Σ_s n_s L_s / N and its gradient
 * G = Σ_s (n_s / N) G_s, with n_s the shard's targets that are not −1 (the ignored index).
 */
import { isFloat, type TypedArray } from '../engine/dtype.js';
import { noGrad, tensor, tidy, valueAndGrad, withBackend } from '../engine/index.js';
import { Tensor } from '../engine/tensor.js';
import { mapLeaves, mapLeavesWith } from '../engine/tree.js';
import type { TitansConfig } from '../models/config.js';
import type { ModelParams } from '../models/model.js';
import { languageModelLoss } from './trainer.js';

/** One float parameter as the workers rebuild it. */
export interface LeafSpec {
  shape: number[];
  dtype: 'float32' | 'float64';
}

/**
 * What a worker needs once: the model config, the parameter tree with every tensor replaced by
 * its index into `leaves` (other leaves kept), and the leaves' shapes.
 */
export interface GradientWorkerSetup {
  config: TitansConfig;
  skeleton: unknown;
  leaves: LeafSpec[];
  /** The backend the parameters live on: the workers compute there too, whatever their default. */
  backend: string;
}

/** One shard's work: the parameters' values (in `leaves` order) and the shard's rows. */
export interface ShardRequest {
  params: TypedArray[];
  inputs: Int32Array;
  targets: Int32Array;
  rows: number;
  seqLen: number;
}

/** A shard's mean loss over its counted targets and the gradients (in `leaves` order). */
export interface ShardReply {
  loss: number;
  grads: TypedArray[];
}

/** The other end of a worker: computes shards (one at a time, in order) until closed. */
export interface GradientWorker {
  compute(request: ShardRequest): Promise<ShardReply>;
  close(): void;
}

/** Rows per shard: `rows` cut into at most `shards` nearly equal, non-empty parts. */
export function shardSizes(rows: number, shards: number): number[] {
  const n = Math.max(1, Math.min(rows, shards));
  return Array.from({ length: n }, (_, s) => Math.floor((rows * (s + 1)) / n) - Math.floor((rows * s) / n));
}

/** Targets that count in the loss (not the ignored index −1). */
function countedTargets(targets: Int32Array): number {
  let n = 0;
  for (const t of targets) if (t !== -1) n++;
  return n;
}

/** The float tensors of a parameter tree in walk order, each once; throws on a shared tensor. */
function floatLeaves(params: ModelParams): Tensor[] {
  const leaves: Tensor[] = [];
  const seen = new Set<Tensor>();
  mapLeaves(params, (leaf, path) => {
    if (!(leaf instanceof Tensor) || !isFloat(leaf.dtype)) return leaf;
    if (seen.has(leaf)) {
      throw new RangeError(
        `data parallel: the parameter at '${path}' is a tensor that appears twice in the tree`,
      );
    }
    seen.add(leaf);
    leaves.push(leaf);
    return leaf;
  });
  return leaves;
}

/** The setup workers of `params` need (see `GradientWorkerSetup`). */
export function gradientWorkerSetup(config: TitansConfig, params: ModelParams): GradientWorkerSetup {
  const leaves = floatLeaves(params);
  const index = new Map(leaves.map((t, i) => [t, i]));
  const skeleton = mapLeaves(params, (leaf) => (leaf instanceof Tensor ? (index.get(leaf) ?? null) : leaf));
  return {
    config,
    skeleton,
    leaves: leaves.map(specOf),
    backend: leaves[0]?.backend.name ?? 'reference',
  };
}

/**
 * One shard's reply, computed on the current backend: its mean loss and the gradient of each of
 * `leaves` (the float tensors of `params`, in order) in a new array, zeros where the loss does not
 * reach. The calling thread's shard and every worker's go through here.
 */
function shardReply(
  config: TitansConfig,
  params: ModelParams,
  leaves: readonly Tensor[],
  request: Pick<ShardRequest, 'inputs' | 'targets' | 'rows' | 'seqLen'>,
): ShardReply {
  const f = valueAndGrad((p: ModelParams) =>
    languageModelLoss(p, config, request.inputs, request.targets, request.rows, request.seqLen),
  );
  const { value, grads } = f(params);
  const byLeaf = gradientsInOrder(params, grads, leaves);
  return { loss: value.item(), grads: byLeaf.map((g, i) => copyOut(g, specOf(leaves[i]!))) };
}

/**
 * A worker's side: rebuilds the parameters of each request on the parameters' backend (the
 * setup's, whatever the worker's default), computes the shard under it, and returns the loss and
 * gradients as plain arrays (freed from the backend before it returns).
 */
export function gradientServer(setup: GradientWorkerSetup): (request: ShardRequest) => ShardReply {
  const { config, skeleton, leaves, backend } = setup;
  return (request) => withBackend(backend, () => serve(request));
  function serve(request: ShardRequest): ShardReply {
    if (request.params.length !== leaves.length) {
      throw new RangeError(
        `data parallel worker: ${request.params.length} parameter arrays, the model has ${leaves.length}`,
      );
    }
    return tidy(() => {
      const tensors = leaves.map((spec, i) =>
        tensor(request.params[i]!, spec.shape, { dtype: spec.dtype, backend }),
      );
      const params = mapLeaves(skeleton, (leaf) =>
        typeof leaf === 'number' ? tensors[leaf] : leaf,
      ) as ModelParams;
      return shardReply(config, params, tensors, request);
    });
  }
}

/** The gradient of each of `leaves` from a gradient tree shaped like `params`. */
function gradientsInOrder(
  params: ModelParams,
  grads: ModelParams,
  leaves: readonly Tensor[],
): (Tensor | null)[] {
  const index = new Map(leaves.map((t, i) => [t, i]));
  const out: (Tensor | null)[] = leaves.map(() => null);
  mapLeavesWith(params, [grads], (leaf, [g]) => {
    const i = leaf instanceof Tensor ? index.get(leaf) : undefined;
    if (i !== undefined && g instanceof Tensor) out[i] = g;
    return leaf;
  });
  return out;
}

/** A gradient's values in a new array (dataSync's copy; zeros for a parameter the loss does not reach). */
function copyOut(g: Tensor | null, spec: LeafSpec): TypedArray {
  if (g) return g.dataSync();
  const size = spec.shape.reduce((a, b) => a * b, 1);
  return spec.dtype === 'float64' ? new Float64Array(size) : new Float32Array(size);
}

/** Runs `fn` on the calling thread's backend (the Node client detaches the wasm thread pool). */
export type LocalRunner = <T>(fn: () => T) => T;

/**
 * The client: `lossAndGrads` gives what `valueAndGrad(languageModelLoss)` gives for the whole batch
 * (the mean loss as a number, the gradient tree as new tensors the caller owns), computed by the
 * calling thread and the workers together. Requests to one client must not overlap (await each).
 */
export class DataParallel {
  private closed = false;
  private busy = false;

  constructor(
    private readonly config: TitansConfig,
    private readonly workers: readonly GradientWorker[],
    private readonly runLocal: LocalRunner = (fn) => fn(),
  ) {}

  /** Threads a step is shared by: the calling thread and the workers. */
  get threads(): number {
    return this.workers.length + 1;
  }

  async lossAndGrads(
    params: ModelParams,
    inputs: Int32Array,
    targets: Int32Array,
    rows: number,
    seqLen: number,
  ): Promise<{ loss: number; grads: ModelParams }> {
    if (this.closed) throw new Error('data parallel: the workers were closed; start new ones');
    if (this.busy) throw new Error('data parallel: a step is still running; await it before the next');
    if (inputs.length !== rows * seqLen || targets.length !== rows * seqLen) {
      throw new RangeError(
        `data parallel: inputs and targets must hold rows × seqLen = ${rows * seqLen} tokens, got ${inputs.length} and ${targets.length}`,
      );
    }
    this.busy = true;
    try {
      return await this.step({ params, inputs, targets, rows, seqLen });
    } finally {
      this.busy = false;
    }
  }

  private async step(batch: {
    params: ModelParams;
    inputs: Int32Array;
    targets: Int32Array;
    rows: number;
    seqLen: number;
  }): Promise<{ loss: number; grads: ModelParams }> {
    const { params, inputs, targets, rows, seqLen } = batch;
    const leaves = floatLeaves(params);
    const sizes = shardSizes(rows, this.threads);
    const starts = sizes.map((_, s) => sizes.slice(0, s).reduce((a, b) => a + b, 0) * seqLen);
    const requests = sizes.map((n, s) => {
      const [from, to] = [starts[s]!, starts[s]! + n * seqLen];
      return { inputs: inputs.slice(from, to), targets: targets.slice(from, to), rows: n, seqLen };
    });
    // Posted first, so the workers compute while this thread takes shard 0. Each request's arrays
    // are transferred: dataSync's copies go to the last worker, the others get copies of them.
    const values = sizes.length > 1 ? leaves.map((t) => t.dataSync()) : [];
    const remote = requests.slice(1).map((r, w, all) => {
      const params = w === all.length - 1 ? values : values.map((v) => v.slice());
      return this.workers[w]!.compute({ params, ...r });
    });
    const settled = Promise.allSettled(remote);
    let local: ShardReply;
    try {
      // on the parameters' backend, as in the workers, whatever the default
      const backend = leaves[0]?.backend.name ?? 'reference';
      local = this.runLocal(() =>
        withBackend(backend, () => tidy(() => shardReply(this.config, params, leaves, requests[0]!))),
      );
    } finally {
      await settled; // never leaves a worker's reply (or failure) unobserved
    }
    const replies = await settled;
    const failed = replies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const shards = [local, ...replies.map((r) => (r as PromiseFulfilledResult<ShardReply>).value)];
    const counts = requests.map((r) => countedTargets(r.targets));
    return combine(params, leaves, shards, counts);
  }

  /** Stops the workers; the client cannot be used afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) w.close();
  }
}

function specOf(t: Tensor): LeafSpec {
  return { shape: [...t.shape], dtype: t.dtype as LeafSpec['dtype'] };
}

/**
 * The whole batch's loss and gradient tree from its shards: weights n_s / N (equal weights when no
 * target counts, so the loss stays the NaN the single-thread loss would give).
 */
function combine(
  params: ModelParams,
  leaves: readonly Tensor[],
  shards: readonly ShardReply[],
  counts: readonly number[],
): { loss: number; grads: ModelParams } {
  const total = counts.reduce((a, b) => a + b, 0);
  const weights = counts.map((n) => (total > 0 ? n / total : 1 / counts.length));
  // A shard that counts no target has a NaN mean loss; its weight is 0 and it is left out.
  const used = shards.map((_, s) => s).filter((s) => total === 0 || counts[s]! > 0);
  let loss = 0;
  for (const s of used) loss += weights[s]! * shards[s]!.loss;
  const grads = leaves.map((leaf, i) => {
    // Σ_s w_s g_s in float64 (shards in order, from 0: −0 sums to +0), rounded once into the
    // leaf's dtype: one pass.
    const out = leaf.dtype === 'float64' ? new Float64Array(leaf.size) : new Float32Array(leaf.size);
    const parts = used.map((s) => shards[s]!.grads[i]!);
    const w = used.map((s) => weights[s]!);
    if (parts.length === 2) {
      const [g0, g1] = parts as [TypedArray, TypedArray];
      const [w0, w1] = w as [number, number];
      for (let j = 0; j < out.length; j++) out[j] = 0 + w0 * g0[j]! + w1 * g1[j]!;
    } else {
      for (let j = 0; j < out.length; j++) {
        let acc = 0;
        for (let s = 0; s < parts.length; s++) acc += w[s]! * parts[s]![j]!;
        out[j] = acc;
      }
    }
    return noGrad(() =>
      tensor(out, [...leaf.shape], { dtype: leaf.dtype as LeafSpec['dtype'], backend: leaf.backend.name }),
    );
  });
  const index = new Map(leaves.map((t, i) => [t, i]));
  const tree = mapLeaves(params, (leaf) => {
    const i = leaf instanceof Tensor ? index.get(leaf) : undefined;
    return i === undefined ? null : grads[i];
  }) as ModelParams;
  return { loss, grads: tree };
}
