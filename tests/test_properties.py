"""Property-based tests (hypothesis): random shapes and options, every SIMD target.

- native = reference on every output and gradient;
- permuting the batch permutes every output and gradient (rows never interact);
- reverse = forward on each sequence flipped within its own length;
- a forward run in chunks with carried state equals one run.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from _cases import CONFIGS, assert_close, make_problem  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import rnnkit  # noqa: E402
import rnnkit.reference as ref  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def problems(draw):
    _, cell, opts = draw(st.sampled_from(CONFIGS))
    T = draw(st.integers(0, 7))
    B = draw(st.integers(1, 6))
    I = draw(st.integers(1, 20))  # noqa: E741
    H = draw(st.integers(1, 20))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    use_lengths = draw(st.booleans())
    lengths = (
        np.array(draw(st.lists(st.integers(0, T), min_size=B, max_size=B))) if use_lengths else None
    )
    reverse = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    target = draw(st.sampled_from(list(rnnkit.simd_targets())))
    return cell, opts, T, B, I, H, dtype, lengths, reverse, seed, target


def run(mod, cell, args, kw, seeds):
    out = getattr(mod, f"{cell}_forward")(*args, **kw)
    return out, getattr(mod, f"{cell}_backward")(out.cache, **seeds)


def with_target(target, fn):
    before = rnnkit.get_simd_target()
    rnnkit.set_simd_target(target)
    try:
        return fn()
    finally:
        rnnkit.set_simd_target(before)


@SETTINGS
@given(problems())
def test_native_equals_reference(p):
    cell, opts, T, B, I, H, dtype, lengths, reverse, seed, target = p
    _, args, kw, seeds = make_problem(
        cell, opts, T, B, I, H, dtype, seed=seed, lengths=lengths, reverse=reverse
    )
    on, gn = with_target(target, lambda: run(rnnkit, cell, args, kw, seeds))
    orf, gr = run(ref, cell, args, kw, seeds)
    for f in orf._fields[:-1]:
        assert_close(getattr(on, f), getattr(orf, f), dtype, f)
    for f in gr._fields:
        assert_close(getattr(gn, f), getattr(gr, f), dtype, f)


@SETTINGS
@given(problems(), st.randoms(use_true_random=False))
def test_batch_permutation_permutes_everything(p, rnd):
    cell, opts, T, B, I, H, dtype, lengths, reverse, seed, target = p
    _, args, kw, seeds = make_problem(
        cell, opts, T, B, I, H, dtype, seed=seed, lengths=lengths, reverse=reverse
    )
    perm = list(range(B))
    rnd.shuffle(perm)
    perm = np.array(perm)
    pargs = list(args)
    pargs[0] = args[0][:, perm]
    for k in range(5, len(args)):  # h0 (and c0)
        if args[k] is not None:
            pargs[k] = args[k][perm]
    pkw = dict(kw, lengths=None if lengths is None else lengths[perm])
    pseeds = {"dy": seeds["dy"][:, perm], **{k: v[perm] for k, v in seeds.items() if k != "dy"}}
    o1, g1 = with_target(target, lambda: run(rnnkit, cell, args, kw, seeds))
    o2, g2 = with_target(target, lambda: run(rnnkit, cell, pargs, pkw, pseeds))
    assert_close(o2.y, o1.y[:, perm], dtype, "y")
    assert_close(o2.h_n, o1.h_n[perm], dtype, "h_n")
    assert_close(g2.dx, g1.dx[:, perm], dtype, "dx")
    assert_close(g2.dh0, g1.dh0[perm], dtype, "dh0")
    assert_close(g2.dw_hh, g1.dw_hh, dtype, "dw_hh")


@SETTINGS
@given(problems())
def test_reverse_is_forward_on_flipped_sequences(p):
    cell, opts, T, B, I, H, dtype, lengths, _, seed, target = p
    _, args, kw, _ = make_problem(cell, opts, T, B, I, H, dtype, seed=seed, lengths=lengths)
    n = np.full(B, T) if lengths is None else lengths
    flipped = np.zeros_like(args[0])
    for b in range(B):  # flip each sequence within its own length
        flipped[: n[b], b] = args[0][: n[b], b][::-1]
    rev = with_target(
        target, lambda: getattr(rnnkit, f"{cell}_forward")(*args, **dict(kw, reverse=True))
    )
    fwd = with_target(
        target,
        lambda: getattr(rnnkit, f"{cell}_forward")(flipped, *args[1:], **dict(kw, reverse=False)),
    )
    assert_close(rev.h_n, fwd.h_n, dtype, "h_n")
    for b in range(B):
        assert_close(rev.y[: n[b], b], fwd.y[: n[b], b][::-1], dtype, "y")


@SETTINGS
@given(problems(), st.integers(0, 7))
def test_chunks_equal_one_run(p, cut):
    cell, opts, T, B, I, H, dtype, _, _, seed, target = p
    cut = min(cut, T)
    _, args, kw, _ = make_problem(cell, opts, T, B, I, H, dtype, seed=seed)
    fwd = getattr(rnnkit, f"{cell}_forward")
    full = with_target(target, lambda: fwd(*args, **kw))
    a = with_target(target, lambda: fwd(args[0][:cut], *args[1:], **kw))
    state = [a.h_n, a.c_n] if cell == "lstm" else [a.h_n]
    b = with_target(target, lambda: fwd(args[0][cut:], *args[1:5], *state, **kw))
    assert_close(np.concatenate([a.y, b.y]), full.y, dtype, "y")
    assert_close(b.h_n, full.h_n, dtype, "h_n")
