"""The twin against titans-ts's float64 reference (test/python/vectors.ts): for every variant and
the configs that switch on rarer paths, the same config, tensor names, logits, loss, gradient of
every parameter, and logits streamed in pieces, to 1e-9 relative (SPEC's float64 tolerance)."""

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import FIGURES, rel_err, stream

from titans_torch import safetensors_io
from titans_torch.config import resolve_config
from titans_torch.model import TitansModel

CASES = ["mac", "mag", "mal", "lmm", "transformer", "swa", "deltanet", "gated-deltanet",
         "mal-deep-gelu", "mac-mixed", "lmm-conv1", "mag-plain"]
TOLERANCE = 1e-9


def load_case(vectors, name):
    meta = json.loads((vectors / "cases" / f"{name}.json").read_text())
    tensors, _ = safetensors_io.read(vectors / "cases" / f"{name}.safetensors")
    return meta, tensors


@pytest.mark.parametrize("name", CASES)
def test_matches_titans_ts_in_float64(vectors, name):
    meta, t = load_case(vectors, name)
    config = resolve_config(meta["input"])
    assert config == meta["config"], "resolve_config must give titans-ts's resolved config"
    model = TitansModel(config).double()
    params = {k[len("param."):]: v for k, v in t.items() if k.startswith("param.")}
    assert sorted(n for n, _ in model.named_parameters()) == sorted(params), "tensor names differ from titans-ts's"
    model.load_state_dict(params, strict=True)

    tokens, targets = t["tokens"], t["targets"]
    logits, _ = model(tokens, keep_state=False)
    loss = F.cross_entropy(logits.reshape(-1, config["vocabSize"]), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    errors = {
        "logits": rel_err(logits.detach(), t["logits"]),
        "loss": abs(loss.item() - meta["loss"]) / abs(meta["loss"]),
        "grads": max(rel_err(p.grad, t[f"grad.{n}"]) for n, p in model.named_parameters()),
    }
    pieces, _ = stream(model, tokens, meta["pieces"])
    errors["streamed"] = rel_err(pieces, t["streamed"])
    errors["pieces=whole"] = rel_err(pieces, logits.detach())
    FIGURES.extend((name, q, e) for q, e in errors.items())
    worst = {n: rel_err(p.grad, t[f"grad.{n}"]) for n, p in model.named_parameters()}
    assert errors["grads"] < TOLERANCE, f"gradient of {max(worst, key=worst.get)} off by {max(worst.values()):.2e}"
    for quantity, err in errors.items():
        assert err < TOLERANCE, f"{quantity}: relative error {err:.2e}"
    assert torch.isfinite(logits).all() and logits.abs().max() > 0.1, "vacuous vectors"
