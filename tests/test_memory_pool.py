"""The output pool (cpp/array_pool.cpp): large outputs reuse the blocks of freed ones.

A reused block holds whatever the last array left in it, so every kernel must write all of
its outputs: these tests poison the blocks with NaN before each reuse and compare with a run
on fresh memory, for every cell and option that changes what a kernel writes."""

import os
import pickle
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from _cases import make_problem

import rnnkit
from rnnkit import _core

MIN = rnnkit.memory_pool()["min_bytes"]


@pytest.fixture
def pool_limit():
    """Restores the pool's limit after a test that changes it."""
    before = rnnkit.memory_pool()["limit_bytes"]
    yield
    rnnkit.set_memory_pool_limit(before)


def _arrays(tree):
    if isinstance(tree, np.ndarray):
        yield tree
    elif isinstance(tree, tuple):
        for t in tree:
            yield from _arrays(t)


def _pooled(a):
    return type(a.base).__name__ == "PyCapsule"


def _poison(out):
    """NaN (or True) into every array of the pool, so that their blocks go back dirty."""
    for a in _arrays(out):
        if _pooled(a):
            a[...] = np.nan if a.dtype.kind == "f" else True


def _copy(out):
    return [None if a is None else np.array(a) for a in _flat(out)]


def _flat(tree):
    if isinstance(tree, tuple):
        for t in tree:
            yield from _flat(t)
    else:
        yield tree


# T=128, B=32, H=64: the gates (and the other cache arrays of most cells) are at least 1 MiB,
# in the pool; the small outputs (h_n, the bias gradients) stay NumPy's.
T, B, I, H = 128, 32, 48, 64
CASES = [
    ("lstm", {}),
    ("lstm", {"peep": True, "proj": True, "clip": 0.5}),
    ("lstm", {"input_forget": True}),
    ("gru", {"linear_before_reset": True}),
    ("gru", {"linear_before_reset": False, "clip": 0.5}),
    ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
    ("mgu", {}),
]


def _extras(name, cell, dtype):
    """Keyword arguments of the cell options that write more cache arrays or change the step."""
    rng = np.random.default_rng(2)
    G = {"rnn": 1, "lstm": 4, "gru": 3, "mgu": 2}[cell]

    def ln(n):
        return np.stack([1 + 0.1 * rng.standard_normal(n), 0.1 * rng.standard_normal(n)])

    def mask(*shape):
        return (rng.random(shape) < 0.5).astype(dtype)

    if name == "layer_norm":
        kw = {"ln_ih": ln(G * H).astype(dtype), "ln_hh": ln(G * H).astype(dtype)}
        if cell == "lstm":
            kw["ln_c"] = ln(H).astype(dtype)
        return kw
    if name == "zoneout":
        kw = {"zoneout": mask(T, B, H)}
        if cell == "lstm":
            kw["zoneout_c"] = mask(T, B, H)
        return kw
    if name == "recurrent_mask":
        return {"recurrent_mask": 2 * mask(B, H)}
    return {"resets": rng.random((T, B)) < 0.1}


def _check_reuse(cell, args, kw, seeds):
    fwd = getattr(rnnkit, f"{cell}_forward")
    bwd = getattr(rnnkit, f"{cell}_backward")

    def run():
        out = fwd(*args, **kw)
        return out, bwd(out.cache, **seeds)

    fresh_out, fresh_g = run()
    assert any(a.nbytes >= MIN for a in _arrays(fresh_out.cache)), "no array reaches the pool"
    want = _copy((fresh_out, fresh_g))
    _poison((fresh_out, fresh_g))
    del fresh_out, fresh_g
    before = rnnkit.memory_pool()["reused"]
    got = run()
    assert rnnkit.memory_pool()["reused"] > before, "the second call did not reuse a block"
    for i, (w, g) in enumerate(zip(want, _copy(got))):
        if w is None:
            assert g is None, i
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"field {i}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell, opts", CASES)
def test_reused_dirty_blocks_give_the_fresh_results(cell, opts, reverse, lengths, dtype):
    lens = np.random.default_rng(1).integers(0, T + 1, B) if lengths else None
    _, args, kw, seeds = make_problem(cell, opts, T, B, I, H, dtype, lengths=lens, reverse=reverse)
    _check_reuse(cell, args, kw, seeds)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extra", ["layer_norm", "zoneout", "recurrent_mask", "resets"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_reused_dirty_blocks_with_the_cell_options(cell, extra, dtype):
    opts = {"gru": {"linear_before_reset": True}, "rnn": {"nonlinearity": "tanh"}}.get(cell, {})
    _, args, kw, seeds = make_problem(cell, opts, T, B, I, H, dtype)
    _check_reuse(cell, args, dict(kw, **_extras(extra, cell, dtype)), seeds)


def test_a_view_keeps_its_block_out_of_the_pool(pool_limit):
    T, B, I, H = 64, 32, 32, 64
    _, args, kw, _ = make_problem("lstm", {}, T, B, I, H, np.float64)
    out = rnnkit.lstm_forward(*args, **kw)
    view = out.cache.gates[3:5]
    kept = view.copy()
    del out  # the gates block stays: the view holds it
    again = rnnkit.lstm_forward(*args, **kw)
    for a in _arrays(again):
        assert not np.shares_memory(a, view)
    _poison(again)
    np.testing.assert_array_equal(view, kept)


