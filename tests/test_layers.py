"""rnnkit.RNN / LSTM / GRU layers: PyTorch parity (outputs, final states, dx, dstate and every
parameter gradient) for stacked, bidirectional, batch_first, variable-length and projected
layers; dropout; peepholes and GRU linear_before_reset=False against the functional reference
composed by hand; parallel directions bitwise equal to sequential; state dicts, save/load and
errors. Torch parts are skipped when torch is not installed."""

import itertools
import re

import numpy as np
import pytest

import rnnkit
import rnnkit.reference as ref
from rnnkit.layers import LayerTape

CELLS = {  # id: (class, constructor keywords)
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", {"proj_size": 2}),
    "gru": ("GRU", {}),
}
T, B, I, H = 5, 3, 4, 3


def make(cell, num_layers=1, **kw):
    cls, opts = CELLS[cell]
    return getattr(rnnkit, cls)(I, H, num_layers, **opts, **kw)


def rand(rng, shape, dtype, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ---------------------------------------------------------------- PyTorch parity


def torch_run(torch, m, x, state, lengths, dy, dstate):
    """The same computation with torch.nn.<cls> (weights from m): y, state, dx, dstate, grads."""
    cls = getattr(torch.nn, type(m).__name__)
    kw = dict(
        bias=m.bias,
        batch_first=m.batch_first,
        bidirectional=m.bidirectional,
        dtype=torch.float64 if m.dtype == np.float64 else torch.float32,
    )
    if type(m).__name__ == "RNN":
        kw["nonlinearity"] = m.nonlinearity
    if m.proj_size:
        kw["proj_size"] = m.proj_size
    mod = cls(m.input_size, m.hidden_size, m.num_layers, **kw)
    assert list(mod.state_dict()) == list(m.state_dict())  # the same names, in the same order
    mod.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    xt = torch.from_numpy(x).requires_grad_(True)
    is_lstm = isinstance(state, tuple)
    st = tuple(torch.from_numpy(s).requires_grad_(True) for s in (state if is_lstm else (state,)))
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.from_numpy(lengths), batch_first=m.batch_first, enforce_sorted=False
        )
    out, s_out = mod(inp, st if is_lstm else st[0])
    if lengths is not None:
        total = x.shape[1 if m.batch_first else 0]
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=m.batch_first, total_length=total
        )
    s_out = s_out if is_lstm else (s_out,)
    ds = dstate if is_lstm else (dstate,)
    loss = (out * torch.from_numpy(dy)).sum()
    for s, d in zip(s_out, ds):
        loss = loss + (s * torch.from_numpy(d)).sum()
    loss.backward()
    res = {"y": out.detach().numpy(), "dx": xt.grad.numpy()}
    for j, (s, s0) in enumerate(zip(s_out, st)):
        res[f"state{j}"] = s.detach().numpy()
        res[f"dstate{j}"] = s0.grad.numpy()
    for n, p in mod.named_parameters():
        res["grad." + n] = p.grad.numpy()
    return res


def rnnkit_run(m, x, state, lengths, dy, dstate):
    y, s_out = m(x, state, lengths=lengths)
    dx, ds = m.backward(dy, dstate)
    s_out = s_out if isinstance(s_out, tuple) else (s_out,)
    ds = ds if isinstance(ds, tuple) else (ds,)
    res = {"y": y, "dx": dx}
    for j, (s, d) in enumerate(zip(s_out, ds)):
        res[f"state{j}"] = s
        res[f"dstate{j}"] = d
    for n, g in m.grads.items():
        res["grad." + n] = g
    return res


def random_io(m, rng, use_lengths):
    """x, state, lengths, dy, dstate for layer m (layout of m)."""
    dt = m.dtype
    LD = m.num_layers * m.num_directions
    Hout = m.proj_size or m.hidden_size
    xs = (B, T, I) if m.batch_first else (T, B, I)
    ys = (B, T, m.output_size) if m.batch_first else (T, B, m.output_size)
    x, dy = rand(rng, xs, dt), rand(rng, ys, dt)
    h0, dh = rand(rng, (LD, B, Hout), dt), rand(rng, (LD, B, Hout), dt)
    if isinstance(m, rnnkit.LSTM):
        state = (h0, rand(rng, (LD, B, m.hidden_size), dt))
        dstate = (dh, rand(rng, (LD, B, m.hidden_size), dt))
    else:
        state, dstate = h0, dh
    lengths = None
    if use_lengths:
        lengths = rng.integers(1, T + 1, size=B).astype(np.int64)  # torch needs >= 1
        lengths[1] = T
    return x, state, lengths, dy, dstate


