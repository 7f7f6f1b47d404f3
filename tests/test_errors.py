"""Every documented error (API.md section 7), for every argument of every function, on every
backend: the exception type and a message that names the argument (and, for shapes, the
expected and the actual shape). Both backends validate with the same code (rnnkit._checks),
so the same bad input raises the same message in each; the last tests check the validator's
normalised output (contiguity, materialised zeros, the int64 copy of lengths).
"""

import re

import numpy as np
import pytest
from conftest import HAVE_NATIVE

import rnnkit
import rnnkit.reference
from rnnkit import _checks

T, B, I, H, P = 4, 3, 5, 6, 4
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
CELLS = ["rnn", "lstm", "gru"]


def good(cell, dtype=np.float32, proj=False, peep=False, clip=None):
    """Valid keyword arguments of <cell>_forward with every array given."""
    G = GATES[cell]
    Pd = P if proj else H
    rng = np.random.default_rng(0)

    def a(*s):
        return rng.standard_normal(s).astype(dtype)

    kw = {
        "x": a(T, B, I),
        "w_ih": a(G * H, I),
        "w_hh": a(G * H, Pd),
        "b_ih": a(G * H),
        "b_hh": a(G * H),
        "h0": a(B, Pd),
        "lengths": np.array([4, 1, 0]),
        "clip": clip,
    }
    if cell == "lstm":
        kw["c0"] = a(B, H)
        if proj:
            kw["w_proj"] = a(P, H)
        if peep:
            kw["w_peep"] = a(3, H)
    return kw


def forward(backend, cell, **over):
    kw = good(cell, proj=over.pop("_proj", False))
    kw.update(over)
    return getattr(backend, f"{cell}_forward")(**kw)


def f32(*shape):
    return np.zeros(shape, np.float32)


def shape_msg(name, expected, got):
    return re.escape(f"{name}: expected shape {expected}, got {got}")


