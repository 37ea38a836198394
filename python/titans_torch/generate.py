"""Streaming generation with the twin, as titans-ts's `generate` (src/models/generate.ts): the
prompt fed in pieces, then one token at a time with the state carried, sampled with titans-ts's
generator, so greedy decoding gives titans-ts's tokens and sampling its draws (up to float32
rounding at near-ties).

    model, config, tokenizer = load_checkpoint("runs/mag")
    ids = generate(model, tokenizer.encode("The Congress"), max_tokens=100, temperature=0)
"""

import math

import torch

from .rng import Rng


def pick_token(logits, temperature, top_k, rng=None):
    """Greedy (temperature 0) or temperature / top-k sampling from one row (a list of floats)."""
    n = len(logits)
    if temperature == 0:
        return max(range(n), key=lambda i: (logits[i], -i))
    order = list(range(n))
    if 0 < top_k < n:
        order = sorted(order, key=lambda i: -logits[i])[:top_k]
    top = max(logits[i] for i in order)
    weights = [math.exp((logits[i] - top) / temperature) for i in order]
    u = rng.next() * sum(weights)
    for i, w in zip(order, weights):
        u -= w
        if u <= 0:
            return i
    return order[-1]


@torch.no_grad()
def generate(model, prompt, max_tokens, temperature=0.8, top_k=40, rng=None, prompt_chunk=256, state=None):
    """Continues `prompt` (a non-empty list of ids) by `max_tokens` tokens; returns (tokens, state).
    temperature > 0 needs `rng` (an Rng, or a seed)."""
    if not prompt:
        raise ValueError("generate: the prompt needs at least one token")
    if temperature > 0 and rng is None:
        raise ValueError("generate: sampling (temperature > 0) needs an rng")
    rng = Rng(rng) if isinstance(rng, int) else rng
    device = next(model.parameters()).device
    last = None
    for start in range(0, len(prompt), prompt_chunk):
        piece = torch.tensor([prompt[start : start + prompt_chunk]], device=device)
        logits, state = model(piece, state)
        last = logits[0, -1].double().tolist()
    tokens = []
    for n in range(max_tokens):
        token = pick_token(last, temperature, top_k, rng)
        tokens.append(token)
        if n == max_tokens - 1:
            break
        logits, state = model(torch.tensor([[token]], device=device), state)
        last = logits[0, -1].double().tolist()
    return tokens, state
