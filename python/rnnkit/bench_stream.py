"""`rnnkit bench --stream`: the latency of one step at batch 1, the way streaming users run a
recurrent network (speech frames, control loops, sampling one character at a time).

Per cell (LSTM, GRU) and hidden size (I = H), float32, one thread, the time of one step of:
- ``stream``, ``stream bf16``: ``s.step(x_t)`` of an rnnkit stream (float32 / bfloat16 weights);
- ``onnxruntime``: a session of a one-step ONNX model whose Y_h (Y_c) are fed back as the next
  initial_h (initial_c), intra-op threads 1;
- ``torch cell``: ``torch.nn.LSTMCell`` / ``GRUCell`` under ``torch.no_grad()``;
- ``numpy``: the NumPy one-liner step (one matmul per weight matrix, then the gates);
- ``functional T=1``: ``rnnkit.lstm_forward`` / ``gru_forward`` on one step;
- ``in T=200``: one ``T = 200`` forward divided by 200, the floor a step can approach (it reads
  only w_hh per step: the input projection of all steps is one large GEMM).
Each is timed over a run of steps, interleaved with the others, repeated; the median per step
is reported with the ratio of each to the float32 stream (> 1: the stream is faster).

A second table times whole sequences (T = 100, B = 1, 8, 64, H = 64, 256): ``s.run(x)`` of a
stream (weights packed once, when the stream was made) against an onnxruntime session of the
same one-layer model (intra-op threads 1). Then the issue-13 targets, each with its ratio.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

HIDDEN = (64, 128, 256, 512, 1024)
CELLS = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}


def _weights(cell, H, seed=0):
    rng = np.random.default_rng(seed)
    s, G = 1.0 / np.sqrt(H), GATES[cell]
    w = {
        k: rng.uniform(-s, s, shape).astype(np.float32)
        for k, shape in (
            ("w_ih", (G * H, H)),
            ("w_hh", (G * H, H)),
            ("b_ih", (G * H,)),
            ("b_hh", (G * H,)),
        )
    }
    return w


def _layer(cell, H, w):
    import rnnkit

    m = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cell](H, H)
    m.load_state_dict(
        {
            "weight_ih_l0": w["w_ih"],
            "weight_hh_l0": w["w_hh"],
            "bias_ih_l0": w["b_ih"],
            "bias_hh_l0": w["b_hh"],
        }
    )
    return m.eval()


def _stream(cell, H, w, xs, weight_dtype=None):
    s = _layer(cell, H, w).stream(1, weight_dtype=weight_dtype)

    def run():
        for x_t in xs:
            s.step(x_t)

    return run


def _onnxruntime(cell, H, w, xs):
    import onnxruntime as ort

    from .convert import to_onnx

    model = to_onnx(cell, w, with_sequence_lens=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = ["Y_h", "Y_c"] if cell == "lstm" else ["Y_h"]
    x3 = [x_t[None] for x_t in xs]

    def run():
        feeds = {"initial_h": np.zeros((1, 1, H), np.float32)}
        if cell == "lstm":
            feeds["initial_c"] = np.zeros((1, 1, H), np.float32)
        for x in x3:
            feeds["X"] = x
            out = sess.run(names, feeds)
            feeds["initial_h"] = out[0]
            if cell == "lstm":
                feeds["initial_c"] = out[1]

    return run


def _torch_cell(cell, H, w, xs):
    import torch

    torch.set_num_threads(1)
    m = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell](H, H)
    with torch.no_grad():
        for name, key in (
            ("weight_ih", "w_ih"),
            ("weight_hh", "w_hh"),
            ("bias_ih", "b_ih"),
            ("bias_hh", "b_hh"),
        ):
            getattr(m, name).copy_(torch.from_numpy(w[key]))
    xt = [torch.from_numpy(x_t) for x_t in xs]

    def run():
        with torch.no_grad():
            state = None
            for x in xt:
                state = m(x, state)

    return run


def _numpy_step(cell, H, w, xs):
    w_ihT, w_hhT = np.ascontiguousarray(w["w_ih"].T), np.ascontiguousarray(w["w_hh"].T)
    b = w["b_ih"] + w["b_hh"]
    b_ih, b_hh = w["b_ih"], w["b_hh"]

    def sig(a):
        return 1.0 / (1.0 + np.exp(-a))

    def run_lstm():
        h = c = np.zeros((1, H), np.float32)
        for x in xs:
            a = x @ w_ihT + h @ w_hhT + b
            i, f, o = sig(a[:, :H]), sig(a[:, H : 2 * H]), sig(a[:, 3 * H :])
            c = f * c + i * np.tanh(a[:, 2 * H : 3 * H])
            h = o * np.tanh(c)

    def run_gru():
        h = np.zeros((1, H), np.float32)
        for x in xs:
            gi, gh = x @ w_ihT + b_ih, h @ w_hhT + b_hh
            r = sig(gi[:, :H] + gh[:, :H])
            z = sig(gi[:, H : 2 * H] + gh[:, H : 2 * H])
            n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
            h = (1 - z) * n + z * h

    return run_lstm if cell == "lstm" else run_gru


def _functional(cell, H, w, xs):
    import rnnkit

    fwd = {"lstm": rnnkit.lstm_forward, "gru": rnnkit.gru_forward}[cell]
    x3 = [x_t[None] for x_t in xs]
    args = (w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"])

    def run():
        h = np.zeros((1, H), np.float32)
        c = np.zeros((1, H), np.float32)
        for x in x3:
            if cell == "lstm":
                out = fwd(x, *args, h, c)
                h, c = out.h_n, out.c_n
            else:
                h = fwd(x, *args, h).h_n

    return run


def _whole_sequence(cell, H, w, xs):
    import rnnkit

    fwd = {"lstm": rnnkit.lstm_forward, "gru": rnnkit.gru_forward}[cell]
    x = np.stack(xs)  # [T, 1, I]
    args = (w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"])
    return lambda: fwd(x, *args)


def implementations(torch=True, onnx=True):
    """(name, factory) pairs: factory(cell, H, weights, xs) -> a function running len(xs) steps.
    The optional peers are left out, with the reason, when their package is missing."""
    impls = [("stream", _stream), ("stream bf16", lambda *a: _stream(*a, "bfloat16"))]
    missing = []
    if onnx:
        try:
            import onnx as _onnx  # noqa: F401
            import onnxruntime  # noqa: F401

            impls.append(("onnxruntime", _onnxruntime))
        except ImportError:
            missing.append("onnxruntime (pip install 'rnnkit[onnx]')")
    if torch:
        try:
            import torch as _torch  # noqa: F401

            impls.append(("torch cell", _torch_cell))
        except ImportError:
            missing.append("torch cell (pip install 'rnnkit[torch]')")
    impls += [
        ("numpy", _numpy_step),
        ("functional T=1", _functional),
        ("in T=200", _whole_sequence),
    ]
    return impls, missing


def run(cells=CELLS, hidden=HIDDEN, steps=200, repeat=7, torch=True, onnx=True):
    """Measures every implementation; returns a dict with one row per (cell, H)."""
    import rnnkit

    threads = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    impls, missing = implementations(torch, onnx)
    rows = []
    try:
        for cell in cells:
            for H in hidden:
                w = _weights(cell, H)
                rng = np.random.default_rng(1)
                xs = [rng.standard_normal((1, H)).astype(np.float32) for _ in range(steps)]
                fns = [(name, make(cell, H, w, xs)) for name, make in impls]
                times = {name: [] for name, _ in fns}
                for _, fn in fns:
                    fn()  # warm-up: first-call costs (allocations, packing, JIT) are not steps
                for _ in range(repeat):
                    for fn_name, fn in fns:  # interleaved: drifts hit every column alike
                        t0 = time.perf_counter()
                        fn()
                        times[fn_name].append((time.perf_counter() - t0) / steps)
                med = {k: statistics.median(v) for k, v in times.items()}
                rows.append({"cell": cell, "H": H, "us": {k: v * 1e6 for k, v in med.items()}})
    finally:
        rnnkit.set_num_threads(threads)
    return {
        "rows": rows,
        "impls": [n for n, _ in impls],
        "missing": missing,
        "steps": steps,
        "repeat": repeat,
        "simd": rnnkit.get_simd_target(),
    }


def _median_time(fns, repeat):
    """{name: median seconds} of the functions, interleaved, after one warm-up call each."""
    times = {name: [] for name, _ in fns}
    for _, fn in fns:
        fn()
    for _ in range(repeat):
        for name, fn in fns:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def run_sequences(cells=CELLS, hidden=(64, 256), batches=(1, 8, 64), T=100, repeat=7):
    """Whole-sequence forward: stream.run(x) vs an onnxruntime session; rows of median us."""
    import onnxruntime as ort

    import rnnkit

    from .convert import to_onnx

    threads = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    rows = []
    try:
        for cell in cells:
            for H in hidden:
                w = _weights(cell, H)
                so = ort.SessionOptions()
                so.intra_op_num_threads = so.inter_op_num_threads = 1
                sess = ort.InferenceSession(
                    to_onnx(cell, w, with_sequence_lens=False).SerializeToString(),
                    so,
                    providers=["CPUExecutionProvider"],
                )
                for B in batches:
                    x = np.random.default_rng(2).standard_normal((T, B, H)).astype(np.float32)
                    s = _layer(cell, H, w).stream(B)

                    def stream_run(s=s, x=x):
                        s.reset()
                        s.run(x)

                    feeds = {"X": x, "initial_h": np.zeros((1, B, H), np.float32)}
                    if cell == "lstm":
                        feeds["initial_c"] = feeds["initial_h"]
                    med = _median_time(
                        [
                            ("stream run", stream_run),
                            ("onnxruntime", lambda f=feeds, o=sess: o.run(["Y"], f)),
                        ],
                        repeat,
                    )
                    rows.append(
                        {"cell": cell, "H": H, "B": B, "us": {k: v * 1e6 for k, v in med.items()}}
                    )
    finally:
        rnnkit.set_num_threads(threads)
    return rows


def targets(res):
    """(figure, measured, target, met) of the issue-13 targets, from one run's results."""
    out = []
    rows = res["rows"]
    for r in rows:
        us, H, tag = r["us"], r["H"], f"{r['cell']} H={r['H']}"
        s = us["stream"]
        if "onnxruntime" in us and (H <= 128 or H == 512):
            want = 2.0 if H <= 128 else 1.2
            out.append(
                (
                    f"{tag}: onnxruntime step / stream step",
                    us["onnxruntime"] / s,
                    f">= {want}",
                    us["onnxruntime"] / s >= want,
                )
            )
        for peer in ("torch cell", "numpy"):
            if peer in us:
                out.append((f"{tag}: {peer} / stream step", us[peer] / s, "> 1", us[peer] > s))
        if H <= 256:
            bound = 2 * us["in T=200"] + 2
            out.append(
                (
                    f"{tag}: stream step us (<= 2 x in-T=200 + 2 = {bound:.2f})",
                    s,
                    f"<= {bound:.2f}",
                    s <= bound,
                )
            )
        out.append(
            (
                f"{tag}: numpy / functional T=1",
                us["numpy"] / us["functional T=1"],
                "> 1",
                us["numpy"] > us["functional T=1"],
            )
        )
        if r["cell"] == "lstm" and H == 64:
            out.append(
                (
                    f"{tag}: functional T=1 us",
                    us["functional T=1"],
                    "<= 6",
                    us["functional T=1"] <= 6,
                )
            )
        if H == 1024:
            out.append(
                (
                    f"{tag}: stream / stream bf16",
                    s / us["stream bf16"],
                    ">= 1.4",
                    s / us["stream bf16"] >= 1.4,
                )
            )
    for r in res.get("sequences", []):
        ratio = r["us"]["onnxruntime"] / r["us"]["stream run"]
        out.append(
            (
                f"{r['cell']} H={r['H']} B={r['B']} T=100: onnxruntime / stream run",
                ratio,
                ">= 1.05",
                ratio >= 1.05,
            )
        )
    return out