# (cells, overrides, exception, message regex). Sizes: T=4, B=3, I=5, H=6, P=4; G*H rows.
def forward_errors():
    cases = []
    for cell in CELLS:
        GH = GATES[cell] * H
        c = [cell]
        cases += [
            # x: rank, dtype, not an array
            (
                c,
                {"x": f32(T, B)},
                ValueError,
                re.escape("x: expected a 3-D array [T, B, I], got shape (4, 3)"),
            ),
            (
                c,
                {"x": f32(1, T, B, I)},
                ValueError,
                re.escape("x: expected a 3-D array [T, B, I], got shape (1, 4, 3, 5)"),
            ),
            (
                c,
                {"x": np.float32(1.0)},
                ValueError,
                re.escape("x: expected a 3-D array [T, B, I], got shape ()"),
            ),
            (
                c,
                {"x": np.zeros((T, B, I), np.int64)},
                TypeError,
                "x: expected dtype float32 or float64, got int64",
            ),
            (
                c,
                {"x": np.zeros((T, B, I), np.float16)},
                TypeError,
                "x: expected dtype float32 or float64, got float16",
            ),
            (
                c,
                {"x": np.zeros((T, B, I), np.complex128)},
                TypeError,
                "x: expected dtype float32 or float64, got complex128",
            ),
            (
                c,
                {"x": np.zeros((T, B, I), bool)},
                TypeError,
                "x: expected dtype float32 or float64, got bool",
            ),
            (
                c,
                {"x": np.zeros((T, B, I), object)},
                TypeError,
                "x: expected dtype float32 or float64, got object",
            ),
            (c, {"x": [[[1.0, 2.0]], [[1.0]]]}, TypeError, "x: expected an array"),
            (c, {"x": None}, TypeError, re.escape("x: expected a 3-D array [T, B, I], got None")),
            # a list x is float64 to NumPy: the error names x and says so (not "w_hh: expected
            # dtype float64", which blamed the weights for a dtype the user never chose)
            (
                c,
                {"x": np.zeros((T, B, I)).tolist()},
                TypeError,
                re.escape(
                    "x: expected an array of dtype float32 (the dtype of w_hh), got a list, which "
                    "NumPy makes float64; pass np.asarray(x, dtype=np.float32)"
                ),
            ),
            (
                c,
                {"w_ih": np.zeros((GH, I)).tolist()},
                TypeError,
                re.escape(
                    "w_ih: expected dtype float32 (the dtype of x), got float64 (list input: NumPy "
                    "makes it float64"
                ),
            ),
            # masked arrays are refused: rnnkit would compute with the masked-out values
            (
                c,
                {"x": np.ma.masked_array(f32(T, B, I), mask=True)},
                TypeError,
                re.escape(
                    "x: expected an array, got a masked array (rnnkit ignores no entries: pass "
                    "lengths for variable-length sequences, or x.filled(0) to drop the mask)"
                ),
            ),
            (
                c,
                {"w_hh": np.ma.masked_array(f32(GH, H))},
                TypeError,
                "w_hh: expected an array, got a masked array",
            ),
            (
                c,
                {"h0": np.ma.masked_array(f32(B, H))},
                TypeError,
                "h0: expected an array, got a masked array",
            ),
            (
                c,
                {"lengths": np.ma.masked_array([4, 1, 0])},
                TypeError,
                "lengths: expected an array, got a masked array",
            ),
            # w_ih
            (c, {"w_ih": f32(GH, I - 1)}, ValueError, shape_msg("w_ih", (GH, I), (GH, I - 1))),
            (c, {"w_ih": f32(GH)}, ValueError, shape_msg("w_ih", (GH, I), f"({GH},)")),
            (
                c,
                {"w_ih": np.zeros((GH, I))},
                TypeError,
                re.escape("w_ih: expected dtype float32 (the dtype of x), got float64"),
            ),
            (
                c,
                {"w_ih": None},
                TypeError,
                re.escape(f"w_ih: expected an array of shape {(GH, I)}, got None"),
            ),
            # w_hh: gives H (rows / G)
            (c, {"w_hh": f32(GH, H - 1)}, ValueError, shape_msg("w_hh", (GH, H), (GH, H - 1))),
            (
                c,
                {"w_hh": f32(GH, H, 1)},
                ValueError,
                r"w_hh: expected a 2-D array .*got shape \(%d, 6, 1\)" % GH,
            ),
            (
                c,
                {"w_hh": np.zeros((GH, H), np.float64)},
                TypeError,
                re.escape("w_hh: expected dtype float32 (the dtype of x), got float64"),
            ),
            (c, {"w_hh": None}, TypeError, "w_hh: expected a 2-D array"),
            # biases
            (c, {"b_ih": f32(GH + 1)}, ValueError, shape_msg("b_ih", f"({GH},)", f"({GH + 1},)")),
            (c, {"b_ih": f32(1, GH)}, ValueError, shape_msg("b_ih", f"({GH},)", (1, GH))),
            (
                c,
                {"b_ih": np.zeros(GH, np.int32)},
                TypeError,
                re.escape("b_ih: expected dtype float32 (the dtype of x), got int32"),
            ),
            (c, {"b_hh": f32(GH - 1)}, ValueError, shape_msg("b_hh", f"({GH},)", f"({GH - 1},)")),
            (
                c,
                {"b_hh": np.zeros(GH)},
                TypeError,
                re.escape("b_hh: expected dtype float32 (the dtype of x), got float64"),
            ),
            # h0
            (c, {"h0": f32(B + 1, H)}, ValueError, shape_msg("h0", (B, H), (B + 1, H))),
            (c, {"h0": f32(1, B, H)}, ValueError, shape_msg("h0", (B, H), (1, B, H))),
            (
                c,
                {"h0": np.zeros((B, H))},
                TypeError,
                re.escape("h0: expected dtype float32 (the dtype of x), got float64"),
            ),
            # clip
            (c, {"clip": 0}, ValueError, re.escape("clip: expected a finite number > 0, got 0")),
            (
                c,
                {"clip": -1.5},
                ValueError,
                re.escape("clip: expected a finite number > 0, got -1.5"),
            ),
            (c, {"clip": np.float32(0)}, ValueError, "clip: expected a finite number > 0"),
            (c, {"clip": float("nan")}, ValueError, "clip: expected a finite number > 0, got nan"),
            (c, {"clip": float("inf")}, ValueError, "clip: expected a finite number > 0, got inf"),
            (
                c,
                {"clip": -float("inf")},
                ValueError,
                "clip: expected a finite number > 0, got -inf",
            ),
            (c, {"clip": "1"}, TypeError, "clip: expected a number or None, got str"),
            (c, {"clip": True}, TypeError, "clip: expected a number or None, got bool"),
            (c, {"clip": np.ones(1)}, TypeError, "clip: expected a number or None, got ndarray"),
            # clip is validated in the call's dtype (float32 here): one that becomes 0, a
            # subnormal or inf there would clip to something else than what was asked
            (
                c,
                {"clip": 1e-46},
                ValueError,
                re.escape(
                    "clip: expected a number in [1.175e-38, 3.403e+38] (the normal positive "
                    "float32 numbers: clipping is done in the dtype of x), got 1e-46, which is "
                    "0.0 in float32"
                ),
            ),
            (c, {"clip": 1e-300}, ValueError, re.escape("got 1e-300, which is 0.0 in float32")),
            (
                c,
                {"clip": 1e-40},
                ValueError,
                re.escape("got 1e-40, which is a subnormal number in float32"),
            ),
            (c, {"clip": 1e39}, ValueError, re.escape("got 1e+39, which is inf in float32")),
            (
                c,
                {"clip": 10**400},
                ValueError,
                re.escape(
                    "clip: expected a finite number, got an integer of about 401 digits, too large "
                    "for a float"
                ),
            ),
            (c, {"clip": -(10**400)}, ValueError, "clip: expected a finite number, got a negative"),
            # lengths
            (c, {"lengths": np.array([1, 2])}, ValueError, shape_msg("lengths", "(3,)", "(2,)")),
            (
                c,
                {"lengths": np.array([[1, 2, 3]])},
                ValueError,
                shape_msg("lengths", "(3,)", (1, 3)),
            ),
            (
                c,
                {"lengths": np.array([1, 5, 2])},
                ValueError,
                re.escape("lengths: expected values in [0, T=4], got 5 at index 1"),
            ),
            (
                c,
                {"lengths": np.array([1, 2, -1], np.int8)},
                ValueError,
                re.escape("lengths: expected values in [0, T=4], got -1 at index 2"),
            ),
            (
                c,
                {"lengths": np.array([1.0, 2.0, 3.0])},
                TypeError,
                "lengths: expected an integer array, got dtype float64",
            ),
            (
                c,
                {"lengths": np.array([True, False, True])},
                TypeError,
                "lengths: expected an integer array, got dtype bool",
            ),
            (c, {"lengths": [1, 2.5, 3]}, TypeError, "lengths: expected an integer array"),
            # reverse
            (c, {"reverse": "yes"}, TypeError, "reverse: expected a bool, got 'yes'"),
            (c, {"reverse": 2}, TypeError, "reverse: expected a bool, got 2"),
            (c, {"reverse": None}, TypeError, "reverse: expected a bool, got None"),
        ]
    GH = 4 * H
    lstm = ["lstm"]
    cases += [
        # LSTM only: rows a multiple of 4, c0, peepholes, projection, CIFG
        (
            lstm,
            {"w_hh": f32(GH - 1, H)},
            ValueError,
            re.escape(
                "w_hh: expected a 2-D array [4*H, H] (rows a multiple of 4), got shape (23, 6)"
            ),
        ),
        (lstm, {"c0": f32(B, H + 1)}, ValueError, shape_msg("c0", (B, H), (B, H + 1))),
        (lstm, {"c0": f32(H)}, ValueError, shape_msg("c0", (B, H), f"({H},)")),
        (
            lstm,
            {"c0": np.zeros((B, H))},
            TypeError,
            re.escape("c0: expected dtype float32 (the dtype of x), got float64"),
        ),
        (lstm, {"w_peep": f32(4, H)}, ValueError, shape_msg("w_peep", (3, H), (4, H))),
        (lstm, {"w_peep": f32(3 * H)}, ValueError, shape_msg("w_peep", (3, H), f"({3 * H},)")),
        (
            lstm,
            {"w_peep": np.zeros((3, H))},
            TypeError,
            re.escape("w_peep: expected dtype float32 (the dtype of x), got float64"),
        ),
        (lstm, {"w_proj": f32(P, H + 1)}, ValueError, shape_msg("w_proj", (P, H), (P, H + 1))),
        (
            lstm,
            {"w_proj": f32(P)},
            ValueError,
            re.escape("w_proj: expected a 2-D array [P, H] with H=6, got shape (4,)"),
        ),
        (
            lstm,
            {"w_proj": np.zeros((P, H))},
            TypeError,
            re.escape("w_proj: expected dtype float32 (the dtype of x), got float64"),
        ),
        # with a projection, w_hh and h0 have P columns
        (lstm, {"w_proj": f32(P, H)}, ValueError, shape_msg("w_hh", (GH, P), (GH, H))),
        (lstm, {"_proj": True, "h0": f32(B, H)}, ValueError, shape_msg("h0", (B, P), (B, H))),
        (
            lstm,
            {"_proj": True, "w_hh": f32(GH - 2, P)},
            ValueError,
            re.escape(
                "w_hh: expected a 2-D array [4*H, P] (rows a multiple of 4), got shape (22, 4)"
            ),
        ),
        (lstm, {"input_forget": "no"}, TypeError, "input_forget: expected a bool, got 'no'"),
        (lstm, {"input_forget": None}, TypeError, "input_forget: expected a bool, got None"),
        # GRU only
        (
            ["gru"],
            {"w_hh": f32(3 * H + 1, H)},
            ValueError,
            re.escape(
                "w_hh: expected a 2-D array [3*H, H] (rows a multiple of 3), got shape (19, 6)"
            ),
        ),
        (
            ["gru"],
            {"linear_before_reset": None},
            TypeError,
            "linear_before_reset: expected a bool, got None",
        ),
        (
            ["gru"],
            {"linear_before_reset": "False"},
            TypeError,
            "linear_before_reset: expected a bool, got 'False'",
        ),
        # RNN only: any row count is H; nonlinearity
        (
            ["rnn"],
            {"w_hh": f32(H + 1, H)},
            ValueError,
            shape_msg("w_hh", (H + 1, H + 1), (H + 1, H)),
        ),
        (
            ["rnn"],
            {"w_hh": f32(H)},
            ValueError,
            re.escape("w_hh: expected a 2-D array [H, H], got shape (6,)"),
        ),
        (
            ["rnn"],
            {"nonlinearity": "sigmoid"},
            ValueError,
            "nonlinearity: expected 'tanh' or 'relu', got 'sigmoid'",
        ),
        (["rnn"], {"nonlinearity": "TANH"}, ValueError, "nonlinearity: expected 'tanh' or 'relu'"),
        (
            ["rnn"],
            {"nonlinearity": None},
            ValueError,
            "nonlinearity: expected 'tanh' or 'relu', got None",
        ),
    ]
    cases += option_errors()
    return [(cell, over, exc, msg) for cells, over, exc, msg in cases for cell in cells]


