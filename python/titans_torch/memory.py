"""The neural long-term memory core of SPEC §1 (paper eq. 12-16), chunk-parallel, batched over
batch × heads — the PyTorch twin of src/memory/scan.ts and src/memory/memory-mlp.ts.

Axis legend: B batch, H heads, T tokens, n tokens of one chunk piece, c chunks of a group,
d = d_h head width, h memory hidden width, L memory depth. Weights are (B|1, H, d_in, d_out): a
leading 1 broadcasts the learned W⁰ over the batch until the first write.

The recurrence, token by token (memory_scan_loop below, for tests), with c(t) the chunk start:
    u_t = ∇_W ℓ(W^{c(t)}; k_t, v_t),  ℓ = ‖M_W(k) − v‖² (summed, no ½)     (eq. 12, 16)
    S^t = η_t S^{t−1} − θ_t u_t                                             (eq. 13-14)
    W^t = (1 − α_t) W^{t−1} + S^t                                           (eq. 13)
    y_t = M_{W^t}(q_t)                                                      (eq. 15)
Within a chunk every u_s is an outer product x_sᵀ δ_s per layer, so with
    A[t, j] = Π_{i=j+1..t} (1 − α_i),  E[j, s] = Π_{i=s+1..j} η_i,  C = A E,
    β_t = Π_{i≤t} (1 − α_i),  m_t = Π_{i≤t} η_i,  γ = A m
we have W^t = β_t W + γ_t S − Σ_{s≤t} C[t, s] θ_s x_sᵀ δ_s, and retrieval is attention-like:
    Z_l = β (R_l W_l) + γ (R_l S_l) − (C ⊙ θ_row ⊙ R_l X_lᵀ) Δ_l,   R_1 = Q,  R_{l+1} = φ(Z_l).
Chunks are absolute positions in the stream; a state carries the chunk-start weights, so a stream
split anywhere (mid-chunk too) gives the outputs of one pass.
"""

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class MemoryState:
    """Everything needed to continue a stream (a plain immutable record, as in titans-ts)."""

    weights: tuple  # W^t per layer, (B|1, H, d_in, d_out)
    momentum: tuple  # S^t per layer
    chunk_start: tuple  # W^{c(t+1)}: the weights the current chunk's gradients are taken at
    position: int  # tokens consumed; position % chunk_size is the offset inside the chunk
    chunk_size: int


def initial_memory_state(weights, chunk_size):
    """A fresh stream from the learned W⁰ (zero momentum)."""
    weights = tuple(weights)
    return MemoryState(weights, tuple(torch.zeros_like(w) for w in weights), weights, 0, chunk_size)


def activation(name, z):
    return F.silu(z) if name == "silu" else F.gelu(z)


def activation_derivative(name, z):
    """φ'(z) written with differentiable ops, so a backward through it has the second-order
    terms (training differentiates through the memory's inner gradient)."""
    if name == "silu":
        sig = torch.sigmoid(z)
        return sig * (1 + z * (1 - sig))
    # exact GELU: Φ(z) + z φ(z)
    return 0.5 * (1 + torch.erf(z * (1 / math.sqrt(2)))) + z * torch.exp(-0.5 * z * z) * (1 / math.sqrt(2 * math.pi))


def memory_forward(z, weights, act="silu", residual=False):
    """M_W(z): φ between layers, none after the last; z (…, n, d), weights[l] (…, d_in, d_out)."""
    x = z
    for l, w in enumerate(weights):
        x = x @ w
        if l < len(weights) - 1:
            x = activation(act, x)
    return x + z if residual else x


def gradient_factors(k, v, weights, act, residual):
    """∇_W ℓ for every row at once, factored: u_l[s] = inputs[l][s]ᵀ deltas[l][s] (eq. 12)."""
    inputs, pre = [k], []
    for l, w in enumerate(weights):
        z = inputs[l] @ w
        pre.append(z)
        if l < len(weights) - 1:
            inputs.append(activation(act, z))
    out = pre[-1] + k if residual else pre[-1]
    deltas = [None] * len(weights)
    deltas[-1] = 2 * (out - v)  # ∂ℓ/∂out, no ½
    for l in range(len(weights) - 2, -1, -1):  # back through W_{l+1} and φ
        deltas[l] = (deltas[l + 1] @ weights[l + 1].transpose(-1, -2)) * activation_derivative(act, pre[l])
    return inputs, deltas


