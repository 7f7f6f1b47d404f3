"""Argument validation shared by both backends, so their errors are identical.

Every check names the argument, what was expected and what was given. After validation all
arrays are C-contiguous NumPy arrays of x's dtype (a non-contiguous input is copied once; an
array of another dtype is a TypeError, never a silent cast), absent initial states are
materialised as zeros, and `lengths` is an int64 copy. The native kernels trust exactly what
these functions return.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple, Optional

import numpy as np

from ._types import GRUCache, LSTMCache, RNNCache

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
CACHES = {"rnn": RNNCache, "lstm": LSTMCache, "gru": GRUCache}
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Forward(NamedTuple):
    T: int
    B: int
    I: int  # noqa: E741
    H: int
    P: int
    G: int
    dtype: np.dtype
    x: np.ndarray
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: Optional[np.ndarray]
    b_hh: Optional[np.ndarray]
    h0: np.ndarray
    c0: Optional[np.ndarray]
    w_peep: Optional[np.ndarray]
    w_proj: Optional[np.ndarray]
    clip: Optional[float]
    input_forget: bool
    nonlinearity: str
    linear_before_reset: bool
    lengths: Optional[np.ndarray]
    reverse: bool


class Backward(NamedTuple):
    T: int
    B: int
    I: int  # noqa: E741
    H: int
    P: int
    G: int
    dtype: np.dtype
    cache: tuple  # the cache with validated (C-contiguous) arrays
    dy: np.ndarray
    dh_n: np.ndarray
    dc_n: Optional[np.ndarray]


def _shape(shape):
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def as_array(name, a):
    """np.asarray for array-likes (lists), keeping the dtype; objects that are not arrays fail."""
    if isinstance(a, np.ndarray):
        return a
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array, got {type(a).__name__} ({e})") from None
    if arr.dtype == object:
        raise TypeError(f"{name}: expected a numeric array, got {type(a).__name__}")
    return arr


def check_x(x, name="x"):
    x = as_array(name, x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D array [T, B, I], got shape {_shape(x.shape)}")
    return np.ascontiguousarray(x)


def check_array(name, a, dtype, shape, optional=False):
    """An array of exactly this dtype and shape (C-contiguous on return), or None if allowed."""
    if a is None:
        if optional:
            return None
        raise ValueError(f"{name}: expected an array of shape {_shape(shape)}, got None")
    a = as_array(name, a)
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (the dtype of x), got {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {_shape(shape)}, got {_shape(a.shape)}")
    return np.ascontiguousarray(a)


def check_clip(clip, name="clip"):
    if clip is None:
        return None
    if isinstance(clip, (bool, np.bool_)) or not isinstance(clip, numbers.Real):
        raise TypeError(f"{name}: expected a number or None, got {type(clip).__name__}")
    clip = float(clip)
    if not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {clip}")
    return clip


def check_lengths(lengths, T, B, name="lengths"):
    if lengths is None:
        return None
    lengths = as_array(name, lengths)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(f"{name}: expected shape {_shape((B,))}, got {_shape(lengths.shape)}")
    if B:
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 0 or hi > T:
            bad = lo if lo < 0 else hi
            at = int(np.flatnonzero(lengths == bad)[0])
            raise ValueError(f"{name}: expected values in [0, T={T}], got {bad} at index {at}")
    return np.array(lengths, dtype=np.int64)  # a copy: the caller may change theirs


def check_flag(name, v):
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, numbers.Integral) and v in (0, 1)):
        return bool(v)
    raise TypeError(f"{name}: expected a bool, got {v!r}")


def _weights(cell, x, w_ih, w_hh, b_ih, b_hh, w_peep, w_proj, prefix=""):
    """Sizes from x, w_hh (and w_proj), then every weight checked against them."""
    G = GATES[cell]
    dtype = x.dtype
    T, B, I = x.shape
    n = prefix + "w_hh"
    w_hh = as_array(n, w_hh)
    if w_hh.dtype != dtype:
        raise TypeError(f"{n}: expected dtype {dtype} (the dtype of x), got {w_hh.dtype}")
    if w_hh.ndim != 2 or w_hh.shape[0] % G:
        raise ValueError(f"{n}: expected a 2-D array [{G}*H, H] (first dimension divisible by "
                         f"{G}), got shape {_shape(w_hh.shape)}")
    H = w_hh.shape[0] // G
    P = H
    if w_proj is not None:
        n = prefix + "w_proj"
        w_proj = as_array(n, w_proj)
        if w_proj.ndim != 2:
            raise ValueError(f"{n}: expected a 2-D array [P, H], got shape {_shape(w_proj.shape)}")
        P = w_proj.shape[0]
        w_proj = check_array(n, w_proj, dtype, (P, H))
    w_hh = check_array(prefix + "w_hh", w_hh, dtype, (G * H, P))
    w_ih = check_array(prefix + "w_ih", w_ih, dtype, (G * H, I))
    b_ih = check_array(prefix + "b_ih", b_ih, dtype, (G * H,), optional=True)
    b_hh = check_array(prefix + "b_hh", b_hh, dtype, (G * H,), optional=True)
    w_peep = check_array(prefix + "w_peep", w_peep, dtype, (3, H), optional=True)
    return (T, B, I, H, P, G), w_ih, w_hh, b_ih, b_hh, w_peep, w_proj


def check_forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0=None, *, w_peep=None, w_proj=None,
                  clip=None, input_forget=False, nonlinearity="tanh", linear_before_reset=True,
                  lengths=None, reverse=False) -> Forward:
    x = check_x(x)
    dims, w_ih, w_hh, b_ih, b_hh, w_peep, w_proj = _weights(cell, x, w_ih, w_hh, b_ih, b_hh,
                                                            w_peep, w_proj)
    T, B, I, H, P, G = dims
    dtype = x.dtype
    h0 = (np.zeros((B, P), dtype) if h0 is None else check_array("h0", h0, dtype, (B, P)))
    if cell == "lstm":
        c0 = np.zeros((B, H), dtype) if c0 is None else check_array("c0", c0, dtype, (B, H))
    if cell == "rnn" and nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    return Forward(T, B, I, H, P, G, dtype, x, w_ih, w_hh, b_ih, b_hh, h0,
                   c0 if cell == "lstm" else None, w_peep, w_proj, check_clip(clip),
                   check_flag("input_forget", input_forget), nonlinearity,
                   check_flag("linear_before_reset", linear_before_reset),
                   check_lengths(lengths, T, B), check_flag("reverse", reverse))


def check_backward(cell, cache, dy, dh_n, dc_n=None) -> Backward:
    cls = CACHES[cell]
    if not isinstance(cache, cls):
        raise TypeError(f"cache: expected an {cls.__name__} (from {cell}_forward), "
                        f"got {type(cache).__name__}")
    x = check_x(cache.x, "cache.x")
    dims, w_ih, w_hh, b_ih, b_hh, w_peep, w_proj = _weights(
        cell, x, cache.w_ih, cache.w_hh, cache.b_ih, cache.b_hh,
        getattr(cache, "w_peep", None), getattr(cache, "w_proj", None), prefix="cache.")
    T, B, I, H, P, G = dims
    dtype = x.dtype
    fields = dict(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    fields["h"] = check_array("cache.h", cache.h, dtype, (T + 1, B, P))
    fields["gates"] = check_array("cache.gates", cache.gates, dtype, (T, B, G * H))
    fields["lengths"] = check_lengths(cache.lengths, T, B, "cache.lengths")
    fields["reverse"] = check_flag("cache.reverse", cache.reverse)
    clip = check_clip(cache.clip, "cache.clip")
    fields["clip"] = clip
    if clip is not None:
        mask = as_array("cache.clip_mask", cache.clip_mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"cache.clip_mask: expected dtype bool, got {mask.dtype}")
        if mask.shape != (T, B, G * H):
            raise ValueError(f"cache.clip_mask: expected shape {_shape((T, B, G * H))}, "
                             f"got {_shape(mask.shape)}")
        fields["clip_mask"] = np.ascontiguousarray(mask)
    else:
        fields["clip_mask"] = None
    if cell == "lstm":
        fields.update(w_peep=w_peep, w_proj=w_proj,
                      c=check_array("cache.c", cache.c, dtype, (T + 1, B, H)),
                      input_forget=check_flag("cache.input_forget", cache.input_forget))
    if cell == "gru":
        fields.update(hn=check_array("cache.hn", cache.hn, dtype, (T, B, H)),
                      linear_before_reset=check_flag("cache.linear_before_reset",
                                                     cache.linear_before_reset))
    if cell == "rnn" and cache.nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"cache.nonlinearity: expected 'tanh' or 'relu', got {cache.nonlinearity!r}")
    dy = np.zeros((T, B, P), dtype) if dy is None else check_array("dy", dy, dtype, (T, B, P))
    dh_n = np.zeros((B, P), dtype) if dh_n is None else check_array("dh_n", dh_n, dtype, (B, P))
    if cell == "lstm":
        dc_n = np.zeros((B, H), dtype) if dc_n is None else check_array("dc_n", dc_n, dtype, (B, H))
    else:
        dc_n = None
    return Backward(T, B, I, H, P, G, dtype, cache._replace(**fields), dy, dh_n, dc_n)
