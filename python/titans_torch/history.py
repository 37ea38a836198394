"""The bounded training history, titans-ts's src/train/history.ts rule for rule, so that a run
resumed on either side keeps the same trainer.json `history`.

history: a list of at most MAX_HISTORY_RECORDS dicts, ordered by step; each summarises `steps`
consecutive applied updates `firstStep`..`step` (a non-finite step is not applied and not
counted), with the mean `loss`, `gradNorm` and `tokensPerSecond` over them and the `lr` of the
last. Every record but the newest holds W = history[0]["steps"] updates, the newest 1..W; when the
log is full and its newest record complete, adjacent pairs merge and W doubles. A record without
`firstStep` and `steps` (trainer.json written before the bound) is one step.
"""

MAX_HISTORY_RECORDS = 2048


def step_record(step, loss, lr, grad_norm, tokens_per_second):
    """The one-update record of a step."""
    return {"firstStep": step, "step": step, "steps": 1, "loss": loss, "lr": lr, "gradNorm": grad_norm,
            "tokensPerSecond": tokens_per_second}


def merge_records(a, b):
    """Two adjacent records as one (a the older): means weighted by their counts, b's lr. The
    arithmetic is titans-ts's, operation for operation, so both sides round alike."""
    steps = a["steps"] + b["steps"]

    def mean(key):
        return (a[key] * a["steps"] + b[key] * b["steps"]) / steps

    return {"firstStep": a["firstStep"], "step": b["step"], "steps": steps, "loss": mean("loss"), "lr": b["lr"],
            "gradNorm": mean("gradNorm"), "tokensPerSecond": mean("tokensPerSecond")}


def merge_pairs(history):
    """Adjacent pairs merged (0+1, 2+3, …); an odd last record stays as it is."""
    return [merge_records(history[i], history[i + 1]) if i + 1 < len(history) else history[i]
            for i in range(0, len(history), 2)]


def append_record(history, record, limit=MAX_HISTORY_RECORDS):
    """The log with one more applied update (a step_record), as a new list."""
    if not history:
        return [record]
    last = history[-1]
    if last["steps"] < history[0]["steps"]:
        return history[:-1] + [merge_records(last, record)]
    return (merge_pairs(history) if len(history) >= limit else list(history)) + [record]


def normalize_history(history, limit=MAX_HISTORY_RECORDS):
    """A loaded history as the trainer keeps it: one-step records completed, merged down to the limit."""
    out = [r if "steps" in r else {**r, "firstStep": r["step"], "steps": 1} for r in history]
    while len(out) > limit:
        out = merge_pairs(out)
    return out


def recent_loss(history, steps=20):
    """Mean loss over the newest records that together hold at least `steps` updates, or None."""
    total, count = 0.0, 0
    for r in reversed(history):
        if count >= steps:
            break
        total += r["loss"] * r["steps"]
        count += r["steps"]
    return total / count if count else None