def gate_products(g):
    """g (…, n) -> P (…, n, n), P[t, j] = Π_{i=j+1..t} g_i for j ≤ t (1 on the diagonal), 0 above.
    A cumulative product of factors[i, j] = (g_i if i > j else 1): no logarithms, no division, so a
    gate of exactly 0 or 1 is exact and every entry is ≤ 1 (DECISIONS.md, pitfalls)."""
    n = g.shape[-1]
    idx = torch.arange(n, device=g.device)
    later = idx[:, None] > idx[None, :]
    factors = torch.where(later, g[..., :, None], torch.ones((), dtype=g.dtype, device=g.device))
    return torch.tril(torch.cumprod(factors, dim=-2))


def _gate_terms(Q, K, alpha, eta, theta):
    """Everything of a piece that depends only on the gates, q and k (batched over any leading
    axes, e.g. all full chunks at once): C·θ (…, n, n), β, γ (…, n, 1), m_n (…, 1, 1),
    E[n, :]·θ (…, n, 1), and the first layer's mixing C·θ ⊙ (Q Kᵀ)."""
    keep = 1 - alpha
    A = gate_products(keep)
    E = gate_products(eta)
    C_theta = (A @ E) * theta[..., None, :]  # C[t, s] θ_s
    beta = torch.cumprod(keep, dim=-1)
    m = torch.cumprod(eta, dim=-1)
    gamma = (A @ m[..., None]).squeeze(-1)
    return (
        C_theta,
        beta[..., None],
        gamma[..., None],
        m[..., -1:, None],
        (E[..., -1, :] * theta)[..., None],
        C_theta * (Q @ K.transpose(-1, -2)),
    )


def _scan_piece(Q, K, V, terms, W, S, G, act, residual):
    """One piece of n tokens that share the gradient weights G, from weights W and momentum S.
    Returns y (…, n, d) and W, S after the piece (the last rows of the coefficient matrices).
    W and S are read with one matmul each layer ([W | S] side by side), and the two updates of a
    layer are one matmul too: fewer, larger products (a CPU torch without MKL loops over the batch
    in every bmm)."""
    C_theta, beta, gamma, m_n, s_coef, first_mix = terms
    xs, deltas = gradient_factors(K, V, G, act, residual)
    r = Q
    for l in range(len(W)):
        mix = first_mix if l == 0 else C_theta * (r @ xs[l].transpose(-1, -2))
        out = W[l].shape[-1]
        both = r @ torch.cat(torch.broadcast_tensors(W[l], S[l]), dim=-1)  # (…, n, 2 d_out): r W | r S
        z = beta * both[..., :out] + gamma * both[..., out:] - mix @ deltas[l]
        r = activation(act, z) if l < len(W) - 1 else z
    y = r + Q if residual else r
    b_n, g_n, w_coef = beta[..., -1:, :], gamma[..., -1:, :], C_theta[..., -1, :, None]
    new_W, new_S = [], []
    for l in range(len(W)):
        out = W[l].shape[-1]
        updates = xs[l].transpose(-1, -2) @ torch.cat([w_coef * deltas[l], s_coef * deltas[l]], dim=-1)  # (…, d_in, 2 d_out)
        new_W.append(b_n * W[l] + g_n * S[l] - updates[..., :out])
        new_S.append(m_n * S[l] - updates[..., out:])
    return y, tuple(new_W), tuple(new_S)


