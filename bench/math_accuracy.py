"""Maximum error, in ulp, of the vectorised exp / sigmoid / tanh (cpp/simd/math.h) on every
SIMD target, against a long-double NumPy reference. Prints the table quoted in math.h.

    python bench/math_accuracy.py [--random N]

Inputs: the dense grids of tests/test_simd_math.py plus N random bit patterns of the dtype
(finite values only), so a run takes seconds, not the hours an exhaustive float sweep would.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import rnnkit
from rnnkit import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_simd_math import BOUNDS, grid, ulp_error  # noqa: E402  (one definition of ulp)


def inputs(dtype, n, rng):
    bits = rng.integers(0, 2 ** (8 * np.dtype(dtype).itemsize), n, dtype=np.uint64, endpoint=False)
    utype = np.uint32 if dtype == np.float32 else np.uint64
    rand = bits.astype(utype).view(dtype)
    rand = rand[np.isfinite(rand)]
    return np.concatenate([grid(dtype), rand])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=2_000_000)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    targets = rnnkit.simd_targets()
    print(f"{'':8}{'':9}" + "".join(f"{t:>9}" for t in targets) + "    bound")
    for dtype in (np.float32, np.float64):
        x_all = inputs(dtype, args.random, rng)
        for fn in ("exp", "sigmoid", "tanh"):
            x = x_all
            if fn == "exp":  # normal results only; the subnormal range has its own test
                x = x[x > (-87.0 if dtype == np.float32 else -708.0)]
            row = []
            for t in targets:
                rnnkit.set_simd_target(t)
                with np.errstate(over="ignore", invalid="ignore"):
                    err = ulp_error(_core._math_eval(fn, x), x, fn, dtype)
                row.append(float(np.nanmax(err)))
            print(
                f"{np.dtype(dtype).name:8}{fn:9}"
                + "".join(f"{e:9.2f}" for e in row)
                + f"    {BOUNDS[(fn, dtype)]}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
