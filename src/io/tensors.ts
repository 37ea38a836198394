/**
 * Tensors ↔ named arrays (the safetensors payload). Browser-safe. Reading back uses the
 * asynchronous `data()`, which every backend supports.
 */
import { isFloat } from '../engine/dtype.js';
import { tensor } from '../engine/ops/create.js';
import type { Tensor } from '../engine/tensor.js';
import type { NamedArray } from './safetensors.js';

/**
 * Copies named tensors to host arrays.
 * @example const named = await toNamedArrays(flattenTree(params)); // ready for saveCheckpoint
 */
export async function toNamedArrays(
  flat: Readonly<Record<string, Tensor>>,
): Promise<Record<string, NamedArray>> {
  const out: Record<string, NamedArray> = {};
  for (const [name, t] of Object.entries(flat)) {
    out[name] = { dtype: t.dtype, shape: [...t.shape], data: await t.data() };
  }
  return out;
}

/**
 * Uploads named arrays as tensors (on the default backend unless one is named). Float arrays
 * can be converted to `dtype` (a float64 checkpoint loaded for float32 training, say).
 * @example const params = unflattenInto(template, fromNamedArrays(loaded.tensors));
 */
export function fromNamedArrays(
  named: Readonly<Record<string, NamedArray>>,
  options: { backend?: string; dtype?: 'float32' | 'float64' } = {},
): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(named)) {
    const dtype = options.dtype && isFloat(a.dtype) ? options.dtype : a.dtype;
    out[name] = tensor(a.data, a.shape, { dtype, ...(options.backend ? { backend: options.backend } : {}) });
  }
  return out;
}
