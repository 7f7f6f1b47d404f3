"""LSTM, the NumPy specification (gate order i, f, g, o; PyTorch weight layout).

    a = x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh = [a_i, a_f, a_g, a_o]
    i = σ(a_i + p_i c_{t-1})      f = σ(a_f + p_f c_{t-1})  (f = 1 - i with input_forget)
    g = tanh(a_g)                 c_t = f c_{t-1} + i g
    o = σ(a_o + p_o c_t)          m_t = o tanh(c_t)
    h_t = m_t, or m_t w_proj^T with a projection

Peepholes p = w_peep[3, H] (rows p_i, p_f, p_o) and the projection are optional. With clip
set, each gate pre-activation (the argument of σ or tanh above, peephole term included) is
clipped to [-clip, clip]. With input_forget (CIFG) the f rows of the weights and biases and
p_f are unused; their gradients are zero.

Letters: T steps, B batch, I input size, H hidden size, P projection size (H without one).
"""

import numpy as np

from .._checks import check_backward, check_forward
from .._types import LSTMCache, LSTMGrads, LSTMOutput
from ._common import clip_preact, mask_cols, running, sigmoid, unclip, zeros_if_none


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None, *, w_peep=None,
                 w_proj=None, clip=None, input_forget=False, lengths=None, reverse=False):
    """Runs an LSTM over a sequence.

    Arguments: ``x[T, B, I]``, ``w_ih[4H, I]``, ``w_hh[4H, P]``, ``b_ih[4H]``, ``b_hh[4H]``
    (absent: zero), ``h0[B, P]``, ``c0[B, H]`` (absent: zeros), ``w_peep[3, H]`` (rows
    p_i, p_f, p_o; absent: none), ``w_proj[P, H]`` (absent: P = H, no projection), ``clip``,
    ``input_forget``, ``lengths[B]`` (integers in [0, T]) and ``reverse``: see API.md.

    Returns ``LSTMOutput(y[T, B, P], h_n[B, P], c_n[B, H], cache)``.
    """
    f = check_forward("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep=w_peep, w_proj=w_proj,
                      clip=clip, input_forget=input_forget, lengths=lengths, reverse=reverse)
    T, B, H, P, dt = f.T, f.B, f.H, f.P, f.dtype
    b_ih, b_hh = zeros_if_none(f.b_ih, 4 * H, dt), zeros_if_none(f.b_hh, 4 * H, dt)
    p_i, p_f, p_o = zeros_if_none(f.w_peep, (3, H), dt)

    y = np.zeros((T, B, P), dt)
    h = np.empty((T + 1, B, P), dt)  # h[k], c[k]: the state after k steps
    c = np.empty((T + 1, B, H), dt)
    gates = np.zeros((T, B, 4 * H), dt)
    clip_mask = None if f.clip is None else np.zeros((T, B, 4 * H), bool)
    h[0], c[0] = f.h0, f.c0
    for k in range(T):
        b, t = running(k, f.lengths, T, B, f.reverse)
        h[k + 1], c[k + 1] = h[k], c[k]  # ended sequences keep their state
        h_prev, c_prev = h[k, b], c[k, b]
        # a = x_t w_ih^T + b_ih + h_prev w_hh^T + b_hh
        a = (f.x[t, b] @ f.w_ih.T + b_ih) + (h_prev @ f.w_hh.T + b_hh)
        a_i, a_f, a_g, a_o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        # i = σ(a_i + p_i c_prev)
        pre_i, m_i = clip_preact(a_i + p_i * c_prev, f.clip)
        i = sigmoid(pre_i)
        # f = σ(a_f + p_f c_prev), or f = 1 - i (CIFG)
        if f.input_forget:
            fg, m_f = 1 - i, None
        else:
            pre_f, m_f = clip_preact(a_f + p_f * c_prev, f.clip)
            fg = sigmoid(pre_f)
        # g = tanh(a_g)
        pre_g, m_g = clip_preact(a_g, f.clip)
        g = np.tanh(pre_g)
        # c_t = f c_prev + i g
        c_t = fg * c_prev + i * g
        # o = σ(a_o + p_o c_t)
        pre_o, m_o = clip_preact(a_o + p_o * c_t, f.clip)
        o = sigmoid(pre_o)
        # m_t = o tanh(c_t)
        m_t = o * np.tanh(c_t)
        # h_t = m_t w_proj^T (with a projection), else m_t
        h_t = m_t @ f.w_proj.T if f.w_proj is not None else m_t
        h[k + 1, b], c[k + 1, b] = h_t, c_t
        gates[k, b] = np.concatenate([i, fg, g, o], axis=1)
        if clip_mask is not None:
            clip_mask[k, b, :H] = m_i
            if m_f is not None:
                clip_mask[k, b, H:2 * H] = m_f
            clip_mask[k, b, 2 * H:3 * H] = m_g
            clip_mask[k, b, 3 * H:] = m_o
        y[t, b] = h_t
    cache = LSTMCache(f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, f.w_peep, f.w_proj, h, c, gates,
                      f.lengths, f.reverse, f.clip, f.input_forget, clip_mask)
    return LSTMOutput(y, h[T].copy(), c[T].copy(), cache)


