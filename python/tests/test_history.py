"""The bounded training history (titans_torch/history.py) keeps titans-ts's rule exactly: the same
steps give the same records as src/train/history.ts, so a run resumed on either side writes the
same trainer.json history; it stays bounded and its counts sum to the steps applied."""

import json
import math

from conftest import node

from titans_torch.history import append_record, normalize_history, recent_loss, step_record


def steps(n):
    """A run's step records; every 7th step was non-finite (no record)."""
    return [step_record(s, 6 / math.sqrt(s) + 1 / s, 1e-3 / s, 1 + (s % 13) / 10, 1000 + s % 17)
            for s in range(1, n + 1) if s % 7]


def fold(records, limit, history=()):
    history = list(history)
    for r in records:
        history = append_record(history, r, limit)
    return history


def test_bounded_and_counted():
    records = steps(1000)
    history = []
    for i, r in enumerate(records):
        history = append_record(history, r, 16)
        assert len(history) <= 16
        assert sum(h["steps"] for h in history) == i + 1
        assert history[-1]["step"] == r["step"] and history[-1]["lr"] == r["lr"]
    assert fold(records[:16], 16) == records[:16]  # full resolution until the first merge


def test_same_records_as_titans_ts():
    records = steps(3000)
    script = ("import { appendRecord } from './dist/src/train/history.js';"
              "import { readFileSync } from 'node:fs';"
              "const records = JSON.parse(readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(records.reduce((h, r) => appendRecord(h, r, 32), [])));")
    ts = json.loads(node("--input-type=module", "-e", script, input=json.dumps(records)).stdout)
    assert fold(records, 32) == ts
    # Resumed from JSON at any step: the same log.
    for stop in (1, 31, 32, 33, 1000):
        saved = json.loads(json.dumps(fold(records[:stop], 32)))
        assert fold(records[stop:], 32, saved) == ts


def test_legacy_history_and_recent_loss():
    legacy = [{k: v for k, v in r.items() if k not in ("firstStep", "steps")} for r in steps(100)]
    history = normalize_history(legacy, 8)
    assert len(history) <= 8 and sum(h["steps"] for h in history) == len(legacy)
    assert [h["step"] for h in normalize_history(legacy[:5])] == [r["step"] for r in legacy[:5]]
    assert recent_loss([]) is None
    last = [r["loss"] for r in steps(100)][-20:]
    assert abs(recent_loss(fold(steps(100), 2048)) - sum(last) / 20) < 1e-12