def option_errors():
    """The options of API.md section 11: shapes, dtypes, ranges, cells, resets with reverse."""
    cases = []
    for cell in CELLS:
        GH = GATES[cell] * H
        c = [cell]
        ok_resets = np.zeros((T, B), bool)
        cases += [
            (c, {"ln_ih": f32(2, GH - 1)}, ValueError, shape_msg("ln_ih", (2, GH), (2, GH - 1))),
            (
                c,
                {"ln_ih": np.ones((2, GH))},
                TypeError,
                re.escape("ln_ih: expected dtype float32 (the dtype of x), got float64"),
            ),
            (c, {"ln_hh": f32(3, GH)}, ValueError, shape_msg("ln_hh", (2, GH), (3, GH))),
            (
                c,
                {"ln_hh": np.ones((2, GH), np.int32)},
                TypeError,
                re.escape("ln_hh: expected dtype float32 (the dtype of x), got int32"),
            ),
            (c, {"zoneout": f32(T, B)}, ValueError, shape_msg("zoneout", (T, B, H), (T, B))),
            (
                c,
                {"zoneout": np.zeros((T, B, H))},
                TypeError,
                re.escape("zoneout: expected dtype float32 (the dtype of x), got float64"),
            ),
            (
                c,
                {"zoneout": f32(T, B, H) + 1.5},
                ValueError,
                re.escape("zoneout: expected values in [0, 1], got 1.5 at index (0, 0, 0)"),
            ),
            (
                c,
                {
                    "zoneout": np.where(
                        np.arange(T * B * H).reshape(T, B, H) == 7, -0.25, 0.5
                    ).astype(np.float32)
                },
                ValueError,
                re.escape("zoneout: expected values in [0, 1], got -0.25 at index (0, 1, 1)"),
            ),
            (
                c,
                {"zoneout": np.full((T, B, H), np.nan, np.float32)},
                ValueError,
                re.escape("zoneout: expected values in [0, 1], got nan at index (0, 0, 0)"),
            ),
            (
                c,
                {"recurrent_mask": f32(B, H + 1)},
                ValueError,
                shape_msg("recurrent_mask", (B, H), (B, H + 1)),
            ),
            (
                c,
                {"recurrent_mask": f32(T, B, H)},
                ValueError,
                shape_msg("recurrent_mask", (B, H), (T, B, H)),
            ),
            (
                c,
                {"recurrent_mask": np.ones((B, H))},
                TypeError,
                re.escape("recurrent_mask: expected dtype float32 (the dtype of x), got float64"),
            ),
            (
                c,
                {"resets": np.zeros((T, B), np.int64)},
                TypeError,
                "resets: expected dtype bool, got int64",
            ),
            (
                c,
                {"resets": np.zeros((T, B), np.float32)},
                TypeError,
                "resets: expected dtype bool, got float32",
            ),
            (
                c,
                {"resets": np.zeros((T, B + 1), bool)},
                ValueError,
                shape_msg("resets", (T, B), (T, B + 1)),
            ),
            (c, {"resets": np.zeros(B, bool)}, ValueError, shape_msg("resets", (T, B), "(3,)")),
            (
                c,
                {"resets": ok_resets, "reverse": True},
                ValueError,
                re.escape("resets: expected None with reverse=True"),
            ),
        ]
    cases += [
        (["lstm"], {"ln_c": f32(2, H + 1)}, ValueError, shape_msg("ln_c", (2, H), (2, H + 1))),
        (
            ["lstm"],
            {"ln_c": np.ones((2, H))},
            TypeError,
            re.escape("ln_c: expected dtype float32 (the dtype of x), got float64"),
        ),
        (
            ["lstm"],
            {"zoneout_c": f32(T, B, H + 1)},
            ValueError,
            shape_msg("zoneout_c", (T, B, H), (T, B, H + 1)),
        ),
        (
            ["lstm"],
            {"zoneout_c": f32(T, B, H) - 1},
            ValueError,
            re.escape("zoneout_c: expected values in [0, 1], got -1.0 at index (0, 0, 0)"),
        ),
        (
            ["lstm"],
            {"zoneout_c": np.zeros((T, B, H))},
            TypeError,
            re.escape("zoneout_c: expected dtype float32 (the dtype of x), got float64"),
        ),
        # with a projection, h (and its masks) have P columns, c keeps H
        (
            ["lstm"],
            {"zoneout": f32(T, B, H), "_proj": True},
            ValueError,
            shape_msg("zoneout", (T, B, P), (T, B, H)),
        ),
        (
            ["lstm"],
            {"recurrent_mask": f32(B, H), "_proj": True},
            ValueError,
            shape_msg("recurrent_mask", (B, P), (B, H)),
        ),
        (["rnn", "gru"], {"ln_c": f32(2, H)}, TypeError, "unexpected keyword argument 'ln_c'"),
        (
            ["rnn", "gru"],
            {"zoneout_c": f32(T, B, H)},
            TypeError,
            "unexpected keyword argument 'zoneout_c'",
        ),
    ]
    return cases