def lstm_backward(cache, dy=None, dh_n=None, dc_n=None):
    """Gradients of ``lstm_forward`` for a loss L with ``dy[T, B, P] = dL/dy``,
    ``dh_n[B, P] = dL/dh_n`` and ``dc_n[B, H] = dL/dc_n`` (absent: zeros).

    Returns ``LSTMGrads(dx[T, B, I], dh0[B, P], dc0[B, H], dw_ih[4H, I], dw_hh[4H, P],
    db_ih[4H], db_hh[4H], dw_peep[3, H], dw_proj[P, H])``; the gradient of an absent bias,
    peephole or projection is None. ``dx`` is 0 past each sequence's end.
    """
    bw = check_backward("lstm", cache, dy, dh_n, dc_n)
    C = bw.cache
    T, B, H, dt = bw.T, bw.B, bw.H, bw.dtype
    p_i, p_f, p_o = zeros_if_none(C.w_peep, (3, H), dt)
    dx = np.zeros(C.x.shape, dt)
    dw_ih = np.zeros(C.w_ih.shape, dt)
    dw_hh = np.zeros(C.w_hh.shape, dt)
    db = np.zeros(4 * H, dt)  # the same for b_ih and b_hh
    dw_peep = np.zeros((3, H), dt)
    dw_proj = np.zeros((bw.P, H), dt)
    dh = bw.dh_n.copy()  # dL/dh[k+1], dL/dc[k+1]; ended sequences pass them through unchanged
    dc = bw.dc_n.copy()
    for k in reversed(range(T)):
        b, t = running(k, C.lengths, T, B, C.reverse)
        mask = None if C.clip_mask is None else C.clip_mask[k, b]
        gates = C.gates[k, b]
        i, fg, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        c_prev, c_t = C.c[k, b], C.c[k + 1, b]
        tanh_c = np.tanh(c_t)
        # dL/dh_t: from the next step and from y
        dh_t = dh[b] + bw.dy[t, b]
        # h_t = m_t w_proj^T (with a projection), else m_t
        if C.w_proj is not None:
            dw_proj += dh_t.T @ (o * tanh_c)
            dm = dh_t @ C.w_proj
        else:
            dm = dh_t
        # m_t = o tanh(c_t)
        do = dm * tanh_c
        dc_t = dc[b] + dm * o * (1 - tanh_c * tanh_c)
        # o = σ(a_o + p_o c_t): the peephole also carries gradient into c_t
        da_o = unclip(do * o * (1 - o), mask_cols(mask, 3 * H, 4 * H))
        dc_t = dc_t + da_o * p_o
        # c_t = f c_prev + i g
        di = dc_t * g
        dg = dc_t * i
        df = dc_t * c_prev
        # f = 1 - i (CIFG): f's gradient goes to i, with a minus sign
        if C.input_forget:
            di = di - df
        # i = σ(a_i + p_i c_prev), f = σ(a_f + p_f c_prev), g = tanh(a_g)
        da_i = unclip(di * i * (1 - i), mask_cols(mask, 0, H))
        if C.input_forget:
            da_f = np.zeros_like(da_i)
        else:
            da_f = unclip(df * fg * (1 - fg), mask_cols(mask, H, 2 * H))
        da_g = unclip(dg * (1 - g * g), mask_cols(mask, 2 * H, 3 * H))
        dw_peep[0] += (da_i * c_prev).sum(axis=0)
        dw_peep[1] += (da_f * c_prev).sum(axis=0)
        dw_peep[2] += (da_o * c_t).sum(axis=0)
        # a = x_t w_ih^T + b_ih + h_prev w_hh^T + b_hh
        da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
        dx[t, b] = da @ C.w_ih
        dw_ih += da.T @ C.x[t, b]
        dw_hh += da.T @ C.h[k, b]
        db += da.sum(axis=0)
        dh[b] = da @ C.w_hh
        # c_prev feeds c_t (through f) and the peepholes of i and f
        dc[b] = dc_t * fg + da_i * p_i + da_f * p_f
    return LSTMGrads(dx, dh, dc, dw_ih, dw_hh,
                     None if C.b_ih is None else db.copy(),
                     None if C.b_hh is None else db.copy(),
                     None if C.w_peep is None else dw_peep,
                     None if C.w_proj is None else dw_proj)
