"""Which GEMM tile and blocking is fastest on this CPU: every tile the best SIMD target compiles
(and a few blockings), forced in turn with rnnkit._core._set_gemm_params, interleaved in one
process, on whole-sequence fwd+bwd, one thread, timed in CPU time of the calling thread
(time.thread_time: on a shared machine wall time also counts the time other processes run).
The winner belongs in the family table of cpp/gemm_params.cpp.
Usage: PYTHONPATH=python python bench/gemm_tiles.py [--dtype float64]
"""

import argparse
import statistics
import time

import numpy as np

import rnnkit
from rnnkit import _core


def problem(cell, T, B, H, dtype):
    rng = np.random.default_rng(0)
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    s = 1 / np.sqrt(H)
    args = (
        rng.standard_normal((T, B, H)).astype(dtype),
        rng.uniform(-s, s, (G * H, H)).astype(dtype),
        rng.uniform(-s, s, (G * H, H)).astype(dtype),
        rng.uniform(-s, s, G * H).astype(dtype),
        rng.uniform(-s, s, G * H).astype(dtype),
    )
    return args, rng.standard_normal((T, B, H)).astype(dtype), 6.0 * T * B * G * H * 2 * H


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dtype", default="float32")
    p.add_argument("--target", default=rnnkit.simd_targets()[0])
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--shapes", default="lstm:64:256,gru:64:256,lstm:8:256,lstm:1:256")
    a = p.parse_args()
    rnnkit.set_simd_target(a.target)
    rnnkit.set_num_threads(1)
    base = _core._gemm_params(a.target, a.dtype)
    configs = {"detected": None}
    for i, (mr, nr) in enumerate(base["tiles"]):
        for kc in (256, base["kc"]):
            for mc in (round(96 / mr) * mr, round(384 / mr) * mr):
                configs[f"{mr}x{nr} kc{kc} mc{mc}"] = (i, kc, mc, max(nr, base["nc"] // nr * nr))
    print(f"target {a.target}, {a.dtype}, detected: {base}")
    for spec in a.shapes.split(","):
        cell, B, H = spec.split(":")
        args, dy, fl = problem(cell, 100, int(B), int(H), a.dtype)
        fwd, bwd = getattr(rnnkit, f"{cell}_forward"), getattr(rnnkit, f"{cell}_backward")
        times = {k: [] for k in configs}
        ref = None
        for r in range(a.repeat + 1):
            for name, cfg in configs.items():
                if cfg is None:
                    _core._set_gemm_params(a.target, a.dtype, None, 0, 0, 0)
                else:
                    _core._set_gemm_params(a.target, a.dtype, *cfg)
                t0 = time.thread_time()
                g = bwd(fwd(*args).cache, dy=dy)
                dt = time.thread_time() - t0
                if r:
                    times[name].append(dt)
                if ref is None:
                    ref = g.dw_hh
                np.testing.assert_allclose(g.dw_hh, ref, rtol=1e-3, atol=1e-3)
        _core._set_gemm_params(a.target, a.dtype, None, 0, 0, 0)
        print(f"{cell} B={B} H={H} fwd+bwd, median of {a.repeat} interleaved:")
        for name, ts in sorted(times.items(), key=lambda kv: statistics.median(kv[1])):
            m = statistics.median(ts)
            print(f"  {name:24} {m * 1e3:8.2f} ms  {fl / m / 1e9:7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
