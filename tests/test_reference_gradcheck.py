"""The NumPy reference against central finite differences, in float64: every gradient of every
cell and option, with and without biases, with variable lengths and reverse.

The scalar loss is L = sum(dy * y) + sum(dh_n * h_n) (+ sum(dc_n * c_n)) for random dy, dh_n,
dc_n, so the backward's inputs are exactly those seeds.
"""

import numpy as np
import pytest

import rnnkit.reference as ref
from _cases import CONFIG_IDS, CONFIGS, make_problem

EPS = 1e-6

VARIANTS = {
    "plain": {},
    "no_bias": {"bias": False},
    "lengths": {"lengths": np.array([4, 0, 2])},
    "reverse": {"reverse": True},
    "lengths_reverse": {"lengths": np.array([1, 4, 3]), "reverse": True},
}


def loss(cell, out, seeds):
    total = np.sum(seeds["dy"] * out.y) + np.sum(seeds["dh_n"] * out.h_n)
    if cell == "lstm":
        total += np.sum(seeds["dc_n"] * out.c_n)
    return total


def numeric_grad(f, a):
    """Central differences of the scalar function f with respect to every element of a."""
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + EPS
        up = f()
        a[i] = old - EPS
        down = f()
        a[i] = old
        g[i] = (up - down) / (2 * EPS)
    return g


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_gradients_match_finite_differences(cfg, variant):
    _, cell, opts = cfg
    kw = dict(VARIANTS[variant])
    name, args, fkw, seeds = make_problem(cell, opts, 4, 3, 3, 3, np.float64, seed=7, **kw)
    fwd = getattr(ref, name)
    out = fwd(*args, **fkw)
    if "clip" in opts:  # the option is exercised: some pre-activations really are clipped
        assert out.cache.clip_mask.any()
    grads = getattr(ref, f"{cell}_backward")(out.cache, **seeds)

    def f():
        return loss(cell, fwd(*args, **fkw), seeds)

    # (gradient field, where its variable lives)
    targets = [("dx", args, 0), ("dw_ih", args, 1), ("dw_hh", args, 2), ("db_ih", args, 3),
               ("db_hh", args, 4), ("dh0", args, 5)]
    if cell == "lstm":
        targets += [("dc0", args, 6), ("dw_peep", fkw, "w_peep"), ("dw_proj", fkw, "w_proj")]
    checked = 0
    for field, holder, key in targets:
        analytic = getattr(grads, field)
        if isinstance(holder, dict) and key not in holder or (
                isinstance(holder, list) and holder[key] is None):
            assert analytic is None, f"{field} should be None when its parameter is absent"
            continue
        numeric = numeric_grad(f, holder[key])
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=field)
        checked += 1
    assert checked >= 4  # dx, dw_ih, dw_hh, dh0 at least


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradient_of_default_state_is_an_array(cell):
    """dh0 (and dc0) are arrays also when h0 (c0) defaulted to zeros."""
    opts = {"nonlinearity": "tanh"} if cell == "rnn" else (
        {"linear_before_reset": True} if cell == "gru" else {})
    name, args, fkw, seeds = make_problem(cell, opts, 3, 2, 3, 4, np.float64, h0=False)
    out = getattr(ref, name)(*args, **fkw)
    g = getattr(ref, f"{cell}_backward")(out.cache, dh_n=seeds["dh_n"])
    assert isinstance(g.dh0, np.ndarray) and g.dh0.shape == (2, 4)
    if cell == "lstm":
        assert isinstance(g.dc0, np.ndarray) and g.dc0.shape == (2, 4)
