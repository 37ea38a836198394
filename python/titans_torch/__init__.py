"""titans_torch — the PyTorch twin of titans-ts: every model of the Titans paper (MAC, MAG, MAL,
LMM and the Transformer++, SWA, DeltaNet and Gated-DeltaNet baselines) with titans-ts's
config.json, tensor names, tokenizers and streaming semantics, so a checkpoint moves both ways.
Train big with torchrun (python -m titans_torch.train), run anywhere with titans-ts.

    from titans_torch import load_checkpoint, save_checkpoint
    model, config, tokenizer = load_checkpoint("runs/mag/checkpoint")   # written by either side
    logits, state = model(tokens)                  # tokens (B, T) -> logits (B, T, V)
    logits, state = model(more_tokens, state)      # continues the stream (pieces = whole)
    save_checkpoint(model, config, tokenizer, "runs/twin/checkpoint")   # `titans generate` reads it
"""

import os

# Before torch loads libgomp: with the default (ACTIVE) wait policy, two busy processes on two
# cores stalled 25-fold (bench/README.md); PASSIVE did not. Set the variable to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from .config import MODEL_VARIANTS, ConfigError, resolve_config  # noqa: E402
from .generate import generate  # noqa: E402
from .memory import MemoryState, initial_memory_state, memory_scan  # noqa: E402
from .memory_layer import MemoryLayer  # noqa: E402
from .model import ModelState, TitansModel, count_parameters  # noqa: E402
from .rng import Rng  # noqa: E402
from .tokenizer import Tokenizer, byte_tokenizer, tokenizer_from_json, train_bpe  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "CheckpointError", "ConfigError", "MODEL_VARIANTS", "MemoryLayer", "MemoryState", "ModelState", "Rng",
    "Tokenizer", "TitansModel", "byte_tokenizer", "count_parameters", "generate", "initial_memory_state",
    "load_checkpoint", "memory_scan", "resolve_config", "save_checkpoint", "tokenizer_from_json", "train_bpe",
]
