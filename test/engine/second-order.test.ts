/**
 * Second (and third) order: grad of grad, differentiating through an analytic inner gradient
 * (one SGD step of a small SiLU MLP, as the memory's inner update does), and the backward rule
 * of every op being itself differentiable (checked by finite differences of the gradient).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import {
  type ActivationFn,
  activation,
  add,
  concat,
  crossEntropy,
  cumprod,
  div,
  gather,
  grad,
  l2Normalize,
  linearScan,
  log,
  logSumExp,
  matmul,
  max,
  maximum,
  mul,
  noGrad,
  pad,
  pow,
  reshape,
  rmsNorm,
  rsqrt,
  silu,
  slice,
  softmax,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
  tensor,
  tidy,
  transpose,
  where,
  withBackend,
} from '../../src/index.js';
import { checkGradients } from '../helpers/finite-diff.js';
import {
  assertClose,
  awayFromZero,
  broadcastPairArb,
  distinctValues,
  fill,
  float64Backends,
  gridValues,
  Rng,
  seedArb,
  shapeArb,
  uniform,
  values64,
} from './util.js';

const SMOOTH: ActivationFn[] = ['silu', 'gelu', 'tanh', 'sigmoid', 'softplus'];

/**
 * Checks the gradient of x ↦ Σ_i w2_i ⊙ ∇_{x_i} Σ w1 ⊙ f(x) (a Hessian–vector product through
 * every backward rule of f) against finite differences.
 */
