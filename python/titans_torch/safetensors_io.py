"""The safetensors format. The `safetensors` package does the encoding and decoding when it is
importable; otherwise (Debian's python3-torch has no such package) a small reader and writer of our
own does, checking what titans-ts checks. Set TITANS_TORCH_OWN_SAFETENSORS=1 to always use our own.

Layout of a file: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON header (padded with
spaces so the data starts 8-byte aligned), then every tensor's raw little-endian bytes back to back.
The header maps a name to {dtype, shape, data_offsets: [begin, end]} and may hold `__metadata__`,
a map of strings. titans-ts writes the tensors in sorted name order; so does this writer, so the
same tensors give the same bytes on both sides.

The agreed per-tensor content hash (BRIEF, "formats agreed between branches"): metadata key
`sha256.<tensor name>`, value the lowercase hex SHA-256 of that tensor's raw little-endian bytes.
`write` adds it for every tensor; `read` verifies every one present.

    write("model.safetensors", {"embedding": torch.zeros(256, 64)}, {"format": "titans-ts"})
    tensors, metadata = read("model.safetensors")
"""

import hashlib
import json
import os
import struct

import torch

try:  # the package when it is there (pip install safetensors), our own code otherwise
    import safetensors.torch as _package
except ImportError:
    _package = None
if os.environ.get("TITANS_TORCH_OWN_SAFETENSORS"):
    _package = None

MAX_HEADER_BYTES = 100_000_000  # as titans-ts: a larger length field means a corrupt file

# On-disk dtype <-> torch dtype. Writing uses F32/F64/I32 (what titans-ts writes) plus the others
# torch holds; reading accepts every dtype titans-ts accepts.
_TO_TORCH = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
}
_FROM_TORCH = {v: k for k, v in _TO_TORCH.items()}
_ITEM_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1}
HASH_PREFIX = "sha256."


class SafetensorsError(ValueError):
    """A problem with a safetensors file; the message starts with the file name."""


def tensor_bytes(t):
    """The raw little-endian bytes of a tensor (contiguous, on the CPU)."""
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: go through its 16 bits
        t = t.view(torch.int16)
    data = t.numpy().tobytes() if hasattr(t, "numpy") else bytes(t.untyped_storage())
    if _big_endian():
        data = _swap(data, t.element_size())
    return data


def _big_endian():
    return struct.pack("=I", 1) != struct.pack("<I", 1)


def _swap(data, size):
    if size == 1:
        return data
    out = bytearray(data)
    for i in range(0, len(out), size):
        out[i : i + size] = out[i : i + size][::-1]
    return bytes(out)


