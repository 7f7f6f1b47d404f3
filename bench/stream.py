"""Streaming inference at batch 1: the per-step latency table of `rnnkit bench --stream`.

    python bench/stream.py [--hidden 64 128 256 512 1024] [--cells lstm gru] [--repeat 7]
                           [--plot stream.png] [--json stream.json]

Same as `python -m rnnkit bench --stream ...` (this script only forwards to it, so the NumPy
BLAS thread count is set to 1 before NumPy loads, as the command does).
"""

from __future__ import annotations

import sys

from rnnkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--stream", *sys.argv[1:]]))
