import assert from 'node:assert/strict';
import type { Tensor } from '../../src/index.js';

/** max |a − b| / max |b| (the absolute error when b is all zeros). */
export function relError(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>): number {
  const x = 'dataSync' in a ? a.dataSync() : a;
  const y = 'dataSync' in b ? b.dataSync() : b;
  assert.equal(x.length, y.length, 'sizes differ');
  let err = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    err = Math.max(err, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return scale === 0 ? err : err / scale;
}
