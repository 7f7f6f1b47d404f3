"""Argument validation shared by both backends, so that their errors are identical.

`check_forward` and `check_backward` are the only entry points the backends call. Every
error names the argument, what was expected and what was given:

- a wrong rank, shape or value is a ``ValueError`` (``w_hh: expected shape (512, 128), got
  (512, 127)``);
- a wrong dtype or kind of object is a ``TypeError`` (``h0: expected dtype float32 (the dtype
  of x), got float64``). One call uses one dtype, that of ``x`` (float32 or float64); nothing
  is ever cast.

What comes back is exactly what the native kernels trust: NumPy arrays, C-contiguous and
aligned (an input that is not, e.g. a transposed view, is copied once; array-likes such as
lists go through ``np.asarray`` without a dtype change), of one dtype, with consistent
shapes; absent initial states (and absent output gradients in backward) materialised as
zeros; ``lengths`` as an int64 copy with values in ``[0, T]``; ``clip`` as a float or None,
positive and normal in the call's dtype; flags as bools. Absent biases, peepholes and
projection stay None.

ndarray subclasses: an ``np.matrix`` (or a memmap) is read through ``np.asarray``, a plain
view of the same numbers, so that its operators (``*`` is a matrix product on np.matrix)
never reach the reference's arithmetic. A masked array is refused (TypeError): rnnkit has no
notion of masked entries, and dropping the mask silently would compute with the hidden
values; variable lengths are what ``lengths`` is for.

The other modules take their scalar arguments through `check_number` (a number or an
integer that is not a bool) and their arrays through `as_array`, so every message has the
same form.

Letters: T steps, B batch, I input size, H hidden size, P projection size (H without a
projection), G gates (RNN 1, GRU 3, LSTM 4).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple, Optional

import numpy as np

from ._cells import CELLS

GATES = {name: spec.gates for name, spec in CELLS.items()}
CACHE_TYPES = {name: spec.cache for name, spec in CELLS.items()}
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
NONLINEARITIES = ("tanh", "relu")


class Forward(NamedTuple):
    """The validated arguments of one ``<cell>_forward`` call."""

    T: int
    B: int
    I: int  # noqa: E741
    H: int
    P: int
    G: int
    dtype: np.dtype
    x: np.ndarray  # [T, B, I]
    w_ih: np.ndarray  # [G*H, I]
    w_hh: np.ndarray  # [G*H, P]
    b_ih: Optional[np.ndarray]  # [G*H] or None
    b_hh: Optional[np.ndarray]  # [G*H] or None
    h0: np.ndarray  # [B, P] (zeros when not given)
    c0: Optional[np.ndarray]  # [B, H] for the LSTM (zeros when not given), else None
    w_peep: Optional[np.ndarray]  # [3, H] or None
    w_proj: Optional[np.ndarray]  # [P, H] or None
    clip: Optional[float]
    input_forget: bool
    nonlinearity: str
    linear_before_reset: bool
    lengths: Optional[np.ndarray]  # int64 [B], a copy, or None
    reverse: bool
    # the options of the functions guide (None when off; ln_c and zoneout_c: LSTM only)
    ln_ih: Optional[np.ndarray] = None  # [2, G*H] rows gain, bias
    ln_hh: Optional[np.ndarray] = None  # [2, G*H]
    ln_c: Optional[np.ndarray] = None  # [2, H]
    zoneout: Optional[np.ndarray] = None  # [T, B, P], values in [0, 1]
    zoneout_c: Optional[np.ndarray] = None  # [T, B, H], values in [0, 1]
    recurrent_mask: Optional[np.ndarray] = None  # [B, P]
    resets: Optional[np.ndarray] = None  # bool [T, B]


# The option arguments, in the order they are checked, and the cells that have them.
OPTIONS = ("ln_ih", "ln_hh", "ln_c", "zoneout", "zoneout_c", "recurrent_mask", "resets")
OPTION_CELLS = {"ln_c": ("lstm",), "zoneout_c": ("lstm",)}
OPTION_CELLS.update({name: ("rnn", "lstm", "gru") for name in OPTIONS if name not in OPTION_CELLS})
# The cache fields that hold what the backward of layer normalisation reads.
LN_FIELDS = ("ih_hat", "hh_hat", "c_hat", "ln_rstd")


class Backward(NamedTuple):
    """The validated arguments of one ``<cell>_backward`` call."""

    T: int
    B: int
    I: int  # noqa: E741
    H: int
    P: int
    G: int
    dtype: np.dtype
    cache: tuple  # the cache, of its own class, with every field validated
    dy: np.ndarray  # [T, B, P] (zeros when not given)
    dh_n: np.ndarray  # [B, P] (zeros when not given)
    dc_n: Optional[np.ndarray]  # [B, H] for the LSTM (zeros when not given), else None


# --- single arguments ------------------------------------------------------------------------


def fmt_shape(shape):
    """(2, 3) and (3,) the way Python prints tuples."""
    return str(tuple(int(s) for s in shape))


def contiguous(a):
    """C-contiguous and aligned: the same array when it already is, else one copy."""
    flags = a.flags  # the common case, checked first: np.require alone costs ~0.7 us a call
    if flags.c_contiguous and flags.aligned:
        return a
    return np.require(a, requirements=("C", "A"))


def check_number(name, value, expected=None, *, integer=False):
    """A Python or NumPy real number (an integral one with ``integer=True``) that is not a
    bool: ``True`` is 1 to Python, but never a meaningful rate, size or threshold here.

    Returns it as a float (an int). A non-number is a TypeError
    ``"<name>: expected <expected>, got <type>"``; an integer too large for a float (10**400)
    is a ValueError, not Python's OverflowError. Range checks are the caller's.
    """
    if expected is None:
        expected = "an integer" if integer else "a number"
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind):
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__}")
    if integer:
        return int(value)
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"{name}: expected a finite number, got {short_repr(value)}, too large for a float"
        ) from None


def short_repr(value):
    """repr, but an integer beyond 64 bits is described by its size: 10**400 would print 401
    digits, and Python refuses to print more than 4300."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        bits = abs(int(value)).bit_length()
        if bits > 64:
            sign = "a negative" if value < 0 else "an"
            return f"{sign} integer of about {int(bits * math.log10(2)) + 1} digits"
    return repr(value)


