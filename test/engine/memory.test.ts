/**
 * Memory and scopes: tidy/keep/dispose accounting, valueAndGrad leaving nothing behind, tapes
 * keeping what their backward pass needs, use-after-dispose errors and reshape views.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  add,
  dispose,
  exp,
  grad,
  keep,
  matmul,
  memory,
  mul,
  onesLike,
  reshape,
  softmax,
  square,
  sum,
  type Tensor,
  tanh,
  tensor,
  tidy,
  valueAndGrad,
  vjp,
  withBackend,
} from '../../src/index.js';
import { backendsUnderTest, tolerance } from '../helpers/backends.js';
import { item } from '../helpers/read.js';
import { assertClose, bestFloat, values } from './util.js';

type Mem = ReturnType<typeof memory>;

function delta(after: Mem, before: Mem): { tensors: number; buffers: number } {
  return { tensors: after.tensors - before.tensors, buffers: after.buffers - before.buffers };
}

for (const backend of backendsUnderTest()) {
  const dtype = bestFloat(backend);
  const rtol = tolerance(dtype);
  const T = (data: number[], shape?: number[]) => tensor(data, shape ?? [data.length], { dtype });
  const on = (body: () => void | Promise<void>) => () => withBackend(backend, body);

  describe(`memory and scopes (${backend}, ${dtype})`, () => {
    it(
      'tidy disposes intermediates and keeps the returned tensors (also inside arrays and records)',
      on(async () => {
        const x = T([1, 2, 3]);
        const before = memory();
        let inner: Tensor | undefined;
        const out = tidy(() => {
          inner = mul(x, 2);
          const a = add(inner, 1);
          const b = exp(a);
          return { pair: [a, sum(b)], note: 'text' };
        });
        assert.deepEqual(delta(memory(), before), { tensors: 2, buffers: 2 });
        assert.equal(inner!.disposed, true);
        assert.equal(out.pair[0]!.disposed, false);
        assert.deepEqual(await values(out.pair[0]!), [3, 5, 7]);
        dispose(out);
        assert.deepEqual(delta(memory(), before), { tensors: 0, buffers: 0 });
        assert.equal(x.disposed, false, 'tensors made outside the scope are left alone');
        x.dispose();
      }),
    );

    it(
      'keep() saves a tensor from the enclosing tidy; nested tidy hands returned tensors up',
      on(async () => {
        const before = memory();
        let kept: Tensor | undefined;
        let fromInner: Tensor | undefined;
        let dropped: Tensor | undefined;
        tidy(() => {
          kept = keep(T([1, 2]));
          fromInner = tidy(() => {
            dropped = T([9]);
            return T([3, 4]);
          });
          assert.equal(dropped!.disposed, true);
          assert.equal(fromInner.disposed, false, 'returned from the inner scope');
        });
        assert.equal(fromInner!.disposed, true, 'the outer scope did not return it');
        assert.equal(kept!.disposed, false);
        assert.deepEqual(delta(memory(), before), { tensors: 1, buffers: 1 });
        kept!.dispose();
        kept!.dispose(); // twice is safe
        assert.deepEqual(delta(memory(), before), { tensors: 0, buffers: 0 });
      }),
    );

    it(
      'tidy frees intermediates when the function throws',
      on(async () => {
        const before = memory();
        assert.throws(
          () =>
            tidy(() => {
              T([1, 2, 3]);
              throw new Error('boom');
            }),
          /boom/,
        );
        assert.deepEqual(delta(memory(), before), { tensors: 0, buffers: 0 });
        assert.throws(() => tidy(() => Promise.resolve(1)), /tidy: the function must be synchronous/);
      }),
    );

    it(
      'valueAndGrad leaves nothing behind but the value and the gradients',
      on(async () => {
        const params = { w: T([0.1, -0.2, 0.3, 0.4, 0.5, -0.6], [3, 2]), b: T([0.1, 0.2]) };
        const x = T([1, 2, 3, -1, 0, 1, 2, 2, 2, 0.5, 0.5, 0.5], [4, 3]);
        const f = (p: typeof params, input: Tensor) =>
          sum(square(softmax(tanh(add(matmul(input, p.w), p.b)), -1)));
        const before = memory();
        const { value, grads } = valueAndGrad(f)(params, x);
        assert.deepEqual(delta(memory(), before), { tensors: 3, buffers: 3 });
        dispose([value, grads]);
        assert.deepEqual(memory(), before);
        // grad disposes the value itself
        const g = grad(f)(params, x);
        assert.deepEqual(delta(memory(), before), { tensors: 2, buffers: 2 });
        dispose(g);
        assert.deepEqual(memory(), before);
        dispose([params, x]);
      }),
    );

    it(
      'nested grad (second order) leaves nothing behind either',
      on(async () => {
        const x = T([0.3, -0.7, 1.1]);
        const before = memory();
        const g2 = grad((t: Tensor) => sum(grad((u: Tensor) => sum(tanh(u)))(t)))(x);
        assert.deepEqual(delta(memory(), before), { tensors: 1, buffers: 1 });
        g2.dispose();
        assert.deepEqual(memory(), before);
        x.dispose();
      }),
    );

    it(
      'a nested tidy inside the forward pass does not break the backward pass',
      on(async () => {
        const x = T([0.5, -1, 2]);
        const before = memory();
        const { value, grads } = valueAndGrad((t: Tensor) => {
          // square(t·3)'s input is freed by this tidy unless the tape keeps it
          const inner = tidy(() => sum(square(mul(t, 3))));
          return add(inner, sum(exp(t)));
        })(x);
        const expected = [0.5, -1, 2].map((v) => 18 * v + Math.exp(v));
        assertClose(await values(grads), expected, rtol * 10, 'gradient');
        assertClose(
          [await item(value)],
          [9 * (0.25 + 1 + 4) + Math.exp(0.5) + Math.exp(-1) + Math.exp(2)],
          rtol,
          'value',
        );
        dispose([value, grads]);
        assert.deepEqual(memory(), before);
        x.dispose();
      }),
    );

    it(
      'a tensor disposed by the user during the forward pass stays until the tape has used it',
      on(async () => {
        const x = T([1, 2, 3]);
        const before = memory();
        let h: Tensor | undefined;
        const g = grad((t: Tensor) => {
          h = mul(t, t);
          const out = sum(mul(h, t));
          h.dispose(); // the tape saved h for mul's backward
          assert.equal(h.disposed, false, 'pending while the tape holds it');
          return out;
        })(x);
        assertClose(await values(g), [3, 12, 27], rtol, '3x²');
        assert.equal(h!.disposed, true, 'freed once the tape let go');
        g.dispose();
        assert.deepEqual(memory(), before);
        x.dispose();
      }),
    );

    it(
      'a function that throws under valueAndGrad leaves nothing behind, and its params stay disposable',
      on(async () => {
        const x = T([1, 2, 3]);
        const before = memory();
        const bad = T([1, 2, 3, 4]);
        assert.throws(
          () =>
            valueAndGrad((t: Tensor) => {
              const y = square(t); // saved by the tape
              return add(y, bad);
            })(x),
          /add: shapes \[3\] and \[4\] cannot be broadcast/,
        );
        bad.dispose();
        assert.deepEqual(memory(), before);
        x.dispose();
        assert.equal(x.disposed, true, 'the tape let go of the parameter');
        assert.deepEqual(delta(memory(), before), { tensors: -1, buffers: -1 });
      }),
    );

    it(
      'vjp inside a tidy that ends before backward: the saved intermediates are freed by backward',
      on(async () => {
        const x = T([1, 2, 3]);
        const before = memory();
        const { value, backward } = tidy(() => vjp((t: Tensor) => sum(square(mul(t, 2))), x));
        const g = tidy(() => backward(onesLike(value)));
        assertClose(await values(g), [8, 16, 24], rtol, '8x');
        dispose([value, g]);
        assert.deepEqual(memory(), before);
        x.dispose();
      }),
    );

    it(
      'vjp release() frees the forward pass when the backward is not needed',
      on(async () => {
        const x = T([1, 2, 3]);
        const before = memory();
        tidy(() => {
          const { value, release } = vjp((t: Tensor) => exp(square(t)), x);
          release();
          return value;
        }).dispose();
        assert.deepEqual(memory(), before);
        x.dispose();
      }),
    );

    it(
      'using a disposed tensor throws a clear error',
      on(async () => {
        const x = T([1, 2, 3], [3]);
        x.dispose();
        assert.equal(x.disposed, true);
        await assert.rejects(x.data(), /tensor #\d+ \[3\] was used after it was disposed/);
        assert.throws(() => add(x, 1), /was used after it was disposed/);
        assert.throws(() => reshape(x, [1, 3]), /was used after it was disposed/);
        assert.throws(() => grad((t: Tensor) => sum(t))(x), /was used after it was disposed/);
      }),
    );

    it(
      'reshape views share storage: disposing the view does not free the base, and vice versa',
      on(async () => {
        const before = memory();
        const base = T([1, 2, 3, 4, 5, 6], [2, 3]);
        const view = reshape(base, [3, 2]);
        assert.deepEqual(delta(memory(), before), { tensors: 2, buffers: 1 });
        view.dispose();
        assert.deepEqual(await values(base), [1, 2, 3, 4, 5, 6]);
        assert.deepEqual(delta(memory(), before), { tensors: 1, buffers: 1 });
        const view2 = reshape(base, [6]);
        base.dispose();
        assert.deepEqual(await values(view2), [1, 2, 3, 4, 5, 6], 'the view keeps the storage alive');
        assert.deepEqual(delta(memory(), before), { tensors: 1, buffers: 1 });
        view2.dispose();
        assert.deepEqual(memory(), before);
      }),
    );
  });
}
