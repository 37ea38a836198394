/**
 * Custom (fused) ops: a forward computed by any means (a backend's fused kernel) and a hand-written
 * backward, recorded on the tape as one node. Several outputs travel as one flat tensor, so the
 * tape keeps its one-output nodes: the outputs handed to the caller are `split`'s pieces of it
 * (tape.ts `recordPiece`), and the backward receives one flat cotangent, assembled once from the
 * outputs' cotangents (zeros where an output was unused).
 */

import { reshape, split } from './ops/shape.js';
import { formatShape, type Shape, sizeOf } from './shape.js';
import { isRecording, noGrad, record } from './tape.js';
import { Tensor } from './tensor.js';

export interface CustomOpSpec {
  name: string;
  /** Tensors the op differentiates with respect to (all float). */
  inputs: readonly Tensor[];
  /** Shapes of the outputs, in the order they are packed in the flat result. */
  outputShapes: readonly Shape[];
  /**
   * Computes every output, packed flat in order (length Σ sizes). Runs without recording;
   * `recording` says whether a tape records this op (so a backward may follow). It may return
   * `saved` beside the outputs: tensors only the backward needs (a kernel's intermediates). The
   * tape keeps those as long as it keeps this node and they are freed when it lets go; without
   * a recording tape they are freed at once.
   */
  forward: (recording: boolean) => Tensor | { flat: Tensor; saved: readonly Tensor[] };
  /**
   * Gradients for `inputs` given the flat cotangent of the outputs (same packing); `needs[i]`
   * false may return null. Runs without recording: custom ops have no second derivative.
   */
  backward: (cotangent: Tensor, needs: readonly boolean[]) => readonly (Tensor | null)[];
}

/**
 * Runs a custom op and returns its outputs (one tensor per output shape).
 *
 * @example
 * const [y, w] = customOp({ name: 'fused', inputs: [x], outputShapes: [[4], [2, 2]],
 *   forward: () => kernelForward(x), backward: (g) => [kernelBackward(x, g)] });
 */
export function customOp(spec: CustomOpSpec): Tensor[] {
  const total = spec.outputShapes.reduce((n, s) => n + sizeOf(s), 0);
  const recording = isRecording(spec.inputs);
  const result = noGrad(() => spec.forward(recording));
  const { flat, saved } = result instanceof Tensor ? { flat: result, saved: [] } : result;
  if (flat.rank !== 1 || flat.size !== total) {
    for (const t of saved) t.dispose();
    throw new Error(`${spec.name}: forward returned ${formatShape(flat.shape)}, expected a flat [${total}]`);
  }
  if (recording) {
    record(
      spec.name,
      spec.inputs,
      flat,
      (g, needs) => {
        // An enclosing tape that tracks the cotangent or an input would need this backward recorded
        // (a second derivative); without the check it would silently get zero from here.
        if (isRecording([g, ...spec.inputs])) {
          throw new Error(
            `${spec.name}: a fused op has no second derivative; run this computation on the reference backend to differentiate twice`,
          );
        }
        return noGrad(() => spec.backward(g, needs));
      },
      saved,
    );
  }
  // Held by the tape from here (dispose waits until it lets go), or freed now.
  for (const t of saved) t.dispose();
  // The outputs are split's pieces of the flat result: their cotangents are assembled into the
  // flat one in one pass (tape.ts recordPiece), not each padded to the flat size and added.
  const pieces = split(flat, spec.outputShapes.map(sizeOf));
  return pieces.map((part, i) => reshape(part, spec.outputShapes[i]!));
}
