"""Both backends against torch.nn.RNN / LSTM / GRU autograd: outputs, final states and every
gradient (inputs, initial states, weights, biases, projection). Variable lengths go through
pack_padded_sequence(enforce_sorted=False); reverse is compared with the reverse half of a
bidirectional PyTorch layer. Skipped when torch is not installed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

CASES = [  # cell, options, T, B, I, H, P
    ("rnn", {"nonlinearity": "tanh"}, 5, 3, 4, 6, 0),
    ("rnn", {"nonlinearity": "relu"}, 6, 2, 7, 5, 0),
    ("lstm", {}, 5, 3, 4, 6, 0),
    ("lstm", {}, 7, 4, 17, 33, 0),
    ("lstm", {}, 5, 3, 4, 6, 4),  # projection
    ("gru", {}, 5, 3, 4, 6, 0),
    ("gru", {}, 8, 5, 9, 17, 0),
]
CASE_IDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_odd", "lstm_proj", "gru", "gru_odd"]
LAYOUTS = {
    "plain": (None, False),
    "lengths": ("lengths", False),
    "reverse": (None, True),
    "lengths_reverse": ("lengths", True),
}


def run_torch(cell, opts, x, w, h0, c0, lengths, reverse, seeds, P):
    T, B, I = x.shape
    H = w["w_ih"].shape[0] // {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    dt = torch.float64 if x.dtype == np.float64 else torch.float32
    kw = {"nonlinearity": opts["nonlinearity"]} if cell == "rnn" else {}
    if P:
        kw["proj_size"] = P
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    mod = cls(I, H, bidirectional=reverse, dtype=dt, **kw)
    sfx = "_reverse" if reverse else ""
    names = {
        "w_ih": "weight_ih_l0",
        "w_hh": "weight_hh_l0",
        "b_ih": "bias_ih_l0",
        "b_hh": "bias_hh_l0",
        "w_proj": "weight_hr_l0",
    }
    with torch.no_grad():
        for k, v in w.items():
            getattr(mod, names[k] + sfx).copy_(torch.from_numpy(v))
    nd = 2 if reverse else 1
    Pd = P or H
    xt = torch.from_numpy(x).requires_grad_(True)
    h0t = torch.zeros(nd, B, Pd, dtype=dt)
    h0t[nd - 1] = torch.from_numpy(h0)
    h0t.requires_grad_(True)
    c0t = torch.zeros(nd, B, H, dtype=dt)
    if cell == "lstm":
        c0t[nd - 1] = torch.from_numpy(c0)
    c0t.requires_grad_(True)
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.from_numpy(lengths), enforce_sorted=False
        )
    out, state = mod(inp, (h0t, c0t) if cell == "lstm" else h0t)
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    y = out[..., Pd:] if reverse else out
    h_n = (state[0] if cell == "lstm" else state)[nd - 1]
    loss = (y * torch.from_numpy(seeds["dy"])).sum() + (h_n * torch.from_numpy(seeds["dh_n"])).sum()
    if cell == "lstm":
        c_n = state[1][nd - 1]
        loss = loss + (c_n * torch.from_numpy(seeds["dc_n"])).sum()
    loss.backward()
    res = {
        "y": y.detach().numpy(),
        "h_n": h_n.detach().numpy(),
        "dx": xt.grad.numpy(),
        "dh0": h0t.grad[nd - 1].numpy(),
    }
    if cell == "lstm":
        res["c_n"] = c_n.detach().numpy()
        res["dc0"] = c0t.grad[nd - 1].numpy()
    for k in w:
        res["d" + k] = getattr(mod, names[k] + sfx).grad.numpy()
    return res


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_matches_pytorch(backend, case, layout, dtype):
    cell, opts, T, B, I, H, P = case
    use_lengths, reverse = LAYOUTS[layout]
    rng = np.random.default_rng(T * 100 + B)
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    Pd = P or H
    r = lambda *s: (rng.standard_normal(s) * 0.4).astype(dtype)  # noqa: E731
    x = r(T, B, I)
    w = {"w_ih": r(G * H, I), "w_hh": r(G * H, Pd), "b_ih": r(G * H), "b_hh": r(G * H)}
    if P:
        w["w_proj"] = r(P, H)
    h0, c0 = r(B, Pd), r(B, H)
    lengths = None
    if use_lengths:
        lengths = rng.integers(1, T + 1, size=B).astype(np.int64)  # torch needs lengths >= 1
        lengths[0] = T
    seeds = {"dy": r(T, B, Pd), "dh_n": r(B, Pd)}
    if cell == "lstm":
        seeds["dc_n"] = r(B, H)
    expected = run_torch(cell, opts, x, w, h0, c0, lengths, reverse, seeds, P)

    fwd = getattr(backend, f"{cell}_forward")
    kw = {"lengths": lengths, "reverse": reverse}
    if cell == "rnn":
        kw["nonlinearity"] = opts["nonlinearity"]
    if cell == "lstm":
        out = fwd(
            x, w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"], h0, c0, w_proj=w.get("w_proj"), **kw
        )
    else:
        out = fwd(x, w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"], h0, **kw)
    g = getattr(backend, f"{cell}_backward")(out.cache, **seeds)
    got = {
        "y": out.y,
        "h_n": out.h_n,
        "dx": g.dx,
        "dh0": g.dh0,
        "dw_ih": g.dw_ih,
        "dw_hh": g.dw_hh,
        "db_ih": g.db_ih,
        "db_hh": g.db_hh,
    }
    if cell == "lstm":
        got.update(c_n=out.c_n, dc0=g.dc0)
        if P:
            got["dw_proj"] = g.dw_proj
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert set(got) == set(expected)
    for k, e in expected.items():
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(got[k], e, rtol=tol, atol=tol * scale, err_msg=k)


def random_case(i):
    rng = np.random.default_rng(500 + i)
    cell = ["rnn", "lstm", "gru"][i % 3]
    H = int(rng.integers(1, 40))
    P = int(rng.integers(1, H + 1)) if cell == "lstm" and H > 1 and rng.integers(2) else 0
    P = P if P < H else 0  # torch requires proj_size < hidden_size
    opts = {"nonlinearity": ["tanh", "relu"][int(rng.integers(2))]} if cell == "rnn" else {}
    return (
        (
            cell,
            opts,
            int(rng.integers(1, 12)),
            int(rng.integers(1, 9)),
            int(rng.integers(1, 40)),
            H,
            P,
        ),
        list(LAYOUTS)[int(rng.integers(4))],
        [np.float64, np.float32][int(rng.integers(2))],
    )


RANDOM_CASES = [random_case(i) for i in range(40)]


@pytest.mark.parametrize(
    "i",
    range(len(RANDOM_CASES)),
    ids=[
        f"{i}:{c[0][0]}-T{c[0][2]}B{c[0][3]}I{c[0][4]}H{c[0][5]}P{c[0][6]}-{c[1]}-"
        f"{np.dtype(c[2]).name}"
        for i, c in enumerate(RANDOM_CASES)
    ],
)
def test_random_configurations_match_pytorch(backend, i):
    case, layout, dtype = RANDOM_CASES[i]
    test_matches_pytorch(backend, case, layout, dtype)
