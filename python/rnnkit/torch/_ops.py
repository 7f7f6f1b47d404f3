"""rnnkit's kernels as PyTorch custom operators (namespace ``rnnkit``), registered in Python.

Six operators, one forward and one backward per cell, each a whole sequence of one layer and
one direction (the functional API of ``rnnkit.ops``)::

    rnnkit::rnn_forward   rnnkit::lstm_forward   rnnkit::gru_forward
    rnnkit::rnn_backward  rnnkit::lstm_backward  rnnkit::gru_backward

An implementation hands the tensors' own memory to rnnkit's public functions
(``Tensor.numpy()`` of a contiguous CPU tensor is a view; a non-contiguous tensor is made
contiguous once, here) and wraps the fresh NumPy results with ``torch.from_numpy`` (no copy
either way). No output aliases an input. Each operator has a fake (meta) implementation
with the exact shapes and strides (all outputs contiguous), so ``torch.compile`` traces
through it, and the forwards have an autograd formula that calls the backward operator.

The forward's ``need_cache`` flag says whether to return the backward cache (all states
``h[T+1, B, Hout]``, LSTM ``c[T+1, B, H]``, ``gates[T, B, G*H]``, GRU ``hn[T, B, H]`` and the
clip mask ``[T, B, G*H]``, each an empty ``[0]`` tensor when absent). The Python wrappers
(``rnn``, ``lstm``, ``gru``) set it only when autograd will need it, so under
``torch.no_grad()`` and inference mode nothing of the cache outlives the call (rnnkit's
public functions still fill it during the call: they have no cache-free mode).

Absent optional inputs (biases, peepholes, projection, lengths, initial states) are None;
the backward returns an empty ``[0]`` tensor for the gradient of an absent weight, and the
autograd formula turns that into None. The backward operators have no autograd formula of
their own: a second derivative (``create_graph=True``) is not supported.

Letters: T steps, B batch, I input size, H hidden size, P projection size (Hout = P or H),
G gates (RNN 1, GRU 3, LSTM 4).
"""

from typing import Optional

import torch
from torch import Tensor

import rnnkit
from rnnkit._types import GRUCache, LSTMCache, RNNCache

__all__ = ["rnn", "lstm", "gru"]


def _np(t: Optional[Tensor]):
    """The NumPy view of a CPU tensor's memory (made contiguous once), or None."""
    if t is None:
        return None
    return t.detach().contiguous().numpy()


def _t(a, like: Tensor) -> Tensor:
    """A NumPy result as a tensor without copying; None becomes an empty ``[0]`` tensor."""
    if a is None:
        return like.new_empty((0,))
    return torch.from_numpy(a)


def _empty(like: Tensor, *shape, dtype=None) -> Tensor:
    return like.new_empty(shape, dtype=dtype)


def _fake_forward(x, w_ih, w_hh, G, need_cache, clip, *, lstm=False, gru=False):
    """The outputs of a forward, allocated with their shapes (for fake tensors)."""
    T, B = x.shape[0], x.shape[1]
    GH = w_ih.shape[0]
    H, P = GH // G, w_hh.shape[1]
    outs = [_empty(x, T, B, P), _empty(x, B, P)] + ([_empty(x, B, H)] if lstm else [])
    if not need_cache:
        n_fields = 3 if (lstm or gru) else 2
        return tuple(
            outs + [_empty(x, 0) for _ in range(n_fields)] + [_empty(x, 0, dtype=torch.bool)]
        )
    outs.append(_empty(x, T + 1, B, P))  # h
    if lstm:
        outs.append(_empty(x, T + 1, B, H))  # c
    outs.append(_empty(x, T, B, GH))  # gates
    if gru:
        outs.append(_empty(x, T, B, H))  # hn
    mask = (T, B, GH) if clip is not None else (0,)
    return tuple(outs + [_empty(x, *mask, dtype=torch.bool)])


