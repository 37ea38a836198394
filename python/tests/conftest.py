"""Shared fixtures: the repository, the parity vectors titans-ts generated (test/python/vectors.ts:
$TITANS_VECTORS, or generated here into a temporary folder from the built dist/), helpers to run
titans-ts's CLI and logits script, and a summary of the measured parity figures at the end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

FIGURES = []  # (case, quantity, max relative error) for the closing summary


def rel_err(a, b):
    """max |a − b| / max |b| (the measure SPEC's tolerances use)."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def stream(model, tokens, cuts):
    """Logits of `tokens` (B, T) fed to `model` in pieces of the sizes `cuts`, the state carried;
    returns the logits (B, T, V) and the state after the last piece."""
    state, parts, start = None, [], 0
    with torch.no_grad():
        for n in cuts:
            out, state = model(tokens[:, start : start + n], state)
            parts.append(out)
            start += n
    return torch.cat(parts, 1), state


def node(*args, check=True, **kwargs):
    """Runs `node <args>` in the repository; returns the completed process (text)."""
    result = subprocess.run(["node", *map(str, args)], cwd=REPO, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"node {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def titans(*args, **kwargs):
    """The titans-ts CLI (dist/src/cli/bin.js), one wasm thread."""
    return node("dist/src/cli/bin.js", *args, **kwargs)


def ts_logits(checkpoint, rows, dtype="float32"):
    """Logits titans-ts computes for token rows from a checkpoint (test/python/logits.ts)."""
    out = json.loads(node("dist/test/python/logits.js", checkpoint, json.dumps(rows), dtype).stdout)
    return torch.tensor(out["logits"], dtype=torch.float64).reshape(out["shape"])


def python(*args, env=None, timeout=600):
    """/usr/bin/python3 (the interpreter running the tests) with the package importable."""
    full = {**os.environ, "PYTHONPATH": str(REPO / "python"), "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    result = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, env=full, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"python {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="session")
def vectors(tmp_path_factory):
    """The folder of parity vectors (configs.json, rng.json, bpe/, cases/)."""
    given = os.environ.get("TITANS_VECTORS")
    if given:
        return Path(given)
    if not (REPO / "dist" / "test" / "python" / "vectors.js").exists():
        pytest.fail("dist/test/python/vectors.js is missing: run `npm run build` (or `npm run test:python`)")
    folder = tmp_path_factory.mktemp("vectors")
    node("dist/test/python/vectors.js", folder)
    return folder


@pytest.fixture(scope="session")
def text_file(tmp_path_factory):
    """A small English text to train on (the README's first lines, repeated)."""
    path = tmp_path_factory.mktemp("data") / "text.txt"
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[:40]
    path.write_text(("\n".join(lines) + "\n") * 4, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared machine
    yield


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.write_sep("-", "parity with titans-ts (max relative error)")
    by_case = {}
    for case, quantity, err in FIGURES:
        by_case.setdefault(case, {})[quantity] = max(err, by_case.get(case, {}).get(quantity, 0.0))
    quantities = sorted({q for _, q, _ in FIGURES})
    width = max(len(case) for case in by_case) + 2
    terminalreporter.write_line(f"{'case':{width}s}" + "".join(f"{q:>14s}" for q in quantities))
    for case, values in by_case.items():
        cells = (f"{values[q]:14.1e}" if q in values else " " * 14 for q in quantities)
        terminalreporter.write_line(f"{case:{width}s}" + "".join(cells))
