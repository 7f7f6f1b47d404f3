"""The benchmark harness behind `rnnkit bench` and bench/: rnnkit (each SIMD target), the
NumPy reference, PyTorch and onnxruntime (when installed) on the same inputs, forward and
forward+backward, interleaved and repeated, against the limits measured in the same run.

Reported per cell and shape: median time, min-max spread, GFLOP/s, % of the FMA peak of the
same dtype, and speed-ups. FLOPs count the matrix products only: forward 2*T*B*G*H*(I+H),
backward twice that (dx, dw_ih, dh, dw_hh).

The limits, measured first:
- the FMA peak: rnnkit's built-in loop of independent FMA chains on each SIMD target
  (cpp/fma_peak.h), one core; "% of peak" is against the best target's, times the thread count;
- NumPy's GEMM (OpenBLAS, usually) on a large square product, in a subprocess with
  OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS set to the thread count, so it
  matches the threads rnnkit and PyTorch get (NumPy's BLAS reads them only at import);
- PyTorch's GEMM (MKL in the x86 wheels) on the same product, when torch is installed;
- rnnkit's own GEMM on the same product.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, Optional

import numpy as np

from ._cells import CELLS, GATES

CLOCK_NAMES = {"wall": "perf_counter", "thread": "thread_time"}
CLOCKS = {k: getattr(time, v) for k, v in CLOCK_NAMES.items()}
FULL_SHAPES = [
    (100, 1, 64),
    (100, 8, 64),
    (100, 64, 64),
    (100, 1, 256),
    (100, 8, 256),
    (100, 64, 256),
]
QUICK_SHAPES = [(50, 1, 64), (50, 8, 256), (50, 64, 256)]


def flops(cell, T, B, H, I=None):
    I = H if I is None else I
    fwd = 2.0 * T * B * GATES[cell] * H * (I + H)
    return fwd, 3.0 * fwd


def numpy_gemm(dtype="float32", threads=1, n=2048, repeat=5, clock="wall"):
    """NumPy's matmul on an n x n product, in a subprocess with the BLAS thread count set:
    {"gflops": ..., "kernel": the BLAS and its kernel when threadpoolctl can tell, else ""}."""
    code = (
        "import numpy as np, time\n"
        f"a = np.random.default_rng(0).random(({n}, {n})).astype('{dtype}'); b = a.copy(); a @ b\n"
        "ts = []\n"
        f"for _ in range({repeat}):\n"
        f"    t0 = time.{CLOCK_NAMES[clock]}(); a @ b\n"
        f"    ts.append(time.{CLOCK_NAMES[clock]}() - t0)\n"
        "kernel = ''\n"
        "try:\n"
        "    import threadpoolctl\n"
        "    libs = [d for d in threadpoolctl.threadpool_info() if d.get('user_api') == 'blas']\n"
        "    kernel = ' '.join(\n"
        "        f\"{d['internal_api']}-{d.get('architecture', '')}\" for d in libs)\n"
        "except ImportError:\n"
        "    pass\n"
        f"print(2 * {n}**3 / min(ts) / 1e9, kernel)\n"
    )
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    if out.returncode != 0:
        raise RuntimeError(f"GEMM peak measurement failed: {out.stderr.strip()[-300:]}")
    gflops, _, kernel = out.stdout.strip().splitlines()[-1].partition(" ")
    return {"gflops": float(gflops), "kernel": kernel.strip()}


def gemm_peak(dtype="float32", threads=1, n=2048, repeat=5):
    """NumPy's matmul GFLOP/s on an n x n product (see numpy_gemm)."""
    return numpy_gemm(dtype, threads, n, repeat)["gflops"]


def fma_peaks(dtype="float32", seconds=0.03):
    """{target: GFLOP/s} of one core's FMA loop on every usable SIMD target (a few ms each)."""
    import rnnkit

    from . import _core

    return {t: _core._fma_peak(t, dtype, seconds) for t in rnnkit.simd_targets()}


def _best_rate(fn, flop, repeat, clock="wall"):
    now = CLOCKS[clock]
    fn()
    ts = []
    for _ in range(repeat):
        t0 = now()
        fn()
        ts.append(now() - t0)
    return flop / min(ts) / 1e9


