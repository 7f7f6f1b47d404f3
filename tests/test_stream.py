"""Streams (layer.stream()): run = the layer's eval output, step by step = run, snapshot
semantics, reset and state, threads, bfloat16 weights (rounding and the documented error
bound), bad input. Every cell and option, both backends, every SIMD target."""

import threading

import numpy as np
import pytest
from conftest import BACKENDS

import rnnkit
from rnnkit.stream import round_to_bfloat16

CELLS = {  # id: (class, constructor keywords)
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "lstm_proj_peep": ("LSTM", {"proj_size": 3, "peephole": True}),
    "gru": ("GRU", {}),
    "gru_cho": ("GRU", {"linear_before_reset": False}),
}
T, B, I, H = 7, 3, 5, 6


def make(cell, num_layers=2, dtype="float32", backend="native", **kw):
    cls, opts = CELLS[cell]
    return getattr(rnnkit, cls)(
        I, H, num_layers, **opts, dtype=dtype, backend=backend, seed=3, **kw
    )


def rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_run_and_steps_equal_the_layer_in_eval(simd_target, cell, dtype, backend):
    m = make(cell, dtype=dtype, backend=backend, dropout=0.3)
    x = rand((T, B, I), dtype)
    s = m.stream(B)  # a stream is in eval semantics whatever the layer's mode
    m.eval()
    y, state = m(x)
    np.testing.assert_allclose(s.run(x), y, **tol(dtype))
    s.reset()
    steps = np.stack([s.step(x[t]) for t in range(T)])
    np.testing.assert_allclose(steps, y, **tol(dtype))
    for got, want in zip(_parts(s.state), _parts(state)):
        np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_native_stream_runs_zoneout(simd_target, cell, dtype):
    """Zoneout (eval: its expectation, the constant rate) in the native stream, not the
    functional path: run = the layer's eval output, step by step = run, in chunks too."""
    m = make(cell, dtype=dtype, zoneout=0.3, recurrent_dropout=0.4)
    x = rand((T, B, I), dtype)
    s = m.stream(B)
    assert s._native is not None
    m.eval()
    y, state = m(x)
    np.testing.assert_allclose(s.run(x), y, **tol(dtype))
    for got, want in zip(_parts(s.state), _parts(state)):
        np.testing.assert_allclose(got, want, **tol(dtype))
    s.reset()
    steps = np.stack([s.step(x[t]) for t in range(T)])
    np.testing.assert_allclose(steps, y, **tol(dtype))
    s.reset()
    chunks = np.concatenate([s.run(x[:3]), s.step(x[3])[None], s.run(x[4:])])
    np.testing.assert_allclose(chunks, y, **tol(dtype))
    # the rate matters: without it the stream gives another output
    m0 = make(cell, dtype=dtype)
    m0.eval()
    assert not np.allclose(m0(x)[0], y)


def test_native_stream_zoneout_rate_is_checked():
    w = np.zeros((3 * H, I), np.float32)
    with pytest.raises(ValueError, match=r"zoneout: expected a rate in \[0, 1\], got 1.5"):
        rnnkit._core.Stream(
            cell=rnnkit._core.Cell.GRU,
            batch_size=1,
            zoneout=1.5,
            slow_check=None,
            layers=[(w, np.zeros((3 * H, H), np.float32), None, None, None, None)],
        )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_layer_norm_streams_equal_the_layer_in_eval(simd_target, cell, dtype, backend):
    """layer_norm=True with random gains and biases: the native stream runs the norms in its
    own kernels (not the functional path), and steps = run = the layer in eval."""
    m = make(cell, dtype=dtype, backend=backend, layer_norm=True)
    rng = np.random.default_rng(8)
    for name, p in m._params.items():
        if name.startswith("ln_"):
            p[0] = rng.uniform(0.5, 1.5, p.shape[1])
            p[1] = rng.normal(0, 0.3, p.shape[1])
    x = rand((T, B, I), dtype)
    s = m.stream(B)
    assert (s._native is not None) == (backend == "native")
    m.eval()
    y, state = m(x)
    np.testing.assert_allclose(s.run(x), y, **tol(dtype))
    s.reset()
    steps = np.stack([s.step(x[t]) for t in range(T)])
    np.testing.assert_allclose(steps, y, **tol(dtype))
    for got, want in zip(_parts(s.state), _parts(state)):
        np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chunks_carry_state_and_batch_first(cell):
    m = make(cell, batch_first=True)
    m.eval()
    x = rand((B, T, I), "float32")
    y, _ = m(x)
    s = m.stream(B)
    got = np.concatenate([s.run(x[:, :3]), s.run(x[:, 3:4]), s.run(x[:, 4:])], axis=1)
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-6)


