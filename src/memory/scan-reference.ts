/**
 * The token-by-token recurrence of SPEC §1, kept for tests: slow and obviously right.
 * It takes the inner gradient u_t = ∇_W ℓ(W^{c(t)}; k_t, v_t) with the autodiff tape itself
 * (a nested `grad`), so it shares no gradient code with the chunk-parallel memoryScan, and an
 * outer `grad` of it is a genuine second derivative through the tape.
 */
import {
  add,
  broadcastTo,
  concat,
  expandDims,
  grad,
  mul,
  sliceAxis,
  sub,
  sum,
  type Tensor,
  zerosLike,
} from '../engine/index.js';
import { type MemoryActivation, memoryForward } from './memory-mlp.js';
import type { MemoryScanInputs, MemoryScanOptions, MemoryState } from './scan.js';

export function memoryScanReference(
  inputs: MemoryScanInputs,
  options: MemoryScanOptions,
): { y: Tensor; state: MemoryState } {
  const b = options.chunkSize;
  const model = {
    activation: (options.activation ?? 'silu') as MemoryActivation,
    residual: options.residual ?? false,
  };
  const { q, k, v, alpha, eta, theta } = inputs;
  const T = q.shape[q.rank - 2]!;
  const lead = q.shape.slice(0, -2);
  // Give every leading (batch/head) index its own memory: the per-token loss is summed over the
  // leading axes, so its gradient stays separate only when the weights are not shared.
  const full = (w: Tensor): Tensor => broadcastTo(w, [...lead, ...w.shape.slice(-2)]);
  let W = inputs.weights.map(full);
  let S = (inputs.momentum ?? inputs.weights.map((w) => zerosLike(w))).map(full);
  let position = inputs.position ?? 0;
  let G = position % b === 0 ? W : (inputs.chunkStartWeights ?? inputs.weights).map(full);
  const row = (t: Tensor, i: number): Tensor => sliceAxis(t, -2, i, 1); // (…, 1, d)
  const gate = (t: Tensor, i: number): Tensor => expandDims(sliceAxis(t, -1, i, 1), -1); // (…, 1, 1)
  const ys: Tensor[] = [];
  for (let t = 0; t < T; t++) {
    if (position % b === 0) G = W; // c(t): a new chunk starts at this token
    const kt = row(k, t);
    const vt = row(v, t);
    const loss = (weights: Tensor[]): Tensor => {
      const e = sub(memoryForward(kt, weights, model), vt);
      return sum(mul(e, e)); // ‖M_W(k_t) − v_t‖², eq. 12
    };
    const u = grad(loss)(G); // eq. 16
    S = S.map((s, l) => sub(mul(gate(eta, t), s), mul(gate(theta, t), u[l]!))); // eq. 13–14
    W = W.map((w, l) => add(mul(sub(1, gate(alpha, t)), w), S[l]!)); // eq. 13
    ys.push(memoryForward(row(q, t), W, model)); // eq. 15
    position++;
  }
  if (position % b === 0) G = W;
  return {
    y: T === 0 ? q : concat(ys, q.rank - 2),
    state: { weights: W, momentum: S, chunkStartWeights: G, position, chunkSize: b },
  };
}
