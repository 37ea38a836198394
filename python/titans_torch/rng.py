"""titans-ts's seeded generator (src/engine/random.ts), bit for bit: xoshiro128** seeded through a
splitmix-style murmur3 finaliser. The trainer draws its batches with it, so `--seed S` samples the
same windows as `titans train --seed S`, and its four-word state in trainer.json resumes either.

    rng = Rng(1)
    rng.int(100)      # the same number titans-ts's new Rng(1).int(100) gives
    rng.state()       # [w0, w1, w2, w3]
"""

import math

_M32 = 0xFFFFFFFF


def _imul(a, b):
    return (a * b) & _M32


def _rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & _M32


def _mix32(z):
    z = _imul(z ^ (z >> 16), 0x85EBCA6B)
    z = _imul(z ^ (z >> 13), 0xC2B2AE35)
    return (z ^ (z >> 16)) & _M32


class Rng:
    """Seed with a number, or restore with a state of four 32-bit words."""

    def __init__(self, seed=0):
        if isinstance(seed, (list, tuple)):
            if len(seed) != 4:
                raise ValueError("Rng: a state has four 32-bit words")
            self.s = [int(w) & _M32 for w in seed]
        else:
            if not math.isfinite(seed):
                raise ValueError(f"Rng: seed must be a finite number, got {seed}")
            whole = int(seed)  # Math.trunc
            x = (whole & _M32) ^ 0x9E3779B9
            hi = math.floor(whole / 2**32) & _M32
            self.s = []
            for i in range(4):
                x = (x + 0x9E3779B9) & _M32
                extra = 0 if hi == 0 else _mix32((hi + _imul(i + 1, 0x9E3779B9)) & _M32)
                self.s.append(_mix32(x) ^ extra)
        if not any(self.s):
            self.s[0] = 1

    def state(self):
        return list(self.s)

    def next_uint32(self):
        s = self.s
        result = _imul(_rotl(_imul(s[1], 5), 7), 9)
        t = (s[1] << 9) & _M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 11)
        return result

    def next(self):
        """Uniform in [0, 1) with 53 random bits."""
        hi = self.next_uint32() >> 5
        lo = self.next_uint32() >> 6
        return (hi * 67108864 + lo) / 9007199254740992

    def int(self, n):
        """Uniform integer in [0, n)."""
        if not (isinstance(n, int) and n > 0):
            raise ValueError(f"Rng.int: n must be a positive integer, got {n}")
        return math.floor(self.next() * n)