def torch_gemm_peak(dtype="float32", threads=1, n=2048, repeat=5, clock="wall"):
    """PyTorch's matmul GFLOP/s on an n x n product with `threads` threads, and the BLAS it was
    built with; None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.from_numpy(np.random.default_rng(0).random((n, n)).astype(dtype))
        b = a.clone()
        gflops = _best_rate(lambda: torch.mm(a, b), 2.0 * n**3, repeat, clock)
    finally:
        torch.set_num_threads(before)
    blas = "mkl" if torch.backends.mkl.is_available() else "other"
    return {"gflops": gflops, "blas": blas}


def rnnkit_gemm_peak(dtype="float32", threads=1, n=2048, repeat=3, clock="wall"):
    """rnnkit's own GEMM (best target, B packed inside the call) on an n x n product."""
    import rnnkit

    from . import _core

    before_t, before_n = rnnkit.get_simd_target(), rnnkit.get_num_threads()
    rnnkit.set_simd_target(rnnkit.simd_targets()[0])
    rnnkit.set_num_threads(threads)
    try:
        a = np.random.default_rng(0).random((n, n)).astype(dtype)
        return _best_rate(lambda: _core._gemm(a, a), 2.0 * n**3, repeat, clock)
    finally:
        rnnkit.set_simd_target(before_t)
        rnnkit.set_num_threads(before_n)


