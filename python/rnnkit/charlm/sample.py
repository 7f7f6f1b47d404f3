"""Sampling text from a character-level language model.

``next_id(logits, rng, ...)`` picks one character from logits: softmax at a temperature,
optionally restricted to the ``top_k`` most likely characters, or the argmax. ``generate``
feeds a prime text through the model, then samples one character at a time, carrying the
recurrent state, and yields each character as soon as it exists (for streaming output).
The same seed gives the same text. After the prime, each character is one step of a stream
of the recurrent layer (``layer.stream``: its weights packed once) and one head product.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from ..losses import softmax

__all__ = ["probabilities", "next_id", "generate"]


def probabilities(logits, temperature: float = 1.0, top_k: Optional[int] = None) -> np.ndarray:
    """Softmax of ``logits[V] / temperature`` in float64; with ``top_k`` every character
    outside the k most likely gets probability 0 (ties at the k-th value are kept)."""
    if temperature <= 0:
        raise ValueError(
            f"temperature: expected a value > 0 (use argmax for greedy), got {temperature}"
        )
    z = np.asarray(logits, dtype=np.float64).reshape(-1) / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k: expected an integer >= 1, got {top_k}")
        if top_k < len(z):
            kth = np.partition(z, len(z) - top_k)[len(z) - top_k]
            z = np.where(z >= kth, z, -np.inf)
    return softmax(z)


def next_id(
    logits,
    rng: np.random.Generator,
    *,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    argmax: bool = False,
) -> int:
    """One character id from ``logits[V]``: the argmax, or a draw from ``probabilities``."""
    if argmax:
        return int(np.argmax(logits))
    p = probabilities(logits, temperature, top_k)
    # Inverse-CDF draw from one uniform: reproducible for a seed, whatever V is.
    u = rng.random()
    return int(min(np.searchsorted(np.cumsum(p), u * p.sum(), side="right"), len(p) - 1))


def _stepper(model, state):
    """step(id) -> logits[V] after feeding one character, from ``state``: the model's layers
    one step at a time (its embedding row or one-hot row, a stream step, the head)."""
    stream = model.rnn.stream(1, state)
    head_w, head_b = model.head.weight.T, model.head.bias
    if model.embed is not None:
        table = model.embed.weight
    else:
        table = np.eye(len(model.vocab), dtype=model.dtype)
    y = np.empty((1, stream.output_size), model.dtype)

    def step(i):
        stream.step(table[i : i + 1], out=y)
        logits = y @ head_w
        if head_b is not None:
            logits += head_b
        return logits[0]

    return step


def generate(
    model,
    length: int,
    *,
    prime: str = "",
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    argmax: bool = False,
    seed: Optional[int] = None,
    state=None,
) -> Iterator[str]:
    """Yields ``length`` characters sampled from ``model`` (a ``CharLM``) after ``prime``.

    The prime is run through the model in one call; with an empty prime the first
    character is drawn from the model's prediction after a newline (the start of a line).
    The model is put in eval mode (no dropout) for the duration and restored afterwards.
    """
    vocab = model.vocab
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.eval()
    try:
        ids = vocab.encode(prime if prime else "\n")
        logits, state = model.logits(ids, state)
        last = logits[-1]
        if length <= 0:
            return
        step = _stepper(model, state)
        for _ in range(length):
            i = next_id(last, rng, temperature=temperature, top_k=top_k, argmax=argmax)
            yield vocab.chars[i]
            last = step(i)
    finally:
        if was_training:
            model.train()
