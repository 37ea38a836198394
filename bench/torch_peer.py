#!/usr/bin/env python3
"""PyTorch peer for `npm run bench`: the same measurements, done by eager PyTorch on the CPU.

Prints ONE JSON object on stdout (progress goes to stderr):
  matmul GFLOP/s, the Titans memory core (memory_scan) and the full memory layer, each as a
  median of several timed runs after warm-up. See bench/README.md ("PyTorch peer").

    /usr/bin/python3 bench/torch_peer.py [--threads N] [--blas-threads N] [--quick] [--tokens T] [--selftest]
                                         [--only matmul,memory_scan,memory_layer]

Needs Debian's python3-torch (1.13, CPU) with OpenBLAS: bash scripts/install-torch-peer.sh.

Axes legend
  B    batch                              1
  H    heads                              4
  T    tokens in the sequence             4096 (512 with --quick)
  b    chunk size                         16 (memory_scan also at 64)
  n    tokens in the current chunk        b, or fewer for the last chunk
  d_h  head width (query, key, value)     64
  h    memory MLP hidden width            expansion * d_h = 4 * 64 = 256
  d    model width                        H * d_h = 256
The memory core keeps the heads (times the batch) as a leading axis:
  q, k, v (H, T, d_h); alpha, eta, theta (H, T); W1, S1 (H, d_h, h); W2, S2 (H, h, d_h).
Inside a chunk a matrix indexed [t, s] has t = query/output token, s = source token.
"""

import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# SPEC §1: the memory core.
#
# Memory model   M_W(z) = silu(z W1) W2
# Loss           l(W; k, v) = || M_W(k) - v ||^2          (summed, no 1/2)
# Recurrence     c(t) = start of the chunk holding t (chunks at absolute positions 0, b, 2b, ...)
#                u_t = grad_W l(W^{c(t)}; k_t, v_t)        (gradient at the CHUNK-START weights)
#                S^t = eta_t S^{t-1} - theta_t u_t
#                W^t = (1 - alpha_t) W^{t-1} + S^t
#                y_t = M_{W^t}(q_t)
# ---------------------------------------------------------------------------------------------


def silu_prime(z):
    """d/dz silu(z), written with differentiable ops so autograd sees the second-order terms."""
    sig = torch.sigmoid(z)
    return sig * (1 + z * (1 - sig))


def decay_matrix(a):
    """a: (..., n) -> P: (..., n, n), P[t, j] = prod_{i=j+1..t} a_i for j <= t (1 on the diagonal),
    0 above it. Built as a cumulative product over t of factors[i, j] = (a_i if i > j else 1),
    so no division (a_i may round to 0 in float32)."""
    n = a.shape[-1]
    idx = torch.arange(n, device=a.device)
    later = idx[:, None] > idx[None, :]  # [i, j]: i > j
    factors = torch.where(later, a[..., :, None], a.new_ones(()))  # [..., i, j]
    return torch.tril(torch.cumprod(factors, dim=-2))


