"""What bounds a stream step at B=1: the bytes it reads against a read-bandwidth loop.

A float32 stream step at batch 1 reads all of w_ih and w_hh once (LSTM H=256: 2 MB, H=512:
8 MB; L2 is 1 MB here), with a few thousand flops per KB: it is a read of the weights. One step
inside a T=200 call reads only w_hh (the input projection of all steps is one large GEMM). This
times, interleaved in one process (medians), per H:

- ``stream``: ``s.step(x_t)`` of a float32 stream;
- ``in T=200``: one T=200 forward / 200;
- ``read w_ih+w_hh``, ``read w_hh``: ``np.max`` over a float32 buffer of the same bytes
  (NumPy's SIMD reduction: a STREAM-like read loop, one pass per "step");

and prints each as GB/s of the bytes it reads, and the ratio stream / read loop (1.0: the step
runs at the machine's read bandwidth for that working set).

    PYTHONPATH=python OPENBLAS_NUM_THREADS=1 python bench/stream_bandwidth.py [--hidden 256,512]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import rnnkit
from rnnkit import bench_stream as bs


def _reader(nbytes, steps):
    buf = np.random.default_rng(0).standard_normal(nbytes // 4).astype(np.float32)

    def run():
        for _ in range(steps):
            buf.max()

    return run


def measure(cell, H, steps=100, repeat=9):
    """{name: (us per step, bytes read per step)} for one cell and size."""
    w = bs._weights(cell, H)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, H)).astype(np.float32) for _ in range(steps)]
    both, hh = w["w_ih"].nbytes + w["w_hh"].nbytes, w["w_hh"].nbytes
    fns = [
        ("stream", bs._stream(cell, H, w, xs), steps, both),
        ("in T=200", bs._whole_sequence(cell, H, w, xs * (200 // steps)), 200, hh),
        ("read w_ih+w_hh", _reader(both, steps), steps, both),
        ("read w_hh", _reader(hh, steps), steps, hh),
    ]
    times = {name: [] for name, *_ in fns}
    for _, fn, _, _ in fns:
        fn()
    for _ in range(repeat):
        for name, fn, n, _ in fns:
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: (statistics.median(times[name]) * 1e6, nb) for name, _, _, nb in fns}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--hidden", default="256,512")
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    rnnkit.set_num_threads(1)
    for cell in args.cells.split(","):
        for H in (int(h) for h in args.hidden.split(",")):
            r = measure(cell, H, repeat=args.repeat)
            cols = ", ".join(f"{k} {t:.1f} us ({b / t / 1e3:.0f} GB/s)" for k, (t, b) in r.items())
            ratio = r["stream"][0] / r["read w_ih+w_hh"][0]
            print(f"{cell} H={H}: {cols}; stream / read loop = {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
