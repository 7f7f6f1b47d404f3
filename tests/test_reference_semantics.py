"""What the NumPy reference computes, checked against independent statements of the spec:

- the cell equations of API.md written out again, gate by gate, for every cell and option
  (gate order, peephole placement, the ONNX clip, CIFG, both GRU reset placements, the
  cache fields gates / hn / clip_mask);
- variable lengths: padding, frozen states, h_n; each sequence run on its own (reverse ==
  running the sequence flipped within its length);
- chunked runs with carried state == one run, forward and backward (chained dh0 -> dh_n);
- defaults (h0, c0, biases, dy, dh_n, dc_n), purity (backward twice, nothing mutated),
  T = 0 and B = 0, float32, and PyTorch autograd in float64 to 1e-10.
"""

import copy

import numpy as np
import pytest
from test_reference_gradcheck import CONFIGS, make

import rnnkit.reference as ref

CFG_IDS = [c[0] for c in CONFIGS]
ALL_LAYOUTS = [(None, False), (None, True), ([7, 0, 3, 1], False), ([2, 7, 0, 5], True)]
LAYOUT_IDS = ["plain", "reverse", "lengths", "lengths_reverse"]


def run(cell, kw, seeds=None):
    """Forward, and backward when seeds are given."""
    out = getattr(ref, f"{cell}_forward")(**kw)
    if seeds is None:
        return out, None
    return out, getattr(ref, f"{cell}_backward")(out.cache, **seeds)


def problem(cfg, T=7, B=4, I=3, H=4, P=3, lengths=None, reverse=False, biases=True, seed=5):
    _, cell, opts = cfg
    kw, seeds = make(cell, opts, T, B, I, H, P, lengths, reverse, biases, seed)
    return cell, kw, seeds


def states(out):
    """The final state(s) of an output, as a list to feed as the next h0 (, c0)."""
    return [out.h_n, out.c_n] if hasattr(out, "c_n") else [out.h_n]


def assert_same(a, b, what="", exact=False, tol=1e-12):
    """Two results field by field (NamedTuples, tuples, arrays, None, plain values)."""
    if isinstance(a, tuple):
        assert type(a) is type(b) and len(a) == len(b), what
        names = getattr(a, "_fields", range(len(a)))
        for name, u, v in zip(names, a, b):
            assert_same(u, v, f"{what}.{name}", exact, tol)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype, what
        if exact or a.dtype.kind != "f":
            np.testing.assert_array_equal(a, b, err_msg=what)
        else:
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=what)
    else:
        assert a == b, f"{what}: {a!r} != {b!r}"


# --- the equations, written out again --------------------------------------------------------


def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def clipped(v, clip):
    return v if clip is None else np.minimum(np.maximum(v, -clip), clip)


def outside(v, clip):
    return np.zeros(v.shape, bool) if clip is None else (v < -clip) | (v > clip)


