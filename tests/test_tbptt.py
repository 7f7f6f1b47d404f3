"""Truncated BPTT (`rnnkit.tbptt`, `rnnkit.TBPTT`) against independent computations.

- k1 = k2 >= T is one full forward/backward of the functional API;
- smaller windows equal a plain window-by-window NumPy computation (states from one full
  forward, each window a fresh functional forward/backward from its start state) and
  PyTorch autograd with the start state detached;
- resets equal running every document of every sample separately;
- the streaming class equals the generator; it stores O(k2) steps; errors are checked.

The model is a one-layer `rnnkit.LSTM` / `rnnkit.GRU` (both backends); the computations it is
compared with use only the functional API and PyTorch.
"""

import numpy as np
import pytest
from conftest import BACKENDS, backend_module

import rnnkit
import rnnkit.reference

KINDS = ["lstm", "gru"]
DTYPES = [np.float64, np.float32]


def tol(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)


# ---------------------------------------------------------------- the model under test


def make_model(kind, I, H, *, dtype, backend, batch_first=False, seed=0):
    """The model under test: a one-layer rnnkit.LSTM / rnnkit.GRU."""
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[kind]
    return cls(
        I, H, dtype=np.dtype(dtype).name, backend=backend, batch_first=batch_first, seed=seed
    )


# ---------------------------------------------------------------- data and loss


