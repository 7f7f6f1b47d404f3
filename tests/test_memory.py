"""Resident memory stays flat over many forward+backward calls (no leak in the bindings, the
workspace cache or the thread pool)."""

import os
import resource
import sys

import numpy as np
import pytest
from _cases import make_problem

import rnnkit


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer's quarantine keeps freed memory on purpose",
)
def test_ten_thousand_calls_keep_memory_flat():
    _, args, kw, seeds = make_problem(
        "lstm",
        {"peep": True, "proj": True, "clip": 1.0},
        5,
        3,
        8,
        12,
        np.float32,
        lengths=np.array([5, 2, 4]),
    )
    for _ in range(200):  # warm up: workspace cache, pool, allocator pools
        rnnkit.lstm_backward(rnnkit.lstm_forward(*args, **kw).cache, **seeds)
    before = rss_mib()
    for _ in range(10_000):
        rnnkit.lstm_backward(rnnkit.lstm_forward(*args, **kw).cache, **seeds)
    grown = rss_mib() - before
    assert grown < 16, f"resident memory grew by {grown:.1f} MiB over 10,000 calls"


PEAK_SCRIPT = r"""
import sys, numpy as np, rnnkit

def hwm():  # peak resident set of this address space (reset at exec, unlike ru_maxrss,
    # which a child started from a large parent inherits)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))

T, B, I, H = 200, 64, 256, 256
rng = np.random.default_rng(0)
x = rng.standard_normal((T, B, I), dtype=np.float32)
w_ih = (rng.standard_normal((4 * H, I)) * 0.05).astype(np.float32)
w_hh = (rng.standard_normal((4 * H, H)) * 0.05).astype(np.float32)
dy = rng.standard_normal((T, B, H), dtype=np.float32)
rnnkit.set_num_threads(1)
before = hwm()
out = rnnkit.lstm_forward(x, w_ih, w_hh)
g = rnnkit.lstm_backward(out.cache, dy=dy)
after = hwm()
print((after - before) * 1024)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""), reason="ASan changes allocation")
def test_peak_memory_matches_the_documented_formula():
    """Peak resident growth of one LSTM forward+backward (the first: its workspace is fresh)
    against the formula of docs/guides/reliability.md: cache h, c [T+1,B,H], gates [T,B,4H];
    outputs y [T,B,H], dx [T,B,I]; backward workspace dG [T,B,4H] and a packed copy of x or h
    [T,B,max(I,H)]."""
    import subprocess

    T, B, I, H = 200, 64, 256, 256
    elems = (
        2 * (T + 1) * B * H
        + 4 * T * B * H
        + T * B * H
        + T * B * I
        + 4 * T * B * H
        + T * B * max(I, H)
    )
    predicted = 4 * elems
    r = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    grown = int(r.stdout.strip().splitlines()[-1])
    assert 0.85 * predicted <= grown <= 1.15 * predicted + (24 << 20), (
        f"peak grew {grown / 2**20:.0f} MiB, formula says {predicted / 2**20:.0f} MiB"
    )
