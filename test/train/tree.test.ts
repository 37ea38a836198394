import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dispose, type Tensor, tensor, tidy, withBackend } from '../../src/index.js';
import { adamw, flattenTree, unflattenInto } from '../../src/train/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { copyOf, floatOf, values } from './util.js';

for (const backend of backendsUnderTest()) {
  const dtype = floatOf(backend);
  const run = (fn: () => void) => () => withBackend(backend, fn);
  const model = () => ({
    embed: tensor([1, 2, 3, 4, 5, 6], [3, 2], { dtype }),
    layers: [
      { wq: tensor([1, 0, 0, 1], [2, 2], { dtype }), gate: { bias: tensor([0.5], [1], { dtype }) } },
      { wq: tensor([2, 0, 0, 2], [2, 2], { dtype }), gate: { bias: tensor([-0.5], [1], { dtype }) } },
    ],
    dim: 2,
    note: null,
  });

  describe(`flattenTree / unflattenInto on ${backend}`, () => {
    it(
      'names leaves by dotted path under a prefix and skips non-tensor leaves',
      run(() => {
        const p = model();
        const flat = flattenTree(p, 'model');
        assert.deepEqual(Object.keys(flat), [
          'model.embed',
          'model.layers.0.wq',
          'model.layers.0.gate.bias',
          'model.layers.1.wq',
          'model.layers.1.gate.bias',
        ]);
        assert.equal(flat['model.layers.1.wq'], p.layers[1]!.wq, 'no copies');
        assert.deepEqual(Object.keys(flattenTree(p.layers)), ['0.wq', '0.gate.bias', '1.wq', '1.gate.bias']);
        assert.deepEqual(Object.keys(flattenTree(p.embed, 'e')), ['e']);
        dispose(p);
      }),
    );

    it(
      'round-trips into the template structure, copying its non-tensor leaves',
      run(() => {
        const p = model();
        const flat: Record<string, Tensor> = {};
        for (const [name, t] of Object.entries(flattenTree(p, 'model'))) flat[name] = copyOf(t);
        const back = unflattenInto(p, flat, 'model');
        assert.equal(back.dim, 2);
        assert.equal(back.note, null);
        assert.ok(Array.isArray(back.layers));
        assert.equal(back.layers[0]!.gate.bias, flat['model.layers.0.gate.bias']);
        assert.deepEqual(values(back.layers[1]!.wq), [2, 0, 0, 2]);
        assert.deepEqual(values(back.embed), [1, 2, 3, 4, 5, 6]);
        dispose([p, flat]);
      }),
    );

    it(
      'ignores entries outside the prefix and rejects missing, mismatched and extra ones by name',
      run(() => {
        const p = model();
        const flat: Record<string, Tensor> = { ...flattenTree(p, 'model'), 'opt.m.embed': p.embed };
        assert.equal(unflattenInto(p, flat, 'model').embed, p.embed);
        const { 'model.layers.1.gate.bias': _dropped, ...missing } = flat;
        assert.throws(
          () => unflattenInto(p, missing, 'model'),
          /missing entry 'model\.layers\.1\.gate\.bias' \(expected float\d\d \[1\]\) in the flat record under 'model'; it has 'model\.embed'/,
        );
        const wrongShape = tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype });
        assert.throws(
          () => unflattenInto(p, { ...flat, 'model.embed': wrongShape }, 'model'),
          /entry 'model\.embed' is float\d\d \[2, 3\] but the template expects float\d\d \[3, 2\]/,
        );
        const wrongType = tensor(new Int32Array(6), [3, 2]);
        assert.throws(
          () => unflattenInto(p, { ...flat, 'model.embed': wrongType }, 'model'),
          /entry 'model\.embed' is int32 \[3, 2\] but the template expects float/,
        );
        assert.throws(
          () => unflattenInto(p, { ...flat, 'model.layers.2.wq': p.embed }, 'model'),
          /under 'model' has entries the template does not: 'model\.layers\.2\.wq'/,
        );
        assert.throws(
          () => unflattenInto(p, { ...flattenTree(p), extra: p.embed }),
          /the flat record has entries the template does not: 'extra'/,
        );
        assert.throws(
          () => unflattenInto(p, { ...flat, 'model.dim': 3 as never }, 'model'),
          /template does not: 'model\.dim'/,
        );
        assert.throws(
          () => unflattenInto({ w: p.embed }, { w: [1, 2] as never }),
          /entry 'w' is not a Tensor/,
        );
        dispose([p, wrongShape, wrongType]);
      }),
    );

    it(
      'rejects names that collide and a bare tensor without a prefix',
      run(() => {
        const a = tensor([1], [1], { dtype });
        assert.throws(() => flattenTree({ 'x.y': a, x: { y: a } }), /two leaves are both named 'x\.y'/);
        assert.throws(() => flattenTree(a), /bare tensor needs a non-empty prefix/);
        dispose(a);
      }),
    );

    it(
      'saves and restores optimizer state so a resumed run continues identically',
      run(() => {
        const opt = adamw({ lr: 0.05, weightDecay: 0.1 });
        const grad = (k: number) => ({
          w: tensor([Math.sin(k), Math.cos(k), 0.5, -k / 10], [2, 2], { dtype }),
          b: tensor([k / 7, -1], [2], { dtype }),
        });
        let params = { w: tensor([1, -1, 2, 0.5], [2, 2], { dtype }), b: tensor([0.1, 0.2], [2], { dtype }) };
        let state = opt.init(params);
        const steps = (from: number, to: number) => {
          for (let k = from; k < to; k++) {
            tidy(() => {
              ({ params, state } = opt.update(params, grad(k), state));
            });
          }
        };
        steps(0, 3);
        // A checkpoint: copies of the flat tensors, the step as metadata.
        const flat: Record<string, Tensor> = {};
        for (const [n, t] of Object.entries({
          ...flattenTree(params, 'model'),
          ...flattenTree(state, 'opt'),
        })) {
          flat[n] = copyOf(t);
        }
        assert.deepEqual(Object.keys(flat).sort(), [
          'model.b',
          'model.w',
          'opt.m.b',
          'opt.m.w',
          'opt.v.b',
          'opt.v.w',
        ]);
        const savedStep = state.step;
        steps(3, 6);
        const uninterrupted = { params, state };
        // Resume: the live trees serve as templates (only their shapes and dtypes are read).
        params = unflattenInto(uninterrupted.params, flat, 'model');
        state = { ...unflattenInto(uninterrupted.state, flat, 'opt'), step: savedStep };
        steps(3, 6);
        assert.deepEqual(values(params.w), values(uninterrupted.params.w));
        assert.deepEqual(values(params.b), values(uninterrupted.params.b));
        assert.deepEqual(values(state.v!.w), values(uninterrupted.state.v!.w));
        assert.equal(state.step, 6);
        dispose([params, state, uninterrupted]);
      }),
    );
  });
}