def format_table(res) -> str:
    names = res["impls"]
    lines = [
        f"per-step latency, B=1, float32, 1 thread, I=H, SIMD {res['simd']}: median us "
        f"of {res['repeat']} runs of {res['steps']} steps (x: that time / the float32 "
        f"stream's; > 1 means the stream is faster)"
    ]
    head = f"{'cell':5} {'H':>5} " + " ".join(f"{n:>18}" for n in names)
    lines += [head, "-" * len(head)]
    for r in res["rows"]:
        base = r["us"]["stream"]
        cells = []
        for n in names:
            t = r["us"][n]
            cells.append(f"{t:9.2f}" + (f" ({t / base:5.2f}x)" if n != "stream" else " " * 9))
        lines.append(f"{r['cell']:5} {r['H']:>5} " + " ".join(f"{c:>18}" for c in cells))
    for m in res["missing"]:
        lines.append(f"not measured: {m} is not installed")
    if res.get("sequences"):
        lines += [
            "",
            "whole sequence, T=100, float32, 1 thread: median us (x: onnxruntime / stream run)",
            f"{'cell':5} {'H':>5} {'B':>3} {'stream run':>12} {'onnxruntime':>12} {'x':>6}",
        ]
        for r in res["sequences"]:
            a, b = r["us"]["stream run"], r["us"]["onnxruntime"]
            lines.append(f"{r['cell']:5} {r['H']:>5} {r['B']:>3} {a:12.1f} {b:12.1f} {b / a:6.2f}")
    lines += ["", "targets (issue 13):"]
    for name, value, want, met in targets(res):
        lines.append(f"  {'met ' if met else 'MISS'} {name}: {value:.2f} (target {want})")
    return "\n".join(lines)


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._files import save_figure

    cells = sorted({r["cell"] for r in res["rows"]})
    fig, axes = plt.subplots(1, len(cells), figsize=(6 * len(cells), 4), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        rows = [r for r in res["rows"] if r["cell"] == cell]
        Hs = [r["H"] for r in rows]
        for n in res["impls"]:
            ax.plot(Hs, [r["us"][n] for r in rows], marker="o", label=n)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("hidden size H (= I)")
        ax.set_ylabel("µs per step (B=1, 1 thread)")
        ax.set_title(f"{cell.upper()}: one step at batch 1")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def main(args) -> int:
    cells = args.cells and [c for c in args.cells if c in CELLS] or CELLS
    res = run(
        cells=cells,
        hidden=args.hidden or HIDDEN,
        repeat=args.repeat or 7,
        torch=not args.no_torch,
        onnx=not args.no_onnx,
    )
    if "onnxruntime" in res["impls"]:
        res["sequences"] = run_sequences(cells, repeat=args.repeat or 7)
    print(format_table(res))
    if args.json:
        import json

        from ._files import atomic_write

        with atomic_write(args.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {plot(res, args.plot)}")
    return 0
