"""The `rnnkit` command line (also `python -m rnnkit`).

Subcommands so far: `demo` (the default: time one LSTM forward+backward against the NumPy
reference and print the speed-up), `bench` (the benchmark harness, rnnkit/bench.py) and
`info` (build and runtime description). `train`, `sample` and `viz` arrive with their issues.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _cmd_info(args) -> int:
    import rnnkit

    info = rnnkit.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:18} {v}")
    return 0


def _cmd_demo(args) -> int:
    import numpy as np

    import rnnkit
    import rnnkit.reference as ref

    T, B, H = args.T, args.B, args.H
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    s = 1.0 / np.sqrt(H)
    x = rng.standard_normal((T, B, H)).astype(dtype)
    w = [rng.uniform(-s, s, shape).astype(dtype) for shape in ((4 * H, H), (4 * H, H), (4 * H,), (4 * H,))]
    dy = rng.standard_normal((T, B, H)).astype(dtype)

    def run(mod):
        out = mod.lstm_forward(x, *w)
        return out, mod.lstm_backward(out.cache, dy=dy)

    print(f"rnnkit {rnnkit.__version__}: LSTM forward+backward, T={T} B={B} I=H={H} {dtype}, "
          f"SIMD {rnnkit.get_simd_target()}, {rnnkit.get_num_threads()} thread(s)")
    (o_n, g_n), (o_r, g_r) = run(rnnkit), run(ref)
    err = max(float(np.max(np.abs(a - b))) for a, b in zip((o_n.y, g_n.dx, g_n.dw_hh), (o_r.y, g_r.dx, g_r.dw_hh)))
    print(f"  max |native - reference| over y, dx, dw_hh: {err:.2e}")
    times = {"reference": [], "native": []}
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        for name, mod in (("reference", ref), ("native", rnnkit)):
            t0 = time.perf_counter()
            run(mod)
            times[name].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(f"  reference (NumPy): {med['reference'] * 1e3:9.2f} ms")
    print(f"  rnnkit (native):   {med['native'] * 1e3:9.2f} ms")
    print(f"  speed-up:          {med['reference'] / med['native']:9.1f}x  (median of {args.repeat})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit", description="Fast recurrent networks on the CPU.")
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="time one LSTM against the NumPy reference (the default)")
    d.add_argument("--T", type=int, default=100)
    d.add_argument("--B", type=int, default=8)
    d.add_argument("--H", type=int, default=256)
    d.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    d.add_argument("--repeat", type=int, default=5)
    d.set_defaults(func=_cmd_demo)
    b = sub.add_parser("bench", help="time rnnkit against the NumPy reference, PyTorch, onnxruntime "
                                     "and the GEMM peak, side by side")
    from . import bench as _bench

    _bench.add_arguments(b)
    b.set_defaults(func=lambda a: _bench.main(a, a.bench_argv))
    i = sub.add_parser("info", help="describe this build: version, SIMD target, threads, compiler")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.command == "bench":
        args.bench_argv = argv[argv.index("bench") + 1:]
    if args.command is None:
        args = parser.parse_args(["demo"] + list(argv or []))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
