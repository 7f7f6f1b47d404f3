"""The native functional API: validate (shared with the reference), allocate, call `_core`.

Every function here has the signature and results of its twin in `rnnkit.reference`; the
validation is the same code (`rnnkit._checks`), so both backends raise the same errors.
Outputs are fresh NumPy arrays; inputs are never written. Non-contiguous inputs are copied
once by the validation (`np.ascontiguousarray`); arrays of the wrong dtype are an error.
What differs between cells (their arrays, result and cache types) comes from the cell table
(`rnnkit._cells`): `_forward` and `_backward` serve every cell.

Every option of the functions guide (``ln_ih``, ``ln_hh``, ``ln_c``, ``resets``, ``zoneout``,
``zoneout_c``, ``recurrent_mask``) runs in the kernels, layer norm fused into the cells'
pointwise passes; nothing here falls back to ``rnnkit.reference``.
"""

from __future__ import annotations

import operator

import numpy as np

from . import _checks, _core
from ._cells import CELLS

# Output arrays: large ones reuse the blocks of freed outputs (cpp/array_pool.cpp).
_empty = _core.empty
_BOOL = np.dtype(np.bool_)


def _native_cells():
    """(cell, nonlinearity) -> the rnnkit._core.Cell value, for every cell of the table."""
    out = {}
    for name, spec in CELLS.items():
        for act in _checks.NONLINEARITIES:
            out[name, act] = _core.Cell[spec.native.format(act=act.upper())]
    return out


_NATIVE = _native_cells()
# what the forward kernel writes
_KERNEL_OUT = ("h", "c", "gates", "hn", "clip_mask", "ih_hat", "hh_hat", "c_hat", "ln_rstd")


def _pick(cls, names):
    """A maker of cls from one tuple: the fields named by cls, looked up in `names` (the order
    of the tuple the maker gets). One C-level itemgetter call: this runs on every call."""
    get = operator.itemgetter(*[names.index(field) for field in cls._fields])
    new = tuple.__new__
    return lambda values: new(cls, get(values))


# The cache fields the backward kernel reads beyond those every cell has, with the value for
# a cell without them.
_OPTIONAL = (
    ("w_peep", None),
    ("w_proj", None),
    ("c", None),
    ("hn", None),
    ("nonlinearity", "tanh"),
    ("input_forget", False),
    ("linear_before_reset", True),
    ("resets", None),
    ("zoneout", None),
    ("zoneout_c", None),
    ("recurrent_mask", None),
    ("ln_ih", None),
    ("ln_hh", None),
    ("ln_c", None),
    ("ih_hat", None),
    ("hh_hat", None),
    ("c_hat", None),
    ("ln_rstd", None),
)
_GRADS = (
    "dx",
    "dh0",
    "dc0",
    "dw_ih",
    "dw_hh",
    "db_ih",
    "db_hh",
    "dw_peep",
    "dw_proj",
    "dln_ih",
    "dln_hh",
    "dln_c",
)


def _makers(spec):
    """For one cell: the cache from (validated arguments + kernel outputs), the output from
    (y, h_n, c_n, cache), the grads from the gradient tuple (_GRADS order), and the optional
    cache fields (_OPTIONAL order) from (cache + their defaults)."""
    args = _checks.Forward._fields + _KERNEL_OUT
    fields = spec.cache._fields
    extra = [
        len(fields) + i if name not in fields else fields.index(name)
        for i, (name, _) in enumerate(_OPTIONAL)
    ]
    return (
        _pick(spec.cache, args),
        _pick(spec.output, ("y", "h_n", "c_n", "cache")),
        _pick(spec.grads, _GRADS),
        operator.itemgetter(*extra),
    )


_DEFAULTS = tuple(value for _, value in _OPTIONAL)
_MAKERS = {name: _makers(spec) for name, spec in CELLS.items()}


# --- the common call without the validation ---------------------------------------------------
# rnnkit._core.forward_fast runs a call whose arguments need nothing from `_checks` (exact,
# C-contiguous ndarrays of x's dtype and the right shapes, flags exact bools, no option set) and
# returns the pieces `_FAST` names, or None for any other call, which then takes the validated
# path (and raises its errors). That path's validation, allocations and tuples cost ~3x the
# kernel of a T=1, H=64 LSTM call (issue 13). A cache field not in `_FAST` is None on the fast
# path (no lengths, clip, peepholes, projection or options): `_FAST_NONE`.
_FAST = (
    "y",
    "h_n",
    "c_n",
    "h",
    "c",
    "gates",
    "hn",
    "x",
    "w_ih",
    "w_hh",
    "b_ih",
    "b_hh",
    "reverse",
    "input_forget",
    "linear_before_reset",
    "nonlinearity",  # forward_fast's `extra`, handed back: None for every cell but the RNN
)
_FAST_NONE = ("w_peep", "w_proj", "lengths", "clip", "clip_mask") + _checks.OPTIONS
_FAST_NONE += _checks.LN_FIELDS