def _cache_outputs(cache, x, need_cache, *fields):
    """The cache fields as tensors (empty ones without ``need_cache``), the clip mask last."""
    if not need_cache:
        return [x.new_empty((0,)) for _ in fields] + [x.new_empty((0,), dtype=torch.bool)]
    mask = cache.clip_mask
    return [torch.from_numpy(getattr(cache, f)) for f in fields] + [
        x.new_empty((0,), dtype=torch.bool) if mask is None else torch.from_numpy(mask)
    ]


def _mask(t: Tensor):
    """The clip mask of a cache from its tensor (an empty tensor means no clip)."""
    return None if t.numel() == 0 and t.dim() == 1 else _np(t)


def _lengths(t: Optional[Tensor]):
    """Lengths as NumPy integers (rnnkit copies them to int64 itself)."""
    return _np(t)


# ------------------------------------------------------------------------------ RNN


@torch.library.custom_op("rnnkit::rnn_forward", mutates_args=())
def rnn_forward(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor],
    b_hh: Optional[Tensor],
    h0: Optional[Tensor],
    lengths: Optional[Tensor],
    reverse: bool,
    nonlinearity: str,
    clip: Optional[float],
    need_cache: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(y[T, B, H], h_n[B, H], h[T+1, B, H], gates[T, B, H], clip_mask)``."""
    out = rnnkit.rnn_forward(
        _np(x),
        _np(w_ih),
        _np(w_hh),
        _np(b_ih),
        _np(b_hh),
        _np(h0),
        nonlinearity=nonlinearity,
        clip=clip,
        lengths=_lengths(lengths),
        reverse=reverse,
    )
    return tuple(
        [torch.from_numpy(out.y), torch.from_numpy(out.h_n)]
        + _cache_outputs(out.cache, x, need_cache, "h", "gates")
    )


@rnn_forward.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, nonlinearity, clip, need_cache):
    return _fake_forward(x, w_ih, w_hh, 1, need_cache, clip)


@torch.library.custom_op("rnnkit::rnn_backward", mutates_args=())
def rnn_backward(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor],
    b_hh: Optional[Tensor],
    h: Tensor,
    gates: Tensor,
    clip_mask: Tensor,
    lengths: Optional[Tensor],
    reverse: bool,
    nonlinearity: str,
    clip: Optional[float],
    dy: Optional[Tensor],
    dh_n: Optional[Tensor],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)`` (an empty db_* without that bias)."""
    cache = RNNCache(
        _np(x),
        _np(w_ih),
        _np(w_hh),
        _np(b_ih),
        _np(b_hh),
        _np(h),
        _np(gates),
        _lengths(lengths),
        reverse,
        nonlinearity,
        clip,
        _mask(clip_mask),
    )
    g = rnnkit.rnn_backward(cache, _np(dy), _np(dh_n))
    return tuple(_t(a, x) for a in g[:6])  # the dln_* fields (options) come later


@rnn_backward.register_fake
def _(
    x, w_ih, w_hh, b_ih, b_hh, h, gates, clip_mask, lengths, reverse, nonlinearity, clip, dy, dh_n
):
    return _fake_grads(x, w_ih, w_hh, b_ih, b_hh, h)


def _fake_grads(x, w_ih, w_hh, b_ih, b_hh, h, *extra):
    """dx, dh0, [dc0,] dw_ih, dw_hh, db_ih, db_hh, then one gradient per ``extra`` weight."""
    T, B, I = x.shape
    bias = [torch.empty_like(b) if b is not None else _empty(x, 0) for b in (b_ih, b_hh)]
    head = [_empty(x, T, B, I), _empty(x, B, h.shape[2])]
    return tuple(
        head
        + [torch.empty_like(w_ih), torch.empty_like(w_hh)]
        + bias
        + [torch.empty_like(w) if w is not None else _empty(x, 0) for w in extra]
    )


# ------------------------------------------------------------------------------ LSTM