FORWARD_ERRORS = forward_errors()
FORWARD_IDS = [
    f"{i}-{c}-{'-'.join(k for k in o if k != '_proj')}"
    for i, (c, o, _, _) in enumerate(FORWARD_ERRORS)
]


@pytest.mark.parametrize("cell,over,exc,msg", FORWARD_ERRORS, ids=FORWARD_IDS)
def test_forward_errors(backend, cell, over, exc, msg):
    with pytest.raises(exc, match=msg):
        forward(backend, cell, **over)


def test_every_forward_argument_is_covered():
    covered = {(cell, k) for cell, over, _, _ in FORWARD_ERRORS for k in over}
    for cell in CELLS:
        fwd = getattr(rnnkit.reference, f"{cell}_forward")
        names = fwd.__code__.co_varnames[
            : fwd.__code__.co_argcount + fwd.__code__.co_kwonlyargcount
        ]
        missing = {n for n in names if (cell, n) not in covered}
        assert not missing, (cell, missing)


@pytest.mark.skipif(not HAVE_NATIVE, reason="native backend not built")
def test_both_backends_raise_the_same_message():
    for cell, over, exc, _ in FORWARD_ERRORS:
        msgs = []
        for mod in (rnnkit.reference, rnnkit):
            with pytest.raises(exc) as info:
                forward(mod, cell, **dict(over))
            msgs.append(str(info.value))
        assert msgs[0] == msgs[1], (cell, over)


# --- backward --------------------------------------------------------------------------------


def cache_of(backend, cell, proj=False, clip=None):
    kw = good(cell, proj=proj, peep=cell == "lstm", clip=clip)
    return getattr(backend, f"{cell}_forward")(**kw).cache


@pytest.mark.parametrize("cell", CELLS)
def test_backward_output_gradients(backend, cell):
    """dy [T, B, P], dh_n [B, P], dc_n [B, H], all in the cache's dtype."""
    for proj in [False, True] if cell == "lstm" else [False]:
        Pd = P if proj else H
        cache = cache_of(backend, cell, proj)
        bwd = getattr(backend, f"{cell}_backward")
        bad = [
            ({"dy": f32(T, B, Pd + 1)}, ValueError, shape_msg("dy", (T, B, Pd), (T, B, Pd + 1))),
            ({"dy": f32(T, B)}, ValueError, shape_msg("dy", (T, B, Pd), (T, B))),
            (
                {"dy": np.zeros((T, B, Pd))},
                TypeError,
                re.escape("dy: expected dtype float32 (the dtype of cache.x), got float64"),
            ),
            ({"dy": [[["a"]]]}, TypeError, "dy: expected dtype float32"),
            ({"dh_n": f32(Pd)}, ValueError, shape_msg("dh_n", (B, Pd), f"({Pd},)")),
            ({"dh_n": f32(B, Pd + 2)}, ValueError, shape_msg("dh_n", (B, Pd), (B, Pd + 2))),
            (
                {"dh_n": np.zeros((B, Pd))},
                TypeError,
                re.escape("dh_n: expected dtype float32 (the dtype of cache.x), got float64"),
            ),
        ]
        if cell == "lstm":
            bad += [
                ({"dc_n": f32(B, H - 1)}, ValueError, shape_msg("dc_n", (B, H), (B, H - 1))),
                ({"dc_n": f32(B, Pd, 1)}, ValueError, shape_msg("dc_n", (B, H), (B, Pd, 1))),
                (
                    {"dc_n": np.zeros((B, H), np.float16)},
                    TypeError,
                    re.escape("dc_n: expected dtype float32 (the dtype of cache.x), got float16"),
                ),
            ]
        for kw, exc, msg in bad:
            with pytest.raises(exc, match=msg):
                bwd(cache, **kw)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_cache_class(backend, cell):
    bwd = getattr(backend, f"{cell}_backward")
    name = {"rnn": "an RNNCache", "lstm": "an LSTMCache", "gru": "a GRUCache"}[cell]
    for other in CELLS:
        if other != cell:
            wrong = cache_of(backend, other)
            with pytest.raises(
                TypeError,
                match=re.escape(
                    f"cache: expected {name} (from {cell}_forward), got {type(wrong).__name__}"
                ),
            ):
                bwd(wrong)
    expected = f"cache: expected {name} (from {cell}_forward), got "
    with pytest.raises(TypeError, match=re.escape(expected + "tuple")):
        bwd(tuple(cache_of(backend, cell)))
    with pytest.raises(TypeError, match=re.escape(expected + "NoneType")):
        bwd(None)


