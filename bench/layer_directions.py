"""Two directions of a bidirectional layer on two threads vs one after the other.

    python bench/layer_directions.py T B I H [--reps N]

Runs an rnnkit.LSTM(I, H, bidirectional=True) forward + backward with kernels on one thread,
alternating parallel_directions False / True, checks the results are bitwise equal, and
prints min and median wall time and CPU/wall (about 2 when the two threads really overlap).
The figures behind rnnkit.layers.PARALLEL_MIN_WORK come from this script.
"""

import argparse
import time

import numpy as np
from _checkout import prefer_checkout  # bench/ is on sys.path when this runs as a script

prefer_checkout()
import rnnkit  # noqa: E402


def _positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, what in (("T", "steps"), ("B", "batch"), ("I", "input size"), ("H", "hidden size")):
        p.add_argument(name, type=_positive, help=what)
    p.add_argument("--reps", type=_positive, default=10, help="rounds (default %(default)s)")
    args = p.parse_args(argv)
    T, B, I, H, reps = args.T, args.B, args.I, args.H, args.reps
    rnnkit.set_num_threads(1)
    m = rnnkit.LSTM(I, H, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    wall = {False: [], True: []}
    cpu = {False: [], True: []}
    outs = {}
    for _ in range(reps):
        for par in (False, True):
            m.parallel_directions = par
            t0, c0 = time.perf_counter(), time.process_time()
            y, _ = m(x)
            dx, _ = m.backward(np.ones_like(y))
            wall[par].append(time.perf_counter() - t0)
            cpu[par].append(time.process_time() - c0)
            outs[par] = (y, dx)
    assert all(np.array_equal(a, b) for a, b in zip(outs[False], outs[True]))
    work = T * B * 4 * H * (I + H)
    for par in (False, True):
        med = np.median(wall[par])
        print(
            f"T={T} B={B} I={I} H={H} work={work:.1e} parallel={par}: "
            f"min {min(wall[par]) * 1e3:.2f} ms, median {med * 1e3:.2f} ms, "
            f"cpu/wall {np.median(cpu[par]) / med:.2f}"
        )


if __name__ == "__main__":
    main()
