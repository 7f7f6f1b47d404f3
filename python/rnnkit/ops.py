"""The native functional API: validate (shared with the reference), allocate, call `_core`.

Every function here has the signature and results of its twin in `rnnkit.reference`; the
validation is the same code (`rnnkit._checks`), so both backends raise the same errors.
Outputs are fresh NumPy arrays; inputs are never written. Non-contiguous inputs are copied
once by the validation (`np.ascontiguousarray`); arrays of the wrong dtype are an error.
What differs between cells (their arrays, result and cache types) comes from the cell table
(`rnnkit._cells`): `_forward` and `_backward` serve every cell.
"""

from __future__ import annotations

import numpy as np

from . import _checks, _core
from ._cells import CELLS


def _native_cell(spec, nonlinearity):
    return _core.Cell.__members__[spec.native.format(act=nonlinearity.upper())]


def _forward(cell, f):
    """Allocates every output of one forward call, runs the kernel; returns the cell's Output."""
    spec = CELLS[cell]
    T, B, H, P, GH = f.T, f.B, f.H, f.P, f.G * f.H
    dt = f.dtype
    cache_fields = spec.cache._fields
    y = np.empty((T, B, P), dt)
    h = np.empty((T + 1, B, P), dt)
    c = np.empty((T + 1, B, H), dt) if spec.cell_state else None
    gates = np.empty((T, B, GH), dt)
    hn = np.empty((T, B, H), dt) if "hn" in cache_fields else None
    clip_mask = np.empty((T, B, GH), np.bool_) if f.clip is not None else None
    _core.forward(
        cell=_native_cell(spec, f.nonlinearity), x=f.x, w_ih=f.w_ih, w_hh=f.w_hh, b_ih=f.b_ih,
        b_hh=f.b_hh, h0=f.h0, c0=f.c0, w_peep=f.w_peep, w_proj=f.w_proj, lengths=f.lengths,
        reverse=f.reverse, input_forget=f.input_forget,
        linear_before_reset=f.linear_before_reset, clip=f.clip or 0.0,
        y=y, h=h, c=c, gates=gates, hn=hn,
        clip_mask=None if clip_mask is None else clip_mask.view(np.uint8))
    kept = f._asdict()
    kept.update(h=h, c=c, gates=gates, hn=hn, clip_mask=clip_mask)
    cache = spec.cache(*[kept[name] for name in cache_fields])
    results = {"y": y, "h_n": h[-1].copy(), "c_n": None if c is None else c[-1].copy(),
               "cache": cache}
    return spec.output(*[results[name] for name in spec.output._fields])


def _backward(cell, bw):
    """Allocates every gradient of one backward call, runs the kernel; returns the cell's Grads."""
    spec = CELLS[cell]
    cache = bw.cache
    T, B, I, H, P, GH = bw.T, bw.B, bw.I, bw.H, bw.P, bw.G * bw.H
    dt = bw.dtype

    def get(name):  # a cache field, None for the fields this cell does not have
        return getattr(cache, name, None)

    w_peep, w_proj, mask = get("w_peep"), get("w_proj"), cache.clip_mask
    grads = {
        "dx": np.empty((T, B, I), dt),
        "dh0": np.empty((B, P), dt),
        "dc0": np.empty((B, H), dt) if spec.cell_state else None,
        "dw_ih": np.empty((GH, I), dt),
        "dw_hh": np.empty((GH, P), dt),
        "db_ih": np.empty(GH, dt) if cache.b_ih is not None else None,
        "db_hh": np.empty(GH, dt) if cache.b_hh is not None else None,
        "dw_peep": np.empty((3, H), dt) if w_peep is not None else None,
        "dw_proj": np.empty((P, H), dt) if w_proj is not None else None,
    }
    _core.backward(
        cell=_native_cell(spec, get("nonlinearity") or "tanh"), x=cache.x, w_ih=cache.w_ih,
        w_hh=cache.w_hh, w_peep=w_peep, w_proj=w_proj, lengths=cache.lengths,
        reverse=cache.reverse, input_forget=bool(get("input_forget")),
        linear_before_reset=bool(getattr(cache, "linear_before_reset", True)),
        clip=cache.clip or 0.0, h=cache.h, c=get("c"), gates=cache.gates, hn=get("hn"),
        clip_mask=None if mask is None else mask.view(np.uint8),
        dy=bw.dy, dh_n=bw.dh_n, dc_n=bw.dc_n, **grads)
    return spec.grads(*[grads[name] for name in spec.grads._fields])


def rnn_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, nonlinearity="tanh", clip=None,
                lengths=None, reverse=False):
    """Vanilla RNN over a sequence: ``h_t = act(x_t w_ih^T + b_ih + h w_hh^T + b_hh)``.

    Shapes: ``x[T, B, I]``, ``w_ih[H, I]``, ``w_hh[H, H]``, ``b_*[H]``, ``h0[B, H]``.
    Returns ``RNNOutput(y[T, B, H], h_n[B, H], cache)``. See ``rnnkit.reference.rnn_forward``.
    """
    return _forward("rnn", _checks.check_forward(
        "rnn", x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity=nonlinearity, clip=clip,
        lengths=lengths, reverse=reverse))


def rnn_backward(cache, dy=None, dh_n=None):
    """Gradients of an ``rnn_forward`` call: ``RNNGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    return _backward("rnn", _checks.check_backward("rnn", cache, dy, dh_n))


def lstm_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None, *, w_peep=None,
                 w_proj=None, clip=None, input_forget=False, lengths=None, reverse=False):
    """LSTM over a sequence (gate order i, f, g, o; optional peepholes, projection, clip, CIFG).

    Shapes: ``x[T, B, I]``, ``w_ih[4H, I]``, ``w_hh[4H, P]``, ``w_peep[3, H]``,
    ``w_proj[P, H]``, ``h0[B, P]``, ``c0[B, H]`` (P = H without a projection).
    Returns ``LSTMOutput(y[T, B, P], h_n[B, P], c_n[B, H], cache)``.
    """
    return _forward("lstm", _checks.check_forward(
        "lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep=w_peep, w_proj=w_proj, clip=clip,
        input_forget=input_forget, lengths=lengths, reverse=reverse))


def lstm_backward(cache, dy=None, dh_n=None, dc_n=None):
    """Gradients of an ``lstm_forward`` call:
    ``LSTMGrads(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dw_proj)``."""
    return _backward("lstm", _checks.check_backward("lstm", cache, dy, dh_n, dc_n))


def gru_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, linear_before_reset=True,
                clip=None, lengths=None, reverse=False):
    """GRU over a sequence (gate order r, z, n; both reset placements).

    Shapes: ``x[T, B, I]``, ``w_ih[3H, I]``, ``w_hh[3H, H]``, ``b_*[3H]``, ``h0[B, H]``.
    Returns ``GRUOutput(y[T, B, H], h_n[B, H], cache)``.
    """
    return _forward("gru", _checks.check_forward(
        "gru", x, w_ih, w_hh, b_ih, b_hh, h0, linear_before_reset=linear_before_reset,
        clip=clip, lengths=lengths, reverse=reverse))


def gru_backward(cache, dy=None, dh_n=None):
    """Gradients of a ``gru_forward`` call: ``GRUGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    return _backward("gru", _checks.check_backward("gru", cache, dy, dh_n))
