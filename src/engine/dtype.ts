/**
 * Element types. Float tensors hold values; int32 tensors hold indices (token ids, gather indices).
 * Arithmetic on float32 is carried out in float64 by the reference backend and rounded on store.
 */
export type DType = 'float32' | 'float64' | 'int32';

export type FloatDType = 'float32' | 'float64';

/** The typed array that backs each dtype. */
export type TypedArray = Float32Array | Float64Array | Int32Array;

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64';
}

/** Allocates a zero-filled typed array of the given dtype. */
export function allocArray(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'float64':
      return new Float64Array(size);
    case 'int32':
      return new Int32Array(size);
  }
}

export function bytesPerElement(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}

/** The dtype a typed array naturally carries. */
export function dtypeOfArray(data: TypedArray): DType {
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  throw new TypeError('expected a Float32Array, Float64Array or Int32Array');
}

/** Result dtype of a binary operation: float64 wins over float32; int32 only with int32. */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === 'float64' || b === 'float64') return 'float64';
  return 'float32';
}
