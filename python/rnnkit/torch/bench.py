"""Training-step time of ``rnnkit.torch.X`` against ``torch.nn.X`` inside a small PyTorch model.

    rnnkit bench --torch-modules [--cells lstm gru rnn] [--batch 1 8 64] [--hidden 64 256]
                                 [--T 50] [--repeat 7] [--threads 1] [--dtype float32]
    python bench/torch_modules.py ...   (the same)

The model is ``X(H, H) -> Linear(H, H)`` with a mean-squared-error loss; one step is
``zero_grad``, forward, ``backward`` through autograd and an SGD step, on ``x[T, B, H]``.
For each shape the two modules (the same weights) run interleaved, one step each per round,
so they see the same machine load; the table gives their median step times, the ratio
``torch.nn / rnnkit.torch`` (above 1: rnnkit is faster) and, as a check after the timing,
the relative difference of the two models' losses at the last step (the same weights
trained alike: float rounding). Only ratios from one run mean
anything on a shared machine. Threads: torch and rnnkit get the same count.
"""

import argparse
import statistics
import time

import torch

import rnnkit
from rnnkit.torch import modules

__all__ = ["run", "format_table", "add_arguments", "main"]

_CLASSES = {
    "lstm": (modules.LSTM, torch.nn.LSTM),
    "gru": (modules.GRU, torch.nn.GRU),
    "rnn": (modules.RNN, torch.nn.RNN),
}


class _Model(torch.nn.Module):
    def __init__(self, cls, H, dtype):
        super().__init__()
        self.rnn = cls(H, H, dtype=dtype)
        self.head = torch.nn.Linear(H, H, dtype=dtype)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y)


def _step(model, opt, x, target):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), target)
    loss.backward()
    opt.step()
    return loss.detach()


def _pair(cell, H, dtype):
    ours, theirs = _CLASSES[cell]
    torch.manual_seed(0)
    a = _Model(ours, H, dtype)
    b = _Model(theirs, H, dtype)
    b.load_state_dict(a.state_dict())
    return a, b


def run(
    cells=("lstm", "gru", "rnn"),
    batches=(1, 8, 64),
    hiddens=(64, 256),
    T=50,
    repeat=7,
    threads=1,
    dtype="float32",
    progress=True,
):
    """One row per (cell, H, B): median step seconds of both modules and their ratio."""
    torch.set_num_threads(threads)
    rnnkit.set_num_threads(threads)
    dt = getattr(torch, dtype)
    rows = []
    for cell in cells:
        for H in hiddens:
            for B in batches:
                a, b = _pair(cell, H, dt)
                g = torch.Generator().manual_seed(1)
                x = torch.randn(T, B, H, generator=g, dtype=dt)
                target = torch.randn(T, B, H, generator=g, dtype=dt)
                runs = [
                    (a, torch.optim.SGD(a.parameters(), lr=1e-3), []),
                    (b, torch.optim.SGD(b.parameters(), lr=1e-3), []),
                ]
                la = lb = None
                for i in range(repeat + 1):  # the first round warms up, not counted
                    for model, opt, times in runs:
                        t0 = time.perf_counter()
                        loss = _step(model, opt, x, target)
                        if i:
                            times.append(time.perf_counter() - t0)
                        if model is a:
                            la = float(loss)
                        else:
                            lb = float(loss)
                ta, tb = (statistics.median(r[2]) for r in runs)
                rows.append(
                    dict(
                        cell=cell,
                        T=T,
                        B=B,
                        H=H,
                        rnnkit_s=ta,
                        torch_s=tb,
                        ratio=tb / ta,
                        loss_gap=abs(la - lb) / max(abs(lb), 1e-30),
                    )
                )
                if progress:
                    print(_format_row(rows[-1]), flush=True)
    return rows


def _format_row(r):
    return (
        f"{r['cell']:5} {r['H']:4d} {r['B']:4d} {r['rnnkit_s'] * 1e3:11.2f} "
        f"{r['torch_s'] * 1e3:11.2f} {r['ratio']:7.2f}x {r['loss_gap']:10.1e}"
    )


def format_table(rows, header=True):
    lines = []
    if header:
        lines.append(
            f"{'cell':5} {'H':>4} {'B':>4} {'rnnkit ms':>11} {'torch.nn ms':>11} "
            f"{'ratio':>8} {'loss diff':>10}"
        )
    lines += [_format_row(r) for r in rows]
    return "\n".join(lines)


def add_arguments(p):
    p.add_argument(
        "--cells", nargs="+", default=["lstm", "gru", "rnn"], choices=["lstm", "gru", "rnn"]
    )
    p.add_argument("--batch", type=int, nargs="+", help="batch sizes (default 1 8 64)")
    p.add_argument("--hidden", type=int, nargs="+", help="hidden sizes, I = H (default 64 256)")
    p.add_argument("--T", type=int, help="sequence length (default 50)")
    p.add_argument("--repeat", type=int, help="timed steps per module and shape (default 7)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")


def main(args) -> int:
    """Prints the table for parsed arguments: those of ``add_arguments`` or of ``rnnkit
    bench`` (whose ``--cells --batch --hidden --T --repeat --threads --dtype`` mean the same;
    None there means this module's default)."""
    T, repeat = args.T or 50, args.repeat or 7
    print(
        f"rnnkit.torch vs torch.nn training step (forward + backward + SGD), T={T}, "
        f"{args.dtype}, {args.threads} thread(s), torch {torch.__version__}, rnnkit SIMD "
        f"{rnnkit.get_simd_target()}; median of {repeat}, interleaved; ratio = "
        f"torch.nn / rnnkit.torch"
    )
    print(format_table([]))
    run(
        cells=args.cells,
        batches=args.batch or (1, 8, 64),
        hiddens=args.hidden or (64, 256),
        T=T,
        repeat=repeat,
        threads=args.threads,
        dtype=args.dtype,
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    raise SystemExit(main(parser.parse_args()))