def equations(cell, kw):
    """All sequences run their full length forward. Returns a dict of what the cache and the
    output must hold, computed gate by gate from the equations of API.md section 2."""
    x, clip = kw["x"], kw.get("clip")
    T, B, _ = x.shape
    G = {"rnn": 1, "gru": 3, "lstm": 4, "mgu": 2}[cell]
    H = kw["w_hh"].shape[0] // G
    b_ih = kw["b_ih"] if kw["b_ih"] is not None else np.zeros(G * H)
    b_hh = kw["b_hh"] if kw["b_hh"] is not None else np.zeros(G * H)

    def rows(w, j):  # the rows of gate j (in gate order) of a stacked weight or bias
        return w[j * H : (j + 1) * H]

    def lin_x(j, t):  # x_t w_i?^T + b_i?
        return x[t] @ rows(kw["w_ih"], j).T + rows(b_ih, j)

    def lin_h(j, h):  # h w_h?^T + b_h?
        return h @ rows(kw["w_hh"], j).T + rows(b_hh, j)

    h = kw["h0"]
    c = kw.get("c0")
    res = {"h": [h], "c": [c], "gates": [], "mask": [], "hn": []}
    for t in range(T):
        if cell == "rnn":
            a = lin_x(0, t) + lin_h(0, h)
            h = (
                np.tanh(clipped(a, clip))
                if kw["nonlinearity"] == "tanh"
                else np.maximum(clipped(a, clip), 0.0)
            )
            res["gates"].append(h)
            res["mask"].append(outside(a, clip))
        elif cell == "lstm":
            p = kw.get("w_peep")
            p = np.zeros((3, H)) if p is None else p
            pre_i = lin_x(0, t) + lin_h(0, h) + p[0] * c
            pre_f = lin_x(1, t) + lin_h(1, h) + p[1] * c
            pre_g = lin_x(2, t) + lin_h(2, h)
            i = sig(clipped(pre_i, clip))
            f = 1.0 - i if kw["input_forget"] else sig(clipped(pre_f, clip))
            g = np.tanh(clipped(pre_g, clip))
            c = f * c + i * g
            pre_o = lin_x(3, t) + lin_h(3, h) + p[2] * c
            o = sig(clipped(pre_o, clip))
            m = o * np.tanh(c)
            h = m if kw.get("w_proj") is None else m @ kw["w_proj"].T
            res["gates"].append(np.concatenate([i, f, g, o], 1))
            mask_f = np.zeros_like(pre_f, bool) if kw["input_forget"] else outside(pre_f, clip)
            res["mask"].append(
                np.concatenate(
                    [outside(pre_i, clip), mask_f, outside(pre_g, clip), outside(pre_o, clip)], 1
                )
            )
        elif cell == "mgu":  # API.md section 12
            pre_f = lin_x(0, t) + lin_h(0, h)
            f = sig(clipped(pre_f, clip))
            pre_n = lin_x(1, t) + (f * h) @ rows(kw["w_hh"], 1).T + rows(b_hh, 1)
            n = np.tanh(clipped(pre_n, clip))
            h = (1.0 - f) * h + f * n
            res["gates"].append(np.concatenate([f, n], 1))
            res["mask"].append(np.concatenate([outside(pre_f, clip), outside(pre_n, clip)], 1))
        else:
            pre_r = lin_x(0, t) + lin_h(0, h)
            pre_z = lin_x(1, t) + lin_h(1, h)
            r = sig(clipped(pre_r, clip))
            z = sig(clipped(pre_z, clip))
            if kw["linear_before_reset"]:
                hn = lin_h(2, h)
                pre_n = lin_x(2, t) + r * hn
            else:
                hn = (r * h) @ rows(kw["w_hh"], 2).T + rows(b_hh, 2)
                pre_n = lin_x(2, t) + hn
            n = np.tanh(clipped(pre_n, clip))
            h = (1.0 - z) * n + z * h
            res["gates"].append(np.concatenate([r, z, n], 1))
            res["mask"].append(
                np.concatenate(
                    [outside(pre_r, clip), outside(pre_z, clip), outside(pre_n, clip)], 1
                )
            )
            res["hn"].append(hn)
        res["h"].append(h)
        res["c"].append(c)
    return res


