/**
 * Autodiff behaviour: gradient trees, unused and repeated leaves, non-float leaves, vjp,
 * noGrad, stopGradient, identity-like functions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  add,
  exp,
  grad,
  matmul,
  mul,
  noGrad,
  reshape,
  scalar,
  square,
  stopGradient,
  sum,
  type Tensor,
  tensor,
  tidy,
  valueAndGrad,
  vjp,
  withBackend,
} from '../../src/index.js';
import { backendsUnderTest, tolerance } from '../helpers/backends.js';
import { item } from '../helpers/read.js';
import { assertClose, bestFloat, values } from './util.js';

for (const backend of backendsUnderTest()) {
  const dtype = bestFloat(backend);
  const rtol = tolerance(dtype);
  const T = (data: number[], shape?: number[]) => tensor(data, shape ?? [data.length], { dtype });
  const run = (body: () => void | Promise<void>) => () => withBackend(backend, body);

  describe(`autodiff (${backend}, ${dtype})`, () => {
    it(
      'valueAndGrad over a nested record returns grads of the same structure',
      run(async () => {
        const params = {
          a: { w: T([1, 2, 3]), b: T([0.5, -1, 2]) },
          list: [T([1, -2], [2, 1]), T([4, 5, 6, 7], [2, 2])],
          note: 'not a tensor',
          lr: 0.1,
        };
        const f = (p: typeof params) =>
          add(add(sum(mul(p.a.w, p.a.b)), sum(square(p.list[0]!))), mul(sum(p.list[1]!), 3));
        const { value, grads } = valueAndGrad(f)(params);
        assertClose([await item(value)], [1 * 0.5 - 2 + 6 + 1 + 4 + 3 * 22], rtol, 'value');
        assert.deepEqual(Object.keys(grads).sort(), ['a', 'list', 'lr', 'note']);
        assert.deepEqual(Object.keys(grads.a).sort(), ['b', 'w']);
        assert.ok(Array.isArray(grads.list));
        assert.equal(grads.list.length, 2);
        assert.equal(grads.note, null);
        assert.equal(grads.lr, null);
        assertClose(await values(grads.a.w), [0.5, -1, 2], rtol, 'a.w');
        assertClose(await values(grads.a.b), [1, 2, 3], rtol, 'a.b');
        assert.deepEqual([...grads.list[0]!.shape], [2, 1]);
        assertClose(await values(grads.list[0]!), [2, -4], rtol, 'list[0]');
        assert.deepEqual([...grads.list[1]!.shape], [2, 2]);
        assertClose(await values(grads.list[1]!), [3, 3, 3, 3], rtol, 'list[1]');
      }),
    );

    it(
      'an unused leaf gets zeros of its shape and dtype',
      run(async () => {
        const used = T([1, 2]);
        const unused = T([7, 8, 9, 10, 11, 12], [2, 3]);
        const g = grad((p: { used: Tensor; unused: Tensor }) => sum(square(p.used)))({ used, unused });
        assert.deepEqual([...g.unused.shape], [2, 3]);
        assert.equal(g.unused.dtype, dtype);
        assert.deepEqual(await values(g.unused), [0, 0, 0, 0, 0, 0]);
        assertClose(await values(g.used), [2, 4], rtol, 'used');
      }),
    );

    it(
      'a tensor used several times accumulates its gradient',
      run(async () => {
        const x = T([1, -2, 3]);
        // f = Σ x·x + Σ x + Σ exp(x)·x  →  2x + 1 + exp(x)(1 + x)
        const g = grad((t: Tensor) => add(add(sum(mul(t, t)), sum(t)), sum(mul(exp(t), t))))(x);
        const expected = [1, -2, 3].map((v) => 2 * v + 1 + Math.exp(v) * (1 + v));
        assertClose(await values(g), expected, rtol * 10, 'accumulated');
      }),
    );

    it(
      'the same tensor twice in the params tree: both places get the full gradient, as separate tensors',
      run(async () => {
        const x = T([1, 2]);
        const g = grad((p: { a: Tensor; b: Tensor }) => sum(mul(p.a, p.a)))({ a: x, b: x });
        assertClose(await values(g.a), [2, 4], rtol, 'a');
        assertClose(await values(g.b), [2, 4], rtol, 'b');
        assert.notEqual(g.a, g.b);
        g.a.dispose();
        assertClose(await values(g.b), [2, 4], rtol, 'b after disposing a');
      }),
    );

    it(
      'int32 leaves (and other non-float leaves) get null',
      run(async () => {
        const w = T([1, 2, 3]);
        const idx = tensor(new Int32Array([0, 2]), [2]);
        const g = grad((p: { w: Tensor; idx: Tensor }) => sum(square(p.w)))({ w, idx });
        assert.equal(g.idx, null);
        assertClose(await values(g.w), [2, 4, 6], rtol, 'w');
      }),
    );

    it(
      'a non-scalar output throws a clear error (and a size-1 output is accepted)',
      run(async () => {
        const x = T([1, 2, 3, 4, 5, 6], [2, 3]);
        assert.throws(
          () => valueAndGrad((t: Tensor) => mul(t, 2))(x),
          /valueAndGrad: the function must return a scalar, got shape \[2, 3\]; use vjp/,
        );
        assert.throws(() => grad((t: Tensor) => sum(t, 0))(x), /must return a scalar, got shape \[3\]/);
        const g = grad((t: Tensor) => reshape(sum(t), [1, 1]))(x);
        assertClose(await values(g), [1, 1, 1, 1, 1, 1], rtol, 'size-1 output');
        assert.throws(
          () => valueAndGrad(() => 3 as unknown as Tensor)(x),
          /vjp\/valueAndGrad: the function must return a Tensor/,
        );
      }),
    );

    it(
      'vjp with a cotangent gives Σ cotangent ⊙ ∂f/∂params',
      run(async () => {
        const a = T([1, 2, 3, 4, 5, 6], [2, 3]);
        const b = T([1, 0, -1, 2, 0.5, 1], [3, 2]);
        const ct = T([1, -1, 2, 0.5], [2, 2]);
        const { value, backward } = vjp((p: Tensor[]) => matmul(p[0]!, p[1]!), [a, b]);
        // value = a b; ga = ct bᵀ; gb = aᵀ ct  (plain JS)
        const A = [
          [1, 2, 3],
          [4, 5, 6],
        ];
        const B = [
          [1, 0],
          [-1, 2],
          [0.5, 1],
        ];
        const C = [
          [1, -1],
          [2, 0.5],
        ];
        const ab = A.flatMap((row) => [0, 1].map((j) => row.reduce((s, v, k) => s + v * B[k]![j]!, 0)));
        assertClose(await values(value), ab, rtol, 'value');
        const [ga, gb] = backward(ct);
        const expectedA = [0, 1].flatMap((i) =>
          [0, 1, 2].map((k) => C[i]![0]! * B[k]![0]! + C[i]![1]! * B[k]![1]!),
        );
        const expectedB = [0, 1, 2].flatMap((k) =>
          [0, 1].map((j) => A[0]![k]! * C[0]![j]! + A[1]![k]! * C[1]![j]!),
        );
        assertClose(await values(ga!), expectedA, rtol, 'ga');
        assertClose(await values(gb!), expectedB, rtol, 'gb');
        assert.throws(() => backward(ct), /backward was already called/);
        const second = vjp((p: Tensor) => mul(p, 2), a);
        assert.throws(
          () => second.backward(T([1, 2, 3])),
          /cotangent .*\[3\] does not match output .*\[2, 3\]/,
        );
      }),
    );

    it(
      'vjp with the cotangent as the gradient (identity-like f) hands out separate tensors',
      run(async () => {
        const a = T([1, 2]);
        const b = T([3, 4]);
        const ct = T([5, 6]);
        const { backward } = vjp((p: Tensor[]) => add(p[0]!, p[1]!), [a, b]);
        const [ga, gb] = backward(ct);
        assert.notEqual(ga, gb);
        assert.notEqual(ga, ct);
        ga!.dispose();
        gb!.dispose();
        assert.deepEqual(await values(ct), [5, 6], 'the cotangent survives disposing the gradients');
      }),
    );

    it(
      'grad of a function returning its own input does not dispose the input',
      run(async () => {
        const x = scalar(3, { dtype });
        const g = grad((t: Tensor) => t)(x);
        assert.equal(x.disposed, false);
        assert.equal(await item(x), 3);
        assert.equal(await item(g), 1);
        const y = T([2]);
        const captured = T([5]);
        const gy = grad((_t: Tensor) => captured)(y);
        assert.equal(captured.disposed, false, 'a captured constant returned by f survives');
        assert.deepEqual(await values(gy), [0]);
      }),
    );

    it(
      'noGrad records nothing: the gradient through a noGrad region is zero',
      run(async () => {
        const x = T([1, 2, 3]);
        const g = grad((t: Tensor) =>
          add(
            sum(square(t)),
            noGrad(() => sum(mul(t, 10))),
          ),
        )(x);
        assertClose(await values(g), [2, 4, 6], rtol, 'only the taped part');
        const g0 = grad((t: Tensor) => noGrad(() => sum(square(t))))(x);
        assert.deepEqual(await values(g0), [0, 0, 0]);
        // an intermediate made under noGrad is not kept for a backward pass: tidy frees it
        let taped: Tensor | undefined;
        let untaped: Tensor | undefined;
        const { backward } = vjp((t: Tensor) => {
          return tidy(() => {
            taped = square(t);
            untaped = noGrad(() => square(t));
            return sum(add(taped, stopGradient(untaped)));
          });
        }, x);
        assert.equal(untaped!.disposed, true, 'noGrad intermediate freed by tidy');
        assert.equal(taped!.disposed, false, 'taped intermediate kept for the backward pass');
        backward(scalar(1, { dtype }));
      }),
    );

    it(
      'stopGradient blocks the gradient',
      run(async () => {
        const x = T([1, -2, 3]);
        const g = grad((t: Tensor) => sum(mul(stopGradient(t), t)))(x);
        assertClose(await values(g), [1, -2, 3], rtol, 'd/dx (sg(x)·x) = x, not 2x');
        const g2 = grad((t: Tensor) => sum(stopGradient(square(t))))(x);
        assert.deepEqual(await values(g2), [0, 0, 0]);
      }),
    );

    it(
      'grad of a function that does not depend on its input returns zeros',
      run(async () => {
        const x = T([1, 2, 3, 4], [2, 2]);
        const c = T([5, 6]);
        const g = grad((_t: Tensor) => sum(square(c)))(x);
        assert.deepEqual([...g.shape], [2, 2]);
        assert.deepEqual(await values(g), [0, 0, 0, 0]);
      }),
    );

    it(
      'valueAndGrad passes the rest arguments through undifferentiated',
      run(async () => {
        const w = T([2, 3]);
        const x = T([4, 5]);
        const { value, grads } = valueAndGrad((p: Tensor, input: Tensor, k: number) =>
          mul(sum(mul(p, input)), k),
        )(w, x, 2);
        assertClose([await item(value)], [2 * (8 + 15)], rtol, 'value');
        assertClose(await values(grads), [8, 10], rtol, 'grads');
      }),
    );
  });
}