def tampered(cell):
    """(field, bad value maker, exception, message regex): one per check of a cache field."""
    G = GATES[cell]
    GH = G * H
    cases = [
        (
            "x",
            lambda v: v[0],
            ValueError,
            re.escape("cache.x: expected a 3-D array [T, B, I], got shape (3, 5)"),
        ),
        (
            "x",
            lambda v: v.astype(np.int32),
            TypeError,
            "cache.x: expected dtype float32 or float64, got int32",
        ),
        ("w_ih", lambda v: v[:, 1:], ValueError, shape_msg("cache.w_ih", (GH, I), (GH, I - 1))),
        (
            "w_ih",
            lambda v: v.astype(np.float64),
            TypeError,
            re.escape("cache.w_ih: expected dtype float32 (the dtype of cache.x), got float64"),
        ),
        ("w_hh", lambda v: v[:, 1:], ValueError, shape_msg("cache.w_hh", (GH, H), (GH, H - 1))),
        (
            "w_hh",
            lambda v: v.astype(np.float64),
            TypeError,
            re.escape("cache.w_hh: expected dtype float32 (the dtype of cache.x), got float64"),
        ),
        ("b_ih", lambda v: v[1:], ValueError, shape_msg("cache.b_ih", f"({GH},)", f"({GH - 1},)")),
        (
            "b_hh",
            lambda v: v.astype(np.float64),
            TypeError,
            re.escape("cache.b_hh: expected dtype float32 (the dtype of cache.x), got float64"),
        ),
        ("h", lambda v: v[:-1], ValueError, shape_msg("cache.h", (T + 1, B, H), (T, B, H))),
        (
            "h",
            lambda v: v.astype(np.float64),
            TypeError,
            re.escape("cache.h: expected dtype float32 (the dtype of cache.x), got float64"),
        ),
        (
            "gates",
            lambda v: v[..., :-1],
            ValueError,
            shape_msg("cache.gates", (T, B, GH), (T, B, GH - 1)),
        ),
        (
            "gates",
            lambda v: v.astype(np.float64),
            TypeError,
            re.escape("cache.gates: expected dtype float32 (the dtype of cache.x), got float64"),
        ),
        ("gates", lambda v: None, TypeError, "cache.gates: expected an array of shape"),
        (
            "lengths",
            lambda v: np.array([4, 9, 0]),
            ValueError,
            re.escape("cache.lengths: expected values in [0, T=4], got 9 at index 1"),
        ),
        (
            "lengths",
            lambda v: np.array([4, -2, 0]),
            ValueError,
            re.escape("cache.lengths: expected values in [0, T=4], got -2 at index 1"),
        ),
        ("lengths", lambda v: v[:2], ValueError, shape_msg("cache.lengths", "(3,)", "(2,)")),
        (
            "lengths",
            lambda v: v.astype(np.float64),
            TypeError,
            "cache.lengths: expected an integer array, got dtype float64",
        ),
        ("reverse", lambda v: "no", TypeError, "cache.reverse: expected a bool, got 'no'"),
        ("clip", lambda v: -1.0, ValueError, "cache.clip: expected a finite number > 0, got -1.0"),
        ("clip", lambda v: float("nan"), ValueError, "cache.clip: expected a finite number > 0"),
        ("clip", lambda v: "0.5", TypeError, "cache.clip: expected a number or None, got str"),
        (
            "clip",
            lambda v: 1e-46,
            ValueError,
            re.escape("cache.clip: expected a number in [1.175e-38, 3.403e+38]"),
        ),
        (
            "clip_mask",
            lambda v: v.astype(np.uint8),
            TypeError,
            "cache.clip_mask: expected dtype bool, got uint8",
        ),
        (
            "clip_mask",
            lambda v: v[:, :, :-1],
            ValueError,
            shape_msg("cache.clip_mask", (T, B, GH), (T, B, GH - 1)),
        ),
        (
            "clip_mask",
            lambda v: None,
            TypeError,
            re.escape(
                f"cache.clip_mask: expected a bool array of shape {(T, B, GH)} "
                "(cache.clip is set), got None"
            ),
        ),
    ]
    if cell == "rnn":
        cases += [
            (
                "nonlinearity",
                lambda v: "gelu",
                ValueError,
                "cache.nonlinearity: expected 'tanh' or 'relu', got 'gelu'",
            )
        ]
    if cell == "lstm":
        cases += [
            ("c", lambda v: v[1:, :2], ValueError, shape_msg("cache.c", (T + 1, B, H), (T, 2, H))),
            (
                "c",
                lambda v: v.astype(np.float64),
                TypeError,
                re.escape("cache.c: expected dtype float32 (the dtype of cache.x), got float64"),
            ),
            ("w_peep", lambda v: v[:2], ValueError, shape_msg("cache.w_peep", (3, H), (2, H))),
            (
                "w_peep",
                lambda v: v.astype(np.float64),
                TypeError,
                re.escape(
                    "cache.w_peep: expected dtype float32 (the dtype of cache.x), got float64"
                ),
            ),
            (
                "w_proj",
                lambda v: np.zeros((P, H), np.float32),
                ValueError,
                shape_msg("cache.w_hh", (GH, P), (GH, H)),
            ),  # a projection the states don't have
            ("input_forget", lambda v: "yes", TypeError, "cache.input_forget: expected a bool"),
        ]
    if cell == "gru":
        cases += [
            (
                "hn",
                lambda v: v[:, :, :-1],
                ValueError,
                shape_msg("cache.hn", (T, B, H), (T, B, H - 1)),
            ),
            (
                "hn",
                lambda v: v.astype(np.float64),
                TypeError,
                re.escape("cache.hn: expected dtype float32 (the dtype of cache.x), got float64"),
            ),
            (
                "linear_before_reset",
                lambda v: None,
                TypeError,
                "cache.linear_before_reset: expected a bool, got None",
            ),
        ]
    cases += [  # the options of API.md section 11 (the cache has none of them)
        (
            "ln_ih",
            lambda v: f32(2, GH - 1),
            ValueError,
            shape_msg("cache.ln_ih", (2, GH), (2, GH - 1)),
        ),
        (
            "ln_hh",
            lambda v: np.ones((2, GH)),
            TypeError,
            re.escape("cache.ln_hh: expected dtype float32 (the dtype of cache.x), got float64"),
        ),
        (
            "zoneout",
            lambda v: f32(T, B, H) + 2,
            ValueError,
            re.escape("cache.zoneout: expected values in [0, 1], got 2.0 at index (0, 0, 0)"),
        ),
        (
            "recurrent_mask",
            lambda v: f32(B, H - 1),
            ValueError,
            shape_msg("cache.recurrent_mask", (B, H), (B, H - 1)),
        ),
        (
            "resets",
            lambda v: np.zeros((T, B), np.uint8),
            TypeError,
            "cache.resets: expected dtype bool, got uint8",
        ),
        (
            "ih_hat",
            lambda v: f32(T, B, GH),
            ValueError,
            re.escape("cache.ih_hat: expected None (no layer norm it belongs to), got an array"),
        ),
        ("hh_hat", lambda v: f32(T, B, GH), ValueError, "cache.hh_hat: expected None"),
        ("ln_rstd", lambda v: f32(T, B, 4), ValueError, "cache.ln_rstd: expected None"),
    ]
    if cell == "lstm":
        cases += [
            (
                "ln_c",
                lambda v: f32(2, H + 1),
                ValueError,
                shape_msg("cache.ln_c", (2, H), (2, H + 1)),
            ),
            (
                "zoneout_c",
                lambda v: f32(T, B, 1),
                ValueError,
                shape_msg("cache.zoneout_c", (T, B, H), (T, B, 1)),
            ),
            ("c_hat", lambda v: f32(T, B, H), ValueError, "cache.c_hat: expected None"),
        ]
    return cases


