"""What the options of API.md section 11 mean, checked on the reference against independent
computations: layer norm as torch.nn.functional.layer_norm, zoneout's limits, recurrent
masks of ones, resets as separate runs, masks indexed in x's time order."""

import numpy as np
import pytest

import rnnkit.reference as ref

T, B, I, H = 5, 3, 4, 6
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def args(cell, seed=0, lbr=True):
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    kw = {
        "x": rng.standard_normal((T, B, I)),
        "w_ih": rng.standard_normal((G * H, I)) * 0.5,
        "w_hh": rng.standard_normal((G * H, H)) * 0.4,
        "b_ih": rng.standard_normal(G * H) * 0.3,
        "b_hh": rng.standard_normal(G * H) * 0.3,
        "h0": rng.standard_normal((B, H)) * 0.5,
    }
    if cell == "lstm":
        kw["c0"] = rng.standard_normal((B, H)) * 0.5
    if cell == "gru":
        kw["linear_before_reset"] = lbr
    return kw


def run(cell, **kw):
    return getattr(ref, f"{cell}_forward")(**kw)


def grads(cell, out, seed=1):
    rng = np.random.default_rng(seed)
    seeds = {"dy": rng.standard_normal(out.y.shape), "dh_n": rng.standard_normal(out.h_n.shape)}
    if cell == "lstm":
        seeds["dc_n"] = rng.standard_normal(out.c_n.shape)
    return getattr(ref, f"{cell}_backward")(out.cache, **seeds), seeds


CELL_LBR = [("rnn", True), ("lstm", True), ("gru", True), ("gru", False)]
IDS = ["rnn", "lstm", "gru", "gru_textbook"]


