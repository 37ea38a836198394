#!/usr/bin/env python3
"""PyTorch peer of the model benchmarks (bench/models.ts): a full training step of the small preset.

Prints ONE JSON object on stdout (progress goes to stderr):

    /usr/bin/python3 bench/torch_models.py --threads N [--variants mac,mag,mal,lmm,swa] [--batch 16]
                                           [--seq 256] [--steps 5] [--selftest]

Eager PyTorch, float32, autograd, CPU. The models mirror src/models/model.ts, src/models/layers.ts
and src/memory/layer.ts for presets/small.json (byte vocabulary), so the parameter counts are
ours exactly (mac 174,540; mag 174,540; mal 174,412; lmm 141,516; swa 113,984). A training step is what benchTrainStep does:
forward on a random batch, mean cross-entropy, backward, AdamW (lr 3e-3, betas (0.9, 0.95),
weight decay 0.1 on tensors of rank >= 2 only, like our default decay mask), zero_grad. It reports
tokens/s = batch * seq / median step time over --steps timed steps after 2 warm-up steps.

The memory core is bench/torch_peer.py's chunk-parallel `memory_scan` (SPEC §1: gradients at the
chunk-start weights, loss ||M(k) - v||^2 summed without 1/2, retrieval after each write).
Checked once against our models (weights copied from initModel, norm scales and gate biases
perturbed, 2 x 150 tokens, float64): logits and every parameter gradient agree to 4e-14 relative.

Axes: B batch, T tokens, d model width, V vocabulary, H heads (attention or memory), dh head width,
C = H * dh memory channels, K conv kernel, N_p persistent tokens, L MAC segment length.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

# Set before torch loads libgomp. With the default (ACTIVE) policy, a --threads 2 step on a 2-vCPU
# host shared with another busy process stalled ~25x (mag: 18 s instead of 0.7 s); PASSIVE did not.
# Set the variable yourself to override; the JSON echoes it under "env".
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no bench/__pycache__ in the working tree
from torch_peer import ENV_KNOBS, memory_scan, openblas, set_threads  # noqa: E402  (SPEC §1 core, BLAS threads)


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# presets/small.json resolved by src/models/config.ts (mlpHidden = nearest multiple of 8 to 8d/3)
# and src/memory/layer.ts defaults (depth 2, SiLU, conv 4, thetaMax 0.02, etaMax 0.5, gate biases
# alpha -7 / eta 0 / theta 0, normalizeValues true) as committed; --theta-max/--eta-max follow a
# change of those caps (they change the numbers, not the work).
SMALL = dict(vocab=256, d=64, layers=2, heads=4, window=64, segment=64, persistent=4, mlp_hidden=168,
             mem_heads=2, mem_dh=32, expansion=2, chunk=16, conv=4, rope_base=10000.0, eps=1e-6,
             init_std=0.02, theta_max=0.02, eta_max=0.5, gate_bias=(-7.0, 0.0, 0.0))
EXPECTED_PARAMETERS = {"mac": 174_540, "mag": 174_540, "mal": 174_412, "lmm": 141_516, "swa": 113_984}


def rms_norm(x, scale, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * scale


def l2_normalize(z, eps=1e-6):
    """SPEC §2.3: z / sqrt(sum z^2 + 1e-6) over the last axis (one head's vector)."""
    return z * torch.rsqrt((z * z).sum(-1, keepdim=True) + eps)


def split_heads(x, H):
    """(B, T, H*dh) -> (B, H, T, dh)"""
    B, T, _ = x.shape
    return x.reshape(B, T, H, -1).transpose(1, 2)


def merge_heads(x):
    """(B, H, T, dh) -> (B, T, H*dh)"""
    B, H, T, dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * dh)


