"""The neural memory layer of SPEC §2 (paper §3.1, §4.4), the twin of src/memory/layer.ts:
projections, causal depthwise convolution, SiLU, L2-normalised q/k (and v: the normalizeValues
safeguard), data-dependent gates α, η, θ, one memory per head (memory_scan), per-head RMSNorm,
SiLU output gate and output projection.

Axis legend: B batch, T tokens, d model width, H heads, dh head width, C = H·dh channels,
K conv kernel, h memory hidden width.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import l2_normalize, merge_heads, rms_norm, split_heads
from .memory import MemoryState, initial_memory_state, memory_forward, memory_scan


@dataclass(frozen=True)
class MemoryLayerState:
    """The memory (leading axes B|1, H) and the conv tail: the last K−1 pre-convolution rows of
    [q̃ | k̃ | ṽ], (B|1, K−1, 3C); None without convolution."""

    memory: MemoryState
    tail: torch.Tensor


def causal_conv(z, taps, tail):
    """SPEC §2.2: c_t = Σ_{i<K} w_i ⊙ z_{t−i} per channel, continuing from `tail` (the K−1 rows
    before z). z (B, T, ch), taps (K, ch), tail (B|1, K−1, ch) -> (B, T, ch) and the new tail."""
    K, T = taps.shape[0], z.shape[1]
    if K == 1:
        return z * taps[0], tail
    ext = torch.cat([tail.expand(z.shape[0], -1, -1), z], dim=1)  # (B, K−1+T, ch)
    out = ext[:, K - 1 :] * taps[0]
    for i in range(1, K):
        out = out + ext[:, K - 1 - i : K - 1 - i + T] * taps[i]  # z_{t−i}
    return out, ext[:, ext.shape[1] - (K - 1) :]


class MemoryLayer(nn.Module):
    """Parameters named as titans-ts's MemoryLayerParams; parts a switch removes are absent."""

    def __init__(self, d, m):
        super().__init__()
        H, dh, K = m["heads"], m["headDim"], m["convKernel"]
        C = H * dh
        self.d, self.H, self.dh, self.C, self.K = d, H, dh, C, K
        self.depth, self.act, self.residual = m["depth"], m["activation"], m["residual"]
        self.chunk, self.normalize_values = m["chunkSize"], m["normalizeValues"]
        self.forgetting, self.momentum = m["forgetting"], m["momentum"]
        self.theta_max, self.eta_max = m["thetaMax"], m["etaMax"]
        normal = lambda shape, std: nn.Parameter(torch.randn(shape) * std)
        full = lambda shape, v: nn.Parameter(torch.full(shape, float(v)))
        self.wq, self.wk, self.wv = (normal((d, C), d**-0.5) for _ in range(3))  # (d, C)
        if K > 0:  # (K, C) depthwise taps, tap i applies to z_{t−i}
            self.convQ, self.convK, self.convV = (nn.Parameter(torch.empty(K, C).uniform_(-(K**-0.5), K**-0.5)) for _ in range(3))
        bias = m["gateBias"]
        if self.forgetting:
            self.wAlpha, self.bAlpha = normal((d, H), 0.02), full((H,), bias["alpha"])  # (d, H), (H)
        if self.momentum:
            self.wEta, self.bEta = normal((d, H), 0.02), full((H,), bias["eta"])
        self.wTheta, self.bTheta = normal((d, H), 0.02), full((H,), bias["theta"])
        hidden = dh if self.depth == 1 else m["expansion"] * dh
        dims = [dh] + [hidden] * (self.depth - 1) + [dh]
        self.memory = nn.ParameterList(normal((H, dims[l], dims[l + 1]), dims[l] ** -0.5) for l in range(self.depth))  # W⁰ (H, d_in, d_out)
        self.normScale = full((H, dh), 1)  # (H, dh)
        self.wg = normal((d, C), d**-0.5)  # (d, C)
        self.wo = normal((C, d), C**-0.5)  # (C, d)

    def initial_state(self, batch):
        """A fresh stream: memory = the learned W⁰ (leading axis 1: broadcast over B), zero
        momentum and zero conv tail."""
        weights = tuple(w[None] for w in self.memory)
        tail = self.wq.new_zeros(batch, self.K - 1, 3 * self.C) if self.K > 0 else None
        return MemoryLayerState(initial_memory_state(weights, self.chunk), tail)

    def primed_state(self, rows, batch):
        """SPEC §3: the state of a stream whose first N_p inputs were the persistent rows (N_p, d),
        their outputs discarded (written once, at batch 1, then broadcast)."""
        if rows.shape[0] == 0:
            return self.initial_state(batch)
        _, state = self.forward(rows[None], self.initial_state(1))
        tail = state.tail.expand(batch, -1, -1) if state.tail is not None else None
        return MemoryLayerState(state.memory, tail)

    def _gate(self, x, w, b, cap):
        """cap · σ(x w + b): (B, H, T)."""
        g = torch.sigmoid(x @ w + b).transpose(1, 2)
        return g if cap == 1 else g * cap

    def output(self, x, y):
        """Step 6: o = (RMSNorm_h(y) ⊙ SiLU(X W_G)) W_O; the norm per head (ε = 1e−6) with a
        learned scale. y (B, H, T, dh), x (B, T, d)."""
        normed = rms_norm(y, self.normScale[:, None, :], 1e-6)
        return (merge_heads(normed) * F.silu(x @ self.wg)) @ self.wo

    def forward(self, x, state):
        """Writes x (B, T, d) into the memory from `state`; returns the output (B, T, d) and the
        state after the last token."""
        B, T, _ = x.shape
        z = x @ torch.cat([self.wq, self.wk, self.wv], dim=1)  # 1. projections, (B, T, 3C)
        tail = state.tail
        if self.K > 0:  # 2. causal depthwise conv, the tail carried across calls
            z, tail = causal_conv(z, torch.cat([self.convQ, self.convK, self.convV], dim=1), tail)
        zq, zk, zv = F.silu(z).split(self.C, dim=-1)  # 3. SiLU, heads, L2
        q, k, v = (split_heads(p, self.H) for p in (zq, zk, zv))  # (B, H, T, dh)
        q, k = l2_normalize(q), l2_normalize(k)
        if self.normalize_values:
            v = l2_normalize(v)
        zero = lambda: x.new_zeros(B, self.H, T)  # 4. gates (B, H, T)
        alpha = self._gate(x, self.wAlpha, self.bAlpha, 1) if self.forgetting else zero()
        eta = self._gate(x, self.wEta, self.bEta, self.eta_max) if self.momentum else zero()
        theta = self._gate(x, self.wTheta, self.bTheta, self.theta_max)
        scan = (q, k, v, alpha, eta, theta)
        if torch.is_autocast_enabled():  # 5. eq. 12-16; under bfloat16 autocast the inner descent stays float32
            with torch.autocast(x.device.type, enabled=False):
                y, memory = memory_scan(*(t.float() for t in scan), state.memory, self.act, self.residual)
        else:
            y, memory = memory_scan(*scan, state.memory, self.act, self.residual)
        return self.output(x, y), MemoryLayerState(memory, tail)

    def read(self, x, weights, tail):
        """MAC's h = read(x) (SPEC §4): queries through the layer's projection and conv (its tail
        (B, K−1, C) carried across calls), SiLU and L2; M_W(q) with fixed `weights`; then step 6.
        Returns (B, T, d) and the new query tail."""
        z = x @ self.wq
        if self.K > 0:
            z, tail = causal_conv(z, self.convQ, tail)
        q = l2_normalize(split_heads(F.silu(z), self.H))
        return self.output(x, memory_forward(q, weights, self.act, self.residual)), tail
