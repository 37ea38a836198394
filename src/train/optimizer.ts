import { isFloat } from '../engine/dtype.js';
import { zerosLike } from '../engine/ops/create.js';
import { add, mul, sub } from '../engine/ops/elementwise.js';
import { adamwStep } from '../engine/ops/optim.js';
import { formatShape } from '../engine/shape.js';
import { noGrad } from '../engine/tape.js';
import { keep, Tensor, tidy } from '../engine/tensor.js';
import { mapLeaves, mapLeavesWith } from '../engine/tree.js';

/**
 * An optimizer's state as plain data: the number of updates taken so far and the per-parameter
 * moment trees, shaped like the parameters. A moment is null where the optimizer keeps none
 * (SGD: `v` always, `m` without momentum) and at leaves that are not float tensors.
 *
 * Ownership: the state returned by `init`/`update` owns its tensors until it is passed to the
 * next `update`, which disposes them. Save it with `flattenTree(state, 'opt')` (plus `step`);
 * drop it with `dispose(state)`.
 *
 * @example
 * let state = opt.init(params); // { step: 0, m: zeros like params, v: zeros like params }
 */
export interface OptimizerState<P> {
  readonly step: number;
  readonly m: P | null;
  readonly v: P | null;
}

/**
 * What `update` returns: the new parameters and the new state.
 * @example
 * ({ params, state } = opt.update(params, grads, state));
 */
export interface OptimizerUpdate<P> {
  readonly params: P;
  readonly state: OptimizerState<P>;
}

/**
 * A functional optimizer: it holds only hyper-parameters; everything that changes lives in the
 * `OptimizerState` it returns. `P` is any nested record/array of tensors; `grads` has the same
 * structure (as `valueAndGrad` returns). A null/undefined gradient leaves that parameter and its
 * moments unchanged (a frozen parameter).
 *
 * @example
 * const opt = adamw({ lr: 3e-4 });
 * let state = opt.init(params);
 * ({ params, state } = opt.update(params, grads, state, schedule(state.step)));
 */
export interface Optimizer {
  readonly name: string;
  /** Fresh state: step 0 and zero moments for every float tensor in `params`. */
  init<P>(params: P): OptimizerState<P>;
  /**
   * One step. `lr` overrides the learning rate given at construction (for schedules). Consumes
   * `state` (its tensors are disposed) and, unless `disposeOld: false`, the old parameter tensors.
   * Grads are not disposed: they belong to the caller (usually the enclosing `tidy`).
   */
  update<P>(params: P, grads: P, state: OptimizerState<P>, lr?: number): OptimizerUpdate<P>;
}

/** Options shared by the optimizers. */
interface CommonOptions {
  /** Learning rate used when `update` is not given one. */
  lr?: number;
  /**
   * Dispose the parameter tensors that `update` replaced (default true). Set false when
   * something else still needs the old values (e.g. an EMA or a comparison in a test).
   */
  disposeOld?: boolean;
}

/**
 * AdamW hyper-parameters; every field has a default.
 * @example
 * const options: AdamWOptions = { lr: 3e-4, beta2: 0.95, weightDecay: 0.1 };
 */
export interface AdamWOptions extends CommonOptions {
  /** Decay of the first moment (default 0.9). */
  beta1?: number;
  /** Decay of the second moment (default 0.999). */
  beta2?: number;
  /** Added to √v̂ so the step stays bounded where gradients vanish (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay coefficient λ: p ← p − lr·λ·p each step (default 0.01). */
  weightDecay?: number;
  /**
   * Which parameters get weight decay, by dotted path (e.g. 'layers.0.attn.wq') and tensor.
   * Default: tensors of rank ≥ 2 (weight matrices, embeddings), so norm scales, biases and gate
   * biases — which should not be pulled towards 0 — are left alone.
   */
  decayMask?: (path: string, t: Tensor) => boolean;
}

/**
 * SGD hyper-parameters. `lr` may instead be given to each `update`.
 * @example
 * const options: SgdOptions = { lr: 0.1, momentum: 0.9 };
 */
export interface SgdOptions extends CommonOptions {
  /** Heavy-ball momentum μ: b ← μ·b + g, p ← p − lr·b (default 0, no momentum buffer). */
  momentum?: number;
}

