"""The two directions of a bidirectional layer on two Python threads.

Each direction is one independent native call that releases the GIL, so running the reverse
direction on a worker thread while the forward one runs on the caller's thread gives
bitwise the same results as running them one after the other. Whether it pays is decided by
``rnnkit.layers`` with ``PARALLEL_MIN_WORK`` (measured with ``bench/layer_directions.py``).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

# Run the two directions on two Python threads (the native calls release the GIL) when the
# kernels use one thread each and one direction's forward does at least this many
# multiply-adds, T*B*G*H*(in+Hout). Measured (LSTM, float32, forward+backward, 2 idle cores,
# median): T=100 B=32 I=H=256 223.9 -> 116.8 ms (1.92x); T=50 B=16 I=H=64 (2.6e7) 1.68x;
# T=30 B=8 I=H=64 (7.9e6) 1.28x; T=50 B=8 I=H=32 (3.3e6) 1.0x; T=100 B=4 I=H=32 (3.3e6) 0.90x;
# T=20 B=8 I=H=32 (1.3e6) 0.82x. With the other core busy (another process) it is 0.9-1.0x at
# every size (7.9e6: 0.95x), hence the margin; off when the kernels use several threads.
PARALLEL_MIN_WORK = 10_000_000

_pool = None
_pool_lock = threading.Lock()


def _executor():
    """One worker thread for the reverse direction, created on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-dir")
        return _pool


def _forget_pool_in_child():
    """After fork() the child has only the forking thread: the parent's worker is gone and
    its lock may be held forever, so the child starts a fresh pool on first use (the old
    executor object is dropped, never shut down: that would wait on a thread that does not
    exist)."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def run_directions(parallel, fn, args):
    """``[fn(*a) for a in args]``; with ``parallel`` and two directions, the second (reverse)
    runs on the worker thread while the first runs here."""
    if parallel and len(args) == 2:
        future = _executor().submit(fn, *args[1])
        try:
            first = fn(*args[0])
        except BaseException:
            wait([future])  # never leave the worker running on this call's arrays
            raise
        return [first, future.result()]
    return [fn(*a) for a in args]
