"""The native functional API: validate (shared with the reference), allocate, call `_core`.

Every function here has the signature and results of its twin in `rnnkit.reference`; the
validation is the same code (`rnnkit._checks`), so both backends raise the same errors.
Outputs are fresh NumPy arrays; inputs are never written. Non-contiguous inputs are copied
once by the validation (`np.ascontiguousarray`); arrays of the wrong dtype are an error.
"""

from __future__ import annotations

import numpy as np

from . import _checks, _core
from ._types import (
    GRUCache, GRUGrads, GRUOutput, LSTMCache, LSTMGrads, LSTMOutput, RNNCache, RNNGrads, RNNOutput,
)

_RNN_CELLS = {"tanh": _core.CELL_RNN_TANH, "relu": _core.CELL_RNN_RELU}


def _forward(code, f, *, lstm=False, gru=False):
    """Allocates every output of one forward call and runs the kernel; returns them."""
    T, B, H, P, GH = f.T, f.B, f.H, f.P, f.G * f.H
    dt = f.dtype
    y = np.empty((T, B, P), dt)
    h = np.empty((T + 1, B, P), dt)
    c = np.empty((T + 1, B, H), dt) if lstm else None
    gates = np.empty((T, B, GH), dt)
    hn = np.empty((T, B, H), dt) if gru else None
    clip_mask = np.empty((T, B, GH), np.bool_) if f.clip is not None else None
    _core.forward(
        code, f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, f.h0, f.c0 if lstm else None,
        f.w_peep if lstm else None, f.w_proj if lstm else None, f.lengths, bool(f.reverse),
        bool(lstm and f.input_forget), bool(f.linear_before_reset), float(f.clip or 0.0),
        y, h, c, gates, hn, None if clip_mask is None else clip_mask.view(np.uint8))
    return y, h, c, gates, hn, clip_mask


def _backward(code, bw, cache, *, lstm=False, gru=False):
    """Allocates every gradient of one backward call and runs the kernel; returns them."""
    T, B, I, H, P, GH = bw.T, bw.B, bw.I, bw.H, bw.P, bw.G * bw.H
    dt = bw.dtype
    dx = np.empty((T, B, I), dt)
    dh0 = np.empty((B, P), dt)
    dc0 = np.empty((B, H), dt) if lstm else None
    dw_ih = np.empty((GH, I), dt)
    dw_hh = np.empty((GH, P), dt)
    db_ih = np.empty(GH, dt) if cache.b_ih is not None else None
    db_hh = np.empty(GH, dt) if cache.b_hh is not None else None
    dw_peep = np.empty((3, H), dt) if lstm and cache.w_peep is not None else None
    dw_proj = np.empty((P, H), dt) if lstm and cache.w_proj is not None else None
    clip = cache.clip
    mask = cache.clip_mask
    _core.backward(
        code, cache.x, cache.w_ih, cache.w_hh,
        cache.w_peep if lstm else None, cache.w_proj if lstm else None,
        cache.lengths, bool(cache.reverse), bool(lstm and cache.input_forget),
        bool(getattr(cache, "linear_before_reset", True)), float(clip or 0.0),
        cache.h, cache.c if lstm else None, cache.gates, cache.hn if gru else None,
        None if mask is None else mask.view(np.uint8),
        bw.dy, bw.dh_n, bw.dc_n if lstm else None,
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dw_proj)
    return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dw_proj


def rnn_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, nonlinearity="tanh", clip=None,
                lengths=None, reverse=False):
    """Vanilla RNN over a sequence: ``h_t = act(x_t w_ih^T + b_ih + h w_hh^T + b_hh)``.

    Shapes: ``x[T, B, I]``, ``w_ih[H, I]``, ``w_hh[H, H]``, ``b_*[H]``, ``h0[B, H]``.
    Returns ``RNNOutput(y[T, B, H], h_n[B, H], cache)``. See ``rnnkit.reference.rnn_forward``.
    """
    f = _checks.check_forward("rnn", x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity=nonlinearity,
                              clip=clip, lengths=lengths, reverse=reverse)
    y, h, _, gates, _, mask = _forward(_RNN_CELLS[f.nonlinearity], f)
    cache = RNNCache(f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, h, gates, f.lengths, bool(f.reverse),
                     f.nonlinearity, f.clip, mask)
    return RNNOutput(y, h[-1].copy(), cache)


def rnn_backward(cache, dy=None, dh_n=None):
    """Gradients of an ``rnn_forward`` call: ``RNNGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    bw = _checks.check_backward("rnn", cache, dy, dh_n)
    dx, dh0, _, dw_ih, dw_hh, db_ih, db_hh, _, _ = _backward(
        _RNN_CELLS[cache.nonlinearity], bw, bw.cache)
    return RNNGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None, *, w_peep=None,
                 w_proj=None, clip=None, input_forget=False, lengths=None, reverse=False):
    """LSTM over a sequence (gate order i, f, g, o; optional peepholes, projection, clip, CIFG).

    Shapes: ``x[T, B, I]``, ``w_ih[4H, I]``, ``w_hh[4H, P]``, ``w_peep[3, H]``,
    ``w_proj[P, H]``, ``h0[B, P]``, ``c0[B, H]`` (P = H without a projection).
    Returns ``LSTMOutput(y[T, B, P], h_n[B, P], c_n[B, H], cache)``.
    """
    f = _checks.check_forward("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep=w_peep,
                              w_proj=w_proj, clip=clip, input_forget=input_forget,
                              lengths=lengths, reverse=reverse)
    y, h, c, gates, _, mask = _forward(_core.CELL_LSTM, f, lstm=True)
    cache = LSTMCache(f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, f.w_peep, f.w_proj, h, c, gates,
                      f.lengths, bool(f.reverse), f.clip, bool(f.input_forget), mask)
    return LSTMOutput(y, h[-1].copy(), c[-1].copy(), cache)


def lstm_backward(cache, dy=None, dh_n=None, dc_n=None):
    """Gradients of an ``lstm_forward`` call:
    ``LSTMGrads(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dw_proj)``."""
    bw = _checks.check_backward("lstm", cache, dy, dh_n, dc_n)
    return LSTMGrads(*_backward(_core.CELL_LSTM, bw, bw.cache, lstm=True))


def gru_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, linear_before_reset=True,
                clip=None, lengths=None, reverse=False):
    """GRU over a sequence (gate order r, z, n; both reset placements).

    Shapes: ``x[T, B, I]``, ``w_ih[3H, I]``, ``w_hh[3H, H]``, ``b_*[3H]``, ``h0[B, H]``.
    Returns ``GRUOutput(y[T, B, H], h_n[B, H], cache)``.
    """
    f = _checks.check_forward("gru", x, w_ih, w_hh, b_ih, b_hh, h0,
                              linear_before_reset=linear_before_reset, clip=clip,
                              lengths=lengths, reverse=reverse)
    y, h, _, gates, hn, mask = _forward(_core.CELL_GRU, f, gru=True)
    cache = GRUCache(f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, h, gates, hn, f.lengths,
                     bool(f.reverse), bool(f.linear_before_reset), f.clip, mask)
    return GRUOutput(y, h[-1].copy(), cache)


def gru_backward(cache, dy=None, dh_n=None):
    """Gradients of a ``gru_forward`` call: ``GRUGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    bw = _checks.check_backward("gru", cache, dy, dh_n)
    dx, dh0, _, dw_ih, dw_hh, db_ih, db_hh, _, _ = _backward(_core.CELL_GRU, bw, bw.cache,
                                                             gru=True)
    return GRUGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)
