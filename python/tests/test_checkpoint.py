"""Checkpoint files: our safetensors reader/writer (titans-ts's layout, the sha256 metadata, every
malformation refused with the file named), the manifest, and atomic replacement."""

import hashlib
import json
import struct

import pytest
import torch

from titans_torch import safetensors_io
from titans_torch.checkpoint import CheckpointError, load_checkpoint, recover_directory, save_checkpoint
from titans_torch.config import resolve_config
from titans_torch.model import TitansModel
from titans_torch.tokenizer import byte_tokenizer


def test_safetensors_round_trip_with_hashes(tmp_path):
    tensors = {"b": torch.arange(6, dtype=torch.int32).reshape(2, 3), "a": torch.randn(4, 5, dtype=torch.float64),
               "c": torch.randn(3), "half": torch.randn(2).to(torch.bfloat16)}
    data = safetensors_io.serialize(tensors, {"format": "titans-ts"}, own=True)
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    assert (8 + n) % 8 == 0 and list(header)[1:] == ["a", "b", "c", "half"]  # metadata first, then sorted
    assert header["__metadata__"]["sha256.a"] == hashlib.sha256(tensors["a"].numpy().tobytes()).hexdigest()
    back, meta = safetensors_io.parse(data, own=True)
    assert meta["format"] == "titans-ts"
    assert torch.equal(back["a"], tensors["a"]) and torch.equal(back["b"], tensors["b"].long())
    assert torch.equal(back["c"], tensors["c"]) and torch.equal(back["half"], tensors["half"].float())


def test_titans_ts_files_parse(vectors):
    tensors, _ = safetensors_io.read(vectors / "cases" / "mag.safetensors", own=True)
    assert tensors["logits"].dtype == torch.float64 and tensors["tokens"].shape == (2, 13)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:5], "too short"),
    (lambda d: struct.pack("<Q", 10**9) + d[8:], "absurd"),
    (lambda d: d[:-4], "run past the data buffer"),
    (lambda d: d + b"\0" * 8, "trailing bytes"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "does not match its sha256"),
])
def test_damaged_files_are_refused(damage, message):
    data = safetensors_io.serialize({"w": torch.randn(3, 3)}, own=True)
    with pytest.raises(safetensors_io.SafetensorsError, match=f"model.safetensors: .*{message}"):
        safetensors_io.parse(damage(data), "model.safetensors", own=True)


def small_model():
    config = resolve_config({"variant": "mal", "vocabSize": 256, "dModel": 8, "heads": 2, "memory": {"heads": 2, "chunkSize": 4}})
    torch.manual_seed(0)
    return TitansModel(config), config


def test_save_load_and_manifest(tmp_path):
    model, config = small_model()
    save_checkpoint(model, config, byte_tokenizer(), tmp_path / "ck")
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert files == ["config.json", "manifest.json", "model.safetensors", "tokenizer.json"]
    on_disk = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert on_disk["model_type"] == "titans" and on_disk["architectures"] == ["TitansForCausalLM"]
    manifest = json.loads((tmp_path / "ck" / "manifest.json").read_text())
    assert manifest["format"] == "titans-checkpoint" and sorted(manifest["files"]) == ["config.json", "model.safetensors", "tokenizer.json"]
    loaded, config2, tokenizer = load_checkpoint(tmp_path / "ck")
    assert config2 == config and tokenizer.kind == "byte"
    for (n, a), (_, b) in zip(model.named_parameters(), loaded.named_parameters()):
        assert torch.equal(a, b), n
    # a damaged file is caught by the manifest, naming it
    path = tmp_path / "ck" / "tokenizer.json"
    path.write_text(path.read_text().replace('"Ġ"', '"G"', 1))
    with pytest.raises(CheckpointError, match="tokenizer.json: does not match manifest.json"):
        load_checkpoint(tmp_path / "ck")


def test_wrong_tensors_are_listed(tmp_path):
    model, config = small_model()
    save_checkpoint(model, config, None, tmp_path / "ck")
    (tmp_path / "ck" / "manifest.json").unlink()
    other = dict(config, dModel=16)
    (tmp_path / "ck" / "config.json").write_text(json.dumps(other))
    with pytest.raises(CheckpointError, match='model.safetensors: tensor "embedding" has shape \\[256, 8\\], expected \\[256, 16\\]'):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text(json.dumps(dict(config, heads=3)))
    with pytest.raises(CheckpointError, match="config.json: config: dModel \\(8\\) must be divisible by heads \\(3\\)"):
        load_checkpoint(tmp_path / "ck")


def test_interrupted_swap_is_repaired(tmp_path):
    model, config = small_model()
    save_checkpoint(model, config, None, tmp_path / "ck")
    # a crash between the two renames: the directory missing, the previous one under .old-
    (tmp_path / "ck").rename(tmp_path / "ck.old-1700000000000-999999-abcdef")
    (tmp_path / "ck.tmp-999999-abcdef").mkdir()  # a dead writer's half-filled directory
    recover_directory(tmp_path / "ck")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    load_checkpoint(tmp_path / "ck")
