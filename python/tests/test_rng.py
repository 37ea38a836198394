"""The data sampler's generator is titans-ts's, draw for draw (so --seed samples the same windows)."""

import json

from titans_torch.rng import Rng


def test_draws_equal_titans_ts(vectors):
    for case in json.loads((vectors / "rng.json").read_text()):
        rng = Rng(case["seed"])
        assert [rng.int(1 + i * 997) for i in range(8)] == case["ints"], case["seed"]
        assert rng.next() == case["next"]
        assert rng.state() == case["state"]
        assert Rng(rng.state()).state() == case["state"]  # a saved state restores
