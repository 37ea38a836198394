/**
 * Activation derivatives: activation(fn, x, k + 1) is the derivative of activation(fn, x, k),
 * checked against (Richardson-extrapolated) central differences in float64, over a grid that
 * includes large |x|; derivative() for exp/log/sqrt/rsqrt likewise; closed forms far out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ActivationFn,
  activation,
  derivative,
  exp,
  log,
  rsqrt,
  sqrt,
  type Tensor,
  tensor,
  tidy,
  withBackend,
} from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { readAll } from '../helpers/read.js';
import { bestFloat, float64Backends } from './util.js';

const ACTIVATIONS: ActivationFn[] = ['sigmoid', 'tanh', 'silu', 'gelu', 'softplus'];

const grid: number[] = [];
for (let x = -8; x <= 8; x += 0.37) grid.push(x);
grid.push(0, -30, 30, -12.5, 12.5);

/**
 * d/dx of f at every x, by Richardson extrapolation of central differences (error O(h⁴)); the
 * step shrinks near 0 so that it stays small against |x| for the poles of log, sqrt and rsqrt.
 */
function numericDerivative(f: (x: Float64Array) => Float64Array, xs: readonly number[]): number[] {
  const h = xs.map((x) => (x === 0 ? 1e-3 : 1e-3 * Math.min(1, 4 * Math.abs(x))));
  const at = (scale: number) => f(Float64Array.from(xs, (x, i) => x + scale * h[i]!));
  const [p1, m1, p2, m2] = [at(1), at(-1), at(0.5), at(-0.5)];
  return xs.map((_, i) => {
    const d1 = (p1[i]! - m1[i]!) / (2 * h[i]!);
    const d2 = (p2[i]! - m2[i]!) / h[i]!;
    return (4 * d2 - d1) / 3;
  });
}

function evaluate(op: (x: Tensor) => Tensor): (x: Float64Array) => Float64Array {
  return (x) => tidy(() => op(tensor(x, [x.length])).dataSync() as Float64Array);
}

function checkAgainstDifferences(
  what: string,
  lower: (x: Tensor) => Tensor,
  upper: (x: Tensor) => Tensor,
  xs: number[],
) {
  const numeric = numericDerivative(evaluate(lower), xs);
  const analytic = evaluate(upper)(Float64Array.from(xs));
  xs.forEach((x, i) => {
    const a = analytic[i]!;
    const n = numeric[i]!;
    assert.ok(Number.isFinite(a), `${what} at ${x} is ${a}`);
    const tol = 1e-7 * Math.max(Math.abs(a), 1e-4);
    assert.ok(Math.abs(a - n) <= tol, `${what} at x = ${x}: analytic ${a}, finite difference ${n}`);
  });
}

