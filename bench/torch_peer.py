#!/usr/bin/env python3
"""PyTorch peer for `npm run bench`: the same measurements, done by the PyTorch twin
(python/titans_torch, the one PyTorch implementation of this repository) on the CPU, eager.

Prints ONE JSON object on stdout (progress goes to stderr):
  matmul GFLOP/s, the Titans memory core (memory_scan) and the full memory layer, each as a
  median of several timed runs after warm-up. See bench/README.md ("PyTorch peer").

    /usr/bin/python3 bench/torch_peer.py [--threads N] [--blas-threads N] [--quick] [--tokens T] [--selftest]
                                         [--only matmul,memory_scan,memory_layer]

Needs Debian's python3-torch (1.13, CPU) with OpenBLAS: bash scripts/install-python-deps.sh.

Axes legend
  H    heads                              4
  T    tokens in the sequence             4096 (512 with --quick)
  b    chunk size                         16 (memory_scan also at 64)
  d_h  head width (query, key, value)     64
  h    memory MLP hidden width            expansion * d_h = 4 * 64 = 256
  d    model width                        H * d_h = 256
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the working tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from titans_torch.config import default_memory_layer_config  # noqa: E402
from titans_torch.memory import initial_memory_state, memory_scan, memory_scan_loop  # noqa: E402
from titans_torch.memory_layer import MemoryLayer  # noqa: E402
from titans_torch.runtime import ENV_KNOBS, flush_denormals, openblas, set_threads  # noqa: E402


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def scan_inputs(H, T, d_h, h, dtype, gen, S0=False):
    """Random inputs shaped like the layer's: unit-norm q, k; gates in their layer ranges.
    Returns the six per-token inputs and a fresh (or, with S0, a random-momentum) state builder."""

    def rn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    q, k = F.normalize(rn(H, T, d_h), dim=-1), F.normalize(rn(H, T, d_h), dim=-1)
    v = rn(H, T, d_h)
    alpha = torch.sigmoid(rn(H, T))
    eta = 0.9 * torch.sigmoid(rn(H, T))
    theta = 0.1 * torch.sigmoid(rn(H, T))
    W = [rn(H, d_h, h) / d_h**0.5, rn(H, h, d_h) / h**0.5]
    S = [0.1 * rn(H, d_h, h), 0.1 * rn(H, h, d_h)] if S0 else None
    return [q, k, v, alpha, eta, theta], W, S


def state_of(W, chunk, S=None):
    state = initial_memory_state(tuple(W), chunk)
    if S is not None:
        state = type(state)(state.weights, tuple(S), state.chunk_start, 0, chunk)
    return state


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


def bench_matmul(M, K, N, samples):
    """GFLOP/s of (M x K) @ (K x N) = 2 M K N flops, into a preallocated output."""
    a, b, c = torch.randn(M, K), torch.randn(K, N), torch.empty(M, N)
    torch.mm(a, b, out=c)
    reps = 1
    while True:  # calibrate: one sample runs >= 0.1 s
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=c)
        if time.perf_counter() - t0 >= 0.1:
            break
        reps *= 2

    def run():
        for _ in range(reps):
            torch.mm(a, b, out=c)

    sec = statistics.median(timed_seconds(run, warmup=1, runs=samples))
    return 2 * M * K * N * reps / sec / 1e9


def bench_scan(H, T, d_h, h, chunk, warmup, runs):
    gen = torch.Generator().manual_seed(1)
    seq, W, _ = scan_inputs(H, T, d_h, h, torch.float32, gen)

    def forward():
        with torch.no_grad():
            memory_scan(*seq, state_of(W, chunk))

    leaves = [x.clone().requires_grad_() for x in seq + W]  # q, k, v, gates, W⁰

    def fwd_bwd():
        for x in leaves:
            x.grad = None
        y, end = memory_scan(*leaves[:6], state_of(leaves[6:], chunk))
        ((y**2).sum() + end.weights[0].sum()).backward()

    return throughput(T, timed_seconds(forward, warmup, runs), timed_seconds(fwd_bwd, warmup, runs))


def bench_layer(B, T, d, H, d_h, expansion, chunk, warmup, runs):
    """The twin's memory layer (SPEC §2) with titans-ts's defaults for these sizes (as
    bench/run.ts's benchMemoryLayer: defaultMemoryLayerConfig)."""
    torch.manual_seed(2)
    config = default_memory_layer_config(d, {"heads": H, "headDim": d_h, "expansion": expansion, "chunkSize": chunk})
    layer = MemoryLayer(d, config)
    X = torch.randn(B, T, d)

    def forward():
        with torch.no_grad():
            layer(X, layer.initial_state(B))

    Xg = X.clone().requires_grad_()

    def fwd_bwd():
        layer.zero_grad(set_to_none=True)
        Xg.grad = None
        y, _ = layer(Xg, layer.initial_state(B))
        (y**2).sum().backward()  # to X and every parameter

    return throughput(B * T, timed_seconds(forward, warmup, runs), timed_seconds(fwd_bwd, warmup, runs))


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def selftest():
    """Chunk-parallel form == token-by-token recurrence in float64 (y, end state, gradients to every
    input), and the layer is causal. python/tests/test_memory.py checks the same and more."""
    H, T, d_h, h = 2, 37, 5, 8
    gen = torch.Generator().manual_seed(0)
    worst, cases = 0.0, []
    for chunk in (1, 4, 16, 64):  # T % chunk != 0 for 4 and 16; 64 > T: one partial chunk
        for with_S0 in (False, True):
            seq, W, S = scan_inputs(H, T, d_h, h, torch.float64, gen, S0=with_S0)
            leaves = [x.requires_grad_() for x in seq + W + (S or [])]
            outs = {}
            for name, fn in (("chunked", memory_scan), ("loop", memory_scan_loop)):
                y, end = fn(*leaves[:6], state_of(leaves[6:8], chunk, leaves[8:] or None))
                loss = (y**2).sum() + end.weights[0].sum()
                outs[name] = (y, end.weights + end.momentum, torch.autograd.grad(loss, leaves))
            (yc, sc, gc), (yl, sl, gl) = outs["chunked"], outs["loop"]
            case = {"chunk": chunk, "S0": "random" if with_S0 else "zero", "y": rel_err(yc, yl),
                    "end_state": max(rel_err(*torch.broadcast_tensors(a, b)) for a, b in zip(sc, sl)),
                    "grads": max(rel_err(a, b) for a, b in zip(gc, gl))}
            log("selftest", case)
            cases.append(case)
            worst = max(worst, case["y"], case["end_state"], case["grads"])
    torch.manual_seed(3)
    layer = MemoryLayer(12, default_memory_layer_config(12, {"heads": 3, "headDim": 4, "expansion": 2, "chunkSize": 4})).double()
    X = torch.randn(1, 21, 12, dtype=torch.float64)
    X2 = X.clone()
    X2[:, 10:] += torch.randn(1, 11, 12, dtype=torch.float64)
    with torch.no_grad():
        o1, o2 = layer(X, layer.initial_state(1))[0], layer(X2, layer.initial_state(1))[0]
    causal = (o1[:, :10] - o2[:, :10]).abs().max().item()
    changed = (o1[:, 10:] - o2[:, 10:]).abs().max().item()
    ok = worst < 1e-9 and causal < 1e-12 and changed > 1e-6
    return {
        "selftest": "pass" if ok else "FAIL", "dtype": "float64", "shape": {"H": H, "T": T, "d_h": d_h, "h": h},
        "max_rel_err": worst, "tolerance": 1e-9, "cases": cases,
        "layer_causal_max_abs_diff_before_change": causal, "layer_max_abs_diff_after_change": changed,
    }, ok


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

    flush_denormals()  # as the trainer does: small gates make float32 denormals, ~100x slower on x86
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
        "flush_denormals": True,
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