@torch.library.custom_op("rnnkit::lstm_forward", mutates_args=())
def lstm_forward(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor],
    b_hh: Optional[Tensor],
    h0: Optional[Tensor],
    c0: Optional[Tensor],
    w_peep: Optional[Tensor],
    w_proj: Optional[Tensor],
    lengths: Optional[Tensor],
    reverse: bool,
    clip: Optional[float],
    need_cache: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(y[T, B, Hout], h_n[B, Hout], c_n[B, H], h[T+1, B, Hout], c[T+1, B, H],
    gates[T, B, 4H], clip_mask)``."""
    out = rnnkit.lstm_forward(
        _np(x),
        _np(w_ih),
        _np(w_hh),
        _np(b_ih),
        _np(b_hh),
        _np(h0),
        _np(c0),
        w_peep=_np(w_peep),
        w_proj=_np(w_proj),
        clip=clip,
        lengths=_lengths(lengths),
        reverse=reverse,
    )
    return tuple(
        [torch.from_numpy(a) for a in (out.y, out.h_n, out.c_n)]
        + _cache_outputs(out.cache, x, need_cache, "h", "c", "gates")
    )


@lstm_forward.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep, w_proj, lengths, reverse, clip, need_cache):
    return _fake_forward(x, w_ih, w_hh, 4, need_cache, clip, lstm=True)


@torch.library.custom_op("rnnkit::lstm_backward", mutates_args=())
def lstm_backward(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor],
    b_hh: Optional[Tensor],
    w_peep: Optional[Tensor],
    w_proj: Optional[Tensor],
    h: Tensor,
    c: Tensor,
    gates: Tensor,
    clip_mask: Tensor,
    lengths: Optional[Tensor],
    reverse: bool,
    clip: Optional[float],
    dy: Optional[Tensor],
    dh_n: Optional[Tensor],
    dc_n: Optional[Tensor],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dw_proj)`` (empty when absent)."""
    cache = LSTMCache(
        _np(x),
        _np(w_ih),
        _np(w_hh),
        _np(b_ih),
        _np(b_hh),
        _np(w_peep),
        _np(w_proj),
        _np(h),
        _np(c),
        _np(gates),
        _lengths(lengths),
        reverse,
        clip,
        False,
        _mask(clip_mask),
    )
    g = rnnkit.lstm_backward(cache, _np(dy), _np(dh_n), _np(dc_n))
    return tuple(_t(a, x) for a in g[:9])  # the dln_* fields (options) come later


@lstm_backward.register_fake
def _(
    x,
    w_ih,
    w_hh,
    b_ih,
    b_hh,
    w_peep,
    w_proj,
    h,
    c,
    gates,
    clip_mask,
    lengths,
    reverse,
    clip,
    dy,
    dh_n,
    dc_n,
):
    g = _fake_grads(x, w_ih, w_hh, b_ih, b_hh, h, w_peep, w_proj)
    return g[:2] + (_empty(x, x.shape[1], c.shape[2]),) + g[2:]


# ------------------------------------------------------------------------------ GRU