@pytest.mark.parametrize("cell", CELLS)
def test_backward_layer_norm_cache(backend, cell):
    """A cache with a layer norm needs its statistics: missing or misshapen ones are refused."""
    GH = GATES[cell] * H
    kw = good(cell, np.float64)
    kw.update(ln_ih=np.ones((2, GH)), ln_hh=np.ones((2, GH)), lengths=None)
    cache = rnnkit.reference.__dict__[f"{cell}_forward"](**kw).cache
    bwd = getattr(backend, f"{cell}_backward")
    with pytest.raises(
        TypeError,
        match=re.escape(f"cache.ih_hat: expected an array of shape {(T, B, GH)}, got None"),
    ):
        bwd(cache._replace(ih_hat=None))
    with pytest.raises(ValueError, match=shape_msg("cache.ln_rstd", (T, B, 4), (T, B, 3))):
        bwd(cache._replace(ln_rstd=cache.ln_rstd[..., :3]))


@pytest.mark.parametrize("cell", CELLS)
def test_backward_cache_consistency(backend, cell):
    """A cache whose fields disagree (or are out of range) is refused, naming the field."""
    cache = cache_of(backend, cell, clip=0.5)
    bwd = getattr(backend, f"{cell}_backward")
    bwd(cache)  # the untouched cache is fine
    cases = tampered(cell)
    assert {f for f, *_ in cases} >= set(cache._fields)  # every field has a check
    for field, make_bad, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            bwd(cache._replace(**{field: make_bad(getattr(cache, field))}))
    # a clip mask without clip (the cache says no clipping happened)
    with pytest.raises(
        ValueError,
        match=re.escape("cache.clip_mask: expected None (cache.clip is None), got an array"),
    ):
        bwd(cache._replace(clip=None))


def test_backward_with_projection_cache(backend):
    cache = cache_of(backend, "lstm", proj=True)
    with pytest.raises(ValueError, match=shape_msg("cache.w_proj", (P, H), (P, H - 1))):
        rnnkit.reference.lstm_backward(cache._replace(w_proj=cache.w_proj[:, 1:]))
    with pytest.raises(ValueError, match=shape_msg("cache.h", (T + 1, B, P), (T + 1, B, H))):
        rnnkit.reference.lstm_backward(cache._replace(h=np.zeros((T + 1, B, H), np.float32)))


# --- what is accepted ------------------------------------------------------------------------


