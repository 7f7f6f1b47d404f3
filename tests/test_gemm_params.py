"""Every GEMM tile and blocking each SIMD target compiles, forced in turn, on odd sizes: the
product matches NumPy, and whole-sequence results match the reference. The family table's
choice (cpp/gemm_params.cpp) is only one of these, so all of them must be right."""

import numpy as np
import pytest

import rnnkit
import rnnkit.reference as ref
from rnnkit import _core

DTYPES = ["float32", "float64"]


def _configs(target, dtype):
    """(tile, kc, mc, nc) per tile: a small blocking (many K blocks, many row blocks, many panel
    chunks) and a large one (one block each)."""
    tiles = _core._gemm_params(target, dtype)["tiles"]
    out = []
    for i, (mr, nr) in enumerate(tiles):
        out.append((i, 16, mr, nr))  # kc=16: K=37 runs 3 blocks; one panel per task
        out.append((i, 512, 1008 // mr * mr, 64 * nr))
    return out


@pytest.fixture
def forced():
    """Sets a blocking on a target; restores the detected choice afterwards."""
    touched = []

    def force(target, dtype, cfg):
        touched.append((target, dtype))
        _core._set_gemm_params(target, dtype, *cfg)

    yield force
    for target, dtype in touched:
        _core._set_gemm_params(target, dtype, None, 0, 0, 0)


def test_detected_parameters_are_valid():
    for t in rnnkit.simd_targets():
        for dtype in DTYPES:
            p = _core._gemm_params(t, dtype)
            mr, nr = p["tiles"][p["tile"]]
            assert (p["mr"], p["nr"]) == (mr, nr)
            assert p["kc"] % 8 == 0 and 64 <= p["kc"] <= 512
            assert p["mc"] % mr == 0 and p["mc"] >= 4 * mr
            assert p["nc"] % nr == 0 and p["nc"] >= 4 * nr
            assert p["family"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "mnk", [(1, 37, 53), (5, 91, 37), (13, 200, 37), (16, 33, 300), (61, 129, 70), (130, 47, 19)]
)
def test_every_tile_and_blocking_matches_numpy(mnk, dtype, simd_target, forced):
    M, N, K = mnk
    rng = np.random.default_rng(M * 1000 + N)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype == "float32" else 1e-11
    for cfg in _configs(simd_target, dtype):
        forced(simd_target, dtype, cfg)
        got = _core._gemm(a, b)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(K), err_msg=str(cfg))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_every_tile_whole_sequence_matches_reference(cell, dtype, simd_target, forced):
    T, B, I, H = 5, 13, 19, 21  # B=13: one full 12-row tile plus an edge, or two 8/6-row tiles
    G = {"lstm": 4, "gru": 3}[cell]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    w_ih = rng.uniform(-0.3, 0.3, (G * H, I)).astype(dtype)
    w_hh = rng.uniform(-0.3, 0.3, (G * H, H)).astype(dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    fwd, bwd = getattr(rnnkit, f"{cell}_forward"), getattr(rnnkit, f"{cell}_backward")
    rf = getattr(ref, f"{cell}_forward")(x, w_ih, w_hh)
    rg = getattr(ref, f"{cell}_backward")(rf.cache, dy=dy)
    tol = 2e-5 if dtype == "float32" else 1e-10
    for cfg in _configs(simd_target, dtype):
        forced(simd_target, dtype, cfg)
        out = fwd(x, w_ih, w_hh)
        g = bwd(out.cache, dy=dy)
        np.testing.assert_allclose(out.y, rf.y, rtol=tol, atol=tol, err_msg=str(cfg))
        for name in ("dx", "dw_ih", "dw_hh"):
            np.testing.assert_allclose(
                getattr(g, name), getattr(rg, name), rtol=tol, atol=tol, err_msg=f"{name} {cfg}"
            )


def test_one_tile_is_bitwise_identical_for_any_thread_count(forced):
    target = rnnkit.simd_targets()[0]
    rng = np.random.default_rng(3)
    a = rng.standard_normal((150, 300)).astype(np.float32)
    b = rng.standard_normal((300, 170)).astype(np.float32)
    before_t, before_n = rnnkit.get_simd_target(), rnnkit.get_num_threads()
    rnnkit.set_simd_target(target)
    try:
        for cfg in _configs(target, "float32"):
            forced(target, "float32", cfg)
            outs = []
            for n in (1, 2, 3):
                rnnkit.set_num_threads(n)
                outs.append(_core._gemm(a, b).tobytes())
            assert outs[0] == outs[1] == outs[2], cfg
    finally:
        rnnkit.set_simd_target(before_t)
        rnnkit.set_num_threads(before_n)


def test_set_gemm_params_rejects_bad_values():
    t = rnnkit.simd_targets()[0]
    mr, nr = _core._gemm_params(t, "float32")["tiles"][0]
    with pytest.raises(ValueError, match="tile"):
        _core._set_gemm_params(t, "float32", 99, 64, mr, nr)
    with pytest.raises(ValueError, match="kc"):
        _core._set_gemm_params(t, "float32", 0, 12, mr, nr)
    with pytest.raises(ValueError, match="mc"):
        _core._set_gemm_params(t, "float32", 0, 64, mr + 1, nr)
    with pytest.raises(ValueError, match="nc"):
        _core._set_gemm_params(t, "float32", 0, 64, mr, nr + 1)
    with pytest.raises(ValueError, match="target"):
        _core._gemm_params("sse9", "float32")
    with pytest.raises(ValueError, match="dtype"):
        _core._gemm_params(t, "int8")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kept_a_block_over_k_blocks_matches_numpy_for_any_thread_count(dtype, simd_target, forced):
    """One row block (a recurrence's step) split by panels over threads: each thread packs A
    once, all K blocks of it, and reuses it for its tasks. Several K blocks (kc=64, K=300) and a
    short last micro-panel (M=20) must give NumPy's product, bitwise the same for 1..7 threads."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((20, 300)).astype(dtype)
    b = rng.standard_normal((300, 700)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype == "float32" else 1e-11
    tiles = _core._gemm_params(simd_target, dtype)["tiles"]
    before_n = rnnkit.get_num_threads()
    try:
        for i, (mr, nr) in enumerate(tiles):
            forced(simd_target, dtype, (i, 64, 1008 // mr * mr, 64 * nr))
            outs = []
            for n in (1, 2, 3, 7):
                rnnkit.set_num_threads(n)
                got = _core._gemm(a, b)
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(300))
                outs.append(got.tobytes())
            assert len(set(outs)) == 1, (i, mr, nr)
    finally:
        rnnkit.set_num_threads(before_n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_blocks_split_over_threads_match_numpy_bitwise(dtype, simd_target, forced):
    """With threads and more rows than one block, each thread's share of the micro-panels is
    cut into its own row blocks (gemm_packed): shares within one micro-panel of each other,
    empty blocks when there are fewer micro-panels than blocks (4 micro-panels on 7 or 16
    threads), and equal blocks claimed dynamically when the split would need more than 64
    owned tasks (M = 6000 in blocks of 4 micro-panels). Every split gives NumPy's product,
    bitwise the same for any thread count."""
    tiles = _core._gemm_params(simd_target, dtype)["tiles"]
    tol = 1e-4 if dtype == "float32" else 1e-11
    before_n = rnnkit.get_num_threads()
    try:
        for i, (mr, nr) in enumerate(tiles):
            cases = ((256, 1008 // mr * mr), (256, 4 * mr), (3 * mr + 1, mr), (6000, 4 * mr))
            for M, mc in cases:
                forced(simd_target, dtype, (i, 64, mc, 4 * nr))
                rng = np.random.default_rng(M + i)
                K = 20 if M == 6000 else 90
                a = rng.standard_normal((M, K)).astype(dtype)
                b = rng.standard_normal((K, 3 * nr + 5)).astype(dtype)
                want = a.astype(np.float64) @ b.astype(np.float64)
                outs = []
                for n in (1, 2, 3, 7, 16):
                    rnnkit.set_num_threads(n)
                    got = _core._gemm(a, b)
                    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(K))
                    outs.append(got.tobytes())
                assert len(set(outs)) == 1, (i, M, mc)
    finally:
        rnnkit.set_num_threads(before_n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pair_of_products_is_each_product_bitwise(dtype, simd_target, forced):
    """gemm_pair (the LSTM/RNN weight gradients dw_ih and dw_hh, which share dG^T) packs the
    second B after the first's last, padded panel and writes each panel to its own matrix:
    with widths that are not whole panels (the first part's last panel is partly padding),
    shorter than one panel, and on 1, 2 and 5 threads, each result is bitwise what the single
    product gives, and NumPy's product."""
    tiles = _core._gemm_params(simd_target, dtype)["tiles"]
    tol = 1e-4 if dtype == "float32" else 1e-11
    before_n = rnnkit.get_num_threads()
    try:
        for cfg in _configs(simd_target, dtype):
            forced(simd_target, dtype, cfg)
            nr = tiles[cfg[0]][1]
            for M, K, N1, N2 in (
                (37, 41, nr + 3, 2 * nr - 1),
                (1, 70, 3, nr + 1),
                (90, 20, 2 * nr, 5),
            ):
                rng = np.random.default_rng(M + N1 + N2)
                a = rng.standard_normal((M, K)).astype(dtype)
                b1 = rng.standard_normal((K, N1)).astype(dtype)
                b2 = rng.standard_normal((K, N2)).astype(dtype)
                for n in (1, 2, 5):
                    rnnkit.set_num_threads(n)
                    c1, c2 = _core._gemm(a, b1, b2)
                    assert c1.tobytes() == _core._gemm(a, b1).tobytes(), (cfg, M, K, N1, N2, n)
                    assert c2.tobytes() == _core._gemm(a, b2).tobytes(), (cfg, M, K, N1, N2, n)
                    for c, b in ((c1, b1), (c2, b2)):
                        want = a.astype(np.float64) @ b.astype(np.float64)
                        np.testing.assert_allclose(c, want, rtol=tol, atol=tol * np.sqrt(K))
    finally:
        rnnkit.set_num_threads(before_n)


def test_pair_of_products_rejects_a_bad_second_operand():
    a = np.ones((4, 5), np.float32)
    b = np.ones((5, 3), np.float32)
    with pytest.raises(ValueError, match=r"b2: expected shape \(5, 2\), got \(4, 2\)"):
        _core._gemm(a, b, np.ones((4, 2), np.float32))
    with pytest.raises((ValueError, TypeError), match="b2"):
        _core._gemm(a, b, np.ones((5, 2), np.float64))
    c1, c2 = _core._gemm(a, b, np.ones((5, 0), np.float32))
    assert c1.shape == (4, 3) and c2.shape == (4, 0)
    np.testing.assert_array_equal(c1, np.full((4, 3), 5.0, np.float32))
    z1, z2 = _core._gemm(
        np.ones((4, 0), np.float32), np.ones((0, 3), np.float32), np.ones((0, 2), np.float32)
    )
    assert not z1.any() and not z2.any() and z2.shape == (4, 2)
