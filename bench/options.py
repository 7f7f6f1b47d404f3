"""What each option costs against the plain cell, measured side by side.

    python bench/options.py [--T 100] [--B 8] [--H 256] [--threads 1] [--repeat 7]

For each cell, the plain configuration and each option run interleaved on the same inputs
(float32); the table gives median forward and forward+backward times and their ratio to the
plain cell of the same run. The options of API.md section 11: resets (a reset every 10 steps
in each sequence), zoneout 0.1 as a training mask of 0s and 1s (h; and c for the LSTM),
both together, layer norm (ln_ih alone; ln_ih and ln_hh, with ln_c for the LSTM; with the
masks), a recurrent mask (variational dropout 0.25: 0 or 1/0.75 per sequence and unit), and the
mask with resets and zoneout. Every row runs in the kernels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import rnnkit


def section11(cell):
    """The rows of the options of API.md section 11 for one cell."""
    zone = {"zoneout": 0.1} if cell != "lstm" else {"zoneout": 0.1, "zoneout_c": 0.1}
    rows = [
        ("resets (every 10 steps)", {"resets": 10}),
        ("zoneout 0.1" + (" (h and c)" if cell == "lstm" else ""), zone),
        ("resets + zoneout", {"resets": 10, **zone}),
        ("layer norm ln_ih", {"ln": ("ln_ih",)}),
        ("layer norm" + (" ih, hh, c" if cell == "lstm" else " ih, hh"), {"ln": True}),
        ("layer norm + resets + zoneout", {"ln": True, "resets": 10, **zone}),
        ("recurrent_mask 0.25", {"rmask": 0.25}),
        ("mask + resets + zoneout", {"rmask": 0.25, "resets": 10, **zone}),
    ]
    return rows


def configs(T, B, H):
    lengths = np.random.default_rng(1).integers(T // 2, T + 1, size=B)
    lengths[0] = T
    return {
        "lstm": [
            ("plain", {}),
            ("peephole", {"peep": True}),
            ("projection P=H/2", {"proj": H // 2}),
            ("clip", {"clip": 3.0}),
            ("input_forget", {"input_forget": True}),
            ("reverse", {"reverse": True}),
            ("lengths (T/2..T)", {"lengths": lengths}),
            (
                "all of the above",
                {
                    "peep": True,
                    "proj": H // 2,
                    "clip": 3.0,
                    "input_forget": True,
                    "reverse": True,
                    "lengths": lengths,
                },
            ),
        ]
        + section11("lstm"),
        "gru": [
            ("plain (linear_before_reset)", {}),
            ("linear_before_reset=False", {"lbr": False}),
            ("clip", {"clip": 3.0}),
            ("reverse", {"reverse": True}),
            ("lengths (T/2..T)", {"lengths": lengths}),
        ]
        + section11("gru"),
        "rnn": [
            ("plain (tanh)", {}),
            ("relu", {"relu": True}),
            ("clip", {"clip": 3.0}),
            ("reverse", {"reverse": True}),
            ("lengths (T/2..T)", {"lengths": lengths}),
        ]
        + section11("rnn"),
    }


def make(cell, opt, T, B, H, rng):
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    P = opt.get("proj", H)
    s = 1 / np.sqrt(H)
    u = lambda *shape: rng.uniform(-s, s, shape).astype(np.float32)  # noqa: E731
    args = [
        rng.standard_normal((T, B, H)).astype(np.float32),
        u(G * H, H),
        u(G * H, P),
        u(G * H),
        u(G * H),
    ]
    kw = {"lengths": opt.get("lengths"), "reverse": opt.get("reverse", False)}
    if "clip" in opt:
        kw["clip"] = opt["clip"]
    if cell == "lstm":
        if opt.get("peep"):
            kw["w_peep"] = u(3, H)
        if "proj" in opt:
            kw["w_proj"] = u(P, H)
        if opt.get("input_forget"):
            kw["input_forget"] = True
    if cell == "gru":
        kw["linear_before_reset"] = opt.get("lbr", True)
    if cell == "rnn":
        kw["nonlinearity"] = "relu" if opt.get("relu") else "tanh"
    add_section11(kw, cell, opt, T, B, H, P, rng)
    dy = rng.standard_normal((T, B, P)).astype(np.float32)
    return args, kw, dy


def add_section11(kw, cell, opt, T, B, H, P, rng):
    """The masks and layer-norm parameters of the section-11 rows."""
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    if "resets" in opt:  # every sequence restarts every opt["resets"] steps, at its own phase
        every = opt["resets"]
        kw["resets"] = (np.arange(T)[:, None] + np.arange(B)[None, :]) % every == every - 1
    for name, shape in (("zoneout", (T, B, P)), ("zoneout_c", (T, B, H))):
        if name in opt:
            kw[name] = (rng.uniform(size=shape) < opt[name]).astype(np.float32)
    if opt.get("ln"):
        gain_bias = lambda n: np.stack([np.ones(n), np.zeros(n)]).astype(np.float32)  # noqa: E731
        names = opt["ln"] if opt["ln"] is not True else ("ln_ih", "ln_hh", "ln_c")
        for name in names:
            if name != "ln_c" or cell == "lstm":
                kw[name] = gain_bias(H if name == "ln_c" else G * H)
    if "rmask" in opt:
        keep = 1 - opt["rmask"]
        kw["recurrent_mask"] = ((rng.uniform(size=(B, P)) < keep) / keep).astype(np.float32)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--B", type=int, default=8)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args(argv)
    rnnkit.set_num_threads(a.threads)
    print(
        f"rnnkit {rnnkit.__version__}, {rnnkit.get_simd_target()}, {a.threads} thread(s), float32, "
        f"T={a.T} B={a.B} I=H={a.H}; median of {a.repeat} interleaved runs"
    )
    print(
        f"{'cell':5} {'option':30} {'fwd ms':>8} {'x plain':>8} {'fwd+bwd ms':>11} {'x plain':>8}"
    )
    rng = np.random.default_rng(0)
    for cell, opts in configs(a.T, a.B, a.H).items():
        probs = [make(cell, o, a.T, a.B, a.H, rng) for _, o in opts]
        fwd = getattr(rnnkit, f"{cell}_forward")
        bwd = getattr(rnnkit, f"{cell}_backward")
        tf = [[] for _ in opts]
        tb = [[] for _ in opts]
        for _ in range(a.repeat):
            for k, (args, kw, dy) in enumerate(probs):
                t0 = time.perf_counter()
                out = fwd(*args, **kw)
                t1 = time.perf_counter()
                bwd(out.cache, dy=dy)
                t2 = time.perf_counter()
                tf[k].append(t1 - t0)
                tb[k].append(t2 - t0)
        f0, b0 = statistics.median(tf[0]), statistics.median(tb[0])
        for k, (name, _) in enumerate(opts):
            f, b = statistics.median(tf[k]), statistics.median(tb[k])
            print(f"{cell:5} {name:30} {f * 1e3:8.2f} {f / f0:8.2f} {b * 1e3:11.2f} {b / b0:8.2f}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
