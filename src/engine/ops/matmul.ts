import { isFloat } from '../dtype.js';
import { broadcastShapes, formatShape, sizeOf } from '../shape.js';
import { isRecording, record } from '../tape.js';
import { type Tensor, wrapBuffer } from '../tensor.js';
import { unbroadcast } from './elementwise.js';
import { reshape } from './shape.js';

export interface MatmulOptions {
  /** Use aᵀ (swap a's last two axes) without copying. */
  transposeA?: boolean;
  /** Use bᵀ (swap b's last two axes) without copying. */
  transposeB?: boolean;
}

/**
 * Batched matrix product with NumPy broadcasting over the leading axes. Both operands need rank ≥ 2.
 *
 * @example
 * matmul(x, w)                          // (B, T, d) @ (d, h) → (B, T, h)
 * matmul(q, k, { transposeB: true })    // (B, H, T, dh) @ (B, H, T, dh)ᵀ → (B, H, T, T)
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const ta = options.transposeA ?? false;
  const tb = options.transposeB ?? false;
  if (a.rank < 2 || b.rank < 2) {
    throw new RangeError(
      `matmul: operands need rank ≥ 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`,
    );
  }
  if (!isFloat(a.dtype) || a.dtype !== b.dtype) {
    throw new TypeError(`matmul: expected two float tensors of one dtype, got ${a.dtype} and ${b.dtype}`);
  }
  if (a.backend !== b.backend) throw new Error('matmul: tensors live on different backends');
  const [ar, ac] = [a.shape[a.rank - 2]!, a.shape[a.rank - 1]!];
  const [br, bc] = [b.shape[b.rank - 2]!, b.shape[b.rank - 1]!];
  const [m, k] = ta ? [ac, ar] : [ar, ac];
  const [k2, n] = tb ? [bc, br] : [br, bc];
  if (k !== k2) {
    throw new RangeError(
      `matmul: inner dimensions differ: ${formatShape(a.shape)}${ta ? 'ᵀ' : ''} @ ${formatShape(b.shape)}${tb ? 'ᵀ' : ''}`,
    );
  }
  if (b.rank === 2 && a.rank > 2 && !ta) {
    // A shared matrix b: every batch's rows of a are one (M, k) matrix, so one product of M rows
    // instead of one per batch (x W over all tokens at once); the backward then gives dB as one
    // product over all M rows, not a product per batch and a sum.
    const lead = a.shape.slice(0, -1);
    const rows = reshape(a, [sizeOf(lead), k]);
    return reshape(matmul(rows, b, options), [...lead, n]);
  }
  const batch = broadcastShapes(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
    `matmul of ${formatShape(a.shape)} and ${formatShape(b.shape)}: batch axes`,
  );
  const outShape = [...batch, m, n];
  const buffer = a.backend.matmul(a.buffer, a.shape, b.buffer, b.shape, ta, tb, outShape, a.dtype);
  const out = wrapBuffer(a.backend, buffer, outShape, a.dtype);
  if (isRecording([a, b])) {
    record('matmul', [a, b], out, (g, needs) => {
      // out = A B with A = op(a), B = op(b): dA = g Bᵀ, dB = Aᵀ g, then undo the op() transposes.
      let ga: Tensor | null = null;
      let gb: Tensor | null = null;
      if (needs[0]) {
        ga = ta ? matmul(b, g, { transposeA: tb, transposeB: true }) : matmul(g, b, { transposeB: !tb });
        ga = unbroadcast(ga, a.shape);
      }
      if (needs[1]) {
        gb = tb ? matmul(g, a, { transposeA: true, transposeB: ta }) : matmul(a, g, { transposeA: !ta });
        gb = unbroadcast(gb, b.shape);
      }
      return [ga, gb];
    });
  }
  return out;
}
