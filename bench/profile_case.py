"""Runs one whole-sequence case n times, for a profiler (callgrind on a RelWithDebInfo build):

    valgrind --tool=callgrind --cache-sim=yes \
        python bench/profile_case.py lstm 64 256 fb [n] [threads]

mode fb: forward then backward; f: forward only. T=100, I=H, float32. RK_PATH: the directory to
import rnnkit from (default python/, the dev build). Valgrind does not run AVX-512, so under it
this profiles the AVX2 path.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.environ.get("RK_PATH", "python"))
import rnnkit  # noqa: E402


def problem(cell, B, H, T=100, seed=0):
    """x, w_ih, w_hh, b_ih, b_hh and dy for one case."""
    rng = np.random.default_rng(seed)
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    s = 1 / np.sqrt(H)
    args = (
        rng.standard_normal((T, B, H)).astype("float32"),
        rng.uniform(-s, s, (G * H, H)).astype("float32"),
        rng.uniform(-s, s, (G * H, H)).astype("float32"),
        rng.uniform(-s, s, G * H).astype("float32"),
        rng.uniform(-s, s, G * H).astype("float32"),
    )
    return args, rng.standard_normal((T, B, H)).astype("float32")


def main(argv):
    cell, B, H, mode = argv[0], int(argv[1]), int(argv[2]), argv[3]
    n = int(argv[4]) if len(argv) > 4 else 1
    rnnkit.set_num_threads(int(argv[5]) if len(argv) > 5 else 1)
    args, dy = problem(cell, B, H)
    fwd, bwd = getattr(rnnkit, f"{cell}_forward"), getattr(rnnkit, f"{cell}_backward")
    for _ in range(n):
        if mode == "fb":
            bwd(fwd(*args).cache, dy=dy)
        else:
            fwd(*args)


if __name__ == "__main__":
    main(sys.argv[1:])
