"""Keeps NumPy's BLAS to one thread while rnnkit's kernels run on their own threads.

Measured on the 2-core development machine: a training step of the default char LM (the
Linear head is a NumPy GEMM between two rnnkit calls) took 0.46 s with OpenBLAS on 2
threads and 0.09 s with 1. OpenBLAS's worker threads keep spinning after each call and
compete with rnnkit's thread pool for the same cores. The head's GEMMs are small; one BLAS
thread loses nothing there. threadpoolctl is used when installed, else numpy's bundled
OpenBLAS is called through ctypes; when neither works this is a no-op.
"""

from __future__ import annotations

import ctypes

_SYMBOLS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def limit_blas_threads(n: int = 1) -> bool:
    """Sets the BLAS thread count of this process to ``n``; True when it worked."""
    import numpy  # noqa: F401  (loads the BLAS library first)

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n, user_api="blas")
        return True
    except Exception:
        pass
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return False
    done = False
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in _SYMBOLS:
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                done = True
                break
    return done