@pytest.mark.parametrize("cell,lbr", CELL_LBR, ids=IDS)
def test_layer_norm_step_matches_torch(cell, lbr):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    kw = args(cell, lbr=lbr)
    G = GATES[cell]
    rng = np.random.default_rng(3)
    ln_ih = np.stack([1 + 0.3 * rng.standard_normal(G * H), 0.2 * rng.standard_normal(G * H)])
    ln_hh = np.stack([1 + 0.3 * rng.standard_normal(G * H), 0.2 * rng.standard_normal(G * H)])
    opts = {"ln_ih": ln_ih, "ln_hh": ln_hh}
    if cell == "lstm":
        opts["ln_c"] = np.stack([1 + 0.3 * rng.standard_normal(H), 0.2 * rng.standard_normal(H)])
    out = run(cell, **kw, **opts)
    t = {k: torch.from_numpy(v) for k, v in {**kw, **opts}.items() if isinstance(v, np.ndarray)}

    def ln(a, p, cols=slice(None)):
        return F.layer_norm(a, (a.shape[-1],), p[0, cols], p[1, cols], eps=1e-5)

    h, c = t["h0"], t.get("c0")
    for k in range(T):
        ax = ln(t["x"][k] @ t["w_ih"].T, t["ln_ih"]) + t["b_ih"]
        if cell == "rnn":
            h = torch.tanh(ax + ln(h @ t["w_hh"].T, t["ln_hh"]) + t["b_hh"])
        elif cell == "lstm":
            a = ax + ln(h @ t["w_hh"].T, t["ln_hh"]) + t["b_hh"]
            i, f, g, o = a.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(ln(c, t["ln_c"]))
        elif lbr:
            ah = ln(h @ t["w_hh"].T, t["ln_hh"]) + t["b_hh"]
            r = torch.sigmoid(ax[:, :H] + ah[:, :H])
            z = torch.sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
            n = torch.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
            h = (1 - z) * n + z * h
        else:
            ah = ln(h @ t["w_hh"][: 2 * H].T, t["ln_hh"], slice(0, 2 * H)) + t["b_hh"][: 2 * H]
            r = torch.sigmoid(ax[:, :H] + ah[:, :H])
            z = torch.sigmoid(ax[:, H : 2 * H] + ah[:, H:])
            hn = ln((r * h) @ t["w_hh"][2 * H :].T, t["ln_hh"], slice(2 * H, 3 * H))
            n = torch.tanh(ax[:, 2 * H :] + hn + t["b_hh"][2 * H :])
            h = (1 - z) * n + z * h
        np.testing.assert_allclose(out.y[k], h.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell,lbr", CELL_LBR, ids=IDS)
def test_neutral_options_change_nothing(cell, lbr):
    """Zoneout 0 and a recurrent mask of ones give the plain cell's results bit for bit."""
    kw = args(cell, lbr=lbr)
    plain = run(cell, **kw)
    opts = {
        "zoneout": np.zeros((T, B, H)),
        "recurrent_mask": np.ones((B, H)),
        "resets": np.zeros((T, B), bool),
    }
    if cell == "lstm":
        opts["zoneout_c"] = np.zeros((T, B, H))
    out = run(cell, **kw, **opts)
    np.testing.assert_array_equal(out.y, plain.y)
    g_plain, seeds = grads(cell, plain)
    g = getattr(ref, f"{cell}_backward")(out.cache, **seeds)
    for a, e in zip(g, g_plain):
        if e is not None:
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("cell,lbr", CELL_LBR, ids=IDS)
def test_zoneout_one_keeps_the_state(cell, lbr):
    kw = args(cell, lbr=lbr)
    opts = {"zoneout": np.ones((T, B, H))}
    if cell == "lstm":
        opts["zoneout_c"] = np.ones((T, B, H))
    out = run(cell, **kw, **opts)
    np.testing.assert_array_equal(out.y, np.broadcast_to(kw["h0"], (T, B, H)))
    if cell == "lstm":
        np.testing.assert_array_equal(out.c_n, kw["c0"])
    g, seeds = grads(cell, out)
    assert not g.dx.any() and not g.dw_hh.any()
    np.testing.assert_allclose(g.dh0, seeds["dh_n"] + seeds["dy"].sum(axis=0))


@pytest.mark.parametrize("cell,lbr", CELL_LBR, ids=IDS)
def test_zero_recurrent_mask_is_no_recurrent_weights(cell, lbr):
    kw = args(cell, lbr=lbr)
    out = run(cell, **kw, recurrent_mask=np.zeros((B, H)))
    want = run(cell, **dict(kw, w_hh=np.zeros_like(kw["w_hh"])))
    np.testing.assert_allclose(out.y, want.y, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("cell,lbr", CELL_LBR, ids=IDS)
def test_resets_are_separate_runs(cell, lbr):
    """A reset of every row at step s: the two halves are independent runs, the second from
    zeros, and no gradient crosses (dx of the first half sees only its own outputs)."""
    s = 2
    kw = args(cell, lbr=lbr)
    resets = np.zeros((T, B), bool)
    resets[s] = True
    out = run(cell, **kw, resets=resets)
    first = run(cell, **dict(kw, x=kw["x"][:s]))
    zeros = {"h0": np.zeros((B, H))} | ({"c0": np.zeros((B, H))} if cell == "lstm" else {})
    second = run(cell, **dict(kw, x=kw["x"][s:], **zeros))
    np.testing.assert_allclose(out.y, np.concatenate([first.y, second.y]), rtol=1e-13, atol=1e-14)
    g, seeds = grads(cell, out)
    g1 = getattr(ref, f"{cell}_backward")(first.cache, dy=seeds["dy"][:s])
    g2 = getattr(ref, f"{cell}_backward")(
        second.cache,
        dy=seeds["dy"][s:],
        dh_n=seeds["dh_n"],
        **({"dc_n": seeds["dc_n"]} if cell == "lstm" else {}),
    )
    np.testing.assert_allclose(g.dx, np.concatenate([g1.dx, g2.dx]), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(g.dh0, g1.dh0, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(g.dw_hh, g1.dw_hh + g2.dw_hh, rtol=1e-12, atol=1e-13)


def test_one_row_reset_leaves_the_others():
    kw = args("lstm")
    resets = np.zeros((T, B), bool)
    resets[3, 1] = True
    out = run("lstm", **kw, resets=resets)
    plain = run("lstm", **kw)
    np.testing.assert_array_equal(out.y[:, [0, 2]], plain.y[:, [0, 2]])
    np.testing.assert_array_equal(out.y[:3, 1], plain.y[:3, 1])
    assert not np.allclose(out.y[3:, 1], plain.y[3:, 1])


@pytest.mark.parametrize("reverse", [False, True])
def test_masks_follow_x_time_and_ignore_the_padding(reverse):
    """zoneout[t, b] applies at the step reading x[t, b]: with lengths and reverse, moving
    the rows of a sequence the way its x moves moves nothing else, and the padding
    (t >= lengths[b]) is ignored."""
    kw = args("gru")
    lengths = np.array([5, 3, 0])
    rng = np.random.default_rng(4)
    z = rng.uniform(0, 1, (T, B, H))
    out = run("gru", **kw, lengths=lengths, reverse=reverse, zoneout=z)
    z2 = z.copy()
    z2[3:, 1] = 1.0
    z2[:, 2] = 0.5
    again = run("gru", **kw, lengths=lengths, reverse=reverse, zoneout=z2)
    np.testing.assert_array_equal(out.y, again.y)
    # the row-1 sequence alone, as a batch of one with T = 3, sees z[:3, 1]
    one = run(
        "gru", **dict(kw, x=kw["x"][:3, 1:2], h0=kw["h0"][1:2]), reverse=reverse, zoneout=z[:3, 1:2]
    )
    np.testing.assert_allclose(out.y[:3, 1:2], one.y, rtol=1e-14)
