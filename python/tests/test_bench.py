"""The bench peers (bench/torch_peer.py, bench/torch_models.py) are thin wrappers of the twin:
their self-tests pass and their JSON keeps what bench/run.ts reads."""

import json

from conftest import REPO, python


def test_memory_peer_selftest():
    report = json.loads(python(REPO / "bench" / "torch_peer.py", "--selftest", "--threads", "1").stdout)
    assert report["selftest"] == "pass" and report["max_rel_err"] < 1e-9


def test_model_peer_selftest_and_protocol():
    report = json.loads(python(REPO / "bench" / "torch_models.py", "--selftest", "--threads", "1").stdout)
    assert report["selftest"] == "pass"
    out = json.loads(python(REPO / "bench" / "torch_models.py", "--threads", "1", "--variants", "lmm,deltanet",
                            "--batch", "2", "--seq", "32", "--steps", "1").stdout)
    assert set(out["train_step"]) == {"lmm", "deltanet"} and out["torch_version"] and out["threads"] == 1
    assert all(r["tokens_per_s"] > 0 for r in out["train_step"].values())