def test_non_contiguous_and_lists_are_accepted(backend):
    kw = good("lstm", np.float64, peep=True)
    want = backend.lstm_forward(**kw)
    odd = dict(
        kw,
        x=np.asfortranarray(kw["x"]),
        w_hh=np.ascontiguousarray(kw["w_hh"].T).T,  # a transposed view
        w_ih=kw["w_ih"].tolist(),
        b_ih=kw["b_ih"][::-1].copy()[::-1],  # negative stride
        w_peep=np.repeat(kw["w_peep"], 2, axis=1)[:, ::2],
        lengths=[4, 1, 0],
    )
    assert not odd["x"].flags.c_contiguous and not odd["b_ih"].flags.c_contiguous
    got = backend.lstm_forward(**odd)
    np.testing.assert_array_equal(got.y, want.y)
    np.testing.assert_array_equal(got.c_n, want.c_n)
    g = backend.lstm_backward(got.cache, dy=np.asfortranarray(np.ones_like(got.y)))
    g_want = backend.lstm_backward(want.cache, dy=np.ones_like(want.y))
    np.testing.assert_array_equal(g.dx, g_want.dx)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_pickled_and_deep_copied_arrays_are_accepted(backend, dt):
    # Unpickled arrays carry an equal but distinct dtype object; the check compares dtypes
    # by equality (a byte-swapped dtype is still refused, see the hostile-input table).
    import copy
    import pickle

    kw = good("lstm", dt, peep=True)
    want = backend.lstm_forward(**kw)
    odd = {k: pickle.loads(pickle.dumps(v)) for k, v in kw.items()}
    assert odd["x"].dtype is not kw["x"].dtype  # what used to be refused
    got = backend.lstm_forward(**odd)
    np.testing.assert_array_equal(got.y, want.y)
    g = backend.lstm_backward(copy.deepcopy(got.cache), dy=pickle.loads(pickle.dumps(got.y)))
    g_want = backend.lstm_backward(want.cache, dy=want.y)
    np.testing.assert_array_equal(g.dx, g_want.dx)
    np.testing.assert_array_equal(g.dw_hh, g_want.dw_hh)


def test_lengths_accept_any_integer_dtype(backend):
    want = forward(backend, "gru")
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64):
        out = forward(backend, "gru", lengths=np.array([4, 1, 0], dt))
        assert out.cache.lengths.dtype == np.int64
        np.testing.assert_array_equal(out.y, want.y)