def chunked(x, chunk):
    """(H, T, ...) -> list of (H, c, n, ...) groups of c equal chunks: the full chunks, then the
    shorter last one if T is not a multiple of the chunk size."""
    H, T = x.shape[:2]
    full = T - T % chunk
    groups = [x[:, :full].reshape(H, full // chunk, chunk, *x.shape[2:])] if full else []
    if full < T:
        groups.append(x[:, full:].unsqueeze(1))
    return groups


def memory_scan(q, k, v, alpha, eta, theta, W1, W2, chunk, S1=None, S2=None):
    """Chunk-parallel form of the recurrence. Returns y (H, T, d_h) and the end state
    (W1, W2, S1, S2). Everything that depends only on the gates, q and k is computed for all
    chunks at once; a Python loop over chunks (they are sequential) does the rest, with batched
    matmuls over the heads.

    For a chunk of n tokens starting from state (W, S), gradients at G = W:
      per-token gradient, one outer product per layer l:
        x1 = k, z1 = x1 G1, x2 = silu(z1), out = x2 G2,
        d2 = 2 (out - v), d1 = (d2 G2^T) * silu'(z1),      u_l[s] = x_l[s]^T d_l[s]
      decays (lower-triangular, 1 on the diagonal):
        A[t, j] = prod_{i=j+1..t} (1 - alpha_i),  E[j, s] = prod_{i=s+1..j} eta_i,  C = A E
        beta_t = prod_{i<=t} (1 - alpha_i),  m_t = prod_{i<=t} eta_i,  gamma = A m
      so that  W^t = beta_t W + gamma_t S - sum_{s<=t} C[t, s] theta_s u_s.
      retrieval, R_1 = Q:
        Z_l = beta * (R_l W_l) + gamma * (R_l S_l) - (C * theta_row * (R_l X_l^T)) D_l,
        R_2 = silu(Z_1),  y = Z_2
      end state:
        W_l <- beta_n W_l + gamma_n S_l - X_l^T diag(C[n, :] theta) D_l
        S_l <- m_n S_l - X_l^T diag(E[n, :] theta) D_l
    """
    if S1 is None:
        S1 = torch.zeros_like(W1)
    if S2 is None:
        S2 = torch.zeros_like(W2)

    # State-independent terms, batched over all chunks of a group: (H, c, n, ...).
    per_chunk = []
    for Q, K, V, al, e, th in zip(*(chunked(x, chunk) for x in (q, k, v, alpha, eta, theta))):
        a = 1 - al  # retention 1 - alpha
        A = decay_matrix(a)  # (H, c, n, n)
        E = decay_matrix(e)  # (H, c, n, n)
        Cth = (A @ E) * th[..., None, :]  # C[t, s] theta_s
        beta = torch.cumprod(a, dim=-1)  # (H, c, n)
        m = torch.cumprod(e, dim=-1)  # (H, c, n)
        gamma = (A @ m[..., None]).squeeze(-1)  # (H, c, n)
        QKC = Cth * (Q @ K.transpose(-1, -2))  # layer 1 retrieval mixing: C * theta_row * (Q K^T)
        wE = E[..., -1, :] * th  # E[n, s] theta_s
        terms = (Q, K, V, beta[..., None], gamma[..., None], m[..., -1, None, None], Cth, QKC, wE[..., None])
        # One tuple per chunk: unbind the chunk axis (its backward is one stack).
        per_chunk += zip(*(x.unbind(1) for x in terms))

    ys = []
    for Q, K, V, bcol, gcol, mn, Cth, QKC, wE in per_chunk:  # Q, K, V (H, n, d_h); bcol, gcol, wE (H, n, 1)
        # Per-token gradients at the chunk-start weights G = (W1, W2).
        Zk = K @ W1  # z1 (H, n, h)
        X2 = F.silu(Zk)  # x2 (H, n, h); x1 = K
        D2 = 2 * (X2 @ W2 - V)  # d2 (H, n, d_h)
        D1 = (D2 @ W2.transpose(1, 2)) * silu_prime(Zk)  # d1 (H, n, h)

        # Retrieval with every token's own weights W^t, layer by layer.
        Z1 = bcol * (Q @ W1) + gcol * (Q @ S1) - QKC @ D1  # (H, n, h)
        R2 = F.silu(Z1)
        Z2 = bcol * (R2 @ W2) + gcol * (R2 @ S2) - (Cth * (R2 @ X2.transpose(1, 2))) @ D2  # (H, n, d_h)
        ys.append(Z2)

        # State at the end of the chunk (uses the old S, so W first).
        bn, gn, wC = bcol[:, -1:], gcol[:, -1:], Cth[:, -1, :, None]  # wC (H, n, 1): C[n, s] theta_s
        W1_next = bn * W1 + gn * S1 - K.transpose(1, 2) @ (wC * D1)
        W2_next = bn * W2 + gn * S2 - X2.transpose(1, 2) @ (wC * D2)
        S1 = mn * S1 - K.transpose(1, 2) @ (wE * D1)
        S2 = mn * S2 - X2.transpose(1, 2) @ (wE * D2)
        W1, W2 = W1_next, W2_next
    return torch.cat(ys, dim=1), (W1, W2, S1, S2)


def memory_scan_loop(q, k, v, alpha, eta, theta, W1, W2, chunk, S1=None, S2=None):
    """Token-by-token reference of the same recurrence (for --selftest): u_t by autograd with
    create_graph=True, so that a backward through it includes the second-order terms."""
    T = q.shape[1]
    if S1 is None:
        S1 = torch.zeros_like(W1)
    if S2 is None:
        S2 = torch.zeros_like(W2)
    ys = []
    for t in range(T):
        if t % chunk == 0:
            G1, G2 = W1, W2  # chunk-start weights
        kt, vt, qt = k[:, t : t + 1], v[:, t : t + 1], q[:, t : t + 1]  # (H, 1, d_h)
        loss = ((F.silu(kt @ G1) @ G2 - vt) ** 2).sum()  # heads are independent: sum is fine
        u1, u2 = torch.autograd.grad(loss, (G1, G2), create_graph=True)
        at, et, tt = (g[:, t, None, None] for g in (alpha, eta, theta))
        S1 = et * S1 - tt * u1
        S2 = et * S2 - tt * u2
        W1 = (1 - at) * W1 + S1
        W2 = (1 - at) * W2 + S2
        ys.append(F.silu(qt @ W1) @ W2)
    return torch.cat(ys, dim=1), (W1, W2, S1, S2)


# ---------------------------------------------------------------------------------------------
# SPEC §2: the memory layer. Input X (B, T, d).
#   q~ = X W_Q, k~ = X W_K, v~ = X W_V                     (d x H*d_h each, no bias; fused here)
#   causal depthwise conv, kernel 4 per channel             (left padding 3)
#   q = L2(silu(conv q~)), k = L2(silu(conv k~)) per head   L2(z) = z / sqrt(sum z^2 + 1e-6)
#   v = silu(conv v~)
#   alpha = sigmoid(X w_a + b_a), eta = 0.9 sigmoid(X w_e + b_e), theta = 0.1 sigmoid(X w_t + b_t)
#   y = memory_scan per head, from learned W1^0 (H, d_h, h), W2^0 (H, h, d_h), S^0 = 0
#   o = (RMSNorm_per_head(y) * silu(X W_G)) W_O
# ---------------------------------------------------------------------------------------------


class TitansMemoryLayer(nn.Module):
    def __init__(self, d=256, heads=4, d_head=64, expansion=4, chunk=16, conv_kernel=4):
        super().__init__()
        self.H, self.d_h, self.h, self.chunk = heads, d_head, expansion * d_head, chunk
        inner = heads * d_head  # H*d_h
        self.inner = inner

        def rand(*shape, fan_in):
            return nn.Parameter(torch.randn(*shape) / fan_in**0.5)

        self.W_QKV = rand(d, 3 * inner, fan_in=d)  # [W_Q | W_K | W_V]
        self.conv = rand(3 * inner, 1, conv_kernel, fan_in=conv_kernel)  # depthwise, per channel
        self.W_gates = rand(d, 3 * heads, fan_in=d)  # [w_alpha | w_eta | w_theta]
        self.b_gates = nn.Parameter(torch.zeros(3 * heads))
        self.W1_0 = rand(heads, d_head, self.h, fan_in=d_head)
        self.W2_0 = rand(heads, self.h, d_head, fan_in=self.h)
        self.norm_gain = nn.Parameter(torch.ones(d_head))  # RMSNorm gain, shared by the heads
        self.W_G = rand(d, inner, fan_in=d)
        self.W_O = rand(inner, d, fan_in=inner)

    def heads_first(self, x):
        """(B, T, H*w) -> (B*H, T, w)"""
        B, T, _ = x.shape
        return x.reshape(B, T, self.H, -1).permute(0, 2, 1, 3).reshape(B * self.H, T, -1)

    def forward(self, X):
        B, T, _ = X.shape
        H, I = self.H, self.inner

        # Projections and the causal depthwise conv over time (channels = 3 * H*d_h).
        qkv = (X @ self.W_QKV).transpose(1, 2)  # (B, 3I, T)
        qkv = F.conv1d(F.pad(qkv, (self.conv.shape[-1] - 1, 0)), self.conv, groups=3 * I)
        qkv = F.silu(qkv.transpose(1, 2))  # (B, T, 3I)
        q, k, v = (self.heads_first(x) for x in qkv.split(I, dim=-1))  # (B*H, T, d_h)
        q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-6)
        k = k / torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-6)

        # Gates per token and head.
        g = torch.sigmoid(X @ self.W_gates + self.b_gates)  # (B, T, 3H)
        g = g.reshape(B, T, 3, H).permute(2, 0, 3, 1).reshape(3, B * H, T)  # (3, B*H, T)
        alpha, eta, theta = g[0], 0.9 * g[1], 0.1 * g[2]

        W1 = self.W1_0.repeat(B, 1, 1)  # (B*H, d_h, h)
        W2 = self.W2_0.repeat(B, 1, 1)  # (B*H, h, d_h)
        y, _ = memory_scan(q, k, v, alpha, eta, theta, W1, W2, self.chunk)  # (B*H, T, d_h)

        # RMSNorm per head, back to (B, T, H*d_h), output gate and projection.
        y = y * torch.rsqrt((y * y).mean(-1, keepdim=True) + 1e-6) * self.norm_gain
        y = y.reshape(B, H, T, self.d_h).permute(0, 2, 1, 3).reshape(B, T, I)
        return (y * F.silu(X @ self.W_G)) @ self.W_O  # (B, T, d)


