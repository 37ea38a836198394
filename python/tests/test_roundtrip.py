"""Checkpoints move both ways: one written by `titans train` loads in the twin, and one written by
the twin loads in titans-ts (`titans generate`, and its logits through test/python/logits.ts),
with the same logits (float32: 1e-5 relative; both in float64 from the same weights: 1e-9)."""

import pytest
import torch
from conftest import FIGURES, rel_err, titans, ts_logits

from titans_torch import generate, load_checkpoint, save_checkpoint
from titans_torch.config import MODEL_VARIANTS, resolve_config
from titans_torch.model import TitansModel
from titans_torch.tokenizer import byte_tokenizer

ROWS = [[84, 104, 101, 32, 67, 111, 110, 103, 114, 101, 115, 115, 32, 115, 104, 97, 108, 108, 32, 104],
        [1, 200, 3, 45, 99, 100, 101, 7, 255, 0, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]]


@pytest.fixture(scope="module")
def ts_run(tmp_path_factory, text_file):
    """A 2-step `titans train` run of the tiny preset (MAC: segments, read, the partial segment)."""
    out = tmp_path_factory.mktemp("ts") / "run"
    titans("train", "--preset", "tiny", "--variant", "mac", "--data", text_file, "--steps", "2", "--out", out,
           "--eval-every", "0", "--threads", "1")
    return out


def test_titans_ts_checkpoint_loads_in_the_twin(ts_run):
    model, config, tokenizer = load_checkpoint(ts_run)  # a run folder: its checkpoint/ is found
    assert config["variant"] == "mac" and tokenizer.kind == "byte"
    with torch.no_grad():
        ours, _ = model(torch.tensor(ROWS))
    err = rel_err(ours, ts_logits(ts_run / "checkpoint", ROWS))
    FIGURES.append(("titans-ts → twin (float32)", "logits", err))
    assert err < 1e-5
    model64, _, _ = load_checkpoint(ts_run, dtype=torch.float64)
    with torch.no_grad():
        ours64, _ = model64(torch.tensor(ROWS))
    err64 = rel_err(ours64, ts_logits(ts_run / "checkpoint", ROWS, "float64"))
    FIGURES.append(("titans-ts → twin (float64)", "logits", err64))
    assert err64 < 1e-9


@pytest.mark.parametrize("variant", MODEL_VARIANTS)
def test_twin_checkpoint_loads_in_titans_ts(tmp_path, variant):
    config = resolve_config({"variant": variant, "vocabSize": 256, "dModel": 16, "layers": 2, "heads": 2, "window": 8,
                             "segmentSize": 8, "persistentTokens": 2, "memory": {"heads": 2, "headDim": 8, "expansion": 2, "chunkSize": 4}})
    torch.manual_seed(5)
    model = TitansModel(config)
    save_checkpoint(model, config, byte_tokenizer(), tmp_path / "ck")
    with torch.no_grad():
        ours, _ = model(torch.tensor(ROWS))
    err = rel_err(ours, ts_logits(tmp_path / "ck", ROWS))
    FIGURES.append((f"twin → titans-ts {variant} (float32)", "logits", err))
    assert err < 1e-5


def test_twin_checkpoint_generates_in_titans_ts(tmp_path):
    config = resolve_config({"variant": "mag", "vocabSize": 256, "dModel": 16, "heads": 2, "window": 8,
                             "memory": {"heads": 2, "chunkSize": 4}})
    torch.manual_seed(6)
    model = TitansModel(config)
    save_checkpoint(model, config, byte_tokenizer(), tmp_path / "ck")
    result = titans("generate", "--checkpoint", tmp_path / "ck", "--prompt", "The ", "--max-tokens", "16", "--temperature", "0", "--threads", "1")
    assert result.stdout.startswith("The ") and "16 tokens in" in result.stderr
    # the twin's own greedy stream continues the prompt token by token, as titans-ts's does
    tokens, state = generate(model, list(b"The "), max_tokens=16, temperature=0)
    with torch.no_grad():
        whole, _ = model(torch.tensor([list(b"The ") + tokens[:-1]]))
    assert whole[0, 3:].argmax(-1).tolist() == tokens and state.position == 4 + 15
