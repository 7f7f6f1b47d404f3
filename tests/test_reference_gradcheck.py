"""The NumPy reference against central finite differences in float64: every gradient (dx, dh0,
dc0, weights, biases, peepholes, projection) of every cell and option, with and without
biases, with variable lengths (a 0 and a full length among them), reverse, and both.

The scalar loss is L = sum(dy * y) + sum(dh_n * h_n) (+ sum(dc_n * c_n)) for random dy, dh_n,
dc_n, so the backward's inputs are exactly those seeds. dy is random also at the padding
positions, where y is constantly 0: the backward must ignore it there.

Kinks: relu and clip make L piecewise smooth. Every finite-difference evaluation asserts that
the set of clipped pre-activations and active relu units is the same as at the base point, so
a difference quotient never straddles a kink (if a seed ever put one within eps, the test
says so instead of failing on a bad number).
"""

import numpy as np
import pytest
from conftest import numeric_grad

import rnnkit.reference as ref

RTOL = 1e-6
ATOL = 1e-8
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "mgu": 2}

# (id, cell, forward options; "peep"/"proj" ask for peepholes / a projection of size P)
CONFIGS = [
    ("rnn_tanh", "rnn", {"nonlinearity": "tanh"}),
    ("rnn_relu", "rnn", {"nonlinearity": "relu"}),
    ("rnn_tanh_clip", "rnn", {"nonlinearity": "tanh", "clip": 0.6}),
    ("rnn_relu_clip", "rnn", {"nonlinearity": "relu", "clip": 0.5}),
    ("lstm", "lstm", {}),
    ("lstm_peep", "lstm", {"peep": True}),
    ("lstm_proj", "lstm", {"proj": True}),
    ("lstm_clip", "lstm", {"clip": 0.7}),
    ("lstm_peep_clip", "lstm", {"peep": True, "clip": 0.7}),
    ("lstm_cifg", "lstm", {"input_forget": True}),
    ("lstm_peep_cifg", "lstm", {"peep": True, "input_forget": True}),
    ("lstm_all", "lstm", {"peep": True, "proj": True, "clip": 0.8, "input_forget": True}),
    ("lstm_peep_proj_clip", "lstm", {"peep": True, "proj": True, "clip": 0.8}),
    ("gru", "gru", {"linear_before_reset": True}),
    ("gru_textbook", "gru", {"linear_before_reset": False}),
    ("gru_clip", "gru", {"linear_before_reset": True, "clip": 0.6}),
    ("gru_textbook_clip", "gru", {"linear_before_reset": False, "clip": 0.6}),
    ("mgu", "mgu", {}),
    ("mgu_clip", "mgu", {"clip": 0.6}),
]

# (id, T, B, I, H, P, lengths, reverse, biases)
VARIANTS = [
    ("plain", 4, 3, 3, 3, 2, None, False, True),
    ("no_bias", 3, 2, 5, 4, 3, None, False, False),
    ("lengths", 4, 3, 4, 3, 2, [4, 0, 2], False, True),
    ("reverse", 3, 2, 3, 2, 3, None, True, True),  # P = 3 > H = 2 is allowed too
    ("lengths_reverse", 4, 3, 3, 3, 2, [1, 4, 0], True, True),
    ("lengths_reverse_no_bias", 4, 3, 5, 2, 2, [3, 4, 2], True, False),
]


