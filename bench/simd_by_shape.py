"""Which SIMD target is fastest per shape on this CPU: AVX-512 against AVX2, forward and
forward+backward, interleaved in one process, one thread, CPU time of the calling thread
(time.thread_time: on a shared machine wall time also counts other processes).
Prints the AVX2 / AVX-512 time ratio (above 1: AVX-512 is faster).
Usage: PYTHONPATH=python python bench/simd_by_shape.py [--dtype float64] [--repeat 7]
"""

import argparse
import statistics
import time

import numpy as np

import rnnkit


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args()
    targets = [t for t in ("avx512", "avx2") if t in rnnkit.simd_targets()]
    if len(targets) < 2:
        print(f"needs both avx512 and avx2, this CPU runs {rnnkit.simd_targets()}")
        return
    rnnkit.set_num_threads(1)
    rng = np.random.default_rng(0)
    for cell, G in (("lstm", 4), ("gru", 3), ("rnn", 1)):
        for B in (1, 8):
            for H in (64, 256, 512):
                s = 1 / np.sqrt(H)
                x = rng.standard_normal((100, B, H)).astype(a.dtype)
                w = rng.uniform(-s, s, (G * H, H)).astype(a.dtype)
                b = np.zeros(G * H, a.dtype)
                dy = rng.standard_normal((100, B, H)).astype(a.dtype)
                fwd, bwd = getattr(rnnkit, f"{cell}_forward"), getattr(rnnkit, f"{cell}_backward")
                res = {t: ([], []) for t in targets}
                for _ in range(a.repeat):
                    for t in targets:
                        rnnkit.set_simd_target(t)
                        fwd(x, w, w, b, b)
                        t0 = time.thread_time()
                        out = fwd(x, w, w, b, b)
                        t1 = time.thread_time()
                        bwd(out.cache, dy=dy)
                        t2 = time.thread_time()
                        res[t][0].append(t1 - t0)
                        res[t][1].append(t2 - t0)
                med = {t: [statistics.median(v) for v in r] for t, r in res.items()}
                print(
                    f"{cell} B={B} H={H}: forward avx2/avx512 "
                    f"{med['avx2'][0] / med['avx512'][0]:.2f}, "
                    f"fwd+bwd {med['avx2'][1] / med['avx512'][1]:.2f} "
                    f"(avx512 forward {med['avx512'][0] * 1e3:.3f} ms)"
                )


if __name__ == "__main__":
    main()
