"""Every documented error (API.md section 7) on both backends: the exception type and a
message naming the argument (and, for shapes, the expected and the actual shape). Both
backends share the validation, so the same input raises the same error in each."""

import re

import numpy as np
import pytest

import rnnkit
import rnnkit.reference

T, B, I, H = 4, 3, 5, 6


def good(cell, dtype=np.float32):
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    rng = np.random.default_rng(0)
    a = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    return {"x": a(T, B, I), "w_ih": a(G * H, I), "w_hh": a(G * H, H), "b_ih": a(G * H),
            "b_hh": a(G * H), "h0": a(B, H)}


def call(backend, cell, **over):
    kw = good(cell)
    kw.update(over)
    return getattr(backend, f"{cell}_forward")(**kw)


# (cell, overrides, exception, message regex)
FORWARD_ERRORS = [
    ("lstm", {"x": np.zeros((T, B), np.float32)}, ValueError,
     r"x: expected a 3-D array \[T, B, I\], got shape \(4, 3\)"),
    ("lstm", {"x": np.zeros((T, B, I), np.int64)}, TypeError,
     r"x: expected dtype float32 or float64, got int64"),
    ("gru", {"x": np.zeros((T, B, I), np.float16)}, TypeError, r"x: expected dtype float32 or float64, got float16"),
    ("rnn", {"x": np.zeros((T, B, I), np.complex64)}, TypeError, r"x: expected dtype"),
    ("lstm", {"w_hh": np.zeros((24, 5), np.float32)}, ValueError,
     r"w_hh: expected shape \(24, 6\), got \(24, 5\)"),
    ("lstm", {"w_hh": np.zeros((23, 6), np.float32)}, ValueError, r"w_hh: expected a 2-D array"),
    ("lstm", {"w_ih": np.zeros((24, 4), np.float32)}, ValueError,
     r"w_ih: expected shape \(24, 5\), got \(24, 4\)"),
    ("gru", {"w_ih": np.zeros((18, 5), np.float64)}, TypeError,
     r"w_ih: expected dtype float32 \(the dtype of x\), got float64"),
    ("rnn", {"b_ih": np.zeros(7, np.float32)}, ValueError, r"b_ih: expected shape \(6,\), got \(7,\)"),
    ("rnn", {"b_hh": np.zeros(6, np.float64)}, TypeError, r"b_hh: expected dtype float32"),
    ("lstm", {"h0": np.zeros((B + 1, H), np.float32)}, ValueError,
     r"h0: expected shape \(3, 6\), got \(4, 6\)"),
    ("lstm", {"c0": np.zeros((B, H + 1), np.float32)}, ValueError,
     r"c0: expected shape \(3, 6\), got \(3, 7\)"),
    ("lstm", {"c0": np.zeros((B, H), np.float64)}, TypeError, r"c0: expected dtype float32"),
    ("lstm", {"w_peep": np.zeros((4, H), np.float32)}, ValueError,
     r"w_peep: expected shape \(3, 6\), got \(4, 6\)"),
    ("lstm", {"w_proj": np.zeros((4, H + 1), np.float32)}, ValueError,
     r"w_proj: expected shape \(4, 6\), got \(4, 7\)"),
    ("lstm", {"w_proj": np.zeros((4, H), np.float32)}, ValueError,
     r"w_hh: expected shape \(24, 4\), got \(24, 6\)"),
    ("lstm", {"lengths": np.array([1, 2])}, ValueError, r"lengths: expected shape \(3,\), got \(2,\)"),
    ("lstm", {"lengths": np.array([1, 5, 2])}, ValueError,
     r"lengths: expected values in \[0, T=4\], got 5 at index 1"),
    ("gru", {"lengths": np.array([1, -1, 2])}, ValueError, r"lengths: expected values in \[0, T=4\], got -1"),
    ("rnn", {"lengths": np.array([1.0, 2.0, 3.0])}, TypeError, r"lengths: expected an integer array"),
    ("lstm", {"clip": 0}, ValueError, r"clip: expected a finite number > 0, got 0"),
    ("gru", {"clip": -1.0}, ValueError, r"clip: expected a finite number > 0, got -1"),
    ("rnn", {"clip": float("nan")}, ValueError, r"clip: expected a finite number > 0, got nan"),
    ("lstm", {"clip": float("inf")}, ValueError, r"clip: expected a finite number > 0, got inf"),
    ("lstm", {"clip": "1"}, TypeError, r"clip: expected a number"),
    ("rnn", {"nonlinearity": "sigmoid"}, ValueError,
     r"nonlinearity: expected 'tanh' or 'relu', got 'sigmoid'"),
    ("lstm", {"reverse": "yes"}, TypeError, r"reverse: expected a bool"),
]


