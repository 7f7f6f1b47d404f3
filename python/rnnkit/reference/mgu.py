"""The minimal gated unit (Zhou et al. 2016), the NumPy specification (gate order f, n;
w_ih[2H, I] and w_hh[2H, H] hold the rows of f, then of n, as the GRU's layout does).

    f = σ(x_t w_if^T + b_if + h w_hf^T + b_hf)
    n = tanh(x_t w_in^T + b_in + (f * h) w_hn^T + b_hn)
    h_t = (1 - f) h + f n                  (h = h_{t-1})

With clip set (beyond PyTorch, as for the RNN), each of the two pre-activations (the
whole argument of σ or tanh) is clipped to [-clip, clip].

Letters: T steps, B batch, I input size, H hidden size (G = 2 gates).
"""

import numpy as np

from .._checks import check_backward, check_forward
from .._types import MGUCache, MGUGrads, MGUOutput
from ._common import clip_preact, mask_cols, running, sigmoid, unclip, zeros_if_none


def mgu_forward(
    x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, clip=None, lengths=None, reverse=False
):
    """Runs a minimal gated unit over a sequence.

    Arguments: ``x[T, B, I]``, ``w_ih[2H, I]``, ``w_hh[2H, H]``, ``b_ih[2H]``, ``b_hh[2H]``
    (absent: zero), ``h0[B, H]`` (absent: zeros), ``clip``, ``lengths[B]`` (integers in
    [0, T]) and ``reverse``, with the meanings of the other cells.

    Returns ``MGUOutput(y[T, B, H], h_n[B, H], cache)``.
    """
    f = check_forward(
        "mgu", x, w_ih, w_hh, b_ih, b_hh, h0, clip=clip, lengths=lengths, reverse=reverse
    )
    T, B, H, dt = f.T, f.B, f.H, f.dtype
    b_ih, b_hh = zeros_if_none(f.b_ih, 2 * H, dt), zeros_if_none(f.b_hh, 2 * H, dt)
    w_hf, w_hn = f.w_hh[:H], f.w_hh[H:]  # [H, H] rows of f; [H, H] rows of n
    b_hf, b_hn = b_hh[:H], b_hh[H:]

    y = np.zeros((T, B, H), dt)
    h = np.empty((T + 1, B, H), dt)  # h[k]: the state after k steps
    gates = np.zeros((T, B, 2 * H), dt)
    clip_mask = None if f.clip is None else np.zeros((T, B, 2 * H), bool)
    h[0] = f.h0
    for k in range(T):
        b, t = running(k, f.lengths, T, B, f.reverse)
        h[k + 1] = h[k]  # ended sequences keep their state
        h_prev = h[k, b]
        ax = f.x[t, b] @ f.w_ih.T + b_ih  # x_t w_ih^T + b_ih, both gates
        # f = σ(x w_if^T + b_if + h w_hf^T + b_hf)
        pre_f, m_f = clip_preact(ax[:, :H] + h_prev @ w_hf.T + b_hf, f.clip)
        fg = sigmoid(pre_f)
        # n = tanh(x w_in^T + b_in + (f h) w_hn^T + b_hn)
        pre_n, m_n = clip_preact(ax[:, H:] + (fg * h_prev) @ w_hn.T + b_hn, f.clip)
        n = np.tanh(pre_n)
        # h_t = (1 - f) h + f n
        h_t = (1 - fg) * h_prev + fg * n
        h[k + 1, b] = h_t
        gates[k, b] = np.concatenate([fg, n], axis=1)
        if clip_mask is not None:
            clip_mask[k, b] = np.concatenate([m_f, m_n], axis=1)
        y[t, b] = h_t
    cache = MGUCache(
        f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, h, gates, f.lengths, f.reverse, f.clip, clip_mask
    )
    return MGUOutput(y, h[T].copy(), cache)


def mgu_backward(cache, dy=None, dh_n=None):
    """Gradients of ``mgu_forward`` for a loss L with ``dy[T, B, H] = dL/dy`` and
    ``dh_n[B, H] = dL/dh_n`` (absent: zeros).

    Returns ``MGUGrads(dx[T, B, I], dh0[B, H], dw_ih[2H, I], dw_hh[2H, H], db_ih[2H],
    db_hh[2H])``; a bias gradient is None when the forward had no such bias. ``dx`` is 0
    past each sequence's end.
    """
    bw = check_backward("mgu", cache, dy, dh_n)
    C = bw.cache
    T, B, H, dt = bw.T, bw.B, bw.H, bw.dtype
    w_hf, w_hn = C.w_hh[:H], C.w_hh[H:]
    dx = np.zeros(C.x.shape, dt)
    dw_ih = np.zeros(C.w_ih.shape, dt)
    dw_hh = np.zeros(C.w_hh.shape, dt)
    db = np.zeros(2 * H, dt)  # the same for b_ih and b_hh
    dh = bw.dh_n.copy()  # dL/dh[k+1]; ended sequences pass it through unchanged
    for k in reversed(range(T)):
        b, t = running(k, C.lengths, T, B, C.reverse)
        mask = None if C.clip_mask is None else C.clip_mask[k, b]
        gates = C.gates[k, b]
        fg, n = gates[:, :H], gates[:, H:]
        h_prev = C.h[k, b]
        # dL/dh_t: from the next step and from y
        dh_t = dh[b] + bw.dy[t, b]
        # h_t = (1 - f) h + f n
        dn = dh_t * fg
        df = dh_t * (n - h_prev)
        dh_prev = dh_t * (1 - fg)
        # n = tanh(pre_n),  pre_n = x w_in^T + b_in + (f h) w_hn^T + b_hn
        da_n = unclip(dn * (1 - n * n), mask_cols(mask, H, 2 * H))
        dfh = da_n @ w_hn  # dL/d(f h)
        df = df + dfh * h_prev
        dh_prev = dh_prev + dfh * fg
        # f = σ(pre_f),  pre_f = x w_if^T + b_if + h w_hf^T + b_hf
        da_f = unclip(df * fg * (1 - fg), mask_cols(mask, 0, H))
        dh_prev = dh_prev + da_f @ w_hf
        dw_hh[:H] += da_f.T @ h_prev
        dw_hh[H:] += da_n.T @ (fg * h_prev)
        # x w_ih^T + b_ih feeds f and n; b_hh adds at the same places
        da = np.concatenate([da_f, da_n], axis=1)
        dx[t, b] = da @ C.w_ih
        dw_ih += da.T @ C.x[t, b]
        db += da.sum(axis=0)
        dh[b] = dh_prev
    return MGUGrads(
        dx,
        dh,
        dw_ih,
        dw_hh,
        None if C.b_ih is None else db.copy(),
        None if C.b_hh is None else db.copy(),
    )