# ---------------------------------------------------------------------------------------------
# Inputs, timing, BLAS threads.
# ---------------------------------------------------------------------------------------------


def scan_inputs(H, T, d_h, h, dtype, gen, S0=False):
    """Random inputs shaped like the layer's: unit-norm q, k; gates in their layer ranges."""

    def rn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    q, k = F.normalize(rn(H, T, d_h), dim=-1), F.normalize(rn(H, T, d_h), dim=-1)
    v = rn(H, T, d_h)
    alpha = torch.sigmoid(rn(H, T))
    eta = 0.9 * torch.sigmoid(rn(H, T))
    theta = 0.1 * torch.sigmoid(rn(H, T))
    W1, W2 = rn(H, d_h, h) / d_h**0.5, rn(H, h, d_h) / h**0.5
    out = [q, k, v, alpha, eta, theta, W1, W2]
    if S0:
        out += [0.1 * rn(H, d_h, h), 0.1 * rn(H, h, d_h)]
    return out


# Environment variables that change BLAS/OpenMP behaviour; echoed into the JSON when set.
ENV_KNOBS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def timed_seconds(fn, warmup, runs):
    """Wall-clock seconds of `runs` calls of fn after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def throughput(tokens, times_fwd, times_both):
    """Median tokens/s, with the median and the [min, max] milliseconds behind it."""
    fwd, both = statistics.median(times_fwd), statistics.median(times_both)
    return {
        "forward_tokens_per_s": tokens / fwd,
        "fwd_bwd_tokens_per_s": tokens / both,
        "forward_ms": fwd * 1e3,
        "fwd_bwd_ms": both * 1e3,
        "forward_ms_range": [min(times_fwd) * 1e3, max(times_fwd) * 1e3],
        "fwd_bwd_ms_range": [min(times_both) * 1e3, max(times_both) * 1e3],
    }


def openblas():
    """The OpenBLAS that torch calls through libblas.so.3 (already loaded by libtorch), or None."""
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib
    except (OSError, AttributeError):
        return None


def set_threads(n, blas_n):
    # torch.set_num_threads sets torch's OpenMP pool only; OpenBLAS (pthread build) keeps its own
    # pool, sized to all cores unless told otherwise, so size it too.
    torch.set_num_threads(n)
    lib = openblas()
    if lib is not None:
        lib.openblas_set_num_threads(blas_n)


# ---------------------------------------------------------------------------------------------
# Measurements.
# ---------------------------------------------------------------------------------------------


def bench_matmul(M, K, N, samples):
    """GFLOP/s of (M x K) @ (K x N) = 2 M K N flops, into a preallocated output."""
    a, b, c = torch.randn(M, K), torch.randn(K, N), torch.empty(M, N)
    torch.mm(a, b, out=c)
    reps, elapsed = 1, 0.0
    while True:  # calibrate: one sample runs >= 0.1 s
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=c)
        elapsed = time.perf_counter() - t0
        if elapsed >= 0.1:
            break
        reps *= 2

    def run():
        for _ in range(reps):
            torch.mm(a, b, out=c)

    sec = statistics.median(timed_seconds(run, warmup=1, runs=samples))
    return 2 * M * K * N * reps / sec / 1e9


def bench_scan(H, T, d_h, h, chunk, warmup, runs):
    gen = torch.Generator().manual_seed(1)
    inputs = scan_inputs(H, T, d_h, h, torch.float32, gen)

    def forward():
        with torch.no_grad():
            memory_scan(*inputs, chunk=chunk)

    leaves = [x.clone().requires_grad_() for x in inputs]  # q, k, v, gates, W^0

    def fwd_bwd():
        for x in leaves:
            x.grad = None
        y, (W1, _, _, _) = memory_scan(*leaves, chunk=chunk)
        loss = (y**2).sum() + W1.sum()
        loss.backward()

    return throughput(T, timed_seconds(forward, warmup, runs), timed_seconds(fwd_bwd, warmup, runs))


def bench_layer(B, T, d, H, d_h, expansion, chunk, warmup, runs):
    torch.manual_seed(2)
    layer = TitansMemoryLayer(d=d, heads=H, d_head=d_h, expansion=expansion, chunk=chunk)
    X = torch.randn(B, T, d)

    def forward():
        with torch.no_grad():
            layer(X)

    Xg = X.clone().requires_grad_()

    def fwd_bwd():
        layer.zero_grad(set_to_none=True)
        Xg.grad = None
        loss = (layer(Xg) ** 2).sum()
        loss.backward()  # to X and every parameter

    return throughput(B * T, timed_seconds(forward, warmup, runs), timed_seconds(fwd_bwd, warmup, runs))


# ---------------------------------------------------------------------------------------------
# --selftest: chunk-parallel form == token-by-token recurrence, in float64.
# ---------------------------------------------------------------------------------------------


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def selftest():
    H, T, d_h, h = 2, 37, 5, 8
    gen = torch.Generator().manual_seed(0)
    worst, cases = 0.0, []
    for chunk in (1, 4, 16, 64):  # T % chunk != 0 for 4 and 16; 64 > T: one partial chunk
        for with_S0 in (False, True):
            inputs = [x.requires_grad_() for x in scan_inputs(H, T, d_h, h, torch.float64, gen, S0=with_S0)]
            outs = {}
            for name, fn in (("chunked", memory_scan), ("loop", memory_scan_loop)):
                y, state = fn(*inputs[:8], chunk, *inputs[8:])
                loss = (y**2).sum() + state[0].sum()
                grads = torch.autograd.grad(loss, inputs)
                outs[name] = (y, state, grads)
            (yc, sc, gc), (yl, sl, gl) = outs["chunked"], outs["loop"]
            err_y = rel_err(yc, yl)
            err_state = max(rel_err(a, b) for a, b in zip(sc, sl))
            err_grad = max(rel_err(a, b) for a, b in zip(gc, gl))
            case = {"chunk": chunk, "S0": "random" if with_S0 else "zero", "y": err_y, "end_state": err_state, "grads": err_grad}
            log("selftest", case)
            cases.append(case)
            worst = max(worst, err_y, err_state, err_grad)

    # The layer is causal: changing tokens after t0 leaves outputs up to t0 unchanged.
    torch.manual_seed(3)
    layer = TitansMemoryLayer(d=12, heads=3, d_head=4, expansion=2, chunk=4).double()
    X = torch.randn(1, 21, 12, dtype=torch.float64)
    X2 = X.clone()
    X2[:, 10:] += torch.randn(1, 11, 12, dtype=torch.float64)
    with torch.no_grad():
        o1, o2 = layer(X), layer(X2)
    causal = (o1[:, :10] - o2[:, :10]).abs().max().item()
    changed = (o1[:, 10:] - o2[:, 10:]).abs().max().item()
    ok = worst < 1e-9 and causal < 1e-12 and changed > 1e-6
    return {
        "selftest": "pass" if ok else "FAIL",
        "dtype": "float64",
        "shape": {"H": H, "T": T, "d_h": d_h, "h": h},
        "max_rel_err": worst,
        "tolerance": 1e-9,
        "cases": cases,
        "layer_causal_max_abs_diff_before_change": causal,
        "layer_max_abs_diff_after_change": changed,
    }, ok


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch and OpenBLAS threads (default: all cores)")
    p.add_argument("--blas-threads", type=int, default=None, help="OpenBLAS threads (default: --threads)")
    p.add_argument("--only", default="matmul,memory_scan,memory_layer", help="comma-separated subset to run")
    p.add_argument("--quick", action="store_true", help="smoke test: T = 512, fewer runs")
    p.add_argument("--tokens", type=int, default=None, help="sequence length T (default 4096, 512 with --quick)")
    p.add_argument("--selftest", action="store_true", help="check the chunk-parallel scan against the token loop (float64, 1 thread), then exit")
    args = p.parse_args()

    blas_threads = args.threads if args.blas_threads is None else args.blas_threads
    set_threads(args.threads, blas_threads)
    only = set(args.only.split(","))
    if args.selftest:
        torch.set_num_threads(1)  # tiny float64 tensors: threads only add overhead here
        result, ok = selftest()
        print(json.dumps(result))
        sys.exit(0 if ok else 1)

    torch.manual_seed(0)
    B, H, d_h, expansion = 1, 4, 64, 4
    h, d = expansion * d_h, H * d_h
    T = args.tokens if args.tokens else (512 if args.quick else 4096)
    warmup, runs = (1, 3) if args.quick else (2, 7)
    lib = openblas()
    t_start = time.perf_counter()

    result = {
        "torch_version": torch.__version__,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "blas_threads": blas_threads,
        "dtype": "float32",
        "blas": lib.openblas_get_config().decode() if lib else "unknown",
        "blas_core": lib.openblas_get_corename().decode() if lib else "unknown",
        "env": {k: os.environ[k] for k in ENV_KNOBS if k in os.environ},
        "machine": platform.processor() or platform.machine(),
        "quick": args.quick,
        "config": {"B": B, "H": H, "d_h": d_h, "hidden": h, "d": d, "T": T, "chunk": 16, "warmup": warmup, "runs": runs},
    }

    def rounded(r):
        return {key: [round(x, 1) for x in val] if isinstance(val, list) else round(val, 1) for key, val in r.items()}

    if "matmul" in only:
        result["matmul"] = {}
        for M, K, N in ((256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (4096, 64, 256)):
            key = f"{M}x{K}x{N}"
            result["matmul"][key] = round(bench_matmul(M, K, N, samples=3 if args.quick else 7), 1)
            log(f"matmul {key}: {result['matmul'][key]} GFLOP/s")

    if "memory_scan" in only:
        result["memory_scan"] = {}
        for chunk in (16, 64):
            result["memory_scan"][f"b{chunk}"] = rounded(bench_scan(H, T, d_h, h, chunk, warmup, runs))
            log(f"memory_scan b{chunk}: {result['memory_scan'][f'b{chunk}']}")

    if "memory_layer" in only:
        result["memory_layer"] = rounded(bench_layer(B, T, d, H, d_h, expansion, 16, warmup, runs))
        log(f"memory_layer: {result['memory_layer']}")

    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