@torch.library.custom_op("rnnkit::gru_forward", mutates_args=())
def gru_forward(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor],
    b_hh: Optional[Tensor],
    h0: Optional[Tensor],
    lengths: Optional[Tensor],
    reverse: bool,
    linear_before_reset: bool,
    clip: Optional[float],
    need_cache: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(y[T, B, H], h_n[B, H], h[T+1, B, H], gates[T, B, 3H], hn[T, B, H], clip_mask)``."""
    out = rnnkit.gru_forward(
        _np(x),
        _np(w_ih),
        _np(w_hh),
        _np(b_ih),
        _np(b_hh),
        _np(h0),
        linear_before_reset=linear_before_reset,
        clip=clip,
        lengths=_lengths(lengths),
        reverse=reverse,
    )
    return tuple(
        [torch.from_numpy(out.y), torch.from_numpy(out.h_n)]
        + _cache_outputs(out.cache, x, need_cache, "h", "gates", "hn")
    )


@gru_forward.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, linear_before_reset, clip, need_cache):
    return _fake_forward(x, w_ih, w_hh, 3, need_cache, clip, gru=True)


@torch.library.custom_op("rnnkit::gru_backward", mutates_args=())
def gru_backward(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor],
    b_hh: Optional[Tensor],
    h: Tensor,
    gates: Tensor,
    hn: Tensor,
    clip_mask: Tensor,
    lengths: Optional[Tensor],
    reverse: bool,
    linear_before_reset: bool,
    clip: Optional[float],
    dy: Optional[Tensor],
    dh_n: Optional[Tensor],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)`` (an empty db_* without that bias)."""
    cache = GRUCache(
        _np(x),
        _np(w_ih),
        _np(w_hh),
        _np(b_ih),
        _np(b_hh),
        _np(h),
        _np(gates),
        _np(hn),
        _lengths(lengths),
        reverse,
        linear_before_reset,
        clip,
        _mask(clip_mask),
    )
    g = rnnkit.gru_backward(cache, _np(dy), _np(dh_n))
    return tuple(_t(a, x) for a in g[:6])  # the dln_* fields (options) come later


@gru_backward.register_fake
def _(
    x,
    w_ih,
    w_hh,
    b_ih,
    b_hh,
    h,
    gates,
    hn,
    clip_mask,
    lengths,
    reverse,
    linear_before_reset,
    clip,
    dy,
    dh_n,
):
    return _fake_grads(x, w_ih, w_hh, b_ih, b_hh, h)


# ------------------------------------------------------------------------------ autograd


def _setup(ctx, inputs, output, n_state_out, saved_inputs, opts):
    """Saves the inputs the backward reads and the cache outputs; marks the cache outputs
    (everything after the ``n_state_out`` first) non-differentiable. A forward run without
    its cache (``need_cache=False``, the last input) cannot be differentiated: its backward
    raises (the wrappers never make such a call when autograd records)."""
    ctx.has_cache = inputs[-1]
    cache = output[n_state_out:]
    ctx.mark_non_differentiable(*cache)
    ctx.save_for_backward(*[inputs[i] for i in saved_inputs], *cache)
    ctx.n_saved_inputs = len(saved_inputs)
    ctx.opts = opts
    ctx.present = [t is not None for t in inputs]


def _rnn_setup(ctx, inputs, output):
    x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, nonlinearity, clip, need_cache = inputs
    _setup(ctx, inputs, output, 2, (0, 1, 2, 3, 4, 6), (reverse, nonlinearity, clip))


def _check_cache(ctx, op):
    if not ctx.has_cache:
        raise RuntimeError(
            f"rnnkit::{op}: backward through a call made with need_cache=False "
            f"(the forward kept no cache); call it with need_cache=True"
        )


def _rnn_grad(ctx, dy, dh_n, *_cache_grads):
    _check_cache(ctx, "rnn_forward")
    x, w_ih, w_hh, b_ih, b_hh, lengths, h, gates, mask = ctx.saved_tensors
    dx, dh0, dw_ih, dw_hh, db_ih, db_hh = torch.ops.rnnkit.rnn_backward(
        x, w_ih, w_hh, b_ih, b_hh, h, gates, mask, lengths, *ctx.opts, dy, dh_n
    )
    p = ctx.present
    return (
        dx,
        dw_ih,
        dw_hh,
        db_ih if p[3] else None,
        db_hh if p[4] else None,
        dh0 if p[5] else None,
        None,
        None,
        None,
        None,
        None,
    )


def _lstm_setup(ctx, inputs, output):
    (x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep, w_proj, lengths, reverse, clip, need_cache) = inputs
    _setup(ctx, inputs, output, 3, (0, 1, 2, 3, 4, 7, 8, 9), (reverse, clip))


