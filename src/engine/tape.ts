import { type Tensor, tidy } from './tensor.js';

/**
 * The reverse-mode autodiff tape.
 *
 * While a tape is active, every op whose inputs include a tensor the tape tracks appends a node
 * (inputs, output, backward rule) and tracks its output. Backward rules are written with the
 * same differentiable ops as the forward pass; while a tape runs its backward pass it is
 * inactive, but any enclosing tape stays active and records the backward ops — so `grad` of
 * `grad` works. A tape counts itself in `savedBy` of every tensor its nodes keep, and `tidy`
 * never frees such a tensor early; the tape releases them when its gradient is done.
 */
export interface TapeNode {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
  /** Gradients for the inputs given the output's cotangent; `needs[i]` false may return null. */
  readonly backward: (cotangent: Tensor, needs: readonly boolean[]) => readonly (Tensor | null)[];
  /**
   * Set on the nodes of `recordPiece`: the output is the input's entries from `pieceAt` on along
   * axis `pieceAxis`, and its cotangent is placed there when the input's cotangent is assembled
   * (no backward call).
   */
  readonly pieceAt?: number;
  readonly pieceAxis?: number;
}

export class Tape {
  readonly nodes: TapeNode[] = [];
  readonly tracked = new Set<number>();
  private readonly saved = new Set<Tensor>();

  watch(t: Tensor): void {
    this.tracked.add(t.id);
  }

  /** @internal */
  add(node: TapeNode, saved: readonly Tensor[]): void {
    this.nodes.push(node);
    this.tracked.add(node.output.id);
    for (const t of saved) {
      if (!this.saved.has(t)) {
        this.saved.add(t);
        t.savedBy++;
      }
    }
  }

  /** Lets go of every tensor this tape kept for its backward pass. */
  release(): void {
    for (const t of this.saved) {
      t.savedBy--;
      if (t.savedBy === 0 && t.pendingDispose) t.dispose();
    }
    this.saved.clear();
    this.nodes.length = 0;
    this.tracked.clear();
  }
}

let activeTapes: Tape[] = [];

/** True when some tape would record an op on these inputs (lets ops skip building closures). */
export function isRecording(inputs: readonly Tensor[]): boolean {
  if (activeTapes.length === 0) return false;
  for (const tape of activeTapes) for (const x of inputs) if (tape.tracked.has(x.id)) return true;
  return false;
}

/**
 * Records an op on every active tape that tracks one of its inputs. The inputs and the output
 * are kept for the backward pass, as are `extraSaved` (other tensors the rule closes over).
 */
export function record(
  name: string,
  inputs: readonly Tensor[],
  output: Tensor,
  backward: TapeNode['backward'],
  extraSaved: readonly Tensor[] = [],
): void {
  if (activeTapes.length === 0) return;
  for (const tape of activeTapes) {
    if (!inputs.some((x) => tape.tracked.has(x.id))) continue;
    tape.add({ name, inputs, output, backward }, [...inputs, output, ...extraSaved]);
  }
}

/**
 * Records `part` as the entries of `whole` from `offset` on along `axis` (a piece of `split`, which
 * also hands out a custom op's outputs from its flat tensor). Its cotangent is not padded to the whole
 * size and added up like a slice's: the pieces of one tensor are kept apart and assembled once, in
 * one pass, when the whole tensor's cotangent is needed.
 */
export function recordPiece(whole: Tensor, part: Tensor, offset: number, axis = 0): void {
  if (activeTapes.length === 0) return;
  const backward = (): never => {
    throw new Error('a piece node has no backward of its own: its cotangent is assembled into the whole one');
  };
  for (const tape of activeTapes) {
    if (!tape.tracked.has(whole.id)) continue;
    tape.add({ name: 'piece', inputs: [whole], output: part, backward, pieceAt: offset, pieceAxis: axis }, [
      whole,
      part,
    ]);
  }
}

/**
 * Builds the cotangent of `whole` from disjoint pieces [offset along `axis`, cotangent] (zeros
 * elsewhere); each piece's cotangent has `whole`'s shape but along `axis`.
 */
export type AssemblePieces = (
  pieces: readonly (readonly [number, Tensor])[],
  whole: Tensor,
  axis: number,
) => Tensor;

/** Runs `fn` with `tape` recording (on top of any enclosing tapes). */
export function withTape<T>(tape: Tape, fn: () => T): T {
  activeTapes.push(tape);
  try {
    return fn();
  } finally {
    const i = activeTapes.lastIndexOf(tape);
    if (i >= 0) activeTapes.splice(i, 1);
  }
}

/**
 * Runs `fn` without recording on any tape: for inference and for parameter updates.
 *
 * @example
 * const logits = noGrad(() => model.forward(tokens));
 */
export function noGrad<T>(fn: () => T): T {
  const saved = activeTapes;
  activeTapes = [];
  try {
    return fn();
  } finally {
    activeTapes = saved;
  }
}

/**
 * Propagates cotangents from `outputs` back through `tape` and returns the accumulated gradient
 * of every tensor the tape reached, by tensor id. The tape must already be inactive.
 */
export function backpropagate(
  tape: Tape,
  outputs: readonly Tensor[],
  cotangents: readonly Tensor[],
  add: (a: Tensor, b: Tensor) => Tensor,
  assemble: AssemblePieces,
): Map<number, Tensor> {
  const grads = new Map<number, Tensor>();
  // Pieces waiting to be assembled, per whole tensor and axis.
  const pieces = new Map<number, { whole: Tensor; byAxis: Map<number, [number, Tensor][]> }>();
  const accumulate = (t: Tensor, g: Tensor): void => {
    const prev = grads.get(t.id);
    grads.set(t.id, prev === undefined ? g : add(prev, g));
  };
  const assembleInto = (id: number): void => {
    const entry = pieces.get(id);
    if (!entry) return;
    pieces.delete(id);
    for (const [axis, parts] of entry.byAxis) accumulate(entry.whole, assemble(parts, entry.whole, axis));
  };
  /** The cotangent of t so far, with its pieces assembled in. */
  const gradOf = (t: Tensor): Tensor | undefined => {
    assembleInto(t.id);
    return grads.get(t.id);
  };
  outputs.forEach((o, i) => {
    accumulate(o, cotangents[i]!);
  });
  for (let n = tape.nodes.length - 1; n >= 0; n--) {
    const node = tape.nodes[n]!;
    const g = gradOf(node.output);
    if (g === undefined) continue;
    if (node.pieceAt !== undefined) {
      const whole = node.inputs[0]!;
      if (!tape.tracked.has(whole.id)) continue;
      const entry = pieces.get(whole.id) ?? { whole, byAxis: new Map<number, [number, Tensor][]>() };
      const axis = node.pieceAxis ?? 0;
      const list = entry.byAxis.get(axis) ?? [];
      list.push([node.pieceAt, g]);
      entry.byAxis.set(axis, list);
      pieces.set(whole.id, entry);
      continue;
    }
    const needs = node.inputs.map((x) => tape.tracked.has(x.id));
    // Intermediate tensors of one rule are released as soon as it has produced its gradients.
    const inputGrads = tidy(() => node.backward(g, needs));
    node.inputs.forEach((x, i) => {
      const gi = inputGrads[i];
      if (needs[i] && gi) accumulate(x, gi);
    });
  }
  // Pieces of tensors no node produced (a watched leaf that was split) are assembled last.
  for (const id of [...pieces.keys()]) assembleInto(id);
  return grads;
}