/**
 * The default decay mask: matrices and higher-rank tensors only.
 * @example
 * adamw({ decayMask: (path, t) => decayMatricesOnly(path, t) && !path.startsWith('embed') });
 */
export const decayMatricesOnly = (_path: string, t: Tensor): boolean => t.rank >= 2;

// ---- validation ------------------------------------------------------------------------------

function checkLr(lr: number | undefined, who: string): number {
  if (lr === undefined) {
    throw new RangeError(`${who}: no learning rate (give 'lr' to the optimizer or to update)`);
  }
  if (!Number.isFinite(lr) || lr < 0) {
    throw new RangeError(`${who}: learning rate must be finite and ≥ 0, got ${lr}`);
  }
  return lr;
}

function checkRange(
  value: number,
  name: string,
  who: string,
  lo: number,
  hi: number,
  hiOpen: boolean,
): number {
  const ok = value >= lo && (hiOpen ? value < hi : value <= hi);
  if (!ok || Number.isNaN(value)) {
    throw new RangeError(`${who}: ${name} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${value}`);
  }
  return value;
}

// ---- the shared update machinery -------------------------------------------------------------

/** One parameter's inputs to an update rule. */
interface Leaf {
  readonly path: string;
  readonly p: Tensor;
  readonly g: Tensor;
  readonly m: Tensor | null;
  readonly v: Tensor | null;
}

/** One parameter's outputs; `m`/`v` null where the optimizer keeps no such moment. */
interface LeafResult {
  readonly p: Tensor;
  readonly m: Tensor | null;
  readonly v: Tensor | null;
}

/** A parameter with its inputs, found while walking the trees; `result` is filled in later. */
class Slot {
  result: LeafResult | null = null;
  constructor(
    readonly path: string,
    readonly p: Tensor,
    readonly g: Tensor | null,
    readonly m: Tensor | null,
    readonly v: Tensor | null,
  ) {}
}

function sameLayout(a: Tensor, b: Tensor): boolean {
  return (
    a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i])
  );
}

function describe(t: Tensor): string {
  return `${t.dtype} ${formatShape(t.shape)}`;
}

/**
 * Walks `params` together with the companion trees, checking that their containers agree, and
 * returns the parameter tree with every tensor leaf replaced by a Slot. Everything is checked
 * here, before any tensor is made, so a mismatch throws without touching the state.
 */
function collectSlots(
  who: string,
  params: unknown,
  companions: { readonly name: string; readonly tree: unknown }[],
  slots: Slot[],
): unknown {
  const seen = new Map<Tensor, string>();
  const where = (path: string) => (path === '' ? 'the root' : `'${path}'`);
  const mismatch = (j: number, path: string, expected: string): never => {
    throw new RangeError(
      `${who}: ${companions[j]!.name} does not have the structure of params at ${where(path)} (params has ${expected})`,
    );
  };
  const slot = (p: unknown, others: readonly unknown[], path: string): unknown => {
    const at = where(path);
    if (!(p instanceof Tensor) || !isFloat(p.dtype)) {
      // Not trainable: whatever the companions hold here must not be a tensor we would ignore.
      others.forEach((o, j) => {
        if (o instanceof Tensor) {
          throw new RangeError(
            `${who}: ${companions[j]!.name} has a tensor at ${at} where params has no float tensor`,
          );
        }
      });
      return p;
    }
    const previous = seen.get(p);
    if (previous !== undefined) {
      throw new RangeError(
        `${who}: the same tensor is at '${previous}' and ${at}; a tied parameter must appear once in the tree`,
      );
    }
    seen.set(p, path);
    if (p.disposed) {
      throw new Error(`${who}: parameter ${at} was disposed (stale params from before an update?)`);
    }
    const [g, m, v] = others.map((o, j) => {
      if (o === null || o === undefined) return null;
      const name = companions[j]!.name;
      if (!(o instanceof Tensor)) throw new TypeError(`${who}: ${name} at ${at} should be a tensor or null`);
      if (!sameLayout(o, p)) {
        throw new RangeError(
          `${who}: ${name} at ${at} is ${describe(o)} but the parameter is ${describe(p)}`,
        );
      }
      if (o.disposed) {
        throw new Error(
          `${who}: ${name} at ${at} was disposed${j > 0 ? ' (was this state already passed to update?)' : ''}`,
        );
      }
      return o;
    }) as (Tensor | null)[];
    const found = new Slot(path, p, g ?? null, m ?? null, v ?? null);
    slots.push(found);
    return found;
  };
  return mapLeavesWith(
    params,
    companions.map((c) => c.tree),
    slot,
    mismatch,
  );
}

