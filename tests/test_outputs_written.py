"""The native kernels write every element of every output they are given: the outputs are
allocated with np.empty, so an element left alone would be returned as whatever the memory
held. Here every np.empty of rnnkit.ops is poisoned (NaN, and the byte 0xAB for bool masks)
and no poison may survive: for every cell and option, with lengths of 0, T = 0, B = 0, and a
float32 clip at the smallest normal float32 (a clip that rounds to 0 is refused by the
validation), so that nearly every pre-activation is clipped and the whole mask is live."""

import numpy as np
import pytest
from _cases import CONFIG_IDS, CONFIGS, assert_close, make_problem

import rnnkit
import rnnkit.ops
import rnnkit.reference as ref


class _Poisoned:
    """numpy, except that empty() returns poisoned arrays."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float):
        if np.dtype(dtype) == np.bool_:
            return np.full(shape, 0xAB, np.uint8).view(np.bool_)
        return np.full(shape, np.nan, dtype)


def _assert_written(arrays, what):
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            continue
        if a.dtype == np.bool_:
            assert (a.view(np.uint8) <= 1).all(), f"{what}[{i}]: an unwritten mask byte"
        else:
            assert not np.isnan(a).any(), f"{what}[{i}]: an unwritten element"


CASES = {  # name: (T, B, lengths, clip override)
    "lengths_0": (4, 3, [0, 0, 0], None),
    "lengths_mixed": (4, 3, [4, 0, 2], None),
    "T0": (0, 3, None, None),
    "B0": (4, 0, None, None),
    "tiny_clip": (3, 2, [3, 1], float(np.finfo(np.float32).tiny)),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("cfg", CONFIGS, ids=CONFIG_IDS)
def test_every_output_is_written(cfg, case, monkeypatch):
    _, cell, opts = cfg
    T, B, lengths, clip = CASES[case]
    if clip is not None:
        opts = dict(opts, clip=clip)
    lengths = None if lengths is None else np.array(lengths)
    name, args, kw, seeds = make_problem(cell, opts, T, B, 3, 5, np.float32, lengths=lengths)
    expected = getattr(ref, name)(*args, **kw)
    monkeypatch.setattr(rnnkit.ops, "np", _Poisoned())
    out = getattr(rnnkit, name)(*args, **kw)
    grads = getattr(rnnkit, f"{cell}_backward")(out.cache, **seeds)
    monkeypatch.undo()
    _assert_written([*out[:-1], *out.cache], "forward")
    _assert_written(grads, "backward")
    for field in expected.cache._fields:  # and what was written is right
        e = getattr(expected.cache, field)
        if isinstance(e, np.ndarray):
            assert_close(getattr(out.cache, field), e, np.float32, f"cache.{field}")
