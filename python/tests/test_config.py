"""config.json as titans-ts reads it: the same defaults (compared with configs titans-ts resolved),
the same rejections naming the field, and the agreed markers accepted."""

import json

import pytest

from titans_torch.config import ConfigError, config_for_file, resolve_config


def test_defaults_agree_with_titans_ts(vectors):
    cases = json.loads((vectors / "configs.json").read_text())
    assert len(cases) > 30
    for case in cases:
        assert resolve_config(case["input"]) == case["resolved"], case["input"]


def test_markers_are_written_and_ignored():
    config = resolve_config({"variant": "mag", "vocabSize": 256})
    on_disk = config_for_file(config)
    assert on_disk["model_type"] == "titans" and on_disk["architectures"] == ["TitansForCausalLM"]
    assert resolve_config(on_disk) == config


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"variant": "mag", "vocabSize": 256, "dmodel": 64}, "unknown field 'dmodel'"),
        ({"variant": "mag", "vocabSize": 256, "memory": {"chunksize": 8}}, "unknown field 'memory.chunksize'"),
        ({"variant": "titan", "vocabSize": 256}, "variant must be one of"),
        ({"variant": "mag", "vocabSize": 1}, "vocabSize must be an integer ≥ 2"),
        ({"variant": "mag", "vocabSize": 256, "dModel": 64, "heads": 5}, "must be divisible by heads"),
        ({"variant": "mag", "vocabSize": 256, "dModel": 24, "heads": 8}, "must be even (RoPE)"),
        ({"variant": "mag", "vocabSize": 256, "memoryLayers": [2]}, "memoryLayers has 2"),
        ({"variant": "mag", "vocabSize": 256, "memory": {"activation": "relu"}}, "activation must be 'silu' or 'gelu'"),
        ({"variant": "mag", "vocabSize": 256, "memory": {"etaMax": 1.5}}, "etaMax must be in [0, 1]"),
        ({"variant": "mag", "vocabSize": 256, "tieEmbeddings": "yes"}, "tieEmbeddings must be true or false"),
    ],
)
def test_bad_fields_are_named(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        resolve_config(fields)