@pytest.mark.parametrize("biases", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_forward_follows_the_equations(cfg, biases):
    cell, kw, _ = problem(cfg, T=5, B=3, biases=biases)
    out, _ = run(cell, kw)
    want = equations(cell, kw)
    C = out.cache
    tol = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(C.h, np.stack(want["h"]), **tol)
    np.testing.assert_allclose(out.y, np.stack(want["h"][1:]), **tol)
    np.testing.assert_allclose(out.h_n, want["h"][-1], **tol)
    np.testing.assert_allclose(C.gates, np.stack(want["gates"]), **tol)
    if cell == "lstm":
        np.testing.assert_allclose(C.c, np.stack(want["c"]), **tol)
        np.testing.assert_allclose(out.c_n, want["c"][-1], **tol)
    if cell == "gru":
        np.testing.assert_allclose(C.hn, np.stack(want["hn"]), **tol)
    if "clip" in cfg[2]:
        np.testing.assert_array_equal(C.clip_mask, np.stack(want["mask"]))
        assert C.clip_mask.any() and not C.clip_mask.all()
    else:
        assert C.clip_mask is None and C.clip is None


@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_cache_holds_the_arguments(cfg):
    cell, kw, _ = problem(cfg, lengths=[7, 0, 3, 1], reverse=True)
    out, _ = run(cell, kw)
    C = out.cache
    for name in ("x", "w_ih", "w_hh", "b_ih", "b_hh", "w_peep", "w_proj"):
        if name in C._fields:
            assert_same(getattr(C, name), kw.get(name), name, exact=True)
    assert C.lengths.dtype == np.int64 and C.lengths.tolist() == [7, 0, 3, 1]
    assert C.reverse is True and C.clip == cfg[2].get("clip")
    if cell == "lstm":
        assert C.input_forget is kw["input_forget"]
    if cell == "gru":
        assert C.linear_before_reset is kw["linear_before_reset"]
    if cell == "rnn":
        assert C.nonlinearity == kw["nonlinearity"]


# --- variable lengths and reverse ------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_padding_and_final_state(cfg, reverse):
    lengths = [7, 0, 3, 1]
    cell, kw, seeds = problem(cfg, lengths=lengths, reverse=reverse)
    out, g = run(cell, kw, seeds)
    C = out.cache
    for b, L in enumerate(lengths):
        np.testing.assert_array_equal(out.y[L:, b], 0)  # y = 0 past the end
        np.testing.assert_array_equal(g.dx[L:, b], 0)  # and no gradient reaches x there
        # the state after the last valid step: y at the last x row read (t = 0 in reverse)
        last = out.y[0 if reverse else L - 1, b] if L else kw["h0"][b]
        np.testing.assert_array_equal(out.h_n[b], last)
        for k in range(L, 7):  # frozen states; zero gates, hn and mask past the end
            np.testing.assert_array_equal(C.h[k + 1, b], C.h[L, b])
            np.testing.assert_array_equal(C.gates[k, b], 0)
            if cell == "lstm":
                np.testing.assert_array_equal(C.c[k + 1, b], C.c[L, b])
            if cell == "gru":
                np.testing.assert_array_equal(C.hn[k, b], 0)
            if C.clip_mask is not None:
                assert not C.clip_mask[k, b].any()
        if cell == "lstm":
            np.testing.assert_array_equal(out.c_n[b], C.c[L, b])
        if L:  # y stays aligned with x: y[t] is the state after reading x[t]
            order = np.arange(L)[::-1] if reverse else np.arange(L)
            np.testing.assert_array_equal(out.y[order, b], C.h[1 : L + 1, b])
    # sequence 1 has length 0: its gradients are the seeds, passed straight through
    np.testing.assert_array_equal(g.dh0[1], seeds["dh_n"][1])
    if cell == "lstm":
        np.testing.assert_array_equal(g.dc0[1], seeds["dc_n"][1])


def one_sequence(kw, b, L):
    """The arguments for running sequence b alone over its valid rows, forward; in reverse
    mode its rows are flipped within its length."""
    one = dict(kw, lengths=None, reverse=False)
    rows = np.arange(L)[::-1] if kw["reverse"] else np.arange(L)
    one["x"] = kw["x"][rows, b : b + 1]
    one["h0"] = kw["h0"][b : b + 1]
    if "c0" in kw:
        one["c0"] = kw["c0"][b : b + 1]
    return one, rows


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_lengths_equal_each_sequence_alone(cfg, reverse):
    """With lengths (and reverse), sequence b gives what running it alone gives, forward on
    x[:L_b, b] (flipped within its length in reverse); weight gradients add up over b."""
    lengths = [2, 7, 0, 5]
    cell, kw, seeds = problem(cfg, lengths=lengths, reverse=reverse)
    out, g = run(cell, kw, seeds)
    total = {
        k: np.zeros_like(v)
        for k, v in g._asdict().items()
        if k.startswith(("dw", "db")) and v is not None
    }
    for b, L in enumerate(lengths):
        one, rows = one_sequence(kw, b, L)
        one_seeds = {"dy": seeds["dy"][rows, b : b + 1], "dh_n": seeds["dh_n"][b : b + 1]}
        if cell == "lstm":
            one_seeds["dc_n"] = seeds["dc_n"][b : b + 1]
        o, gb = run(cell, one, one_seeds)
        np.testing.assert_allclose(out.y[rows, b], o.y[:, 0], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(out.h_n[b], o.h_n[0], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(out.cache.h[: L + 1, b], o.cache.h[:, 0], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(
            out.cache.gates[:L, b], o.cache.gates[:, 0], rtol=1e-13, atol=1e-13
        )
        if cell == "lstm":
            np.testing.assert_allclose(out.c_n[b], o.c_n[0], rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(g.dc0[b], gb.dc0[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g.dx[rows, b], gb.dx[:, 0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g.dh0[b], gb.dh0[0], rtol=1e-12, atol=1e-12)
        for k in total:
            total[k] += getattr(gb, k)
    for k, v in total.items():
        np.testing.assert_allclose(getattr(g, k), v, rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_full_lengths_equal_no_lengths(cfg, reverse):
    cell, kw, seeds = problem(cfg, reverse=reverse)
    a = run(cell, kw, seeds)
    b = run(cell, dict(kw, lengths=np.full(4, 7, np.int32)), seeds)
    assert_same(a[0]._replace(cache=None), b[0]._replace(cache=None), "out", exact=True)
    assert_same(
        a[0].cache._replace(lengths=None), b[0].cache._replace(lengths=None), "cache", exact=True
    )
    assert_same(a[1], b[1], "grads", exact=True)


@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_reverse_equals_flipped_time(cfg):
    """Without lengths, reverse=True is the forward run on x[::-1], with y flipped back."""
    cell, kw, seeds = problem(cfg, reverse=True)
    out, g = run(cell, kw, seeds)
    flipped, fg = run(
        cell, dict(kw, x=kw["x"][::-1], reverse=False), dict(seeds, dy=seeds["dy"][::-1])
    )
    np.testing.assert_allclose(out.y, flipped.y[::-1], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(out.cache.h, flipped.cache.h, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(g.dx, fg.dx[::-1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g.dw_hh, fg.dw_hh, rtol=1e-12, atol=1e-12)
    assert not np.allclose(out.y, run(cell, dict(kw, reverse=False))[0].y)  # reverse matters


# --- chunks with carried state ---------------------------------------------------------------

CHUNKS = [(0, 3), (3, 4), (4, 7)]


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_chunks_with_carried_state_equal_one_run(cfg, layout):
    """Forward over chunks, each starting from the previous chunk's final state, equals one
    run; backward over the chunks in reverse, each chunk's dh0 (dc0) fed as the dh_n (dc_n)
    of the chunk before it, equals the full backward. With reverse the chunks are processed
    last to first. A chunk's lengths are the full lengths clipped to the chunk."""
    lengths, reverse = layout
    cell, kw, seeds = problem(cfg, lengths=lengths, reverse=reverse)
    full, g = run(cell, kw, seeds)
    order = CHUNKS[::-1] if reverse else CHUNKS
    state = [kw["h0"], kw["c0"]] if cell == "lstm" else [kw["h0"]]
    outs = {}
    for t0, t1 in order:
        part = dict(kw, x=kw["x"][t0:t1], h0=state[0])
        if cell == "lstm":
            part["c0"] = state[1]
        if lengths is not None:
            part["lengths"] = np.clip(np.array(lengths) - t0, 0, t1 - t0)
        out, _ = run(cell, part)
        outs[t0] = out
        state = states(out)
    y = np.concatenate([outs[t0].y for t0, _ in CHUNKS])
    np.testing.assert_allclose(y, full.y, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(state[0], full.h_n, rtol=1e-13, atol=1e-13)
    if cell == "lstm":
        np.testing.assert_allclose(state[1], full.c_n, rtol=1e-13, atol=1e-13)

    d_state = {"dh_n": seeds["dh_n"]}
    if cell == "lstm":
        d_state["dc_n"] = seeds["dc_n"]
    dx = {}
    sums = {}
    for t0, t1 in order[::-1]:
        gc = getattr(ref, f"{cell}_backward")(outs[t0].cache, dy=seeds["dy"][t0:t1], **d_state)
        dx[t0] = gc.dx
        d_state = {"dh_n": gc.dh0}
        if cell == "lstm":
            d_state["dc_n"] = gc.dc0
        for k, v in gc._asdict().items():
            if k.startswith(("dw", "db")) and v is not None:
                sums[k] = sums.get(k, 0) + v
    np.testing.assert_allclose(
        np.concatenate([dx[t0] for t0, _ in CHUNKS]), g.dx, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(d_state["dh_n"], g.dh0, rtol=1e-12, atol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(d_state["dc_n"], g.dc0, rtol=1e-12, atol=1e-12)
    assert set(sums) == {
        k for k, v in g._asdict().items() if k.startswith(("dw", "db")) and v is not None
    }
    for k, v in sums.items():
        np.testing.assert_allclose(v, getattr(g, k), rtol=1e-12, atol=1e-12, err_msg=k)


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize("peep", [False, True], ids=["", "peep"])
def test_cifg_ignores_the_forget_rows(peep):
    """input_forget: f = 1 - i is stored in gates; the f rows of the weights and biases and
    p_f do not matter, and their gradients are exactly zero."""
    cfg = ("cifg", "lstm", {"input_forget": True, "peep": peep})
    cell, kw, seeds = problem(cfg, lengths=[7, 0, 3, 1])
    out, g = run(cell, kw, seeds)
    H = 4
    i, f = out.cache.gates[..., :H], out.cache.gates[..., H : 2 * H]
    valid = np.arange(7)[:, None] < np.array([7, 0, 3, 1])[None, :]
    np.testing.assert_array_equal(f[valid], 1 - i[valid])
    changed = dict(kw)
    for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
        changed[name] = kw[name].copy()
        changed[name][H : 2 * H] += 3.0
        np.testing.assert_array_equal(getattr(g, "d" + name)[H : 2 * H], 0)
    if peep:
        changed["w_peep"] = kw["w_peep"].copy()
        changed["w_peep"][1] += 3.0
        np.testing.assert_array_equal(g.dw_peep[1], 0)
        assert np.abs(g.dw_peep[[0, 2]]).min() > 0
    np.testing.assert_array_equal(run(cell, changed)[0].y, out.y)
    assert not np.array_equal(run(cell, dict(kw, input_forget=False))[0].y, out.y)


@pytest.mark.parametrize(
    "cfg", [c for c in CONFIGS if "clip" in c[2]], ids=[c[0] for c in CONFIGS if "clip" in c[2]]
)
def test_clip(cfg):
    """A clip no pre-activation reaches changes nothing (and masks nothing); the configured
    clip does change the results."""
    cell, kw, seeds = problem(cfg, lengths=[7, 0, 3, 1])
    clipped_out, clipped_g = run(cell, kw, seeds)
    wide, wide_g = run(cell, dict(kw, clip=1e6), seeds)
    plain, plain_g = run(cell, dict(kw, clip=None), seeds)
    assert not wide.cache.clip_mask.any()
    assert_same(wide._replace(cache=None), plain._replace(cache=None), exact=True)
    assert_same(wide_g, plain_g, exact=True)
    assert clipped_out.cache.clip_mask.any()
    assert not np.allclose(clipped_out.y, plain.y)
    # where everything is clipped, nothing flows back through the pre-activations
    tiny, tiny_g = run(cell, dict(kw, clip=1e-9), seeds)
    mask = tiny.cache.clip_mask[:, 0]  # sequence 0 runs all 7 steps
    if kw.get("input_forget"):  # f = 1 - i has no pre-activation of its own
        mask = np.delete(mask, np.s_[4:8], axis=1)
    assert mask.all()
    np.testing.assert_array_equal(tiny_g.dx, 0)
    np.testing.assert_array_equal(tiny_g.dw_ih, 0)


def test_clip_boundary_passes_the_gradient():
    """|pre| == clip is not clipped: the mask is strict, the gradient passes."""
    x = np.array([[[1.0]], [[0.0]]])  # T=2, B=1, I=1
    w_ih, w_hh = np.array([[0.5]]), np.array([[0.0]])
    out = ref.rnn_forward(x, w_ih, w_hh, clip=0.5)
    assert not out.cache.clip_mask.any()
    g = ref.rnn_backward(out.cache, dh_n=np.ones((1, 1)))  # h_n = tanh(0) from step 2
    np.testing.assert_allclose(g.dx[1], 0.5)
    out = ref.rnn_forward(x * 1.5, w_ih, w_hh, clip=0.5)  # pre = 0.75 > 0.5 at step 0
    np.testing.assert_array_equal(out.cache.clip_mask[:, 0, 0], [True, False])
    g = ref.rnn_backward(out.cache, dy=np.ones((2, 1, 1)))
    np.testing.assert_array_equal(g.dx[0], 0)
    np.testing.assert_allclose(out.y[0, 0, 0], np.tanh(0.5))


# --- defaults, purity, empty, float32 --------------------------------------------------------


@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_defaults(cfg):
    """Absent h0/c0, biases and output gradients are zeros; absent biases have None grads."""
    cell, kw, seeds = problem(cfg, lengths=[7, 0, 3, 1])
    zero_state = dict(kw, h0=np.zeros_like(kw["h0"]))
    no_state = dict(kw, h0=None)
    if cell == "lstm":
        zero_state["c0"] = np.zeros_like(kw["c0"])
        no_state["c0"] = None
    assert_same(run(cell, no_state, seeds), run(cell, zero_state, seeds), exact=True)

    G = {"rnn": 1, "gru": 3, "lstm": 4, "mgu": 2}[cell]
    zeros = dict(kw, b_ih=np.zeros(G * 4), b_hh=np.zeros(G * 4))
    none_out, none_g = run(cell, dict(kw, b_ih=None, b_hh=None), seeds)
    zero_out, zero_g = run(cell, zeros, seeds)
    np.testing.assert_array_equal(none_out.y, zero_out.y)
    assert none_g.db_ih is None and none_g.db_hh is None
    assert zero_g.db_ih is not None
    for name in none_g._fields:
        if getattr(none_g, name) is not None:
            np.testing.assert_array_equal(getattr(none_g, name), getattr(zero_g, name))
    half = dict(kw, b_hh=None)  # one bias alone
    assert run(cell, half, seeds)[1].db_hh is None
    assert run(cell, half, seeds)[1].db_ih is not None

    out, _ = run(cell, kw)
    bwd = getattr(ref, f"{cell}_backward")
    zero_seeds = {k: np.zeros_like(v) for k, v in seeds.items()}
    assert_same(bwd(out.cache), bwd(out.cache, **zero_seeds), exact=True)
    for k in seeds:  # each one alone defaults to zeros
        assert_same(
            bwd(out.cache, **{k: seeds[k]}),
            bwd(out.cache, **dict(zero_seeds, **{k: seeds[k]})),
            exact=True,
        )


@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_nothing_is_mutated_and_backward_repeats(cfg):
    cell, kw, seeds = problem(cfg, lengths=[7, 0, 3, 1], reverse=True)
    kw_before = copy.deepcopy(kw)
    seeds_before = copy.deepcopy(seeds)
    out, g1 = run(cell, kw, seeds)
    cache_before = copy.deepcopy(out.cache)
    g2 = getattr(ref, f"{cell}_backward")(out.cache, **seeds)
    assert_same(g1, g2, "twice", exact=True)
    assert_same(out.cache, cache_before, "cache", exact=True)
    for k in kw:
        assert_same(kw[k], kw_before[k], k, exact=True)
    for k in seeds:
        assert_same(seeds[k], seeds_before[k], k, exact=True)
    # outputs are not views of the cache or of each other
    out.h_n[...] = 99
    assert not (out.cache.h == 99).any()
    g1.dh0[...] = 99
    assert not (g2.dh0 == 99).any()
    kw["lengths"][0] = 1  # the cache keeps its own copy of lengths
    assert out.cache.lengths[0] == 7


@pytest.mark.parametrize("TB", [(0, 3), (4, 0), (0, 0)], ids=["T0", "B0", "T0B0"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_empty(cfg, TB):
    T, B = TB
    cell, kw, seeds = problem(cfg, T=T, B=B, lengths=[T] * B)
    for lengths in (None, kw["lengths"]):
        out, g = run(cell, dict(kw, lengths=lengths), seeds)
        P = kw["h0"].shape[1]
        assert out.y.shape == (T, B, P) and out.cache.h.shape == (T + 1, B, P)
        np.testing.assert_array_equal(out.h_n, kw["h0"])
        np.testing.assert_array_equal(g.dh0, seeds["dh_n"])
        if cell == "lstm":
            np.testing.assert_array_equal(out.c_n, kw["c0"])
            np.testing.assert_array_equal(g.dc0, seeds["dc_n"])
        assert g.dx.shape == kw["x"].shape
        for name in g._fields:
            v = getattr(g, name)
            if name not in ("dh0", "dc0") and v is not None:
                assert v.shape == kw[name[1:]].shape
                np.testing.assert_array_equal(v, 0)


def test_zero_sized_features():
    """I = 0 (no input: the recurrence alone) and H = 0 are valid, too."""
    rng = np.random.default_rng(0)
    w_hh = rng.standard_normal((12, 3))
    out = ref.lstm_forward(
        np.zeros((4, 2, 0)), np.zeros((12, 0)), w_hh, np.ones(12), h0=rng.standard_normal((2, 3))
    )
    g = ref.lstm_backward(out.cache, dh_n=np.ones((2, 3)))
    assert g.dx.shape == (4, 2, 0) and g.dw_ih.shape == (12, 0) and np.abs(g.dw_hh).max() > 0
    out = ref.gru_forward(rng.standard_normal((4, 2, 3)), np.zeros((0, 3)), np.zeros((0, 0)))
    g = ref.gru_backward(out.cache)
    assert out.y.shape == (4, 2, 0) and g.dx.shape == (4, 2, 3)
    np.testing.assert_array_equal(g.dx, 0)


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CFG_IDS)
def test_float32(cfg, layout):
    """float32 in, float32 out (every output, cache array and gradient), close to float64."""
    cell, kw, seeds = problem(cfg, lengths=layout[0], reverse=layout[1])
    out64, g64 = run(cell, kw, seeds)
    kw32 = {
        k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 else v
        for k, v in kw.items()
    }
    seeds32 = {k: v.astype(np.float32) for k, v in seeds.items()}
    out32, g32 = run(cell, kw32, seeds32)
    for name, a, b in [
        *zip(out32._fields[:-1], out32[:-1], out64[:-1]),
        *zip(out32.cache._fields, out32.cache, out64.cache),
        *zip(g32._fields, g32, g64),
    ]:
        if not isinstance(a, np.ndarray):
            assert a == b, name
            continue
        if b.dtype == np.float64:
            assert a.dtype == np.float32, name
            if name != "clip_mask":
                np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=name)
        else:
            assert a.dtype == b.dtype, name
    if out64.cache.clip_mask is not None:  # a float32 rounding may flip a mask bit, rarely
        assert (out32.cache.clip_mask != out64.cache.clip_mask).mean() < 0.02


# --- PyTorch ---------------------------------------------------------------------------------

TORCH_CASES = [  # cell, options, H, P (P = 0: no projection)
    ("rnn", {"nonlinearity": "tanh"}, 4, 0),
    ("rnn", {"nonlinearity": "relu"}, 5, 0),
    ("lstm", {}, 4, 0),
    ("lstm", {}, 5, 3),
    ("gru", {}, 4, 0),
]
TORCH_IDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"]
TORCH_LAYOUTS = [(None, False), (None, True), ([6, 2, 1, 5], False), ([3, 6, 1, 4], True)]


def torch_reference(torch, cell, opts, kw, seeds, P, reverse):
    """The same layer in PyTorch (float64): outputs and autograd gradients as a dict."""
    T, B, I = kw["x"].shape
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    H = kw["w_ih"].shape[0] // G
    bias = kw["b_ih"] is not None
    extra = {"nonlinearity": opts["nonlinearity"]} if cell == "rnn" else {}
    if P:
        extra["proj_size"] = P
    layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        I, H, bias=bias, bidirectional=reverse, dtype=torch.float64, **extra
    )
    sfx = "_reverse" if reverse else ""
    names = {
        "w_ih": "weight_ih_l0",
        "w_hh": "weight_hh_l0",
        "b_ih": "bias_ih_l0",
        "b_hh": "bias_hh_l0",
        "w_proj": "weight_hr_l0",
    }
    params = {k: getattr(layer, v + sfx) for k, v in names.items() if kw.get(k) is not None}
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(torch.from_numpy(kw[k]))
    D = 2 if reverse else 1  # the reverse direction is the last one
    x = torch.from_numpy(kw["x"]).requires_grad_()
    h0 = torch.zeros(D, B, P or H, dtype=torch.float64)
    h0[D - 1] = torch.from_numpy(kw["h0"])
    h0.requires_grad_()
    state = h0
    if cell == "lstm":
        c0 = torch.zeros(D, B, H, dtype=torch.float64)
        c0[D - 1] = torch.from_numpy(kw["c0"])
        c0.requires_grad_()
        state = (h0, c0)
    inp = x
    if kw["lengths"] is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.as_tensor(kw["lengths"]), enforce_sorted=False
        )
    y, final = layer(inp, state)
    if kw["lengths"] is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=T)
    y = y[..., (P or H) :] if reverse else y
    h_n = (final[0] if cell == "lstm" else final)[D - 1]
    L = (y * torch.from_numpy(seeds["dy"])).sum() + (h_n * torch.from_numpy(seeds["dh_n"])).sum()
    res = {"y": y, "h_n": h_n}
    if cell == "lstm":
        res["c_n"] = final[1][D - 1]
        L = L + (res["c_n"] * torch.from_numpy(seeds["dc_n"])).sum()
    L.backward()
    res = {k: v.detach().numpy() for k, v in res.items()}
    res["dx"] = x.grad.numpy()
    res["dh0"] = h0.grad[D - 1].numpy()
    if cell == "lstm":
        res["dc0"] = c0.grad[D - 1].numpy()
    for k, p in params.items():
        res["d" + k] = p.grad.numpy()
    return res


@pytest.mark.parametrize("biases", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("layout", TORCH_LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("case", TORCH_CASES, ids=TORCH_IDS)
def test_matches_pytorch(case, layout, biases):
    torch = pytest.importorskip("torch")
    cell, opts, H, P = case
    lengths, reverse = layout
    opts = dict(opts, proj=bool(P), linear_before_reset=True)
    kw, seeds = make(cell, opts, 6, 4, 3, H, P, lengths, reverse, biases, seed=21)
    want = torch_reference(torch, cell, opts, kw, seeds, P, reverse)
    out, g = run(cell, kw, seeds)
    got = {
        **{k: v for k, v in out._asdict().items() if k != "cache"},
        **{k: v for k, v in g._asdict().items() if v is not None},
    }
    assert set(got) == set(want)
    for k, v in want.items():
        assert np.abs(v).max() > 0, k
        np.testing.assert_allclose(got[k], v, rtol=1e-10, atol=1e-10, err_msg=k)