def memory_scan(q, k, v, alpha, eta, theta, state, act="silu", residual=False):
    """The memory over a sequence, chunk-parallel, continuing `state` (see initial_memory_state).
    q, k, v (…, T, d); alpha, eta, theta (…, T). Returns y (…, T, d) and the state after the last
    token. Differentiable in every tensor (twice through φ: the inner gradient is analytic).

    The first piece finishes a chunk a previous call began (gradients at its start weights); the
    full chunks that follow are processed as one group (their gate terms batched); a trailing
    partial chunk is its own piece."""
    b, T = state.chunk_size, q.shape[-2]
    W, S, start = state.weights, state.momentum, state.position
    G = state.chunk_start if start % b else W
    pieces, t = [], 0
    if start % b and T:
        n = min(b - start % b, T)
        pieces.append((0, n, None))
        t = n
    full = (T - t) // b
    if full:
        pieces.append((t, full * b, full))
        t += full * b
    if t < T:
        pieces.append((t, T - t, None))
    ys = []
    for begin, n, chunks in pieces:
        sl = lambda x, axis: x.narrow(axis, begin, n)
        Q, K, V = sl(q, -2), sl(k, -2), sl(v, -2)
        a, e, th = sl(alpha, -1), sl(eta, -1), sl(theta, -1)
        if chunks is None:  # a single piece (partial chunk)
            y, W2, S2 = _scan_piece(Q, K, V, _gate_terms(Q, K, a, e, th), W, S, G, act, residual)
            ys.append(y)
            G = W2 if (start + begin + n) % b == 0 else G
            W, S = W2, S2
            continue
        # Full chunks: split the token axis into (c, b) once, compute the gate terms for all of
        # them in one batch, then unbind the chunk axis (its backward is one stack, where slicing
        # per chunk would write each slice's gradient into a zero tensor of length T).
        lead = q.shape[:-2]
        chunked = lambda x, tail: x.reshape(*lead, chunks, b, *tail)
        Qc, Kc, Vc = (chunked(x, x.shape[-1:]) for x in (Q, K, V))
        ac, ec, tc = (chunked(x, ()) for x in (a, e, th))
        axis = len(lead)
        terms = [x.unbind(axis) for x in _gate_terms(Qc, Kc, ac, ec, tc)]
        for i, (Qi, Ki, Vi) in enumerate(zip(Qc.unbind(axis), Kc.unbind(axis), Vc.unbind(axis))):
            y, W, S = _scan_piece(Qi, Ki, Vi, [x[i] for x in terms], W, S, W, act, residual)
            ys.append(y)
        G = W
    y = ys[0] if len(ys) == 1 else torch.cat(ys, dim=-2) if ys else q
    position = start + T
    return y, MemoryState(W, S, W if position % b == 0 else G, position, b)


def memory_scan_loop(q, k, v, alpha, eta, theta, state, act="silu", residual=False):
    """The token-by-token recurrence (tests only): u_t by autograd with create_graph=True, so a
    backward through it includes the second-order terms. Shares no gradient code with memory_scan."""
    b = state.chunk_size
    lead = q.shape[:-2]
    full = lambda w: w.expand(*lead, *w.shape[-2:])
    W = [full(w) for w in state.weights]
    S = [full(s) for s in state.momentum]
    G = [full(g) for g in state.chunk_start]
    position = state.position
    ys = []
    for t in range(q.shape[-2]):
        if position % b == 0:
            G = W
        kt, vt, qt = k[..., t : t + 1, :], v[..., t : t + 1, :], q[..., t : t + 1, :]
        Gx = [g if g.requires_grad else g.detach().requires_grad_() for g in G]
        with torch.enable_grad():
            loss = ((memory_forward(kt, Gx, act, residual) - vt) ** 2).sum()  # leading axes are independent
            u = torch.autograd.grad(loss, Gx, create_graph=True)
        at, et, tt = (g[..., t, None, None] for g in (alpha, eta, theta))
        S = [et * s - tt * ul for s, ul in zip(S, u)]
        W = [(1 - at) * w + s for w, s in zip(W, S)]
        ys.append(memory_forward(qt, W, act, residual))
        position += 1
    if position % b == 0:
        G = W
    y = torch.cat(ys, dim=-2) if ys else q
    return y, replace(state, weights=tuple(W), momentum=tuple(S), chunk_start=tuple(G), position=position)
