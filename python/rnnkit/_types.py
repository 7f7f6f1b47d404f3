"""Result, gradient and cache types shared by both backends.

Both `rnnkit` (native) and `rnnkit.reference` (NumPy) return exactly these classes, so a cache
made by one backend is accepted by the other's backward.

Letters: T steps, B batch, I input size, H hidden size, P projection size (P = H without a
projection), G gates (RNN 1, MGU 2, GRU 3, LSTM 4).

Cache conventions (identical in both backends):
- States and gates are in *processing order*: ``h[k]`` is the state after ``k`` steps,
  ``h[0] = h0``. With ``reverse=True`` step ``k`` of sequence ``b`` reads
  ``x[lengths[b] - 1 - k, b]``.
- Past a sequence's end (``k >= lengths[b]``) its state is frozen (``h[k+1, b] = h[k, b]``)
  and its per-step fields (``gates``, ``hn``, ``clip_mask``) are zero / False.
- ``gates[T, B, G*H]`` holds post-activation gate values in gate order
  (RNN: the activation itself; LSTM: i, f, g, o; GRU: r, z, n; MGU: f, n).
- ``clip_mask[T, B, G*H]`` (bool) is True where a gate pre-activation lay outside
  ``[-clip, clip]`` and was clipped (its gradient is zero there); ``None`` without ``clip``.
- ``lengths`` is an int64 array ``[B]`` or ``None`` (meaning all sequences have length T).
- Input arrays (``x`` and the weights) are stored as given after validation (C-contiguous,
  one dtype); backward never writes to any cache field.

The options of the functions guide (RNN, LSTM, GRU) add fields at the end of the cache, None
when the option is off: the parameters and masks as given (``ln_ih``, ``ln_hh``, ``ln_c``,
``zoneout``, ``zoneout_c``, ``recurrent_mask``, ``resets``) and what the backward of layer
normalisation reads:
- ``ih_hat[T, B, G*H]``: the normalised ``x_t w_ih^T`` (with ``ln_ih``);
- ``hh_hat[T, B, G*H]``: the normalised ``h w_hh^T`` (with ``ln_hh``; the GRU with
  ``linear_before_reset=False`` keeps the normalised ``h w_h{r,z}^T`` in columns ``[0:2H]``
  and the normalised ``(r*h) w_hn^T`` in ``[2H:3H]``);
- ``c_hat[T, B, H]``: the normalised ``c~_t`` (LSTM with ``ln_c``);
- ``ln_rstd[T, B, 4]``: ``1/sqrt(var + 1e-5)`` of each normalisation, columns: ih, hh (the GRU
  textbook form: its r,z part), the GRU textbook form's n part, c; 0 where unused (with any
  ``ln_*``).
Like the gates, they are zero past a sequence's end.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

Array = np.ndarray


class RNNCache(NamedTuple):
    x: Array  # [T, B, I]
    w_ih: Array  # [H, I]
    w_hh: Array  # [H, H]
    b_ih: Optional[Array]  # [H] or None
    b_hh: Optional[Array]  # [H] or None
    h: Array  # [T+1, B, H], h[0] = h0
    gates: Array  # [T, B, H], post-activation
    lengths: Optional[Array]  # int64 [B] or None
    reverse: bool
    nonlinearity: str  # "tanh" or "relu"
    clip: Optional[float]
    clip_mask: Optional[Array]  # bool [T, B, H] or None
    ln_ih: Optional[Array] = None  # [2, G*H] rows gain, bias
    ln_hh: Optional[Array] = None  # [2, G*H]
    zoneout: Optional[Array] = None  # [T, B, H] in [0, 1]
    recurrent_mask: Optional[Array] = None  # [B, H]
    resets: Optional[Array] = None  # bool [T, B]
    ih_hat: Optional[Array] = None  # [T, B, G*H]
    hh_hat: Optional[Array] = None  # [T, B, G*H]
    ln_rstd: Optional[Array] = None  # [T, B, 4]


class RNNOutput(NamedTuple):
    y: Array  # [T, B, H]
    h_n: Array  # [B, H]
    cache: RNNCache


class RNNGrads(NamedTuple):
    dx: Array
    dh0: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Optional[Array]
    db_hh: Optional[Array]
    dln_ih: Optional[Array] = None
    dln_hh: Optional[Array] = None


class LSTMCache(NamedTuple):
    x: Array  # [T, B, I]
    w_ih: Array  # [4H, I]
    w_hh: Array  # [4H, P]
    b_ih: Optional[Array]  # [4H]
    b_hh: Optional[Array]  # [4H]
    w_peep: Optional[Array]  # [3, H] rows p_i, p_f, p_o
    w_proj: Optional[Array]  # [P, H]
    h: Array  # [T+1, B, P], h[0] = h0
    c: Array  # [T+1, B, H], c[0] = c0
    gates: Array  # [T, B, 4H]: i, f, g, o post-activation
    lengths: Optional[Array]
    reverse: bool
    clip: Optional[float]
    input_forget: bool
    clip_mask: Optional[Array]  # bool [T, B, 4H] or None
    ln_ih: Optional[Array] = None  # [2, 4H] rows gain, bias
    ln_hh: Optional[Array] = None  # [2, 4H]
    ln_c: Optional[Array] = None  # [2, H]
    zoneout: Optional[Array] = None  # [T, B, P] in [0, 1]
    zoneout_c: Optional[Array] = None  # [T, B, H] in [0, 1]
    recurrent_mask: Optional[Array] = None  # [B, P]
    resets: Optional[Array] = None  # bool [T, B]
    ih_hat: Optional[Array] = None  # [T, B, 4H]
    hh_hat: Optional[Array] = None  # [T, B, 4H]
    c_hat: Optional[Array] = None  # [T, B, H]
    ln_rstd: Optional[Array] = None  # [T, B, 4]


class LSTMOutput(NamedTuple):
    y: Array  # [T, B, P]
    h_n: Array  # [B, P]
    c_n: Array  # [B, H]
    cache: LSTMCache


class LSTMGrads(NamedTuple):
    dx: Array
    dh0: Array
    dc0: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Optional[Array]
    db_hh: Optional[Array]
    dw_peep: Optional[Array]
    dw_proj: Optional[Array]
    dln_ih: Optional[Array] = None
    dln_hh: Optional[Array] = None
    dln_c: Optional[Array] = None


class GRUCache(NamedTuple):
    x: Array  # [T, B, I]
    w_ih: Array  # [3H, I]
    w_hh: Array  # [3H, H]
    b_ih: Optional[Array]
    b_hh: Optional[Array]
    h: Array  # [T+1, B, H]
    gates: Array  # [T, B, 3H]: r, z, n post-activation
    hn: Array  # [T, B, H]: hidden part of n's pre-activation, before the reset gate is applied
    #            when linear_before_reset (h w_hn^T + b_hn), after it otherwise
    #            ((r*h) w_hn^T + b_hn)
    lengths: Optional[Array]
    reverse: bool
    linear_before_reset: bool
    clip: Optional[float]
    clip_mask: Optional[Array]  # bool [T, B, 3H] or None
    ln_ih: Optional[Array] = None  # [2, G*H] rows gain, bias
    ln_hh: Optional[Array] = None  # [2, G*H]
    zoneout: Optional[Array] = None  # [T, B, H] in [0, 1]
    recurrent_mask: Optional[Array] = None  # [B, H]
    resets: Optional[Array] = None  # bool [T, B]
    ih_hat: Optional[Array] = None  # [T, B, G*H]
    hh_hat: Optional[Array] = None  # [T, B, G*H]
    ln_rstd: Optional[Array] = None  # [T, B, 4]


class GRUOutput(NamedTuple):
    y: Array  # [T, B, H]
    h_n: Array  # [B, H]
    cache: GRUCache


class GRUGrads(NamedTuple):
    dx: Array
    dh0: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Optional[Array]
    db_hh: Optional[Array]
    dln_ih: Optional[Array] = None
    dln_hh: Optional[Array] = None


class MGUCache(NamedTuple):
    x: Array  # [T, B, I]
    w_ih: Array  # [2H, I]
    w_hh: Array  # [2H, H]
    b_ih: Optional[Array]  # [2H] or None
    b_hh: Optional[Array]  # [2H] or None
    h: Array  # [T+1, B, H], h[0] = h0
    gates: Array  # [T, B, 2H]: f, n post-activation
    lengths: Optional[Array]
    reverse: bool
    clip: Optional[float]
    clip_mask: Optional[Array]  # bool [T, B, 2H] or None


class MGUOutput(NamedTuple):
    y: Array  # [T, B, H]
    h_n: Array  # [B, H]
    cache: MGUCache


class MGUGrads(NamedTuple):
    dx: Array
    dh0: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Optional[Array]
    db_hh: Optional[Array]