def test_given_state_and_reset():
    m = make("lstm")
    m.eval()
    x = rand((T, B, I), "float32")
    h0, c0 = rand((2, B, H), "float32", 1), rand((2, B, H), "float32", 2)
    y, (h_n, c_n) = m(x, (h0, c0))
    s = m.stream(B, (h0, c0))
    np.testing.assert_allclose(s.run(x), y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.state[0], h_n, rtol=1e-5, atol=1e-6)
    s.reset((h0, c0))
    np.testing.assert_allclose(s.run(x), y, rtol=1e-5, atol=1e-6)
    s.reset()
    assert not s.state[0].any() and not s.state[1].any()


def test_snapshot_and_copies():
    m = make("gru")
    x = rand((T, B, I), "float32")
    s = m.stream(B)
    y = s.run(x)
    for p in m.parameters():
        p[...] = 0  # later changes to the layer do not reach the stream
    s.reset()
    np.testing.assert_array_equal(s.run(x), y)
    state = s.state
    state[...] = 123.0  # the state returned is a copy
    assert not np.array_equal(s.state, state)
    y_t = s.step(x[0])
    y_t[...] = 0
    assert not np.array_equal(s.state, 0)


def test_out_argument():
    m = make("lstm_proj_peep")
    s1, s2 = m.stream(B), m.stream(B)
    x = rand((B, I), "float32")
    out = np.empty((B, 3), np.float32)
    assert s1.step(x, out=out) is out
    np.testing.assert_array_equal(out, s2.step(x))
    with pytest.raises(
        ValueError,
        match=r"out: expected a writeable float32 array of shape "
        r"\(3, 3\), got a float64 array",
    ):
        s1.step(x, out=np.empty((B, 3)))


def test_streams_in_threads_equal_sequential():
    m = make("lstm", num_layers=1)
    xs = [rand((50, B, I), "float32", k) for k in range(4)]
    want = [m.stream(B).run(x) for x in xs]
    got = [None] * 4

    def work(k):
        s = m.stream(B)
        got[k] = np.stack([s.step(x_t) for x_t in xs[k]])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_bad_input():
    m = make("gru")
    s = m.stream(B)
    with pytest.raises(
        ValueError,
        match=r"x_t: expected shape \(3, 5\) \(batch_size, "
        r"input_size\), got \(2, 5\)",
    ):
        s.step(np.zeros((2, I), np.float32))
    with pytest.raises(TypeError, match="x_t: expected dtype float32"):
        s.step(np.zeros((B, I), np.float64))
    with pytest.raises(ValueError, match=r"x: expected a 3-D array \[T, B=3, I=5\]"):
        s.run(np.zeros((4, 2, I), np.float32))
    with pytest.raises(ValueError, match="bidirectional"):
        rnnkit.GRU(I, H, bidirectional=True).stream()
    with pytest.raises(ValueError, match="weight_dtype: 'bfloat16' needs a float32 layer"):
        rnnkit.GRU(I, H, dtype="float64").stream(weight_dtype="bfloat16")
    with pytest.raises(ValueError, match="weight_dtype: expected None, 'float32' or"):
        m.stream(weight_dtype="float16")
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1, got 0"):
        m.stream(0)
    with pytest.raises(ValueError, match=r"state: expected shape \(2, 3, 6\)"):
        m.stream(B, np.zeros((2, 2, H), np.float32))


# ---------------------------------------------------------------- bfloat16


def test_round_to_bfloat16_is_nearest_ties_to_even():
    vals = np.array(
        [
            1.0,
            1 + 2**-8,
            1 + 3 * 2**-8,
            1 + 2**-8 + 2**-20,
            -2.5e-3,
            3.0e38,
            np.inf,
            -np.inf,
            1e-40,
            0.0,
        ],
        np.float32,
    )
    got = round_to_bfloat16(vals)
    # An independent oracle: nearest of the two bfloat16 neighbours, ties to the even one.
    for v, g in zip(vals.astype(np.float64), got.astype(np.float64)):
        if not np.isfinite(v):
            assert g == v
            continue
        u = int(np.float32(v).view(np.uint32))
        lo = np.uint32(u & 0xFFFF0000).view(np.float32).astype(np.float64)
        hi = np.uint32((u & 0xFFFF0000) + 0x10000).view(np.float32).astype(np.float64)
        if abs(v - lo) < abs(hi - v) or (abs(v - lo) == abs(hi - v) and not (u >> 16) & 1):
            assert g == lo, (v, g, lo)
        else:
            assert g == hi, (v, g, hi)
    assert np.isnan(round_to_bfloat16(np.array([np.nan], np.float32)))[0]
    assert round_to_bfloat16(np.array([3.4e38], np.float32))[0] == np.inf


