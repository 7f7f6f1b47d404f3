"""Elman RNN, the NumPy specification.

    a_t = x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh
    h_t = act(clip(a_t)),  act = tanh or relu,  clip to [-clip, clip] only when clip is set

Options (the functions guide): ``ln_ih``/``ln_hh`` normalise x_t w_ih^T and h w_hh^T before the
biases are added; ``recurrent_mask`` makes the product read h_{t-1} * mask; ``zoneout`` gives
h_t = z h_{t-1} + (1 - z) act(...); ``resets`` zero h_{t-1} before the step.

Letters: T steps, B batch, I input size, H hidden size (G = 1 gate).
"""

import numpy as np

from .._checks import check_backward, check_forward
from .._types import RNNCache, RNNGrads, RNNOutput
from ._common import (
    NormGrads,
    Norms,
    add,
    clip_preact,
    masked,
    relu,
    reset_rows,
    running,
    unclip,
    unzone,
    zeros_if_none,
    zone,
)


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
    """Runs an Elman RNN over a sequence.

    Arguments: ``x[T, B, I]``, ``w_ih[H, I]``, ``w_hh[H, H]``, ``b_ih[H]``, ``b_hh[H]``
    (absent: zero), ``h0[B, H]`` (absent: zeros); ``nonlinearity`` "tanh" or "relu";
    ``clip`` (ONNX: the pre-activation is clipped to [-clip, clip]; beyond PyTorch);
    ``lengths[B]`` (integers in [0, T]; absent: all T) and ``reverse`` (each sequence runs
    from its last valid step back to step 0; y stays aligned with x); the options
    ``ln_ih[2, H]``, ``ln_hh[2, H]``, ``zoneout[T, B, H]``, ``recurrent_mask[B, H]`` and
    ``resets`` (bool ``[T, B]``) of the functions guide.

    Returns ``RNNOutput(y[T, B, H], h_n[B, H], cache)``; ``y`` is 0 past each sequence's end
    and ``h_n`` is the state after its last valid step.
    """
    f = check_forward(
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
        ln_ih=ln_ih,
        ln_hh=ln_hh,
        zoneout=zoneout,
        recurrent_mask=recurrent_mask,
        resets=resets,
    )
    T, B, H, dt = f.T, f.B, f.H, f.dtype
    b_ih, b_hh = zeros_if_none(f.b_ih, H, dt), zeros_if_none(f.b_hh, H, dt)
    act = np.tanh if f.nonlinearity == "tanh" else relu

    y = np.zeros((T, B, H), dt)
    h = np.empty((T + 1, B, H), dt)  # h[k]: the state after k steps
    gates = np.zeros((T, B, H), dt)
    clip_mask = None if f.clip is None else np.zeros((T, B, H), bool)
    norms = Norms(f, T, B, H, H)
    h[0] = f.h0
    for k in range(T):
        b, t = running(k, f.lengths, T, B, f.reverse)
        h[k + 1] = h[k]  # ended sequences keep their state
        h_prev = reset_rows(h[k, b], f.resets, t, b)  # zero where resets[t, b]
        # a = LN_ih(x_t w_ih^T) + b_ih + LN_hh((h_prev * mask) w_hh^T) + b_hh
        ax = norms.apply(f.x[t, b] @ f.w_ih.T, "ih", k, b)
        ah = norms.apply(masked(h_prev, f.recurrent_mask, b) @ f.w_hh.T, "hh", k, b)
        a = (ax + b_ih) + (ah + b_hh)
        a, mask = clip_preact(a, f.clip)
        # h~_t = act(a), then zoneout: h_t = z h_prev + (1 - z) h~_t
        h_new = act(a)
        h_t = zone(f.zoneout, t, b, h_prev, h_new)
        h[k + 1, b] = h_t
        gates[k, b] = h_new
        if mask is not None:
            clip_mask[k, b] = mask
        y[t, b] = h_t
    cache = RNNCache(
        f.x,
        f.w_ih,
        f.w_hh,
        f.b_ih,
        f.b_hh,
        h,
        gates,
        f.lengths,
        f.reverse,
        f.nonlinearity,
        f.clip,
        clip_mask,
        f.ln_ih,
        f.ln_hh,
        f.zoneout,
        f.recurrent_mask,
        f.resets,
        **norms.fields(RNNCache),
    )
    return RNNOutput(y, h[T].copy(), cache)


def rnn_backward(cache, dy=None, dh_n=None):
    """Gradients of ``rnn_forward`` for a loss L with ``dy[T, B, H] = dL/dy`` and
    ``dh_n[B, H] = dL/dh_n`` (absent: zeros).

    Returns ``RNNGrads(dx[T, B, I], dh0[B, H], dw_ih[H, I], dw_hh[H, H], db_ih[H], db_hh[H],
    dln_ih[2, H], dln_hh[2, H])``; the gradient of an absent bias or layer norm is None.
    ``dx`` is 0 at the positions past a sequence's end, and ``dy`` there is ignored (y is
    constant 0 there).
    """
    bw = check_backward("rnn", cache, dy, dh_n)
    c = bw.cache
    T, B, dt = bw.T, bw.B, bw.dtype
    dx = np.zeros(c.x.shape, dt)
    dw_ih = np.zeros(c.w_ih.shape, dt)
    dw_hh = np.zeros(c.w_hh.shape, dt)
    db = np.zeros(bw.H, dt)  # the same for b_ih and b_hh
    norms = NormGrads(c)
    dh = bw.dh_n.copy()  # dL/dh[k+1]; ended sequences pass it through unchanged
    for k in reversed(range(T)):
        b, t = running(k, c.lengths, T, B, c.reverse)
        mask = None if c.clip_mask is None else c.clip_mask[k, b]
        h_t = c.gates[k, b]  # h~_t, before zoneout
        h_prev = reset_rows(c.h[k, b], c.resets, t, b)
        # dL/dh_t: from the next step and from y; zoneout splits it between h~_t and h_prev
        dh_t, dh_zone = unzone(c.zoneout, t, b, dh[b] + bw.dy[t, b])
        # h~_t = act(a): tanh'(a) = 1 - h_t^2, relu'(a) = [h_t > 0]; 0 where a was clipped
        if c.nonlinearity == "tanh":
            da = dh_t * (1 - h_t * h_t)
        else:
            da = dh_t * (h_t > 0)
        da = unclip(da, mask)
        # a = LN_ih(x_t w_ih^T) + b_ih + LN_hh((h_prev * mask) w_hh^T) + b_hh
        dax = norms.apply(da, "ih", k, b)
        dah = norms.apply(da, "hh", k, b)
        dx[t, b] = dax @ c.w_ih
        dw_ih += dax.T @ c.x[t, b]
        dw_hh += dah.T @ masked(h_prev, c.recurrent_mask, b)
        db += da.sum(axis=0)
        dh_prev = add(masked(dah @ c.w_hh, c.recurrent_mask, b), dh_zone)
        dh[b] = reset_rows(dh_prev, c.resets, t, b)  # no gradient crosses a reset
    return RNNGrads(
        dx,
        dh,
        dw_ih,
        dw_hh,
        None if c.b_ih is None else db.copy(),
        None if c.b_hh is None else db.copy(),
        **norms.grads,
    )