def compare(got, expected, dtype):
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert set(got) == set(expected)
    for k, e in expected.items():
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(got[k], e, rtol=tol, atol=tol * scale, err_msg=k)


LAYOUTS = list(itertools.product([False, True], [False, True]))  # (batch_first, lengths)
LAYOUT_IDS = ["tm", "tm_len", "bf", "bf_len"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_matches_pytorch(backend, cell, num_layers, bidirectional, layout, dtype):
    """y, final state, dx, dstate and every parameter gradient; float64 to 1e-10, float32 to
    1e-4 (relative to max(1, |value|))."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    batch_first, use_lengths = layout
    m = make(
        cell,
        num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=dtype,
        backend=backend,
        seed=num_layers,
    )
    rng = np.random.default_rng(7)
    args = random_io(m, rng, use_lengths)
    compare(rnnkit_run(m, *args), torch_run(torch, m, *args), np.dtype(dtype))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_no_bias_and_default_state_match_pytorch(cell):
    torch = pytest.importorskip("torch")
    m = make(cell, 2, bidirectional=True, bias=False, dtype="float64", seed=1)
    assert not any(n.startswith("bias") for n in m.state_dict())
    x, state, _, dy, dstate = random_io(m, np.random.default_rng(1), False)
    if isinstance(state, tuple):  # LSTM: (h, c)
        zero = tuple(np.zeros_like(s) for s in state)
    else:
        zero = np.zeros_like(state)
    want = torch_run(torch, m, x, zero, None, dy, dstate)
    y, s = m(x)  # state=None means zeros
    np.testing.assert_allclose(y, want["y"], rtol=1e-10, atol=1e-12)
    dx, ds = m.backward(dy, dstate)
    np.testing.assert_allclose(dx, want["dx"], rtol=1e-10, atol=1e-12)


def test_dropout_eval_matches_pytorch():
    torch = pytest.importorskip("torch")
    m = make("lstm", 3, bidirectional=True, dropout=0.5, dtype="float64", seed=2).eval()
    args = random_io(m, np.random.default_rng(2), True)
    compare(rnnkit_run(m, *args), torch_run(torch, m, *args), np.float64)


# ---------------------------------------------------------------- dropout in training


def test_dropout_reproducible_from_seed_and_active():
    x = rand(np.random.default_rng(0), (T, B, I), np.float64)
    a = make("gru", 3, dropout=0.4, dtype="float64", seed=11)
    b = make("gru", 3, dropout=0.4, dtype="float64", seed=11)
    ya1, ya2 = a(x)[0], a(x)[0]
    yb1, yb2 = b(x)[0], b(x)[0]
    np.testing.assert_array_equal(ya1, yb1)  # same seed: same weights and same masks
    np.testing.assert_array_equal(ya2, yb2)
    assert not np.array_equal(ya1, ya2)  # a new mask each training forward
    y_eval = a.eval()(x)[0]
    c = make("gru", 3, dropout=0.0, dtype="float64", seed=11)
    np.testing.assert_array_equal(y_eval, c(x)[0])  # eval: no dropout at all
    one = make("gru", 1, dropout=0.4, dtype="float64", seed=11)
    np.testing.assert_array_equal(one(x)[0], one(x)[0])  # one layer: nothing to drop


def test_dropout_masks_are_inverted_and_on_inner_inputs_only():
    m = make("rnn_tanh", 3, dropout=0.5, dtype="float64", seed=4, bidirectional=True)
    _, _, tape = m.forward(np.ones((T, B, I)))
    assert tape.masks[0] is None
    for mask in tape.masks[1:]:
        assert mask.shape == (T, B, 2 * H)
        assert set(np.unique(mask)) <= {0.0, 2.0}


def test_dropout_gradient_finite_differences():
    """Train-mode gradients through the dropout path (reference, float64): each evaluation is
    the first forward of a fresh layer with the same seed, so it draws the same masks."""
    rng = np.random.default_rng(5)
    kw = dict(bidirectional=True, dropout=0.3, dtype="float64", backend="reference", seed=21)
    m = make("lstm", 3, **kw)
    x, state, lengths, dy, dstate = random_io(m, rng, True)

    def loss(x, name=None, value=None):
        f = make("lstm", 3, **kw)
        if name is not None:
            f._params[name][...] = value
        y, (h, c) = f(x, state, lengths)
        return float((y * dy).sum() + (h * dstate[0]).sum() + (c * dstate[1]).sum())

    y, _ = m(x, state, lengths)
    assert m._tape.masks[1] is not None and (m._tape.masks[1] == 0).any()
    dx, _ = m.backward(dy, dstate)
    eps = 1e-6
    for idx in [(0, 0, 0), (2, 1, 3), (4, 2, 1)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fd = (loss(xp) - loss(xm)) / (2 * eps)
        assert abs(fd - dx[idx]) < 1e-6 * max(1, abs(fd)), (idx, fd, dx[idx])
    for name in ["weight_ih_l1", "weight_hh_l2_reverse", "bias_ih_l2"]:
        p = m._params[name]
        idx = tuple(s // 2 for s in p.shape)
        pp, pm = p.copy(), p.copy()
        pp[idx] += eps
        pm[idx] -= eps
        fd = (loss(x, name, pp) - loss(x, name, pm)) / (2 * eps)
        assert abs(fd - m.grads[name][idx]) < 1e-6 * max(1, abs(fd)), (name, fd)


# ---------------------------------------------------------------- what torch lacks


def by_hand(cell, m, x, state, lengths, dy, dstate):
    """The functional reference composed by hand (time-major, no dropout): y, states, dx,
    dstates and parameter gradients."""
    L, D, p = m.num_layers, m.num_directions, m.state_dict()
    Hout = m.proj_size or m.hidden_size
    fwd, bwd = getattr(ref, f"{cell}_forward"), getattr(ref, f"{cell}_backward")
    lstm = cell == "lstm"
    inp, caches, hs, cs = x, [], [], []
    for layer in range(L):
        ys, cl = [], []
        for d in range(D):
            s = f"_l{layer}" + ("_reverse" if d else "")
            i = layer * D + d
            a = (
                inp,
                p["weight_ih" + s],
                p["weight_hh" + s],
                p.get("bias_ih" + s),
                p.get("bias_hh" + s),
            )
            if lstm:
                out = fwd(
                    *a,
                    state[0][i],
                    state[1][i],
                    w_peep=p.get("weight_peep" + s),
                    w_proj=p.get("weight_hr" + s),
                    lengths=lengths,
                    reverse=bool(d),
                )
                cs.append(out.c_n)
            else:
                out = fwd(
                    *a,
                    state[i],
                    linear_before_reset=m.linear_before_reset,
                    lengths=lengths,
                    reverse=bool(d),
                )
            ys.append(out.y)
            hs.append(out.h_n)
            cl.append(out.cache)
        caches.append(cl)
        inp = np.concatenate(ys, axis=2)
    res = {"y": inp, "state0": np.stack(hs)}
    if lstm:
        res["state1"] = np.stack(cs)
    d_in = dy
    dh0, dc0, grads = [None] * (L * D), [None] * (L * D), {}
    for layer in reversed(range(L)):
        dx = 0
        for d in range(D):
            s = f"_l{layer}" + ("_reverse" if d else "")
            i = layer * D + d
            dyd = np.ascontiguousarray(d_in[..., d * Hout : (d + 1) * Hout])
            if lstm:
                g = bwd(caches[layer][d], dyd, dstate[0][i], dstate[1][i])
                dc0[i] = g.dc0
                grads.update({"grad.weight_peep" + s: g.dw_peep, "grad.weight_hr" + s: g.dw_proj})
            else:
                g = bwd(caches[layer][d], dyd, dstate[i])
            dh0[i] = g.dh0
            dx = dx + g.dx
            grads.update(
                {
                    "grad.weight_ih" + s: g.dw_ih,
                    "grad.weight_hh" + s: g.dw_hh,
                    "grad.bias_ih" + s: g.db_ih,
                    "grad.bias_hh" + s: g.db_hh,
                }
            )
        d_in = dx
    res.update(dx=d_in, dstate0=np.stack(dh0), **{k: v for k, v in grads.items() if v is not None})
    if lstm:
        res["dstate1"] = np.stack(dc0)
    return res


BEYOND_TORCH = {  # id: (cell, class, keywords)
    "peep_bi": ("lstm", rnnkit.LSTM, dict(num_layers=2, bidirectional=True, peephole=True)),
    "peep_proj_nobias": (
        "lstm",
        rnnkit.LSTM,
        dict(num_layers=3, peephole=True, proj_size=2, bias=False),
    ),
    "cho_bi": (
        "gru",
        rnnkit.GRU,
        dict(num_layers=2, bidirectional=True, linear_before_reset=False),
    ),
    "cho_nobias": ("gru", rnnkit.GRU, dict(num_layers=3, bias=False, linear_before_reset=False)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("case", list(BEYOND_TORCH))
def test_peephole_and_gru_cho_match_composed_reference(case, backend, dtype):
    fn, cls, kw = BEYOND_TORCH[case]
    m = cls(I, H, dtype=dtype, backend=backend, seed=9, **kw)
    if kw.get("peephole"):
        assert "weight_peep_l1" in m.state_dict()
        assert m.state_dict()["weight_peep_l0"].shape == (3, H)
    args = random_io(m, np.random.default_rng(9), True)
    compare(rnnkit_run(m, *args), by_hand(fn, m, *args), np.dtype(dtype))


# ---------------------------------------------------------------- parallel directions


@pytest.mark.parametrize("cell", ["lstm_proj", "gru"])
def test_parallel_directions_bitwise_equal(cell):
    rng = np.random.default_rng(3)
    out = []
    for parallel in (False, True):
        m = make(cell, 2, bidirectional=True, dtype="float32", seed=5)
        m.parallel_directions = parallel
        x, state, lengths, dy, dstate = random_io(m, np.random.default_rng(3), True)
        out.append(rnnkit_run(m, x, state, lengths, dy, dstate))
    for k in out[0]:
        np.testing.assert_array_equal(out[0][k], out[1][k], err_msg=k)
    del rng


def test_parallel_rule():
    m = rnnkit.LSTM(256, 256, bidirectional=True, seed=0)
    before = rnnkit.get_num_threads()
    try:
        rnnkit.set_num_threads(1)
        assert m._parallel(100, 32, 256)
        assert not m._parallel(2, 1, 8)
        rnnkit.set_num_threads(2)
        assert not m._parallel(100, 32, 256)
    finally:
        rnnkit.set_num_threads(before)
    assert not rnnkit.LSTM(256, 256, seed=0)._parallel(100, 32, 256)  # one direction
    ref_layer = rnnkit.LSTM(256, 256, bidirectional=True, backend="reference")
    assert not ref_layer._parallel(100, 32, 256)


# ---------------------------------------------------------------- protocol


def test_protocol_grads_accumulate_in_place_and_explicit_tape():
    m = make("lstm_proj", 2, bidirectional=True, dtype="float64", seed=1)
    x, state, lengths, dy, dstate = random_io(m, np.random.default_rng(1), False)
    held = dict(m.grads)
    params = dict(m.named_parameters())
    assert [p for p in m.parameters()] == list(params.values())
    y, s, tape = m.forward(x, state)
    assert isinstance(tape, LayerTape) and m._tape is None  # forward keeps nothing
    dx1, _ = m.backward(dy, dstate, tape)
    first = {k: v.copy() for k, v in m.grads.items()}
    dx2, _ = m.backward(dy, dstate, tape)
    np.testing.assert_array_equal(dx1, dx2)
    for k in first:
        assert m.grads[k] is held[k]
        np.testing.assert_allclose(m.grads[k], 2 * first[k])
    m.zero_grad()
    assert all(m.grads[k] is held[k] and not held[k].any() for k in held)
    sd = m.state_dict()
    sd["weight_ih_l0"] += 1
    m.load_state_dict(sd)
    assert dict(m.named_parameters())["weight_ih_l0"] is params["weight_ih_l0"]
    np.testing.assert_array_equal(params["weight_ih_l0"], sd["weight_ih_l0"])
    assert m.output_size == 4 and m.hidden_size == H and m.dtype == np.float64
    dx, ds = m.backward(None, None, tape)  # zeros in, zeros out
    assert not dx.any() and not ds[0].any() and not ds[1].any()


def test_state_shapes_and_none_parts():
    m = make("lstm_proj", 3, bidirectional=True, batch_first=True, dtype="float32", seed=0)
    x = np.zeros((B, T, I), np.float32)
    y, (h, c) = m(x)
    assert y.shape == (B, T, 4) and h.shape == (6, B, 2) and c.shape == (6, B, H)
    y2, _ = m(x, (h, None))
    dx, (dh, dc) = m.backward(np.ones_like(y2), (None, c))
    assert dx.shape == x.shape and dh.shape == h.shape and dc.shape == c.shape


def test_init_reproducible_and_in_range():
    a, b = make("gru", 2, seed=3), make("gru", 2, seed=3)
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p, q)
        assert p.dtype == np.float32 and np.abs(p).max() <= 1 / np.sqrt(H)
    c = make("gru", 2, seed=4)
    assert not np.array_equal(a.parameters()[0], c.parameters()[0])


@pytest.mark.parametrize("cell", list(CELLS) + ["peep"])
def test_save_load_round_trip(tmp_path, cell):
    if cell == "peep":
        m = rnnkit.LSTM(
            I, H, 2, peephole=True, batch_first=True, dropout=0.25, seed=1, dtype="float64"
        )
    else:
        m = make(cell, 2, bidirectional=True, dtype="float64", seed=1, backend="reference")
    path = tmp_path / "layer.npz"
    m.save(path)
    r = rnnkit.load(path)
    assert type(r) is type(m) and r.config() == m.config()
    for (n, p), (n2, q) in zip(m.named_parameters(), r.named_parameters()):
        assert n == n2
        np.testing.assert_array_equal(p, q)
    x = random_io(m, np.random.default_rng(0), False)[0]
    np.testing.assert_array_equal(m.eval()(x)[0], r.eval()(x)[0])


def test_load_state_dict_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    m = make("lstm_proj", 2, dtype="float32", seed=0)
    t = torch.nn.LSTM(I, H, 2, proj_size=2)
    m.load_state_dict(t.state_dict())
    for n, p in t.named_parameters():
        np.testing.assert_array_equal(m.state_dict()[n], p.detach().numpy())
    # inputs may be torch tensors too; outputs are NumPy arrays
    x = torch.randn(T, B, I)
    h0, c0 = torch.randn(2, B, 2), torch.randn(2, B, H)
    y, (h, c) = m(x, (h0, c0), lengths=torch.tensor([5, 2, 4]))
    y_np, (h_np, c_np) = m(x.numpy(), (h0.numpy(), c0.numpy()), lengths=np.array([5, 2, 4]))
    assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, y_np)
    np.testing.assert_array_equal(c, c_np)


# ---------------------------------------------------------------- errors


def test_errors_name_the_argument():
    m = make("lstm", 2, bidirectional=True, dtype="float32", seed=0)
    x = np.zeros((T, B, I), np.float32)
    with pytest.raises(TypeError, match=r"x: expected dtype float32 .*got float64"):
        m(x.astype(np.float64))
    # a 3-D x with a wrong last axis: the message names the axis, expected and actual
    with pytest.raises(
        ValueError,
        match=re.escape(
            "x: expected 4 (input_size) on the last axis of [T, B, 4], got 5 (shape (5, 3, 5))"
        ),
    ):
        m(np.zeros((T, B, I + 1), np.float32))
    with pytest.raises(
        ValueError, match=r"x: expected a 3-D array \[T, B, 4\], got shape \(5, 3\)"
    ):
        m(np.zeros((T, B), np.float32))
    # a list is made float64 by NumPy: the message says so
    with pytest.raises(
        TypeError,
        match=re.escape(
            "x: expected dtype float32 (the dtype of the layer), got float64 (list input: "
            "NumPy makes it float64"
        ),
    ):
        m(x.tolist())
    with pytest.raises(
        ValueError, match=r"state\[0\]: expected shape \(4, 3, 3\), got \(2, 3, 3\)"
    ):
        m(x, (np.zeros((2, B, H), np.float32), None))
    with pytest.raises(TypeError, match=r"state\[1\]: expected dtype float32"):
        m(x, (None, np.zeros((4, B, H))))
    with pytest.raises(TypeError, match=r"state: expected a tuple \(h, c\)"):
        m(x, np.zeros((4, B, H), np.float32))
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, T=5\]"):
        m(x, lengths=[1, 2, 6])
    with pytest.raises(RuntimeError, match="backward: no tape"):
        make("gru").backward()
    m(x)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "dy: expected 6 (the layer's output_size) on the last axis of [T, B, 6], got 3"
        ),
    ):
        m.backward(np.zeros((T, B, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy: expected a 3-D array \[T, B, 6\]"):
        m.backward(np.zeros((T, B), np.float32))
    with pytest.raises(ValueError, match=r"dy: expected shape \(5, 3, 6\), got \(4, 3, 6\)"):
        m.backward(np.zeros((T - 1, B, 6), np.float32))
    with pytest.raises(ValueError, match=r"tape: expected 2 layers of 2 direction\(s\)"):
        m.backward(None, None, make("lstm", 1).forward(x)[2])
    with pytest.raises(TypeError, match="tape: expected a LayerTape"):
        m.backward(None, None, tape=(1, 2))
    sd = m.state_dict()
    with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l1_reverse'\]"):
        m.load_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l1_reverse"})
    with pytest.raises(ValueError, match=r"unexpected keys \['weight_hr_l0'\]"):
        m.load_state_dict(dict(sd, weight_hr_l0=np.zeros((2, H), np.float32)))
    with pytest.raises(ValueError, match=r"state_dict\['weight_hh_l1'\]: expected shape \(12, 3\)"):
        m.load_state_dict(dict(sd, weight_hh_l1=np.zeros((12, 4), np.float32)))
    with pytest.raises(TypeError, match=r"state_dict\['bias_ih_l0'\]: expected dtype float32"):
        m.load_state_dict(dict(sd, bias_ih_l0=sd["bias_ih_l0"].astype(np.float64)))


@pytest.mark.parametrize(
    "kw,exc,msg",
    [
        (dict(dtype="float16"), TypeError, "dtype: expected 'float32' or 'float64', got float16"),
        (dict(backend="cuda"), ValueError, "backend: expected 'native' or 'reference'"),
        (dict(dropout=1.0), ValueError, r"dropout: expected a number in \[0, 1\)"),
        (dict(proj_size=3), ValueError, "proj_size: expected 0 or < hidden_size=3"),
        (dict(num_layers=0), ValueError, "num_layers: expected an integer >= 1"),
        (dict(bidirectional="yes"), TypeError, "bidirectional: expected a bool"),
    ],
)
def test_constructor_errors(kw, exc, msg):
    kw = dict(kw)
    n = kw.pop("num_layers", 1)
    with pytest.raises(exc, match=msg):
        rnnkit.LSTM(I, H, n, **kw)
    with pytest.raises(ValueError, match="nonlinearity"):
        rnnkit.RNN(I, H, nonlinearity="sigmoid")


def test_backend_mapping():
    """layers.BACKENDS names every backend a layer accepts, each with its functional module."""
    import importlib

    from rnnkit import layers

    assert set(layers.BACKENDS) == {"native", "reference"}
    for name, module in layers.BACKENDS.items():
        m = rnnkit.GRU(I, H, backend=name)
        assert m._fwd is importlib.import_module(module).gru_forward
        assert m.backend == name
    for bad in ("cuda", None, 1, "Native"):
        with pytest.raises(ValueError, match=r"backend: expected 'native' or 'reference', got "):
            rnnkit.LSTM(I, H, backend=bad)


def test_empty_sequence_and_batch():
    m = make("gru", 2, bidirectional=True, dtype="float64", seed=0)
    y, h = m(np.zeros((0, B, I)))
    assert y.shape == (0, B, 2 * H) and h.shape == (4, B, H)
    dx, dh = m.backward(None, np.ones_like(h))
    assert dx.shape == (0, B, I)
    np.testing.assert_array_equal(dh, np.ones_like(h))
    y, h = m(np.zeros((T, 0, I)))
    assert y.shape == (T, 0, 2 * H) and h.shape == (4, 0, H)


def test_works_with_tbptt():
    m = make("lstm", 2, dtype="float64", seed=0, batch_first=True)
    x = rand(np.random.default_rng(0), (B, 7, I), np.float64)

    def loss_fn(y, tgt):
        return float((y**2).sum()), 2 * y

    windows = list(rnnkit.tbptt(m, x, np.zeros((B, 7)), loss_fn, k1=3))
    assert [w.stop for w in windows] == [3, 6, 7]
    assert any(g.any() for g in m.grads.values())


def test_automatic_parallel_directions_bitwise_equal():
    """Above the threshold with one kernel thread the directions run on two threads by
    themselves; the results equal the sequential ones bit for bit."""
    before = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    try:
        x = np.random.default_rng(0).standard_normal((40, 8, 64)).astype(np.float32)
        res = []
        for forced in (None, False):
            m = rnnkit.LSTM(64, 64, 2, bidirectional=True, seed=0)
            m.parallel_directions = forced
            assert m._parallel(40, 8, 64) is (forced is None)
            y, (h, c) = m(x)
            dx, (dh, dc) = m.backward(np.ones_like(y), (h, c))
            res.append([y, h, c, dx, dh, dc] + list(m.grads.values()))
        for a, b in zip(*res):
            np.testing.assert_array_equal(a, b)
    finally:
        rnnkit.set_num_threads(before)
