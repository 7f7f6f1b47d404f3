"""Hostile input, table-driven, on both backends: every array argument of every function with
the wrong dtype kind, rank and size; odd memory layouts that must be accepted and give the
same answer (non-contiguous, negative strides, read-only, broadcast, zero-size); Python lists
and scalars; sizes too large to allocate. Each rejected input must raise the same exception
type with the same message (naming the argument) from both backends, and never crash.
"""

import numpy as np
import pytest

import rnnkit
import rnnkit.reference as ref

T, B, I, H = 4, 3, 5, 6
G = {"rnn": 1, "lstm": 4, "gru": 3}
ARRAY_ARGS = {  # forward arguments holding arrays, and their shapes
    "rnn": {
        "x": (T, B, I),
        "w_ih": (H, I),
        "w_hh": (H, H),
        "b_ih": (H,),
        "b_hh": (H,),
        "h0": (B, H),
    },
    "gru": {
        "x": (T, B, I),
        "w_ih": (3 * H, I),
        "w_hh": (3 * H, H),
        "b_ih": (3 * H,),
        "b_hh": (3 * H,),
        "h0": (B, H),
    },
    "lstm": {
        "x": (T, B, I),
        "w_ih": (4 * H, I),
        "w_hh": (4 * H, H),
        "b_ih": (4 * H,),
        "b_hh": (4 * H,),
        "h0": (B, H),
        "c0": (B, H),
        "w_peep": (3, H),
    },
}
BAD_DTYPES = [np.float16, np.int32, np.int64, np.complex64, np.bool_, object]


def good_args(cell, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(s) * 0.5).astype(dtype) for k, s in ARRAY_ARGS[cell].items()}


def outcome(mod, cell, kw):
    """(exception type name, message) or ("ok", result)"""
    try:
        return "ok", getattr(mod, f"{cell}_forward")(**kw)
    except Exception as e:  # noqa: BLE001 - we compare what each backend raised
        return type(e).__name__, str(e)


def hostile_rows():
    rows = []
    for cell, shapes in ARRAY_ARGS.items():
        for name, shape in shapes.items():
            for dt in BAD_DTYPES:
                rows.append(
                    (
                        cell,
                        name,
                        f"dtype {np.dtype(dt).name}",
                        lambda s=shape, d=dt: np.zeros(s, dtype=d),
                        "TypeError",
                    )
                )
            rows.append((cell, name, "rank +1", lambda s=shape: np.zeros(s + (1,)), "ValueError"))
            if len(shape) > 1:
                rows.append((cell, name, "rank -1", lambda s=shape: np.zeros(s[1:]), "ValueError"))
            for ax in range(len(shape)):
                bad = list(shape)
                bad[ax] += 1
                if name == "x" and ax in (0, 2):
                    continue  # a longer or wider x is a different, valid problem
                rows.append(
                    (cell, name, f"axis {ax} + 1", lambda b=tuple(bad): np.zeros(b), "ValueError")
                )
            rows.append((cell, name, "python scalar", lambda: 1.5, "ValueError"))
            rows.append((cell, name, "string", lambda: "abc", "TypeError"))
            # rnnkit has no masked entries: a masked array is refused, never read as .data
            rows.append(
                (
                    cell,
                    name,
                    "masked array",
                    lambda s=shape: np.ma.masked_array(np.zeros(s), mask=True),
                    "TypeError",
                )
            )
    return rows


HOSTILE = hostile_rows()


@pytest.mark.parametrize(
    "cell,name,what,make,exc", HOSTILE, ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in HOSTILE]
)
def test_bad_array_raises_the_same_error_on_both_backends(cell, name, what, make, exc):
    kw = good_args(cell)
    kw[name] = make()
    results = [outcome(mod, cell, kw) for mod in (ref, rnnkit)]
    assert results[0][0] == exc, f"{what}: reference raised {results[0]}"
    assert results[0] == results[1] or (
        results[0][0] == results[1][0] and results[0][1] == results[1][1]
    )
    msg = results[0][1]
    # a batch mismatch between x and the initial state is reported on the state
    named = "h0" if (name == "x" and what == "axis 1 + 1") else name
    assert msg.split(":")[0].strip() == named, msg


def layouts(a):
    """Arrays equal to `a` in odd memory layouts."""
    out = {"fortran": np.asfortranarray(a), "list": a.tolist()}
    neg = np.flip(a, axis=0).copy()
    out["negative stride"] = np.flip(neg, axis=0)
    ro = a.copy()
    ro.flags.writeable = False
    out["read-only"] = ro
    big = np.zeros((2,) + a.shape, a.dtype)
    big[0] = a
    out["strided view"] = big[0::2][0] if a.ndim else big[0]
    if a.ndim == 2:
        out["np.matrix"] = np.matrix(a)  # its * is a matrix product: must not reach the math
    if a.ndim >= 1:
        # broadcast (zero stride): only when a is constant along axis 0
        out["broadcast"] = None
    return out


