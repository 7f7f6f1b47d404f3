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

Options (the functions guide): ``ln_ih``/``ln_hh`` normalise x_t w_ih^T and h w_hh^T before the
biases are added; ``ln_c`` makes m_t = o tanh(LN(c_t)) (c_t itself and the o peephole stay
raw); ``recurrent_mask`` makes the product read h_{t-1} * mask; ``zoneout``/``zoneout_c``
mix the new states c~_t, h~_t (computed as above) with the old ones: h_t = z h_{t-1} +
(1 - z) h~_t, c_t likewise; ``resets`` zero h_{t-1} and c_{t-1} before the step.

Letters: T steps, B batch, I input size, H hidden size, P projection size (H without one).
"""

import numpy as np

from .._checks import check_backward, check_forward
from .._types import LSTMCache, LSTMGrads, LSTMOutput
from ._common import (
    NormGrads,
    Norms,
    add,
    clip_preact,
    mask_cols,
    masked,
    reset_rows,
    running,
    sigmoid,
    unclip,
    unzone,
    zeros_if_none,
    zone,
)


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
    """Runs an LSTM over a sequence.

    Arguments: ``x[T, B, I]``, ``w_ih[4H, I]``, ``w_hh[4H, P]``, ``b_ih[4H]``, ``b_hh[4H]``
    (absent: zero), ``h0[B, P]``, ``c0[B, H]`` (absent: zeros), ``w_peep[3, H]`` (rows
    p_i, p_f, p_o; absent: none), ``w_proj[P, H]`` (absent: P = H, no projection), ``clip``,
    ``input_forget``, ``lengths[B]`` (integers in [0, T]) and ``reverse``; the options
    ``ln_ih[2, 4H]``, ``ln_hh[2, 4H]``, ``ln_c[2, H]``, ``zoneout[T, B, P]``,
    ``zoneout_c[T, B, H]``, ``recurrent_mask[B, P]`` and ``resets`` (bool ``[T, B]``): see
    the functions guide.

    Returns ``LSTMOutput(y[T, B, P], h_n[B, P], c_n[B, H], cache)``.
    """
    f = check_forward(
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
        ln_ih=ln_ih,
        ln_hh=ln_hh,
        ln_c=ln_c,
        zoneout=zoneout,
        zoneout_c=zoneout_c,
        recurrent_mask=recurrent_mask,
        resets=resets,
    )
    T, B, H, P, dt = f.T, f.B, f.H, f.P, f.dtype
    b_ih, b_hh = zeros_if_none(f.b_ih, 4 * H, dt), zeros_if_none(f.b_hh, 4 * H, dt)
    p_i, p_f, p_o = zeros_if_none(f.w_peep, (3, H), dt)

    y = np.zeros((T, B, P), dt)
    h = np.empty((T + 1, B, P), dt)  # h[k], c[k]: the state after k steps
    c = np.empty((T + 1, B, H), dt)
    gates = np.zeros((T, B, 4 * H), dt)
    clip_mask = None if f.clip is None else np.zeros((T, B, 4 * H), bool)
    norms = Norms(f, T, B, 4 * H, H)
    h[0], c[0] = f.h0, f.c0
    for k in range(T):
        b, t = running(k, f.lengths, T, B, f.reverse)
        h[k + 1], c[k + 1] = h[k], c[k]  # ended sequences keep their state
        # the state the step starts from: zero where resets[t, b]
        h_prev, c_prev = reset_rows(h[k, b], f.resets, t, b), reset_rows(c[k, b], f.resets, t, b)
        # a = LN_ih(x_t w_ih^T) + b_ih + LN_hh((h_prev * mask) w_hh^T) + b_hh
        ax = norms.apply(f.x[t, b] @ f.w_ih.T, "ih", k, b)
        ah = norms.apply(masked(h_prev, f.recurrent_mask, b) @ f.w_hh.T, "hh", k, b)
        a = (ax + b_ih) + (ah + b_hh)
        a_i, a_f, a_g, a_o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
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
        # c~_t = f c_prev + i g
        c_new = fg * c_prev + i * g
        # o = σ(a_o + p_o c~_t)
        pre_o, m_o = clip_preact(a_o + p_o * c_new, f.clip)
        o = sigmoid(pre_o)
        # m_t = o tanh(LN_c(c~_t))
        m_t = o * np.tanh(norms.apply(c_new, "c", k, b))
        # h~_t = m_t w_proj^T (with a projection), else m_t
        h_new = m_t @ f.w_proj.T if f.w_proj is not None else m_t
        # zoneout: h_t = z h_prev + (1 - z) h~_t, c_t = z_c c_prev + (1 - z_c) c~_t
        h_t = zone(f.zoneout, t, b, h_prev, h_new)
        c_t = zone(f.zoneout_c, t, b, c_prev, c_new)
        h[k + 1, b], c[k + 1, b] = h_t, c_t
        gates[k, b] = np.concatenate([i, fg, g, o], axis=1)
        if clip_mask is not None:
            clip_mask[k, b, :H] = m_i
            if m_f is not None:
                clip_mask[k, b, H : 2 * H] = m_f
            clip_mask[k, b, 2 * H : 3 * H] = m_g
            clip_mask[k, b, 3 * H :] = m_o
        y[t, b] = h_t
    cache = LSTMCache(
        f.x,
        f.w_ih,
        f.w_hh,
        f.b_ih,
        f.b_hh,
        f.w_peep,
        f.w_proj,
        h,
        c,
        gates,
        f.lengths,
        f.reverse,
        f.clip,
        f.input_forget,
        clip_mask,
        f.ln_ih,
        f.ln_hh,
        f.ln_c,
        f.zoneout,
        f.zoneout_c,
        f.recurrent_mask,
        f.resets,
        **norms.fields(LSTMCache),
    )
    return LSTMOutput(y, h[T].copy(), c[T].copy(), cache)


def lstm_backward(cache, dy=None, dh_n=None, dc_n=None):
    """Gradients of ``lstm_forward`` for a loss L with ``dy[T, B, P] = dL/dy``,
    ``dh_n[B, P] = dL/dh_n`` and ``dc_n[B, H] = dL/dc_n`` (absent: zeros).

    Returns ``LSTMGrads(dx[T, B, I], dh0[B, P], dc0[B, H], dw_ih[4H, I], dw_hh[4H, P],
    db_ih[4H], db_hh[4H], dw_peep[3, H], dw_proj[P, H], dln_ih[2, 4H], dln_hh[2, 4H],
    dln_c[2, H])``; the gradient of an absent bias, peephole, projection or layer norm is
    None. ``dx`` is 0 past each sequence's end.
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
    norms = NormGrads(C)
    dh = bw.dh_n.copy()  # dL/dh[k+1], dL/dc[k+1]; ended sequences pass them through unchanged
    dc = bw.dc_n.copy()
    for k in reversed(range(T)):
        b, t = running(k, C.lengths, T, B, C.reverse)
        mask = None if C.clip_mask is None else C.clip_mask[k, b]
        gates = C.gates[k, b]
        i, fg, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        h_prev = reset_rows(C.h[k, b], C.resets, t, b)
        c_prev = reset_rows(C.c[k, b], C.resets, t, b)
        # c~_t: c[k+1] itself without zoneout_c, else again f c_prev + i g
        c_t = C.c[k + 1, b] if C.zoneout_c is None else fg * c_prev + i * g
        # tanh(LN_c(c~_t)), from the normalised c~_t of the forward
        c_out = c_t if C.ln_c is None else C.c_hat[k, b] * C.ln_c[0] + C.ln_c[1]
        tanh_c = np.tanh(c_out)
        # dL/dh_t: from the next step and from y; zoneout splits it (and dL/dc_t) between the
        # new state and the previous one
        dh_t, dh_zone = unzone(C.zoneout, t, b, dh[b] + bw.dy[t, b])
        dc_t, dc_zone = unzone(C.zoneout_c, t, b, dc[b])
        # h~_t = m_t w_proj^T (with a projection), else m_t
        if C.w_proj is not None:
            dw_proj += dh_t.T @ (o * tanh_c)
            dm = dh_t @ C.w_proj
        else:
            dm = dh_t
        # m_t = o tanh(LN_c(c~_t))
        do = dm * tanh_c
        dc_t = dc_t + norms.apply(dm * o * (1 - tanh_c * tanh_c), "c", k, b)
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
        # a = LN_ih(x_t w_ih^T) + b_ih + LN_hh((h_prev * mask) w_hh^T) + b_hh
        da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
        dax = norms.apply(da, "ih", k, b)
        dah = norms.apply(da, "hh", k, b)
        dx[t, b] = dax @ C.w_ih
        dw_ih += dax.T @ C.x[t, b]
        dw_hh += dah.T @ masked(h_prev, C.recurrent_mask, b)
        db += da.sum(axis=0)
        dh_prev = add(masked(dah @ C.w_hh, C.recurrent_mask, b), dh_zone)
        # c_prev feeds c~_t (through f), the peepholes of i and f, and zoneout
        dc_prev = add(dc_t * fg + da_i * p_i + da_f * p_f, dc_zone)
        # no gradient crosses a reset
        dh[b], dc[b] = reset_rows(dh_prev, C.resets, t, b), reset_rows(dc_prev, C.resets, t, b)
    return LSTMGrads(
        dx,
        dh,
        dc,
        dw_ih,
        dw_hh,
        None if C.b_ih is None else db.copy(),
        None if C.b_hh is None else db.copy(),
        None if C.w_peep is None else dw_peep,
        None if C.w_proj is None else dw_proj,
        **norms.grads,
    )
