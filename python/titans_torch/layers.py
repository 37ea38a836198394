"""The pieces every block is made of (SPEC §3-§4), the twin of src/models/layers.ts: multi-head
attention with RoPE, a persistent prefix and a window-bounded key/value cache; the SwiGLU MLP; the
gate ⊗ of MAC and MAG; RMSNorm.

Axis legend: B batch, T tokens, d model width, H attention heads, dh = d/H, n cached tokens,
N_p persistent tokens, f MLP hidden width. Parameter attribute names are titans-ts's tensor names
(wq, wGate, normY…), so a state_dict key is a checkpoint tensor name.
"""

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_SDPA = getattr(F, "scaled_dot_product_attention", None)  # torch >= 2


def rms_norm(x, scale, eps):
    """x / √(mean(x²) + ε) ⊙ scale over the last axis."""
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * scale


def l2_normalize(z, eps=1e-6):
    """SPEC §2.3: z / √(Σ z² + 1e−6) over the last axis (one head's vector)."""
    return z * torch.rsqrt((z * z).sum(-1, keepdim=True) + eps)


def split_heads(x, heads):
    """(B, T, H·dh) -> (B, H, T, dh)"""
    B, T, _ = x.shape
    return x.reshape(B, T, heads, -1).transpose(1, 2)


def merge_heads(x):
    """(B, H, T, dh) -> (B, T, H·dh)"""
    B, H, T, dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * dh)


@functools.lru_cache(maxsize=64)
def _rope_tables(start, n, dh, base, device, dtype):
    """cos, sin (n, dh/2) for positions start … start+n−1, computed in float64 (as titans-ts does)
    and cast to `dtype`."""
    half = dh // 2
    freq = torch.tensor([base ** ((-2 * i) / dh) for i in range(half)], dtype=torch.float64)
    angle = torch.arange(start, start + n, dtype=torch.float64)[:, None] * freq
    return angle.cos().to(device=device, dtype=dtype), angle.sin().to(device=device, dtype=dtype)


