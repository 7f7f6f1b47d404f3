"""rnnkit: fast, trustworthy recurrent networks (RNN, LSTM, GRU, MGU) on the CPU.

``rnnkit.X`` runs C++ kernels; ``rnnkit.reference.X`` is the same function in plain NumPy,
with the same signature and results. Swapping one import is all it takes to go fast.
"""

from . import convert, optim, reference
from ._runtime import (
    _apply_environment,
    get_num_threads,
    get_simd_target,
    info,
    memory_pool,
    set_memory_pool_limit,
    set_num_threads,
    set_simd_target,
    simd_targets,
)
from ._types import (
    GRUCache,
    GRUGrads,
    GRUOutput,
    LSTMCache,
    LSTMGrads,
    LSTMOutput,
    MGUCache,
    MGUGrads,
    MGUOutput,
    RNNCache,
    RNNGrads,
    RNNOutput,
)
from ._version import __version__
from .layers import GRU, LSTM, RNN, load
from .linear import Embedding, Linear
from .losses import softmax_cross_entropy
from .ops import (
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    mgu_backward,
    mgu_forward,
    rnn_backward,
    rnn_forward,
)
from .tbptt import TBPTT, Window, tbptt

_apply_environment()
del _apply_environment

__all__ = [
    "__version__",
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "RNNOutput",
    "RNNGrads",
    "RNNCache",
    "LSTMOutput",
    "LSTMGrads",
    "LSTMCache",
    "GRUOutput",
    "GRUGrads",
    "GRUCache",
    "mgu_forward",
    "mgu_backward",
    "MGUOutput",
    "MGUGrads",
    "MGUCache",
    "set_num_threads",
    "get_num_threads",
    "simd_targets",
    "get_simd_target",
    "set_simd_target",
    "info",
    "memory_pool",
    "set_memory_pool_limit",
    "reference",
    "tbptt",
    "TBPTT",
    "Window",
    "RNN",
    "LSTM",
    "GRU",
    "load",
    "convert",
    "Linear",
    "Embedding",
    "softmax_cross_entropy",
    "optim",
]
