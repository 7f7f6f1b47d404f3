"""LSTM, the NumPy specification (gate order i, f, g, o; PyTorch weight layout).

    a = x_t w_ih^T + b_ih + h w_hh^T + b_hh = [a_i, a_f, a_g, a_o]
    i = σ(a_i + p_i c)   f = σ(a_f + p_f c)  (or f = 1 - i with input_forget)
    g = tanh(a_g)   c_t = f c + i g   o = σ(a_o + p_o c_t)   m_t = o tanh(c_t)
    h_t = m_t, or m_t w_proj^T with a projection
Every pre-activation is clipped to [-clip, clip] before its activation when clip is set.
"""

import numpy as np

from .._checks import check_backward, check_forward
from .._types import LSTMCache, LSTMGrads, LSTMOutput
from ._common import add_bias, clip_preact, running, sigmoid, unclip


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None, *, w_peep=None,
                 w_proj=None, clip=None, input_forget=False, lengths=None, reverse=False):
    """Runs an LSTM over ``x[T, B, I]``; returns ``LSTMOutput(y[T,B,P], h_n[B,P], c_n[B,H], cache)``.

    ``w_ih[4H, I]``, ``w_hh[4H, P]``, ``b_*[4H]``, ``h0[B, P]``, ``c0[B, H]`` (zeros by default),
    ``w_peep[3, H]`` (rows p_i, p_f, p_o), ``w_proj[P, H]`` (P = H without it).
    """
    f = check_forward("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep=w_peep, w_proj=w_proj,
                      clip=clip, input_forget=input_forget, lengths=lengths, reverse=reverse)
    T, B, H, P = f.T, f.B, f.H, f.P
    h = np.empty((T + 1, B, P), f.dtype)
    c = np.empty((T + 1, B, H), f.dtype)
    gates = np.zeros((T, B, 4 * H), f.dtype)
    mask = np.zeros((T, B, 4 * H), bool) if f.clip is not None else None
    y = np.zeros((T, B, P), f.dtype)
    h[0], c[0] = f.h0, f.c0
    for k in range(T):
        b, t = running(k, f.lengths, T, B, f.reverse)
        h[k + 1], c[k + 1] = h[k], c[k]  # sequences that have ended keep their state
        h_prev, c_prev = h[k, b], c[k, b]
        m = np.zeros((len(b), 4 * H), bool)
        # a = x_t w_ih^T + b_ih + h w_hh^T + b_hh, split into the four gates
        a = add_bias(f.x[t, b] @ f.w_ih.T, f.b_ih) + add_bias(h_prev @ f.w_hh.T, f.b_hh)
        a_i, a_f, a_g, a_o = (a[:, j * H:(j + 1) * H] for j in range(4))
        if f.w_peep is not None:  # input and forget gates peek at the previous cell state
            a_i = a_i + f.w_peep[0] * c_prev
            a_f = a_f + f.w_peep[1] * c_prev
        # i = σ(a_i), f = σ(a_f) or 1 - i, g = tanh(a_g)
        i = sigmoid(clip_preact(a_i, f.clip, m[:, :H]))
        if f.input_forget:
            fg = 1 - i
        else:
            fg = sigmoid(clip_preact(a_f, f.clip, m[:, H:2 * H]))
        g = np.tanh(clip_preact(a_g, f.clip, m[:, 2 * H:3 * H]))
        # c_t = f c + i g
        c_t = fg * c_prev + i * g
        if f.w_peep is not None:  # the output gate peeks at the new cell state
            a_o = a_o + f.w_peep[2] * c_t
        # o = σ(a_o), m_t = o tanh(c_t), h_t = m_t (w_proj^T)
        o = sigmoid(clip_preact(a_o, f.clip, m[:, 3 * H:]))
        h_t = o * np.tanh(c_t)
        if f.w_proj is not None:
            h_t = h_t @ f.w_proj.T
        h[k + 1, b], c[k + 1, b] = h_t, c_t
        gates[k, b] = np.concatenate([i, fg, g, o], axis=1)
        if mask is not None:
            mask[k, b] = m
        y[t, b] = h_t
    cache = LSTMCache(f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, f.w_peep, f.w_proj, h, c, gates,
                      f.lengths, f.reverse, f.clip, f.input_forget, mask)
    return LSTMOutput(y, h[T].copy(), c[T].copy(), cache)