def _lstm_grad(ctx, dy, dh_n, dc_n, *_cache_grads):
    _check_cache(ctx, "lstm_forward")
    x, w_ih, w_hh, b_ih, b_hh, w_peep, w_proj, lengths, h, c, gates, mask = ctx.saved_tensors
    (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep, dw_proj) = torch.ops.rnnkit.lstm_backward(
        x,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        w_peep,
        w_proj,
        h,
        c,
        gates,
        mask,
        lengths,
        *ctx.opts,
        dy,
        dh_n,
        dc_n,
    )
    p = ctx.present
    return (
        dx,
        dw_ih,
        dw_hh,
        db_ih if p[3] else None,
        db_hh if p[4] else None,
        dh0 if p[5] else None,
        dc0 if p[6] else None,
        dw_peep if p[7] else None,
        dw_proj if p[8] else None,
        None,
        None,
        None,
        None,
    )


def _gru_setup(ctx, inputs, output):
    (x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, linear_before_reset, clip, need_cache) = (
        inputs
    )
    _setup(ctx, inputs, output, 2, (0, 1, 2, 3, 4, 6), (reverse, linear_before_reset, clip))


def _gru_grad(ctx, dy, dh_n, *_cache_grads):
    _check_cache(ctx, "gru_forward")
    x, w_ih, w_hh, b_ih, b_hh, lengths, h, gates, hn, mask = ctx.saved_tensors
    dx, dh0, dw_ih, dw_hh, db_ih, db_hh = torch.ops.rnnkit.gru_backward(
        x, w_ih, w_hh, b_ih, b_hh, h, gates, hn, mask, lengths, *ctx.opts, dy, dh_n
    )
    p = ctx.present
    return (
        dx,
        dw_ih,
        dw_hh,
        db_ih if p[3] else None,
        db_hh if p[4] else None,
        dh0 if p[5] else None,
        None,
        None,
        None,
        None,
        None,
    )


rnn_forward.register_autograd(_rnn_grad, setup_context=_rnn_setup)
lstm_forward.register_autograd(_lstm_grad, setup_context=_lstm_setup)
gru_forward.register_autograd(_gru_grad, setup_context=_gru_setup)


# ------------------------------------------------------------------------------ wrappers


