"""The byte and byte-level BPE tokenizers of titans-ts (src/tokenizer/), read from and written to
the same HuggingFace `tokenizer.json`, encoding to the same ids.

Text -> UTF-8 bytes -> pre-tokens (GPT-2's regex) -> within each pre-token, merges applied lowest
rank first (leftmost among equals) -> ids. The regex's \\p{L} and \\p{N} become explicit character
classes built once from `unicodedata` (Python's `re` has no \\p{...}), and \\s is JavaScript's \\s,
so a pre-token here is a pre-token there (up to the Unicode versions of Python and Node).

    tok = tokenizer_from_json(json.load(open("tokenizer.json")))
    ids = tok.encode("The Congress")   # list of ints
    tok.decode(ids)                    # 'The Congress'
"""

import heapq
import re
import sys
import unicodedata

# GPT-2's byte -> character table: printable Latin-1 bytes stand for themselves, the other 68 move
# in order to U+0100 onwards (space is 'Ġ', newline 'Ċ').
BYTE_TO_CHAR = []
_moved = 0
for _byte in range(256):
    if 0x21 <= _byte <= 0x7E or 0xA1 <= _byte <= 0xAC or 0xAE <= _byte <= 0xFF:
        BYTE_TO_CHAR.append(chr(_byte))
    else:
        BYTE_TO_CHAR.append(chr(256 + _moved))
        _moved += 1
CHAR_TO_BYTE = {c: b for b, c in enumerate(BYTE_TO_CHAR)}

# JavaScript's \s (WhiteSpace and LineTerminator): TAB LF VT FF CR, the Zs space separators, LS, PS
# and the BOM.
_JS_SPACE = "\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_PRE_TOKEN = None


def _char_class(prefix):
    """A `re` character class (without brackets) of every code point whose general category
    starts with `prefix` ('L' letters, 'N' numbers)."""
    ranges, start, last = [], None, None
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp)).startswith(prefix):
            if start is None:
                start = cp
            last = cp
        elif start is not None:
            ranges.append((start, last))
            start = None
    if start is not None:
        ranges.append((start, last))
    esc = lambda cp: "\\U%08x" % cp
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


def pre_token_pattern():
    """GPT-2's pre-tokenizer as titans-ts writes it (src/tokenizer/bpe.ts PRE_TOKEN):
    /'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+/gu"""
    global _PRE_TOKEN
    if _PRE_TOKEN is None:
        L, N, S = _char_class("L"), _char_class("N"), _JS_SPACE
        _PRE_TOKEN = re.compile(
            rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+"
        )
    return _PRE_TOKEN