@pytest.mark.parametrize("cell", CELLS)
def test_np_matrix_arguments_are_read_as_plain_arrays(backend, cell):
    """np.matrix (whose * is a matrix product) used to reach the reference's arithmetic: with
    B == H its shapes fit and the LSTM/GRU answers were silently wrong. Now every 2-D argument
    may be an np.matrix, and the results are plain arrays equal to those of plain inputs."""
    G, n = GATES[cell], 4  # B == H == n
    rng = np.random.default_rng(1)
    kw = {
        "x": rng.standard_normal((T, n, I)),
        "w_ih": rng.standard_normal((G * n, I)),
        "w_hh": rng.standard_normal((G * n, n)),
        "h0": rng.standard_normal((n, n)),
    }
    if cell == "lstm":
        kw["c0"] = rng.standard_normal((n, n))
    fwd = getattr(backend, f"{cell}_forward")
    want = fwd(**kw)
    got = fwd(**{k: np.matrix(v) if v.ndim == 2 else v for k, v in kw.items()})
    assert type(got.y) is np.ndarray and type(got.cache.h) is np.ndarray
    np.testing.assert_allclose(got.y, want.y, rtol=1e-12, atol=1e-12)
    g = getattr(backend, f"{cell}_backward")(got.cache, dh_n=np.matrix(np.ones((n, n))))
    g_want = getattr(backend, f"{cell}_backward")(want.cache, dh_n=np.ones((n, n)))
    np.testing.assert_allclose(g.dw_hh, g_want.dw_hh, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_clip_at_the_edges_of_the_dtype(backend, cell):
    """The smallest normal clip of each dtype is accepted and clips (every pre-activation of
    this input is far larger), in both backends alike; 1e-300 is fine in float64."""
    for dt, clip in ((np.float32, float(np.finfo(np.float32).tiny)), (np.float64, 1e-300)):
        kw = dict(good(cell, dt, clip=clip), lengths=None)
        kw["x"] = np.full_like(kw["x"], 3.0)
        out = getattr(backend, f"{cell}_forward")(**kw)
        assert out.cache.clip == clip and out.cache.clip_mask.all()
        if backend is not rnnkit.reference:
            ref = getattr(rnnkit.reference, f"{cell}_forward")(**kw)
            np.testing.assert_array_equal(out.cache.clip_mask, ref.cache.clip_mask)
            np.testing.assert_allclose(out.y, ref.y, rtol=1e-5, atol=1e-6)


def _scalar_argument_cases():
    """(call, exception, message): scalar arguments of the public API beyond the functional
    one. Each goes through _checks.check_number: a bool is never a number or a size, and an
    integer too large for a float is a ValueError (it was Python's OverflowError)."""
    lstm = lambda **kw: rnnkit.LSTM(I, H, **kw)  # noqa: E731
    params = lambda: rnnkit.LSTM(I, H)  # noqa: E731
    big = 10**400
    return [
        (
            lambda: lstm(dropout=True),
            TypeError,
            r"dropout: expected a number in \[0, 1\), got bool",
        ),
        (
            lambda: lstm(dropout=big),
            ValueError,
            "dropout: expected a finite number, got an integer",
        ),
        (lambda: rnnkit.LSTM(I, True), TypeError, "hidden_size: expected an integer, got bool"),
        (
            lambda: lstm(num_layers=np.bool_(True)),
            TypeError,
            "num_layers: expected an integer, got bool",
        ),
        (lambda: lstm(backend=None), ValueError, "backend: expected 'native' or 'reference'"),
        (lambda: rnnkit.optim.SGD(params(), lr=True), TypeError, "lr: expected a number, got bool"),
        (
            lambda: rnnkit.optim.SGD(params(), lr=big),
            ValueError,
            "lr: expected a finite number, got an integer of about 401 digits",
        ),
        (lambda: rnnkit.optim.Adam(params(), eps=big), ValueError, "eps: expected a finite number"),
        (
            lambda: rnnkit.optim.GradNormHistory(window=True),
            TypeError,
            "window: expected an integer, got bool",
        ),
        (
            lambda: rnnkit.optim.GradNormHistory(window="5"),
            TypeError,
            "window: expected an integer, got str",
        ),
        (
            lambda: rnnkit.optim.GradNormHistory(window=0),
            ValueError,
            r"window: expected an integer >= 1, got 0",
        ),
        (lambda: rnnkit.set_num_threads(True), TypeError, "n: expected an integer, got bool"),
        (
            lambda: rnnkit.TBPTT(rnnkit.LSTM(I, H), lambda y, t: (0.0, y), k1=True),
            TypeError,
            "k1: expected an integer, got bool",
        ),
        (
            lambda: rnnkit.softmax_cross_entropy(
                np.zeros((2, 3)), np.zeros(2, int), ignore_index=np.bool_(False)
            ),
            TypeError,
            "ignore_index: expected an integer or None, got bool",
        ),
        (lambda: rnnkit.Linear(2, 3, bias="no"), TypeError, "bias: expected a bool, got 'no'"),
    ]


@pytest.mark.parametrize("call,exc,msg", _scalar_argument_cases())
def test_scalar_arguments_share_one_check(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_empty_batch_takes_an_empty_lengths_list(backend):
    out = backend.rnn_forward(f32(T, 0, I), f32(H, I), f32(H, H), lengths=[])
    assert out.y.shape == (T, 0, H) and out.cache.lengths.dtype == np.int64


def test_nan_propagates_and_is_not_an_error(backend):
    kw = dict(good("lstm"), lengths=None)
    kw["x"][1, 0, 0] = np.nan
    out = backend.lstm_forward(**kw)
    assert np.isnan(out.y[1:, 0]).all() and np.isfinite(out.y[:, 1:]).all()
    g = backend.lstm_backward(out.cache, dh_n=np.ones_like(out.h_n))
    assert np.isnan(g.dw_ih).any() and np.isfinite(g.dx[:, 1:]).all()


# --- the shared validator itself -------------------------------------------------------------


def test_check_forward_normalises():
    kw = good("lstm", np.float64, proj=True, peep=True)
    x_f = np.asfortranarray(kw["x"])
    lengths = np.array([4, 1, 0], np.int16)
    f = _checks.check_forward(
        "lstm",
        x_f,
        kw["w_ih"],
        kw["w_hh"],
        None,
        kw["b_hh"],
        None,
        None,
        w_peep=kw["w_peep"],
        w_proj=kw["w_proj"],
        clip=1,
        lengths=lengths,
        reverse=np.bool_(True),
        input_forget=0,
    )
    assert (f.T, f.B, f.I, f.H, f.P, f.G, f.dtype) == (T, B, I, H, P, 4, np.float64)
    for name in ("x", "w_ih", "w_hh", "b_hh", "h0", "c0", "w_peep", "w_proj", "lengths"):
        assert getattr(f, name).flags.c_contiguous, name
    assert f.w_ih is kw["w_ih"]  # contiguous input: no copy
    assert f.b_ih is None
    np.testing.assert_array_equal(f.h0, np.zeros((B, P)))
    np.testing.assert_array_equal(f.c0, np.zeros((B, H)))
    assert f.lengths.dtype == np.int64 and not np.shares_memory(f.lengths, lengths)
    assert f.clip == 1.0 and isinstance(f.clip, float)
    assert f.reverse is True and f.input_forget is False
    g = _checks.check_forward(
        "gru", kw["x"], np.zeros((3 * H, I)), np.zeros((3 * H, H)), None, None, None
    )
    assert g.c0 is None and g.G == 3 and g.lengths is None and g.clip is None


def test_check_backward_normalises():
    cache = rnnkit.reference.gru_forward(**good("gru", np.float64)).cache
    bw = _checks.check_backward("gru", cache, None, None)
    assert bw.dc_n is None
    np.testing.assert_array_equal(bw.dy, np.zeros((T, B, H)))
    np.testing.assert_array_equal(bw.dh_n, np.zeros((B, H)))
    assert type(bw.cache) is type(cache) and bw.cache.h is cache.h
    odd = cache._replace(h=np.asfortranarray(cache.h), lengths=cache.lengths.astype(np.int32))
    bw = _checks.check_backward("gru", odd, None, None)
    assert bw.cache.h.flags.c_contiguous and bw.cache.lengths.dtype == np.int64


def test_check_forward_refuses_lstm_options_elsewhere():
    x = np.zeros((T, B, I))
    w_ih, w_hh = np.zeros((3 * H, I)), np.zeros((3 * H, H))
    for kw, name in [
        ({"w_peep": np.zeros((3, H))}, "w_peep"),
        ({"w_proj": np.zeros((P, H))}, "w_proj"),
        ({"input_forget": True}, "input_forget"),
    ]:
        with pytest.raises(ValueError, match=f"{name}: only the LSTM has it"):
            _checks.check_forward("gru", x, w_ih, w_hh, None, None, None, **kw)
    with pytest.raises(ValueError, match="c0: only the LSTM has it"):
        _checks.check_forward("gru", x, w_ih, w_hh, None, None, None, np.zeros((B, H)))
    with pytest.raises(ValueError, match="cell: expected 'rnn', 'lstm' or 'gru', got 'tcn'"):
        _checks.check_forward("tcn", x, w_ih, w_hh, None, None, None)
    cache = rnnkit.reference.gru_forward(x, w_ih, w_hh).cache
    with pytest.raises(ValueError, match="dc_n: only the LSTM has it"):
        _checks.check_backward("gru", cache, None, None, np.zeros((B, H)))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_byte_swapped_arrays_are_refused(backend, dt):
    # Equal-by-value dtypes are accepted (above); a non-native byte order is another dtype.
    kw = good("gru", dt)
    kw["w_hh"] = kw["w_hh"].astype(kw["w_hh"].dtype.newbyteorder())
    with pytest.raises(TypeError, match="w_hh"):
        backend.gru_forward(**kw)
