"""The thread pool under pressure: several Python threads computing at once (the GIL is
released in the kernels), changing the thread count while others compute, and a forked child
process computing after its parent used the pool. Every result is checked bitwise against a
serial run on the same SIMD target."""

import os
import sys
import threading

import numpy as np
import pytest
from _cases import CONFIGS, make_problem

import rnnkit

pytestmark = pytest.mark.skipif(not hasattr(rnnkit, "set_num_threads"), reason="native not built")


def fwd_bwd(cell, args, kw, seeds):
    out = getattr(rnnkit, f"{cell}_forward")(*args, **kw)
    g = getattr(rnnkit, f"{cell}_backward")(out.cache, **seeds)
    return [a.tobytes() for a in (out.y, *[v for v in g if v is not None])]


def problems():
    out = []
    for i, (_, cell, opts) in enumerate(CONFIGS[::3]):
        name, args, kw, seeds = make_problem(
            cell, opts, 6, 16, 24, 40, np.float32, seed=i, lengths=np.arange(16) % 7
        )
        out.append((cell, args, kw, seeds))
    return out


def test_many_python_threads_at_once():
    probs = problems()
    before = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    expected = [fwd_bwd(*p) for p in probs]
    rnnkit.set_num_threads(2)
    errors = []

    def worker(k):
        try:
            for rep in range(6):
                i = (k + rep) % len(probs)
                if fwd_bwd(*probs[i]) != expected[i]:
                    errors.append(f"thread {k} rep {rep} problem {i}: results differ")
                if k == 0 and rep % 2:  # change the thread count while others compute
                    rnnkit.set_num_threads(1 + rep % 3)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads), "a thread hung"
    finally:
        rnnkit.set_num_threads(before)
    assert not errors, errors


@pytest.mark.skipif(sys.platform == "win32", reason="no fork")
def test_forked_child_can_compute():
    cell, args, kw, seeds = problems()[1]
    before = rnnkit.get_num_threads()
    rnnkit.set_num_threads(2)
    try:
        expected = fwd_bwd(cell, args, kw, seeds)  # the parent's pool now has workers
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: the parent's workers do not exist here
            ok = fwd_bwd(cell, args, kw, seeds) == expected
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
        os.close(w)
        got = os.read(r, 1)
        os.waitpid(pid, 0)
        assert got == b"1"
    finally:
        rnnkit.set_num_threads(before)


@pytest.mark.parametrize("variant", ["plain", "lengths_reverse"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_bitwise_identical_for_1_to_4_threads(cfg, variant, simd_target):
    """Every cell and option, forward and backward (outputs, cache, gradients), bitwise equal
    for 1, 2, 3 and 4 threads; sizes large enough that the GEMMs split over threads."""
    _, cell, opts = cfg
    kw = {"lengths": np.arange(24) % 6, "reverse": True} if variant != "plain" else {}
    name, args, fkw, seeds = make_problem(cell, opts, 5, 24, 40, 96, np.float32, seed=3, **kw)
    before = rnnkit.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3, 4):
            rnnkit.set_num_threads(n)
            out = getattr(rnnkit, name)(*args, **fkw)
            g = getattr(rnnkit, f"{cell}_backward")(out.cache, **seeds)
            arrays = [a for a in (*out[:-1], *out.cache, *g) if isinstance(a, np.ndarray)]
            results.append([a.tobytes() for a in arrays])
    finally:
        rnnkit.set_num_threads(before)
    for n, other in zip((2, 3, 4), results[1:]):
        assert other == results[0], f"{n} threads differ from 1"


@pytest.mark.parametrize("cell,opts", [("lstm", {}), ("gru", {"linear_before_reset": False})])
def test_owned_split_bitwise_for_more_threads_than_cores_and_every_tile(cell, opts):
    """The GEMM gives each thread the same panels every step and lets the others take a late
    thread's share (threads.h: parallel_for_owned): with 7 threads on fewer cores the workers
    are often late, so tasks move between threads; results must not change, on any tile."""
    from rnnkit import _core

    target = rnnkit.simd_targets()[0]
    name, args, fkw, seeds = make_problem(cell, opts, 4, 64, 64, 80, np.float32, seed=5)
    before_t, before_n = rnnkit.get_simd_target(), rnnkit.get_num_threads()
    rnnkit.set_simd_target(target)
    try:
        for tile, (mr, nr) in enumerate(_core._gemm_params(target, "float32")["tiles"]):
            _core._set_gemm_params(target, "float32", tile, 64, 4 * mr, 4 * nr)
            results = []
            for n in (1, 2, 7):
                rnnkit.set_num_threads(n)
                results.append(fwd_bwd(cell, args, fkw, seeds))
            assert results[1] == results[0] and results[2] == results[0], f"tile {mr}x{nr}"
    finally:
        _core._set_gemm_params(target, "float32", None, 0, 0, 0)
        rnnkit.set_simd_target(before_t)
        rnnkit.set_num_threads(before_n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradients_split_by_columns_are_bitwise_the_same(dtype, simd_target):
    """The bias gradients are column sums over all T*B rows, their blocks of columns split over
    the threads (cells/step.h: column_sums_threaded). G*H = 268 is not a multiple of a block,
    and the rows are enough for up to 5 threads to share them."""
    _, args, kw, seeds = make_problem("lstm", {}, 40, 16, 24, 67, dtype, seed=7)
    before = rnnkit.get_num_threads()
    grads = []
    try:
        for n in (1, 2, 3, 5, 7):
            rnnkit.set_num_threads(n)
            g = rnnkit.lstm_backward(rnnkit.lstm_forward(*args, **kw).cache, **seeds)
            grads.append((g.db_ih.tobytes(), g.db_hh.tobytes()))
        out = rnnkit.lstm_forward(*args, **kw)
        g = rnnkit.lstm_backward(out.cache, **seeds)
    finally:
        rnnkit.set_num_threads(before)
    assert all(other == grads[0] for other in grads[1:])
    want = rnnkit.reference.lstm_backward(rnnkit.reference.lstm_forward(*args, **kw).cache, **seeds)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(g.db_ih, want.db_ih, rtol=tol, atol=tol * np.abs(want.db_ih).max())
