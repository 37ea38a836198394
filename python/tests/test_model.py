"""SPEC §3-§5 invariants for every variant of the twin: pieces of any sizes = one pass (float64
1e-9), causal (changing token t+1 changes nothing at ≤ t, exactly), an inference state that does
not grow for MAC/MAG/MAL/LMM, and the small preset's parameter counts equal titans-ts's."""

import json

import pytest
import torch
from conftest import REPO, rel_err, stream

from titans_torch.config import MODEL_VARIANTS, resolve_config
from titans_torch.model import TitansModel, count_parameters, state_tensors


def tiny(variant, **overrides):
    config = resolve_config({
        "variant": variant, "vocabSize": 12, "dModel": 8, "layers": 2, "heads": 2, "window": 4,
        "segmentSize": 4, "persistentTokens": 2, "memory": {"heads": 2, "headDim": 4, "expansion": 2, "chunkSize": 2},
        **overrides,
    })
    torch.manual_seed(1)
    return TitansModel(config).double()


@pytest.mark.parametrize("variant", MODEL_VARIANTS)
def test_pieces_equal_whole(variant):
    model = tiny(variant)
    tokens = torch.randint(0, 12, (2, 23), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole, _ = model(tokens)
        assert torch.equal(model(tokens, keep_state=False)[0], whole)
    for cuts in ([1] * 23, [7, 9, 7], [3, 5, 2, 6, 7]):
        pieces, state = stream(model, tokens, cuts)
        assert state.position == 23
        assert rel_err(pieces, whole) < 1e-9, cuts


@pytest.mark.parametrize("variant", MODEL_VARIANTS)
def test_causal(variant):
    model = tiny(variant)
    tokens = torch.randint(0, 12, (2, 13), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        base, _ = model(tokens)
        for t in (0, 4, 9):
            changed = tokens.clone()
            changed[:, t + 1] = (changed[:, t + 1] + 5) % 12
            out, _ = model(changed)
            assert torch.equal(out[:, : t + 1], base[:, : t + 1])
            assert (out[:, t + 1] - base[:, t + 1]).abs().max() > 1e-9


@pytest.mark.parametrize("variant", ["mac", "mag", "mal", "lmm"])
def test_state_size_does_not_grow(variant):
    model = tiny(variant)
    sizes = []
    with torch.no_grad():
        state = None
        for piece in range(6):
            _, state = model(torch.randint(0, 12, (1, 8)), state)
            sizes.append(sum(t.numel() for t in {id(t): t for t in state_tensors(state)}.values()))
    assert sizes[2:] == [sizes[2]] * 4, sizes


def test_small_preset_parameter_counts_equal_titans_ts():
    preset = json.loads((REPO / "presets" / "small.json").read_text())["model"]
    counts = {v: count_parameters(TitansModel(resolve_config({**preset, "variant": v, "vocabSize": 256}))) for v in ("mac", "mag", "swa")}
    assert counts == {"mac": 174_540, "mag": 174_540, "swa": 113_984}  # bench/README.md: initModel's counts


def test_float32_training_step_is_finite():
    model = tiny("mac").float()
    logits, _ = model(torch.randint(0, 12, (2, 9)), keep_state=False)
    logits.logsumexp(-1).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_bad_inputs_are_named():
    model = tiny("mag")
    with pytest.raises(ValueError, match="tokens must be \\(B, T\\)"):
        model(torch.zeros(5, dtype=torch.long))
    _, state = model(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="the state is for a batch of 2"):
        model(torch.zeros(1, 3, dtype=torch.long), state)
