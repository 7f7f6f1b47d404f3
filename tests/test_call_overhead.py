"""The per-call fast paths of the functional API (issue 13: overhead of a T=1 call).

- ``rnnkit._core.forward_fast`` takes the common call (exact C-contiguous ndarrays, no option)
  without the Python validation; every other call returns None there and is validated. Its
  results (output and cache) must be exactly those of the validated path, whose kernel call is
  the same.
- A call of few steps and rows reads w_ih and w_hh unpacked (cpp/gemv.h): it must match the
  reference on every SIMD target, also with the k tails (I, H not multiples of the lanes),
  missing rows (lengths) and several threads (bitwise the same for any thread count).
"""

import numpy as np
import pytest

import rnnkit
import rnnkit.reference as ref
from rnnkit import _core, ops

# (cell, keyword options) of the calls the fast path serves
CALLS = [
    ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
    ("lstm", {}),
    ("gru", {"linear_before_reset": True}),
    ("gru", {"linear_before_reset": False}),
]
G = {"rnn": 1, "lstm": 4, "gru": 3}


def _args(cell, T, B, I, H, dt, rng, bias=True, state=True):
    g = G[cell]
    a = [
        rng.standard_normal((T, B, I)).astype(dt),
        (rng.standard_normal((g * H, I)) * 0.4).astype(dt),
        (rng.standard_normal((g * H, H)) * 0.4).astype(dt),
        rng.standard_normal(g * H).astype(dt) if bias else None,
        rng.standard_normal(g * H).astype(dt) if bias else None,
        rng.standard_normal((B, H)).astype(dt) if state else None,
    ]
    if cell == "lstm":
        a.append(rng.standard_normal((B, H)).astype(dt) if state else None)
    return a


def _same(a, b, what):
    """Two outputs (or caches), field by field: arrays bitwise equal, the rest equal."""
    assert type(a) is type(b), what
    for name, u, v in zip(a._fields, a, b):
        if isinstance(u, tuple):
            _same(u, v, f"{what}.{name}")
        elif isinstance(u, np.ndarray):
            assert isinstance(v, np.ndarray) and u.dtype == v.dtype, f"{what}.{name}"
            np.testing.assert_array_equal(u, v, err_msg=f"{what}.{name}")
        else:
            assert u == v and type(u) is type(v), f"{what}.{name}: {u!r} != {v!r}"


def _validated(cell, args, kw):
    """The same call through the validated path: x as a strided view of equal values."""
    x = np.repeat(args[0], 2, axis=2)[:, :, ::2]
    assert not x.flags.c_contiguous and np.array_equal(x, args[0])
    return getattr(rnnkit, f"{cell}_forward")(x, *args[1:], **kw)


@pytest.mark.parametrize("cell,kw", CALLS)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("T,B,I,H", [(1, 1, 8, 16), (1, 3, 5, 7), (3, 2, 17, 9), (6, 1, 4, 8)])
def test_fast_path_equals_validated_path(simd_target, cell, kw, dt, T, B, I, H):
    rng = np.random.default_rng(T * 100 + B * 10 + I)
    for bias, state in ((True, True), (False, False)):
        args = _args(cell, T, B, I, H, dt, rng, bias, state)
        for reverse in (False, True):
            k = dict(kw, reverse=reverse)
            got = getattr(rnnkit, f"{cell}_forward")(*args, **k)
            _same(got, _validated(cell, args, k), f"{cell} {kw} bias={bias} reverse={reverse}")
            want = getattr(ref, f"{cell}_forward")(*args, **k)
            tol = dict(rtol=1e-5, atol=1e-5) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
            for name in ("y", "h_n"):
                np.testing.assert_allclose(getattr(got, name), getattr(want, name), **tol)
            np.testing.assert_allclose(got.cache.gates, want.cache.gates, **tol)
            np.testing.assert_allclose(got.cache.h, want.cache.h, **tol)
            # the cache of either path feeds the native backward alike
            g = getattr(rnnkit, f"{cell}_backward")(got.cache, dh_n=np.ones_like(got.h_n))
            g_ref = getattr(ref, f"{cell}_backward")(want.cache, dh_n=np.ones_like(want.h_n))
            np.testing.assert_allclose(g.dw_hh, g_ref.dw_hh, **dict(tol, atol=1e-4))