def _needs_grad(*tensors) -> bool:
    """Whether autograd will differentiate a call on these tensors (then keep the cache)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def rnn(
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
):
    """``(y, h_n)`` of one RNN layer direction, differentiable (``rnnkit::rnn_forward``)."""
    need = _needs_grad(x, w_ih, w_hh, b_ih, b_hh, h0)
    out = torch.ops.rnnkit.rnn_forward(
        x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, nonlinearity, clip, need
    )
    return out[0], out[1]


def lstm(
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
    lengths=None,
    reverse=False,
):
    """``(y, h_n, c_n)`` of one LSTM layer direction, differentiable (``rnnkit::lstm_forward``)."""
    need = _needs_grad(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep, w_proj)
    out = torch.ops.rnnkit.lstm_forward(
        x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep, w_proj, lengths, reverse, clip, need
    )
    return out[0], out[1], out[2]


def gru(
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
):
    """``(y, h_n)`` of one GRU layer direction, differentiable (``rnnkit::gru_forward``)."""
    need = _needs_grad(x, w_ih, w_hh, b_ih, b_hh, h0)
    out = torch.ops.rnnkit.gru_forward(
        x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, linear_before_reset, clip, need
    )
    return out[0], out[1]


# ------------------------------------------------------------------------------ cell options
#
# The options of API.md section 11 (layer norm, zoneout, recurrent dropout, resets) go through
# a second operator pair per cell, ``rnnkit::<cell>_forward_opts`` / ``<cell>_backward_opts``.
# Their forward returns only the outputs and states; their backward takes the forward's inputs
# again and recomputes the forward (one more forward's work) to get rnnkit's cache, so the
# cache, whose fields grow with the options, never crosses the operator boundary and the
# operators stay fixed. Calls without options keep using the operators above.

# Inputs of <cell>_forward_opts, in order: (name, schema type). "w" marks a differentiable
# input whose gradient the backward returns; the masks, resets and lengths have none.
_OPT_INPUTS = {
    "rnn": [
        "x",
        "w_ih",
        "w_hh",
        "b_ih?",
        "b_hh?",
        "h0?",
        "ln_ih?",
        "ln_hh?",
        "zoneout?",
        "recurrent_mask?",
        "resets?",
        "lengths?",
    ],
    "lstm": [
        "x",
        "w_ih",
        "w_hh",
        "b_ih?",
        "b_hh?",
        "h0?",
        "c0?",
        "w_peep?",
        "w_proj?",
        "ln_ih?",
        "ln_hh?",
        "ln_c?",
        "zoneout?",
        "zoneout_c?",
        "recurrent_mask?",
        "resets?",
        "lengths?",
    ],
    "gru": [
        "x",
        "w_ih",
        "w_hh",
        "b_ih?",
        "b_hh?",
        "h0?",
        "ln_ih?",
        "ln_hh?",
        "zoneout?",
        "recurrent_mask?",
        "resets?",
        "lengths?",
    ],
}
# The non-tensor arguments after the tensors: (name, schema type).
_OPT_FLAGS = {
    "rnn": [("reverse", "bool"), ("nonlinearity", "str"), ("clip", "float?")],
    "lstm": [("reverse", "bool"), ("clip", "float?")],
    "gru": [("reverse", "bool"), ("linear_before_reset", "bool"), ("clip", "float?")],
}
# The functional API's grads fields, by the input each one is the gradient of.
_GRAD_OF = {
    "dx": "x",
    "dh0": "h0",
    "dc0": "c0",
    "dw_ih": "w_ih",
    "dw_hh": "w_hh",
    "db_ih": "b_ih",
    "db_hh": "b_hh",
    "dw_peep": "w_peep",
    "dw_proj": "w_proj",
    "dln_ih": "ln_ih",
    "dln_hh": "ln_hh",
    "dln_c": "ln_c",
}
_POSITIONAL = {
    "rnn": ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0"),
    "lstm": ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0"),
    "gru": ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0"),
}
_GRAD_FIELDS = {
    "rnn": ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh", "dln_ih", "dln_hh"),
    "lstm": (
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
    ),
    "gru": ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh", "dln_ih", "dln_hh"),
}
_STATE_OUTS = {"rnn": ("y", "h_n"), "lstm": ("y", "h_n", "c_n"), "gru": ("y", "h_n")}


def _names(cell):
    return [n.rstrip("?") for n in _OPT_INPUTS[cell]]


def _schema_args(cell):
    tensors = [f"Tensor{'?' if n.endswith('?') else ''} {n.rstrip('?')}" for n in _OPT_INPUTS[cell]]
    return tensors + [f"{t} {n}" for n, t in _OPT_FLAGS[cell]]


def _call_forward(cell, args):
    """rnnkit.<cell>_forward on the NumPy views of the operator's arguments."""
    names = _names(cell) + [n for n, _ in _OPT_FLAGS[cell]]
    kw = dict(zip(names, args))
    arrays = {n: _np(kw[n]) for n in _names(cell)}
    pos = [arrays.pop(n) for n in _POSITIONAL[cell]]
    opts = {n: a for n, a in arrays.items() if a is not None}
    opts.update((n, kw[n]) for n, _ in _OPT_FLAGS[cell])
    if cell == "lstm":
        opts["w_peep"], opts["w_proj"] = arrays.get("w_peep"), arrays.get("w_proj")
    return getattr(rnnkit, f"{cell}_forward")(*pos, **opts)