def rope(x, positions, base):
    """SPEC §3 RoPE, "rotate half" (GPT-NeoX) like src/engine/ops/attention.ts: features i and
    i + dh/2 are rotated by positions[t] * base^(-2i/dh). x (..., T, dh), positions (T,)."""
    half = x.shape[-1] // 2
    freq = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
    angle = positions.to(torch.float64)[:, None] * freq  # (T, dh/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def visible(query_pos, key_pos, window, prefix):
    """SPEC §3 mask (Tq, Tk): key j is visible iff j < prefix, or 0 <= q_i - k_j < window."""
    diff = query_pos[:, None] - key_pos[None, :]
    mask = diff >= 0
    if window is not None:
        mask &= diff < window
    mask[:, :prefix] = True
    return mask


def attend(q, k, v, mask):
    """Softmax attention, scale 1/sqrt(dh). q (B, H, Tq, dh), k, v (B, H, Tk, dh), mask (Tq, Tk).
    Every row sees at least itself, so no row is fully masked."""
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v


def param(*shape, std=None, fill=None, low=None, high=None):
    """A parameter drawn like our initModel / initMemoryLayer: normal, constant or uniform."""
    if fill is not None:
        return nn.Parameter(torch.full(shape, float(fill)))
    if low is not None:
        return nn.Parameter(torch.empty(*shape).uniform_(low, high))
    return nn.Parameter(torch.randn(*shape) * std)


# SPEC §2: the neural memory layer. Same tensors as initMemoryLayer, with W_Q|W_K|W_V, the three
# conv taps and the three gates each stored side by side (same counts and ranks, fewer matmuls).


class MemoryLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, H, dh, K = c["d"], c["mem_heads"], c["mem_dh"], c["conv"]
        self.H, self.dh, self.C, self.K, self.chunk = H, dh, H * dh, K, c["chunk"]
        self.theta_max, self.eta_max = c["theta_max"], c["eta_max"]
        hidden = c["expansion"] * dh
        C = self.C
        self.w_qkv = param(d, 3 * C, std=d**-0.5)  # [W_Q | W_K | W_V]
        self.conv = param(K, 3 * C, low=-(K**-0.5), high=K**-0.5)  # depthwise taps, row i for z_{t-i}
        self.w_gates = param(d, 3 * H, std=0.02)  # [w_alpha | w_eta | w_theta], one column per head
        ba, be, bt = c["gate_bias"]
        self.b_gates = nn.Parameter(torch.tensor([ba] * H + [be] * H + [bt] * H))
        self.W1 = param(H, dh, hidden, std=dh**-0.5)  # W^0 per head (SPEC §2.5)
        self.W2 = param(H, hidden, dh, std=hidden**-0.5)
        self.norm_scale = param(H, dh, fill=1)  # per-head RMSNorm scale (SPEC §2.6)
        self.w_g = param(d, C, std=d**-0.5)
        self.w_o = param(C, d, std=C**-0.5)

    def initial_state(self, B):
        """A fresh stream: memory = W^0 for each of the B*H (batch, head) pairs, zero momentum,
        zero conv tails (the K-1 rows before the stream, pre-convolution)."""
        W1, W2 = self.W1.repeat(B, 1, 1), self.W2.repeat(B, 1, 1)  # (B*H, dh, h), (B*H, h, dh)
        tail = self.W1.new_zeros(B, self.K - 1, 3 * self.C)
        return (W1, W2, torch.zeros_like(W1), torch.zeros_like(W2), tail)

    def heads_first(self, x):
        """(B, T, H*dh) -> (B*H, T, dh): memory_scan's leading axis."""
        B, T, _ = x.shape
        return split_heads(x, self.H).reshape(B * self.H, T, self.dh)

    def causal_conv(self, z, taps, tail):
        """SPEC §2.2: c_t = sum_{i<K} w_i ⊙ z_{t-i} per channel, continuing from `tail` (the last
        K-1 rows before z). z (B, T, ch), taps (K, ch). K shifted multiply-adds, like our causalConv
        (F.conv1d's depthwise path was slower here, forward and backward)."""
        T, K = z.shape[1], self.K
        ext = torch.cat([tail, z], dim=1)  # (B, K-1+T, ch)
        out = ext[:, K - 1 :] * taps[0]
        for i in range(1, K):
            out = out + ext[:, K - 1 - i : K - 1 - i + T] * taps[i]  # z_{t-i}
        return out, ext[:, ext.shape[1] - (K - 1) :]

    def output(self, x, y):
        """SPEC §2.6: o = (RMSNorm_h(y) ⊙ SiLU(x W_G)) W_O; y (B*H, T, dh), x (B, T, d)."""
        B, T, _ = x.shape
        y = rms_norm(y.reshape(B, self.H, T, self.dh), self.norm_scale[:, None, :], 1e-6)
        return (merge_heads(y) * F.silu(x @ self.w_g)) @ self.w_o

    def forward(self, x, state):
        """Writes x (B, T, d) into the memory from `state` (which must sit at a chunk boundary);
        returns the output (B, T, d) and the state after the last token."""
        B, T, _ = x.shape
        H, C = self.H, self.C
        W1, W2, S1, S2, tail = state
        z, tail = self.causal_conv(x @ self.w_qkv, self.conv, tail)  # SPEC §2.1-2.2
        # SPEC §2.3, and our safeguard normalizeValues: v is L2-normalised per head like q and k.
        q, k, v = (l2_normalize(self.heads_first(part)) for part in F.silu(z).split(C, dim=-1))
        g = torch.sigmoid(x @ self.w_gates + self.b_gates)  # SPEC §2.4, (B, T, 3H)
        g = g.reshape(B, T, 3, H).permute(2, 0, 3, 1).reshape(3, B * H, T)
        alpha, eta, theta = g[0], self.eta_max * g[1], self.theta_max * g[2]
        y, (W1, W2, S1, S2) = memory_scan(q, k, v, alpha, eta, theta, W1, W2, self.chunk, S1, S2)
        return self.output(x, y), (W1, W2, S1, S2, tail)

    def read(self, x, W1, W2, tail):
        """MAC's h = read(x) (SPEC §4): queries only (conv tail of W_Q's channels carried across
        calls), M_W(q) with fixed weights W1, W2 (B*H, ...), then the output of SPEC §2.6."""
        C = self.C
        z, tail = self.causal_conv(x @ self.w_qkv[:, :C], self.conv[:, :C], tail)
        q = l2_normalize(self.heads_first(F.silu(z)))
        return self.output(x, F.silu(q @ W1) @ W2), tail


