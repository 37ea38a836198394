import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dispose, memory, type Tensor, tensor, tidy, withBackend } from '../../src/index.js';
import { adamw, type OptimizerState, sgd } from '../../src/train/index.js';
import { tolerance } from '../helpers/backends.js';
import { assertClose, floatCases, values } from './util.js';

// ---------------------------------------------------------------------------------------------
// Plain float64 references, written from the equations and sharing no code with the module.
// ---------------------------------------------------------------------------------------------

interface AdamRef {
  p: number[];
  m: number[];
  v: number[];
}

/** AdamW as Loshchilov & Hutter state it, with PyTorch's lr-scaled decoupled decay. */
function adamwReference(
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  lrs: readonly number[],
  h: { beta1: number; beta2: number; eps: number; weightDecay: number; decay: boolean },
): AdamRef {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k]!;
    for (let i = 0; i < p.length; i++) {
      m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g[i]!;
      v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g[i]! * g[i]!;
      const mHat = m[i]! / (1 - h.beta1 ** t);
      const vHat = v[i]! / (1 - h.beta2 ** t);
      const decay = h.decay ? lr * h.weightDecay * p[i]! : 0;
      p[i] = p[i]! - decay - (lr * mHat) / (Math.sqrt(vHat) + h.eps);
    }
  });
  return { p, m, v };
}

function sgdReference(
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  lr: number,
  momentum: number,
): { p: number[]; b: number[] } {
  const p = [...p0];
  const b = p.map(() => 0);
  for (const g of grads) {
    for (let i = 0; i < p.length; i++) {
      b[i] = momentum * b[i]! + g[i]!;
      p[i] = p[i]! - lr * (momentum > 0 ? b[i]! : g[i]!);
    }
  }
  return { p, b };
}

// Five steps of hand-picked gradients: mixed signs and scales, a zero, a sign flip mid-way.
const W0 = [0.5, -1.25, 2, 0.75, -0.3, 1.1];
const B0 = [0.2, -0.4, 0.9];
const GW = [
  [0.1, -0.2, 0.3, 0, 1.5, -0.05],
  [0.12, -0.1, -0.3, 0, 1.2, -0.07],
  [-0.4, 0.25, 0.2, 0, 0.9, 0.01],
  [0.05, 0.3, -0.6, 0, -2, 0.02],
  [0.2, -0.15, 0.1, 0, 0.4, -0.03],
];
const GB = [
  [1, -0.5, 0.02],
  [0.8, -0.4, -0.01],
  [0.3, 0.6, 0.03],
  [-0.2, 0.1, 0.05],
  [0.5, -0.9, -0.04],
];
const LRS = [0.1, 0.05, 0.08, 0.02, 0.1];
const H = { beta1: 0.8, beta2: 0.95, eps: 1e-8, weightDecay: 0.5 };

interface WB {
  w: Tensor;
  b: Tensor;
}

