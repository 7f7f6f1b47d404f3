"""pytest-benchmark suite (outside the default test run):

    python -m pytest bench/bench_cells.py --benchmark-group-by=param:shape

Each group times one shape on the NumPy reference, every compiled SIMD target and PyTorch
(when installed), forward+backward, then checks the result against the reference. GFLOP/s,
threads and target go to extra_info. Quote ratios within one run, never lone times.
"""

import numpy as np
import pytest

import rnnkit
import rnnkit.reference as ref

SHAPES = [(100, 1, 64), (100, 8, 256), (100, 64, 256)]  # T, B, H (I = H)
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def problem(cell, T, B, H, dtype=np.float32):
    rng = np.random.default_rng(0)
    G, s = GATES[cell], 1.0 / np.sqrt(H)
    args = (
        rng.standard_normal((T, B, H)).astype(dtype),
        rng.uniform(-s, s, (G * H, H)).astype(dtype),
        rng.uniform(-s, s, (G * H, H)).astype(dtype),
        rng.uniform(-s, s, G * H).astype(dtype),
        rng.uniform(-s, s, G * H).astype(dtype),
    )
    return args, rng.standard_normal((T, B, H)).astype(dtype)


def flops(cell, T, B, H):
    """Multiply-adds x 2 of forward (2 GEMMs) + backward (4 GEMMs): 6 * 2*T*B*G*H*H."""
    return 6 * 2 * T * B * GATES[cell] * H * H


def fwd_bwd(mod, cell, args, dy):
    out = getattr(mod, f"{cell}_forward")(*args)
    return getattr(mod, f"{cell}_backward")(out.cache, dy=dy)


def impls():
    out = [("reference", None)] + [(f"native-{t}", t) for t in rnnkit.simd_targets()]
    try:
        import torch  # noqa: F401

        out.append(("torch", None))
    except ImportError:
        pass
    return out


def torch_fwd_bwd(cell, args, dy):
    import torch

    x, w_ih, w_hh, b_ih, b_hh = (torch.from_numpy(a) for a in args)
    mod = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](
        x.shape[2], w_hh.shape[1]
    )
    with torch.no_grad():
        for name, v in (
            ("weight_ih_l0", w_ih),
            ("weight_hh_l0", w_hh),
            ("bias_ih_l0", b_ih),
            ("bias_hh_l0", b_hh),
        ):
            getattr(mod, name).copy_(v)
    xt = x.clone().requires_grad_(True)
    y, _ = mod(xt)
    y.backward(torch.from_numpy(dy))
    return xt.grad.numpy()


@pytest.mark.parametrize("impl", impls(), ids=lambda i: i[0])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-B%d-H%d" % s)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fwd_bwd(benchmark, cell, shape, impl):
    name, target = impl
    args, dy = problem(cell, *shape)
    before = rnnkit.get_simd_target()
    threads = rnnkit.get_num_threads()
    if target:
        rnnkit.set_simd_target(target)
    try:
        if name == "torch":
            import torch

            torch.set_num_threads(threads)
            dx = benchmark(torch_fwd_bwd, cell, args, dy)
        else:
            dx = benchmark(fwd_bwd, ref if name == "reference" else rnnkit, cell, args, dy).dx
    finally:
        rnnkit.set_simd_target(before)
    expected = fwd_bwd(ref, cell, args, dy).dx
    np.testing.assert_allclose(dx, expected, rtol=1e-3, atol=1e-4)
    benchmark.extra_info.update(
        impl=name,
        threads=threads,
        cell=cell,
        shape=shape,
        gflops=flops(cell, *shape) / benchmark.stats.stats.median / 1e9,
    )
