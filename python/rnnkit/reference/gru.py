"""GRU, the NumPy specification (gate order r, z, n; PyTorch weight layout).

    r = σ(x_t w_ir^T + b_ir + h w_hr^T + b_hr)
    z = σ(x_t w_iz^T + b_iz + h w_hz^T + b_hz)
    n = tanh(x_t w_in^T + b_in + r * hn),  hn = h w_hn^T + b_hn        (linear_before_reset)
    n = tanh(x_t w_in^T + b_in + hn),      hn = (r * h) w_hn^T + b_hn  (otherwise: Cho et al.)
    h_t = (1 - z) n + z h                  (h = h_{t-1})

With clip set, each of the three pre-activations (the whole argument of σ or tanh) is
clipped to [-clip, clip]. The cache keeps ``hn``, the hidden part of n's pre-activation.

Options (the functions guide): ``ln_ih``/``ln_hh`` normalise x_t w_ih^T and h w_hh^T before the
biases are added (the textbook form normalises h w_h{r,z}^T with ln_hh[:, 0:2H] and, apart,
(r*h) w_hn^T with ln_hh[:, 2H:3H]); ``recurrent_mask`` makes the products with w_hh read
h * mask (the textbook form: r * (h * mask)), while z h reads h; ``zoneout`` gives h_t =
z' h + (1 - z') h~_t; ``resets`` zero h before the step.

Letters: T steps, B batch, I input size, H hidden size (G = 3 gates).
"""

import numpy as np