def _array_like_note(given, a):
    """What NumPy did to an array-like given where an array was expected, for a dtype error."""
    if isinstance(given, np.ndarray):
        return ""
    return (
        f" ({type(given).__name__} input: NumPy makes it {a.dtype}; pass an array of the "
        f"dtype you want, e.g. np.asarray(..., dtype=np.float32))"
    )


def as_array(name, a):
    """An ndarray for an array or an array-like (its dtype is kept); anything else: TypeError.

    np.matrix and other ndarray subclasses come back as plain ndarray views (no copy); a
    masked array is a TypeError (see the module docstring).
    """
    if type(a) is np.ndarray:
        return a
    if isinstance(a, np.ndarray):
        if isinstance(a, np.ma.MaskedArray):
            raise TypeError(
                f"{name}: expected an array, got a masked array (rnnkit ignores "
                f"no entries: pass lengths for variable-length sequences, or "
                f"{name}.filled(0) to drop the mask)"
            )
        return np.asarray(a)
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array, got {type(a).__name__} ({e})") from None
    if arr.dtype == object:
        raise TypeError(f"{name}: expected a numeric array, got {type(a).__name__}")
    return arr


def check_x(x, name="x"):
    """The input sequence: a 3-D float32 or float64 array [T, B, I]; its dtype is the call's."""
    if x is None:
        raise TypeError(f"{name}: expected a 3-D array [T, B, I], got None")
    x = as_array(name, x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D array [T, B, I], got shape {fmt_shape(x.shape)}")
    return contiguous(x)


def check_dtype(name, a, dtype, of="x", given=None):
    """a has exactly dtype (that of the argument ``of``); ``given``, when not None, is what
    the caller passed (an array-like the message then explains)."""
    if a.dtype != dtype:
        note = "" if given is None else _array_like_note(given, a)
        raise TypeError(f"{name}: expected dtype {dtype} (the dtype of {of}), got {a.dtype}" + note)


def check_array(name, a, dtype, shape, *, optional=False, of="x"):
    """An array of exactly this dtype and shape (returned C-contiguous), or None if optional."""
    if a is None:
        if optional:
            return None
        raise TypeError(f"{name}: expected an array of shape {fmt_shape(shape)}, got None")
    given, a = a, as_array(name, a)
    check_dtype(name, a, dtype, of, given)
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {fmt_shape(shape)}, got {fmt_shape(a.shape)}")
    return contiguous(a)


def check_clip(clip, dtype, name="clip"):
    """None, or a number > 0 that stays positive and normal in ``dtype`` (the call's), returned
    as a float.

    The kernels clip in the call's dtype: in float32, 1e-46 becomes 0 and 1e39 becomes inf,
    so such a clip would mean something else than what was asked (the reference and the
    kernels would even disagree). It is refused with the range that works.
    """
    if clip is None:
        return None
    value = check_number(name, clip, "a number or None")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {short_repr(clip)}")
    info = np.finfo(dtype)
    with np.errstate(over="ignore", under="ignore"):
        converted = dtype.type(value)
    if not (info.tiny <= converted <= info.max):
        became = "a subnormal number" if converted > 0 and np.isfinite(converted) else converted
        raise ValueError(
            f"{name}: expected a number in [{info.tiny:.4g}, {info.max:.4g}] (the "
            f"normal positive {dtype} numbers: clipping is done in the dtype of "
            f"x), got {short_repr(clip)}, which is {became} in {dtype}"
        )
    return value


def check_lengths(lengths, T, B, name="lengths"):
    """None, or an integer array [B] with values in [0, T], returned as an int64 copy.

    Any integer dtype is accepted; a float array is a TypeError (an empty list is fine).
    """
    if lengths is None:
        return None
    given_array = isinstance(lengths, np.ndarray)
    lengths = as_array(name, lengths)
    if not given_array and lengths.size == 0:
        lengths = lengths.astype(np.int64)  # [] for B = 0: NumPy makes it float64
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(
            f"{name}: expected shape {fmt_shape((B,))}, got {fmt_shape(lengths.shape)}"
        )
    bad = np.flatnonzero((lengths < 0) | (lengths > T))
    if bad.size:
        at = int(bad[0])
        raise ValueError(
            f"{name}: expected values in [0, T={T}], got {int(lengths[at])} at index {at}"
        )
    return np.array(lengths, dtype=np.int64, order="C")  # a copy: the caller may change theirs


def check_flag(name, value):
    """A bool (also numpy's, or the integers 0 and 1)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name}: expected a bool, got {value!r}")


def check_nonlinearity(value, name="nonlinearity"):
    if not isinstance(value, str) or value not in NONLINEARITIES:
        raise ValueError(f"{name}: expected 'tanh' or 'relu', got {value!r}")
    return value


def check_cell(cell):
    if cell not in GATES:
        raise ValueError(f"cell: expected 'rnn', 'lstm' or 'gru', got {cell!r}")
    return GATES[cell]


def check_list_x(x_given, x, arrays):
    """x given as a list (or another array-like) has the dtype NumPy gives it: float64 for
    Python floats. When an array of ``arrays`` ((name, value) pairs) has another float dtype,
    the surprise is x's, so the error names x and says what happened, instead of blaming
    that array for not matching a dtype the user never chose."""
    if isinstance(x_given, np.ndarray):
        return
    for name, a in arrays:
        if isinstance(a, np.ndarray) and a.dtype in FLOAT_DTYPES and a.dtype != x.dtype:
            raise TypeError(
                f"x: expected an array of dtype {a.dtype} (the dtype of {name}), "
                f"got a {type(x_given).__name__}, which NumPy makes {x.dtype}; "
                f"pass np.asarray(x, dtype=np.{a.dtype})"
            )


# --- the weights of one layer ----------------------------------------------------------------


def _weights(cell, x, w_ih, w_hh, b_ih, b_hh, w_peep, w_proj, prefix=""):
    """Sizes from x, w_hh (H = rows / G) and w_proj (P), then every weight against them.

    Returns ((T, B, I, H, P, G), w_ih, w_hh, b_ih, b_hh, w_peep, w_proj).
    """
    G = GATES[cell]
    T, B, I = (int(s) for s in x.shape)
    dtype = x.dtype
    of = prefix + "x"
    rows = "H" if G == 1 else f"{G}*H"
    cols = "P" if w_proj is not None else "H"

    name = prefix + "w_hh"
    if w_hh is None:
        raise TypeError(f"{name}: expected a 2-D array [{rows}, {cols}], got None")
    given, w_hh = w_hh, as_array(name, w_hh)
    check_dtype(name, w_hh, dtype, of, given)
    if w_hh.ndim != 2 or w_hh.shape[0] % G:
        multiple = f" (rows a multiple of {G})" if G > 1 else ""
        raise ValueError(
            f"{name}: expected a 2-D array [{rows}, {cols}]{multiple}, "
            f"got shape {fmt_shape(w_hh.shape)}"
        )
    H = w_hh.shape[0] // G
    P = H
    if w_proj is not None:
        name = prefix + "w_proj"
        given, w_proj = w_proj, as_array(name, w_proj)
        check_dtype(name, w_proj, dtype, of, given)
        if w_proj.ndim != 2:
            raise ValueError(
                f"{name}: expected a 2-D array [P, H] with H={H}, "
                f"got shape {fmt_shape(w_proj.shape)}"
            )
        P = w_proj.shape[0]
        w_proj = check_array(name, w_proj, dtype, (P, H), of=of)
    w_hh = check_array(prefix + "w_hh", w_hh, dtype, (G * H, P), of=of)
    w_ih = check_array(prefix + "w_ih", w_ih, dtype, (G * H, I), of=of)
    b_ih = check_array(prefix + "b_ih", b_ih, dtype, (G * H,), optional=True, of=of)
    b_hh = check_array(prefix + "b_hh", b_hh, dtype, (G * H,), optional=True, of=of)
    w_peep = check_array(prefix + "w_peep", w_peep, dtype, (3, H), optional=True, of=of)
    return (T, B, I, H, P, G), w_ih, w_hh, b_ih, b_hh, w_peep, w_proj


def _lstm_only(cell, c0, w_peep, w_proj, input_forget):
    """Cell state, peepholes, projection and CIFG exist only for the LSTM."""
    if cell == "lstm":
        return
    for name, value in (("c0", c0), ("w_peep", w_peep), ("w_proj", w_proj)):
        if value is not None:
            raise ValueError(f"{name}: only the LSTM has it, expected None for {cell!r}")
    if input_forget:
        raise ValueError(f"input_forget: only the LSTM has it, expected False for {cell!r}")


# --- the options of the functions guide -------------------------------------------------------


def check_rate(name, a):
    """A validated zoneout mask has every value in [0, 1] (NaN is outside)."""
    bad = np.flatnonzero(~((a >= 0) & (a <= 1)))
    if bad.size:
        at = np.unravel_index(int(bad[0]), a.shape)
        raise ValueError(
            f"{name}: expected values in [0, 1], got {float(a[at])} at index "
            f"{tuple(int(i) for i in at)}"
        )
    return a


def check_resets(resets, T, B, reverse, name="resets"):
    """None, or a bool array [T, B]; resets with reverse=True are a ValueError (a reversed
    sequence has no earlier steps whose state a reset could cut)."""
    if resets is None:
        return None
    given, a = resets, as_array(name, resets)
    if a.dtype != np.bool_:
        raise TypeError(f"{name}: expected dtype bool, got {a.dtype}" + _array_like_note(given, a))
    if a.shape != (T, B):
        raise ValueError(f"{name}: expected shape {fmt_shape((T, B))}, got {fmt_shape(a.shape)}")
    if reverse:
        raise ValueError(
            f"{name}: expected None with reverse=True (resets are defined for "
            f"forward runs only), got an array"
        )
    return contiguous(a)


def check_options(cell, dims, dtype, reverse, options, prefix=""):
    """Validates the option arguments (a dict name -> value, absent ones None) against the
    call's sizes (T, B, I, H, P, G) and dtype; returns them in `OPTIONS` order."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    T, B, _, H, P, G = dims
    of = prefix + "x"
    shapes = {
        "ln_ih": (2, G * H),
        "ln_hh": (2, G * H),
        "ln_c": (2, H),
        "zoneout": (T, B, P),
        "zoneout_c": (T, B, H),
        "recurrent_mask": (B, P),
    }
    out = []
    for name in OPTIONS:
        value = options.get(name)
        if value is not None and cell not in OPTION_CELLS[name]:
            only = " and ".join(c.upper() for c in OPTION_CELLS[name])
            raise ValueError(f"{prefix}{name}: only the {only} has it, expected None for {cell!r}")
        if name == "resets":
            value = check_resets(value, T, B, reverse, prefix + name)
        else:
            value = check_array(prefix + name, value, dtype, shapes[name], optional=True, of=of)
        if value is not None and name.startswith("zoneout"):
            check_rate(prefix + name, value)
        out.append(value)
    return tuple(out)


def _check_ln_fields(cache, cell, dims, dtype, options):
    """The layer-norm statistics of a cache: present exactly when their option is."""
    T, B, _, H, _, G = dims
    ln_ih, ln_hh, ln_c = options[:3]
    want = {
        "ih_hat": (ln_ih, (T, B, G * H)),
        "hh_hat": (ln_hh, (T, B, G * H)),
        "c_hat": (ln_c, (T, B, H)),
        "ln_rstd": (
            ln_ih if ln_ih is not None else ln_hh if ln_hh is not None else ln_c,
            (T, B, 4),
        ),
    }
    out = {}
    for name, (option, shape) in want.items():
        value = getattr(cache, name, None)
        if option is None:
            if value is not None:
                raise ValueError(
                    f"cache.{name}: expected None (no layer norm it belongs to), got an array"
                )
            out[name] = None
        else:
            out[name] = check_array("cache." + name, value, dtype, shape, of="cache.x")
    return out


# --- the two entry points --------------------------------------------------------------------


def check_forward(
    cell,
    x,
    w_ih,
    w_hh,
    b_ih,
    b_hh,
    h0,
    c0=None,
    *,
    w_peep=None,
    w_proj=None,
    clip=None,
    input_forget=False,
    nonlinearity="tanh",
    linear_before_reset=True,
    lengths=None,
    reverse=False,
    **options,
) -> Forward:
    """Validates the arguments of ``<cell>_forward`` (cell: "rnn", "lstm" or "gru").

    Checks, in this order: x, w_hh (gives H), w_proj (gives P), w_ih, biases, w_peep, h0, c0,
    nonlinearity, clip, flags, lengths, then the options (`OPTIONS`, keyword arguments of
    that name). Returns a `Forward`.
    """
    check_cell(cell)
    _lstm_only(cell, c0, w_peep, w_proj, input_forget)
    x_given, x = x, check_x(x)
    check_list_x(
        x_given,
        x,
        (
            ("w_hh", w_hh),
            ("w_proj", w_proj),
            ("w_ih", w_ih),
            ("b_ih", b_ih),
            ("b_hh", b_hh),
            ("w_peep", w_peep),
            ("h0", h0),
            ("c0", c0),
            *((n, options.get(n)) for n in OPTIONS[:-1]),
        ),
    )
    dims, w_ih, w_hh, b_ih, b_hh, w_peep, w_proj = _weights(
        cell, x, w_ih, w_hh, b_ih, b_hh, w_peep, w_proj
    )
    T, B, I, H, P, G = dims
    dtype = x.dtype
    h0 = np.zeros((B, P), dtype) if h0 is None else check_array("h0", h0, dtype, (B, P))
    if cell == "lstm":
        c0 = np.zeros((B, H), dtype) if c0 is None else check_array("c0", c0, dtype, (B, H))
    nonlinearity = check_nonlinearity(nonlinearity) if cell == "rnn" else "tanh"
    clip = check_clip(clip, dtype)
    input_forget = check_flag("input_forget", input_forget)
    linear_before_reset = check_flag("linear_before_reset", linear_before_reset)
    lengths = check_lengths(lengths, T, B)
    reverse = check_flag("reverse", reverse)
    return Forward(
        T,
        B,
        I,
        H,
        P,
        G,
        dtype,
        x,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        h0,
        c0,
        w_peep,
        w_proj,
        clip,
        input_forget,
        nonlinearity,
        linear_before_reset,
        lengths,
        reverse,
        **dict(zip(OPTIONS, check_options(cell, dims, dtype, reverse, options))),
    )


def check_backward(cell, cache, dy, dh_n, dc_n=None) -> Backward:
    """Validates the arguments of ``<cell>_backward``: the cache and the output gradients.

    The cache must be of the cell's class and internally consistent (every array's shape and
    dtype agree with ``cache.x`` and ``cache.w_hh``; ``lengths`` in ``[0, T]``; ``clip_mask``
    a bool array exactly when ``clip`` is set). ``dy[T, B, P]``, ``dh_n[B, P]`` and
    ``dc_n[B, H]`` (LSTM only) must have the cache's dtype; absent ones become zeros.
    Returns a `Backward` whose ``cache`` is a validated copy of the tuple (arrays are copied
    only when not C-contiguous).
    """
    check_cell(cell)
    cls = CACHE_TYPES[cell]
    if not isinstance(cache, cls):
        article = "a" if cell == "gru" else "an"
        raise TypeError(
            f"cache: expected {article} {cls.__name__} (from {cell}_forward), "
            f"got {type(cache).__name__}"
        )
    if cell != "lstm" and dc_n is not None:
        raise ValueError(f"dc_n: only the LSTM has it, expected None for {cell!r}")
    x = check_x(cache.x, "cache.x")
    dims, w_ih, w_hh, b_ih, b_hh, w_peep, w_proj = _weights(
        cell,
        x,
        cache.w_ih,
        cache.w_hh,
        cache.b_ih,
        cache.b_hh,
        cache.w_peep if cell == "lstm" else None,
        cache.w_proj if cell == "lstm" else None,
        prefix="cache.",
    )
    T, B, I, H, P, G = dims
    dtype = x.dtype

    def arr(name, shape):
        return check_array("cache." + name, getattr(cache, name), dtype, shape, of="cache.x")

    fields = dict(
        x=x,
        w_ih=w_ih,
        w_hh=w_hh,
        b_ih=b_ih,
        b_hh=b_hh,
        h=arr("h", (T + 1, B, P)),
        gates=arr("gates", (T, B, G * H)),
        lengths=check_lengths(cache.lengths, T, B, "cache.lengths"),
        reverse=check_flag("cache.reverse", cache.reverse),
        clip=check_clip(cache.clip, dtype, "cache.clip"),
    )
    if fields["clip"] is None:
        if cache.clip_mask is not None:
            raise ValueError("cache.clip_mask: expected None (cache.clip is None), got an array")
        fields["clip_mask"] = None
    else:
        mask_shape = (T, B, G * H)
        if cache.clip_mask is None:
            raise TypeError(
                f"cache.clip_mask: expected a bool array of shape "
                f"{fmt_shape(mask_shape)} (cache.clip is set), got None"
            )
        mask = as_array("cache.clip_mask", cache.clip_mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"cache.clip_mask: expected dtype bool, got {mask.dtype}")
        if mask.shape != mask_shape:
            raise ValueError(
                f"cache.clip_mask: expected shape {fmt_shape(mask_shape)}, "
                f"got {fmt_shape(mask.shape)}"
            )
        fields["clip_mask"] = contiguous(mask)
    if cell == "rnn":
        fields["nonlinearity"] = check_nonlinearity(cache.nonlinearity, "cache.nonlinearity")
    if cell == "lstm":
        fields.update(
            w_peep=w_peep,
            w_proj=w_proj,
            c=arr("c", (T + 1, B, H)),
            input_forget=check_flag("cache.input_forget", cache.input_forget),
        )
    if cell == "gru":
        fields.update(
            hn=arr("hn", (T, B, H)),
            linear_before_reset=check_flag("cache.linear_before_reset", cache.linear_before_reset),
        )

    def grad(name, value, shape):
        if value is None:
            return np.zeros(shape, dtype)
        return check_array(name, value, dtype, shape, of="cache.x")

    if cell in OPTION_CELLS["ln_ih"]:
        opts = check_options(
            cell,
            dims,
            dtype,
            fields["reverse"],
            {n: getattr(cache, n, None) for n in OPTIONS},
            prefix="cache.",
        )
        fields.update((n, v) for n, v in zip(OPTIONS, opts) if n in cache._fields)
        ln = _check_ln_fields(cache, cell, dims, dtype, opts)
        fields.update((n, v) for n, v in ln.items() if n in cache._fields)

    dy = grad("dy", dy, (T, B, P))
    dh_n = grad("dh_n", dh_n, (B, P))
    dc_n = grad("dc_n", dc_n, (B, H)) if cell == "lstm" else None
    return Backward(T, B, I, H, P, G, dtype, cache._replace(**fields), dy, dh_n, dc_n)