for (const { backend, dtype } of floatCases()) {
  const tol = dtype === 'float64' ? 1e-12 : 10 * tolerance(dtype);
  const run = (fn: () => void | Promise<void>) => () => withBackend(backend, fn);
  const make = (): WB => ({ w: tensor(W0, [2, 3], { dtype }), b: tensor(B0, [3], { dtype }) });

  /** Five updates of {w (2×3), b (3)} with the fixed gradients; each step inside tidy. */
  function fiveSteps(
    opt: ReturnType<typeof adamw>,
    perStepLr: boolean,
  ): { params: WB; state: OptimizerState<WB> } {
    let params = make();
    let state = opt.init(params);
    for (let k = 0; k < 5; k++) {
      tidy(() => {
        const grads = { w: tensor(GW[k]!, [2, 3], { dtype }), b: tensor(GB[k]!, [3], { dtype }) };
        ({ params, state } = opt.update(params, grads, state, perStepLr ? LRS[k] : undefined));
      });
    }
    return { params, state };
  }

  describe(`adamw on ${backend} (${dtype})`, () => {
    it(
      'matches the float64 reference for 5 steps without weight decay',
      run(async () => {
        const { params, state } = fiveSteps(adamw({ ...H, weightDecay: 0 }), true);
        const rw = adamwReference(W0, GW, LRS, { ...H, weightDecay: 0, decay: false });
        const rb = adamwReference(B0, GB, LRS, { ...H, weightDecay: 0, decay: false });
        assertClose(await values(params.w), rw.p, tol, 'w');
        assertClose(await values(params.b), rb.p, tol, 'b');
        assertClose(await values(state.m!.w), rw.m, tol, 'm.w');
        assertClose(await values(state.v!.w), rw.v, tol, 'v.w');
        assertClose(await values(state.m!.b), rb.m, tol, 'm.b');
        assertClose(await values(state.v!.b), rb.v, tol, 'v.b');
        assert.equal(state.step, 5);
        dispose([params, state]);
      }),
    );

    it(
      'applies decoupled weight decay to matrices only by default',
      run(async () => {
        const { params, state } = fiveSteps(adamw(H), true);
        const rw = adamwReference(W0, GW, LRS, { ...H, decay: true });
        const rb = adamwReference(B0, GB, LRS, { ...H, decay: false });
        assertClose(await values(params.w), rw.p, tol, 'w (decayed)');
        assertClose(await values(params.b), rb.p, tol, 'b (rank 1: not decayed)');
        // The decay must actually matter at this tolerance, or the test above proves nothing.
        const undecayed = adamwReference(W0, GW, LRS, { ...H, decay: false }).p;
        assert.ok(Math.abs(undecayed[2]! - rw.p[2]!) > 0.05);
        // Decoupled means the moments never see the decay term: they are those of the raw grads.
        assertClose(await values(state.m!.w), rw.m, tol, 'm.w');
        dispose([params, state]);
      }),
    );

    it(
      'decays exactly what a custom decayMask selects, by path',
      run(async () => {
        const seen: string[] = [];
        const opt = adamw({
          ...H,
          decayMask: (path) => {
            seen.push(path);
            return path === 'b';
          },
        });
        const { params, state } = fiveSteps(opt, true);
        assertClose(await values(params.w), adamwReference(W0, GW, LRS, { ...H, decay: false }).p, tol, 'w');
        assertClose(await values(params.b), adamwReference(B0, GB, LRS, { ...H, decay: true }).p, tol, 'b');
        assert.deepEqual([...new Set(seen)].sort(), ['b', 'w']);
        dispose([params, state]);
      }),
    );

    it(
      'uses the constructor lr when update is given none, and the default hyper-parameters',
      run(async () => {
        const { params, state } = fiveSteps(adamw({ lr: 0.03 }), false);
        const defaults = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
        const lrs = [0.03, 0.03, 0.03, 0.03, 0.03];
        assertClose(
          await values(params.w),
          adamwReference(W0, GW, lrs, { ...defaults, decay: true }).p,
          tol,
          'w',
        );
        assertClose(
          await values(params.b),
          adamwReference(B0, GB, lrs, { ...defaults, decay: false }).p,
          tol,
          'b',
        );
        dispose([params, state]);
      }),
    );

    it(
      'passes dotted paths of nested params to the mask',
      run(async () => {
        const seen: string[] = [];
        const opt = adamw({
          lr: 0.1,
          decayMask: (path, t) => {
            seen.push(`${path}:${t.rank}`);
            return true;
          },
        });
        let params = {
          layers: [{ wq: tensor([1, 2, 3, 4], [2, 2], { dtype }) }],
          norm: tensor([1, 1], [2], { dtype }),
        };
        let state = opt.init(params);
        tidy(() => {
          const grads = {
            layers: [{ wq: tensor([1, 1, 1, 1], [2, 2], { dtype }) }],
            norm: tensor([1, 1], [2], { dtype }),
          };
          ({ params, state } = opt.update(params, grads, state));
        });
        assert.deepEqual(seen.sort(), ['layers.0.wq:2', 'norm:1']);
        dispose([params, state]);
      }),
    );

    it(
      'releases the old moments and params, keeps the new ones, and holds memory steady',
      run(async () => {
        const opt = adamw({ lr: 0.1 });
        let params = make();
        let state = opt.init(params);
        const before = memory();
        for (let k = 0; k < 5; k++) {
          const old = { params, state };
          tidy(() => {
            const grads = { w: tensor(GW[k]!, [2, 3], { dtype }), b: tensor(GB[k]!, [3], { dtype }) };
            // Not returned from tidy on purpose: update's results must survive regardless.
            const r = opt.update(params, grads, state);
            params = r.params;
            state = r.state;
          });
          for (const t of [old.params.w, old.params.b, old.state.m!.w, old.state.v!.b]) assert.ok(t.disposed);
          for (const t of [params.w, params.b, state.m!.w, state.v!.b]) assert.ok(!t.disposed);
          assert.deepEqual(memory(), before);
        }
        // Outside any tidy, too: update frees its own intermediates (scalars, m̂, the step).
        const grads = { w: tensor(GW[0]!, [2, 3], { dtype }), b: tensor(GB[0]!, [3], { dtype }) };
        ({ params, state } = opt.update(params, grads, state));
        dispose(grads);
        assert.deepEqual(memory(), before);
        dispose([params, state]);
      }),
    );

    it(
      'keeps the old params with disposeOld: false',
      run(async () => {
        const opt = adamw({ lr: 0.1, disposeOld: false });
        const params = make();
        const state = opt.init(params);
        const r = tidy(() =>
          opt.update(
            params,
            { w: tensor(GW[0]!, [2, 3], { dtype }), b: tensor(GB[0]!, [3], { dtype }) },
            state,
          ),
        );
        assert.ok(!params.w.disposed);
        assertClose(await values(params.w), W0, tol, 'old w unchanged');
        assert.ok(state.m!.w.disposed, 'the consumed state is released regardless');
        assert.notDeepEqual(await values(r.params.w), W0);
        dispose([params, r]);
      }),
    );

    it(
      'leaves a parameter with a null gradient, and its moments, untouched',
      run(async () => {
        const opt = adamw({ lr: 0.1 });
        const params = make();
        const state = opt.init(params);
        const r = tidy(() =>
          opt.update(params, { w: tensor(GW[0]!, [2, 3], { dtype }), b: null } as never, state),
        );
        assert.equal(r.params.b, params.b);
        assert.equal(r.state.m!.b, state.m!.b);
        assert.ok(!params.b.disposed && !state.v!.b.disposed);
        assert.ok(params.w.disposed && state.m!.w.disposed);
        dispose(r);
      }),
    );

    it(
      'carries integer tensors and other non-float leaves through with null moments',
      run(async () => {
        const opt = adamw({ lr: 0.1 });
        const ids = tensor(new Int32Array([3, 1]), [2]);
        let params = { w: tensor([1, 2], [2], { dtype }), ids, name: 'x' };
        let state = opt.init(params);
        assert.equal(state.m!.ids, null);
        tidy(() => {
          ({ params, state } = opt.update(
            params,
            { w: tensor([1, 1], [2], { dtype }), ids: null, name: null } as never,
            state,
          ));
        });
        assert.equal(params.ids, ids);
        assert.equal(params.name, 'x');
        assert.ok(!ids.disposed);
        dispose([params, state]);
      }),
    );

    it(
      'rejects mismatched trees, consumed state, stale params and tied tensors with clear errors',
      run(async () => {
        const opt = adamw({ lr: 0.1 });
        const params = make();
        const state = opt.init(params);
        tidy(() => {
          const gw = tensor(GW[0]!, [2, 3], { dtype });
          assert.throws(
            () => opt.update(params, { w: gw } as never, state),
            /grads does not have the structure of params at the root/,
          );
          assert.throws(
            () => opt.update(params, { w: gw, b: tensor([1, 2], [2], { dtype }) }, state),
            /grads at 'b' is float\d\d \[2\] but the parameter is float\d\d \[3\]/,
          );
          assert.throws(
            () => opt.update({ w: params.w, b: params.w }, { w: gw, b: gw }, state),
            /same tensor is at 'w' and 'b'/,
          );
          assert.ok(!params.w.disposed && !state.m!.w.disposed, 'a rejected update changes nothing');
          const r = opt.update(params, { w: gw, b: tensor(GB[0]!, [3], { dtype }) }, state);
          assert.throws(
            () => opt.update(r.params, { w: gw, b: gw } as never, state),
            /state\.m at 'w' was disposed \(was this state already passed/,
          );
          assert.throws(
            () => opt.update(params, { w: gw, b: gw } as never, r.state),
            /parameter 'w' was disposed/,
          );
          assert.throws(() => opt.update(r.params, r.params, { ...r.state, v: null }), /state\.v is missing/);
          dispose(r);
        });
      }),
    );
  });

  describe(`sgd on ${backend} (${dtype})`, () => {
    for (const momentum of [0, 0.9]) {
      it(
        `matches the float64 reference for 5 steps (momentum ${momentum})`,
        run(async () => {
          const opt = sgd({ lr: 0.05, momentum });
          let params = make();
          let state = opt.init(params);
          assert.equal(state.v, null);
          assert.equal(state.m === null, momentum === 0);
          for (let k = 0; k < 5; k++) {
            tidy(() => {
              const grads = { w: tensor(GW[k]!, [2, 3], { dtype }), b: tensor(GB[k]!, [3], { dtype }) };
              ({ params, state } = opt.update(params, grads, state));
            });
          }
          const rw = sgdReference(W0, GW, 0.05, momentum);
          assertClose(await values(params.w), rw.p, tol, 'w');
          assertClose(await values(params.b), sgdReference(B0, GB, 0.05, momentum).p, tol, 'b');
          if (momentum > 0) assertClose(await values(state.m!.w), rw.b, tol, 'momentum buffer');
          assert.equal(state.step, 5);
          dispose([params, state]);
        }),
      );
    }

    it(
      'takes a per-step lr and needs one from somewhere',
      run(async () => {
        const opt = sgd();
        const params = { w: tensor([1, 2], [2], { dtype }) };
        const state = opt.init(params);
        const g = { w: tensor([1, -1], [2], { dtype }) };
        assert.throws(() => opt.update(params, g, state), /sgd: no learning rate/);
        const r = opt.update(params, g, state, 0.5);
        assertClose(await values(r.params.w), [0.5, 2.5], tol, 'w');
        dispose([r, g]);
      }),
    );
  });
}

describe('optimizer options', () => {
  it('rejects invalid hyper-parameters', () => {
    assert.throws(() => adamw({ lr: -1 }), /adamw: learning rate must be finite and ≥ 0, got -1/);
    assert.throws(() => adamw({ lr: Number.NaN }), /learning rate must be finite/);
    assert.throws(() => adamw({ beta1: 1 }), /beta1 must be in \[0, 1\), got 1/);
    assert.throws(() => adamw({ beta2: Number.NaN }), /beta2 must be in/);
    assert.throws(() => adamw({ eps: 0 }), /eps must be finite and > 0/);
    assert.throws(() => adamw({ weightDecay: -0.1 }), /weightDecay must be finite and ≥ 0/);
    assert.throws(() => sgd({ momentum: 1.5 }), /sgd: momentum must be in \[0, 1\)/);
    const opt = adamw();
    const params = { w: tensor([1], [1]) };
    const state = opt.init(params);
    assert.throws(
      () => opt.update(params, params, state, Number.POSITIVE_INFINITY),
      /learning rate must be finite/,
    );
    assert.throws(
      () => opt.update(params, params, { ...state, step: 1.5 }),
      /state\.step must be an integer/,
    );
    assert.throws(() => sgd({ lr: 1 }).update(params, params, state), /state\.m should be null/);
    dispose([params, state]);
  });
});
