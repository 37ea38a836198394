"""Train a titans-ts model in PyTorch, on one process or many (DDP by default, --fsdp to shard):

    torchrun --nproc_per_node N -m titans_torch.train --preset small --data FILE --steps S --out DIR
    python -m titans_torch.train --preset tiny --data notes.txt --steps 200 --out runs/tiny   # one process

The flags are `titans train`'s (src/cli/train.ts), with the same meaning: the same presets/ files,
`--set key=value` overrides, the byte or `bpe:N` tokenizer, the 95/5 data split, windows drawn with
titans-ts's generator, AdamW (β₂ 0.95, decay on matrices only) with linear warm-up and cosine decay,
clipping at global norm 1, gradient accumulation, a non-finite step reported and not applied.
`--batch-size` is the global micro-batch: N processes split each batch's rows, so a run on N
processes follows the run on one (same batches, same updates). The run folder is titans-ts's:
`DIR/checkpoint/` loads in `titans generate` / `titans eval`, and resumes exactly here (--resume)
or in `titans train --resume`.
"""

import argparse
import copy
import json
import math
import os
import re
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import checkpoint as ckpt
from .config import resolve_config
from .data import encode_text, load_text, sample_batch, sequential_batches, split_tokens
from .history import append_record, normalize_history, recent_loss, step_record
from .model import TitansModel, count_parameters
from .rng import Rng
from .runtime import autocast, flush_denormals, fsdp_unavailable, maybe_compile, pick_device, set_threads
from .tokenizer import byte_tokenizer, js_slice, js_length, train_bpe

# src/train/trainer.ts DEFAULT_TRAIN_OPTIONS (a preset's "train" and the flags override them).
DEFAULT_TRAIN_OPTIONS = {
    "steps": 600, "batchSize": 16, "seqLen": 256, "accumulate": 1, "lr": 3e-3, "minLr": 3e-4,
    "warmupSteps": 50, "weightDecay": 0.1, "beta2": 0.95, "clipNorm": 1, "evalEvery": 100,
    "evalBatches": 8, "checkpointEvery": 200, "seed": 0, "maxBadSteps": 5,
}


def resolve_train_options(given=None):
    """Fills defaults (minLr defaults to lr/10 when lr is given) and validates, naming the field."""
    given = dict(given or {})
    o = {**DEFAULT_TRAIN_OPTIONS, **given}
    if "lr" in given and "minLr" not in given:
        o["minLr"] = given["lr"] / 10
    for key, v in o.items():
        if key not in DEFAULT_TRAIN_OPTIONS:
            raise ValueError(f"train options: unknown field '{key}'")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"train options: {key} must be a finite number, got {v!r}")
    for key in ("steps", "batchSize", "seqLen", "accumulate", "evalBatches", "checkpointEvery", "maxBadSteps"):
        if not (float(o[key]).is_integer() and o[key] >= 1):
            raise ValueError(f"train options: {key} must be an integer ≥ 1, got {o[key]}")
    for key in ("warmupSteps", "evalEvery", "seed"):
        if not (float(o[key]).is_integer() and o[key] >= 0):
            raise ValueError(f"train options: {key} must be an integer ≥ 0, got {o[key]}")
    if not o["lr"] > 0:
        raise ValueError(f"train options: lr must be > 0, got {o['lr']}")
    if not 0 <= o["minLr"] <= o["lr"]:
        raise ValueError(f"train options: minLr must be in [0, lr], got {o['minLr']}")
    if not 0 < o["beta2"] < 1:
        raise ValueError(f"train options: beta2 must be in (0, 1), got {o['beta2']}")
    if o["weightDecay"] < 0 or o["clipNorm"] < 0:
        raise ValueError("train options: weightDecay and clipNorm must be ≥ 0")
    return o


def warmup_cosine(peak, warmup, total, minimum):
    """src/train/schedule.ts: peak·(step+1)/W during warm-up, then cosine to `minimum` at `total`."""

    def lr(step):
        if step < warmup:
            return peak * (step + 1) / warmup
        if step >= total:
            return minimum
        progress = (step - warmup) / (total - warmup)
        return minimum + (peak - minimum) * 0.5 * (1 + math.cos(math.pi * progress))

    return lr


