"""Char-LM training throughput of `rnnkit train` in 1 process and under torchrun in N,
with the same global --batch, side by side in one run.

    python bench/charlm_distributed.py [--procs 2] [--batch 32] [--hidden 256] [--steps 40]
                                       [--cell gru] [--repeat 3] [--data PATH]

Each run is `rnnkit train --steps S --time 0` (evaluation only at the end; its time is not in
the figure); the chars/s figure is the one `rnnkit train` prints on its "done:" line
(training characters of the whole batch per second of training). The runs alternate (1, N,
1, N, ...) and the table gives the medians. One thread per process (N processes on N cores);
the 1-process run gets 1 thread and, for comparison, N threads.

What a 2-core machine can show: whether splitting the batch over 2 processes pays against 1
process with 1 thread and with 2 threads, with the all-reduce's cost included; it cannot
show scaling beyond 2, nor the cost of a real network between machines (loopback only).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def train(procs, threads, args, out):
    cmd = [sys.executable]
    if procs > 1:
        cmd += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    cmd += [
        "-m",
        "rnnkit",
        "train",
        "--steps",
        str(args.steps),
        "--time",
        "0",
        "--batch",
        str(args.batch),
        "--hidden",
        str(args.hidden),
        "--cell",
        args.cell,
        "--sample-length",
        "0",
        "--threads",
        str(threads),
        "--out",
        out,
        "--max-chars",
        "2000000",
    ]
    if args.data:
        cmd += ["--data", args.data]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), GLOO_SOCKET_IFNAME="lo")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    m = re.search(r"s training: ([\d.]+)([kM]) chars/s", p.stdout)
    return float(m.group(1)) * (1e3 if m.group(2) == "k" else 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--cell", default="gru")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    N = args.procs
    setups = [
        ("1 process, 1 thread", 1, 1),
        (f"1 process, {N} threads", 1, N),
        (f"{N} processes, 1 thread each", N, 1),
    ]
    cps = {name: [] for name, _, _ in setups}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name, procs, threads in setups:
                cps[name].append(train(procs, threads, args, os.path.join(tmp, "ck.npz")))
    print(
        f"rnnkit train {args.cell.upper()} 1x{args.hidden}, --batch {args.batch}, "
        f"{args.steps} steps, median of {args.repeat} (alternating runs)"
    )
    base = statistics.median(cps[setups[0][0]])
    for name, _, _ in setups:
        med = statistics.median(cps[name])
        print(f"  {name:28} {med / 1e3:8.1f}k chars/s  {med / base:5.2f}x")


if __name__ == "__main__":
    main()
