"""The cell options of API.md section 11 in the layers (rnnkit.RNN / LSTM / GRU): layer-norm
parameters, zoneout and recurrent-dropout masks, resets, their streams, TBPTT with resets and
the layer-level errors, in both backends.

Each layer test checks the layer against the functional API it is built on (which
tests/test_reference_* and tests/test_native_vs_reference.py check against finite
differences) or against a semantic fact that needs no reference (zoneout 1 keeps the state,
a reset equals a fresh call from zeros).
"""

import os

import numpy as np
import pytest
from _options import NO_OPTIONS, has_options
from conftest import BACKENDS, backend_module, numeric_grad

import rnnkit
import rnnkit.reference

CLASSES = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def need_options(backend):
    if not has_options(backend):
        pytest.skip(NO_OPTIONS.format(backend))


@pytest.fixture(params=BACKENDS)
def bk(request):
    need_options(request.param)
    return request.param


def make(cell, backend, dtype="float64", **kw):
    kw.setdefault("seed", 3)
    return CLASSES[cell](5, 4, dtype=dtype, backend=backend, **kw)


def xs(T=6, B=3, I=5, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal((T, B, I)).astype(dtype)


def perturb_ln(m, seed=1):
    """Moves the layer-norm parameters off gain 1 / bias 0, so a lost one shows."""
    rng = np.random.default_rng(seed)
    for n, p in m.named_parameters():
        if n.startswith("ln_"):
            p += 0.3 * rng.standard_normal(p.shape).astype(p.dtype)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_layer_norm_parameters_names_shapes_order_init(cell):
    m = CLASSES[cell](
        5, 4, num_layers=2, bidirectional=True, layer_norm=True, seed=0, backend="reference"
    )
    plain = CLASSES[cell](5, 4, num_layers=2, bidirectional=True, seed=0, backend="reference")
    names = [n for n, _ in m.named_parameters()]
    GH = GATES[cell] * 4
    for layer in range(2):
        for sfx in ("", "_reverse"):
            s = f"_l{layer}{sfx}"
            ln = ["ln_ih" + s, "ln_hh" + s] + (["ln_c" + s] if cell == "lstm" else [])
            # right after the direction's other parameters, in this order
            i = names.index("bias_hh" + s)
            assert names[i + 1 : i + 1 + len(ln)] == ln
            for n in ln:
                p = m._params[n]
                assert p.shape == (2, 4 if n.startswith("ln_c") else GH)
                np.testing.assert_array_equal(p[0], 1)
                np.testing.assert_array_equal(p[1], 0)
                assert m.grads[n].shape == p.shape
    # the other parameters are drawn exactly as without layer norm
    for n, p in plain.named_parameters():
        np.testing.assert_array_equal(m._params[n], p)


def test_layer_norm_in_state_dict_save_and_load(tmp_path):
    m = rnnkit.LSTM(
        5,
        4,
        proj_size=2,
        peephole=True,
        layer_norm=True,
        zoneout=0.25,
        recurrent_dropout=0.5,
        seed=0,
        backend="reference",
    )
    perturb_ln(m)
    sd = m.state_dict()
    assert {"ln_ih_l0", "ln_hh_l0", "ln_c_l0"} <= set(sd)
    path = tmp_path / "m.npz"
    m.save(path)
    back = rnnkit.load(path)
    assert (back.layer_norm, back.zoneout, back.recurrent_dropout) == (True, 0.25, 0.5)
    for n, p in m.named_parameters():
        np.testing.assert_array_equal(back._params[n], p)
    with pytest.raises(ValueError, match="missing keys.*ln_c_l0"):
        rnnkit.LSTM(5, 4, proj_size=2, peephole=True, layer_norm=True).load_state_dict(
            {k: v for k, v in sd.items() if k != "ln_c_l0"}
        )


def test_options_off_are_the_old_layer():
    """Defaults add nothing: same parameters, same config keys plus the three options."""
    m = rnnkit.GRU(5, 4, seed=0, backend="reference")
    assert not any(n.startswith("ln_") for n, _ in m.named_parameters())
    c = m.config()
    assert (c["layer_norm"], c["zoneout"], c["recurrent_dropout"]) == (False, 0.0, 0.0)


# ---------------------------------------------------------------- the layer is its calls


def functional_call(m, x, layer=0, d=0, h0=None, c0=None, **opts):
    """One direction of a layer by hand through the functional API."""
    f = backend_module(m.backend)
    w_ih, w_hh, b_ih, b_hh, w_hr, w_peep, _ = m._weights(layer, d)
    kw = {**m._call_options(), **m._ln_weights(layer, d), **opts}
    if m._cell == "lstm":
        return f.lstm_forward(
            x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep=w_peep, w_proj=w_hr, reverse=bool(d), **kw
        )
    return getattr(f, f"{m._cell}_forward")(x, w_ih, w_hh, b_ih, b_hh, h0, reverse=bool(d), **kw)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_layer_norm_forward_and_gradients_are_the_functional_ones(cell, bk):
    m = make(cell, bk, layer_norm=True)
    perturb_ln(m)
    x = xs()
    y, _ = m(x)
    out = functional_call(m, x)
    np.testing.assert_allclose(y, out.y, rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(5).standard_normal(y.shape)
    m.zero_grad()
    m.backward(dy)
    g = getattr(backend_module(bk), f"{cell}_backward")(out.cache, dy)
    for base in ("ln_ih", "ln_hh") + (("ln_c",) if cell == "lstm" else ()):
        np.testing.assert_allclose(
            m.grads[base + "_l0"], getattr(g, "d" + base), rtol=1e-10, atol=1e-12
        )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layer_norm_gradient_by_finite_differences(cell):
    """Two stacked bidirectional layers with dropout off: the accumulated ln gradients are
    those of the whole stack (float64, reference)."""
    need_options("reference")
    m = CLASSES[cell](
        3,
        3,
        num_layers=2,
        bidirectional=True,
        layer_norm=True,
        seed=2,
        dtype="float64",
        backend="reference",
    )
    perturb_ln(m)
    x = xs(T=4, B=2, I=3)
    w = np.random.default_rng(9).standard_normal((4, 2, 6))

    def loss():
        return float((m(x)[0] * w).sum())

    m.zero_grad()
    m(x)
    m.backward(w)
    for name in ("ln_hh_l0_reverse", "ln_ih_l1") + (("ln_c_l0",) if cell == "lstm" else ()):
        num = numeric_grad(loss, m._params[name])
        np.testing.assert_allclose(m.grads[name], num, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- zoneout and recurrent dropout


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_eval_uses_the_expectations(cell, bk):
    m = make(cell, bk, zoneout=0.3, recurrent_dropout=0.4).eval()
    x = xs()
    y, _ = m(x)
    T, B = x.shape[:2]
    zone = {"zoneout": np.full((T, B, 4), 0.3)}
    if cell == "lstm":
        zone["zoneout_c"] = np.full((T, B, 4), 0.3)
    np.testing.assert_allclose(y, functional_call(m, x, **zone).y, rtol=1e-12, atol=1e-12)
    # recurrent dropout alone is nothing in eval
    m2 = make(cell, bk, recurrent_dropout=0.4).eval()
    np.testing.assert_array_equal(m2(x)[0], make(cell, bk).eval()(x)[0])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_masks_come_from_the_seed_as_documented(cell, bk):
    """The masks are those the module docstring describes: SeedSequence(seed).spawn(3)[2],
    per direction random((B, Hout)) then random((T, B, Hout)) (then c's, LSTM)."""
    p_rec, p_zone = 0.4, 0.3
    m = make(cell, bk, zoneout=p_zone, recurrent_dropout=p_rec, seed=11)
    x = xs()
    T, B = x.shape[:2]
    y, _ = m(x)
    g = np.random.default_rng(np.random.SeedSequence(11).spawn(3)[2])
    opts = {
        "recurrent_mask": (g.random((B, 4)) >= p_rec) / (1 - p_rec),
        "zoneout": (g.random((T, B, 4)) < p_zone).astype(np.float64),
    }
    if cell == "lstm":
        opts["zoneout_c"] = (g.random((T, B, 4)) < p_zone).astype(np.float64)
    np.testing.assert_allclose(y, functional_call(m, x, **opts).y, rtol=1e-12, atol=1e-12)
    # reproducible, and a second forward draws new masks
    m2 = make(cell, bk, zoneout=p_zone, recurrent_dropout=p_rec, seed=11)
    np.testing.assert_array_equal(m2(x)[0], y)
    assert not np.array_equal(m2(x)[0], y)
    # the initialisation and the dropout masks do not depend on the options
    plain = make(cell, bk, seed=11)
    for n, a in plain.named_parameters():
        np.testing.assert_array_equal(m._params[n], a)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_zoneout_one_keeps_the_initial_state(cell, bk):
    """A semantic check needing no reference: zoneout 1 zones every unit at every step."""
    m = make(cell, bk, zoneout=1.0)
    x = xs()
    h0 = np.random.default_rng(4).standard_normal((1, 3, 4))
    state = (h0, h0 * 0.5) if cell == "lstm" else h0
    y, s = m(x, state)
    np.testing.assert_array_equal(y, np.broadcast_to(h0[0], y.shape))
    np.testing.assert_array_equal(s[0] if cell == "lstm" else s, h0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_masked_layer_gradients_are_the_functional_ones(cell, bk):
    m = make(
        cell,
        bk,
        zoneout=0.3,
        recurrent_dropout=0.4,
        layer_norm=True,
        num_layers=2,
        dropout=0.2,
        seed=7,
    )
    x = xs()
    y, _ = m(x)
    dy = np.random.default_rng(6).standard_normal(y.shape)
    m.zero_grad()
    dx, _ = m.backward(dy)
    # the same tape's caches, backward by hand, layer 1 then 0
    g1 = getattr(backend_module(bk), f"{cell}_backward")(m._tape.caches[1][0], dy)
    g0 = getattr(backend_module(bk), f"{cell}_backward")(
        m._tape.caches[0][0], g1.dx * m._tape.masks[1]
    )
    np.testing.assert_allclose(dx, g0.dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.grads["ln_hh_l1"], g1.dln_hh, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.grads["ln_ih_l0"], g0.dln_ih, rtol=1e-12, atol=1e-12)
    assert m._tape.caches[0][0].zoneout is not None
    assert m._tape.caches[0][0].recurrent_mask is not None


# ---------------------------------------------------------------- resets


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_resets_equal_fresh_calls_from_zero(cell, batch_first, bk):
    """Two layers; sequence 0 resets before step 2, sequence 1 before step 4: its outputs
    from there are those of a new call from a zero state, and the gradient stops there."""
    m = make(cell, bk, num_layers=2, batch_first=batch_first, layer_norm=True)
    perturb_ln(m)
    T, B = 6, 2
    x = xs(T=T, B=B)
    resets = np.zeros((T, B), bool)
    resets[2, 0] = resets[4, 1] = True
    xin = np.swapaxes(x, 0, 1).copy() if batch_first else x
    rin = resets.T.copy() if batch_first else resets
    y, _ = m(xin, resets=rin)
    y = np.swapaxes(y, 0, 1) if batch_first else y
    for b, t in ((0, 2), (1, 4)):
        xb = x[t:, b : b + 1]
        yb, _ = m(np.swapaxes(xb, 0, 1).copy() if batch_first else xb)
        yb = np.swapaxes(yb, 0, 1) if batch_first else yb
        np.testing.assert_allclose(y[t:, b : b + 1], yb, rtol=1e-12, atol=1e-12)
    # no gradient crosses a reset: dx before it does not depend on dy after it
    m(xin, resets=rin)
    dy = np.zeros((T, B, 4))
    dy[2:, 0] = 1.0
    dx, dstate = m.backward(np.swapaxes(dy, 0, 1).copy() if batch_first else dy)
    dx = np.swapaxes(dx, 0, 1) if batch_first else dx
    np.testing.assert_array_equal(dx[:2, 0], 0)
    np.testing.assert_array_equal((dstate[0] if cell == "lstm" else dstate)[:, 0], 0)


def test_resets_with_lengths(bk):
    m = make("gru", bk)
    x = xs(T=5, B=2)
    r = np.zeros((5, 2), bool)
    r[1, 1] = True
    y, h = m(x, lengths=[5, 3], resets=r)
    y1, h1 = m(x[1:3, 1:2])
    np.testing.assert_allclose(h[:, 1:2], h1, rtol=1e-12)
    np.testing.assert_array_equal(y[3:, 1], 0)


# ---------------------------------------------------------------- bad input


def layer_error_cases():
    x = xs(T=4, B=2, dtype=np.float32)
    r_ok = np.zeros((4, 2), bool)
    return [
        (
            "zoneout -0.1",
            lambda b: rnnkit.LSTM(5, 4, zoneout=-0.1, backend=b),
            ValueError,
            r"zoneout: expected a number in \[0, 1\], got -0.1",
        ),
        (
            "zoneout 1.5",
            lambda b: rnnkit.GRU(5, 4, zoneout=1.5, backend=b),
            ValueError,
            r"zoneout: expected a number in \[0, 1\], got 1.5",
        ),
        (
            "zoneout str",
            lambda b: rnnkit.RNN(5, 4, zoneout="0.1", backend=b),
            TypeError,
            r"zoneout: expected a number in \[0, 1\], got str",
        ),
        (
            "zoneout nan",
            lambda b: rnnkit.RNN(5, 4, zoneout=float("nan"), backend=b),
            ValueError,
            r"zoneout: expected a number in \[0, 1\], got nan",
        ),
        (
            "recurrent_dropout 1",
            lambda b: rnnkit.LSTM(5, 4, recurrent_dropout=1.0, backend=b),
            ValueError,
            r"recurrent_dropout: expected a number in \[0, 1\), got 1.0",
        ),
        (
            "recurrent_dropout -1",
            lambda b: rnnkit.GRU(5, 4, recurrent_dropout=-1, backend=b),
            ValueError,
            r"recurrent_dropout: expected a number in \[0, 1\), got -1",
        ),
        (
            "layer_norm 2",
            lambda b: rnnkit.GRU(5, 4, layer_norm=2, backend=b),
            TypeError,
            r"layer_norm: expected a bool, got 2",
        ),
        (
            "resets int",
            lambda b: rnnkit.GRU(5, 4, backend=b)(x, resets=r_ok.astype(int)),
            TypeError,
            r"resets: expected a bool array \[T, B\], got dtype int64",
        ),
        (
            "resets shape",
            lambda b: rnnkit.LSTM(5, 4, backend=b)(x, resets=r_ok[:3]),
            ValueError,
            r"resets: expected shape \(4, 2\) \[T, B\] \(the first two axes of x\), "
            r"got \(3, 2\)",
        ),
        (
            "resets batch_first",
            lambda b: rnnkit.LSTM(5, 4, batch_first=True, backend=b)(x, resets=r_ok.T),
            ValueError,
            r"resets: expected shape \(4, 2\) \[B, T\] \(the first two axes of x\), got \(2, 4\)",
        ),
        (
            "resets 3-D",
            lambda b: rnnkit.RNN(5, 4, backend=b)(x, resets=r_ok[..., None]),
            ValueError,
            r"resets: expected shape \(4, 2\)",
        ),
        (
            "resets bidirectional",
            lambda b: rnnkit.GRU(5, 4, bidirectional=True, backend=b)(x, resets=r_ok),
            ValueError,
            r"resets: a bidirectional layer cannot reset",
        ),
    ]


LAYER_ERRORS = layer_error_cases()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", LAYER_ERRORS, ids=[c[0] for c in LAYER_ERRORS])
def test_layer_option_errors(case, backend):
    _, call, exc, msg = case
    with pytest.raises(exc, match=msg):
        call(backend)


@pytest.mark.parametrize("case", LAYER_ERRORS, ids=[c[0] for c in LAYER_ERRORS])
def test_layer_option_errors_identical_in_both_backends(case):
    if len(BACKENDS) < 2:
        pytest.skip("no native backend built")
    messages = []
    for b in BACKENDS:
        with pytest.raises(case[2]) as e:
            case[1](b)
        messages.append(str(e.value))
    assert messages[0] == messages[1]


# ---------------------------------------------------------------- streams


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stream_carries_layer_norm_and_zoneout(cell, dtype, bk):
    m = make(
        cell, bk, dtype=dtype, num_layers=2, layer_norm=True, zoneout=0.2, recurrent_dropout=0.3
    )
    perturb_ln(m)
    x = xs(T=7, B=2, dtype=np.dtype(dtype))
    s = m.stream(batch_size=2)
    got = s.run(x)
    stepped = m.stream(batch_size=2).step(x[0])
    want = m.eval()(x)[0]
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(stepped, want[0], **tol)
    # a snapshot: later changes of the layer-norm parameters do not reach it
    m._params["ln_hh_l0"][0] += 1
    s.reset()
    np.testing.assert_allclose(s.run(x), want, **tol)


# ---------------------------------------------------------------- TBPTT with resets


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("k1,k2", [(4, 4), (3, 7)])
def test_tbptt_passing_resets_equals_splitting(cell, k1, k2, bk):
    """The kernels' resets give what the segment splitting gives: losses, dx, states and
    accumulated gradients, window by window."""
    T, B = 17, 3
    x = xs(T=T, B=B)
    rng = np.random.default_rng(2)
    resets = rng.random((T, B)) < 0.2
    target = rng.standard_normal((T, B, 4))

    def loss_fn(y, t):
        return float(((y - t) ** 2).sum()), 2 * (y - t)

    results = []
    for passing in (True, False):
        m = make(cell, bk, num_layers=2, layer_norm=True)
        perturb_ln(m)
        runs = []
        tb = rnnkit.TBPTT(m, loss_fn, k1=k1, k2=k2)
        assert tb.pass_resets
        tb.pass_resets = passing
        for lo in range(0, T, k1):
            hi = min(lo + k1, T)
            m.zero_grad()
            w = tb.step(x[lo:hi], target[lo:hi], resets[lo:hi])
            runs.append((w.loss, w.dx, w.state, {k: g.copy() for k, g in m.grads.items()}))
        results.append(runs)
    for a, b in zip(*results):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-10, atol=1e-12)
        for sa, sb in zip(a[2], b[2]) if cell == "lstm" else [(a[2], b[2])]:
            np.testing.assert_allclose(sa, sb, rtol=1e-12, atol=1e-12)
        for k in a[3]:
            np.testing.assert_allclose(a[3][k], b[3][k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_tbptt_detects_models_that_take_resets():
    from rnnkit.tbptt import takes_resets

    class Old:
        def forward(self, x, state=None):
            pass

    class Kw:
        def forward(self, x, state=None, **kw):
            pass

    assert takes_resets(rnnkit.GRU(2, 2, backend="reference"))
    assert not takes_resets(Old())
    assert takes_resets(Kw())


def test_tbptt_batch_first_passes_resets_batch_major(bk):
    T, B = 9, 2
    x = xs(T=T, B=B)
    r = np.zeros((T, B), bool)
    r[3, 1] = r[5, 0] = True
    ys = []
    for bf in (False, True):
        m = make("gru", bk, batch_first=bf)
        xin = np.swapaxes(x, 0, 1).copy() if bf else x
        got = []
        for w in rnnkit.tbptt(m, xin, None, lambda y, t: (0.0, np.zeros_like(y)), k1=4, resets=r):
            got.append(np.swapaxes(w.y, 0, 1) if bf else w.y)
        ys.append(np.concatenate(got))
    np.testing.assert_allclose(ys[0], ys[1], rtol=1e-12)


@pytest.mark.skipif(
    not os.path.exists(os.path.join(os.path.dirname(__file__), "..", "bench", "tbptt_resets.py")),
    reason="no bench",
)
def test_tbptt_resets_bench_runs_small():
    import subprocess
    import sys

    need_options("native" if "native" in BACKENDS else "reference")
    root = os.path.join(os.path.dirname(__file__), "..")
    env = dict(os.environ)
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(root, "bench", "tbptt_resets.py"),
            "--T",
            "64",
            "--H",
            "16",
            "--B",
            "2",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "speed-up" in out.stdout
