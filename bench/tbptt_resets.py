"""Truncated BPTT over a stream with a document boundary every few steps: resets passed to
the kernels (one long call per window) against the window split into segments at every reset
(many short calls), side by side in one process.

    python bench/tbptt_resets.py [--T 2048] [--B 16] [--H 128] [--k1 64] [--every 8]
                                 [--cell lstm] [--repeat 3] [--backend native]

Each of the B streams starts a new document at random steps, on average every ``--every``
steps; both runs see the same inputs, resets and weights, and give the same gradients (the
test suite checks that). Prints the median time of a pass over the stream for each and the
ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _checkout import prefer_checkout  # bench/ is on sys.path when this runs as a script

prefer_checkout()

import rnnkit  # noqa: E402


def one_pass(model, x, target, resets, k1, pass_resets):
    def loss_fn(y, t):
        d = y - t
        return float((d * d).sum()), 2 * d

    tb = rnnkit.TBPTT(model, loss_fn, k1=k1)
    tb.pass_resets = pass_resets
    t0 = time.perf_counter()
    for lo in range(0, x.shape[0], k1):
        hi = min(lo + k1, x.shape[0])
        model.zero_grad()
        tb.step(x[lo:hi], target[lo:hi], resets[lo:hi])
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=2048)
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--I", type=int, default=64)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--k1", type=int, default=64)
    ap.add_argument("--every", type=float, default=8.0, help="mean steps between resets")
    ap.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", choices=["native", "reference"], default="native")
    a = ap.parse_args(argv)
    rnnkit.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.T, a.B, a.I)).astype(np.float32)
    target = rng.standard_normal((a.T, a.B, a.H)).astype(np.float32)
    resets = rng.random((a.T, a.B)) < 1.0 / a.every
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[a.cell]
    model = cls(a.I, a.H, seed=0, backend=a.backend)
    segments = sum(
        len({0, a.k1} | {int(t) for t in np.flatnonzero(resets[lo : lo + a.k1].any(axis=1))}) - 1
        for lo in range(0, a.T, a.k1)
    )
    times = {True: [], False: []}
    for _ in range(a.repeat):  # interleaved, so both see the same machine load
        for passing in (True, False):
            times[passing].append(one_pass(model, x, target, resets, a.k1, passing))
    t_pass, t_split = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"{a.cell.upper()} I={a.I} H={a.H} B={a.B}, T={a.T} steps, k1={a.k1}, a reset every "
        f"~{a.every:g} steps per stream ({int(resets.sum())} resets; {segments} segments when "
        f"split vs {-(-a.T // a.k1)} windows), float32, {a.threads} thread(s), {a.backend}, "
        f"median of {a.repeat}"
    )
    print(f"  resets to the kernels : {t_pass * 1e3:9.1f} ms")
    print(f"  split into segments   : {t_split * 1e3:9.1f} ms")
    print(f"  speed-up              : {t_split / t_pass:9.2f}x")


if __name__ == "__main__":
    main()