def mse_loss(V, reduction="mean"):
    """loss = 0.5 * sum((y V - t)^2) [/ (steps * B)], with dy by hand. Layout-agnostic."""

    def loss_fn(y, t):
        e = y @ V - t
        scale = 1.0 / (e.size // e.shape[-1]) if reduction == "mean" else 1.0
        return 0.5 * scale * float((e * e).sum()), (scale * e @ V.T).astype(y.dtype)

    return loss_fn


def make_data(T, B, I, H, C, dtype, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    tgt = rng.standard_normal((T, B, C)).astype(dtype)
    V = rng.standard_normal((H, C)).astype(dtype)
    return x, tgt, V


def init_state(kind, B, H, dtype, seed=2):
    rng = np.random.default_rng(seed)
    h = (0.5 * rng.standard_normal((1, B, H))).astype(dtype)
    return (h, (0.5 * rng.standard_normal((1, B, H))).astype(dtype)) if kind == "lstm" else h


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def collect(windows, model):
    """Runs the windows, keeping each one with the gradients it accumulated (then zeroed)."""
    out = []
    for w in windows:
        out.append((w, {n: g.copy() for n, g in model.grads.items()}))
        model.zero_grad()
    return out


def chunks_of(T, k1):
    return [(a, min(a + k1, T)) for a in range(0, T, k1)]


# ---------------------------------------------------------------- independent NumPy computation


def numpy_windows(kind, ops, sd, x, tgt, loss_fn, chunks, k1, k2, state):
    """Window by window with the functional API, written plainly (time-major).

    The state at every step comes from one full forward; each window [s, b) with new steps
    [a, b), s = max(0, a - (k2 - k1)), is a fresh forward from the state at s, dy = 0 before a,
    and a backward with no gradient into the start state."""
    w = (sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
    st = as_tuple(state) if state is not None else None
    if kind == "lstm":
        full = ops.lstm_forward(
            x, *w, None if st is None else st[0][0], None if st is None else st[1][0]
        )
        states = (full.cache.h, full.cache.c)
    else:
        full = ops.gru_forward(x, *w, None if st is None else st[0][0])
        states = (full.cache.h,)
    out = []
    for a, b in chunks:
        s = max(0, a - (k2 - k1))
        init = [h[s] for h in states]
        fwd = (ops.lstm_forward if kind == "lstm" else ops.gru_forward)(x[s:b], *w, *init)
        loss, dy_new = loss_fn(fwd.y[a - s :], tgt[a:b])
        dy = np.zeros_like(fwd.y)
        dy[a - s :] = dy_new
        g = (ops.lstm_backward if kind == "lstm" else ops.gru_backward)(fwd.cache, dy)
        grads = dict(
            zip(
                ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
                [g.dw_ih, g.dw_hh, g.db_ih, g.db_hh],
            )
        )
        out.append(
            dict(
                start=s,
                stop=b,
                loss_start=a,
                loss=loss,
                dx=g.dx,
                y=fwd.y[a - s :],
                state=[h[b] for h in states],
                grads=grads,
            )
        )
    return out


def assert_windows(got, want, dtype, batch_first=False):
    assert len(got) == len(want)
    t = tol(dtype)
    for (w, grads), e in zip(got, want):
        assert (w.start, w.stop, w.loss_start) == (e["start"], e["stop"], e["loss_start"])
        np.testing.assert_allclose(w.loss, e["loss"], **t)
        tm = (lambda a: a.transpose(1, 0, 2)) if batch_first else (lambda a: a)
        np.testing.assert_allclose(tm(w.dx), e["dx"], **t)
        np.testing.assert_allclose(tm(w.y), e["y"], **t)
        for s_got, s_want in zip(as_tuple(w.state), e["state"]):
            np.testing.assert_allclose(s_got[0], s_want, **t)
        for n in e["grads"]:
            np.testing.assert_allclose(grads[n], e["grads"][n], **t, err_msg=n)


T, B, I, H, C = 13, 3, 4, 5, 2


# ---------------------------------------------------------------- (a) k1 = k2 >= T: full BPTT


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [T, T + 5])
def test_one_window_is_full_bptt(kind, dtype, backend, k):
    model = make_model(kind, I, H, dtype=dtype, backend=backend)
    x, tgt, V = make_data(T, B, I, H, C, dtype)
    loss_fn = mse_loss(V)
    got = collect(rnnkit.tbptt(model, x, tgt, loss_fn, k1=k), model)
    assert len(got) == 1
    w, grads = got[0]
    # One forward and backward over the whole sequence, by hand.
    ops, sd = backend_module(backend), model.state_dict()
    wts = [sd[n] for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    fwd = (ops.lstm_forward if kind == "lstm" else ops.gru_forward)(x, *wts)
    loss, dy = loss_fn(fwd.y, tgt)
    g = (ops.lstm_backward if kind == "lstm" else ops.gru_backward)(fwd.cache, dy)
    t = tol(dtype)
    assert (w.start, w.stop, w.loss_start) == (0, T, 0)
    np.testing.assert_allclose(w.loss, loss, **t)
    np.testing.assert_allclose(w.dx, g.dx, **t)
    np.testing.assert_allclose(as_tuple(w.state)[0][0], fwd.h_n, **t)
    for n, d in zip(
        ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
        [g.dw_ih, g.dw_hh, g.db_ih, g.db_hh],
    ):
        np.testing.assert_allclose(grads[n], d, **t, err_msg=n)


# ---------------------------------------------------------------- (b) smaller windows

K_CASES = [(4, 4), (3, 7), (5, 6), (1, 3), (4, 20)]  # T = 13: never a multiple of k1 > 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k1,k2", K_CASES)
def test_windows_match_numpy(kind, dtype, backend, k1, k2):
    model = make_model(kind, I, H, dtype=dtype, backend=backend)
    x, tgt, V = make_data(T, B, I, H, C, dtype)
    s0 = init_state(kind, B, H, dtype)
    got = collect(rnnkit.tbptt(model, x, tgt, mse_loss(V), k1=k1, k2=k2, state=s0), model)
    want = numpy_windows(
        kind,
        backend_module(backend),
        model.state_dict(),
        x,
        tgt,
        mse_loss(V),
        chunks_of(T, k1),
        k1,
        k2,
        s0,
    )
    assert_windows(got, want, dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_first(kind):
    model = make_model(kind, I, H, dtype=np.float64, backend="native", batch_first=True)
    x, tgt, V = make_data(T, B, I, H, C, np.float64)
    xb, tb = x.transpose(1, 0, 2), tgt.transpose(1, 0, 2)  # non-contiguous views on purpose
    got = collect(rnnkit.tbptt(model, xb, tb, mse_loss(V), k1=3, k2=5), model)
    want = numpy_windows(
        kind, rnnkit, model.state_dict(), x, tgt, mse_loss(V), chunks_of(T, 3), 3, 5, None
    )
    assert_windows(got, want, np.float64, batch_first=True)


def torch_windows(torch, kind, sd, x, tgt, V, chunks, k1, k2, state):
    """PyTorch autograd: each window starts from the carried state, detached."""
    dt = torch.float64 if x.dtype == np.float64 else torch.float32
    mod = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(x.shape[2], V.shape[0], dtype=dt)
    with torch.no_grad():
        for n, p in sd.items():
            getattr(mod, n).copy_(torch.from_numpy(p))
    X, TG, Vt = (torch.from_numpy(a) for a in (x, tgt, V))
    s0 = tuple(torch.from_numpy(a) for a in as_tuple(state))
    s0 = s0 if kind == "lstm" else s0[0]
    out = []
    for a, b in chunks:
        s = max(0, a - (k2 - k1))
        carried = s0 if s == 0 else mod(X[:s], s0)[1]  # the state at step s
        carried = tuple(c.detach() for c in carried) if kind == "lstm" else carried.detach()
        xw = X[s:b].clone().requires_grad_(True)
        mod.zero_grad()
        y, _ = mod(xw, carried)
        e = y[a - s :] @ Vt - TG[a:b]
        loss = 0.5 * (e * e).sum() / (e.shape[0] * e.shape[1])
        loss.backward()
        out.append(
            dict(
                loss=loss.item(),
                dx=xw.grad.numpy(),
                grads={n: getattr(mod, n).grad.numpy().copy() for n in sd},
            )
        )
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k1,k2", [(4, 4), (3, 7), (5, 6)])
def test_windows_match_pytorch_detach(kind, dtype, backend, k1, k2):
    torch = pytest.importorskip("torch")
    model = make_model(kind, I, H, dtype=dtype, backend=backend)
    x, tgt, V = make_data(T, B, I, H, C, dtype)
    s0 = init_state(kind, B, H, dtype)
    got = collect(rnnkit.tbptt(model, x, tgt, mse_loss(V), k1=k1, k2=k2, state=s0), model)
    want = torch_windows(torch, kind, model.state_dict(), x, tgt, V, chunks_of(T, k1), k1, k2, s0)
    assert len(got) == len(want)
    t = tol(dtype)
    for (w, grads), e in zip(got, want):
        np.testing.assert_allclose(w.loss, e["loss"], **t)
        np.testing.assert_allclose(w.dx, e["dx"], **t)
        for n in grads:
            np.testing.assert_allclose(grads[n], e["grads"][n], **t, err_msg=n)


# ---------------------------------------------------------------- (c) resets


def numpy_documents(kind, ops, sd, x, tgt, loss_fn, resets, chunks, k1, k2, state):
    """Every sample's documents run alone (batch of 1): the carried states per sample come
    from a forward over each document from zeros (the first from `state`); a window's
    gradient is the sum over samples and over the pieces of documents inside the window."""
    w = (sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
    fwd_fn = ops.lstm_forward if kind == "lstm" else ops.gru_forward
    bwd_fn = ops.lstm_backward if kind == "lstm" else ops.gru_backward
    Tn, Bn = resets.shape
    st = as_tuple(state)
    nst = len(st)

    def bounds(j):  # document starts of sample j, and T
        return sorted({0, Tn} | {int(t) for t in np.flatnonzero(resets[:, j])})

    # states[j][t] = state of sample j after t steps (before a reset at t)
    states = []
    for j in range(Bn):
        sj = [np.empty((Tn + 1, 1, H), x.dtype) for _ in range(nst)]
        for k in range(nst):
            sj[k][0] = st[k][0, j]
        for d0, d1 in zip(bounds(j)[:-1], bounds(j)[1:]):
            init = [np.zeros((1, H), x.dtype) if resets[d0, j] else sj[k][d0] for k in range(nst)]
            f = fwd_fn(x[d0:d1, j : j + 1], *w, *init)
            sj[0][d0 + 1 : d1 + 1] = f.cache.h[1:]
            if kind == "lstm":
                sj[1][d0 + 1 : d1 + 1] = f.cache.c[1:]
        states.append(sj)

    out = []
    for a, b in chunks:
        s = max(0, a - (k2 - k1))
        loss = 0.0
        dx = np.zeros((b - s, Bn, x.shape[2]), x.dtype)
        grads = {n: np.zeros_like(p) for n, p in sd.items()}
        for j in range(Bn):
            cuts = sorted({s, b} | {t for t in bounds(j) if s < t < b})
            for p, q in zip(cuts[:-1], cuts[1:]):
                init = [
                    np.zeros((1, H), x.dtype) if resets[p, j] else states[j][k][p]
                    for k in range(nst)
                ]
                f = fwd_fn(x[p:q, j : j + 1], *w, *init)
                dy = np.zeros_like(f.y)
                lo = max(a, p)
                if lo < q:
                    piece_loss, dy[lo - p :] = loss_fn(f.y[lo - p :], tgt[lo:q, j : j + 1])
                    loss += piece_loss
                g = bwd_fn(f.cache, dy)
                dx[p - s : q - s, j : j + 1] = g.dx
                for n, d in zip(
                    ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
                    [g.dw_ih, g.dw_hh, g.db_ih, g.db_hh],
                ):
                    grads[n] += d
        state_b = [np.stack([states[j][k][b, 0] for j in range(Bn)]) for k in range(nst)]
        out.append(
            dict(start=s, stop=b, loss_start=a, loss=loss, dx=dx, grads=grads, state=state_b)
        )
    return out


def make_resets(T, B):
    r = np.zeros((T, B), bool)
    r[0, 1] = True  # sample 1 starts fresh (its given state is dropped)
    r[[3, 4, 9], 0] = True  # short documents, one of length 1
    r[[6, 12], 2] = True
    return r


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k1,k2", [(T, T), (4, 4), (3, 7)])
def test_resets_equal_separate_documents(kind, dtype, backend, k1, k2):
    model = make_model(kind, I, H, dtype=dtype, backend=backend)
    x, tgt, V = make_data(T, B, I, H, C, dtype)
    s0 = init_state(kind, B, H, dtype)
    resets = make_resets(T, B)
    loss_fn = mse_loss(V, reduction="sum")  # a sum splits exactly over documents
    got = collect(
        rnnkit.tbptt(model, x, tgt, loss_fn, k1=k1, k2=k2, state=s0, resets=resets), model
    )
    want = numpy_documents(
        kind,
        backend_module(backend),
        model.state_dict(),
        x,
        tgt,
        loss_fn,
        resets,
        chunks_of(T, k1),
        k1,
        k2,
        s0,
    )
    for (w, _grads), e in zip(got, want):
        e["y"] = w.y  # the per-document run does not assemble y; state and dx cover it
    assert_windows(got, want, dtype)


def test_reset_drops_nan_state():
    # A reset must replace the state, not scale it: NaN * 0 would leak the NaN on.
    model = make_model("lstm", I, H, dtype=np.float64, backend="native")
    x, tgt, V = make_data(6, B, I, H, C, np.float64)
    h, c = init_state("lstm", B, H, np.float64)
    h[0, 1] = np.nan
    resets = np.zeros((6, B), bool)
    resets[0, 1] = True
    (w,) = rnnkit.tbptt(model, x, tgt, mse_loss(V), k1=6, state=(h, c), resets=resets)
    assert np.isfinite(w.y[:, 1]).all() and np.isfinite(w.dx[:, 1]).all()


# ---------------------------------------------------------------- (d) the streaming class


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_class_equals_generator(kind, backend):
    x, tgt, V = make_data(T, B, I, H, C, np.float64)
    resets = make_resets(T, B)
    s0 = init_state(kind, B, H, np.float64)
    model = make_model(kind, I, H, dtype=np.float64, backend=backend)
    gen = collect(
        rnnkit.tbptt(model, x, tgt, mse_loss(V), k1=3, k2=7, state=s0, resets=resets), model
    )
    tb = rnnkit.TBPTT(model, mse_loss(V), k1=3, k2=7, state=s0)
    cls = collect((tb.step(x[a:b], tgt[a:b], resets[a:b]) for a, b in chunks_of(T, 3)), model)
    for (wg, gg), (wc, gc) in zip(gen, cls):
        assert (wg.start, wg.stop, wg.loss_start, wg.loss) == (
            wc.start,
            wc.stop,
            wc.loss_start,
            wc.loss,
        )
        for a, b in [
            (wg.dx, wc.dx),
            (wg.y, wc.y),
            *zip(as_tuple(wg.state), as_tuple(wc.state)),
            *((gg[n], gc[n]) for n in gg),
        ]:
            np.testing.assert_array_equal(a, b)
    assert len(gen) == len(cls) == 5
    np.testing.assert_array_equal(as_tuple(tb.state)[0], as_tuple(gen[-1][0].state)[0])
    assert tb.position == T


@pytest.mark.parametrize("kind", KINDS)
def test_class_uneven_chunks_and_reset_state(kind):
    # Chunks of 1 to k1 steps: each window still reaches k2 - k1 steps back.
    x, tgt, V = make_data(T, B, I, H, C, np.float64)
    model = make_model(kind, I, H, dtype=np.float64, backend="reference")
    chunks = [(0, 2), (2, 6), (6, 7), (7, 11), (11, 13)]
    tb = rnnkit.TBPTT(model, mse_loss(V), k1=4, k2=6)
    for _ in range(2):  # the second pass starts over after reset_state()
        got = collect((tb.step(x[a:b], tgt[a:b]) for a, b in chunks), model)
        want = numpy_windows(
            kind, rnnkit.reference, model.state_dict(), x, tgt, mse_loss(V), chunks, 4, 6, None
        )
        assert_windows(got, want, np.float64)
        tb.reset_state()
        assert tb.state is None and tb.position == 0


# ---------------------------------------------------------------- (e) memory is O(k2)


def stored_bytes(obj):
    """Bytes of every array the runner holds (its own attributes, states included), counting
    the whole buffer a view keeps alive."""
    total = 0
    stack = [v for k, v in vars(obj).items() if k not in ("model", "loss_fn")]
    while stack:
        v = stack.pop()
        if isinstance(v, (tuple, list)):
            stack.extend(v)
        elif isinstance(v, np.ndarray):
            while isinstance(v.base, np.ndarray):
                v = v.base
            total += v.nbytes
    return total


def test_memory_bounded_by_k2():
    k1, k2, Bm, Im = 3, 8, 2, 16
    model = make_model("lstm", Im, H, dtype=np.float64, backend="native")
    rng = np.random.default_rng(0)
    V = rng.standard_normal((H, C))
    tb = rnnkit.TBPTT(model, mse_loss(V), k1=k1, k2=k2)
    sizes = []
    for i in range(60):
        # Each chunk is a view of a large array: storing a view would pin all of it.
        big = rng.standard_normal((100, Bm, Im))
        r = np.zeros((100, Bm), bool)
        r[1, 0] = i % 3 == 0
        w = tb.step(big[:k1], rng.standard_normal((k1, Bm, C)), r[:k1])
        assert w.stop - w.start <= k2 and w.dx.shape[0] <= k2
        sizes.append(stored_bytes(tb))
    assert tb._ctx_x.shape == (k2 - k1, Bm, Im)
    state_bytes = 2 * 2 * Bm * H * 8  # (h, c) carried and at the context start
    bound = (k2 - k1) * Bm * (Im * 8 + 1) + state_bytes
    assert max(sizes) <= bound, (max(sizes), bound)
    assert sizes[-1] == sizes[10]  # flat, not growing with the stream


# ---------------------------------------------------------------- (f) errors


def test_errors():
    model = make_model("lstm", I, H, dtype=np.float64, backend="reference")
    x, tgt, V = make_data(T, B, I, H, C, np.float64)
    loss_fn = mse_loss(V)
    with pytest.raises(ValueError, match=r"k2: expected an integer >= k1 \(4\), got 3"):
        rnnkit.tbptt(model, x, tgt, loss_fn, k1=4, k2=3)
    with pytest.raises(ValueError, match=r"k1: expected an integer >= 1, got 0"):
        rnnkit.tbptt(model, x, tgt, loss_fn, k1=0)
    with pytest.raises(ValueError, match=r"k1: expected an integer >= 1, got -2"):
        rnnkit.TBPTT(model, loss_fn, k1=-2)
    with pytest.raises(TypeError, match=r"k1: expected an integer, got float"):
        rnnkit.TBPTT(model, loss_fn, k1=2.0)
    with pytest.raises(
        ValueError,
        match=r"targets: expected 13 steps along axis 0 \(as x\), "
        r"got shape \(12, 3, 2\)",
    ):
        rnnkit.tbptt(model, x, tgt[:12], loss_fn, k1=4)
    with pytest.raises(ValueError, match=r"resets: expected shape \(13, 3\) \[T, B\]"):
        rnnkit.tbptt(model, x, tgt, loss_fn, k1=4, resets=np.zeros((3, 13), bool))
    with pytest.raises(TypeError, match=r"resets: expected a bool array"):
        rnnkit.tbptt(model, x, tgt, loss_fn, k1=4, resets=np.zeros((13, 3)))
    with pytest.raises(ValueError, match=r"x: expected an array \[T, B, \.\.\.\], got shape"):
        rnnkit.tbptt(model, x[:, 0, 0], tgt, loss_fn, k1=4)
    tb = rnnkit.TBPTT(model, loss_fn, k1=4, k2=6)
    with pytest.raises(
        ValueError,
        match=r"x_chunk: expected 1 to k1=4 steps along axis 0, "
        r"got 5",
    ):
        tb.step(x[:5], tgt[:5])
    with pytest.raises(ValueError, match=r"targets_chunk: expected 3 steps along axis 0"):
        tb.step(x[:3], tgt[:2])
    assert tb.position == 0 and tb.state is None  # a rejected chunk changes nothing
    bad = rnnkit.TBPTT(model, lambda y, t: (0.0, y[:1]), k1=4)
    with pytest.raises(
        ValueError,
        match=r"loss_fn: expected dy of shape \(3, 3, 5\) "
        r"\(that of y\), got \(1, 3, 5\)",
    ):
        bad.step(x[:3], tgt[:3])
    assert bad.position == 0 and bad.state is None


def test_an_unstarted_tbptt_warns_instead_of_doing_nothing_silently():
    import gc

    model = make_model("gru", 2, 3, dtype=np.float64, backend="native")
    x = np.zeros((4, 1, 2))
    with pytest.warns(RuntimeWarning, match="never iterated"):
        rnnkit.tbptt(model, x, None, lambda y, t: (0.0, np.zeros_like(y)), k1=2)
        gc.collect()
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        it = rnnkit.tbptt(model, x, None, lambda y, t: (0.0, np.zeros_like(y)), k1=2)
        assert len(list(it)) == 2
        del it
        gc.collect()
    assert not [w for w in caught if "never iterated" in str(w.message)]