def _fast_args(cell, args, reverse=False, input_forget=False, lbr=True, extra=None):
    h0 = args[5]
    c0 = args[6] if cell == "lstm" else None
    return [ops._FAST_CELL[cell, "tanh"], *args[:5], h0, c0, reverse, input_forget, lbr, extra]


def test_forward_fast_takes_the_common_call_and_declines_the_rest():
    rng = np.random.default_rng(0)
    args = _args("lstm", 1, 2, 4, 8, np.float32, rng)  # B = 2: a broadcast h0 is strided
    good = _fast_args("lstm", args)
    assert _core.forward_fast(*good) is not None
    f64 = np.float64
    declined = {
        "x list": (1, args[0].tolist()),
        "x Fortran order": (1, np.asfortranarray(np.repeat(args[0], 2, axis=1))),
        "x float64": (1, args[0].astype(f64)),
        "x float16": (1, args[0].astype(np.float16)),
        "x byte-swapped": (1, args[0].astype(">f4")),
        "x masked array": (1, np.ma.asarray(args[0])),
        "x empty T": (1, args[0][:0]),
        "w_ih float64": (2, args[1].astype(f64)),
        "w_ih wrong shape": (2, args[1][:, :3].copy()),
        "w_ih transposed view": (2, np.ascontiguousarray(args[1].T).T),
        "w_hh rows not 4*H": (3, args[2][:30].copy()),
        "w_hh projection shape": (3, np.ascontiguousarray(args[2][:, :4])),
        "b_ih wrong size": (4, args[3][:5].copy()),
        "b_hh strided": (5, np.repeat(args[4], 2)[::2]),
        "h0 wrong shape": (6, args[5][:, :3].copy()),
        "h0 broadcast": (6, np.broadcast_to(args[5][0], args[5].shape)),
        "c0 list": (7, args[6].tolist()),
        "reverse int": (8, 1),
        "reverse numpy bool": (8, np.True_),
        "input_forget int": (9, 0),
        "cell not a Cell": (0, "lstm"),
        "cell None": (0, None),
    }
    for what, (i, value) in declined.items():
        a = list(good)
        a[i] = value
        assert _core.forward_fast(*a) is None, what
    # c0 and input_forget only for the LSTM
    gargs = _args("gru", 1, 1, 4, 8, np.float32, rng)
    a = _fast_args("gru", gargs)
    assert _core.forward_fast(*a) is not None
    a[7] = gargs[5]
    assert _core.forward_fast(*a) is None, "c0 for the GRU"
    a = _fast_args("gru", gargs, input_forget=True)
    assert _core.forward_fast(*a) is None, "input_forget for the GRU"
    with pytest.raises(TypeError, match="12 positional"):
        _core.forward_fast(*good[:5])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize(
    "T,B,I,H", [(1, 1, 19, 13), (2, 3, 19, 13), (4, 4, 19, 13), (4, 5, 19, 13), (5, 1, 19, 13),
                (3, 2, 401, 97), (4, 4, 401, 97)]
)  # fmt: skip
def test_few_rows_with_lengths_and_tails_match_the_reference(simd_target, cell, T, B, I, H):
    """Row maps (lengths, reverse) make missing rows in the unpacked products; I and H are not
    multiples of any target's lanes; the last two sizes are large enough weights (LSTM, GRU)
    for T = 3, 4 to read them unpacked."""
    rng = np.random.default_rng(7)
    args = _args(cell, T, B, I, H, np.float32, rng)
    lengths = rng.integers(0, T + 1, B)
    for reverse in (False, True):
        got = getattr(rnnkit, f"{cell}_forward")(*args, lengths=lengths, reverse=reverse)
        want = getattr(ref, f"{cell}_forward")(*args, lengths=lengths, reverse=reverse)
        np.testing.assert_allclose(got.y, want.y, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got.h_n, want.h_n, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_unpacked_products_are_bitwise_the_same_for_any_thread_count(cell):
    rng = np.random.default_rng(3)
    args = _args(cell, 1, 2, 200, 192, np.float32, rng)  # enough work for 3 threads
    before = rnnkit.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            rnnkit.set_num_threads(n)
            outs.append(getattr(rnnkit, f"{cell}_forward")(*args))
    finally:
        rnnkit.set_num_threads(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o.y, outs[0].y)
        np.testing.assert_array_equal(o.cache.gates, outs[0].cache.gates)
    want = getattr(ref, f"{cell}_forward")(*args)
    np.testing.assert_allclose(outs[0].y, want.y, rtol=1e-4, atol=1e-5)


def test_layer_at_one_step_matches_the_reference_layer():
    m = rnnkit.LSTM(6, 10, num_layers=2, seed=1).eval()
    r = rnnkit.LSTM(6, 10, num_layers=2, seed=1, backend="reference").eval()
    x = np.random.default_rng(2).standard_normal((1, 1, 6)).astype(np.float32)
    state = None
    state_r = None
    for _ in range(3):
        y, state = m(x, state)
        y_r, state_r = r(x, state_r)
        np.testing.assert_allclose(y, y_r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state[1], state_r[1], rtol=1e-5, atol=1e-6)


class _Sub(np.ndarray):
    """An ndarray subclass: the layer's plain path declines it, the general path reads it."""


@pytest.mark.parametrize("Layer", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
@pytest.mark.parametrize("L,T,B", [(1, 1, 1), (2, 3, 2), (3, 1, 4)])
def test_layer_plain_path_equals_the_general_path(Layer, L, T, B):
    m = Layer(5, 6, num_layers=L, seed=4)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((T, B, 5)).astype(np.float32)
    h = rng.standard_normal((L, B, 6)).astype(np.float32)
    states = [None, (h, h * 0.5) if Layer is rnnkit.LSTM else h]
    if Layer is rnnkit.LSTM:
        states.append((None, h))
    for training in (True, False):
        m.train(training)
        for state in states:
            assert m._forward_plain(x, state, None, None) is not None
            y, s, tape = m.forward(x, state)
            y2, s2, tape2 = m.forward(x.view(_Sub), state)  # the general path
            np.testing.assert_array_equal(y, y2)
            for a, b in zip(
                s if isinstance(s, tuple) else (s,), s2 if isinstance(s2, tuple) else (s2,)
            ):
                assert a.shape == (L, B, 6)
                np.testing.assert_array_equal(a, b)
            assert type(tape) is type(tape2) and (tape.T, tape.B, tape.masks) == (
                tape2.T,
                tape2.B,
                tape2.masks,
            )
            for c1, c2 in zip(tape.caches, tape2.caches):
                _same(c1[0], c2[0], "cache")
            m.zero_grad()
            dx = m.backward(np.ones_like(y), tape=tape)[0]
            g = {k: v.copy() for k, v in m.grads.items()}
            m.zero_grad()
            dx2 = m.backward(np.ones_like(y), tape=tape2)[0]
            np.testing.assert_array_equal(dx, dx2)
            for k, v in m.grads.items():
                np.testing.assert_array_equal(g[k], v, err_msg=k)


def test_layer_plain_path_declines_what_it_does_not_serve():
    x = np.zeros((1, 2, 5), np.float32)
    h = np.zeros((1, 2, 6), np.float32)
    m = rnnkit.LSTM(5, 6)
    declined = [
        (m, x.astype(np.float64), None),  # wrong dtype: the general path's TypeError
        (m, x[0], None),  # wrong rank
        (m, np.zeros((1, 2, 4), np.float32), None),  # wrong input size
        (m, x, [h, h]),  # a list state
        (m, x, (h, h[:, :1])),  # a wrong state shape
        (m, x, (h.astype(np.float64), h)),
        (m, x.tolist(), None),
        (rnnkit.LSTM(5, 6, batch_first=True), x, None),
        (rnnkit.LSTM(5, 6, bidirectional=True), x, None),
        (rnnkit.LSTM(5, 6, proj_size=3), x, None),
        (rnnkit.LSTM(5, 6, peephole=True), x, None),
        (rnnkit.LSTM(5, 6, zoneout=0.1), x, None),
        (rnnkit.LSTM(5, 6, num_layers=2, dropout=0.5), x, None),
    ]
    for layer, xi, state in declined:
        assert layer._forward_plain(xi, state, None, None) is None
    assert m._forward_plain(x, None, np.array([1, 1]), None) is None  # lengths
    assert m._forward_plain(x, None, None, np.zeros((1, 2), bool)) is None  # resets
    # dropout between layers is off in eval: the plain path serves it
    assert rnnkit.LSTM(5, 6, num_layers=2, dropout=0.5).eval()._forward_plain(x, None, None, None)
