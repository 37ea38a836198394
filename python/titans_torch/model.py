"""Every model the paper compares, in one code path (SPEC §3-§5), the twin of src/models/model.ts:
MAC, MAG, MAL, LMM and the Transformer++, SWA and DeltaNet-like baselines. `model(tokens, state)`
maps tokens to logits and carries an inference state (plain data) from one call to the next, so a
stream can be processed in pieces of any size (pieces = whole, SPEC §5).

Axis legend: B batch, T tokens, d model width, V vocabulary, H heads, dh head width, N_p persistent
tokens, C MAC segment length, j position inside the current segment.

    model = TitansModel(resolve_config({"variant": "mac", "vocabSize": 256}))
    logits, state = model(tokens)              # tokens (B, T) -> logits (B, T, V)
    more, state = model(next_tokens, state)    # continues the stream
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import block_kind, is_titans
from .layers import Attention, Gate, KeyValueCache, Mlp, attend, extend_cache, merge_heads, rms_norm, visible
from .memory_layer import MemoryLayer, MemoryLayerState


@dataclass(frozen=True)
class MacState:
    """MAC's per-layer streaming state besides the memory (SPEC §5: "the partial segment")."""

    read_weights: tuple  # the memory at the end of the previous segment: what `read` retrieves with
    read_tail: torch.Tensor  # conv tail of the read queries (the stream of n), (B, K−1, C_mem)
    segment: KeyValueCache  # keys and values of the rows h_j and n_j of the current segment so far


@dataclass(frozen=True)
class BlockState:
    cache: KeyValueCache = None
    memory: MemoryLayerState = None
    mac: MacState = None


@dataclass(frozen=True)
class ModelState:
    """The inference state of a model (SPEC §5): plain data, passed in and returned."""

    position: int  # tokens consumed so far
    batch: int
    blocks: tuple


class Block(nn.Module):
    """One block: its mixer (attention, memory, or both), then x ← x + MLP(RMSNorm(x)).
    Attributes are titans-ts's BlockParams (absent parts are absent)."""

    def __init__(self, config, kind, output_std):
        super().__init__()
        d = config["dModel"]
        self.kind, self.config = kind, config
        self.norm = nn.Parameter(torch.ones(d))  # (d) pre-norm of the mixer (MAL: of the memory sub-layer)
        if kind == "mal":
            self.attentionNorm = nn.Parameter(torch.ones(d))  # (d) MAL: pre-norm of its attention
        if kind != "memory":
            self.attention = Attention(d, output_std)
        self.persistent = None  # (N_p, d) persistent memory P (eq. 19)
        if config["persistentTokens"] > 0 and is_titans(config["variant"]):
            self.persistent = nn.Parameter(torch.randn(config["persistentTokens"], d))
        if kind != "attention":
            self.memory = MemoryLayer(d, config["memory"])
        if kind in ("mac", "mag"):
            self.gate = Gate(d)
        self.mlpNorm = nn.Parameter(torch.ones(d))
        self.mlp = Mlp(d, config["mlpHidden"], output_std)

    def initial_state(self, batch):
        """A fresh stream's state; memories of MAG, MAL and LMM start with P written (SPEC §3),
        so this is differentiable in the parameters."""
        if self.kind == "attention":
            return BlockState()
        if self.kind == "mac":  # MAC: P is not written into the memory
            memory = self.memory.initial_state(batch)
            tail = memory.tail[..., : self.memory.C] if memory.tail is not None else None
            return BlockState(memory=memory, mac=MacState(memory.memory.weights, tail, None))
        if self.persistent is not None:
            return BlockState(memory=self.memory.primed_state(self.persistent, batch))
        return BlockState(memory=self.memory.initial_state(batch))

    def _swa(self, n, cache, window, start, keep):
        c = self.config
        return self.attention(n, c["heads"], window, c["ropeBase"], start, self.persistent, cache, keep)

    def forward(self, x, state, start, keep):
        """x (B, T, d) -> x (B, T, d) and the block's state after it; `state` None starts a fresh
        stream (built here, inside the block, where FSDP has gathered its parameters)."""
        c, eps = self.config, self.config["normEps"]
        kind = self.kind
        if state is None:
            state = self.initial_state(x.shape[0])
        if kind == "attention":  # Transformer++ / SWA: x ← x + Attn(RMSNorm(x))
            window = float("inf") if c["variant"] == "transformer" else c["window"]
            a, cache = self._swa(rms_norm(x, self.norm, eps), state.cache, window, start, keep)
            x, state = x + a, BlockState(cache=cache)
        elif kind == "memory":  # LMM and the linear baselines: x ← x + MemoryLayer(RMSNorm(x))
            m, memory = self.memory(rms_norm(x, self.norm, eps), state.memory)
            x, state = x + m, BlockState(memory=memory)
        elif kind == "mag":  # eq. 26-28: n = RMSNorm(x); x ← x + SWA*(n) ⊗ M(n)
            n = rms_norm(x, self.norm, eps)
            a, cache = self._swa(n, state.cache, c["window"], start, keep)
            m, memory = self.memory(n, state.memory)
            x, state = x + self.gate(a, m, eps), BlockState(cache=cache, memory=memory)
        elif kind == "mal":  # eq. 29-31: x ← x + M(RMSNorm(x)); x ← x + SWA*(RMSNorm(x))
            m, memory = self.memory(rms_norm(x, self.norm, eps), state.memory)
            x = x + m
            a, cache = self._swa(rms_norm(x, self.attentionNorm, eps), state.cache, c["window"], start, keep)
            x, state = x + a, BlockState(cache=cache, memory=memory)
        else:
            x, state = self._mac(x, state, start)
        return x + self.mlp(rms_norm(x, self.mlpNorm, eps)), state

    def _mac(self, x, state, start):
        """MAC (eq. 21-25), segment by segment: pieces of x that end at segment boundaries (the
        first may continue a partial segment). For each piece with normalised rows n:
            h = read(n) with the memory at the end of the previous segment            (eq. 21)
            a = Attn over [P ; h ; n], outputs at the rows of n                       (eq. 22-23)
            m = MemoryLayer(a): write a into the memory, retrieve after each write   (eq. 24)
            x ← x + a ⊗ m                                                            (eq. 25)"""
        c, eps, mem, w = self.config, self.config["normEps"], self.memory, self.attention
        H, base, C = c["heads"], c["ropeBase"], c["segmentSize"]
        B, T, _ = x.shape
        mac, memory = state.mac, state.memory
        prefix = 0 if self.persistent is None else self.persistent.shape[0]
        pk, pv = w.persistent_keys_values(self.persistent, H, B) if prefix else (None, None)
        outputs, done = [], 0
        while done < T:
            offset = (start + done) % C  # j of the piece's first token
            length = min(T - done, C - offset)
            n = rms_norm(x[:, done : done + length], self.norm, eps)
            h, read_tail = mem.read(n, mac.read_weights, mac.read_tail)
            positions = torch.arange(offset, offset + length, device=x.device)  # segment-local: h_j, n_j at j
            q = w.queries(n, H, offset, base)
            hk, hv = w.keys_values(h, H, offset, base)
            nk, nv = w.keys_values(n, H, offset, base)
            segment = extend_cache(extend_cache(mac.segment, hk, hv, positions, math.inf), nk, nv, positions, math.inf)
            keys, values, key_positions = segment.k, segment.v, segment.positions
            if prefix:
                keys, values = torch.cat([pk, keys], 2), torch.cat([pv, values], 2)
                key_positions = torch.cat([positions.new_zeros(prefix), key_positions])
            mask = visible(positions, key_positions, math.inf, prefix)
            a = merge_heads(attend(q, keys, values, mask)) @ w.wo  # (B, t, d)
            m, memory = mem(a, memory)
            outputs.append(self.gate(a, m, eps))
            if offset + length == C:  # segment done: read from the memory as it stands now
                mac = MacState(memory.memory.weights, read_tail, None)
            else:
                mac = MacState(mac.read_weights, read_tail, segment)
            done += length
        mixed = outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)
        return x + mixed, BlockState(memory=memory, mac=mac)


