/**
 * The seeded generator: reproducible streams, state round trips, split streams, and the
 * moments of normal/uniform draws.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { Rng, withBackend } from '../../src/index.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { readAll } from '../helpers/read.js';
import { bestFloat } from './util.js';

const draw = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.nextUint32());

describe('Rng', () => {
  it('the same seed gives the same numbers', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        assert.deepEqual(draw(new Rng(seed), 16), draw(new Rng(seed), 16));
      }),
      { numRuns: 30 },
    );
    const a = new Rng(42);
    const b = new Rng(42);
    assert.deepEqual(
      Array.from({ length: 8 }, () => a.gaussian()),
      Array.from({ length: 8 }, () => b.gaussian()),
    );
  });

  it('different seeds give different numbers (including 0, negative and > 2³² seeds)', () => {
    const seeds = [0, 1, 2, -1, 42, 2 ** 32, 2 ** 32 + 1, 2 ** 40, 12345678901];
    const streams = seeds.map((s) => draw(new Rng(s), 4).join(','));
    assert.equal(new Set(streams).size, seeds.length, `streams collide: ${streams.join(' | ')}`);
    fc.assert(
      fc.property(fc.integer(), fc.integer(), (s1, s2) => {
        fc.pre(s1 !== s2);
        assert.notDeepEqual(draw(new Rng(s1), 4), draw(new Rng(s2), 4));
      }),
      { numRuns: 30 },
    );
    assert.throws(() => new Rng(Number.NaN), /Rng: seed must be a finite number/);
    assert.throws(() => new Rng([1, 2, 3]), /Rng: a state has four 32-bit words/);
  });

  it('state() round trip resumes the same stream', () => {
    fc.assert(
      fc.property(fc.integer(), fc.nat(50), (seed, skip) => {
        const rng = new Rng(seed);
        draw(rng, skip);
        rng.gaussian(); // also mid-stream after mixed draws
        const saved = rng.state();
        assert.equal(saved.length, 4);
        assert.ok(saved.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32));
        const continued = draw(rng, 8);
        assert.deepEqual(draw(new Rng(saved), 8), continued);
        assert.deepEqual(JSON.parse(JSON.stringify(saved)), saved, 'the state survives JSON');
      }),
      { numRuns: 30 },
    );
  });

  it('split() streams differ from the parent and from each other, and are reproducible', () => {
    const parent = new Rng(7);
    const c1 = parent.split();
    const c2 = parent.split();
    const p = draw(parent, 8);
    const s1 = draw(c1, 8);
    const s2 = draw(c2, 8);
    assert.notDeepEqual(s1, s2);
    assert.notDeepEqual(s1, p);
    assert.notDeepEqual(s2, p);
    const again = new Rng(7);
    assert.deepEqual(draw(again.split(), 8), s1);
    assert.deepEqual(draw(again.split(), 8), s2);
    assert.deepEqual(draw(again, 8), p);
  });

  it('next(), int() and shuffle() stay in range', () => {
    const rng = new Rng(3);
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < 20000; i++) {
      const u = rng.next();
      assert.ok(u >= 0 && u < 1);
      const k = rng.int(5);
      assert.ok(Number.isInteger(k) && k >= 0 && k < 5);
      counts[k]!++;
    }
    for (const c of counts) assert.ok(Math.abs(c - 4000) < 300, `int(5) counts ${counts}`);
    const items = Array.from({ length: 20 }, (_, i) => i);
    const shuffled = rng.shuffle([...items]);
    assert.deepEqual(
      [...shuffled].sort((a, b) => a - b),
      items,
    );
    assert.notDeepEqual(shuffled, items);
    assert.throws(() => rng.int(0), /Rng.int: n must be a positive integer, got 0/);
  });

  for (const backend of backendsUnderTest()) {
    const dtype = bestFloat(backend);
    it(`normal() and uniform() tensors have the right moments over 1e5 draws (${backend}, ${dtype})`, async () => {
      await withBackend(backend, async () => {
        const n = 100_000;
        const drawn = await readAll(() => {
          const rng = new Rng(2024);
          const x = rng.normal([n], { dtype });
          assert.deepEqual([...x.shape], [n]);
          assert.equal(x.dtype, dtype);
          return {
            x,
            shifted: rng.normal([n], { mean: 3, std: 0.5, dtype }),
            u: rng.uniform([n], { low: -2, high: 4, dtype }),
            again: [new Rng(5).normal([4, 3], { dtype }), new Rng(5).normal([4, 3], { dtype })],
          };
        });
        const stats = (d: ArrayLike<number>) => {
          let s = 0;
          let s2 = 0;
          for (let i = 0; i < d.length; i++) {
            s += d[i]!;
            s2 += d[i]! * d[i]!;
          }
          const mean = s / d.length;
          return { mean, std: Math.sqrt(s2 / d.length - mean * mean) };
        };
        const standard = stats(drawn.x);
        assert.ok(Math.abs(standard.mean) < 0.02, `mean ${standard.mean}`);
        assert.ok(Math.abs(standard.std - 1) < 0.02, `std ${standard.std}`);
        const shifted = stats(drawn.shifted);
        assert.ok(Math.abs(shifted.mean - 3) < 0.01, `mean ${shifted.mean}`);
        assert.ok(Math.abs(shifted.std - 0.5) < 0.01, `std ${shifted.std}`);
        const u = drawn.u;
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of u) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        assert.ok(lo >= -2 && hi <= 4 && lo < -1.99 && hi > 3.99, `range [${lo}, ${hi}]`);
        const us = stats(u);
        assert.ok(Math.abs(us.mean - 1) < 0.03, `uniform mean ${us.mean}`);
        assert.ok(Math.abs(us.std - Math.sqrt(3)) < 0.03, `uniform std ${us.std}`);
        // the same seed gives the same tensor
        assert.deepEqual(drawn.again[0], drawn.again[1]);
      });
    });
  }
});