def lstm_backward(cache, dy=None, dh_n=None, dc_n=None):
    """Gradients of ``lstm_forward`` for ``dy``, ``dh_n``, ``dc_n`` (zeros by default).

    Returns ``LSTMGrads(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dw_proj)``; the
    gradients of absent biases, peepholes or projection are None.
    """
    bw = check_backward("lstm", cache, dy, dh_n, dc_n)
    C = bw.cache
    T, B, H = bw.T, bw.B, bw.H
    dt = bw.dtype
    dx = np.zeros(C.x.shape, dt)
    dw_ih = np.zeros(C.w_ih.shape, dt)
    dw_hh = np.zeros(C.w_hh.shape, dt)
    db = np.zeros(4 * H, dt)
    dw_peep = np.zeros((3, H), dt)
    dw_proj = np.zeros((bw.P, H), dt) if C.w_proj is not None else None
    p = C.w_peep if C.w_peep is not None else np.zeros((3, H), dt)
    dh = bw.dh_n.copy()
    dc = bw.dc_n.copy()
    for k in reversed(range(T)):
        b, t = running(k, C.lengths, T, B, C.reverse)
        m = None if C.clip_mask is None else C.clip_mask[k, b]
        i, fg, g, o = (C.gates[k, b, j * H:(j + 1) * H] for j in range(4))
        c_prev, c_t = C.c[k, b], C.c[k + 1, b]
        # gradient reaching h_t: from later steps and from y
        dh_t = dh[b] + bw.dy[t, b]
        tc = np.tanh(c_t)
        if C.w_proj is not None:  # h_t = m_t w_proj^T
            dw_proj += dh_t.T @ (o * tc)
            dm = dh_t @ C.w_proj
        else:
            dm = dh_t
        # m_t = o tanh(c_t)
        da_o = unclip(dm * tc * o * (1 - o), C.clip, None if m is None else m[:, 3 * H:])
        dc_t = dc[b] + dm * o * (1 - tc * tc) + p[2] * da_o
        # c_t = f c + i g   (with input_forget, f = 1 - i: dc_t/di = g - c)
        di = dc_t * (g - c_prev) if C.input_forget else dc_t * g
        da_i = unclip(di * i * (1 - i), C.clip, None if m is None else m[:, :H])
        if C.input_forget:
            da_f = np.zeros_like(da_i)
        else:
            da_f = unclip(dc_t * c_prev * fg * (1 - fg), C.clip, None if m is None else m[:, H:2 * H])
        da_g = unclip(dc_t * i * (1 - g * g), C.clip, None if m is None else m[:, 2 * H:3 * H])
        da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
        # a = x w_ih^T + h w_hh^T + biases
        dx[t, b] = da @ C.w_ih
        dw_ih += da.T @ C.x[t, b]
        dw_hh += da.T @ C.h[k, b]
        db += da.sum(axis=0)
        dw_peep += np.stack([(da_i * c_prev).sum(0), (da_f * c_prev).sum(0), (da_o * c_t).sum(0)])
        # to the previous step; ended sequences pass their gradients through unchanged
        dc[b] = dc_t * fg + p[0] * da_i + p[1] * da_f
        dh[b] = da @ C.w_hh
    return LSTMGrads(dx, dh, dc, dw_ih, dw_hh,
                     db.copy() if C.b_ih is not None else None,
                     db.copy() if C.b_hh is not None else None,
                     dw_peep if C.w_peep is not None else None, dw_proj)