# SPEC §3-§4: blocks (pre-norm, residual, SwiGLU MLP) and the model.


class Block(nn.Module):
    def __init__(self, c, kind, output_std):
        super().__init__()
        d, f, Np = c["d"], c["mlp_hidden"], c["persistent"]
        self.c, self.kind, self.d, self.f = c, kind, d, f
        self.norm = param(d, fill=1)
        self.attention_norm = param(d, fill=1) if kind == "mal" else None  # MAL's second pre-norm
        if kind != "lmm":  # LMM blocks have no attention (model.ts blockKind 'memory')
            self.w_qkv = param(d, 3 * d, std=d**-0.5)  # attention [W_Q | W_K | W_V], heads = column blocks
            self.w_o = param(d, d, std=output_std)
        # P (eq. 19): Titans blocks only; the SWA baseline has none, as in the paper
        self.persistent = param(Np, d, std=1.0) if Np > 0 and kind != "swa" else None
        self.memory = MemoryLayer(c) if kind in ("mac", "mag", "mal", "lmm") else None
        if kind in ("mac", "mag"):  # gate(y, m) = RMSNorm_a(y) ⊙ σ(RMSNorm_b(m))
            self.gate_y, self.gate_m = param(d, fill=1), param(d, fill=1)
        self.mlp_norm = param(d, fill=1)
        self.w_gate_up = param(d, 2 * f, std=d**-0.5)  # SwiGLU [W_gate | W_up]
        self.w_down = param(f, d, std=output_std)

    def gate(self, y, m):
        eps = self.c["eps"]
        return rms_norm(y, self.gate_y, eps) * torch.sigmoid(rms_norm(m, self.gate_m, eps))

    def mlp(self, x):
        g, u = (x @ self.w_gate_up).split(self.f, dim=-1)
        return (F.silu(g) * u) @ self.w_down

    def persistent_kv(self, B):
        """SPEC §3: P's keys and values through W_K, W_V, NOT rotated; each (B, H, N_p, dh)."""
        if self.persistent is None:
            return None, None
        k, v = (self.persistent[None] @ self.w_qkv[:, self.d:]).split(self.d, dim=-1)
        H = self.c["heads"]
        return split_heads(k, H).expand(B, -1, -1, -1), split_heads(v, H).expand(B, -1, -1, -1)

    def sliding_attention(self, n):
        """SPEC §3: causal SWA at absolute positions 0..T-1, window w, persistent prefix."""
        B, T, _ = n.shape
        H, base = self.c["heads"], self.c["rope_base"]
        Np = 0 if self.persistent is None else self.persistent.shape[0]
        pos = torch.arange(T)
        q, k, v = (split_heads(z, H) for z in (n @ self.w_qkv).split(self.d, dim=-1))
        q, k = rope(q, pos, base), rope(k, pos, base)
        pk, pv = self.persistent_kv(B)
        if pk is not None:
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
        mask = visible(pos, torch.cat([torch.zeros(Np, dtype=pos.dtype), pos]), self.c["window"], Np)
        return merge_heads(attend(q, k, v, mask)) @ self.w_o

    def primed_memory(self, n):
        """The memory layer over n, primed with P as the first N_p tokens of its input (SPEC §3):
        P is prepended to n and those outputs dropped, which is the same function as our
        primedMemoryLayerState (it writes P once at batch 1, then continues mid-chunk)."""
        B = n.shape[0]
        Np = 0 if self.persistent is None else self.persistent.shape[0]
        stream = n if Np == 0 else torch.cat([self.persistent[None].expand(B, -1, -1), n], dim=1)
        m, _ = self.memory(stream, self.memory.initial_state(B))
        return m[:, Np:]

    def mag(self, x):
        """SPEC §4 MAG (eq. 26-28): n = RMSNorm(x); x <- x + gate(SWA*(n), M(n))."""
        n = rms_norm(x, self.norm, self.c["eps"])
        return x + self.gate(self.sliding_attention(n), self.primed_memory(n))

    def mal(self, x):
        """SPEC §4 MAL (eq. 29-31): x <- x + M(RMSNorm(x)); x <- x + SWA*(RMSNorm(x))."""
        eps = self.c["eps"]
        x = x + self.primed_memory(rms_norm(x, self.norm, eps))
        return x + self.sliding_attention(rms_norm(x, self.attention_norm, eps))

    def mac(self, x):
        """SPEC §4 MAC (eq. 21-25), one segment of L tokens at a time (model.ts macMixer)."""
        B, T, _ = x.shape
        c, d, mem = self.c, self.d, self.memory
        H, base, L, Np = c["heads"], c["rope_base"], c["segment"], c["persistent"]
        assert L % mem.chunk == 0, "MAC segments must end on memory-chunk boundaries"
        state = mem.initial_state(B)  # MAC: P is not written into the memory
        read_W1, read_W2 = state[0], state[1]  # memory at the end of the previous segment
        read_tail = state[4][..., : mem.C]  # conv tail of the read queries (the stream of n)
        pk, pv = self.persistent_kv(B)
        outs = []
        for s in range(0, T, L):
            n = rms_norm(x[:, s : s + L], self.norm, c["eps"])
            h, read_tail = mem.read(n, read_W1, read_W2, read_tail)  # 1. h = read(n)
            pos = torch.arange(n.shape[1])  # segment-local: h_j and n_j both at j
            q, kn, vn = (split_heads(z, H) for z in (n @ self.w_qkv).split(d, dim=-1))
            kh, vh = (split_heads(z, H) for z in (h @ self.w_qkv[:, d:]).split(d, dim=-1))
            keys = rope(torch.cat([kh, kn], dim=2), torch.cat([pos, pos]), base)
            values = torch.cat([vh, vn], dim=2)
            if pk is not None:  # P: an unrotated prefix every row sees
                keys, values = torch.cat([pk, keys], dim=2), torch.cat([pv, values], dim=2)
            key_pos = torch.cat([torch.zeros(Np, dtype=pos.dtype), pos, pos])
            mask = visible(pos, key_pos, None, Np)  # 2. attention over [P; h; n], causal by position
            a = merge_heads(attend(rope(q, pos, base), keys, values, mask)) @ self.w_o
            m, state = mem(a, state)  # 3. write a into the memory, continuing its state
            read_W1, read_W2 = state[0], state[1]
            outs.append(self.gate(a, m))  # 4. x <- x + gate(a, m)
        return x + torch.cat(outs, dim=1)

    def forward(self, x):
        if self.kind == "mac":
            x = self.mac(x)
        elif self.kind == "mag":
            x = self.mag(x)
        elif self.kind == "mal":
            x = self.mal(x)
        elif self.kind == "lmm":  # x <- x + M(RMSNorm(x)), P written first
            x = x + self.primed_memory(rms_norm(x, self.norm, self.c["eps"]))
        else:  # swa: x <- x + SWA(RMSNorm(x)) with persistent prefix
            x = x + self.sliding_attention(rms_norm(x, self.norm, self.c["eps"]))
        return x + self.mlp(rms_norm(x, self.mlp_norm, self.c["eps"]))