def decays(name, p):
    """Weight decay on weight matrices and embeddings only (titans-ts decayWeightsOnly): not on
    norm scales (normScale is rank 2 but a scale), conv taps or vectors."""
    return p.dim() >= 2 and not re.search(r"(normScale|conv[QKV])$", name)


def make_optimizer(named_parameters, options):
    """AdamW as titans-ts's: β = (0.9, beta2), ε = 1e-8, decoupled decay on `decays` tensors."""
    named = list(named_parameters)
    groups = [
        {"params": [p for n, p in named if decays(n, p)], "weight_decay": options["weightDecay"]},
        {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=options["lr"], betas=(0.9, options["beta2"]), eps=1e-8)


def find_preset(name_or_path):
    """A preset by name (presets/<name>.json of the titans-ts checkout, found above this package
    or the working directory, or in $TITANS_PRESETS_DIR) or by path."""
    is_path = "/" in name_or_path or name_or_path.endswith(".json")
    candidates = [Path(name_or_path)] if is_path else []
    if not is_path:
        roots = [Path(os.environ["TITANS_PRESETS_DIR"])] if os.environ.get("TITANS_PRESETS_DIR") else []
        for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
            roots += [folder / "presets" for folder in (start, *start.parents)]
        candidates = [root / f"{name_or_path}.json" for root in roots]
    for path in candidates:
        if path.is_file():
            try:
                preset = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from None
            if not isinstance(preset, dict) or not isinstance(preset.get("model"), dict):
                raise ValueError(f'{path}: a preset needs a "model" object')
            return {"name": name_or_path, "model": preset["model"], "train": preset.get("train") or {}}
    raise ValueError(f"preset file not found: {name_or_path}" if is_path else f"unknown preset '{name_or_path}' (set TITANS_PRESETS_DIR, or pass a preset file)")


def apply_settings(base, settings):
    """`key=value` overrides, dotted paths, JSON values (src/cli/train.ts applySettings)."""
    out = copy.deepcopy(base)
    for setting in settings:
        key, eq, raw = setting.partition("=")
        if not eq or not key:
            raise ValueError(f"--set expects key=value, got '{setting}'")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node, path = out, key.split(".")
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


def make_tokenizer(spec, text):
    """'byte', or 'bpe:N' trained on the first 95% of the text (as `titans train` does)."""
    if spec == "byte":
        return byte_tokenizer()
    m = re.fullmatch(r"bpe:(\d+)", spec)
    if not m:
        raise ValueError(f"--tokenizer must be 'byte' or 'bpe:N' (e.g. bpe:1024), got '{spec}'")
    return train_bpe(js_slice(text, math.floor(js_length(text) * 0.95)), int(m.group(1)))


class Processes:
    """This process's place in a torchrun launch (or a lone process): rank, world size, device."""

    def __init__(self, device_name):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world)))
        self.device = pick_device(device_name, self.local_rank)
        self.launched = "RANK" in os.environ  # started by torchrun (of any size)
        if self.launched:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.main = self.rank == 0

    def sum(self, values):
        """Sums a list of floats over the processes (float64)."""
        t = torch.tensor(values, dtype=torch.float64)
        if self.world > 1:
            if self.device.type == "cuda":
                t = t.to(self.device)
            dist.all_reduce(t)
        return t.cpu().tolist()

    def broadcast(self, value):
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self, finished):
        """Leaves the process group; waits for the others only after a run that finished (after
        a failure torchrun stops them, and a barrier could pair with their next collective)."""
        if self.launched:
            if finished:
                dist.barrier()
            dist.destroy_process_group()