def _fast_maker(spec):
    """The cell's Output from a forward_fast result; None (no fast path for the cell) when its
    cache has a field the fast path does not know."""
    fields = spec.cache._fields
    if any(f not in _FAST and f not in _FAST_NONE for f in fields):
        return None
    # a slot of the result that is None for this cell: c_n without a cell state, else `extra`
    none = _FAST.index("nonlinearity" if spec.cell_state else "c_n")
    cache = operator.itemgetter(*[_FAST.index(f) if f in _FAST else none for f in fields])
    out = _pick(spec.output, ("y", "h_n", "c_n", "cache"))
    cls, new = spec.cache, tuple.__new__
    return lambda r: out((r[0], r[1], r[2], new(cls, cache(r))))


_FAST_OUTPUT = {name: _fast_maker(spec) for name, spec in CELLS.items()}
# The _core.Cell a fast call passes, None where the cell has no fast path.
_FAST_CELL = {k: (v if _FAST_OUTPUT[k[0]] else None) for k, v in _NATIVE.items()}
_FAST_RNN = {act: _FAST_CELL["rnn", act] for act in _checks.NONLINEARITIES}
_FAST_LSTM, _FAST_GRU = _FAST_CELL["lstm", "tanh"], _FAST_CELL["gru", "tanh"]


def _unset(clip, lengths, ln_ih, ln_hh, zoneout, recurrent_mask, resets):
    """The options every cell has are all absent: the call may take the fast path."""
    return (
        clip is None
        and lengths is None
        and ln_ih is None
        and ln_hh is None
        and zoneout is None
        and recurrent_mask is None
        and resets is None
    )


def _forward(cell, f):
    """Allocates every output of one forward call, runs the kernel; returns the cell's Output."""
    spec = CELLS[cell]
    make_cache, make_output, _, _ = _MAKERS[cell]
    T, B, H, P, GH = f.T, f.B, f.H, f.P, f.G * f.H
    dt = f.dtype
    y = _empty((T, B, P), dt)
    h = _empty((T + 1, B, P), dt)
    c = _empty((T + 1, B, H), dt) if spec.cell_state else None
    gates = _empty((T, B, GH), dt)
    hn = _empty((T, B, H), dt) if spec.hn_cache else None
    clip_mask = _empty((T, B, GH), _BOOL) if f.clip is not None else None
    ih_hat = None if f.ln_ih is None else _empty((T, B, GH), dt)
    hh_hat = None if f.ln_hh is None else _empty((T, B, GH), dt)
    c_hat = None if f.ln_c is None else _empty((T, B, H), dt)
    any_ln = f.ln_ih is not None or f.ln_hh is not None or f.ln_c is not None
    ln_rstd = _empty((T, B, 4), dt) if any_ln else None
    _core.forward(
        cell=_NATIVE[cell, f.nonlinearity],
        x=f.x,
        w_ih=f.w_ih,
        w_hh=f.w_hh,
        b_ih=f.b_ih,
        b_hh=f.b_hh,
        h0=f.h0,
        c0=f.c0,
        w_peep=f.w_peep,
        w_proj=f.w_proj,
        lengths=f.lengths,
        reverse=f.reverse,
        input_forget=f.input_forget,
        linear_before_reset=f.linear_before_reset,
        clip=f.clip or 0.0,
        y=y,
        h=h,
        c=c,
        gates=gates,
        hn=hn,
        clip_mask=None if clip_mask is None else clip_mask.view(np.uint8),
        resets=None if f.resets is None else f.resets.view(np.uint8),
        zoneout=f.zoneout,
        zoneout_c=f.zoneout_c,
        recurrent_mask=f.recurrent_mask,
        ln_ih=f.ln_ih,
        ln_hh=f.ln_hh,
        ln_c=f.ln_c,
        ih_hat=ih_hat,
        hh_hat=hh_hat,
        c_hat=c_hat,
        ln_rstd=ln_rstd,
    )
    cache = make_cache(f + (h, c, gates, hn, clip_mask, ih_hat, hh_hat, c_hat, ln_rstd))
    return make_output((y, h[-1].copy(), None if c is None else c[-1].copy(), cache))


