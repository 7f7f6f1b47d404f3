"""The options of API.md section 11 in the native kernels against the reference: every output,
cache field and gradient, both dtypes, every SIMD target, odd sizes, lengths, threads, and
caches crossing backends. Layer norm (``ln_ih``, ``ln_hh``, ``ln_c``), ``resets``, ``zoneout``,
``zoneout_c`` and ``recurrent_mask`` run in the kernels, alone and together (with reverse: no
resets, they are refused there); no option is left to the reference
(the last tests pin that down: the kernels' float32 rounding differs from NumPy's)."""

import numpy as np
import pytest
from _cases import assert_thread_count_free, make_problem
from conftest import numeric_grad
from test_native_vs_reference import compare

import rnnkit
import rnnkit.reference as ref

pytestmark = pytest.mark.skipif(not hasattr(rnnkit, "lstm_forward"), reason="native not built")

CONFIGS = [
    ("rnn_tanh", "rnn", {"nonlinearity": "tanh"}),
    ("rnn_relu_clip", "rnn", {"nonlinearity": "relu", "clip": 0.7}),
    ("lstm", "lstm", {}),
    ("lstm_peep", "lstm", {"peep": True}),
    ("lstm_proj", "lstm", {"proj": True}),
    ("lstm_all", "lstm", {"peep": True, "proj": True, "clip": 0.9, "input_forget": True}),
    ("gru", "gru", {"linear_before_reset": True}),
    ("gru_textbook", "gru", {"linear_before_reset": False}),
    ("gru_textbook_clip", "gru", {"linear_before_reset": False, "clip": 0.6}),
]
IDS = [c[0] for c in CONFIGS]
SIZES = [(1, 1, 1, 1), (3, 2, 5, 4), (7, 3, 17, 33), (6, 8, 32, 64)]


def random_resets(T, B, seed, p=0.3):
    rng = np.random.default_rng(seed)
    r = rng.uniform(size=(T, B)) < p
    if T and B:
        r[0, 0] = True  # at step 0: dh0 of that row is 0
    return r


# which native options a test sets: resets, zoneout (of h; zoneout_c too for the LSTM),
# resets + zoneout ("all"), recurrent_mask, the mask with resets and zoneout ("mask_all"), one
# layer norm (ln_c: the LSTM's; the other cells take ln_ih and ln_hh together there), or every
# layer norm with every mask ("ln_all")
OPTION_SETS = ["resets", "zoneout", "all", "mask", "mask_all", "ln_ih", "ln_hh", "ln_c", "ln_all"]
LN_SETS = {
    "ln_ih": ("ln_ih",),
    "ln_hh": ("ln_hh",),
    "ln_c": ("ln_c",),
    "ln_all": ("ln_ih", "ln_hh", "ln_c"),
}


def random_recurrent_mask(B, P, seed):
    """A recurrent mask [B, P]: exact 0s (~30%) and scaled keeps of several sizes."""
    rng = np.random.default_rng(seed)
    return np.where(rng.uniform(size=(B, P)) < 0.3, 0.0, rng.uniform(0.5, 2.0, size=(B, P)))


def random_ln(rng, n, dtype):
    """A layer-norm parameter [2, n]: gains around 1, biases around 0."""
    return np.stack([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n)]).astype(dtype)


def add_options(kw, cell, which, T, B, P, H, seed, reverse=False):
    """Random masks: resets (~30% of steps), zoneout rates in [0, 1] with exact 0s and 1s,
    recurrent masks (random_recurrent_mask); random layer-norm parameters."""
    rng = np.random.default_rng(seed)
    names = LN_SETS.get(which, ())
    if cell != "lstm" and names == ("ln_c",):
        names = ("ln_ih", "ln_hh")
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    for name in names:
        if name != "ln_c" or cell == "lstm":
            kw[name] = random_ln(rng, H if name == "ln_c" else G * H, kw["_dtype"])
    if which in ("resets", "all", "mask_all", "ln_all") and not reverse:
        kw["resets"] = random_resets(T, B, seed + 1)
    if which in ("mask", "mask_all", "ln_all"):
        kw["recurrent_mask"] = random_recurrent_mask(B, P, seed + 2).astype(kw["_dtype"])
    if which in ("zoneout", "all", "mask_all", "ln_all"):
        z = rng.uniform(size=(T, B, P))
        z[rng.uniform(size=z.shape) < 0.2] = 0.0
        z[rng.uniform(size=z.shape) < 0.2] = 1.0
        kw["zoneout"] = z.astype(kw["_dtype"])
        if cell == "lstm":
            kw["zoneout_c"] = rng.uniform(size=(T, B, H)).astype(kw["_dtype"])
    kw.pop("_dtype")
    return kw