from .._checks import check_backward, check_forward
from .._types import GRUCache, GRUGrads, GRUOutput
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
    """Runs a GRU over a sequence.

    Arguments: ``x[T, B, I]``, ``w_ih[3H, I]``, ``w_hh[3H, H]``, ``b_ih[3H]``, ``b_hh[3H]``
    (absent: zero), ``h0[B, H]`` (absent: zeros); ``linear_before_reset`` (True: PyTorch,
    cuDNN; False: Cho et al., ONNX's default), ``clip``, ``lengths[B]`` (integers in [0, T])
    and ``reverse``: see the functions guide; the options ``ln_ih[2, 3H]``, ``ln_hh[2, 3H]``,
    ``zoneout[T, B, H]``, ``recurrent_mask[B, H]`` and ``resets`` (bool ``[T, B]``) of
    the functions guide.

    Returns ``GRUOutput(y[T, B, H], h_n[B, H], cache)``.
    """
    f = check_forward(
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
        ln_ih=ln_ih,
        ln_hh=ln_hh,
        zoneout=zoneout,
        recurrent_mask=recurrent_mask,
        resets=resets,
    )
    T, B, H, dt = f.T, f.B, f.H, f.dtype
    b_ih, b_hh = zeros_if_none(f.b_ih, 3 * H, dt), zeros_if_none(f.b_hh, 3 * H, dt)
    w_hrz, w_hn = f.w_hh[: 2 * H], f.w_hh[2 * H :]  # [2H, H] rows of r and z; [H, H] rows of n
    b_hrz, b_hn = b_hh[: 2 * H], b_hh[2 * H :]

    y = np.zeros((T, B, H), dt)
    h = np.empty((T + 1, B, H), dt)  # h[k]: the state after k steps
    gates = np.zeros((T, B, 3 * H), dt)
    hn_all = np.zeros((T, B, H), dt)
    clip_mask = None if f.clip is None else np.zeros((T, B, 3 * H), bool)
    norms = Norms(f, T, B, 3 * H, H)
    h[0] = f.h0
    for k in range(T):
        b, t = running(k, f.lengths, T, B, f.reverse)
        h[k + 1] = h[k]  # ended sequences keep their state
        h_prev = reset_rows(h[k, b], f.resets, t, b)  # zero where resets[t, b]
        h_rec = masked(h_prev, f.recurrent_mask, b)  # what the products with w_hh read
        # LN_ih(x_t w_ih^T) + b_ih, all three gates
        ax = norms.apply(f.x[t, b] @ f.w_ih.T, "ih", k, b) + b_ih
        if f.linear_before_reset:
            # LN_hh(h w_hh^T) + b_hh, all three gates (two products: the rounding of the
            # form without options); hn = its n part
            ah = np.concatenate([h_rec @ w_hrz.T, h_rec @ w_hn.T], axis=1)
            ah = norms.apply(ah, "hh", k, b) + b_hh
        else:
            # LN_hh(h w_h{r,z}^T) + b_h{r,z}, normalised over its 2H values
            ah = norms.apply(h_rec @ w_hrz.T, "hh", k, b, slice(0, 2 * H)) + b_hrz
        # r = σ(x w_ir^T + b_ir + h w_hr^T + b_hr)
        pre_r, m_r = clip_preact(ax[:, :H] + ah[:, :H], f.clip)
        r = sigmoid(pre_r)
        # z = σ(x w_iz^T + b_iz + h w_hz^T + b_hz)
        pre_z, m_z = clip_preact(ax[:, H : 2 * H] + ah[:, H : 2 * H], f.clip)
        z = sigmoid(pre_z)
        if f.linear_before_reset:
            # hn = LN_hh(h w_hh^T)_n + b_hn;  n = tanh(x w_in^T + b_in + r hn)
            hn = ah[:, 2 * H :]
            pre_n, m_n = clip_preact(ax[:, 2 * H :] + r * hn, f.clip)
        else:
            # hn = LN_hh((r h) w_hn^T) + b_hn;  n = tanh(x w_in^T + b_in + hn)
            hn = norms.apply((r * h_rec) @ w_hn.T, "hn", k, b, slice(2 * H, 3 * H)) + b_hn
            pre_n, m_n = clip_preact(ax[:, 2 * H :] + hn, f.clip)
        n = np.tanh(pre_n)
        # h~_t = (1 - z) n + z h, then zoneout: h_t = z' h + (1 - z') h~_t
        h_t = zone(f.zoneout, t, b, h_prev, (1 - z) * n + z * h_prev)
        h[k + 1, b] = h_t
        gates[k, b] = np.concatenate([r, z, n], axis=1)
        hn_all[k, b] = hn
        if clip_mask is not None:
            clip_mask[k, b] = np.concatenate([m_r, m_z, m_n], axis=1)
        y[t, b] = h_t
    cache = GRUCache(
        f.x,
        f.w_ih,
        f.w_hh,
        f.b_ih,
        f.b_hh,
        h,
        gates,
        hn_all,
        f.lengths,
        f.reverse,
        f.linear_before_reset,
        f.clip,
        clip_mask,
        f.ln_ih,
        f.ln_hh,
        f.zoneout,
        f.recurrent_mask,
        f.resets,
        **norms.fields(GRUCache),
    )
    return GRUOutput(y, h[T].copy(), cache)