def _backward(cell, bw):
    """Allocates every gradient of one backward call, runs the kernel; returns the cell's Grads."""
    spec = CELLS[cell]
    _, _, make_grads, optional = _MAKERS[cell]
    cache = bw.cache
    (w_peep, w_proj, c, hn, nonlinearity, input_forget, lbr, resets, zoneout, zoneout_c) = (
        opt := optional(cache + _DEFAULTS)
    )[:10]
    rmask = opt[10]
    ln_ih, ln_hh, ln_c, ih_hat, hh_hat, c_hat, ln_rstd = opt[11:]  # the layer norms
    T, B, I, H, P, GH = bw.T, bw.B, bw.I, bw.H, bw.P, bw.G * bw.H
    dt = bw.dtype
    mask = cache.clip_mask
    grads = (
        _empty((T, B, I), dt),  # dx
        np.empty((B, P), dt),  # dh0
        np.empty((B, H), dt) if spec.cell_state else None,  # dc0
        _empty((GH, I), dt),  # dw_ih
        _empty((GH, P), dt),  # dw_hh
        np.empty(GH, dt) if cache.b_ih is not None else None,  # db_ih
        np.empty(GH, dt) if cache.b_hh is not None else None,  # db_hh
        np.empty((3, H), dt) if w_peep is not None else None,  # dw_peep
        np.empty((P, H), dt) if w_proj is not None else None,  # dw_proj
        None if ln_ih is None else np.empty((2, GH), dt),  # dln_ih
        None if ln_hh is None else np.empty((2, GH), dt),  # dln_hh
        None if ln_c is None else np.empty((2, H), dt),  # dln_c
    )
    _core.backward(
        cell=_NATIVE[cell, nonlinearity],
        x=cache.x,
        w_ih=cache.w_ih,
        w_hh=cache.w_hh,
        w_peep=w_peep,
        w_proj=w_proj,
        lengths=cache.lengths,
        reverse=cache.reverse,
        input_forget=input_forget,
        linear_before_reset=lbr,
        clip=cache.clip or 0.0,
        h=cache.h,
        c=c,
        gates=cache.gates,
        hn=hn,
        clip_mask=None if mask is None else mask.view(np.uint8),
        dy=bw.dy,
        dh_n=bw.dh_n,
        dc_n=bw.dc_n,
        dx=grads[0],
        dh0=grads[1],
        dc0=grads[2],
        dw_ih=grads[3],
        dw_hh=grads[4],
        db_ih=grads[5],
        db_hh=grads[6],
        dw_peep=grads[7],
        dw_proj=grads[8],
        resets=None if resets is None else resets.view(np.uint8),
        zoneout=zoneout,
        zoneout_c=zoneout_c,
        recurrent_mask=rmask,
        ln_ih=ln_ih,
        ln_hh=ln_hh,
        ln_c=ln_c,
        ih_hat=ih_hat,
        hh_hat=hh_hat,
        c_hat=c_hat,
        ln_rstd=ln_rstd,
        dln_ih=grads[9],
        dln_hh=grads[10],
        dln_c=grads[11],
    )
    return make_grads(grads)


def rnn_forward(
    x,
    w_ih,
    w_hh,
    b_ih=None,
    b_hh=None,
    h0=None,
    *,
    nonlinearity="tanh",
    clip=None,
    lengths=None,
    reverse=False,
    ln_ih=None,
    ln_hh=None,
    zoneout=None,
    recurrent_mask=None,
    resets=None,
):
    """Vanilla RNN over a sequence: ``h_t = act(x_t w_ih^T + b_ih + h w_hh^T + b_hh)``.

    Shapes: ``x[T, B, I]``, ``w_ih[H, I]``, ``w_hh[H, H]``, ``b_*[H]``, ``h0[B, H]``.
    Returns ``RNNOutput(y[T, B, H], h_n[B, H], cache)``. See ``rnnkit.reference.rnn_forward``.
    """
    if type(nonlinearity) is str and _unset(
        clip, lengths, ln_ih, ln_hh, zoneout, recurrent_mask, resets
    ):
        r = _core.forward_fast(
            _FAST_RNN.get(nonlinearity), x, w_ih, w_hh, b_ih, b_hh, h0, None, reverse, False,
            True, nonlinearity,
        )  # fmt: skip
        if r is not None:
            return _FAST_OUTPUT["rnn"](r)
    options = dict(
        ln_ih=ln_ih, ln_hh=ln_hh, zoneout=zoneout, recurrent_mask=recurrent_mask, resets=resets
    )
    return _forward(
        "rnn",
        _checks.check_forward(
            "rnn",
            x,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            h0,
            nonlinearity=nonlinearity,
            clip=clip,
            lengths=lengths,
            reverse=reverse,
            **options,
        ),
    )


