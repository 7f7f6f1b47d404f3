"""Char-LM training throughput (characters per second), side by side in one run:
rnnkit native vs the same model on ``backend="reference"`` (NumPy) vs an equivalent PyTorch
model (nn.Embedding + nn.LSTM + nn.Linear, cross-entropy, Adam, clip_grad_norm_).

    python bench/charlm_throughput.py [--hidden 256] [--layers 1] [--cell lstm] [--T 64]
                                      [--B 32] [--repeat 5] [--threads N]

One training step = forward over a T x B window of character ids, softmax cross-entropy,
backward, gradient-norm clipping, Adam step: exactly what ``rnnkit train`` does per window.
The three run interleaved (step of each, then the next round), so they see the same machine
load; the table gives each one's median step time and chars/s (T*B / time) and the ratios.
All three start from the same weights (copied from the rnnkit model). Threads: rnnkit and
torch get the same count; NumPy's BLAS runs on one thread next to the native backend (as in
``rnnkit train``) and on 1 and on the same count as rnnkit for the reference backend
(which is all BLAS); threadpoolctl is needed for that control.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import numpy as np
from _checkout import prefer_checkout  # bench/ is on sys.path when this runs as a script

prefer_checkout()
import rnnkit  # noqa: E402
from rnnkit.charlm.data import Vocab  # noqa: E402
from rnnkit.charlm.model import CharLM  # noqa: E402


def rnnkit_step(model, opt, ids, clip):
    logits, _, tape = model.forward(ids[:-1])
    loss, dl = rnnkit.softmax_cross_entropy(logits, ids[1:])
    model.backward(dl, None, tape)
    rnnkit.optim.clip_grad_norm(model.grads, clip)
    opt.step()
    model.zero_grad()
    return loss


def torch_model(model, cell):
    import torch
    from torch import nn

    V, E, H, L = (
        len(model.vocab),
        model.cfg["embed_size"],
        model.hidden_size,
        model.cfg["num_layers"],
    )

    class TorchLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, E)
            self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](E, H, L)
            self.head = nn.Linear(H, V)

        def forward(self, ids):
            y, _ = self.rnn(self.embed(ids))
            return self.head(y)

    tm = TorchLM()
    # CharLM's names (embed.weight, rnn.weight_ih_l0, head.bias ...) are torch's here.
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return tm


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument(
        "--vocab", type=int, default=113, help="vocabulary size (the stdlib's, min-count 5)"
    )
    p.add_argument("--T", type=int, default=64)
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    a = p.parse_args(argv)
    if a.threads:
        rnnkit.set_num_threads(a.threads)
    threads = rnnkit.get_num_threads()

    vocab = Vocab([chr(0x21 + i) for i in range(a.vocab - 1)])
    kw = dict(cell=a.cell, hidden_size=a.hidden, num_layers=a.layers, embed_size=a.embed, seed=0)
    ids = np.random.default_rng(0).integers(0, len(vocab), (a.T + 1, a.B))
    runners = {}

    nat = CharLM(vocab, backend="native", **kw)
    nat_opt = rnnkit.optim.Adam(nat, lr=2e-3)
    runners["rnnkit native"] = lambda: rnnkit_step(nat, nat_opt, ids, 5.0)
    blas_threads = {"rnnkit native": 1}
    if not a.no_reference:
        for n in sorted({1, threads}):
            ref = CharLM(vocab, backend="reference", **kw)
            ref.load_state_dict(nat.state_dict())
            ref_opt = rnnkit.optim.Adam(ref, lr=2e-3)
            name = f"reference, BLAS {n} thread{'s' if n > 1 else ''}"
            runners[name] = lambda ref=ref, ref_opt=ref_opt: rnnkit_step(ref, ref_opt, ids, 5.0)
            blas_threads[name] = n
    torch_version = None
    if not a.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            torch_version = torch.__version__
            torch.set_num_threads(threads)
            tm = torch_model(nat, a.cell)
            t_opt = torch.optim.Adam(tm.parameters(), lr=2e-3)
            t_ids = torch.from_numpy(ids)
            lossf = torch.nn.CrossEntropyLoss()

            def torch_step():
                logits = tm(t_ids[:-1])
                loss = lossf(logits.reshape(-1, logits.shape[-1]), t_ids[1:].reshape(-1))
                t_opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(tm.parameters(), 5.0)
                t_opt.step()
                return loss.item()

            runners[f"PyTorch {torch_version}"] = torch_step

    def blas_for(name):
        # Native: BLAS on one thread (what rnnkit train does); the reference (all BLAS) on
        # 1 and on `threads` threads: on a busy machine OpenBLAS's threads can stall badly
        # (a GRU reference step went from 54 ms to 3 s here with 2 threads under load).
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return contextlib.nullcontext()
        n = blas_threads.get(name)
        return contextlib.nullcontext() if n is None else threadpool_limits(n, user_api="blas")

    first = {}
    for name, fn in runners.items():  # warm-up, and the same first loss for all
        with blas_for(name):
            first[name] = fn()
    times = {name: [] for name in runners}
    for _ in range(a.repeat):
        for name, fn in runners.items():
            with blas_for(name):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)

    chars = a.T * a.B
    print(
        f"char-LM training step: {a.cell.upper()} {a.layers}x{a.hidden}, embedding {a.embed}, "
        f"V={a.vocab}, T={a.T} B={a.B} ({chars} chars), Adam + clip; rnnkit "
        f"{rnnkit.__version__} SIMD {rnnkit.get_simd_target()}, {threads} thread(s); "
        f"median of {a.repeat}, interleaved"
    )
    print("  first-step loss: " + ", ".join(f"{n} {v:.4f}" for n, v in first.items()))
    med = {n: statistics.median(v) for n, v in times.items()}
    base = med["rnnkit native"]
    print(f"  {'':28} {'ms/step':>9} {'chars/s':>10} {'time vs native':>15}")
    for name, t in med.items():
        ratio = "1.0x" if name == "rnnkit native" else f"{t / base:.1f}x"
        print(f"  {name:28} {t * 1e3:9.1f} {chars / t:10,.0f} {ratio:>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