def _problem(cell, T, B, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    G, s = GATES[cell], 1.0 / np.sqrt(H)
    args = (
        rng.standard_normal((T, B, H)).astype(dtype),
        rng.uniform(-s, s, (G * H, H)).astype(dtype),
        rng.uniform(-s, s, (G * H, H)).astype(dtype),
        rng.uniform(-s, s, G * H).astype(dtype),
        rng.uniform(-s, s, G * H).astype(dtype),
    )
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    return args, dy


class Impl:
    """One implementation: `setup(cell, args, dy)` returns (fwd, fwd_bwd, result_for_check).

    settle: seconds its thread pool keeps spinning after a call when it runs on more than one
    thread; the benchmark waits that long before the next implementation's timed call, so
    that one does not share its cores with a spinning pool."""

    def __init__(
        self,
        name,
        setup: Callable,
        before: Optional[Callable] = None,
        fwd_only=False,
        settle=0.0,
    ):
        self.name, self.setup, self.before, self.fwd_only = name, setup, before, fwd_only
        self.settle = settle


def _rnnkit_impl(target, threads):
    import rnnkit

    def before():
        rnnkit.set_simd_target(target)
        rnnkit.set_num_threads(threads)

    def setup(cell, args, dy):
        fwd = getattr(rnnkit, f"{cell}_forward")
        bwd = getattr(rnnkit, f"{cell}_backward")
        return (lambda: fwd(*args)), (lambda: bwd(fwd(*args).cache, dy=dy)), (lambda: fwd(*args).y)

    return Impl(f"rnnkit-{target}", setup, before)


def _reference_impl():
    import rnnkit.reference as ref

    def setup(cell, args, dy):
        fwd = getattr(ref, f"{cell}_forward")
        bwd = getattr(ref, f"{cell}_backward")
        return (lambda: fwd(*args)), (lambda: bwd(fwd(*args).cache, dy=dy)), (lambda: fwd(*args).y)

    return Impl("numpy-reference", setup)


def _torch_impl(threads):
    import torch

    def before():
        torch.set_num_threads(threads)

    def setup(cell, args, dy):
        x, w_ih, w_hh, b_ih, b_hh = (torch.from_numpy(a) for a in args)
        cls = getattr(torch.nn, CELLS[cell].title)
        mod = cls(x.shape[2], w_hh.shape[1], dtype=x.dtype)
        with torch.no_grad():
            for name, v in (
                ("weight_ih_l0", w_ih),
                ("weight_hh_l0", w_hh),
                ("bias_ih_l0", b_ih),
                ("bias_hh_l0", b_hh),
            ):
                getattr(mod, name).copy_(v)
        dyt = torch.from_numpy(dy)

        def fwd():
            with torch.no_grad():
                return mod(x)[0]

        def fwd_bwd():
            xt = x.clone().requires_grad_(True)
            y, _ = mod(xt)
            y.backward(dyt)
            mod.zero_grad(set_to_none=True)

        return fwd, fwd_bwd, (lambda: fwd().numpy())

    # OpenMP workers spin a little after each parallel region (GOMP_SPINCOUNT)
    return Impl("pytorch", setup, before, settle=0.02)


def _onnxruntime_impl(threads):
    import onnxruntime as ort

    from .convert import to_onnx

    def setup(cell, args, dy):
        x, w_ih, w_hh, b_ih, b_hh = args
        model = to_onnx(
            cell, {"w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh}, with_sequence_lens=False
        )
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        B, H = x.shape[1], w_hh.shape[1]
        feeds = {"X": x, "initial_h": np.zeros((1, B, H), x.dtype)}
        if CELLS[cell].cell_state:
            feeds["initial_c"] = np.zeros((1, B, H), x.dtype)
        fwd = lambda: sess.run(["Y"], feeds)  # noqa: E731
        return fwd, None, (lambda: fwd()[0][:, 0])

    # Its pool keeps spinning for tens of ms after a run: measured at LSTM B=64 H=256, two
    # threads, rnnkit's forward right after an onnxruntime run took 39 ms against 22 ms alone,
    # 29 ms 20 ms later and 22 ms 200 ms later. Spinning off (allow_spinning=0) slows
    # onnxruntime itself by about 3%, so it keeps its spinning and the others wait it out.
    return Impl("onnxruntime", setup, fwd_only=True, settle=0.25)


def available_impls(
    targets=None, threads=1, reference=True, torch=True, onnx=True, dtype="float32"
):
    import rnnkit

    impls = [_rnnkit_impl(t, threads) for t in (targets or rnnkit.simd_targets())]
    if reference:
        impls.append(_reference_impl())
    if torch:
        try:
            impls.append(_torch_impl(threads))
        except ImportError as e:
            _dropped("torch", f"it cannot be imported ({e}); pip install torch==2.13.0", "torch")
    if onnx and dtype != "float32":
        _dropped("onnxruntime", "its CPU RNN kernels are float32 only", "onnx")
    elif onnx:
        try:
            impls.append(_onnxruntime_impl(threads))
        except ImportError as e:
            _dropped(
                "onnxruntime", f"it cannot be imported ({e}); pip install onnx onnxruntime", "onnx"
            )
    return impls


def _wait_out(seconds):
    """Sleeps while a peer's thread pool stops spinning (Impl.settle)."""
    time.sleep(seconds)


def _dropped(name, why, flag):
    """Says why a comparison row is missing, instead of leaving it out silently."""
    print(f"rnnkit bench: no {name} rows: {why} (--no-{flag} hides this note)", file=sys.stderr)


def _progress(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(
        total=total, disable=not sys.stderr.isatty(), desc="rnnkit bench", unit="run", leave=False
    )


def run(
    cells=("lstm", "gru", "rnn"),
    shapes=None,
    dtype="float32",
    threads=1,
    repeat=7,
    targets=None,
    reference=True,
    torch=True,
    onnx=True,
    quick=False,
    progress=True,
    clock="wall",
) -> Dict:
    """Runs the benchmark; returns a JSON-able dict (see `format_table`).

    clock="thread" times the CPU time of the calling thread instead of wall time: with one
    thread every implementation computes on the calling thread, and on a machine shared with
    other work that leaves out the time the OS gave to other processes."""
    import rnnkit

    if clock not in CLOCKS:
        raise ValueError(f"clock: expected one of {sorted(CLOCKS)}, got {clock!r}")
    if clock == "thread" and threads != 1:
        raise ValueError(f"clock: 'thread' measures one thread only, got threads={threads}")
    now = CLOCKS[clock]

    shapes = shapes or (QUICK_SHAPES if quick else FULL_SHAPES)
    dt = np.dtype(dtype)
    before_target, before_threads = rnnkit.get_simd_target(), rnnkit.get_num_threads()
    impls = available_impls(targets, threads, reference, torch, onnx, dtype)
    fma = fma_peaks(dtype)
    peak = max(fma.values()) * threads  # one core's loop: threads cores at most
    info = rnnkit.info()
    torch_gemm = torch_gemm_peak(dtype, threads, clock=clock) if torch else None
    result = {
        "machine": {
            "cpu": info["cpu"],
            "cpu_caches": info["cpu_caches"],
            "simd_targets": info["simd_targets"],
            "compiler": info["compiler"],
            "threads": threads,
            "dtype": dtype,
            "repeat": repeat,
            "clock": clock,
            "numpy": np.__version__,
            "fma_peak_gflops": fma,
            "peak_gflops": peak,
            "numpy_gemm": numpy_gemm(dtype, threads, clock=clock),
            "torch_gemm": torch_gemm,
            "rnnkit_gemm_gflops": rnnkit_gemm_peak(dtype, threads, clock=clock),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", ""),
        },
        "results": [],
    }
    result["machine"]["gemm_peak_gflops"] = result["machine"]["numpy_gemm"]["gflops"]
    bar = _progress(len(cells) * len(shapes) * repeat * len(impls), progress)
    try:
        for cell in cells:
            for T, B, H in shapes:
                args, dy = _problem(cell, T, B, H, dt)
                f_fwd, f_all = flops(cell, T, B, H)
                runs = []
                for impl in impls:
                    if impl.before:
                        impl.before()
                    fwd, fwd_bwd, check = impl.setup(cell, args, dy)
                    runs.append((impl, fwd, fwd_bwd, check))
                ref_y = rnnkit.reference.__dict__[f"{cell}_forward"](*args).y
                times = {impl.name: {"fwd": [], "fwd_bwd": []} for impl, *_ in runs}
                for impl, fwd, fwd_bwd, check in runs:  # warm up, and check each result once
                    if impl.before:
                        impl.before()
                    fwd()
                    if fwd_bwd:
                        fwd_bwd()
                    err = float(np.max(np.abs(np.asarray(check()) - ref_y))) if ref_y.size else 0.0
                    if err > (1e-3 if dt == np.float32 else 1e-8):
                        raise AssertionError(
                            f"{impl.name} {cell} {(T, B, H)}: result differs by {err}"
                        )
                # Small problems: one untimed call after switching implementation, for every
                # implementation alike, so a unit waking up (e.g. the 512-bit FMA units after
                # idling) or cold instruction caches are not charged to whoever runs first.
                warm = f_fwd < 5e7
                for _ in range(repeat):  # interleaved: every impl sees the same machine state
                    for impl, fwd, fwd_bwd, _ in runs:
                        if impl.before:
                            impl.before()
                        if warm:
                            fwd()
                        t0 = now()
                        fwd()
                        t1 = now()
                        times[impl.name]["fwd"].append(t1 - t0)
                        if fwd_bwd:
                            t1 = now()
                            fwd_bwd()
                            times[impl.name]["fwd_bwd"].append(now() - t1)
                        if threads > 1 and impl.settle:
                            _wait_out(impl.settle)
                        if bar:
                            bar.update(1)
                for name, tt in times.items():
                    row = {"cell": cell, "T": T, "B": B, "H": H, "I": H, "impl": name}
                    for kind, fl in (("fwd", f_fwd), ("fwd_bwd", f_all)):
                        if tt[kind]:
                            med = statistics.median(tt[kind])
                            row[kind] = {
                                "median_ms": med * 1e3,
                                "min_ms": min(tt[kind]) * 1e3,
                                "max_ms": max(tt[kind]) * 1e3,
                                "gflops": fl / med / 1e9,
                                "pct_peak": 100 * fl / med / 1e9 / peak,
                            }  # FMA peak
                    result["results"].append(row)
    finally:
        if bar:
            bar.close()
        rnnkit.set_simd_target(before_target)
        rnnkit.set_num_threads(before_threads)
    return result


def best_rnnkit(rows):
    nat = [r for r in rows if r["impl"].startswith("rnnkit-") and "fwd_bwd" in r]
    return min(nat, key=lambda r: r["fwd_bwd"]["median_ms"]) if nat else None


def format_table(res) -> str:
    m = res["machine"]
    fma = ", ".join(f"{t} {g:.1f}" for t, g in m["fma_peak_gflops"].items())
    tg = m.get("torch_gemm")
    torch_txt = f", PyTorch ({tg['blas']}) {tg['gflops']:.1f}" if tg else ""
    ng = m.get("numpy_gemm") or {}
    blas_env = f" ({ng['kernel']})" if ng.get("kernel") else ""
    if m["OPENBLAS_CORETYPE"]:
        blas_env += f" [OPENBLAS_CORETYPE={m['OPENBLAS_CORETYPE']}]"
    clock = "CPU time of the calling thread" if m.get("clock") == "thread" else "wall time"
    lines = [
        f"rnnkit bench: {m['dtype']}, {m['threads']} thread(s), median of {m['repeat']} "
        f"interleaved runs ({clock}); CPU {m['cpu']}; {m['cpu_caches']}",
        f"FMA peak, one core (GFLOP/s): {fma}; '%peak' is of {m['peak_gflops']:.1f} "
        f"(best target x {m['threads']} thread(s))",
        f"GEMM 2048^3, same threads (GFLOP/s): NumPy{blas_env} {m['gemm_peak_gflops']:.1f}"
        f"{torch_txt}, rnnkit {m['rnnkit_gemm_gflops']:.1f}",
    ]
    hdr = (
        f"{'cell':5} {'T':>4} {'B':>3} {'H':>4}  {'impl':16} {'fwd ms':>9} {'%peak':>6}  "
        f"{'fwd+bwd ms':>11} {'[min-max]':>17} {'GFLOP/s':>8} {'%peak':>6}  {'vs this':>8}"
    )
    lines.append(hdr)
    groups = {}
    for r in res["results"]:
        groups.setdefault((r["cell"], r["T"], r["B"], r["H"]), []).append(r)
    for (cell, T, B, H), rows in groups.items():
        best = best_rnnkit(rows)
        nat_fwd = [
            r["fwd"]["median_ms"] for r in rows if r["impl"].startswith("rnnkit-") and "fwd" in r
        ]
        for r in rows:
            f = r.get("fwd")
            a = r.get("fwd_bwd")
            if a and best:
                ratio = f"{a['median_ms'] / best['fwd_bwd']['median_ms']:7.2f}x"
            elif f and nat_fwd:  # forward-only: against rnnkit's fastest forward
                ratio = f"{f['median_ms'] / min(nat_fwd):7.2f}x"
            else:
                ratio = ""
            fw = f"{f['median_ms']:9.3f} {f['pct_peak']:5.1f}%" if f else " " * 16
            ab = (
                f"{a['median_ms']:11.3f} [{a['min_ms']:7.2f}-{a['max_ms']:7.2f}] "
                f"{a['gflops']:8.1f} "
                f"{a['pct_peak']:5.1f}%"
                if a
                else " " * 46
            )
            lines.append(f"{cell:5} {T:>4} {B:>3} {H:>4}  {r['impl']:16} {fw}  {ab}  {ratio}")
        lines.append("")
    lines.append(
        "'vs this': that impl's time / the fastest rnnkit target's, fwd+bwd (forward-only "
        "impls: / rnnkit's fastest forward). >1 means rnnkit is faster."
    )
    return "\n".join(lines)


def plot(res, path):
    """PNG: fwd+bwd % of the FMA peak by shape, one line per implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted({r["cell"] for r in res["results"]})
    fig, axes = plt.subplots(1, len(cells), figsize=(5 * len(cells), 4), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        rows = [r for r in res["results"] if r["cell"] == cell]
        shapes = sorted({(r["B"], r["H"]) for r in rows}, key=lambda s: (s[1], s[0]))
        for impl in dict.fromkeys(r["impl"] for r in rows):
            ys = []
            for s in shapes:
                m = [r for r in rows if r["impl"] == impl and (r["B"], r["H"]) == s]
                key = "fwd_bwd" if m and "fwd_bwd" in m[0] else "fwd"
                ys.append(m[0][key]["pct_peak"] if m and key in m[0] else np.nan)
            ax.plot(range(len(shapes)), ys, marker="o", label=impl)
        ax.set_xticks(range(len(shapes)), [f"B={b}\nH={h}" for b, h in shapes])
        ax.set_title(f"{cell}: fwd+bwd (onnxruntime: fwd)")
        ax.set_ylabel("% of FMA peak")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    from ._files import save_figure

    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _reexec_with_blas_threads(threads, argv):
    """NumPy's BLAS (the reference, the GEMM peak) reads its thread count only at import: run
    this command again, once, with it set to --threads so every library gets the same threads."""
    if os.environ.get("RNNKIT_BENCH_CHILD") or argv is None:
        return
    if all(os.environ.get(k) == str(threads) for k in _BLAS_VARS):
        return
    env = dict(os.environ, RNNKIT_BENCH_CHILD="1", **{k: str(threads) for k in _BLAS_VARS})
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "rnnkit", "bench", *argv], env)


def main(args, argv=None) -> int:
    if args.torch_modules:  # a table of its own: rnnkit.torch vs torch.nn training steps
        from .torch.bench import main as torch_modules_main

        return torch_modules_main(args)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "rnnkit bench: --plot needs matplotlib (pip install 'rnnkit[plot]')",
                file=sys.stderr,
            )
            return 2
    if args.clock == "thread" and args.threads != 1:
        print(
            f"rnnkit bench: --clock thread measures one thread only, got --threads {args.threads}",
            file=sys.stderr,
        )
        return 2
    _reexec_with_blas_threads(args.threads, argv)
    if args.stream:  # a table of its own: one step at batch 1 (rnnkit/bench_stream.py)
        from .bench_stream import main as stream_main

        return stream_main(args)
    shapes = None
    if args.batch or args.hidden or args.T:
        shapes = [
            (args.T or (50 if args.quick else 100), b, h)
            for h in (args.hidden or [64, 256])
            for b in (args.batch or [1, 8, 64])
        ]
    res = run(
        cells=args.cells,
        shapes=shapes,
        dtype=args.dtype,
        threads=args.threads,
        repeat=args.repeat or (3 if args.quick else 7),
        targets=args.targets,
        reference=not args.no_reference,
        torch=not args.no_torch,
        onnx=not args.no_onnx,
        quick=args.quick,
        progress=not args.no_progress,
        clock=args.clock,
    )
    print(format_table(res))
    if args.json:
        from ._files import atomic_write

        with atomic_write(args.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {plot(res, args.plot)}")
    return 0


def add_arguments(p):
    from .cli import _int_at_least

    pos = _int_at_least(1)
    p.add_argument(
        "--quick", action="store_true", help="3 shapes, T=50, 3 repeats (under a minute)"
    )
    p.add_argument(
        "--cells", nargs="+", default=["lstm", "gru", "rnn"], choices=["lstm", "gru", "rnn"]
    )
    p.add_argument("--batch", type=pos, nargs="+", help="batch sizes (default 1 8 64)")
    p.add_argument("--hidden", type=pos, nargs="+", help="hidden sizes, I = H (default 64 256)")
    p.add_argument("--T", type=pos, help="sequence length (default 100, 50 with --quick)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=pos, default=1)
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or the CPU time of the calling thread (one thread only; "
        "steadier on a busy machine)",
    )
    p.add_argument("--repeat", type=pos)
    p.add_argument("--targets", nargs="+", help="rnnkit SIMD targets (default: all usable)")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--plot", metavar="PNG")
    p.add_argument(
        "--stream",
        action="store_true",
        help="instead: per-step latency at batch 1 of streams vs onnxruntime, torch "
        "cells, NumPy, the functional API (rnnkit/bench_stream.py), then whole "
        "sequences of stream.run vs onnxruntime; --cells, --hidden, --repeat, "
        "--json, --plot apply",
    )
    p.add_argument(
        "--torch-modules",
        action="store_true",
        help="instead: training steps of rnnkit.torch.X vs torch.nn.X in a small "
        "model (needs torch; rnnkit/torch/bench.py)",
    )
