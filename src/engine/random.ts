import { allocArray, type FloatDType } from './dtype.js';
import { tensor } from './ops/create.js';
import type { Shape } from './shape.js';
import { sizeOf } from './shape.js';
import type { Tensor } from './tensor.js';

/**
 * A seeded random number generator passed explicitly (no global state): xoshiro128** seeded
 * through splitmix32. Its state is four 32-bit words you can save and restore, so a resumed run
 * draws the same numbers.
 *
 * @example
 * const rng = new Rng(42);
 * const w = rng.normal([64, 256], { std: 0.02, dtype: 'float64' });
 * const child = rng.split(); // an independent stream, e.g. per layer
 */
export class Rng {
  private s: Uint32Array;

  constructor(seed: number | readonly number[] = 0) {
    this.s = new Uint32Array(4);
    if (typeof seed === 'number') {
      if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed must be a finite number, got ${seed}`);
      const whole = Math.trunc(seed);
      let x = (whole ^ 0x9e3779b9) >>> 0; // the low 32 bits
      // The bits above (two's complement for negative seeds) are hashed into every word, so that
      // seeds differing only there give unrelated streams; they are 0 for seeds in [0, 2³²).
      const hi = Math.floor(whole / 2 ** 32) >>> 0;
      for (let i = 0; i < 4; i++) {
        x = (x + 0x9e3779b9) >>> 0;
        this.s[i] = (mix32(x) ^ (hi === 0 ? 0 : mix32((hi + Math.imul(i + 1, 0x9e3779b9)) >>> 0))) >>> 0;
      }
    } else {
      if (seed.length !== 4) throw new RangeError('Rng: a state has four 32-bit words');
      this.s.set(seed);
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  /** The generator's state (four uint32 words) — restore with `new Rng(state)`. */
  state(): number[] {
    return [...this.s];
  }

  /** The next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0)
      throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller). */
  gaussian(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A new generator whose stream is independent of this one's continuation. */
  split(): Rng {
    return new Rng([this.nextUint32(), this.nextUint32(), this.nextUint32(), this.nextUint32() | 1]);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** A tensor of normal draws, mean 0 and standard deviation `std` (default 1). */
  normal(
    shape: Shape,
    options: { std?: number; mean?: number; dtype?: FloatDType; backend?: string } = {},
  ): Tensor {
    const dtype = options.dtype ?? 'float32';
    const data = allocArray(dtype, sizeOf(shape));
    const std = options.std ?? 1;
    const mean = options.mean ?? 0;
    for (let i = 0; i < data.length; i++) data[i] = mean + std * this.gaussian();
    return tensor(data, shape, { dtype, ...(options.backend ? { backend: options.backend } : {}) });
  }

  /** A tensor of uniform draws in [low, high). */
  uniform(
    shape: Shape,
    options: { low?: number; high?: number; dtype?: FloatDType; backend?: string } = {},
  ): Tensor {
    const dtype = options.dtype ?? 'float32';
    const data = allocArray(dtype, sizeOf(shape));
    const low = options.low ?? 0;
    const high = options.high ?? 1;
    for (let i = 0; i < data.length; i++) data[i] = low + (high - low) * this.next();
    return tensor(data, shape, { dtype, ...(options.backend ? { backend: options.backend } : {}) });
  }
}

/** The murmur3 32-bit finaliser (a bijection on uint32). */
function mix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