def make(cell, opts, T, B, I, H, P, lengths, reverse, biases, seed):
    """Random arguments: (args dict for the forward, seeds dict for the backward)."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    P = P if opts.get("proj") else H

    def r(*shape, s=1.0):
        return rng.standard_normal(shape) * s

    kw = {
        "x": r(T, B, I),
        "w_ih": r(G * H, I, s=1.2 / np.sqrt(I)),
        "w_hh": r(G * H, P, s=1.2 / np.sqrt(P)),
        "b_ih": r(G * H, s=0.5) if biases else None,
        "b_hh": r(G * H, s=0.5) if biases else None,
        "h0": r(B, P, s=0.7),
        "lengths": None if lengths is None else np.array(lengths, dtype=np.int64),
        "reverse": reverse,
    }
    if cell == "rnn":
        kw["nonlinearity"] = opts["nonlinearity"]
    if cell == "gru":
        kw["linear_before_reset"] = opts["linear_before_reset"]
    if cell == "lstm":
        kw["c0"] = r(B, H, s=0.7)
        kw["input_forget"] = bool(opts.get("input_forget"))
        if opts.get("peep"):
            kw["w_peep"] = r(3, H, s=0.7)
        if opts.get("proj"):
            kw["w_proj"] = r(P, H, s=1.0 / np.sqrt(H))
    if "clip" in opts:
        kw["clip"] = opts["clip"]
    seeds = {"dy": r(T, B, P), "dh_n": r(B, P)}
    if cell == "lstm":
        seeds["dc_n"] = r(B, H)
    return kw, seeds


def loss(out, seeds):
    total = np.sum(seeds["dy"] * out.y) + np.sum(seeds["dh_n"] * out.h_n)
    if "dc_n" in seeds:
        total += np.sum(seeds["dc_n"] * out.c_n)
    return total


def active_set(out):
    """Which side of every kink the forward is on: clipped pre-activations, active relus."""
    parts = []
    if out.cache.clip_mask is not None:
        parts.append(out.cache.clip_mask.copy())
    if getattr(out.cache, "nonlinearity", None) == "relu":
        parts.append(out.cache.gates > 0)
    return parts


def valid_steps(T, B, lengths):
    """valid[k, b]: step k of sequence b is taken."""
    n = np.full(B, T) if lengths is None else np.asarray(lengths)
    return np.arange(T)[:, None] < n[None, :]


# (gradient field, forward argument); which apply depends on the cell
TARGETS = {
    "rnn": [
        ("dx", "x"),
        ("dh0", "h0"),
        ("dw_ih", "w_ih"),
        ("dw_hh", "w_hh"),
        ("db_ih", "b_ih"),
        ("db_hh", "b_hh"),
    ],
    "gru": [
        ("dx", "x"),
        ("dh0", "h0"),
        ("dw_ih", "w_ih"),
        ("dw_hh", "w_hh"),
        ("db_ih", "b_ih"),
        ("db_hh", "b_hh"),
    ],
    "mgu": [
        ("dx", "x"),
        ("dh0", "h0"),
        ("dw_ih", "w_ih"),
        ("dw_hh", "w_hh"),
        ("db_ih", "b_ih"),
        ("db_hh", "b_hh"),
    ],
    "lstm": [
        ("dx", "x"),
        ("dh0", "h0"),
        ("dc0", "c0"),
        ("dw_ih", "w_ih"),
        ("dw_hh", "w_hh"),
        ("db_ih", "b_ih"),
        ("db_hh", "b_hh"),
        ("dw_peep", "w_peep"),
        ("dw_proj", "w_proj"),
    ],
}


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_gradients_match_finite_differences(cfg, variant):
    _, cell, opts = cfg
    _, T, B, I, H, P, lengths, reverse, biases = variant
    kw, seeds = make(cell, opts, T, B, I, H, P, lengths, reverse, biases, seed=11)
    fwd = getattr(ref, f"{cell}_forward")
    bwd = getattr(ref, f"{cell}_backward")
    out = fwd(**kw)
    base = active_set(out)
    if "clip" in opts:  # the option is exercised: some pre-activations are clipped, not all
        valid = valid_steps(T, B, lengths)
        mask = out.cache.clip_mask[valid]
        assert mask.any() and not mask.all()
    if opts.get("nonlinearity") == "relu":  # both sides of the kink occur
        gates = out.cache.gates[valid_steps(T, B, lengths)]
        assert (gates > 0).any() and (gates == 0).any()
    grads = bwd(out.cache, **seeds)

    def f():
        o = fwd(**kw)
        for a, b in zip(active_set(o), base):
            assert np.array_equal(a, b), "a finite-difference step crossed a kink: change the seed"
        return loss(o, seeds)

    for field, arg in TARGETS[cell]:
        analytic = getattr(grads, field)
        if kw.get(arg) is None:
            assert analytic is None, f"{field} must be None when {arg} is absent"
            continue
        assert analytic.shape == kw[arg].shape and analytic.dtype == np.float64, field
        numeric = numeric_grad(f, kw[arg])
        assert np.abs(numeric).max() > 1e-3, f"{field}: the check would be vacuous"
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=field)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "mgu"])
def test_gradcheck_detects_a_wrong_gradient(cell):
    """The criterion above is tight enough to see a 1e-4 relative error in one element."""
    kw, seeds = make(
        cell,
        {"nonlinearity": "tanh", "linear_before_reset": True},
        3,
        2,
        3,
        3,
        3,
        None,
        False,
        True,
        seed=3,
    )
    out = getattr(ref, f"{cell}_forward")(**kw)
    g = getattr(ref, f"{cell}_backward")(out.cache, **seeds)
    numeric = numeric_grad(lambda: loss(getattr(ref, f"{cell}_forward")(**kw), seeds), kw["w_hh"])
    np.testing.assert_allclose(g.dw_hh, numeric, rtol=RTOL, atol=ATOL)
    wrong = g.dw_hh.copy()
    wrong[0, 0] *= 1 + 1e-4
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(wrong, numeric, rtol=RTOL, atol=ATOL)


# --- the options of API.md section 11 --------------------------------------------------------

# Which options each cell has; "all" below means all of them at once.
CELL_OPTIONS = {
    "rnn": ("ln_ih", "ln_hh", "zoneout", "recurrent_mask", "resets"),
    "gru": ("ln_ih", "ln_hh", "zoneout", "recurrent_mask", "resets"),
    "lstm": ("ln_ih", "ln_hh", "ln_c", "zoneout", "zoneout_c", "recurrent_mask", "resets"),
}
OPTION_TARGETS = [("dln_ih", "ln_ih"), ("dln_hh", "ln_hh"), ("dln_c", "ln_c")]


def add_options(kw, cell, names, seed):
    """Adds the options `names` to forward arguments kw (made by `make`): layer norms with
    gains near 1, zoneout rates spread over [0, 1] (0 and 1 included), a recurrent mask in
    [0.5, 2] with a zero, resets at a few steps that run (never at reverse)."""
    rng = np.random.default_rng(seed)
    T, B, _ = kw["x"].shape
    GH, Hout = kw["w_hh"].shape
    H = kw["c0"].shape[1] if cell == "lstm" else Hout

    def ln(n):
        return np.stack([1 + 0.4 * rng.standard_normal(n), 0.3 * rng.standard_normal(n)])

    def rate(*shape):
        z = rng.uniform(0, 1, shape)
        z.flat[0], z.flat[-1] = 0.0, 1.0
        return z

    makers = {
        "ln_ih": lambda: ln(GH),
        "ln_hh": lambda: ln(GH),
        "ln_c": lambda: ln(H),
        "zoneout": lambda: rate(T, B, Hout),
        "zoneout_c": lambda: rate(T, B, H),
        "recurrent_mask": lambda: np.where(
            rng.uniform(size=(B, Hout)) < 0.15, 0.0, rng.uniform(0.5, 2, (B, Hout))
        ),
    }
    for name in names:
        if name == "resets":
            resets = np.zeros((T, B), bool)
            n = np.full(B, T) if kw["lengths"] is None else kw["lengths"]
            for b in range(B):
                if n[b] > 1:
                    resets[1 + (b % (n[b] - 1)), b] = True  # a step after the first that runs
            resets[0, 0] = True  # a reset at step 0: dh0 of that row is 0
            kw["resets"] = resets
        else:
            kw[name] = makers[name]()
    return kw


def option_configs():
    """(id, cell, base options, option names): each option alone on the plain cell, and all
    of them together with clip, peepholes, projection, CIFG, relu, both GRU placements."""
    out = []
    bases = {
        "rnn": [("tanh", {"nonlinearity": "tanh"})],
        "lstm": [("", {})],
        "gru": [("", {"linear_before_reset": True}), ("textbook", {"linear_before_reset": False})],
    }
    for cell, options in CELL_OPTIONS.items():
        for tag, base in bases[cell]:
            for name in options:
                out.append(("_".join(filter(None, (cell, tag, name))), cell, base, (name,)))
    out += [
        ("rnn_all_clip", "rnn", {"nonlinearity": "tanh", "clip": 0.6}, CELL_OPTIONS["rnn"]),
        ("rnn_relu_all", "rnn", {"nonlinearity": "relu"}, CELL_OPTIONS["rnn"]),
        (
            "lstm_all_peep_proj_clip",
            "lstm",
            {"peep": True, "proj": True, "clip": 0.8},
            CELL_OPTIONS["lstm"],
        ),
        ("lstm_all_cifg", "lstm", {"input_forget": True, "peep": True}, CELL_OPTIONS["lstm"]),
        ("lstm_ln_zoneout_proj", "lstm", {"proj": True}, ("ln_ih", "ln_c", "zoneout_c")),
        ("gru_all_clip", "gru", {"linear_before_reset": True, "clip": 0.7}, CELL_OPTIONS["gru"]),
        (
            "gru_textbook_all_clip",
            "gru",
            {"linear_before_reset": False, "clip": 0.7},
            CELL_OPTIONS["gru"],
        ),
    ]
    return out


OPTION_CONFIGS = option_configs()
OPTION_VARIANTS = [
    v for v in VARIANTS if v[0] in ("plain", "lengths", "reverse", "lengths_reverse_no_bias")
]


# resets are not defined with reverse=True (a ValueError, see test_errors): all the other
# options of a combination still run reversed
OPTION_CASES = [
    pytest.param(cfg, v, id=f"{cfg[0]}-{v[0]}")
    for cfg in OPTION_CONFIGS
    for v in OPTION_VARIANTS
    if not (v[7] and cfg[3] == ("resets",))
]


@pytest.mark.parametrize("cfg,variant", OPTION_CASES)
def test_option_gradients_match_finite_differences(cfg, variant):
    _, cell, opts, names = cfg
    _, T, B, I, H, P, lengths, reverse, biases = variant
    if reverse:
        names = tuple(n for n in names if n != "resets")
    H = max(H, 3)  # a layer norm over 2 values is ±1 whatever its input: its gradient is 0
    kw, seeds = make(cell, opts, T, B, I, H, P, lengths, reverse, biases, seed=11)
    kw = add_options(kw, cell, names, seed=5)
    fwd = getattr(ref, f"{cell}_forward")
    out = fwd(**kw)
    base = active_set(out)
    if "clip" in opts:
        mask = out.cache.clip_mask[valid_steps(T, B, lengths)]
        assert mask.any() and not mask.all()
    grads = getattr(ref, f"{cell}_backward")(out.cache, **seeds)

    def f():
        o = fwd(**kw)
        for a, b in zip(active_set(o), base):
            assert np.array_equal(a, b), "a finite-difference step crossed a kink: change the seed"
        return loss(o, seeds)

    targets = TARGETS[cell] + [t for t in OPTION_TARGETS if t[0] in grads._fields]
    for field, arg in targets:
        analytic = getattr(grads, field)
        if kw.get(arg) is None:
            assert analytic is None, f"{field} must be None when {arg} is absent"
            continue
        numeric = numeric_grad(f, kw[arg])
        if field == "dh0" and "resets" in names:  # row 0 is reset before step 0
            assert not analytic[0].any() and not numeric[0].any()
        assert np.abs(numeric).max() > 1e-3, f"{field}: the check would be vacuous"
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=field)