@pytest.mark.parametrize("cell,over,exc,msg", FORWARD_ERRORS,
                         ids=[f"{c}-{'-'.join(o)}-{i}" for i, (c, o, _, _) in enumerate(FORWARD_ERRORS)])
def test_forward_errors(backend, cell, over, exc, msg):
    with pytest.raises(exc, match=msg):
        call(backend, cell, **over)


def test_both_backends_raise_the_same_message():
    for cell, over, exc, _ in FORWARD_ERRORS:
        msgs = []
        for mod in (rnnkit.reference, rnnkit):
            with pytest.raises(exc) as info:
                call(mod, cell, **over)
            msgs.append(str(info.value))
        assert msgs[0] == msgs[1]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_backward_errors(backend, cell):
    out = call(backend, cell)
    bwd = getattr(backend, f"{cell}_backward")
    with pytest.raises(ValueError, match=re.escape("dy: expected shape (4, 3, 6), got (4, 3, 5)")):
        bwd(out.cache, dy=np.zeros((T, B, H - 1), np.float32))
    with pytest.raises(TypeError, match=r"dh_n: expected dtype float32 \(the dtype of x\), got float64"):
        bwd(out.cache, dh_n=np.zeros((B, H)))
    with pytest.raises(ValueError, match=re.escape("dh_n: expected shape (3, 6), got (6,)")):
        bwd(out.cache, dh_n=np.zeros(H, np.float32))
    other = "gru" if cell != "gru" else "lstm"
    wrong = call(backend, other).cache
    with pytest.raises(TypeError, match=r"cache: expected an? \w+Cache \(from %s_forward\), got \w+Cache" % cell):
        bwd(wrong)
    with pytest.raises(TypeError, match=r"cache: expected"):
        bwd((1, 2, 3))
    bad = out.cache._replace(h=out.cache.h[:-1])
    with pytest.raises(ValueError, match=re.escape("cache.h: expected shape (5, 3, 6), got (4, 3, 6)")):
        bwd(bad)
    if cell == "lstm":
        with pytest.raises(ValueError, match=re.escape("dc_n: expected shape (3, 6), got (3, 5)")):
            bwd(out.cache, dc_n=np.zeros((B, H - 1), np.float32))


def test_non_contiguous_and_lists_are_accepted(backend):
    kw = good("lstm", np.float64)
    x_f = np.asfortranarray(kw["x"])
    w_t = np.ascontiguousarray(kw["w_hh"].T).T  # a transposed view: not C-contiguous
    a = backend.lstm_forward(x_f, kw["w_ih"], w_t, kw["b_ih"], kw["b_hh"], kw["h0"])
    b = backend.lstm_forward(kw["x"], kw["w_ih"].tolist(), kw["w_hh"], kw["b_ih"], kw["b_hh"],
                             kw["h0"])
    np.testing.assert_allclose(a.y, b.y, rtol=1e-12)


def test_lengths_accept_any_integer_dtype(backend):
    for dt in (np.int8, np.uint16, np.int32, np.int64):
        out = call(backend, "gru", lengths=np.array([4, 0, 2], dt))
        assert out.cache.lengths.dtype == np.int64
        np.testing.assert_array_equal(out.y[2:, 2], 0)


def test_nan_propagates_and_is_not_an_error(backend):
    kw = good("lstm")
    kw["x"][1, 0, 0] = np.nan
    out = backend.lstm_forward(**kw)
    assert np.isnan(out.y[1:, 0]).all() and np.isfinite(out.y[:, 1:]).all()
