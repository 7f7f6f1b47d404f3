"""The vectorised exp / sigmoid / tanh of cpp/simd/math.h on every SIMD target: maximum error in
ulp against a long-double reference (the bounds stated in math.h), special values, NaN and Inf
propagation, and vector tails."""

import numpy as np
import pytest

import rnnkit

_core = pytest.importorskip("rnnkit._core")

# Stated in cpp/simd/math.h (ulp of the result's dtype).
BOUNDS = {
    ("exp", np.float32): 1,
    ("sigmoid", np.float32): 3,
    ("tanh", np.float32): 3,
    ("exp", np.float64): 1,
    ("sigmoid", np.float64): 2,
    ("tanh", np.float64): 2,
}
EXACT = {"exp": np.exp, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "tanh": np.tanh}


def ulp_error(got, x, fn, dtype):
    exact = EXACT[fn](x.astype(np.longdouble))
    spacing = np.maximum(
        np.spacing(np.abs(exact).astype(dtype)).astype(np.longdouble),
        np.finfo(dtype).smallest_subnormal,
    )
    err = np.abs(got.astype(np.longdouble) - exact) / spacing
    err[got == exact.astype(dtype)] = 0
    return err


def grid(dtype):
    top = 88.0 if dtype == np.float32 else 700.0
    return np.concatenate(
        [
            np.linspace(-30, 30, 60001),
            np.linspace(-1e-3, 1e-3, 2001),
            np.geomspace(1e-30, 1, 2001),
            -np.geomspace(1e-30, 1, 2001),
            np.linspace(-top, top, 20001),
        ]
    ).astype(dtype)


@pytest.mark.parametrize("fn", ["exp", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_ulp_error(simd_target, fn, dtype):
    x = grid(dtype)
    if fn == "exp":
        lo = -87.0 if dtype == np.float32 else -708.0  # normal results; subnormals below
        x = x[x > lo]
    with np.errstate(over="ignore"):
        err = ulp_error(_core._math_eval(fn, x), x, fn, dtype)
    assert err.max() <= BOUNDS[(fn, dtype)], f"{fn} {simd_target}: {err.max():.2f} ulp"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(simd_target, dtype):
    big = 120.0 if dtype == np.float32 else 1000.0  # exp(-big) underflows to 0
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, big, -big], dtype)
    e = _core._math_eval("exp", x)
    s = _core._math_eval("sigmoid", x)
    t = _core._math_eval("tanh", x)
    np.testing.assert_array_equal(e, np.array([1, 1, np.inf, 0, np.nan, np.inf, 0], dtype))
    np.testing.assert_array_equal(s, np.array([0.5, 0.5, 1, 0, np.nan, 1, 0], dtype))
    np.testing.assert_array_equal(t, np.array([0, 0, 1, -1, np.nan, 1, -1], dtype))
    # tiny arguments: tanh(x) = x, exact to the ulp
    tiny = np.array([1e-30, -1e-30, 1e-20], dtype)
    np.testing.assert_array_equal(_core._math_eval("tanh", tiny), tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_underflow_to_subnormal_and_zero(simd_target, dtype):
    fi = np.finfo(dtype)
    lo = np.log(fi.smallest_subnormal.astype(np.longdouble))
    x = np.linspace(float(lo) + 0.5, float(np.log(fi.tiny)), 1001).astype(dtype)  # subnormal range
    got = _core._math_eval("exp", x).astype(np.longdouble)
    exact = np.exp(x.astype(np.longdouble))
    assert np.max(np.abs(got - exact)) <= fi.smallest_subnormal * 1.01
    assert (_core._math_eval("exp", np.array([lo - 2], dtype)) == 0).all()


@pytest.mark.parametrize("n", [1, 7, 17, 33, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tails_agree_with_full_vectors(simd_target, n, dtype):
    """Element i gives the same value whether it sits in a full vector or in the scalar tail,
    up to FMA rounding; and every element is written."""
    x = np.random.default_rng(n).uniform(-5, 5, n).astype(dtype)
    for fn in ("exp", "sigmoid", "tanh"):
        got = _core._math_eval(fn, x)
        ref = EXACT[fn](x.astype(np.float64))
        np.testing.assert_allclose(got, ref, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_unknown_function_is_an_error():
    with pytest.raises(ValueError, match="fn: expected 'exp', 'sigmoid' or 'tanh', got 'log'"):
        _core._math_eval("log", np.zeros(3))
    assert rnnkit.get_simd_target() in rnnkit.simd_targets()