@pytest.mark.parametrize("backend_name", ["reference", "native"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_odd_layouts_give_the_same_answer(cell, backend_name):
    mod = ref if backend_name == "reference" else rnnkit
    kw = good_args(cell)
    want = getattr(mod, f"{cell}_forward")(**kw)
    tried = 0
    for name in ARRAY_ARGS[cell]:
        for what, arr in layouts(kw[name]).items():
            if arr is None:
                continue
            got = getattr(mod, f"{cell}_forward")(**dict(kw, **{name: arr}))
            np.testing.assert_array_equal(got.y, want.y, err_msg=f"{name} {what}")
            tried += 1
    # broadcast (zero-stride) h0 and bias arrays
    h0 = np.broadcast_to(kw["h0"][0], kw["h0"].shape)
    got = getattr(mod, f"{cell}_forward")(**dict(kw, h0=h0))
    want_b = getattr(mod, f"{cell}_forward")(**dict(kw, h0=np.ascontiguousarray(h0)))
    np.testing.assert_array_equal(got.y, want_b.y)
    assert tried >= 20
    assert kw["x"].flags.writeable  # inputs are never written: checked by equality above


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_zero_size_inputs(backend, cell):
    for shape in [(0, B, I), (T, 0, I), (T, B, 0)]:
        kw = good_args(cell)
        kw["x"] = np.zeros(shape)
        if shape[1] == 0:
            kw["h0"] = np.zeros((0, H))
            if cell == "lstm":
                kw["c0"] = np.zeros((0, H))
        if shape[2] == 0:
            kw["w_ih"] = np.zeros((G[cell] * H, 0))
        out = getattr(backend, f"{cell}_forward")(**kw)
        assert out.y.shape == (shape[0], shape[1], H)
        g = getattr(backend, f"{cell}_backward")(out.cache)
        assert g.dx.shape == shape


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sizes_too_large_to_allocate_fail_cleanly(cell):
    """x of shape (2^20, 2^20, 0) is a valid, empty array; the outputs [T, B, H] (52 TB) are not
    allocatable: a MemoryError or ValueError from NumPy, before any kernel runs."""
    kw = good_args(cell)
    kw["x"] = np.zeros((2**20, 2**20, 0))
    kw["w_ih"] = np.zeros((G[cell] * H, 0))
    kw["h0"] = None
    kw.pop("c0", None)
    for mod in (ref, rnnkit):
        with pytest.raises((MemoryError, ValueError)):
            getattr(mod, f"{cell}_forward")(**kw)


def test_bad_option_values_on_both_backends():
    rows = [
        ("rnn", {"nonlinearity": "sigmoid"}),
        ("rnn", {"nonlinearity": 1}),
        ("lstm", {"clip": 0.0}),
        ("lstm", {"clip": -1}),
        ("lstm", {"clip": float("nan")}),
        ("gru", {"clip": float("inf")}),
        ("gru", {"clip": True}),
        ("gru", {"clip": "2"}),
        ("lstm", {"lengths": np.array([1.0, 2.0, 3.0])}),
        ("lstm", {"lengths": np.array([5, 1, 1])}),
        ("gru", {"lengths": np.array([-1, 1, 1])}),
        ("rnn", {"lengths": np.array([True, False, True])}),
        ("rnn", {"lengths": [[1, 2, 3]]}),
        ("lstm", {"reverse": "yes"}),
        ("gru", {"reverse": 2}),
    ]
    for cell, over in rows:
        kw = dict(good_args(cell), **over)
        a, b = outcome(ref, cell, kw), outcome(rnnkit, cell, kw)
        assert a[0] in ("ValueError", "TypeError"), (cell, over, a)
        assert a == b, (cell, over, a, b)
        key = next(iter(over))
        assert key in a[1], (cell, over, a[1])


def test_unknown_simd_target_and_thread_count():
    with pytest.raises(ValueError, match="unknown SIMD target 'neon'"):
        rnnkit.set_simd_target("neon")
    with pytest.raises(ValueError, match="n: expected a thread count >= 1"):
        rnnkit.set_num_threads(-3)


def test_cache_from_another_cell_or_call():
    lstm = rnnkit.lstm_forward(**good_args("lstm"))
    gru = rnnkit.gru_forward(**good_args("gru"))
    for mod in (ref, rnnkit):
        with pytest.raises(TypeError, match="cache"):
            mod.gru_backward(lstm.cache)
        with pytest.raises(TypeError, match="cache"):
            mod.lstm_backward(gru.cache)
        bad = lstm.cache._replace(gates=lstm.cache.gates[:, :, :-1])
        with pytest.raises(ValueError, match="cache.gates"):
            mod.lstm_backward(bad)
        with pytest.raises(ValueError, match="dy"):
            mod.lstm_backward(lstm.cache, dy=np.zeros((T, B, H + 1)))


def test_count_of_hostile_rows(capsys):
    """How many bad inputs the table tries (reported in the issue note)."""
    print(f"hostile rows: {len(HOSTILE)}")
    assert len(HOSTILE) > 150