function secondOrderCheck(rng: Rng, f: (xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  tidy(() => {
    const probe = noGrad(() => f(inputs));
    const w1 = uniform(rng, probe.shape, -1, 1);
    const w2 = inputs.map((x) => uniform(rng, x.shape, -1, 1));
    checkGradients(
      (xs) => {
        const gs = grad((p: Tensor[]) => sum(mul(f(p), w1)))(xs);
        return gs.map((g, i) => sum(mul(g, w2[i]!))).reduce((a, b) => add(a, b));
      },
      inputs,
      { maxEntries: 16 },
    );
  });
}

/** Runs `body` for a few random seeds and shapes. */
function forShapes(backend: string, minRank: number, body: (rng: Rng, shape: number[]) => void): void {
  fc.assert(
    fc.property(seedArb, shapeArb(minRank, 3), (seed, shape) =>
      withBackend(backend, () => tidy(() => body(new Rng(seed), shape))),
    ),
    { numRuns: 12 },
  );
}

for (const backend of float64Backends()) {
  describe(`second order (${backend}, float64)`, () => {
    describe('grad of grad', () => {
      for (const fn of SMOOTH) {
        it(`d²/dx² and d³/dx³ of ${fn} via nested grad equal activation(${fn}, x, 2 / 3)`, () => {
          withBackend(backend, () =>
            tidy(() => {
              const x = uniform(new Rng(11), [3, 5], -4, 4);
              const f = (t: Tensor) => sum(activation(fn, t));
              const d1 = (t: Tensor) => grad(f)(t);
              const d2 = grad((t: Tensor) => sum(d1(t)))(x);
              assertClose(values64(d2), values64(activation(fn, x, 2)), 1e-12, `${fn}''`);
              const d3 = grad((t: Tensor) => sum(grad((u: Tensor) => sum(d1(u)))(t)))(x);
              assertClose(values64(d3), values64(activation(fn, x, 3)), 1e-12, `${fn}'''`);
            }),
          );
        });
      }

      it('the derivative of the highest provided order cannot be differentiated (clear error)', () => {
        withBackend(backend, () =>
          tidy(() => {
            const x = uniform(new Rng(1), [3]);
            assert.throws(
              () => grad((t: Tensor) => sum(activation('silu', t, 4)))(x),
              /cannot differentiate the derivative of order 4/,
            );
          }),
        );
      });

      it('Hessian of a cross term: ∂²/∂a∂b Σ a·b·b = 2b (mixed partials through nested grad)', () => {
        withBackend(backend, () =>
          tidy(() => {
            const rng = new Rng(5);
            const a = uniform(rng, [4]);
            const b = uniform(rng, [4]);
            // ∂/∂a Σ a b² = b²; then ∂/∂b Σ b² = 2b
            const mixed = grad((bb: Tensor) => sum(grad((aa: Tensor) => sum(mul(mul(aa, bb), bb)))(a)))(b);
            assertClose(
              values64(mixed),
              values64(b).map((v) => 2 * v),
              1e-12,
              'mixed partial',
            );
          }),
        );
      });
    });

    describe('SGD step of a SiLU MLP with an analytic inner gradient', () => {
      // inner loss ‖silu(x W1) W2 − y‖², its gradient written with forward ops
      const innerLoss = (w1: Tensor, w2: Tensor, x: Tensor, y: Tensor) =>
        sum(square(sub(matmul(silu(matmul(x, w1)), w2), y)));
      const analyticGrad = (w1: Tensor, w2: Tensor, x: Tensor, y: Tensor): [Tensor, Tensor] => {
        const z = matmul(x, w1);
        const a = silu(z);
        const e2 = mul(sub(matmul(a, w2), y), 2);
        const dW2 = matmul(a, e2, { transposeA: true });
        const dz = mul(matmul(e2, w2, { transposeB: true }), activation('silu', z, 1));
        const dW1 = matmul(x, dz, { transposeA: true });
        return [dW1, dW2];
      };
      const setup = (seed: number) => {
        const rng = new Rng(seed);
        return {
          w1: uniform(rng, [3, 4], -1, 1),
          w2: uniform(rng, [4, 3], -1, 1),
          x: uniform(rng, [5, 3], -1, 1),
          y: uniform(rng, [5, 3], -1, 1),
          x2: uniform(rng, [5, 3], -1, 1),
          y2: uniform(rng, [5, 3], -1, 1),
          lr: tensor(new Float64Array([0.05]), []),
        };
      };

      it('the analytic inner gradient equals the tape gradient of the inner loss', () => {
        withBackend(backend, () =>
          tidy(() => {
            for (const seed of [1, 2, 3]) {
              const { w1, w2, x, y } = setup(seed);
              const [dW1, dW2] = analyticGrad(w1, w2, x, y);
              const [t1, t2] = grad((p: Tensor[]) => innerLoss(p[0]!, p[1]!, x, y))([w1, w2]);
              assertClose(values64(dW1), values64(t1!), 1e-12, 'dW1');
              assertClose(values64(dW2), values64(t2!), 1e-12, 'dW2');
            }
          }),
        );
      });

      it('the outer gradient w.r.t. W1, W2, x, y and lr matches finite differences', () => {
        withBackend(backend, () =>
          tidy(() => {
            for (const seed of [4, 5]) {
              const { w1, w2, x, y, x2, y2, lr } = setup(seed);
              const outer = ([W1, W2, X, Y, LR]: Tensor[]) => {
                const [dW1, dW2] = analyticGrad(W1!, W2!, X!, Y!);
                const W1n = sub(W1!, mul(LR!, dW1));
                const W2n = sub(W2!, mul(LR!, dW2));
                return innerLoss(W1n, W2n, x2, y2);
              };
              checkGradients(outer, [w1, w2, x, y, lr], { maxEntries: 100 });
            }
          }),
        );
      });

      it('differentiating through the tape inner gradient gives the same outer gradient', () => {
        withBackend(backend, () =>
          tidy(() => {
            const { w1, w2, x, y, x2, y2, lr } = setup(6);
            const step = (inner: (w1: Tensor, w2: Tensor) => Tensor[]) => (p: Tensor[]) => {
              const [dW1, dW2] = inner(p[0]!, p[1]!);
              return innerLoss(sub(p[0]!, mul(p[2]!, dW1!)), sub(p[1]!, mul(p[2]!, dW2!)), x2, y2);
            };
            const viaAnalytic = grad(step((a, b) => analyticGrad(a, b, x, y)))([w1, w2, lr]);
            const viaTape = grad(
              step((a, b) => grad((q: Tensor[]) => innerLoss(q[0]!, q[1]!, x, y))([a, b])),
            )([w1, w2, lr]);
            viaAnalytic.forEach((g, i) => {
              assertClose(values64(g), values64(viaTape[i]!), 1e-11, `outer gradient ${i}`);
            });
          }),
        );
      });
    });

    describe('every backward rule is differentiable (Hessian-vector products vs finite differences)', () => {
      const cases: [string, number, (rng: Rng, shape: number[]) => [(xs: Tensor[]) => Tensor, Tensor[]]][] = [
        ['div', 0, (r, s) => [([a, b]) => div(a!, b!), [uniform(r, s), awayFromZero(r, s)]]],
        ['pow', 0, (r, s) => [([a, b]) => pow(a!, b!), [uniform(r, s, 0.5, 2), uniform(r, s)]]],
        [
          'sqrt, rsqrt, log',
          0,
          (r, s) => [([a]) => add(add(sqrt(a!), rsqrt(a!)), log(a!)), [uniform(r, s, 0.5, 2)]],
        ],
        [
          'maximum',
          0,
          (r, s) => [([a, b]) => square(maximum(a!, b!)), [gridValues(r, s, 0), gridValues(r, s, 1)]],
        ],
        ['max reduction', 1, (r, s) => [([a]) => square(max(a!, -1)), [distinctValues(r, s)]]],
        ['softmax', 1, (r, s) => [([a]) => softmax(a!, 0), [uniform(r, s)]]],
        ['logSumExp', 1, (r, s) => [([a]) => logSumExp(a!, -1), [uniform(r, s)]]],
        [
          'rmsNorm',
          1,
          (r, s) => [([a, g]) => rmsNorm(a!, g!), [uniform(r, s), uniform(r, [s[s.length - 1]!])]],
        ],
        ['l2Normalize', 1, (r, s) => [([a]) => l2Normalize(a!, 0), [uniform(r, s)]]],
        [
          'linearScan',
          1,
          (r, s) => [
            ([a, b]) => linearScan(a!, b!, 0),
            [fill(r, s, (q) => [0, 1, -0.8, 0.6][q.int(4)]!), uniform(r, s)],
          ],
        ],
        [
          'linearScan reverse',
          1,
          (r, s) => [([a, b]) => linearScan(a!, b!, -1, { reverse: true }), [uniform(r, s), uniform(r, s)]],
        ],
        [
          'cumprod with zeros',
          1,
          (r, s) => [
            ([a]) => cumprod(a!, -1),
            [fill(r, s, (q) => (q.next() < 0.3 ? 0 : -1.5 + 3 * q.next()))],
          ],
        ],
        [
          'gather (squared)',
          0,
          (r, s) => {
            const idx = tensor(new Int32Array([2, 0, 2, 1]), [2, 2]);
            return [([a]) => square(gather(a!, idx)), [uniform(r, [3, ...s])]];
          },
        ],
        [
          'where (squared)',
          0,
          (r, s) => {
            const cond = fill(r, s, (q) => (q.next() < 0.5 ? 0 : 1));
            return [([a, b]) => square(where(cond, a!, b!)), [uniform(r, s), uniform(r, s)]];
          },
        ],
        [
          'slice, pad, concat, reshape, transpose (squared)',
          1,
          (r, s) => [
            ([a]) => {
              // rows 1…2n of [0; a; a] along axis 0 are a twice; reshape to (2, …), reverse the rest
              const c = concat(
                [
                  pad(
                    a!,
                    s.map((_, i) => (i === 0 ? [1, 0] : [0, 0]) as [number, number]),
                  ),
                  a!,
                ],
                0,
              );
              const twice = reshape(slice(c, [1]), [2, ...s]);
              const reversed = s.map((_, i) => s.length - 1 - i);
              const t = transpose(twice, [0, ...reversed.map((i) => i + 1)]);
              return square(mul(t, transpose(a!, reversed)));
            },
            [uniform(r, s)],
          ],
        ],
        [
          'crossEntropy',
          1,
          (r, s) => {
            const lead = s.slice(0, -1);
            const classes = s[s.length - 1]! + 1;
            const t = new Int32Array(lead.reduce((n, d) => n * d, 1)).map(() => r.int(classes));
            const targets = tensor(t, lead);
            return [([a]) => crossEntropy(a!, targets), [uniform(r, [...lead, classes])]];
          },
        ],
      ];
      for (const [name, minRank, make] of cases) {
        it(name, () => {
          forShapes(backend, minRank, (rng, shape) => {
            const [f, inputs] = make(rng, shape);
            secondOrderCheck(rng, f, inputs);
          });
        });
      }
      it('matmul with every transpose combination and broadcast batch axes', () => {
        fc.assert(
          fc.property(seedArb, fc.boolean(), fc.boolean(), (seed, ta, tb) =>
            withBackend(backend, () =>
              tidy(() => {
                const rng = new Rng(seed);
                const a = uniform(rng, ta ? [2, 1, 4, 3] : [2, 1, 3, 4]);
                const b = uniform(rng, tb ? [3, 2, 4] : [3, 4, 2]);
                secondOrderCheck(
                  rng,
                  ([p, q]) => square(matmul(p!, q!, { transposeA: ta, transposeB: tb })),
                  [a, b],
                );
              }),
            ),
          ),
          { numRuns: 8 },
        );
      });
      it('broadcasting binary ops (mul, div) with size-1 axes', () => {
        fc.assert(
          fc.property(seedArb, broadcastPairArb, (seed, [sa, sb]) =>
            withBackend(backend, () =>
              tidy(() => {
                const rng = new Rng(seed);
                secondOrderCheck(rng, ([p, q]) => div(mul(p!, q!), add(square(q!), 1)), [
                  uniform(rng, sa),
                  uniform(rng, sb),
                ]);
              }),
            ),
          ),
          { numRuns: 12 },
        );
      });
    });
  });
}