/**
 * Runs `rule` for every trainable parameter that has a gradient, then assembles the new trees
 * and releases what the old ones owned. `moments` says which moment trees this optimizer keeps.
 */
function runUpdate<P>(
  who: string,
  params: P,
  grads: P,
  state: OptimizerState<P>,
  moments: { readonly m: boolean; readonly v: boolean },
  disposeOld: boolean,
  rule: (leaf: Leaf) => LeafResult,
): OptimizerUpdate<P> {
  if (!Number.isInteger(state.step) || state.step < 0) {
    throw new RangeError(`${who}: state.step must be an integer ≥ 0, got ${state.step}`);
  }
  for (const key of ['m', 'v'] as const) {
    if (moments[key] && (state[key] === null || state[key] === undefined)) {
      throw new RangeError(`${who}: state.${key} is missing (was the state made by another optimizer?)`);
    }
    if (!moments[key] && state[key] !== null && state[key] !== undefined) {
      throw new RangeError(
        `${who}: state.${key} should be null for this optimizer (was the state made by another one?)`,
      );
    }
  }
  const slots: Slot[] = [];
  const companions = [{ name: 'grads', tree: grads as unknown }];
  if (moments.m) companions.push({ name: 'state.m', tree: state.m });
  if (moments.v) companions.push({ name: 'state.v', tree: state.v });
  const skeleton = collectSlots(who, params, companions, slots);
  const active = slots.filter((s) => s.g !== null);
  for (const s of active) {
    for (const key of ['m', 'v'] as const) {
      if (moments[key] && s[key] === null) {
        throw new RangeError(`${who}: state.${key} has no moment for '${s.path}'`);
      }
    }
  }
  // Tidy frees the rule's intermediates (scalars, m̂, the step); noGrad keeps any enclosing tape
  // from recording the update (it is not part of the loss).
  const fresh = tidy(() => noGrad(() => active.map((s) => rule(s as Leaf))));
  active.forEach((s, i) => {
    const r = fresh[i]!;
    s.result = r;
    // The new tensors outlive this call and any tidy around it: they are the caller's state now.
    // An input handed back unchanged keeps the ownership it had.
    const inputs = [s.p, s.g, s.m, s.v];
    for (const t of [r.p, r.m, r.v]) if (t !== null && !inputs.includes(t)) keep(t);
  });
  // Only now, with everything computed, release what the results replaced.
  for (const s of active) {
    const r = s.result!;
    if (s.m !== null && s.m !== r.m) s.m.dispose();
    if (s.v !== null && s.v !== r.v) s.v.dispose();
    if (disposeOld && s.p !== r.p) s.p.dispose();
  }
  const pick = (which: 'p' | 'm' | 'v'): unknown =>
    mapLeaves(skeleton, (leaf) => {
      if (!(leaf instanceof Slot)) return which === 'p' ? leaf : null;
      const r = leaf.result;
      if (r === null) return leaf[which]; // no gradient: parameter and moments carried over
      return r[which];
    });
  return {
    params: pick('p') as P,
    state: {
      step: state.step + 1,
      m: moments.m ? (pick('m') as P) : null,
      v: moments.v ? (pick('v') as P) : null,
    },
  };
}

/** Zero moments for the float tensors of `params`, null elsewhere; kept out of any tidy. */
function zeroMoments<P>(params: P): P {
  return mapLeaves(params, (leaf) =>
    leaf instanceof Tensor && isFloat(leaf.dtype) ? keep(zerosLike(leaf)) : null,
  ) as P;
}

// ---- AdamW -----------------------------------------------------------------------------------