def serialize(tensors, metadata=None, hashes=True, own=False):
    """The bytes of a safetensors file holding `tensors` (name -> tensor), sorted by name, with
    `metadata` (str -> str) and, when `hashes`, a `sha256.<name>` entry per tensor. `own` forces
    our encoder even when the package is importable."""
    if _package is not None and not own:
        meta = dict(metadata or {})
        if hashes:
            meta.update({HASH_PREFIX + n: hashlib.sha256(tensor_bytes(t)).hexdigest() for n, t in tensors.items()})
        cpu = {n: t.detach().to("cpu").contiguous() for n, t in tensors.items()}
        return _package.save(cpu, metadata=meta or None)
    names = sorted(tensors)
    meta = dict(metadata or {})
    blobs, entries, offset = [], {}, 0
    for name in names:
        if not name or name == "__metadata__":
            raise SafetensorsError(f"<serialize>: bad tensor name {name!r}")
        t = tensors[name]
        if t.dtype not in _FROM_TORCH:
            raise SafetensorsError(f"<serialize>: tensor {name!r}: dtype {t.dtype} cannot be stored")
        data = tensor_bytes(t)
        entries[name] = {"dtype": _FROM_TORCH[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        if hashes:
            meta[HASH_PREFIX + name] = hashlib.sha256(data).hexdigest()
        blobs.append(data)
        offset += len(data)
    for key, value in meta.items():
        if not isinstance(value, str):
            raise SafetensorsError(f"<serialize>: metadata {key!r} must be a string, got {type(value).__name__}")
    header = {}
    if meta:
        header["__metadata__"] = meta
    header.update(entries)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    padded = -(-(8 + len(text)) // 8) * 8 - 8
    return b"".join([struct.pack("<Q", padded), text, b" " * (padded - len(text)), *blobs])


def write(path, tensors, metadata=None, hashes=True):
    """Writes a safetensors file (atomically: see checkpoint.write_file_atomic)."""
    from .checkpoint import write_file_atomic

    write_file_atomic(path, serialize(tensors, metadata, hashes))


def parse(data, source="<buffer>", verify_hashes=True, own=False):
    """Decodes a safetensors file image -> (tensors, metadata). Every field is checked; each problem
    raises SafetensorsError starting with `source`. F16/BF16 come back as float32, the integer types
    as int64 (so they index), like titans-ts widens them. `sha256.<name>` entries are verified."""

    def fail(problem):
        raise SafetensorsError(f"{source}: {problem}")

    if _package is not None and not own:
        try:
            loaded = _package.load(bytes(data))
            (n,) = struct.unpack("<Q", data[:8])
            metadata = json.loads(bytes(data[8 : 8 + n]).decode("utf-8")).get("__metadata__") or {}
        except Exception as e:  # the package's own message, under our file name
            fail(str(e))
        for name, t in loaded.items():
            want = metadata.get(HASH_PREFIX + name)
            if verify_hashes and want is not None and hashlib.sha256(tensor_bytes(t)).hexdigest() != want.lower():
                fail(f"tensor {name!r}: content does not match its sha256 in the metadata (file corrupt?)")
        return {n: t.to(_widened(_FROM_TORCH[t.dtype])) for n, t in loaded.items()}, metadata

    if len(data) < 8:
        fail(f"file is {len(data)} bytes, too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        fail(f"header length {n} is absurd (limit {MAX_HEADER_BYTES}); file is corrupt")
    if 8 + n > len(data):
        fail(f"header length {n} exceeds file size {len(data)}")
    try:
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"header is not valid JSON/UTF-8 ({e})")
    if not isinstance(header, dict):
        fail("header must be a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail("__metadata__ must be an object of strings")
    start, length = 8 + n, len(data) - 8 - n
    spans, tensors = [], {}
    for name, entry in header.items():
        where = f"tensor {name!r}"
        if not isinstance(entry, dict):
            fail(f"{where}: entry must be an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _ITEM_SIZE:
            fail(f"{where}: unknown dtype {dtype!r} (supported: {', '.join(_ITEM_SIZE)})")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            fail(f"{where}: shape {shape!r} must hold non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and o >= 0 for o in offsets)):
            fail(f"{where}: data_offsets must be two non-negative integers, got {offsets!r}")
        begin, end = offsets
        count = 1
        for d in shape:
            count *= d
        if end - begin != count * _ITEM_SIZE[dtype]:
            fail(f"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes but {dtype} shape {shape} needs {count * _ITEM_SIZE[dtype]}")
        if end > length:
            fail(f"{where}: data_offsets [{begin}, {end}] run past the data buffer of {length} bytes (file truncated?)")
        spans.append((begin, end, name))
        raw = bytes(data[start + begin : start + end])
        want = metadata.get(HASH_PREFIX + name)
        if verify_hashes and want is not None and hashlib.sha256(raw).hexdigest() != want.lower():
            fail(f"{where}: content does not match its sha256 in the metadata (file corrupt?)")
        tensors[name] = _decode(raw, dtype, shape)
    cursor, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin < cursor:
            fail(f"tensor {name!r} [{begin}, {end}] overlaps tensor {previous!r}")
        if begin > cursor:
            fail(f"gap in data buffer: bytes [{cursor}, {begin}) belong to no tensor (before {name!r})")
        cursor, previous = end, name
    if cursor != length:
        fail(f"data buffer is {length} bytes but the tensors cover only {cursor} (trailing bytes)")
    for key in metadata:
        if key.startswith(HASH_PREFIX) and key[len(HASH_PREFIX):] not in tensors:
            fail(f"__metadata__ has {key!r} but no such tensor")
    return tensors, metadata


def _decode(raw, dtype, shape):
    if _big_endian():
        raw = _swap(raw, _ITEM_SIZE[dtype])
    if not raw:
        return torch.zeros(shape, dtype=_TO_TORCH[dtype]).to(_widened(dtype))
    t = torch.frombuffer(bytearray(raw), dtype=_TO_TORCH[dtype]).reshape(shape)
    return t.to(_widened(dtype))


def _widened(dtype):
    if dtype in ("F16", "BF16", "F32"):
        return torch.float32
    if dtype == "F64":
        return torch.float64
    return torch.int64


def read(path, verify_hashes=True, own=False):
    """Reads a safetensors file -> (tensors, metadata); errors name the file."""
    with open(path, "rb") as f:
        data = f.read()
    return parse(data, str(path), verify_hashes, own)