class Model(nn.Module):
    """Embedding (std 0.02), blocks, final RMSNorm, tied output head: logits = h E^T."""

    def __init__(self, variant, c):
        super().__init__()
        d = c["d"]
        self.c = c
        output_std = d**-0.5 / math.sqrt(2 * c["layers"])  # residual branches sum over layers
        self.embedding = param(c["vocab"], d, std=c["init_std"])
        self.blocks = nn.ModuleList(Block(c, variant, output_std) for _ in range(c["layers"]))
        self.final_norm = param(d, fill=1)

    def forward(self, tokens):
        x = F.embedding(tokens, self.embedding)
        for block in self.blocks:
            x = block(x)
        return rms_norm(x, self.final_norm, self.c["eps"]) @ self.embedding.t()


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def make_optimizer(model):
    """AdamW, decay on weight matrices only (our decayWeightsOnly: rank >= 2, not norm scales or conv taps)."""
    named = list(model.named_parameters())
    decayed = lambda name, p: p.ndim >= 2 and not name.endswith(("norm_scale", "conv"))
    groups = [
        {"params": [p for n, p in named if decayed(n, p)], "weight_decay": 0.1},
        {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=3e-3, betas=(0.9, 0.95), eps=1e-8)


# The benchmark, and --selftest: causality (MAC segment by segment, MAG, SWA), parameter counts and
# finite losses.


def bench_train_step(variant, batch, seq, steps, warmup=2):
    torch.manual_seed(0)
    model = Model(variant, SMALL)
    count = parameter_count(model)
    if count != EXPECTED_PARAMETERS[variant]:
        log(f"WARNING: {variant} has {count} parameters, ours has {EXPECTED_PARAMETERS[variant]}")
    optimizer = make_optimizer(model)
    gen = torch.Generator().manual_seed(1)
    losses, times = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        tokens = torch.randint(0, SMALL["vocab"], (batch, seq + 1), generator=gen)
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, SMALL["vocab"]), tokens[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        ms = (time.perf_counter() - t0) * 1e3
        log(f"{variant} step {i + 1}/{warmup + steps}: loss {losses[-1]:.4f}, {ms:.0f} ms")
    median = statistics.median(times)
    return {
        "tokens_per_s": round(batch * seq / median, 1),
        "step_ms": round(median * 1e3, 1),
        "step_ms_range": [round(min(times) * 1e3, 1), round(max(times) * 1e3, 1)],
        "parameters": count,
        "parameters_match": count == EXPECTED_PARAMETERS[variant],
        "loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
    }


def selftest():
    """float64, tiny shapes: changing token t+1 leaves the logits up to t bit-identical."""
    tiny = dict(SMALL, vocab=32, d=16, heads=2, window=5, segment=8, persistent=2, mlp_hidden=24,
                mem_heads=2, mem_dh=8, expansion=2, chunk=4)
    T, report, ok = 21, {}, True  # 21 tokens: two full MAC segments and a partial one
    for variant in ("mac", "mag", "mal", "lmm", "swa"):
        torch.manual_seed(4)
        model = Model(variant, tiny).double()
        tokens = torch.randint(0, tiny["vocab"], (2, T + 1), generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            base = model(tokens[:, :-1])
            loss = F.cross_entropy(base.reshape(-1, tiny["vocab"]), tokens[:, 1:].reshape(-1)).item()
            worst_before, least_after = 0.0, math.inf
            for t in (0, 3, 6, 7, 8, 12, 15, 16, 19):  # around chunk (4) and segment (8) edges
                changed = tokens[:, :-1].clone()
                changed[:, t + 1] = (changed[:, t + 1] + 7) % tiny["vocab"]
                out = model(changed)
                worst_before = max(worst_before, (out[:, : t + 1] - base[:, : t + 1]).abs().max().item())
                least_after = min(least_after, (out[:, t + 1] - base[:, t + 1]).abs().max().item())
        passed = worst_before == 0.0 and least_after > 1e-9 and math.isfinite(loss)
        report[variant] = {"loss": loss, "max_abs_diff_up_to_t": worst_before,
                           "min_abs_diff_at_t_plus_1": least_after, "pass": passed}
        log("selftest", variant, report[variant])
        ok &= passed
    for variant, expected in EXPECTED_PARAMETERS.items():  # the small preset's counts are ours
        count = parameter_count(Model(variant, SMALL))
        report[f"parameters_{variant}"] = count
        ok &= count == expected
    with torch.no_grad():  # float32, small preset: a finite loss near ln 256 at initialisation
        torch.manual_seed(0)
        tokens = torch.randint(0, 256, (2, SMALL["segment"] * 2 + 1))
        logits = Model("mac", SMALL)(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 256), tokens[:, 1:].reshape(-1)).item()
    report["small_mac_float32_loss"] = loss
    ok &= math.isfinite(loss) and abs(loss - math.log(256)) < 0.5
    report["selftest"] = "pass" if ok else "FAIL"
    return report, ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch and OpenBLAS threads")
    p.add_argument("--variants", default="mac,mag,swa", help="comma-separated subset of mac,mag,mal,lmm,swa")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up steps)")
    p.add_argument("--theta-max", type=float, default=SMALL["theta_max"], help="memory θ cap (our thetaMax)")
    p.add_argument("--eta-max", type=float, default=SMALL["eta_max"], help="memory η cap (our etaMax)")
    p.add_argument("--selftest", action="store_true", help="causality and finite-loss checks, then exit")
    args = p.parse_args()
    SMALL.update(theta_max=args.theta_max, eta_max=args.eta_max)
    set_threads(args.threads, args.threads)
    if args.selftest:
        torch.set_num_threads(1)  # tiny float64 tensors: threads only add overhead (and stalls)
        report, ok = selftest()
        print(json.dumps(report))
        sys.exit(0 if ok else 1)

    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in EXPECTED_PARAMETERS:
            p.error(f"unknown variant {v!r} (choose from {', '.join(EXPECTED_PARAMETERS)})")
    lib = openblas()
    started = time.perf_counter()
    result = {
        "torch_version": torch.__version__,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "blas": lib.openblas_get_config().decode() if lib else "unknown",
        "dtype": "float32",
        "env": {k: os.environ[k] for k in ENV_KNOBS if k in os.environ},
        "config": {"preset": "small", "batch": args.batch, "seq": args.seq, "steps": args.steps, "warmup": 2,
                   "theta_max": args.theta_max, "eta_max": args.eta_max},
        "train_step": {},
    }
    for v in variants:
        result["train_step"][v] = bench_train_step(v, args.batch, args.seq, args.steps)
        log(f"{v}: {result['train_step'][v]}")
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