for (const backend of float64Backends()) {
  describe(`activation derivatives vs finite differences (${backend}, float64)`, () => {
    for (const fn of ACTIVATIONS) {
      it(`${fn}: order k+1 is the derivative of order k, k = 0…3`, () => {
        withBackend(backend, () => {
          for (let k = 0; k <= 3; k++) {
            checkAgainstDifferences(
              `${fn}^(${k + 1})`,
              (x) => activation(fn, x, k),
              (x) => activation(fn, x, k + 1),
              grid,
            );
          }
        });
      });
    }

    const smooth: [string, (x: Tensor) => Tensor, number[]][] = [
      ['exp', exp, grid.filter((x) => Math.abs(x) < 10)],
      ['log', log, [0.05, 0.3, 0.9, 1, 1.7, 4, 25, 300]],
      ['sqrt', sqrt, [0.05, 0.3, 0.9, 1, 1.7, 4, 25, 300]],
      ['rsqrt', rsqrt, [0.05, 0.3, 0.9, 1, 1.7, 4, 25, 300]],
    ];
    for (const [fn, base, xs] of smooth) {
      it(`derivative('${fn}', x, k): order k+1 is the derivative of order k, k = 0…2`, () => {
        withBackend(backend, () => {
          const name = fn as 'exp' | 'log' | 'sqrt' | 'rsqrt';
          for (let k = 0; k <= 2; k++) {
            const lower = k === 0 ? base : (x: Tensor) => derivative(name, x, k as 1 | 2);
            checkAgainstDifferences(
              `${fn}^(${k + 1})`,
              lower,
              (x) => derivative(name, x, (k + 1) as 1 | 2 | 3),
              xs,
            );
          }
        });
      });
    }

    it('closed forms far out: σ′(±30), tanh′(10), tanh′(30) to 1e-12 relative', () => {
      withBackend(backend, () =>
        tidy(() => {
          const x = tensor(new Float64Array([30, -30]));
          const s1 = activation('sigmoid', x, 1).dataSync();
          const sigma30 = 9.357622968838423e-14; // e^{−30}/(1+e^{−30})², mpmath
          for (const v of s1)
            assert.ok(Math.abs(v / sigma30 - 1) < 1e-12, `σ′(±30) = ${v}, expected ${sigma30}`);
          const t1 = activation('tanh', tensor(new Float64Array([10, -30])), 1).dataSync();
          assert.ok(Math.abs(t1[0]! / 8.244614455767397e-9 - 1) < 1e-12, `tanh′(10) = ${t1[0]}`);
          assert.ok(Math.abs(t1[1]! / 3.502604305078608e-26 - 1) < 1e-12, `tanh′(−30) = ${t1[1]}`);
          // silu′(−30) = σ(−30)(1 − 30 σ(30)) ≈ e^{−30}(−29)
          const silu1 = activation('silu', tensor(new Float64Array([-30])), 1).item();
          const e = Math.exp(-30) / (1 + Math.exp(-30));
          const expected = e + -30 * sigma30;
          assert.ok(Math.abs(silu1 / expected - 1) < 1e-12, `silu′(−30) = ${silu1}, expected ${expected}`);
        }),
      );
    });
  });
}

for (const backend of backendsUnderTest()) {
  describe(`activations far out stay finite (${backend})`, () => {
    it('orders 0…4 at ±30, ±100, ±1000 are finite and have the right limits', async () => {
      await withBackend(backend, async () => {
        const dtype = bestFloat(backend);
        const xs = [-1000, -100, -30, 30, 100, 1000];
        const limits: [ActivationFn, number, number[]][] = [
          ['sigmoid', 0, [0, 0, 0, 1, 1, 1]],
          ['tanh', 0, [-1, -1, -1, 1, 1, 1]],
          ['silu', 1, [0, 0, 0, 1, 1, 1]],
          ['gelu', 1, [0, 0, 0, 1, 1, 1]],
          ['softplus', 0, [0, 0, 0, 30, 100, 1000]],
          ['softplus', 1, [0, 0, 0, 1, 1, 1]],
          ['gelu', 0, [0, 0, 0, 30, 100, 1000]],
        ];
        const orders = [0, 1, 2, 3, 4];
        const { all, limited } = await readAll(() => {
          const x = tensor(xs, [xs.length], { dtype });
          return {
            all: ACTIVATIONS.map((fn) => orders.map((k) => activation(fn, x, k))),
            limited: limits.map(([fn, k]) => activation(fn, x, k)),
          };
        });
        ACTIVATIONS.forEach((fn, f) => {
          for (const k of orders) {
            all[f]![k]!.forEach((value, i) => {
              assert.ok(Number.isFinite(value), `${fn}^(${k})(${xs[i]}) = ${value}`);
            });
          }
        });
        limits.forEach(([fn, k, expected], j) => {
          const v = limited[j]!;
          expected.forEach((e, i) => {
            assert.ok(
              Math.abs(v[i]! - e) < 1e-6 * Math.max(1, Math.abs(e)),
              `${fn}^(${k})(${xs[i]}) = ${v[i]}`,
            );
          });
        });
      });
    });
  });
}
