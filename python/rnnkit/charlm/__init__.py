"""The character-level language model application (``rnnkit train``, ``rnnkit sample``).

- ``data``: the corpus (default: the Python standard library's source, split by file),
  ``Vocab``, batching into streams for truncated BPTT, the unigram baseline.
- ``model``: ``CharLM`` (embedding or one-hot -> stacked RNN/LSTM/GRU -> Linear) with the
  layer protocol, ``activations(text)``, checkpoints (``save`` / ``CharLM.load``).
- ``train``: the training loop; ``sample``: temperature / top-k / argmax sampling;
  ``hello``: the lecture's "hello" example.
"""

from .data import Vocab, load_corpus, unigram_baseline
from .model import CharLM
from .sample import generate

__all__ = ["CharLM", "Vocab", "load_corpus", "unigram_baseline", "generate"]