def log(line):
    print(line, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m titans_torch.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small", help="a preset from presets/ (tiny, small, paper-170m) or a preset file")
    p.add_argument("--variant", help="mac, mag, mal, lmm, transformer, swa, deltanet, gated-deltanet (default: the preset's)")
    p.add_argument("--data", default="builtin:sotu", help="a UTF-8 text file, or builtin:sotu / builtin:sotu-small")
    p.add_argument("--out", help="run folder (default runs/<preset>-<variant>)")
    p.add_argument("--tokenizer", default="byte", help="'byte' or 'bpe:N' (a byte-level BPE of N tokens trained on the data)")
    p.add_argument("--steps", type=int, help="optimizer updates")
    p.add_argument("--batch-size", type=int, help="sequences per micro-batch, over all processes")
    p.add_argument("--seq-len", type=int, help="tokens per sequence")
    p.add_argument("--accumulate", type=int, help="micro-batches per update (gradient accumulation)")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--seed", type=int, help="initialisation and data-sampling seed")
    p.add_argument("--eval-every", type=int, help="validation every n steps (0 = never)")
    p.add_argument("--checkpoint-every", type=int, help="checkpoint every n steps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a model config field, e.g. memory.thetaMax=0.05 (repeatable)")
    p.add_argument("--threads", type=int, help="CPU threads per process (default: the cores / processes on this node)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--fsdp", action="store_true", help="shard parameters, gradients and optimizer state (FSDP, torch ≥ 2.2)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cuda or cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="parameter dtype (float64: CPU checks)")
    p.add_argument("--no-autocast", action="store_true", help="no bfloat16 autocast on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (torch ≥ 2.0)")
    p.add_argument("--stop-at", type=int, help="stop after this step with a checkpoint, as an interruption would (resume with --resume)")
    p.add_argument("--log-every", type=float, default=5.0, help="seconds between progress lines (0: every step)")
    return p.parse_args(argv)


def train_options_from_flags(a):
    flags = {"steps": a.steps, "batchSize": a.batch_size, "seqLen": a.seq_len, "accumulate": a.accumulate,
             "lr": a.lr, "seed": a.seed, "evalEvery": a.eval_every, "checkpointEvery": a.checkpoint_every}
    return {k: v for k, v in flags.items() if v is not None}


def main(argv=None):
    a = parse_args(argv)
    procs = Processes(a.device)
    try:
        code = run(a, procs)
    except BaseException:
        procs.close(finished=False)
        raise
    procs.close(finished=True)
    return code


def run(a, procs):
    if procs.device.type == "cpu":
        set_threads(a.threads or max(1, (os.cpu_count() or 1) // procs.local_world))
        flush_denormals()
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    if a.fsdp:
        reason = fsdp_unavailable()
        if reason:
            raise SystemExit(f"titans_torch.train: --fsdp needs torch.distributed.fsdp and torch.distributed.checkpoint.state_dict; {reason}")
        if not procs.launched:
            raise SystemExit("titans_torch.train: --fsdp runs under torchrun (e.g. torchrun --nproc_per_node 8 -m titans_torch.train --fsdp …)")
    preset = find_preset(a.preset)
    variant = a.variant or preset["model"].get("variant", "mag")
    safe_name = re.sub(r"[^\w-]", "_", preset["name"])
    out = Path(a.out or Path("runs") / f"{safe_name}-{variant}")
    ckpt_dir = out / "checkpoint"
    flags = train_options_from_flags(a)
    resumed = None
    if (ckpt_dir / "config.json").exists():
        if not a.resume:
            raise SystemExit(f"{ckpt_dir} already holds a checkpoint: pass --resume to continue it, or choose another --out")
        _, config, tensors, tokenizer, optimizer_tensors, trainer = ckpt.read_checkpoint(ckpt_dir)
        if optimizer_tensors is None or not isinstance(trainer.get("step"), int) or not isinstance(trainer.get("rng"), list):
            raise SystemExit(f"{ckpt_dir}: no optimizer state, step or data sampler state (rng) to resume from")
        options = resolve_train_options({**trainer.get("options", {}), **({"steps": flags["steps"]} if "steps" in flags else {})})
        data_source = str(trainer.get("data", a.data))
        tokenizer = tokenizer or byte_tokenizer()
        resumed = (tensors, optimizer_tensors, trainer)
        text, _ = load_text(data_source)
    else:
        options = resolve_train_options({**preset["train"], **flags})
        data_source = a.data
        text, _ = load_text(data_source)
        if procs.main and a.tokenizer != "byte":
            log(f"training a BPE tokenizer ({a.tokenizer}) on {len(text)} characters…")
        tokenizer = procs.broadcast(make_tokenizer(a.tokenizer, text) if procs.main else None)
        config = resolve_config(apply_settings({**preset["model"], "variant": variant, "vocabSize": tokenizer.vocab_size}, a.set))
    ids = encode_text(tokenizer, text)
    train_ids, validation_ids = split_tokens(ids)
    B, T, accumulate = options["batchSize"], options["seqLen"], options["accumulate"]
    if B % procs.world:
        raise SystemExit(f"--batch-size {B} must be divisible by the {procs.world} processes (each takes an equal share of its rows)")
    rows = slice(procs.rank * B // procs.world, (procs.rank + 1) * B // procs.world)

    torch.manual_seed(options["seed"])
    model = TitansModel(config).to(dtype)
    if resumed:
        ckpt.load_weights(model, resumed[0], str(ckpt_dir / ckpt.MODEL_FILE))
    model = model.to(procs.device)
    names = [n for n, _ in model.named_parameters()]  # the checkpoint's tensor names
    if a.fsdp:
        wrapped = _wrap_fsdp(model, procs)
    elif procs.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(model, device_ids=[procs.device.index] if procs.device.type == "cuda" else None)
    else:
        wrapped = model
    optimizer = make_optimizer(_params_by_name(wrapped).items(), options)
    step, rng_state, history, evals, bad_steps, optimizer_step = 0, Rng(options["seed"] + 1).state(), [], [], [], 0
    if resumed:
        trainer = resumed[2]
        step, rng_state = trainer["step"], trainer["rng"]
        history, evals, bad_steps = normalize_history(trainer.get("history", [])), trainer.get("evals", []), trainer.get("badSteps", [])
        optimizer_step = int(trainer.get("optimizerStep", step))
        _load_moments(wrapped, optimizer, names, resumed[1], optimizer_step, a.fsdp, dtype, procs.device)
    forward, compile_note = maybe_compile(wrapped, a.compile)
    use_autocast = not a.no_autocast
    schedule = warmup_cosine(options["lr"], min(options["warmupSteps"], options["steps"]), options["steps"], options["minLr"])
    rng = Rng(rng_state)
    V = config["vocabSize"]
    parameters = count_parameters(model)
    if procs.main:
        log(f"{config['variant']} · {parameters:,} parameters · {len(train_ids):,} training tokens ({data_source}, {tokenizer.kind} tokenizer) · "
            f"{options['steps']} steps of {B}×{T}{f'×{accumulate}' if accumulate > 1 else ''} tokens on {procs.world} process(es), "
            f"{'FSDP' if a.fsdp else 'DDP' if procs.world > 1 else 'one process'}, {procs.device.type} {str(dtype)[6:]}"
            f"{' + bf16 autocast' if use_autocast and procs.device.type == 'cuda' else ''} → {out}")
        if compile_note:
            log(compile_note)
        if resumed:
            log(f"resuming {ckpt_dir} at step {step} of {options['steps']}")

    stop = {"now": False}

    def on_signal(signum, _frame):
        if stop["now"]:
            sys.exit(130)
        stop["now"] = True
        if procs.main:
            log("interrupted: saving a checkpoint before stopping (Ctrl-C again to quit now)")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def save():
        record = {"options": options, "data": data_source, "step": step, "rng": rng.state(), "history": history,
                  "evals": evals, "badSteps": bad_steps, "optimizerStep": optimizer_step, "writer": "titans_torch"}
        params, moments = _gather(wrapped, optimizer, names, a.fsdp)
        if procs.main:
            ckpt.write_checkpoint(params, config, tokenizer, ckpt_dir, moments, record)
            log(f"step {step}: checkpoint saved to {ckpt_dir}")

    started, start_step, last_line, consecutive_bad = time.perf_counter(), step, 0.0, 0
    eval_model = wrapped.module if hasattr(wrapped, "module") and not a.fsdp else wrapped
    while step < options["steps"]:
        if procs.world > 1:
            stop["now"] = procs.sum([float(stop["now"])])[0] > 0  # every process stops at the same step
        if stop["now"] or (a.stop_at is not None and step >= a.stop_at):
            break
        began = time.perf_counter()
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for micro in range(accumulate):
            inputs, targets = sample_batch(train_ids, B, T, rng)  # the global batch, on every process
            count = max(1, int((targets != -1).sum()))
            sync = wrapped.no_sync() if procs.world > 1 and not a.fsdp and micro < accumulate - 1 else nullcontext()
            with sync:
                with autocast(procs.device, use_autocast):
                    logits, _ = forward(inputs[rows].to(procs.device), None, False)
                local = F.cross_entropy(logits.float().reshape(-1, V), targets[rows].reshape(-1).to(procs.device), ignore_index=-1, reduction="sum")
                # DDP averages gradients over the processes: × world makes it the global batch's mean.
                (local * (procs.world / count / accumulate)).backward()
            loss_sum += procs.sum([local.item()])[0] / count
        loss = loss_sum / accumulate
        norm = _grad_norm(wrapped, procs, a.fsdp)
        step += 1
        if not (math.isfinite(loss) and math.isfinite(norm)):
            optimizer.zero_grad(set_to_none=True)
            reason = f"loss {loss}, gradient norm {norm}"
            bad_steps.append({"step": step, "reason": reason})
            consecutive_bad += 1
            if procs.main:
                log(f"warning: step {step}: non-finite {reason}; this step's update was not applied")
            if consecutive_bad >= options["maxBadSteps"]:
                raise SystemExit(f"training stopped at step {step}: {consecutive_bad} consecutive steps with a non-finite loss or gradient ({reason}); "
                                 "lower memory.thetaMax / memory.etaMax (--set) or the learning rate")
            continue
        consecutive_bad = 0
        if options["clipNorm"] > 0 and norm > options["clipNorm"]:
            scale = options["clipNorm"] / norm
            for p in wrapped.parameters():
                if p.grad is not None:
                    p.grad.mul_(scale)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        optimizer_step += 1
        seconds = time.perf_counter() - began
        history = append_record(history, step_record(step, loss, lr, norm, B * T * accumulate / seconds))
        now = time.perf_counter()
        if procs.main and (a.log_every <= 0 or now - last_line >= a.log_every or step in (start_step + 1, options["steps"])):
            last_line = now
            rate = (step - start_step) * B * T * accumulate / (now - started)
            eta = (options["steps"] - step) * (now - started) / max(1, step - start_step)
            log(f"train {step}/{options['steps']} · loss {loss:.4f} · lr {lr:.2e} · grad norm {norm:.3f} · {rate:,.0f} tok/s · ETA {eta:,.0f} s")
        if options["evalEvery"] > 0 and (step % options["evalEvery"] == 0 or step == options["steps"]):
            value = evaluate_loss(eval_model, validation_ids, B, T, options["evalBatches"], procs.device, use_autocast)
            evals.append({"step": step, "loss": value})
            if procs.main:
                log(f"step {step}: validation loss {value:.4f}")
        if step % options["checkpointEvery"] == 0 or step == options["steps"]:
            save()
    if step < options["steps"] and step % options["checkpointEvery"] != 0:
        save()  # interrupted: keep what was done
    for s, handler in previous.items():
        signal.signal(s, handler)
    seconds = time.perf_counter() - started
    summary = {
        "variant": config["variant"], "parameters": parameters, "steps": step,
        "tokensSeen": step * B * T * accumulate,
        "trainLoss": recent_loss(history, 20),
        "validationLoss": evals[-1]["loss"] if evals else None,
        "tokensPerSecond": (step - start_step) * B * T * accumulate / seconds if seconds > 0 else None,
        "seconds": seconds, "badSteps": len(bad_steps), "processes": procs.world, "writer": "titans_torch",
    }
    if procs.main:
        ckpt.write_file_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        val = f"{summary['validationLoss']:.4f}" if evals else "n/a"
        print(f"{config['variant']}: {step} steps in {seconds:.0f} s ({summary['tokensPerSecond'] or 0:.0f} tokens/s) · "
              f"train loss {summary['trainLoss']:.4f} · validation loss {val} · non-finite steps {len(bad_steps)} · {out}", flush=True)
    return 0


def evaluate_loss(model, ids, batch, seq_len, max_batches, device, use_autocast=True):
    """Mean loss over up to `max_batches` consecutive windows of the validation tokens, each read
    from a fresh state (titans-ts's evaluateLoss); NaN when there is not one window."""
    if (len(ids) - 1) // seq_len < 1:
        return float("nan")
    total, count = 0.0, 0
    with torch.no_grad():
        for i, (inputs, targets) in enumerate(sequential_batches(ids, batch, seq_len)):
            if i >= max_batches:
                break
            with autocast(device, use_autocast):
                logits, _ = model(inputs.to(device), None, False)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1).to(device))
            total += loss.item() * inputs.shape[0]
            count += inputs.shape[0]
    return total / count


def _params_by_name(wrapped):
    """The parameters of a model, wrapped or not, by their names in the model (DDP prefixes
    `module.`, FSDP `_fsdp_wrapped_module.`, torch.compile `_orig_mod.`)."""
    strip = re.compile(r"(^|\.)(module|_fsdp_wrapped_module|_orig_mod|_checkpoint_wrapped_module)\.")
    out = {}
    for name, p in wrapped.named_parameters():
        while True:
            clean = strip.sub(r"\1", name, count=1)
            if clean == name:
                break
            name = clean
        out[name] = p
    return out


def _grad_norm(wrapped, procs, fsdp):
    """√(Σ g²) over every gradient, accumulated in float64 (titans-ts's globalNorm). Under FSDP
    each process holds a shard, so the squares are summed over the processes."""
    total = torch.zeros((), dtype=torch.float64, device=procs.device)
    for p in wrapped.parameters():
        if p.grad is not None:
            total += p.grad.detach().double().pow(2).sum()
    value = total.item()
    if fsdp and procs.world > 1:
        value = procs.sum([value])[0]
    return math.sqrt(value) if math.isfinite(value) else value


def _wrap_fsdp(model, procs):
    """FSDP with one unit per block and the original parameters kept (so AdamW's groups and the
    checkpoint's names are the model's own)."""
    import functools

    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    from .model import Block

    policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={Block})
    return FullyShardedDataParallel(model, auto_wrap_policy=policy, use_orig_params=True,
                                    device_id=procs.device if procs.device.type == "cuda" else None)


def _gather(wrapped, optimizer, names, fsdp):
    """(parameters, AdamW moments named m.<name> / v.<name>), whole, on the CPU."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        msd, osd = get_state_dict(wrapped, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        moments = {}
        for name, state in osd.get("state", {}).items():
            moments[f"m.{name}"], moments[f"v.{name}"] = state["exp_avg"], state["exp_avg_sq"]
        return {n: msd[n] for n in names if n in msd}, moments
    params = _params_by_name(wrapped)
    out, moments = {}, {}
    for name in names:
        p = params[name]
        out[name] = p.detach().cpu()
        state = optimizer.state.get(p, {})
        moments[f"m.{name}"] = state["exp_avg"].cpu() if "exp_avg" in state else torch.zeros_like(out[name])
        moments[f"v.{name}"] = state["exp_avg_sq"].cpu() if "exp_avg_sq" in state else torch.zeros_like(out[name])
    return out, moments


def _load_moments(wrapped, optimizer, names, tensors, optimizer_step, fsdp, dtype, device):
    """Restores AdamW's moments and step from m.<name> / v.<name> (titans-ts's optimizer file)."""
    missing = [n for n in names for prefix in ("m.", "v.") if prefix + n not in tensors]
    if missing:
        raise SystemExit(f"optimizer.safetensors lacks {len(missing)} moments, e.g. {missing[0]!r}")
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict, set_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True)
        osd = get_optimizer_state_dict(wrapped, optimizer, options=options)
        osd["state"] = {n: {"step": torch.tensor(float(optimizer_step)), "exp_avg": tensors[f"m.{n}"].to(dtype),
                            "exp_avg_sq": tensors[f"v.{n}"].to(dtype)} for n in names}
        set_optimizer_state_dict(wrapped, optimizer, osd, options=options)
        return
    params = _params_by_name(wrapped)
    for name in names:
        p = params[name]
        optimizer.state[p] = {"step": torch.tensor(float(optimizer_step)),
                              "exp_avg": tensors[f"m.{name}"].to(device=device, dtype=dtype),
                              "exp_avg_sq": tensors[f"v.{name}"].to(device=device, dtype=dtype)}


if __name__ == "__main__":
    sys.exit(main())
