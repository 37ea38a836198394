/**
 * Misuse gets a clear error that names what was wrong (shapes, axes, indices, dtypes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  activation,
  add,
  broadcastTo,
  clamp,
  concat,
  crossEntropy,
  gather,
  getBackend,
  logSumExp,
  matmul,
  mul,
  pad,
  reshape,
  setBackend,
  slice,
  softmax,
  split,
  squeeze,
  sum,
  type Tensor,
  tensor,
  transpose,
  vjp,
  where,
  withBackend,
  zeros,
} from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { bestFloat } from './util.js';

for (const backend of backendsUnderTest()) {
  const dtype = bestFloat(backend);
  const other = dtype === 'float64' ? 'float32' : null;
  const Z = (shape: number[]) => zeros(shape, { dtype });
  const run = (body: () => void | Promise<void>) => () => withBackend(backend, body);

  describe(`clear errors (${backend})`, () => {
    it(
      'broadcast mismatch names both shapes',
      run(async () => {
        assert.throws(() => add(Z([2, 3]), Z([4])), /add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
        assert.throws(
          () => mul(Z([2, 1, 3]), Z([5, 2])),
          /mul: shapes \[2, 1, 3\] and \[5, 2\] cannot be broadcast/,
        );
        assert.throws(
          () => where(Z([3]), Z([2]), Z([2])),
          /where: shapes \[3\] and \[2\] cannot be broadcast/,
        );
        assert.throws(() => broadcastTo(Z([2, 3]), [3, 3]), /\[2, 3\] .*\[3, 3\]/);
        assert.throws(
          () => broadcastTo(Z([3, 3]), [3]),
          /broadcastTo: \[3, 3\] cannot be broadcast to \[3\]/,
        );
      }),
    );

    it(
      'matmul: inner dimension mismatch, rank < 2, batch mismatch',
      run(async () => {
        assert.throws(
          () => matmul(Z([2, 3]), Z([4, 5])),
          /matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\]/,
        );
        assert.throws(
          () => matmul(Z([2, 3]), Z([2, 5]), { transposeA: false, transposeB: true }),
          /inner dimensions differ: \[2, 3\] @ \[2, 5\]ᵀ/,
        );
        assert.throws(
          () => matmul(Z([3]), Z([3, 2])),
          /matmul: operands need rank ≥ 2, got \[3\] and \[3, 2\]/,
        );
        assert.throws(
          () => matmul(Z([2, 2, 3]), Z([3, 3, 1])),
          /matmul of \[2, 2, 3\] and \[3, 3, 1\]: batch axes: shapes \[2\] and \[3\] cannot be broadcast/,
        );
      }),
    );

    it(
      'bad reshape',
      run(async () => {
        assert.throws(
          () => reshape(Z([2, 3]), [4, 2]),
          /reshape: cannot reshape \[2, 3\] \(size 6\) into \[4, 2\]/,
        );
        assert.throws(() => reshape(Z([2, 3]), [4, -1]), /reshape: cannot reshape \[2, 3\] into \[4, -1\]/);
        assert.throws(() => reshape(Z([2, 3]), [-1, -1]), /reshape: at most one −1/);
      }),
    );

    it(
      'out-of-range axis',
      run(async () => {
        const x = Z([2, 3]);
        assert.throws(() => sum(x, 2), /sum: axis 2 is out of range for a tensor of rank 2/);
        assert.throws(() => sum(x, [0, -3]), /sum: axis -3 is out of range for a tensor of rank 2/);
        assert.throws(() => softmax(x, 5), /axis 5 is out of range for a tensor of rank 2/);
        assert.throws(() => logSumExp(x, -3), /axis -3 is out of range/);
        assert.throws(() => concat([x, x], 2), /concat: axis 2 is out of range for a tensor of rank 2/);
        assert.throws(() => gather(x, tensor(new Int32Array([0]), [1]), 2), /gather: axis 2 is out of range/);
        assert.throws(() => squeeze(x, [0]), /squeeze: axis 0 of \[2, 3\] is not of size 1/);
        assert.throws(() => transpose(Z([3])), /transpose: needs rank ≥ 2, got \[3\]/);
        assert.throws(
          () => transpose(x, [0, 0]),
          /transpose: \[0, 0\] is not a permutation of the axes of \[2, 3\]/,
        );
      }),
    );

    it(
      'out-of-range gather index',
      run(async () => {
        const x = Z([3, 2]);
        assert.throws(
          () => gather(x, tensor(new Int32Array([0, 5]), [2])),
          /gather: index 5 at position 1 is out of range \[0, 3\) for axis 0/,
        );
        assert.throws(
          () => gather(x, tensor(new Int32Array([-1]), [1])),
          /gather: index -1 at position 0 is out of range/,
        );
        assert.throws(() => gather(x, Z([1])), /gather: indices must be int32, got float/);
      }),
    );

    it(
      'mixing dtypes (float32 + float64, int32 in float ops)',
      run(async () => {
        if (other) {
          const a = zeros([2], { dtype: 'float64' });
          const b = zeros([2], { dtype: 'float32' });
          assert.throws(
            () => add(a, b),
            /add: dtypes differ \(float64 and float32\); cast one of them first/,
          );
          assert.throws(
            () => matmul(Z([2, 2]), zeros([2, 2], { dtype: other })),
            /matmul: expected two float tensors of one dtype/,
          );
          assert.throws(() => concat([a, b]), /concat: float64\[2\], float32\[2\] do not match/);
        }
        const i = tensor(new Int32Array([1, 2]), [2]);
        assert.throws(() => add(i, i), /add: expected a float tensor, got int32/);
        assert.throws(() => sum(i), /sum: expected a float tensor, got int32/);
        assert.throws(() => activation('silu', i), /silu: expected a float tensor, got int32/);
      }),
    );

    it(
      'slice and pad out of bounds',
      run(async () => {
        const x = Z([2, 3]);
        assert.throws(
          () => slice(x, [1, 1], [2, 1]),
          /slice: begin \[1, 1\] size \[2, 1\] is out of bounds for \[2, 3\]/,
        );
        assert.throws(() => slice(x, [0, -1]), /slice: .* is out of bounds for \[2, 3\]/);
        assert.throws(() => slice(x, [0, 0, 0]), /slice: begin has more axes than \[2, 3\]/);
        assert.throws(() => pad(x, [[0, 1]]), /pad: 1 paddings for a tensor of rank 2/);
        assert.throws(
          () =>
            pad(x, [
              [0, -1],
              [0, 0],
            ]),
          /pad: paddings must be non-negative integers/,
        );
        assert.throws(() => split(x, [1, 1], 1), /split: sizes \[1, 1\] do not add up to axis 1 of \[2, 3\]/);
      }),
    );

    it(
      'crossEntropy: target out of range, wrong target shape or dtype',
      run(async () => {
        const logits = Z([2, 5]);
        assert.throws(
          () => crossEntropy(logits, tensor(new Int32Array([1, 7]), [2])),
          /crossEntropy: target 7 at position 1 is outside \[0, 5\)/,
        );
        assert.throws(
          () => crossEntropy(logits, tensor(new Int32Array([-1, 0]), [2]), { ignoreIndex: -100 }),
          /target -1 at position 0 is outside \[0, 5\)/,
        );
        assert.throws(
          () => crossEntropy(logits, tensor(new Int32Array([1, 2, 3]), [3])),
          /crossEntropy: targets \[3\] do not match logits \[2, 5\] without the class axis/,
        );
        assert.throws(() => crossEntropy(logits, Z([2])), /crossEntropy: targets must be int32/);
      }),
    );

    it(
      'creation, activation order, clamp, vjp cotangent, backends',
      run(async () => {
        assert.throws(() => tensor([1, 2, 3], [2, 2]), /tensor: 3 values do not fill shape \[2, 2\]/);
        assert.throws(
          () => tensor([1.5], [1], { dtype: 'int32' }),
          /tensor: value 1.5 at index 0 is not an int32/,
        );
        assert.throws(() => Z([2, -1]), /shape \[2, -1\] has an invalid dimension -1/);
        assert.throws(() => activation('gelu', Z([2]), 5), /gelu: derivative order 5 is outside 0…4/);
        assert.throws(() => clamp(Z([2]), 1, 0), /clamp: lo 1 must not exceed hi 0/);
        const { backward } = vjp((t: Tensor) => mul(t, 2), Z([2, 2]));
        assert.throws(() => backward(Z([4])), /vjp: cotangent .*\[4\] does not match output .*\[2, 2\]/);
        assert.throws(
          () => setBackend('no-such-backend'),
          /unknown backend 'no-such-backend' \(registered: .*reference/,
        );
        assert.throws(() => getBackend('nope'), /unknown backend 'nope'/);
        assert.throws(() => Z([2]).item(), /item\(\) needs a tensor of size 1, got shape \[2\]/);
      }),
    );
  });
}