def gru_backward(cache, dy=None, dh_n=None):
    """Gradients of ``gru_forward`` for a loss L with ``dy[T, B, H] = dL/dy`` and
    ``dh_n[B, H] = dL/dh_n`` (absent: zeros).

    Returns ``GRUGrads(dx[T, B, I], dh0[B, H], dw_ih[3H, I], dw_hh[3H, H], db_ih[3H],
    db_hh[3H], dln_ih[2, 3H], dln_hh[2, 3H])``; the gradient of an absent bias or layer norm
    is None. ``dx`` is 0
    past each sequence's end.
    """
    bw = check_backward("gru", cache, dy, dh_n)
    C = bw.cache
    T, B, H, dt = bw.T, bw.B, bw.H, bw.dtype
    w_hrz, w_hn = C.w_hh[: 2 * H], C.w_hh[2 * H :]
    dx = np.zeros(C.x.shape, dt)
    dw_ih = np.zeros(C.w_ih.shape, dt)
    dw_hh = np.zeros(C.w_hh.shape, dt)
    db_ih = np.zeros(3 * H, dt)
    db_hh = np.zeros(3 * H, dt)
    norms = NormGrads(C)
    rmask = C.recurrent_mask
    dh = bw.dh_n.copy()  # dL/dh[k+1]; ended sequences pass it through unchanged
    for k in reversed(range(T)):
        b, t = running(k, C.lengths, T, B, C.reverse)
        mask = None if C.clip_mask is None else C.clip_mask[k, b]
        gates = C.gates[k, b]
        r, z, n = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
        h_prev, hn = reset_rows(C.h[k, b], C.resets, t, b), C.hn[k, b]
        h_rec = masked(h_prev, rmask, b)
        # dL/dh_t: from the next step and from y; zoneout splits it between h~_t and h
        dh_t, dh_zone = unzone(C.zoneout, t, b, dh[b] + bw.dy[t, b])
        # h~_t = (1 - z) n + z h
        dn = dh_t * (1 - z)
        dz = dh_t * (h_prev - n)
        dh_prev = dh_t * z
        # n = tanh(pre_n), z = σ(pre_z)
        da_n = unclip(dn * (1 - n * n), mask_cols(mask, 2 * H, 3 * H))
        da_z = unclip(dz * z * (1 - z), mask_cols(mask, H, 2 * H))
        if C.linear_before_reset:
            # pre_n = x w_in^T + b_in + r hn,  hn = h w_hn^T + b_hn
            dr = da_n * hn
            dhn = da_n * r
            da_r = unclip(dr * r * (1 - r), mask_cols(mask, 0, H))
            dah = np.concatenate([da_r, da_z, dhn], axis=1)  # dL/d(LN_hh(h w_hh^T) + b_hh)
            dah_in = norms.apply(dah, "hh", k, b)  # dL/d(h w_hh^T)
            dh_prev = dh_prev + masked(dah_in @ C.w_hh, rmask, b)
            dw_hh += dah_in.T @ h_rec
        else:
            # pre_n = x w_in^T + b_in + hn,  hn = LN_hh((r h) w_hn^T) + b_hn
            dhn_in = norms.apply(da_n, "hn", k, b, slice(2 * H, 3 * H))  # dL/d((r h) w_hn^T)
            drh = dhn_in @ w_hn  # dL/d(r h)
            dr = drh * h_rec
            da_r = unclip(dr * r * (1 - r), mask_cols(mask, 0, H))
            darz = np.concatenate([da_r, da_z], axis=1)  # dL/d(LN_hh(h w_h{r,z}^T) + b_h{r,z})
            darz_in = norms.apply(darz, "hh", k, b, slice(0, 2 * H))  # dL/d(h w_h{r,z}^T)
            dh_prev = dh_prev + masked(drh * r + darz_in @ w_hrz, rmask, b)
            dw_hh[: 2 * H] += darz_in.T @ h_rec
            dw_hh[2 * H :] += dhn_in.T @ (r * h_rec)
            dah = np.concatenate([da_r, da_z, da_n], axis=1)  # dL/db_hh
        # LN_ih(x w_ih^T) + b_ih feeds r, z and n
        dax = np.concatenate([da_r, da_z, da_n], axis=1)
        dax_in = norms.apply(dax, "ih", k, b)
        dx[t, b] = dax_in @ C.w_ih
        dw_ih += dax_in.T @ C.x[t, b]
        db_ih += dax.sum(axis=0)
        db_hh += dah.sum(axis=0)
        dh[b] = reset_rows(add(dh_prev, dh_zone), C.resets, t, b)  # none crosses a reset
    return GRUGrads(
        dx,
        dh,
        dw_ih,
        dw_hh,
        None if C.b_ih is None else db_ih,
        None if C.b_hh is None else db_hh,
        **norms.grads,
    )