def _fake_states(cell, x, w_ih, w_hh):
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    T, B, Hout, H = x.shape[0], x.shape[1], w_hh.shape[1], w_ih.shape[0] // G
    outs = [_empty(x, T, B, Hout), _empty(x, B, Hout)]
    return tuple(outs + ([_empty(x, B, H)] if cell == "lstm" else []))


def _define_opts(cell):
    """Registers rnnkit::<cell>_forward_opts and <cell>_backward_opts with their fake
    implementations and the forward's autograd formula; returns the forward operator."""
    outs = _STATE_OUTS[cell]
    grads = _GRAD_FIELDS[cell]
    args = _schema_args(cell)
    fwd_schema = f"({', '.join(args)}) -> ({', '.join('Tensor' for _ in outs)})"
    douts = [f"Tensor? d{o}" for o in outs]
    bwd_schema = f"({', '.join(args + douts)}) -> ({', '.join('Tensor' for _ in grads)})"
    n_in = len(args)

    def forward_impl(*a):
        out = _call_forward(cell, a)
        return tuple(torch.from_numpy(getattr(out, o)) for o in outs)

    def forward_fake(*a):
        return _fake_states(cell, a[0], a[1], a[2])

    def backward_impl(*a):
        out = _call_forward(cell, a[:n_in])
        d = [_np(t) for t in a[n_in:]]
        g = getattr(rnnkit, f"{cell}_backward")(out.cache, *d)
        return tuple(_t(getattr(g, f, None), a[0]) for f in grads)

    def backward_fake(*a):
        kw = dict(zip(_names(cell), a))
        res = []
        for f in grads:
            src = kw.get(_GRAD_OF[f])
            if f == "dh0":
                res.append(_empty(a[0], a[0].shape[1], a[2].shape[1]))
            elif f == "dc0":
                res.append(_empty(a[0], a[0].shape[1], a[1].shape[0] // 4))
            elif src is None:
                res.append(_empty(a[0], 0))
            else:
                res.append(torch.empty_like(src))
        return tuple(res)

    fwd = torch.library.custom_op(
        f"rnnkit::{cell}_forward_opts", forward_impl, mutates_args=(), schema=fwd_schema
    )
    fwd.register_fake(forward_fake)
    bwd = torch.library.custom_op(
        f"rnnkit::{cell}_backward_opts", backward_impl, mutates_args=(), schema=bwd_schema
    )
    bwd.register_fake(backward_fake)
    names = _names(cell)

    def setup(ctx, inputs, output):
        tensors = inputs[: len(names)]
        ctx.save_for_backward(*tensors)
        ctx.flags = inputs[len(names) :]
        ctx.present = [t is not None for t in tensors]

    def grad(ctx, *douts_):
        saved = ctx.saved_tensors
        g = getattr(torch.ops.rnnkit, f"{cell}_backward_opts")(*saved, *ctx.flags, *douts_)
        by_input = {_GRAD_OF[f]: t for f, t in zip(grads, g)}
        return tuple(
            by_input[n] if n in by_input and present else None
            for n, present in zip(names, ctx.present)
        ) + (None,) * len(ctx.flags)

    fwd.register_autograd(grad, setup_context=setup)
    return fwd


rnn_forward_opts = _define_opts("rnn")
lstm_forward_opts = _define_opts("lstm")
gru_forward_opts = _define_opts("gru")


def with_options(cell, x, weights, init, lengths, reverse, options, flags):
    """The states of one layer direction through ``rnnkit::<cell>_forward_opts``:
    ``weights``/``init``/``options`` map input names to tensors (absent: None or missing),
    ``flags`` the non-tensor arguments after ``reverse``."""
    kw = {**weights, **init, **options, "x": x, "lengths": lengths}
    tensors = [kw.get(n) for n in _names(cell)]
    op = getattr(torch.ops.rnnkit, f"{cell}_forward_opts")
    return op(*tensors, reverse, *flags)