class TitansModel(nn.Module):
    """Embedding, blocks, final RMSNorm, output head (tied: logits = h Eᵀ). `named_parameters()`
    are the checkpoint's tensor names (embedding, blocks.0.memory.wq, …)."""

    def __init__(self, config):
        super().__init__()
        d, L = config["dModel"], config["layers"]
        self.config = config
        output_std = d**-0.5 / math.sqrt(2 * L)  # residual branches sum over layers
        self.embedding = nn.Parameter(torch.randn(config["vocabSize"], d) * config["initStd"])  # (V, d)
        self.blocks = nn.ModuleList(Block(config, block_kind(config, i), output_std) for i in range(L))
        self.finalNorm = nn.Parameter(torch.ones(d))  # (d)
        if not config["tieEmbeddings"]:
            self.head = nn.Parameter(torch.randn(d, config["vocabSize"]) * d**-0.5)  # (d, V)

    def initial_state(self, batch):
        """The state of a fresh stream of `batch` sequences."""
        return ModelState(0, batch, tuple(block.initial_state(batch) for block in self.blocks))

    def forward(self, tokens, state=None, keep_state=True):
        """Logits (B, T, V) for tokens (B, T) continuing `state` (a fresh stream when None), and the
        state after the last token (None when keep_state is False, which saves work in training)."""
        if tokens.dim() != 2 or tokens.shape[1] == 0:
            raise ValueError(f"TitansModel: tokens must be (B, T) with T ≥ 1, got {tuple(tokens.shape)}")
        B, T = tokens.shape
        if state is not None and state.batch != B:
            raise ValueError(f"TitansModel: the state is for a batch of {state.batch}, the tokens have {B} rows")
        position = 0 if state is None else state.position
        x = F.embedding(tokens.long(), self.embedding)  # (B, T, d)
        blocks = []
        for i, block in enumerate(self.blocks):
            x, next_state = block(x, None if state is None else state.blocks[i], position, keep_state)
            blocks.append(next_state)
        h = rms_norm(x, self.finalNorm, self.config["normEps"])
        logits = h @ self.head if hasattr(self, "head") else h @ self.embedding.t()
        return logits, (ModelState(position + T, B, tuple(blocks)) if keep_state else None)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def state_tensors(state):
    """Every tensor of a state (for its size: SPEC §5 says it stays constant for MAC/MAG/MAL/LMM)."""
    out = []

    def visit(v):
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (tuple, list)):
            for item in v:
                visit(item)
        elif hasattr(v, "__dataclass_fields__"):
            for name in v.__dataclass_fields__:
                visit(getattr(v, name))

    visit(state)
    return out