def test_limit_zero_keeps_nothing_and_the_limit_evicts_the_oldest(pool_limit):
    rnnkit.set_memory_pool_limit(0)
    assert rnnkit.memory_pool()["kept_bytes"] == 0
    a = _core.empty((MIN // 8,), np.dtype(np.float64))
    del a
    assert rnnkit.memory_pool()["kept_blocks"] == 0

    rnnkit.set_memory_pool_limit(3 * MIN)
    blocks = [_core.empty((MIN // 8,), np.dtype(np.float64)) for _ in range(4)]
    first = blocks[0].ctypes.data
    for i in range(4):  # given back in this order: the first is evicted when the fourth comes
        blocks[i] = None
    p = rnnkit.memory_pool()
    assert (p["kept_blocks"], p["kept_bytes"]) == (3, 3 * MIN)
    again = [_core.empty((MIN // 8,), np.dtype(np.float64)) for _ in range(3)]
    assert first not in {b.ctypes.data for b in again}
    assert rnnkit.memory_pool()["kept_blocks"] == 0

    rnnkit.set_memory_pool_limit(MIN)  # lowering it frees what is beyond it now
    again.clear()
    assert rnnkit.memory_pool()["kept_bytes"] == MIN


def test_a_reused_block_comes_back_as_it_was_left(pool_limit):
    """What makes the poisoned runs above meaningful: nothing clears a block between uses."""
    rnnkit.set_memory_pool_limit(0)
    rnnkit.set_memory_pool_limit(64 * MIN)
    a = _core.empty((MIN // 8,), np.dtype(np.float64))
    a[...] = 7.0
    where = a.ctypes.data
    del a
    b = _core.empty((MIN // 8,), np.dtype(np.float64))
    assert b.ctypes.data == where and np.all(b == 7.0)


def test_small_arrays_stay_with_numpy_and_shapes_are_exact():
    small = _core.empty((3, 5), np.dtype(np.float32))
    assert small.base is None and small.shape == (3, 5) and small.dtype == np.float32
    big = _core.empty((2, MIN // 8 + 3), np.dtype(np.float64))
    assert big.shape == (2, MIN // 8 + 3) and big.flags.c_contiguous and big.flags.writeable
    assert big.ctypes.data % 64 == 0
    empty = _core.empty((0, 7), np.dtype(np.float64))
    assert empty.size == 0
    with pytest.raises(ValueError, match=r"shape: expected dimensions >= 0, got \(-1, 2\)"):
        _core.empty((-1, 2), np.dtype(np.float64))


def test_pooled_outputs_pickle_and_outlive_the_pool(pool_limit):
    _, args, kw, _ = make_problem("gru", {"linear_before_reset": True}, 64, 32, 32, 64, np.float64)
    out = rnnkit.gru_forward(*args, **kw)
    gates = out.cache.gates
    assert gates.nbytes >= MIN and _pooled(gates)
    back = pickle.loads(pickle.dumps(gates))
    np.testing.assert_array_equal(back, gates)
    rnnkit.set_memory_pool_limit(0)  # the block in use is not the pool's to free
    np.testing.assert_array_equal(back, gates)


def test_tracemalloc_sees_the_blocks_in_use():
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        a = _core.empty((4 * MIN // 8,), np.dtype(np.float64))
        during = tracemalloc.get_traced_memory()[0]
        del a
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert during - before >= 4 * MIN
    assert after - before < MIN


def test_outputs_freed_on_other_threads_come_back_safely():
    _, args, kw, seeds = make_problem("lstm", {}, 48, 16, 32, 64, np.float32)
    want = rnnkit.lstm_forward(*args, **kw).y.copy()
    errors = []

    def work():
        try:
            for _ in range(20):
                out = rnnkit.lstm_forward(*args, **kw)
                np.testing.assert_array_equal(out.y, want)
                rnnkit.lstm_backward(out.cache, **seeds)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", str(2**40 + 1)])
def test_a_bad_pool_size_in_the_environment_is_an_error_at_import(value):
    env = dict(os.environ, RNNKIT_POOL_MB=value)
    r = subprocess.run(
        [sys.executable, "-c", "import rnnkit"], env=env, capture_output=True, text=True
    )
    assert r.returncode != 0
    assert f"RNNKIT_POOL_MB: expected an integer number of MiB from 0 to {2**40}, got" in (
        r.stderr
    ), r.stderr


def test_the_pool_size_from_the_environment_and_the_setter():
    env = dict(os.environ, RNNKIT_POOL_MB="3")
    code = "import rnnkit; print(rnnkit.memory_pool()['limit_bytes'])"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == 3 << 20
    with pytest.raises(ValueError, match=r"nbytes: expected a byte count >= 0, got -1"):
        rnnkit.set_memory_pool_limit(-1)
    with pytest.raises(TypeError, match=r"nbytes"):
        rnnkit.set_memory_pool_limit("1")


def test_a_pooled_output_does_not_own_its_data_as_documented():
    big = _core.empty((MIN // 8,), np.dtype(np.float64))
    assert not big.flags.owndata and _pooled(big)
    with pytest.raises(ValueError, match="does not own its data"):
        big.resize(10)
    assert np.copy(big).flags.owndata
