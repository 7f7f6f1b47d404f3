"""rnnkit inside PyTorch: ``rnnkit.torch.RNN``, ``LSTM``, ``GRU``, drop-ins for ``torch.nn``'s.

Importing this module imports torch (``import rnnkit`` alone never does) and registers
rnnkit's kernels as the custom operators ``torch.ops.rnnkit.*`` (see ``_ops``). The modules
(``modules``) take ``torch.nn``'s constructor arguments, parameters, ``state_dict`` keys and
call signature, run forward and backward on rnnkit's kernels, trace with ``torch.compile``
and train under ``DistributedDataParallel``.
"""

from . import _ops
from ._ops import gru, lstm, rnn
from .modules import GRU, LSTM, RNN

__all__ = ["RNN", "LSTM", "GRU", "rnn", "lstm", "gru", "_ops"]
