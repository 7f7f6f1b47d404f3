"""rnnkit.reference: the pure-NumPy specification of every rnnkit function.

Same names, signatures and results as the native functions in `rnnkit`; written to be read:
a loop over time, vectorised over the batch, one comment per equation.
"""

from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .mgu import mgu_backward, mgu_forward
from .rnn import rnn_backward, rnn_forward

__all__ = [
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "mgu_forward",
    "mgu_backward",
]
