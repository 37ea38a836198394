import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constantLr, warmupCosine } from '../../src/train/index.js';

const close = (a: number, e: number) =>
  assert.ok(Math.abs(a - e) <= 1e-15 * Math.max(1, Math.abs(e)), `${a} ≠ ${e}`);

describe('warmupCosine', () => {
  const lr = warmupCosine({ peakLr: 1e-3, warmupSteps: 10, totalSteps: 110, minLr: 1e-5 });

  it('ramps up linearly from near 0 to the peak over the warm-up', () => {
    close(lr(0), 1e-4); // the first update already moves
    close(lr(4), 5e-4); // mid warm-up
    close(lr(9), 1e-3); // last warm-up step reaches the peak
    for (let s = 1; s < 10; s++) assert.ok(lr(s) > lr(s - 1));
  });

  it('decays along a cosine to minLr at totalSteps and stays there', () => {
    close(lr(10), 1e-3); // start of the decay
    close(lr(35), 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + Math.cos(Math.PI / 4)));
    close(lr(60), 1e-5 + (1e-3 - 1e-5) / 2); // mid decay
    close(lr(110), 1e-5); // end
    close(lr(111), 1e-5);
    close(lr(1e6), 1e-5);
    for (let s = 11; s <= 110; s++) assert.ok(lr(s) < lr(s - 1), `not decreasing at ${s}`);
  });

  it('defaults minLr to 0 and allows no warm-up', () => {
    const f = warmupCosine({ peakLr: 2, warmupSteps: 0, totalSteps: 4 });
    close(f(0), 2);
    close(f(2), 1);
    assert.equal(f(4), 0);
    assert.equal(f(9), 0);
  });

  it('handles warm-up filling the whole run', () => {
    const f = warmupCosine({ peakLr: 1, warmupSteps: 4, totalSteps: 4, minLr: 0.5 });
    close(f(3), 1);
    close(f(4), 0.5);
  });

  it('rejects bad arguments', () => {
    const ok = { peakLr: 1, warmupSteps: 2, totalSteps: 10 };
    assert.throws(() => warmupCosine({ ...ok, peakLr: -1 }), /peakLr must be finite and ≥ 0, got -1/);
    assert.throws(
      () => warmupCosine({ ...ok, peakLr: Number.NaN }),
      /peakLr must be finite and ≥ 0, got NaN/,
    );
    assert.throws(() => warmupCosine({ ...ok, minLr: -0.1 }), /minLr must be finite/);
    assert.throws(() => warmupCosine({ ...ok, minLr: 2 }), /minLr 2 exceeds peakLr 1/);
    assert.throws(
      () => warmupCosine({ ...ok, warmupSteps: -1 }),
      /warmupSteps must be an integer ≥ 0, got -1/,
    );
    assert.throws(() => warmupCosine({ ...ok, warmupSteps: 1.5 }), /warmupSteps must be an integer/);
    assert.throws(
      () => warmupCosine({ ...ok, totalSteps: 0, warmupSteps: 0 }),
      /totalSteps must be an integer ≥ 1, got 0/,
    );
    assert.throws(() => warmupCosine({ ...ok, totalSteps: Number.NaN }), /totalSteps must be an integer/);
    assert.throws(() => warmupCosine({ ...ok, warmupSteps: 11 }), /warmupSteps 11 exceeds totalSteps 10/);
    const f = warmupCosine(ok);
    assert.throws(() => f(-1), /step must be finite and ≥ 0, got -1/);
    assert.throws(() => f(Number.NaN), /step must be finite and ≥ 0, got NaN/);
  });
});

describe('constantLr', () => {
  it('returns the same rate at every step and validates', () => {
    const f = constantLr(3e-4);
    assert.equal(f(0), 3e-4);
    assert.equal(f(123456), 3e-4);
    assert.throws(() => constantLr(-1), /constantLr: lr must be finite and ≥ 0, got -1/);
    assert.throws(() => constantLr(Number.POSITIVE_INFINITY), /lr must be finite/);
    assert.throws(() => f(Number.NaN), /step must be finite/);
  });
});