def run_both(cell, opts, T, B, I, H, dtype, lengths=None, seed=0, which="resets", reverse=False):
    name, args, kw, seeds = make_problem(
        cell, opts, T, B, I, H, dtype, seed=seed, lengths=lengths, reverse=reverse
    )
    P = args[2].shape[1]
    kw = add_options(dict(kw, _dtype=np.dtype(dtype)), cell, which, T, B, P, H, seed, reverse)
    out_n = getattr(rnnkit, name)(*args, **kw)
    out_r = getattr(ref, name)(*args, **kw)
    g_n = getattr(rnnkit, f"{cell}_backward")(out_n.cache, **seeds)
    g_r = getattr(ref, f"{cell}_backward")(out_r.cache, **seeds)
    return out_n, out_r, g_n, g_r


@pytest.mark.parametrize("which", OPTION_SETS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T%dB%dI%dH%d" % s)
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_options_match_reference(cfg, size, dtype, which, simd_target):
    _, cell, opts = cfg
    compare(*run_both(cell, opts, *size, dtype, which=which), dtype)


@pytest.mark.parametrize("variant", ["lengths", "reverse", "lengths_reverse"])
@pytest.mark.parametrize("which", OPTION_SETS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_options_with_lengths_and_reverse(cfg, dtype, which, variant, simd_target):
    """Masks are read in x's time order; entries past a sequence's end are ignored (random
    there too). Resets are left out of reversed runs (refused there)."""
    _, cell, opts = cfg
    lengths = np.array([6, 0, 3, 1, 5]) if "lengths" in variant else None
    out = run_both(
        cell,
        opts,
        6,
        5,
        7,
        9,
        dtype,
        lengths=lengths,
        seed=3,
        which=which,
        reverse="reverse" in variant,
    )
    compare(*out, dtype)


@pytest.mark.parametrize("which", ["all", "mask", "mask_all", "ln_all"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_options_cache_crosses_backends(cfg, which):
    """A cache of either backend into the other's backward (masks and norms in the cache)."""
    _, cell, opts = cfg
    name, args, kw, seeds = make_problem(
        cell, opts, 5, 3, 4, 6, np.float64, lengths=np.array([5, 2, 4])
    )
    kw = add_options(
        dict(kw, _dtype=np.dtype(np.float64)), cell, which, 5, 3, args[2].shape[1], 6, seed=9
    )
    bwd = f"{cell}_backward"
    for cache in (getattr(rnnkit, name)(*args, **kw).cache, getattr(ref, name)(*args, **kw).cache):
        g_native = getattr(rnnkit, bwd)(cache, **seeds)
        g_ref = getattr(ref, bwd)(cache, **seeds)
        for field in g_ref._fields:
            a, e = getattr(g_native, field), getattr(g_ref, field)
            assert (a is None) == (e is None), field
            if e is not None:
                np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10, err_msg=field)


@pytest.mark.parametrize("which", ["all", "mask_all", "ln_all"])
@pytest.mark.parametrize(
    "cfg", [CONFIGS[0], CONFIGS[5], CONFIGS[7], CONFIGS[8]], ids=[IDS[0], IDS[5], IDS[7], IDS[8]]
)
def test_options_bitwise_for_any_thread_count(cfg, which, simd_target):
    _, cell, opts = cfg
    name, args, kw, seeds = make_problem(
        cell, opts, 5, 24, 40, 96, np.float32, lengths=np.arange(24) % 6
    )
    kw = add_options(
        dict(kw, _dtype=np.dtype(np.float32)), cell, which, 5, 24, args[2].shape[1], 96, seed=2
    )
    assert_thread_count_free(cell, name, args, kw, seeds)


def test_neutral_options_are_the_plain_kernel_bit_for_bit():
    """All-False resets and zoneout 0 take the option paths and still give the plain
    kernel's numbers bit for bit; zoneout_c 0 too in the forward, and to rounding in the
    backward (which recomputes c~ = f c_prev + i g: the compiler may fuse that product
    differently from the forward's, a 1-ulp difference)."""
    name, args, kw, seeds = make_problem("lstm", {"peep": True}, 4, 3, 5, 7, np.float32)
    plain = rnnkit.lstm_forward(*args, **kw)
    g0 = rnnkit.lstm_backward(plain.cache, **seeds)
    for extra, exact in (
        (dict(resets=np.zeros((4, 3), bool)), True),
        (dict(zoneout=np.zeros((4, 3, 7), np.float32)), True),
        (dict(zoneout_c=np.zeros((4, 3, 7), np.float32)), False),
    ):
        out = rnnkit.lstm_forward(*args, **kw, **extra)
        np.testing.assert_array_equal(out.y, plain.y)
        np.testing.assert_array_equal(out.cache.c, plain.cache.c)
        g = rnnkit.lstm_backward(out.cache, **seeds)
        for a, e in zip(g, g0):
            if e is None:
                continue
            if exact:
                np.testing.assert_array_equal(a, e)
            else:
                np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "cfg", [CONFIGS[0], CONFIGS[3], CONFIGS[6], CONFIGS[7]], ids=[IDS[0], IDS[3], IDS[6], IDS[7]]
)
def test_neutral_recurrent_mask_is_the_plain_kernel(cfg):
    """A mask of ones takes the masked paths (the masked copy of h, the masked dh_prev and
    dw_hh) and gives the plain kernel's numbers."""
    _, cell, opts = cfg
    name, args, kw, seeds = make_problem(cell, opts, 4, 3, 5, 7, np.float64)
    P = args[2].shape[1]
    plain = getattr(rnnkit, name)(*args, **kw)
    out = getattr(rnnkit, name)(*args, **kw, recurrent_mask=np.ones((3, P)))
    np.testing.assert_array_equal(out.y, plain.y)
    g0 = getattr(rnnkit, f"{cell}_backward")(plain.cache, **seeds)
    g = getattr(rnnkit, f"{cell}_backward")(out.cache, **seeds)
    for a, e in zip(g, g0):
        if e is not None:
            np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)


def test_recurrent_mask_runs_in_the_kernels():
    """The mask is a kernel option: a call with it is not handed to the reference (whose
    float32 rounding differs from the kernels' in the last bits, so a reference run would
    give identical arrays)."""
    name, args, kw, seeds = make_problem("lstm", {}, 6, 4, 9, 16, np.float32)
    kw["recurrent_mask"] = random_recurrent_mask(4, 16, 1).astype(np.float32)
    out = rnnkit.lstm_forward(*args, **kw)
    want = ref.lstm_forward(*args, **kw)
    assert not np.array_equal(out.cache.gates, want.cache.gates)
    np.testing.assert_allclose(out.cache.gates, want.cache.gates, rtol=1e-5, atol=1e-6)


def test_every_option_runs_in_the_kernels():
    """No option is left to the reference: a call with layer norm runs the native kernels
    (their float32 rounding differs from NumPy's, so the results are close, not identical)."""
    name, args, kw, seeds = make_problem(
        "gru", {"linear_before_reset": True}, 4, 3, 5, 6, np.float32
    )
    kw["ln_ih"] = np.stack([np.full(18, 1.5), np.full(18, 0.1)]).astype(np.float32)
    out = rnnkit.gru_forward(*args, **kw)
    want = ref.gru_forward(*args, **kw)
    assert not np.array_equal(out.cache.gates, want.cache.gates)
    np.testing.assert_allclose(out.y, want.y, rtol=1e-5, atol=1e-6)


def _mgu_kernel(x, w_ih, w_hh, b, h0, zoneout, lengths=None):
    """The MGU forward kernel called directly (the Python API offers no options for the MGU,
    the kernels take zoneout for every cell): (y, h, gates)."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    y, h, gates = np.empty((T, B, H)), np.empty((T + 1, B, H)), np.empty((T, B, 2 * H))
    rnnkit._core.forward(
        cell=rnnkit._core.Cell.MGU, x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b, b_hh=b, h0=h0,
        lengths=lengths, y=y, h=h, gates=gates, zoneout=zoneout,
    )  # fmt: skip
    return y, h, gates


def test_mgu_kernel_zoneout(simd_target):
    """h_t = z h_{t-1} + (1 - z) h~_t, h~_t one plain MGU step from h_{t-1}; the backward
    against central differences of the forward (float64)."""
    T, B, I, H = 4, 3, 5, 6
    rng = np.random.default_rng(4)
    x, w_ih = rng.standard_normal((T, B, I)), rng.standard_normal((2 * H, I)) * 0.4
    w_hh, b = rng.standard_normal((2 * H, H)) * 0.4, rng.standard_normal(2 * H) * 0.3
    h0 = rng.standard_normal((B, H)) * 0.5
    z = rng.uniform(size=(T, B, H))
    z[0, 0] = 1.0
    lengths = np.array([4, 2, 3])
    y, h, gates = _mgu_kernel(x, w_ih, w_hh, b, h0, z, lengths)
    for t in range(T):
        step = rnnkit.mgu_forward(x[t : t + 1], w_ih, w_hh, b, b, h[t]).h_n
        live = t < lengths
        want = np.where(live[:, None], z[t] * h[t] + (1 - z[t]) * step, h[t])
        np.testing.assert_allclose(h[t + 1], want, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal((T, B, H))
    grads = {n: np.empty(s) for n, s in (("dx", x.shape), ("dh0", h0.shape))}
    grads.update(dw_ih=np.empty(w_ih.shape), dw_hh=np.empty(w_hh.shape))
    grads.update(db_ih=np.empty(2 * H), db_hh=np.empty(2 * H))
    rnnkit._core.backward(
        cell=rnnkit._core.Cell.MGU, x=x, w_ih=w_ih, w_hh=w_hh, lengths=lengths, h=h,
        gates=gates, dy=dy, dh_n=np.zeros((B, H)), zoneout=z, **grads,
    )  # fmt: skip

    def loss():
        return float((_mgu_kernel(x, w_ih, w_hh, b, h0, z, lengths)[0] * dy).sum())

    for name, a in (("dx", x), ("dh0", h0), ("dw_hh", w_hh)):
        np.testing.assert_allclose(grads[name], numeric_grad(loss, a), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_layer_norm_statistics_survive_a_large_offset(cell, simd_target):
    """Rows of x w_ih^T around 1e3 with a spread of about 1: float32 E[a^2] - E[a]^2 would lose
    ~5% of the variance to cancellation; the kernels' one-pass Welford update keeps it, so
    float32 stays within float32 rounding of the float64 reference."""
    rng = np.random.default_rng(4)
    T, B, H = 3, 2, 8
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    spread = rng.choice([-1.0, 1.0], (T, B)) * rng.uniform(1, 2, (T, B))  # |.| >= 1: the rows'
    x = np.stack([np.full((T, B), 1e3), spread], axis=-1)  # spread stays far above float32's
    w_ih = np.stack([np.ones(G * H), rng.normal(size=G * H)], axis=-1)
    w_hh = rng.normal(0, 0.3, (G * H, H))
    ln = random_ln(rng, G * H, np.float64)
    fwd = f"{cell}_forward"
    want = getattr(ref, fwd)(x, w_ih, w_hh, ln_ih=ln)
    got = getattr(rnnkit, fwd)(
        *(a.astype(np.float32) for a in (x, w_ih, w_hh)), ln_ih=ln.astype(np.float32)
    )
    np.testing.assert_allclose(got.cache.ln_rstd, want.cache.ln_rstd, rtol=1e-4)
    np.testing.assert_allclose(got.cache.ih_hat, want.cache.ih_hat, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got.y, want.y, rtol=1e-3, atol=1e-3)
