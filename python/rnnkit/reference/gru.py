"""GRU, the NumPy specification (gate order r, z, n; PyTorch weight layout).

    r = σ(x w_ir^T + b_ir + h w_hr^T + b_hr)     z = σ(x w_iz^T + b_iz + h w_hz^T + b_hz)
    linear_before_reset=True:  n = tanh(x w_in^T + b_in + r * (h w_hn^T + b_hn))
    linear_before_reset=False: n = tanh(x w_in^T + b_in + (r * h) w_hn^T + b_hn)
    h_t = (1 - z) n + z h
Every pre-activation is clipped to [-clip, clip] before its activation when clip is set.
"""

import numpy as np

from .._checks import check_backward, check_forward
from .._types import GRUCache, GRUGrads, GRUOutput
from ._common import add_bias, clip_preact, running, sigmoid, unclip


def _split3(a, H):
    return a[:, :H], a[:, H:2 * H], a[:, 2 * H:]


def gru_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, linear_before_reset=True,
                clip=None, lengths=None, reverse=False):
    """Runs a GRU over ``x[T, B, I]``; returns ``GRUOutput(y[T,B,H], h_n[B,H], cache)``.

    ``w_ih[3H, I]``, ``w_hh[3H, H]``, ``b_*[3H]``, ``h0[B, H]`` (zeros by default).
    """
    f = check_forward("gru", x, w_ih, w_hh, b_ih, b_hh, h0, linear_before_reset=linear_before_reset,
                      clip=clip, lengths=lengths, reverse=reverse)
    T, B, H = f.T, f.B, f.H
    h = np.empty((T + 1, B, H), f.dtype)
    gates = np.zeros((T, B, 3 * H), f.dtype)
    hn_all = np.zeros((T, B, H), f.dtype)
    mask = np.zeros((T, B, 3 * H), bool) if f.clip is not None else None
    y = np.zeros((T, B, H), f.dtype)
    b_hh = f.b_hh if f.b_hh is not None else np.zeros(3 * H, f.dtype)
    h[0] = f.h0
    for k in range(T):
        b, t = running(k, f.lengths, T, B, f.reverse)
        h[k + 1] = h[k]  # sequences that have ended keep their state
        hp = h[k, b]
        m = np.zeros((len(b), 3 * H), bool)
        ax_r, ax_z, ax_n = _split3(add_bias(f.x[t, b] @ f.w_ih.T, f.b_ih), H)
        w_hr_z, w_hn = f.w_hh[:2 * H], f.w_hh[2 * H:]
        ah_r, ah_z = _split3(hp @ w_hr_z.T + b_hh[:2 * H], H)[:2]
        # r = σ(.), z = σ(.)
        r = sigmoid(clip_preact(ax_r + ah_r, f.clip, m[:, :H]))
        z = sigmoid(clip_preact(ax_z + ah_z, f.clip, m[:, H:2 * H]))
        if f.linear_before_reset:
            hn = hp @ w_hn.T + b_hh[2 * H:]  # h w_hn^T + b_hn
            a_n = ax_n + r * hn
        else:
            hn = (r * hp) @ w_hn.T + b_hh[2 * H:]  # (r h) w_hn^T + b_hn
            a_n = ax_n + hn
        n = np.tanh(clip_preact(a_n, f.clip, m[:, 2 * H:]))
        # h_t = (1 - z) n + z h
        h_t = (1 - z) * n + z * hp
        h[k + 1, b] = h_t
        gates[k, b] = np.concatenate([r, z, n], axis=1)
        hn_all[k, b] = hn
        if mask is not None:
            mask[k, b] = m
        y[t, b] = h_t
    cache = GRUCache(f.x, f.w_ih, f.w_hh, f.b_ih, f.b_hh, h, gates, hn_all, f.lengths, f.reverse,
                     f.linear_before_reset, f.clip, mask)
    return GRUOutput(y, h[T].copy(), cache)


def gru_backward(cache, dy=None, dh_n=None):
    """Gradients of ``gru_forward`` for ``dy`` and ``dh_n`` (zeros by default).

    Returns ``GRUGrads(dx, dh0, dw_ih, dw_hh, db_ih, db_hh)``; bias gradients are None when the
    forward had no such bias.
    """
    bw = check_backward("gru", cache, dy, dh_n)
    C = bw.cache
    T, B, H = bw.T, bw.B, bw.H
    dt = bw.dtype
    dx = np.zeros(C.x.shape, dt)
    dw_ih = np.zeros(C.w_ih.shape, dt)
    dw_hh = np.zeros(C.w_hh.shape, dt)
    db_ih = np.zeros(3 * H, dt)
    db_hh = np.zeros(3 * H, dt)
    w_hr_z, w_hn = C.w_hh[:2 * H], C.w_hh[2 * H:]
    dh = bw.dh_n.copy()
    for k in reversed(range(T)):
        b, t = running(k, C.lengths, T, B, C.reverse)
        m = None if C.clip_mask is None else C.clip_mask[k, b]
        r, z, n = _split3(C.gates[k, b], H)
        hp = C.h[k, b]
        hn = C.hn[k, b]
        # gradient reaching h_t: from later steps and from y
        dh_t = dh[b] + bw.dy[t, b]
        # h_t = (1 - z) n + z h
        da_n = unclip(dh_t * (1 - z) * (1 - n * n), C.clip, None if m is None else m[:, 2 * H:])
        da_z = unclip(dh_t * (hp - n) * z * (1 - z), C.clip, None if m is None else m[:, H:2 * H])
        dh_prev = dh_t * z
        if C.linear_before_reset:
            # a_n = x w_in^T + b_in + r (h w_hn^T + b_hn)
            da_r = unclip(da_n * hn * r * (1 - r), C.clip, None if m is None else m[:, :H])
            da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)  # w.r.t. h w_hh^T + b_hh
            dh_prev = dh_prev + da_h @ C.w_hh
            dw_hh += da_h.T @ hp
        else:
            # a_n = x w_in^T + b_in + (r h) w_hn^T + b_hn
            drh = da_n @ w_hn
            da_r = unclip(drh * hp * r * (1 - r), C.clip, None if m is None else m[:, :H])
            da_rz = np.concatenate([da_r, da_z], axis=1)
            dh_prev = dh_prev + drh * r + da_rz @ w_hr_z
            dw_hh[:2 * H] += da_rz.T @ hp
            dw_hh[2 * H:] += da_n.T @ (r * hp)
            da_h = np.concatenate([da_r, da_z, da_n], axis=1)
        da_x = np.concatenate([da_r, da_z, da_n], axis=1)  # w.r.t. x w_ih^T + b_ih
        dx[t, b] = da_x @ C.w_ih
        dw_ih += da_x.T @ C.x[t, b]
        db_ih += da_x.sum(axis=0)
        db_hh += da_h.sum(axis=0)
        dh[b] = dh_prev  # ended sequences pass their gradient through unchanged
    return GRUGrads(dx, dh, dw_ih, dw_hh, db_ih if C.b_ih is not None else None,
                    db_hh if C.b_hh is not None else None)