def utf8(text):
    """UTF-8 bytes as JavaScript's TextEncoder makes them: a lone surrogate becomes U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text).encode("utf-8")


def bytes_to_byte_level(data):
    return "".join(BYTE_TO_CHAR[b] for b in data)


def byte_level_to_bytes(text):
    try:
        return bytes(CHAR_TO_BYTE[c] for c in text)
    except KeyError:
        return None


class TokenizerFormatError(ValueError):
    """A tokenizer.json that cannot be used; the message starts with the file."""


class Tokenizer:
    """Byte-level BPE: ids of the 256 bytes plus merged tokens (src/tokenizer/bpe.ts).
    `kind` is 'byte' without merges, 'bpe' otherwise."""

    def __init__(self, token_bytes, merges):
        self.token_bytes = [bytes(b) for b in token_bytes]  # (V) bytes per id
        self.merges = [tuple(m) for m in merges]  # (left, right, result), lowest rank first
        self.vocab_size = len(self.token_bytes)
        self.kind = "byte" if not self.merges else "bpe"
        self.byte_ids = [-1] * 256
        for i, b in enumerate(self.token_bytes):
            if len(b) == 1:
                self.byte_ids[b[0]] = i
        if -1 in self.byte_ids:
            raise ValueError(f"Tokenizer: byte {self.byte_ids.index(-1)} has no token")
        self.rank_of = {}
        for rank, (left, right, _) in enumerate(self.merges):
            self.rank_of.setdefault((left, right), rank)
        self._cache = {}

    def encode(self, text):
        """The ids of `text` (a list of ints)."""
        if not self.merges:  # the byte tokenizer: pre-tokens change nothing
            ids = self.byte_ids
            return [ids[b] for b in utf8(text)]
        out = []
        for piece in pre_token_pattern().findall(text):
            out.extend(self._encode_piece(piece))
        return out

    def decode(self, ids):
        """The text of `ids`; invalid UTF-8 becomes U+FFFD."""
        ids = [int(i) for i in ids]
        for position, i in enumerate(ids):
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"decode: id {i} at position {position} is not in the vocabulary (0…{self.vocab_size - 1})")
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def _encode_piece(self, piece):
        """Merges within one pre-token: the lowest rank first, leftmost among equals, as the
        `tokenizers` library (and titans-ts) does; stale heap entries are skipped."""
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        data = utf8(piece)
        n = len(data)
        ids = [self.byte_ids[b] for b in data]
        nxt = [i + 1 if i + 1 < n else -1 for i in range(n)]
        prv = [i - 1 for i in range(n)]
        heap = []

        def consider(pos):
            rank = self.rank_of.get((ids[pos], ids[nxt[pos]]))
            if rank is not None:
                heapq.heappush(heap, (rank, pos))

        for i in range(n - 1):
            consider(i)
        while heap:
            rank, pos = heapq.heappop(heap)
            right = nxt[pos]
            if ids[pos] == -1 or right == -1:
                continue
            if self.rank_of.get((ids[pos], ids[right])) != rank:
                continue
            ids[pos] = self.merges[rank][2]
            ids[right] = -1
            nxt[pos] = nxt[right]
            if nxt[pos] != -1:
                prv[nxt[pos]] = pos
            if prv[pos] != -1:
                consider(prv[pos])
            if nxt[pos] != -1:
                consider(pos)
        out, i = [], 0
        while i != -1:
            out.append(ids[i])
            i = nxt[i]
        if len(self._cache) >= 1 << 16:
            self._cache.clear()
        self._cache[piece] = out
        return out

    def to_json(self):
        """The tokenizer.json object titans-ts writes (HuggingFace `tokenizers` schema 1.0)."""
        text = [bytes_to_byte_level(b) for b in self.token_bytes]
        level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": dict(level), "post_processor": None, "decoder": dict(level),
            "model": {
                "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                "vocab": {t: i for i, t in enumerate(text)},
                "merges": [f"{text[l]} {text[r]}" for l, r, _ in self.merges],
            },
        }


def byte_tokenizer():
    """Ids 0…255 are the UTF-8 bytes (vocabulary 256)."""
    return Tokenizer([bytes([b]) for b in range(256)], [])


def tokenizer_from_json(obj, source="tokenizer.json"):
    """Reads a tokenizer.json object (byte-level BPE) with the checks of titans-ts's
    tokenizerFromJSON; each problem raises TokenizerFormatError naming `source`."""

    def fail(problem):
        raise TokenizerFormatError(f"{source}: {problem}")

    if not isinstance(obj, dict):
        fail("expected a tokenizer.json object")
    for field in ("normalizer", "truncation", "padding"):
        if obj.get(field) is not None:
            fail(f"{field} must be null (this tokenizer does not support one)")
    if obj.get("added_tokens") not in (None, []):
        fail("added_tokens must be empty (special tokens are not supported)")
    for field in ("pre_tokenizer", "decoder"):
        value = obj.get(field)
        if not isinstance(value, dict) or value.get("type") != "ByteLevel":
            fail(f"{field} must be ByteLevel")
    pre = obj["pre_tokenizer"]
    if pre.get("add_prefix_space") is True:
        fail("pre_tokenizer.add_prefix_space must be false (a space would be added to the text)")
    if pre.get("use_regex") is False:
        fail("pre_tokenizer.use_regex must be true (the GPT-2 pre-tokenizer regex)")
    post = obj.get("post_processor")
    if post is not None and not (isinstance(post, dict) and post.get("type") == "ByteLevel"):
        fail("post_processor must be null or ByteLevel")
    model = obj.get("model")
    if not isinstance(model, dict):
        fail("model is missing or not an object")
    if model.get("type") != "BPE":
        fail(f"model.type must be \"BPE\", got {model.get('type')!r}")
    for field in ("continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(field) not in (None, ""):
            fail(f"model.{field} must be null for byte-level BPE")
    if model.get("dropout") not in (None, 0):
        fail("model.dropout must be null (encoding is deterministic)")
    if model.get("ignore_merges") is True:
        fail("model.ignore_merges must be false")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        fail("model.vocab is missing or not an object")
    for byte, char in enumerate(BYTE_TO_CHAR):
        if char not in vocab:
            fail(f"model.vocab lacks the token for byte 0x{byte:02x} ({char!r})")
    size = len(vocab)
    token_bytes = [None] * size
    for token, i in vocab.items():
        if not (isinstance(i, int) and not isinstance(i, bool) and 0 <= i < size):
            fail(f"model.vocab[{token!r}] is {i!r}; ids must be the integers 0…{size - 1}")
        if token_bytes[i] is not None:
            fail(f"model.vocab: duplicate id {i}")
        data = byte_level_to_bytes(token)
        if not data:
            fail(f"model.vocab: token {token!r} is not spelled in the byte-level alphabet")
        token_bytes[i] = data
    merges_raw = model.get("merges")
    if not isinstance(merges_raw, list):
        fail("model.merges is missing or not an array")
    merges, seen = [], {}
    for rank, entry in enumerate(merges_raw):
        if isinstance(entry, str) and len(entry.split(" ")) == 2:
            left, right = entry.split(" ")
        elif isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry):
            left, right = entry
        else:
            fail(f"model.merges[{rank}] must be \"left right\" or [\"left\", \"right\"], got {entry!r}")
        for token in (left, right):
            if token not in vocab:
                fail(f"model.merges[{rank}] (\"{left} {right}\") references unknown token {token!r}")
        if left + right not in vocab:
            fail(f"model.merges[{rank}] (\"{left} {right}\") makes {left + right!r}, which is not in model.vocab")
        if (left, right) in seen:
            fail(f"model.merges[{rank}] repeats model.merges[{seen[(left, right)]}] (\"{left} {right}\")")
        seen[(left, right)] = rank
        merges.append((vocab[left], vocab[right], vocab[left + right]))
    return Tokenizer(token_bytes, merges)


def js_slice(text, n):
    """JavaScript's text.slice(0, n): n counts UTF-16 code units (a split pair leaves a lone
    surrogate, which UTF-8 encoding turns into U+FFFD; so does this)."""
    if text.isascii():
        return text[:n]
    units, out = 0, []
    for c in text:
        width = 2 if ord(c) > 0xFFFF else 1
        if units + width > n:
            if units < n:
                out.append("\ufffd")
            break
        out.append(c)
        units += width
    return "".join(out)


def js_length(text):
    """JavaScript's text.length (UTF-16 code units)."""
    return len(text) if text.isascii() else len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def train_bpe(text, vocab_size, min_frequency=2):
    """src/tokenizer/bpe.ts trainBpe, step for step: count the pre-tokens (in order of first
    appearance), then merge the most frequent adjacent pair (ties: smaller left id, then smaller
    right id) into the next id until `vocab_size` tokens, with the same incremental pair counts and
    lazily refreshed heap, so the merges and ids are titans-ts's."""
    if not (isinstance(vocab_size, int) and 256 <= vocab_size <= 1 << 24):
        raise ValueError(f"train_bpe: vocab_size must be an integer in [256, {1 << 24}], got {vocab_size}")
    counts = {}
    for word in pre_token_pattern().findall(text):
        counts[word] = counts.get(word, 0) + 1
    words, freqs = [], []
    for word, count in counts.items():
        data = utf8(word)
        if len(data) < 2:
            continue
        words.append(list(data))
        freqs.append(count)
    key = lambda left, right: left * vocab_size + right
    pair_counts, words_with = {}, {}
    for w, symbols in enumerate(words):
        for i in range(len(symbols) - 1):
            k = key(symbols[i], symbols[i + 1])
            pair_counts[k] = pair_counts.get(k, 0) + freqs[w]
            words_with.setdefault(k, set()).add(w)
    heap = [(-c, k) for k, c in pair_counts.items()]
    heapq.heapify(heap)
    token_bytes = [bytes([b]) for b in range(256)]
    id_of = {b: i for i, b in enumerate(token_bytes)}
    merges = []
    while len(token_bytes) < vocab_size and heap:
        neg, k = heapq.heappop(heap)
        count = pair_counts.get(k, 0)
        if count == 0:
            continue
        if count != -neg:
            heapq.heappush(heap, (-count, k))
            continue
        if count < min_frequency:
            break
        left, right = divmod(k, vocab_size)
        spelled = token_bytes[left] + token_bytes[right]
        result = id_of.get(spelled)
        if result is None:
            result = len(token_bytes)
            token_bytes.append(spelled)
            id_of[spelled] = result
        merges.append((left, right, result))
        delta = {}
        for w in sorted(words_with.get(k, ())):
            symbols = words[w]
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
                    merged.append(result)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            if len(merged) == len(symbols):
                continue
            f = freqs[w]
            for i in range(len(symbols) - 1):
                p = key(symbols[i], symbols[i + 1])
                delta[p] = delta.get(p, 0) - f
            for i in range(len(merged) - 1):
                p = key(merged[i], merged[i + 1])
                delta[p] = delta.get(p, 0) + f
                words_with.setdefault(p, set()).add(w)
            words[w] = merged
        words_with.pop(k, None)
        for p, by in delta.items():
            if by == 0:
                continue
            updated = pair_counts.get(p, 0) + by
            if updated <= 0:
                pair_counts.pop(p, None)
                words_with.pop(p, None)
            else:
                pair_counts[p] = updated
                if by > 0:
                    heapq.heappush(heap, (-updated, p))
    return Tokenizer(token_bytes, merges)
