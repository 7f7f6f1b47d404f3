"""The "hello" example of the lecture (Karpathy, CS231n lecture 10; "The Unreasonable
Effectiveness of Recurrent Neural Networks"): vocabulary h, e, l, o, one-hot input, a
vanilla RNN with 3 hidden units, trained on "hell" -> "ello". After training, the output
after each input character puts the most weight on the next character of "hello"; the two
``l`` inputs get different answers (``l`` then ``o``) because the hidden state remembers
how many ``l`` were read.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..losses import softmax
from .data import Vocab
from .model import CharLM

__all__ = ["train_hello", "hello_demo"]


def train_hello(*, hidden_size: int = 3, steps: int = 300, lr: float = 0.05, seed: int = 0):
    """Trains the lecture's RNN on "hello"; returns ``(model, losses)``."""
    import rnnkit
    from rnnkit import optim

    vocab = Vocab("helo")
    model = CharLM(vocab, cell="rnn", hidden_size=hidden_size, embed_size=0, seed=seed)
    ids = vocab.encode("hello")
    x, y = ids[:-1, None], ids[1:, None]  # [4, 1]: h e l l -> e l l o
    opt = optim.Adam(model, lr=lr)
    losses = []
    for _ in range(steps):
        logits, _, tape = model.forward(x)
        loss, dlogits = rnnkit.softmax_cross_entropy(logits, y)
        model.backward(dlogits, None, tape)
        opt.step()
        model.zero_grad()
        losses.append(loss)
    return model, losses


def hello_demo(seed: int = 0, out=None) -> int:
    out = out or sys.stdout
    t0 = time.perf_counter()
    model, losses = train_hello(seed=seed)
    dt = time.perf_counter() - t0
    vocab = model.vocab
    print(
        f"the lecture example: an RNN with {model.hidden_size} hidden units, one-hot input "
        f'over "h e l o", trained on "hell" -> "ello"',
        file=out,
    )
    print(
        f"  {len(losses)} Adam steps in {dt:.2f} s; loss {losses[0]:.3f} -> {losses[-1]:.4f}",
        file=out,
    )
    model.eval()
    logits, _ = model.logits(vocab.encode("hell"))
    letters = "helo"
    cols = [vocab.index[c] for c in letters]
    print(
        "  input  target  output scores " + "  ".join(f"{c:>5}" for c in letters) + "   prediction",
        file=out,
    )
    ok = True
    for t, (cin, ctarget) in enumerate(zip("hell", "ello")):
        row = logits[t]
        pred = vocab.chars[int(np.argmax(row))]
        ok &= pred == ctarget
        p = softmax(row)
        print(
            f"    {cin}      {ctarget}     "
            + " " * 14
            + "  ".join(f"{row[c]:5.2f}" for c in cols)
            + f"   {cin} -> {pred} (p={p[vocab.index[pred]]:.2f})",
            file=out,
        )
    from .sample import generate

    text = "h" + "".join(generate(model, 4, prime="h", argmax=True))
    print(f'  argmax sampling from "h": {text!r}', file=out)
    return 0 if ok and text == "hello" else 1