/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"): Adam with the weight
 * decay applied to the parameters directly instead of being added to the gradient, so the decay
 * is not rescaled by the adaptive denominator. With t = step + 1:
 *
 *   m ← β₁m + (1−β₁)g,   v ← β₂v + (1−β₂)g²,   m̂ = m/(1−β₁ᵗ),   v̂ = v/(1−β₂ᵗ)
 *   p ← p − lr·λ·p − lr·m̂/(√v̂ + ε)          (the λ term only where `decayMask` says so)
 *
 * @example
 * const opt = adamw({ lr: 1e-3, weightDecay: 0.1, decayMask: (path) => !path.endsWith('.bias') });
 * let state = opt.init(params);
 * ({ params, state } = opt.update(params, grads, state));
 */
export function adamw(options: AdamWOptions = {}): Optimizer {
  const who = 'adamw';
  const baseLr = options.lr === undefined ? 1e-3 : checkLr(options.lr, who);
  const beta1 = checkRange(options.beta1 ?? 0.9, 'beta1', who, 0, 1, true);
  const beta2 = checkRange(options.beta2 ?? 0.999, 'beta2', who, 0, 1, true);
  const eps = options.eps ?? 1e-8;
  if (!(eps > 0) || !Number.isFinite(eps)) {
    throw new RangeError(`${who}: eps must be finite and > 0, got ${eps}`);
  }
  const weightDecay = options.weightDecay ?? 0.01;
  if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
    throw new RangeError(`${who}: weightDecay must be finite and ≥ 0, got ${weightDecay}`);
  }
  const decayMask = options.decayMask ?? decayMatricesOnly;
  const disposeOld = options.disposeOld ?? true;
  return {
    name: who,
    init: <P>(params: P): OptimizerState<P> => ({ step: 0, m: zeroMoments(params), v: zeroMoments(params) }),
    update<P>(params: P, grads: P, state: OptimizerState<P>, lr?: number): OptimizerUpdate<P> {
      const rate = checkLr(lr ?? baseLr, who);
      const t = state.step + 1;
      // Bias corrections folded into scalars (as PyTorch does): lr·m̂/(√v̂+ε) equals
      // (lr/bc1)·m/(√v/√bc2 + ε), which saves two full-size divisions per parameter.
      const stepSize = rate / (1 - beta1 ** t);
      const invSqrtBc2 = 1 / Math.sqrt(1 - beta2 ** t);
      const shrink = 1 - rate * weightDecay;
      return runUpdate(who, params, grads, state, { m: true, v: true }, disposeOld, (leaf) =>
        adamwStep(leaf.p, leaf.g, leaf.m!, leaf.v!, {
          beta1,
          beta2,
          eps,
          stepSize,
          invSqrtBc2,
          shrink: weightDecay > 0 && decayMask(leaf.path, leaf.p) ? shrink : 1,
        }),
      );
    },
  };
}

// ---- SGD -------------------------------------------------------------------------------------

/**
 * Plain stochastic gradient descent, optionally with heavy-ball momentum (PyTorch's form):
 * b ← μ·b + g, p ← p − lr·b; without momentum p ← p − lr·g and no buffer is kept (`m` is null).
 *
 * @example
 * const opt = sgd({ lr: 0.1, momentum: 0.9 });
 * let state = opt.init(params);
 * ({ params, state } = opt.update(params, grads, state));
 */
export function sgd(options: SgdOptions = {}): Optimizer {
  const who = 'sgd';
  const baseLr = options.lr === undefined ? undefined : checkLr(options.lr, who);
  const momentum = checkRange(options.momentum ?? 0, 'momentum', who, 0, 1, true);
  const disposeOld = options.disposeOld ?? true;
  const keepsBuffer = momentum > 0;
  return {
    name: who,
    init: <P>(params: P): OptimizerState<P> => ({
      step: 0,
      m: keepsBuffer ? zeroMoments(params) : null,
      v: null,
    }),
    update<P>(params: P, grads: P, state: OptimizerState<P>, lr?: number): OptimizerUpdate<P> {
      const rate = checkLr(lr ?? baseLr, who);
      return runUpdate(who, params, grads, state, { m: keepsBuffer, v: false }, disposeOld, (leaf) => {
        const direction = keepsBuffer ? add(mul(leaf.m!, momentum), leaf.g) : leaf.g;
        return { p: sub(leaf.p, mul(direction, rate)), m: keepsBuffer ? direction : null, v: null };
      });
    },
  };
}
