#!/usr/bin/env python3
"""PyTorch peer of the model benchmarks (bench/models.ts): a full training step of the small preset,
done by the PyTorch twin (python/titans_torch: the same models, tensor for tensor).

Prints ONE JSON object on stdout (progress goes to stderr):

    /usr/bin/python3 bench/torch_models.py --threads N [--variants mac,mag,mal,lmm,swa] [--batch 16]
                                           [--seq 256] [--steps 5] [--warmup 2] [--selftest]

Eager PyTorch, float32, autograd, CPU. The model is presets/small.json resolved as titans-ts
resolves it (byte vocabulary), so the parameter counts are titans-ts's; python/tests checks the
twin against titans-ts in float64 (logits, loss, every gradient). A training step is what
benchTrainStep does: forward on a random batch, mean cross-entropy, backward, AdamW (lr 3e-3,
betas (0.9, 0.95), weight decay 0.1 on weight matrices), zero_grad. It reports tokens/s =
batch * seq / median step time over --steps timed steps after --warmup untimed ones (bench/run.ts
passes 9 and 3, as it times titans-ts).
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
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.dont_write_bytecode = True  # no __pycache__ in the working tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from titans_torch.config import MODEL_VARIANTS, resolve_config  # noqa: E402
from titans_torch.model import TitansModel, count_parameters  # noqa: E402
from titans_torch.runtime import ENV_KNOBS, flush_denormals, openblas, set_threads  # noqa: E402
from titans_torch.train import find_preset, make_optimizer, resolve_train_options  # noqa: E402

# initModel's counts for the small preset (bench/README.md); the twin's must equal them.
EXPECTED_PARAMETERS = {"mac": 174_540, "mag": 174_540, "mal": 174_412, "lmm": 141_516, "swa": 113_984}


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def small_config(variant, theta_max=None, eta_max=None):
    """presets/small.json for `variant`, byte vocabulary, optionally other memory caps."""
    model = dict(find_preset("small")["model"], variant=variant, vocabSize=256)
    memory = dict(model.get("memory", {}))
    if theta_max is not None:
        memory["thetaMax"] = theta_max
    if eta_max is not None:
        memory["etaMax"] = eta_max
    return resolve_config(dict(model, memory=memory))


def bench_train_step(variant, batch, seq, steps, theta_max, eta_max, warmup=2):
    torch.manual_seed(0)
    config = small_config(variant, theta_max, eta_max)
    model = TitansModel(config)
    count = count_parameters(model)
    optimizer = make_optimizer(model.named_parameters(), resolve_train_options({"lr": 3e-3}))
    gen = torch.Generator().manual_seed(1)
    losses, times = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        tokens = torch.randint(0, 256, (batch, seq + 1), generator=gen)
        logits, _ = model(tokens[:, :-1], keep_state=False)
        loss = F.cross_entropy(logits.reshape(-1, 256), tokens[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        log(f"{variant} step {i + 1}/{warmup + steps}: loss {losses[-1]:.4f}, {(time.perf_counter() - t0) * 1e3:.0f} ms")
    median = statistics.median(times)
    return {
        "tokens_per_s": round(batch * seq / median, 1),
        "step_ms": round(median * 1e3, 1),
        "step_ms_range": [round(min(times) * 1e3, 1), round(max(times) * 1e3, 1)],
        "parameters": count,
        "parameters_match": count == EXPECTED_PARAMETERS[variant] if variant in EXPECTED_PARAMETERS else None,
        "loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
    }


def selftest():
    """float64, tiny shapes: changing token t+1 leaves the logits up to t bit-identical, for every
    variant; the small preset's counts are titans-ts's; a finite loss near ln 256 at init."""
    tiny = {"vocabSize": 32, "dModel": 16, "heads": 2, "window": 5, "segmentSize": 8, "persistentTokens": 2,
            "mlpHidden": 24, "memory": {"heads": 2, "headDim": 8, "expansion": 2, "chunkSize": 4}}
    T, report, ok = 21, {}, True  # 21 tokens: two full MAC segments and a partial one
    for variant in MODEL_VARIANTS:
        torch.manual_seed(4)
        model = TitansModel(resolve_config(dict(tiny, variant=variant))).double()
        tokens = torch.randint(0, 32, (2, T + 1), generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            base, _ = model(tokens[:, :-1])
            loss = F.cross_entropy(base.reshape(-1, 32), tokens[:, 1:].reshape(-1)).item()
            worst_before, least_after = 0.0, math.inf
            for t in (0, 3, 6, 7, 8, 12, 15, 16, 19):  # around chunk (4) and segment (8) edges
                changed = tokens[:, :-1].clone()
                changed[:, t + 1] = (changed[:, t + 1] + 7) % 32
                out, _ = model(changed)
                worst_before = max(worst_before, (out[:, : t + 1] - base[:, : t + 1]).abs().max().item())
                least_after = min(least_after, (out[:, t + 1] - base[:, t + 1]).abs().max().item())
        passed = worst_before == 0.0 and least_after > 1e-9 and math.isfinite(loss)
        report[variant] = {"loss": loss, "max_abs_diff_up_to_t": worst_before, "min_abs_diff_at_t_plus_1": least_after, "pass": passed}
        log("selftest", variant, report[variant])
        ok &= passed
    for variant, expected in EXPECTED_PARAMETERS.items():
        count = count_parameters(TitansModel(small_config(variant)))
        report[f"parameters_{variant}"] = count
        ok &= count == expected
    with torch.no_grad():
        torch.manual_seed(0)
        tokens = torch.randint(0, 256, (2, 129))
        logits, _ = TitansModel(small_config("mac"))(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 256), tokens[:, 1:].reshape(-1)).item()
    report["small_mac_float32_loss"] = loss
    ok &= math.isfinite(loss) and abs(loss - math.log(256)) < 0.5
    report["selftest"] = "pass" if ok else "FAIL"
    return report, ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch and OpenBLAS threads")
    p.add_argument("--variants", default="mac,mag,mal,lmm,swa", help=f"comma-separated subset of {','.join(MODEL_VARIANTS)}")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=5, help="timed steps (after the warm-up steps)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--theta-max", type=float, default=None, help="memory θ cap (default: the preset's, as titans-ts resolves it)")
    p.add_argument("--eta-max", type=float, default=None, help="memory η cap (default: the preset's)")
    p.add_argument("--selftest", action="store_true", help="causality and finite-loss checks, then exit")
    args = p.parse_args()
    set_threads(args.threads, args.threads)
    flush_denormals()  # as the trainer does
    if args.selftest:
        torch.set_num_threads(1)  # tiny float64 tensors: threads only add overhead (and stalls)
        report, ok = selftest()
        print(json.dumps(report))
        sys.exit(0 if ok else 1)
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in MODEL_VARIANTS:
            p.error(f"unknown variant {v!r} (choose from {', '.join(MODEL_VARIANTS)})")
    lib = openblas()
    started = time.perf_counter()
    memory = small_config("mag", args.theta_max, args.eta_max)["memory"]
    result = {
        "torch_version": torch.__version__,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "blas": lib.openblas_get_config().decode() if lib else "unknown",
        "dtype": "float32",
        "flush_denormals": True,
        "env": {k: os.environ[k] for k in ENV_KNOBS if k in os.environ},
        "config": {"preset": "small", "batch": args.batch, "seq": args.seq, "steps": args.steps, "warmup": args.warmup,
                   "theta_max": memory["thetaMax"], "eta_max": memory["etaMax"]},
        "train_step": {},
    }
    for v in variants:
        result["train_step"][v] = bench_train_step(v, args.batch, args.seq, args.steps, args.theta_max, args.eta_max, args.warmup)
        log(f"{v}: {result['train_step'][v]}")
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