@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16_backends_agree(simd_target, backend):
    m = make("lstm", backend=backend)
    ref = make("lstm", backend="reference")
    x = rand((T, B, I), "float32")
    got = m.stream(B, weight_dtype="bfloat16").run(x)
    want = ref.stream(B, weight_dtype="bfloat16").run(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# The documented bound: one step from the same state, with every weight matrix rounded to
# bfloat16 (relative error <= 2^-8), each pre-activation moves by at most
# e = 2^-8 max_j (|W_ih| |x| + |W_hh| |h|)_j, and the step's output by at most K e with
# K = 1 (RNN), 2 + max|c_{t-1}|/4 (LSTM without projection), 2 + max|hn|/4 (GRU with
# linear_before_reset, hn = h w_hn^T + b_hn).
@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_bfloat16_one_step_error_bound(cell):
    H2, I2, B2 = 64, 32, 4
    cls, opts = CELLS[cell]
    m = getattr(rnnkit, cls)(I2, H2, **opts, seed=1)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, B2, I2)).astype(np.float32)
    s32, s16 = m.stream(B2), m.stream(B2, weight_dtype="bfloat16")
    w_ih, w_hh = m.parameters()[0], m.parameters()[1]
    b_hh = m.parameters()[3]
    for t in range(20):
        state = s32.state
        h = state[0][0] if cell == "lstm" else state[0]
        s16.reset(state)
        y32, y16 = s32.step(x[t]), s16.step(x[t])
        S = (np.abs(x[t]) @ np.abs(w_ih).T + np.abs(h) @ np.abs(w_hh).T).max()
        e = 2.0**-8 * S
        if cell == "lstm":
            K = 2 + np.abs(state[1]).max() / 4
        elif cell == "gru":
            hn = h @ w_hh[2 * H2 :].T + b_hh[2 * H2 :]
            K = 2 + np.abs(hn).max() / 4
        else:
            K = 1.0
        err = np.abs(y16.astype(np.float64) - y32).max()
        assert err <= K * e + 1e-6, (t, err, K * e)


def test_bfloat16_sequence_error_is_small():
    """Over a sequence the error is what the network makes of it; for these random models it
    stays well below 1e-2 (the README quotes the measured figures)."""
    for cls in (rnnkit.LSTM, rnnkit.GRU):
        m = cls(64, 128, seed=2)
        x = np.random.default_rng(0).standard_normal((100, 2, 64)).astype(np.float32)
        y32 = m.stream(2).run(x)
        y16 = m.stream(2, weight_dtype="bfloat16").run(x)
        assert np.abs(y16 - y32).max() < 1e-2


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


# ---------------------------------------------------------------- native packing


