"""Random problems shared by the native-vs-reference tests: one function builds the arguments
of any cell with any options, so every test covers the same matrix of configurations."""

import numpy as np

# (name, cell, forward keyword options, uses peepholes, projection size or 0)
CONFIGS = [
    ("rnn_tanh", "rnn", {"nonlinearity": "tanh"}),
    ("rnn_relu", "rnn", {"nonlinearity": "relu"}),
    ("rnn_clip", "rnn", {"nonlinearity": "tanh", "clip": 0.7}),
    ("lstm", "lstm", {}),
    ("lstm_peep", "lstm", {"peep": True}),
    ("lstm_proj", "lstm", {"proj": True}),
    ("lstm_clip", "lstm", {"clip": 0.8}),
    ("lstm_cifg", "lstm", {"input_forget": True}),
    ("lstm_all", "lstm", {"peep": True, "proj": True, "clip": 0.9, "input_forget": True}),
    ("gru", "gru", {"linear_before_reset": True}),
    ("gru_textbook", "gru", {"linear_before_reset": False}),
    ("gru_clip", "gru", {"linear_before_reset": True, "clip": 0.6}),
    ("gru_textbook_clip", "gru", {"linear_before_reset": False, "clip": 0.6}),
    ("mgu", "mgu", {}),
    ("mgu_clip", "mgu", {"clip": 0.6}),
]
CONFIG_IDS = [c[0] for c in CONFIGS]
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "mgu": 2}


def make_problem(
    cell,
    opts,
    T,
    B,
    I,
    H,
    dtype,
    seed=0,
    bias=True,
    lengths=None,
    reverse=False,
    h0=True,
    scale=1.0,
):
    """Returns (forward function name, positional args, keyword args, grad seeds dict)."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    P = max(1, (2 * H) // 3) if opts.get("proj") else H

    def r(*shape, s=1.0):
        return (rng.standard_normal(shape) * s * scale).astype(dtype)

    x = r(T, B, I)
    w_ih = r(G * H, I, s=1.0 / np.sqrt(max(I, 1)))
    w_hh = r(G * H, P, s=1.0 / np.sqrt(max(P, 1)))
    b_ih = r(G * H, s=0.5) if bias else None
    b_hh = r(G * H, s=0.5) if bias else None
    args = [x, w_ih, w_hh, b_ih, b_hh, r(B, P, s=0.5) if h0 else None]
    kw = {"lengths": lengths, "reverse": reverse}
    if cell == "lstm":
        args.append(r(B, H, s=0.5) if h0 else None)
        if opts.get("peep"):
            kw["w_peep"] = r(3, H, s=0.5)
        if opts.get("proj"):
            kw["w_proj"] = r(P, H, s=1.0 / np.sqrt(H))
        if opts.get("input_forget"):
            kw["input_forget"] = True
    if cell == "rnn":
        kw["nonlinearity"] = opts["nonlinearity"]
    if cell == "gru":
        kw["linear_before_reset"] = opts["linear_before_reset"]
    if "clip" in opts:
        kw["clip"] = opts["clip"]
    seeds = {"dy": r(T, B, P), "dh_n": r(B, P)}
    if cell == "lstm":
        seeds["dc_n"] = r(B, H)
    return f"{cell}_forward", args, kw, seeds


def tolerance(dtype):
    return (1e-10, 1e-10) if np.dtype(dtype) == np.float64 else (2e-5, 2e-5)


def assert_close(actual, expected, dtype, what):
    """Relative to the array's scale: |a - e| <= rtol*|e| + atol*max(1, max|e|)."""
    if expected is None or actual is None:
        assert actual is None and expected is None, f"{what}: {actual!r} vs {expected!r}"
        return
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} vs {expected.dtype}"
    if expected.dtype == np.bool_:
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    if expected.size == 0:
        return
    rtol, atol = tolerance(dtype)
    scale = max(1.0, float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def assert_thread_count_free(cell, name, args, kw, seeds):
    """Forward and backward on 1, 2 and 3 threads give bitwise identical arrays."""
    import rnnkit

    before = rnnkit.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            rnnkit.set_num_threads(n)
            out = getattr(rnnkit, name)(*args, **kw)
            g = getattr(rnnkit, f"{cell}_backward")(out.cache, **seeds)
            results.append([a for a in (*out[:-1], *out.cache, *g) if isinstance(a, np.ndarray)])
    finally:
        rnnkit.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()
