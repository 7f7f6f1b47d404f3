"""Vanilla RNN, the NumPy specification: h_t = act(x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh)."""

import numpy as np

from .._checks import check_backward, check_forward
from .._types import RNNCache, RNNGrads, RNNOutput
from ._common import add_bias, clip_preact, running, unclip


def rnn_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, nonlinearity="tanh", clip=None,
                lengths=None, reverse=False):
    """Runs an Elman RNN over ``x[T, B, I]``; returns ``RNNOutput(y[T,B,H], h_n[B,H], cache)``.

    ``w_ih[H, I]``, ``w_hh[H, H]``, ``b_ih[H]``, ``b_hh[H]``, ``h0[B, H]`` (zeros by default);
    ``nonlinearity`` "tanh" or "relu"; ``clip`` clips the pre-activation (ONNX);
    ``lengths[B]`` and ``reverse`` as in API.md.
    """
    f = check_forward("rnn", x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity=nonlinearity, clip=clip,
                      lengths=lengths, reverse=reverse)
    T, B, H = f.T, f.B, f.H
    h = np.empty((T + 1, B, H), f.dtype)
    gates = np.zeros((T, B, H), f.dtype)
    mask = np.zeros((T, B, H), bool) if f.clip is not None else None
    y = np.zeros((T, B, H), f.dtype)
    h[0] = f.h0
    for k in range(T):
        b, t = running(k, f.lengths, T, B, f.reverse)
        h[k + 1] = h[k]  # sequences that have ended keep their state
        # a = x_t w_ih^T + b_ih + h w_hh^T + b_hh
        a = add_bias(f.x[t, b] @ f.w_ih.T, f.b_ih) + add_bias(h[k, b] @ f.w_hh.T, f.b_hh)
        m = np.zeros(a.shape, bool)
        a = clip_preact(a, f.clip, m)
        # h_t = act(a)
        h_t = np.tanh(a) if f.nonlinearity == "tanh" else np.maximum(a, 0)
        h[k + 1, b] = h_t
        gates[k, b] = h_t
        if mask is not None:
            mask[k, b] = m
        y[t, b] = h_t
    cache = RNNCache(f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, h, gates, f.lengths, f.reverse,
                     f.nonlinearity, f.clip, mask)
    return RNNOutput(y, h[T].copy(), cache)


def rnn_backward(cache, dy=None, dh_n=None):
    """Gradients of ``rnn_forward`` for ``dy = dL/dy`` and ``dh_n = dL/dh_n`` (zeros by default).

    Returns ``RNNGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``; bias gradients are None when the
    forward had no such bias.
    """
    bw = check_backward("rnn", cache, dy, dh_n)
    c = bw.cache
    T, B = bw.T, bw.B
    dx = np.zeros(c.x.shape, bw.dtype)
    dw_ih = np.zeros(c.w_ih.shape, bw.dtype)
    dw_hh = np.zeros(c.w_hh.shape, bw.dtype)
    db = np.zeros(c.w_ih.shape[0], bw.dtype)
    dh = bw.dh_n.copy()
    for k in reversed(range(T)):
        b, t = running(k, c.lengths, T, B, c.reverse)
        # gradient reaching h_{k+1}: from later steps and from y
        dh_t = dh[b] + bw.dy[t, b]
        h_t = c.gates[k, b]
        # tanh'(a) = 1 - h^2, relu'(a) = [h > 0]
        da = dh_t * (1 - h_t * h_t) if c.nonlinearity == "tanh" else dh_t * (h_t > 0)
        da = unclip(da, c.clip, None if c.clip_mask is None else c.clip_mask[k, b])
        dx[t, b] = da @ c.w_ih
        dw_ih += da.T @ c.x[t, b]
        dw_hh += da.T @ c.h[k, b]
        db += da.sum(axis=0)
        dh[b] = da @ c.w_hh  # ended sequences pass their gradient through unchanged
    return RNNGrads(dx, dh, dw_ih, dw_hh,
                    db.copy() if c.b_ih is not None else None,
                    db.copy() if c.b_hh is not None else None)
