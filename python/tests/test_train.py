"""Training with the twin (python -m titans_torch.train): exact resume; a checkpoint titans-ts
resumes with the same losses; 2 processes under torchrun (gloo) follow 1 process with the same
global batch (1e-5), and their checkpoint loads in `titans generate`; FSDP where torch has it;
the BPE tokenizer titans-ts would train."""

import json
import shutil

import pytest
import torch
from conftest import FIGURES, REPO, python, rel_err, titans, ts_logits

from titans_torch import load_checkpoint
from titans_torch.runtime import fsdp_unavailable


def train(out, *flags, processes=1, data, device="cpu"):
    """python -m titans_torch.train on the tiny preset (on the CPU unless told: the checks compare
    with titans-ts's float32 CPU numbers, and 2 processes must not ask for 2 GPUs)."""
    args = ["-m", "titans_torch.train", "--preset", "tiny", "--data", data, "--out", out, "--threads", "1",
            "--log-every", "0", "--device", device, *flags]
    if processes > 1:  # torchrun, through the shim that works on Debian's torch 1.13 / Python 3.11 too
        args = ["-m", "titans_torch.torchrun", "--nproc_per_node", str(processes), *args]
    return python(*args)


def record(out):
    return json.loads((out / "checkpoint" / "trainer.json").read_text())


def curve_error(a, b):
    """max relative difference of two runs' losses, step by step (training and validation)."""
    ha, hb = record(a)["history"], record(b)["history"]
    assert [r["step"] for r in ha] == [r["step"] for r in hb]
    errors = [abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(ha, hb)]
    errors += [abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(record(a)["evals"], record(b)["evals"])]
    return max(errors)


def test_resume_is_exact(tmp_path, text_file):
    train(tmp_path / "straight", "--steps", "6", "--eval-every", "3", data=text_file)
    train(tmp_path / "resumed", "--steps", "6", "--eval-every", "3", "--stop-at", "4", data=text_file)
    result = train(tmp_path / "resumed", "--steps", "6", "--resume", data=text_file)
    assert "resuming" in result.stderr and "at step 4 of 6" in result.stderr
    a, b = record(tmp_path / "straight"), record(tmp_path / "resumed")
    assert a["history"] == [dict(r, tokensPerSecond=x["tokensPerSecond"]) for r, x in zip(b["history"], a["history"])]
    assert a["rng"] == b["rng"] and a["evals"] == b["evals"]
    ma, _, _ = load_checkpoint(tmp_path / "straight")
    mb, _, _ = load_checkpoint(tmp_path / "resumed")
    for (n, p), (_, q) in zip(ma.named_parameters(), mb.named_parameters()):
        assert torch.equal(p, q), n


def test_refuses_to_overwrite_without_resume(tmp_path, text_file):
    train(tmp_path / "run", "--steps", "1", "--eval-every", "0", data=text_file)
    with pytest.raises(AssertionError, match="already holds a checkpoint: pass --resume"):
        train(tmp_path / "run", "--steps", "2", data=text_file)


def test_titans_ts_resumes_a_twin_run_with_the_same_losses(tmp_path, text_file):
    train(tmp_path / "twin", "--steps", "7", "--eval-every", "2", "--stop-at", "4", data=text_file)
    assert record(tmp_path / "twin")["step"] == 4
    shutil.copytree(tmp_path / "twin", tmp_path / "ts")
    train(tmp_path / "twin", "--steps", "7", "--resume", data=text_file)
    titans("train", "--preset", "tiny", "--data", text_file, "--out", tmp_path / "ts", "--steps", "7", "--resume", "--threads", "1")
    err = curve_error(tmp_path / "twin", tmp_path / "ts")
    FIGURES.append(("twin run resumed: twin vs titans-ts", "losses", err))
    assert err < 1e-5
    assert [r["step"] for r in record(tmp_path / "ts")["history"]] == list(range(1, 8))


def test_two_processes_follow_one(tmp_path, text_file):
    flags = ["--steps", "6", "--batch-size", "4", "--accumulate", "2", "--eval-every", "3", "--variant", "mac"]
    train(tmp_path / "one", *flags, data=text_file)
    result = train(tmp_path / "two", *flags, processes=2, data=text_file)
    assert "on 2 process(es), DDP" in result.stderr
    err = curve_error(tmp_path / "one", tmp_path / "two")
    FIGURES.append(("torchrun 2 processes vs 1 (DDP, gloo)", "losses", err))
    assert err < 1e-5
    generated = titans("generate", "--checkpoint", tmp_path / "two", "--prompt", "The ", "--max-tokens", "8", "--threads", "1")
    assert generated.stdout.startswith("The ")
    model, _, _ = load_checkpoint(tmp_path / "two")
    rows = [[84, 104, 101, 32, 67, 111, 110, 103, 114, 101]]
    with torch.no_grad():
        ours, _ = model(torch.tensor(rows))
    assert rel_err(ours, ts_logits(tmp_path / "two" / "checkpoint", rows)) < 1e-5


def test_fsdp_follows_one_process(tmp_path, text_file):
    reason = fsdp_unavailable()
    if reason:  # then --fsdp says why instead of training something else
        with pytest.raises(AssertionError, match="--fsdp needs torch.distributed.fsdp"):
            train(tmp_path / "fsdp", "--steps", "1", "--fsdp", data=text_file)
        print(f"\nFSDP skipped: torch.distributed.fsdp does not import here ({reason})")
        pytest.skip(f"torch.distributed.fsdp does not import: {reason}")
    device = "cuda" if torch.cuda.device_count() >= 2 else "cpu"
    flags = ["--steps", "4", "--batch-size", "4", "--eval-every", "2", "--no-autocast"]
    train(tmp_path / "one", *flags, data=text_file, device=device)
    result = train(tmp_path / "fsdp", *flags, "--fsdp", processes=2, data=text_file, device=device)
    assert "FSDP" in result.stderr
    err = curve_error(tmp_path / "one", tmp_path / "fsdp")
    FIGURES.append(("torchrun 2 processes FSDP vs 1", "losses", err))
    assert err < 1e-5
    train(tmp_path / "fsdp", "--steps", "5", "--fsdp", "--resume", processes=2, data=text_file, device=device)
    titans("generate", "--checkpoint", tmp_path / "fsdp", "--max-tokens", "4", "--threads", "1")


def test_bpe_tokenizer_is_titans_ts(tmp_path, text_file):
    train(tmp_path / "twin", "--steps", "1", "--eval-every", "0", "--tokenizer", "bpe:300", data=text_file)
    titans("train", "--preset", "tiny", "--data", text_file, "--out", tmp_path / "ts", "--steps", "1", "--eval-every", "0",
           "--tokenizer", "bpe:300", "--threads", "1")
    ours = json.loads((tmp_path / "twin" / "checkpoint" / "tokenizer.json").read_text())
    theirs = json.loads((tmp_path / "ts" / "checkpoint" / "tokenizer.json").read_text())
    assert ours == theirs and len(ours["model"]["merges"]) > 0
    assert json.loads((tmp_path / "twin" / "checkpoint" / "config.json").read_text())["vocabSize"] == 300


def test_presets_are_the_repository_files():
    from titans_torch.train import find_preset

    for name in ("tiny", "small", "paper-170m"):
        assert find_preset(name)["model"] == json.loads((REPO / "presets" / f"{name}.json").read_text())["model"]
