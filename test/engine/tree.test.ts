import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  adamw,
  dispose,
  flattenTree,
  forEachLeaf,
  grad,
  isContainer,
  mapLeaves,
  mapLeavesWith,
  mapTensors,
  memory,
  mul,
  Rng,
  sum,
  Tensor,
  tensor,
  tensorLeaves,
  tidy,
  unflattenInto,
  withBackend,
} from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { copyOf, floatOf, values } from '../train/util.js';

describe('tree: one definition of containers and leaves', () => {
  it('containers are arrays and plain objects; everything else is a leaf', () => {
    const t = tensor([1], [1]);
    for (const c of [[], [1], {}, { a: 1 }, Object.create(null)]) assert.ok(isContainer(c));
    for (const leaf of [
      t,
      null,
      undefined,
      0,
      'a',
      true,
      new Float32Array(2),
      new Map(),
      new Rng(1),
      new Date(0),
    ]) {
      assert.equal(isContainer(leaf), false, String(leaf));
    }
    t.dispose();
  });

  it('walks depth first, arrays by index and objects in key order, visiting every kind of leaf', () => {
    const a = tensor([1], [1]);
    const b = tensor([2], [1]);
    const rng = new Rng(3);
    const tree = { z: [a, null, { u: undefined, b }], a: 7, m: rng, n: [[], {}] };
    const seen: [string, unknown][] = [];
    forEachLeaf(tree, (leaf, path) => seen.push([path, leaf]));
    assert.deepEqual(seen, [
      ['z.0', a],
      ['z.1', null],
      ['z.2.u', undefined],
      ['z.2.b', b],
      ['a', 7],
      ['m', rng],
    ]);
    const mapped = mapLeaves(tree, (leaf, path) => (leaf instanceof Tensor ? path : leaf)) as typeof tree;
    assert.deepEqual(mapped, { z: ['z.0', null, { u: undefined, b: 'z.2.b' }], a: 7, m: rng, n: [[], {}] });
    assert.ok(Array.isArray(mapped.z) && Array.isArray(mapped.n[0]), 'arrays stay arrays');
    assert.deepEqual(
      mapTensors(tree, (x) => x),
      tree,
      'mapTensors leaves other leaves alone',
    );
    dispose([a, b]);
  });

  it('tensorLeaves lists each tensor once, where it first appears, and never looks inside a class instance', () => {
    const a = tensor([1], [1]);
    const b = tensor([2], [1]);
    const hidden = tensor([3], [1]);
    class Holder {
      readonly t = hidden;
    }
    assert.deepEqual(tensorLeaves({ x: [b, a], y: a, z: b, h: new Holder() }), [b, a]);
    assert.deepEqual(tensorLeaves(a), [a]);
    assert.deepEqual(tensorLeaves(null), []);
    dispose([a, b, hidden]);
  });

  it('mapLeavesWith walks companions alongside, null standing for a missing subtree', () => {
    const tree = { w: [1, 2], b: 3 };
    const out = mapLeavesWith(
      tree,
      [{ w: [10, 20], b: 30 }, null, { w: null, b: 5 }],
      (leaf, others, path) => [path, leaf, ...others],
    );
    assert.deepEqual(out, {
      w: [
        ['w.0', 1, 10, null, null],
        ['w.1', 2, 20, null, null],
      ],
      b: ['b', 3, 30, null, 5],
    });
    assert.throws(
      () => mapLeavesWith(tree, [{ w: [1], b: 3 }], (leaf) => leaf),
      /companion tree 0 does not have the structure of the tree at 'w' \(the tree has an array of 2\)/,
    );
    assert.throws(
      () => mapLeavesWith(tree, [{ w: [1, 2] }], (leaf) => leaf),
      /at the root \(the tree has keys w, b\)/,
    );
    assert.throws(() => mapLeavesWith([1], [{ 0: 1 }], (leaf) => leaf), /an array of 1/);
    const custom = (j: number, path: string): never => {
      throw new TypeError(`custom ${j} ${path}`);
    };
    assert.throws(() => mapLeavesWith({ a: { b: 1 } }, [{ a: 2 }], (leaf) => leaf, custom), /custom 0 a/);
  });

  it('tidy keeps the tensors of a nested result; grad gives null to non-tensor leaves', async () => {
    const before = memory().tensors;
    const w = tensor([1, 2], [2]);
    const kept = tidy(() => ({ list: [mul(w, 2), { deep: mul(w, 3) }], label: 'x', none: null }));
    assert.equal(memory().tensors, before + 3);
    const g = grad((p: { w: Tensor; n: number; s: null; m: Rng }) => sum(mul(p.w, p.n)))({
      w,
      n: 4,
      s: null,
      m: new Rng(1),
    });
    assert.deepEqual(Array.from(await g.w.data()), [4, 4]);
    assert.equal(g.n, null);
    assert.equal(g.s, null);
    assert.equal(g.m, null, 'a class instance is a leaf: its gradient is null');
    dispose([w, kept, g]);
    assert.equal(memory().tensors, before);
  });
});

for (const backend of backendsUnderTest()) {
  const dtype = floatOf(backend);
  const run = (fn: () => void | Promise<void>) => () => withBackend(backend, fn);
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
      run(async () => {
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
      run(async () => {
        const p = model();
        const flat: Record<string, Tensor> = {};
        for (const [name, t] of Object.entries(flattenTree(p, 'model'))) flat[name] = copyOf(t);
        const back = unflattenInto(p, flat, 'model');
        assert.equal(back.dim, 2);
        assert.equal(back.note, null);
        assert.ok(Array.isArray(back.layers));
        assert.equal(back.layers[0]!.gate.bias, flat['model.layers.0.gate.bias']);
        assert.deepEqual(await values(back.layers[1]!.wq), [2, 0, 0, 2]);
        assert.deepEqual(await values(back.embed), [1, 2, 3, 4, 5, 6]);
        dispose([p, flat]);
      }),
    );

    it(
      'ignores entries outside the prefix and rejects missing, mismatched and extra ones by name',
      run(async () => {
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
      run(async () => {
        const a = tensor([1], [1], { dtype });
        assert.throws(() => flattenTree({ 'x.y': a, x: { y: a } }), /two leaves are both named 'x\.y'/);
        assert.throws(() => flattenTree(a), /bare tensor needs a non-empty prefix/);
        dispose(a);
      }),
    );

    it(
      'saves and restores optimizer state so a resumed run continues identically',
      run(async () => {
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
        assert.deepEqual(await values(params.w), await values(uninterrupted.params.w));
        assert.deepEqual(await values(params.b), await values(uninterrupted.params.b));
        assert.deepEqual(await values(state.v!.w), await values(uninterrupted.state.v!.w));
        assert.equal(state.step, 6);
        dispose([params, state, uninterrupted]);
      }),
    );
  });
}
