"""Resident memory stays flat over many forward+backward calls (no leak in the bindings, the
workspace cache or the thread pool)."""

import os
import resource
import sys

import numpy as np
import pytest

import rnnkit
from _cases import make_problem


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine keeps freed memory on purpose")
def test_ten_thousand_calls_keep_memory_flat():
    _, args, kw, seeds = make_problem("lstm", {"peep": True, "proj": True, "clip": 1.0}, 5, 3, 8,
                                      12, np.float32, lengths=np.array([5, 2, 4]))
    for _ in range(200):  # warm up: workspace cache, pool, allocator pools
        rnnkit.lstm_backward(rnnkit.lstm_forward(*args, **kw).cache, **seeds)
    before = rss_mib()
    for _ in range(10_000):
        rnnkit.lstm_backward(rnnkit.lstm_forward(*args, **kw).cache, **seeds)
    grown = rss_mib() - before
    assert grown < 16, f"resident memory grew by {grown:.1f} MiB over 10,000 calls"