def rope(x, start, base):
    """SPEC §3 RoPE, "rotate half": features i and i + dh/2 of the token at position p (start + t)
    rotate by p · base^(−2i/dh). x (…, T, dh)."""
    T, dh = x.shape[-2], x.shape[-1]
    cos, sin = _rope_tables(int(start), T, dh, float(base), x.device, x.dtype)
    x1, x2 = x[..., : dh // 2], x[..., dh // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def visible(query_positions, key_positions, window, prefix):
    """(Tq, Tk) bool: key j is visible to query i iff j < prefix, or 0 ≤ q_i − k_j < window."""
    diff = query_positions[:, None] - key_positions[None, :]
    mask = diff >= 0
    if window != float("inf"):
        mask = mask & (diff < window)
    if prefix:
        mask[:, :prefix] = True
    return mask


def attend(q, k, v, mask):
    """Softmax attention, scale 1/√dh, masked; q (B, H, Tq, dh), k, v (B, H, Tk, dh), mask (Tq, Tk).
    Every query of our models sees at least itself, so no row is fully masked."""
    if _SDPA is not None:
        return _SDPA(q, k, v, attn_mask=mask)
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v


@dataclass(frozen=True)
class KeyValueCache:
    """Rotated keys and values of the last tokens an attention layer saw, with their positions;
    bounded by the window (w − 1 tokens), so its size does not grow with the stream (SPEC §5)."""

    k: torch.Tensor  # (B, H, n, dh), RoPE applied
    v: torch.Tensor  # (B, H, n, dh)
    positions: torch.Tensor  # (n,) int64


def extend_cache(cache, k, v, positions, limit):
    """The cache after appending k, v (B, H, T, dh) at `positions`, keeping at most `limit` tokens."""
    if cache is not None and cache.positions.numel():
        k, v = torch.cat([cache.k, k], 2), torch.cat([cache.v, v], 2)
        positions = torch.cat([cache.positions, positions])
    n = positions.numel()
    keep = n if limit == float("inf") else min(n, int(limit))
    if keep == n:
        return KeyValueCache(k, v, positions)
    return KeyValueCache(k[:, :, n - keep :], v[:, :, n - keep :], positions[n - keep :])


def _param(shape, std=None, fill=None):
    if fill is not None:
        return nn.Parameter(torch.full(shape, float(fill)))
    return nn.Parameter(torch.randn(shape) * std)


class Attention(nn.Module):
    """Attention projections; the heads are H column blocks of width dh (titans-ts initAttention)."""

    def __init__(self, d, output_std):
        super().__init__()
        self.wq, self.wk, self.wv = (_param((d, d), d**-0.5) for _ in range(3))  # (d, d)
        self.wo = _param((d, d), output_std)  # (d, d)

    def queries(self, x, heads, start, base):
        """Queries of x (B, T, d) at positions start…, rotated: (B, H, T, dh)."""
        return rope(split_heads(x @ self.wq, heads), start, base)

    def keys_values(self, x, heads, start, base):
        """Keys (rotated) and values of x (B, T, d) at positions start…: each (B, H, T, dh)."""
        kv = x @ torch.cat([self.wk, self.wv], dim=1)
        k, v = kv.split(self.wk.shape[1], dim=-1)
        return rope(split_heads(k, heads), start, base), split_heads(v, heads)

    def persistent_keys_values(self, persistent, heads, batch):
        """Keys and values of the persistent tokens P (N_p, d), NOT rotated (SPEC §3: position
        free), broadcast to the batch: each (B, H, N_p, dh)."""
        k = split_heads((persistent @ self.wk)[None], heads)
        v = split_heads((persistent @ self.wv)[None], heads)
        return k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)

    def forward(self, x, heads, window, base, start, persistent, cache, keep_cache):
        """Causal (sliding-window) self-attention over x (B, T, d) continuing a stream: RoPE at
        absolute positions, the persistent prefix P that never slides out (eq. 19), the cache of
        the last w − 1 tokens. Returns y (B, T, d) and the new cache (None unless keep_cache)."""
        B, T, _ = x.shape
        positions = torch.arange(start, start + T, device=x.device)
        q = self.queries(x, heads, start, base)
        k, v = self.keys_values(x, heads, start, base)
        ks, vs, key_positions = [], [], []
        prefix = 0 if persistent is None else persistent.shape[0]
        if prefix:
            pk, pv = self.persistent_keys_values(persistent, heads, B)
            ks.append(pk)
            vs.append(pv)
            key_positions.append(torch.zeros(prefix, dtype=positions.dtype, device=x.device))
        if cache is not None and cache.positions.numel():
            ks.append(cache.k)
            vs.append(cache.v)
            key_positions.append(cache.positions)
        ks.append(k)
        vs.append(v)
        key_positions.append(positions)
        mask = visible(positions, torch.cat(key_positions), window, prefix)
        out = attend(q, torch.cat(ks, 2) if len(ks) > 1 else k, torch.cat(vs, 2) if len(vs) > 1 else v, mask)
        y = merge_heads(out) @ self.wo
        return y, (extend_cache(cache, k, v, positions, window - 1) if keep_cache else None)


class Mlp(nn.Module):
    """SwiGLU: (SiLU(x W_gate) ⊙ x W_up) W_down."""

    def __init__(self, d, f, output_std):
        super().__init__()
        self.wGate = _param((d, f), d**-0.5)  # (d, f)
        self.wUp = _param((d, f), d**-0.5)  # (d, f)
        self.wDown = _param((f, d), output_std)  # (f, d)

    def forward(self, x):
        g, u = (x @ torch.cat([self.wGate, self.wUp], dim=1)).split(self.wGate.shape[1], dim=-1)
        return (F.silu(g) * u) @ self.wDown


class Gate(nn.Module):
    """gate(y, m) = RMSNorm_a(y) ⊙ σ(RMSNorm_b(m)) (SPEC §4, the ⊗ of eq. 25 and 28)."""

    def __init__(self, d):
        super().__init__()
        self.normY = _param((d,), fill=1)
        self.normM = _param((d,), fill=1)

    def forward(self, y, m, eps):
        return rms_norm(y, self.normY, eps) * torch.sigmoid(rms_norm(m, self.normM, eps))