@pytest.mark.skipif("native" not in BACKENDS, reason="no native build")
def test_native_stream_repacks_after_a_target_or_thread_change():
    """The packed panels depend on the SIMD target (panel width) and the workspace on the
    thread count: a stream made under one and stepped under another packs again."""
    m = make("lstm_proj_peep", num_layers=2)
    ref = make("lstm_proj_peep", num_layers=2, backend="reference")
    x = rand((T, B, I), "float32")
    want = ref.stream(B).run(x)
    before, threads = rnnkit.get_simd_target(), rnnkit.get_num_threads()
    s = m.stream(B)
    try:
        got = []
        for t in range(T):
            rnnkit.set_simd_target(rnnkit.simd_targets()[t % len(rnnkit.simd_targets())])
            rnnkit.set_num_threads(1 + t % 3)
            got.append(s.step(x[t]))
    finally:
        rnnkit.set_simd_target(before)
        rnnkit.set_num_threads(threads)
    np.testing.assert_allclose(np.stack(got), want, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif("native" not in BACKENDS, reason="no native build")
def test_native_stream_bad_arguments_are_errors():
    m = make("gru")
    s = m.stream(B)
    with pytest.raises(
        ValueError,
        match=r"out: expected a writeable float32 array of shape "
        r"\(3, 6\), got a non-C-contiguous float32",
    ):
        s.step(np.zeros((B, I), np.float32), out=np.zeros((6, 3), np.float32).T)
    ro = np.zeros((B, H), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="got a read-only float32 array"):
        s.step(np.zeros((B, I), np.float32), out=ro)
    y = s.step(np.zeros((I, B), np.float32).T)  # a non-contiguous x_t is copied, not refused
    assert y.shape == (B, H)
    with pytest.raises(TypeError, match="layers"):
        rnnkit._core.Stream(cell=rnnkit._core.Cell.GRU, layers=[1], batch_size=1, slow_check=None)
    with pytest.raises(ValueError, match="w_hh: expected 6 columns without w_proj"):
        w = np.zeros((3 * H, I), np.float32)
        rnnkit._core.Stream(
            cell=rnnkit._core.Cell.GRU,
            batch_size=1,
            slow_check=None,
            layers=[(w, np.zeros((3 * H, H + 1), np.float32), None, None, None, None)],
        )


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_bfloat16_native_equals_reference_every_cell(simd_target, cell):
    m = make(cell, num_layers=2)
    ref = make(cell, num_layers=2, backend="reference")
    x = rand((T, B, I), "float32")
    s = m.stream(B, weight_dtype="bfloat16")
    want = ref.stream(B, weight_dtype="bfloat16").run(x)
    np.testing.assert_allclose(s.run(x), want, rtol=1e-5, atol=1e-6)
    s.reset()
    steps = np.stack([s.step(x[t]) for t in range(T)])
    np.testing.assert_allclose(steps, want, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif("native" not in BACKENDS, reason="no native build")
def test_bfloat16_panels_round_like_round_to_bfloat16(simd_target):
    """Weights given unrounded to the native stream: its bf16 panels (bf16.h) round them to
    nearest-even themselves. Ties and NaN-free values near them are the hard cases; the result
    must equal a float32 stream on round_to_bfloat16 weights (w_ih, w_hh are read from the
    panels only, so a wrong rounding would move the output by ~2^-8)."""
    from rnnkit import _core

    rng = np.random.default_rng(4)
    G, H2, I2 = 3, 40, 24  # sizes that leave partial panels on every target
    ties = (1 + rng.integers(0, 255, (G * H2, I2 + H2)) * 2.0**-7 + 2.0**-8) * rng.choice(
        [-0.1, 0.1], (G * H2, I2 + H2)
    )
    w = np.where(rng.random(ties.shape) < 0.5, ties, rng.standard_normal(ties.shape) * 0.2)
    w_ih, w_hh = (
        np.ascontiguousarray(w[:, :I2], np.float32),
        np.ascontiguousarray(w[:, I2:], np.float32),
    )
    b = np.zeros(G * H2, np.float32)

    def stream(wi, wh, bf16):
        return _core.Stream(
            cell=_core.Cell.GRU,
            batch_size=2,
            bfloat16=bf16,
            slow_check=None,
            layers=[(wi, wh, b, b, None, None)],
        )

    x = rng.standard_normal((9, 2, I2)).astype(np.float32)
    got = stream(w_ih, w_hh, True).run(x)
    want = stream(round_to_bfloat16(w_ih), round_to_bfloat16(w_hh), False).run(x)
    unrounded = stream(w_ih, w_hh, False).run(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.abs(unrounded - want).max() > 1e-4  # the test can tell the two apart


@pytest.mark.skipif("native" not in BACKENDS, reason="no native build")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_stream_runs_the_mgu_and_clipping(simd_target, dtype):
    """The native stream serves every cell of the table, MGU and clipped LSTMs included (the
    layers do not make them yet): steps and run equal the functional forward."""
    from rnnkit import _core

    rng = np.random.default_rng(6)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    for cell, G, kw in (("MGU", 2, {}), ("LSTM", 4, {"clip": 0.5, "input_forget": True})):
        w_ih = rng.standard_normal((G * H, I)).astype(dtype) * 0.4
        w_hh = rng.standard_normal((G * H, H)).astype(dtype) * 0.4
        b = rng.standard_normal(G * H).astype(dtype) * 0.1
        s = _core.Stream(
            cell=getattr(_core.Cell, cell),
            batch_size=B,
            slow_check=None,
            layers=[(w_ih, w_hh, b, b, None, None)],
            **kw,
        )
        if cell == "MGU":
            want = rnnkit.mgu_forward(x, w_ih, w_hh, b, b).y
        else:
            want = rnnkit.lstm_forward(x, w_ih, w_hh, b, b, **kw).y
        np.testing.assert_allclose(s.run(x), want, **tol(dtype))
        s.set_state(None, None)
        np.testing.assert_allclose(np.stack([s.step(x[t]) for t in range(T)]), want, **tol(dtype))


@pytest.mark.skipif("native" not in BACKENDS, reason="no native build")
def test_native_stream_repacks_after_a_gemm_params_change(simd_target):
    """The GEMM's tile and K blocking are run-time parameters (gemm_params.h): a stream whose
    panels were packed for one setting and stepped under another packs again."""
    from rnnkit import _core

    m = make("lstm_proj_peep", num_layers=2)
    x = rand((T, B, I), "float32")
    want = make("lstm_proj_peep", num_layers=2, backend="reference").stream(B).run(x)
    tiles = _core._gemm_params(simd_target, "float32")["tiles"]
    s = m.stream(B)
    got = []
    try:
        for t in range(T):
            mr, nr = tiles[t % len(tiles)]
            _core._set_gemm_params(simd_target, "float32", t % len(tiles), 8 * (1 + t % 2), mr, nr)
            got.append(s.step(x[t]))
    finally:
        _core._set_gemm_params(simd_target, "float32", None, 0, 0, 0)
    np.testing.assert_allclose(np.stack(got), want, rtol=1e-5, atol=1e-6)