def rnn_backward(cache, dy=None, dh_n=None):
    """Gradients of an ``rnn_forward`` call: ``RNNGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    return _backward("rnn", _checks.check_backward("rnn", cache, dy, dh_n))


def lstm_forward(
    x,
    w_ih,
    w_hh,
    b_ih=None,
    b_hh=None,
    h0=None,
    c0=None,
    *,
    w_peep=None,
    w_proj=None,
    clip=None,
    input_forget=False,
    lengths=None,
    reverse=False,
    ln_ih=None,
    ln_hh=None,
    ln_c=None,
    zoneout=None,
    zoneout_c=None,
    recurrent_mask=None,
    resets=None,
):
    """LSTM over a sequence (gate order i, f, g, o; optional peepholes, projection, clip, CIFG).

    Shapes: ``x[T, B, I]``, ``w_ih[4H, I]``, ``w_hh[4H, P]``, ``w_peep[3, H]``,
    ``w_proj[P, H]``, ``h0[B, P]``, ``c0[B, H]`` (P = H without a projection).
    Returns ``LSTMOutput(y[T, B, P], h_n[B, P], c_n[B, H], cache)``.
    """
    if (
        w_peep is None
        and w_proj is None
        and ln_c is None
        and zoneout_c is None
        and _unset(clip, lengths, ln_ih, ln_hh, zoneout, recurrent_mask, resets)
    ):
        r = _core.forward_fast(
            _FAST_LSTM, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, input_forget, True, None
        )
        if r is not None:
            return _FAST_OUTPUT["lstm"](r)
    options = dict(
        ln_ih=ln_ih,
        ln_hh=ln_hh,
        ln_c=ln_c,
        zoneout=zoneout,
        zoneout_c=zoneout_c,
        recurrent_mask=recurrent_mask,
        resets=resets,
    )
    return _forward(
        "lstm",
        _checks.check_forward(
            "lstm",
            x,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            h0,
            c0,
            w_peep=w_peep,
            w_proj=w_proj,
            clip=clip,
            input_forget=input_forget,
            lengths=lengths,
            reverse=reverse,
            **options,
        ),
    )


def lstm_backward(cache, dy=None, dh_n=None, dc_n=None):
    """Gradients of an ``lstm_forward`` call:
    ``LSTMGrads(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dw_proj)``."""
    return _backward("lstm", _checks.check_backward("lstm", cache, dy, dh_n, dc_n))


def gru_forward(
    x,
    w_ih,
    w_hh,
    b_ih=None,
    b_hh=None,
    h0=None,
    *,
    linear_before_reset=True,
    clip=None,
    lengths=None,
    reverse=False,
    ln_ih=None,
    ln_hh=None,
    zoneout=None,
    recurrent_mask=None,
    resets=None,
):
    """GRU over a sequence (gate order r, z, n; both reset placements).

    Shapes: ``x[T, B, I]``, ``w_ih[3H, I]``, ``w_hh[3H, H]``, ``b_*[3H]``, ``h0[B, H]``.
    Returns ``GRUOutput(y[T, B, H], h_n[B, H], cache)``.
    """
    if _unset(clip, lengths, ln_ih, ln_hh, zoneout, recurrent_mask, resets):
        r = _core.forward_fast(
            _FAST_GRU, x, w_ih, w_hh, b_ih, b_hh, h0, None, reverse, False,
            linear_before_reset, None,
        )  # fmt: skip
        if r is not None:
            return _FAST_OUTPUT["gru"](r)
    options = dict(
        ln_ih=ln_ih, ln_hh=ln_hh, zoneout=zoneout, recurrent_mask=recurrent_mask, resets=resets
    )
    return _forward(
        "gru",
        _checks.check_forward(
            "gru",
            x,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            h0,
            linear_before_reset=linear_before_reset,
            clip=clip,
            lengths=lengths,
            reverse=reverse,
            **options,
        ),
    )


def gru_backward(cache, dy=None, dh_n=None):
    """Gradients of a ``gru_forward`` call: ``GRUGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    return _backward("gru", _checks.check_backward("gru", cache, dy, dh_n))


def mgu_forward(
    x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, clip=None, lengths=None, reverse=False
):
    """Minimal gated unit over a sequence (gate order f, n; Zhou et al. 2016).

    Shapes: ``x[T, B, I]``, ``w_ih[2H, I]``, ``w_hh[2H, H]``, ``b_*[2H]``, ``h0[B, H]``.
    Returns ``MGUOutput(y[T, B, H], h_n[B, H], cache)``. See ``rnnkit.reference.mgu_forward``.
    """
    return _forward(
        "mgu",
        _checks.check_forward(
            "mgu", x, w_ih, w_hh, b_ih, b_hh, h0, clip=clip, lengths=lengths, reverse=reverse
        ),
    )


def mgu_backward(cache, dy=None, dh_n=None):
    """Gradients of an ``mgu_forward`` call: ``MGUGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``."""
    return _backward("mgu", _checks.check_backward("mgu", cache, dy, dh_n))
