"""Native vs NumPy-reference speed-up for LSTM forward+backward, measured side by side.

    python bench/speedup.py [--repeat 5] [--threads 1] [--T 100]

For each shape, the two backends run interleaved on the same inputs; the table reports each
one's median time and the ratio, all from this one run (the machine is noisy, so only ratios
measured together mean anything). NumPy's own BLAS threads are whatever the environment says
(OPENBLAS_NUM_THREADS etc.); the header prints it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import rnnkit
import rnnkit.reference as ref


def lstm_problem(T, B, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    x = rng.standard_normal((T, B, H)).astype(dtype)
    w_ih = rng.uniform(-s, s, (4 * H, H)).astype(dtype)
    w_hh = rng.uniform(-s, s, (4 * H, H)).astype(dtype)
    b_ih = rng.uniform(-s, s, 4 * H).astype(dtype)
    b_hh = rng.uniform(-s, s, 4 * H).astype(dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    return (x, w_ih, w_hh, b_ih, b_hh), dy


def fwd_bwd(mod, args, dy):
    out = mod.lstm_forward(*args)
    return mod.lstm_backward(out.cache, dy=dy)


def time_once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--hiddens", type=int, nargs="+", default=[64, 256])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    rnnkit.set_num_threads(a.threads)
    info = rnnkit.info()
    print(
        f"rnnkit {info['version']}  simd={info['simd_target']}  threads={a.threads}  "
        f"numpy {np.__version__}  OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}  "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '-')}"
    )
    print(f"LSTM forward+backward, T={a.T}, I=H, median of {a.repeat} interleaved runs")
    print(f"{'dtype':8} {'B':>4} {'H':>5} {'reference ms':>13} {'native ms':>10} {'speed-up':>9}")
    for dtype in a.dtypes:
        for H in a.hiddens:
            for B in a.batches:
                args, dy = lstm_problem(a.T, B, H, np.dtype(dtype))
                # check once that both agree before timing
                gn, gr = fwd_bwd(rnnkit, args, dy), fwd_bwd(ref, args, dy)
                err = np.max(np.abs(gn.dw_hh - gr.dw_hh)) / max(1.0, np.max(np.abs(gr.dw_hh)))
                assert err < (1e-9 if dtype == "float64" else 1e-4), err
                tn, tr = [], []
                for _ in range(a.repeat):
                    tr.append(time_once(lambda args=args, dy=dy: fwd_bwd(ref, args, dy)))
                    tn.append(time_once(lambda args=args, dy=dy: fwd_bwd(rnnkit, args, dy)))
                mr, mn = statistics.median(tr), statistics.median(tn)
                print(
                    f"{dtype:8} {B:>4} {H:>5} {mr * 1e3:>13.2f} {mn * 1e3:>10.2f} {mr / mn:>8.1f}x"
                )
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
