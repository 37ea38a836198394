/**
 * The tensor engine in a few lines: tensors from nested arrays, printed with their values, a
 * gradient, and tidy scopes that free what a computation made.
 *
 *   npm run build && node dist/examples/tensors.js
 */
import { matmul, memory, sum, tensor, tidy, valueAndGrad } from '../src/index.js';

const a = tensor([
  [1, 2],
  [3, 4],
]);
console.log(a); // Tensor(float32 [2, 2] on wasm) and its values
const f = (x: typeof a) => sum(matmul(x, x));
const { value, grads } = valueAndGrad(f)(a);
console.log(`f(a) = ${value.item()}; df/da =\n${grads}`);
const before = memory().tensors;
tidy(() => sum(matmul(a, a)).item());
console.log(`live tensors before and after a tidy computation: ${before} → ${memory().tensors}`);
try {
  tensor([[1, 2], [3]]);
} catch (e) {
  console.log(`a ragged array is refused: ${(e as Error).message}`);
}
