"""The native kernels against the NumPy reference: every output, every cache field and every
gradient, for every cell and option, both dtypes, every compiled SIMD target, odd and round
sizes, T = 0 and B = 0."""

import numpy as np
import pytest
from _cases import (
    CONFIG_IDS,
    CONFIGS,
    assert_close,
    assert_thread_count_free,
    make_problem,
)

import rnnkit
import rnnkit.reference as ref

pytestmark = pytest.mark.skipif(not hasattr(rnnkit, "lstm_forward"), reason="native not built")

SIZES = [  # T, B, I, H
    (1, 1, 1, 1),
    (3, 2, 5, 4),
    (7, 3, 17, 33),
    (4, 5, 65, 65),
    (6, 8, 32, 64),
]


def run_both(cell, opts, T, B, I, H, dtype, **kw):
    name, args, fkw, seeds = make_problem(cell, opts, T, B, I, H, dtype, **kw)
    out_n = getattr(rnnkit, name)(*args, **fkw)
    out_r = getattr(ref, name)(*args, **fkw)
    bwd = f"{cell}_backward"
    g_n = getattr(rnnkit, bwd)(out_n.cache, **seeds)
    g_r = getattr(ref, bwd)(out_r.cache, **seeds)
    return out_n, out_r, g_n, g_r


def compare(out_n, out_r, g_n, g_r, dtype):
    for field in out_r._fields:
        if field == "cache":
            continue
        assert_close(getattr(out_n, field), getattr(out_r, field), dtype, field)
    for field in out_r.cache._fields:
        a, e = getattr(out_n.cache, field), getattr(out_r.cache, field)
        if isinstance(e, np.ndarray):
            assert_close(a, e, dtype, f"cache.{field}")
        else:
            assert a == e, f"cache.{field}: {a!r} vs {e!r}"
    assert type(g_n) is type(g_r)
    for field in g_r._fields:
        assert_close(getattr(g_n, field), getattr(g_r, field), dtype, field)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T%dB%dI%dH%d" % s)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_matches_reference(cfg, size, dtype, simd_target):
    _, cell, opts = cfg
    compare(*run_both(cell, opts, *size, dtype), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("variant", ["lengths", "reverse", "lengths_reverse"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_lengths_and_reverse(cfg, variant, dtype, simd_target):
    _, cell, opts = cfg
    T, B = 6, 5
    lengths = np.array([6, 0, 3, 1, 5]) if "lengths" in variant else None
    out = run_both(cell, opts, T, B, 7, 9, dtype, lengths=lengths, reverse="reverse" in variant)
    compare(*out, dtype)


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_without_biases_and_initial_state(cfg, simd_target):
    _, cell, opts = cfg
    compare(*run_both(cell, opts, 5, 3, 4, 6, np.float64, bias=False, h0=False), np.float64)


@pytest.mark.parametrize(
    "shape",
    [(0, 3, 4, 5), (4, 0, 4, 5), (0, 0, 4, 5), (3, 2, 0, 5)],
    ids=["T0", "B0", "T0B0", "I0"],
)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_empty(cfg, shape):
    _, cell, opts = cfg
    compare(*run_both(cell, opts, *shape, np.float64), np.float64)


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_cache_crosses_backends(cfg):
    """A cache made by either backend is accepted by the other's backward."""
    _, cell, opts = cfg
    name, args, kw, seeds = make_problem(
        cell, opts, 5, 3, 4, 6, np.float64, lengths=np.array([5, 2, 4]), reverse=True
    )
    bwd = f"{cell}_backward"
    c_n = getattr(rnnkit, name)(*args, **kw).cache
    c_r = getattr(ref, name)(*args, **kw).cache
    for cache in (c_n, c_r):
        g_native = getattr(rnnkit, bwd)(cache, **seeds)
        g_ref = getattr(ref, bwd)(cache, **seeds)
        for field in g_ref._fields:
            assert_close(getattr(g_native, field), getattr(g_ref, field), np.float64, field)


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_backward_twice_leaves_cache_alone(cfg):
    _, cell, opts = cfg
    name, args, kw, seeds = make_problem(
        cell, opts, 4, 3, 5, 7, np.float32, lengths=np.array([4, 1, 3])
    )
    cache = getattr(rnnkit, name)(*args, **kw).cache
    before = [np.copy(v) if isinstance(v, np.ndarray) else v for v in cache]
    g1 = getattr(rnnkit, f"{cell}_backward")(cache, **seeds)
    g2 = getattr(rnnkit, f"{cell}_backward")(cache, **seeds)
    for a, b in zip(g1, g2):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)
    for v, w in zip(cache, before):
        if isinstance(w, np.ndarray):
            np.testing.assert_array_equal(v, w)


@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_chunks_with_carried_state_equal_one_run(cfg, simd_target):
    _, cell, opts = cfg
    name, args, kw, _ = make_problem(cell, opts, 9, 3, 5, 8, np.float64)
    fwd = getattr(rnnkit, name)
    full = fwd(*args, **kw)
    x = args[0]
    state = list(args[5:])
    ys = []
    for t0, t1 in [(0, 4), (4, 5), (5, 9)]:
        out = fwd(x[t0:t1], *args[1:5], *state, **kw)
        ys.append(out.y)
        state = [out.h_n, out.c_n] if cell == "lstm" else [out.h_n]
    assert_close(np.concatenate(ys), full.y, np.float64, "y")
    assert_close(state[0], full.h_n, np.float64, "h_n")


@pytest.mark.parametrize(
    "cfg",
    [CONFIGS[0], CONFIGS[3], CONFIGS[8], CONFIGS[9], CONFIGS[10], CONFIGS[14]],
    ids=["rnn", "lstm", "lstm_all", "gru", "gru_textbook", "mgu_clip"],
)
def test_threads_give_bitwise_identical_results(cfg, simd_target):
    _, cell, opts = cfg
    name, args, kw, seeds = make_problem(
        cell, opts, 5, 24, 40, 96, np.float32, lengths=np.arange(24) % 6
    )
    assert_thread_count_free(cell, name, args, kw, seeds)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "mnk", [(1, 1, 1), (1, 70, 300), (5, 7, 3), (13, 33, 17), (100, 130, 300), (97, 65, 513)]
)  # M = 1 and a last row block of 1: rows read in place
def test_gemm(mnk, dtype, simd_target):
    from rnnkit import _core

    M, N, K = mnk
    rng = np.random.default_rng(1)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = _core._gemm(a, b)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * np.sqrt(K))
