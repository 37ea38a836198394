"""SPEC §1's invariants for the twin's memory core: chunk-parallel = the token-by-token recurrence
(float64 1e-9: outputs, end state and gradients through the inner gradient), split stream = whole
stream at any split (mid-chunk too), b = 1 and b = T, causality."""

import pytest
import torch
from conftest import rel_err

from titans_torch.memory import initial_memory_state, memory_scan, memory_scan_loop


def inputs(B, H, T, d, hidden, depth, gen, momentum=False):
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)
    unit = lambda x: x / x.norm(dim=-1, keepdim=True)
    q, k, v = unit(rn(B, H, T, d)), unit(rn(B, H, T, d)), rn(B, H, T, d)
    alpha, eta, theta = torch.sigmoid(rn(B, H, T) - 2), 0.9 * torch.sigmoid(rn(B, H, T)), 0.1 * torch.sigmoid(rn(B, H, T))
    dims = [d] + [hidden] * (depth - 1) + [d]
    weights = tuple(rn(1, H, dims[l], dims[l + 1]) / dims[l] ** 0.5 for l in range(depth))
    return [q, k, v, alpha, eta, theta], weights


@pytest.mark.parametrize("depth, act, residual", [(1, "silu", False), (2, "silu", False), (2, "gelu", True), (3, "silu", True)])
@pytest.mark.parametrize("chunk", [1, 4, 5, 32])
def test_chunk_parallel_equals_token_loop(depth, act, residual, chunk):
    gen = torch.Generator().manual_seed(depth * 100 + chunk)
    seq, weights = inputs(2, 2, 13, 4, 6, depth, gen)
    leaves = [x.clone().requires_grad_() for x in seq] + [w.clone().requires_grad_() for w in weights]
    results = []
    for scan in (memory_scan, memory_scan_loop):
        state = initial_memory_state(tuple(leaves[6:]), chunk)
        y, end = scan(*leaves[:6], state, act, residual)
        loss = (y**2).sum() + sum(w.sum() for w in end.weights) + sum((s**2).sum() for s in end.momentum)
        grads = torch.autograd.grad(loss, leaves)
        results.append((y, end, grads))
    (y1, s1, g1), (y2, s2, g2) = results
    assert rel_err(y1, y2) < 1e-9
    for a, b in zip(s1.weights + s1.momentum + s1.chunk_start, s2.weights + s2.momentum + s2.chunk_start):
        assert rel_err(*torch.broadcast_tensors(a, b)) < 1e-9
    for a, b in zip(g1, g2):
        assert rel_err(a, b) < 1e-9


@pytest.mark.parametrize("chunk", [1, 3, 4, 16])
def test_split_stream_equals_whole(chunk):
    gen = torch.Generator().manual_seed(chunk)
    seq, weights = inputs(2, 3, 17, 4, 8, 2, gen)
    whole, end = memory_scan(*seq, initial_memory_state(weights, chunk))
    for cuts in ([1, 16], [5, 2, 9, 1], [3, 3, 3, 3, 5], [17]):
        state, parts, start = initial_memory_state(weights, chunk), [], 0
        for n in cuts:
            y, state = memory_scan(*(x.narrow(2, start, n) for x in seq), state)
            parts.append(y)
            start += n
        assert rel_err(torch.cat(parts, 2), whole) < 1e-9, cuts
        assert state.position == 17
        for a, b in zip(state.weights + state.chunk_start, end.weights + end.chunk_start):
            assert rel_err(a, b) < 1e-9


def linear_memory(seq, W0, chunk):
    """A linear memory's recurrence written out (one head, batch 1): the gradient at the weights
    of the chunk start, 2 kᵀ(k W − v)."""
    q, k, v, alpha, eta, theta = (x[0] for x in seq)
    W, S, G, ys = W0, torch.zeros_like(W0), W0, []
    for t in range(q.shape[1]):
        if t % chunk == 0:
            G = W
        u = 2 * k[:, t, :, None] @ (k[:, t : t + 1] @ G - v[:, t : t + 1])
        S = eta[:, t, None, None] * S - theta[:, t, None, None] * u
        W = (1 - alpha[:, t, None, None]) * W + S
        ys.append(q[:, t : t + 1] @ W)
    return torch.cat(ys, 1)


def test_chunk_of_one_is_online_descent_and_chunk_of_t_uses_w0():
    gen = torch.Generator().manual_seed(7)
    seq, weights = inputs(1, 1, 6, 3, 3, 1, gen)
    for chunk in (1, 6):  # every gradient at the weights just before the token; every one at W⁰
        y, _ = memory_scan(*seq, initial_memory_state(weights, chunk))
        assert rel_err(y[0], linear_memory(seq, weights[0][0], chunk)) < 1e-12


def test_causal():
    gen = torch.Generator().manual_seed(3)
    seq, weights = inputs(1, 2, 20, 4, 8, 2, gen)
    base, _ = memory_scan(*seq, initial_memory_state(weights, 4))
    for t in (0, 3, 4, 10):
        changed = [x.clone() for x in seq]
        for x in changed:
            x[:, :, t + 1 :] += 0.5
        y, _ = memory_scan(*changed, initial_memory_state(weights, 4))
        assert torch.equal(y[:, :, : t + 1], base[:, :, : t + 1])
        assert (y[:, :, t + 1] - base[:, :, t + 1]).abs().max() > 1e-6
