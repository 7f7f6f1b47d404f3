"""The cells of rnnkit as data: each fact about a cell written once, read by the native ops,
the validation, the layers, the converters and the benchmark.

``CELLS[name]`` is a `CellSpec`. Adding a cell is a row here, its types in `_types`, its
reference in `rnnkit.reference` and its kernels in ``cpp/cells/`` (the C++ twin of this table
is ``cpp/cells/kinds.h``).
"""

from __future__ import annotations

from typing import NamedTuple

from ._types import (
    GRUCache, GRUGrads, GRUOutput, LSTMCache, LSTMGrads, LSTMOutput, RNNCache, RNNGrads, RNNOutput,
)


class CellSpec(NamedTuple):
    name: str  # "rnn", "lstm", ...: the prefix of <name>_forward / <name>_backward
    gates: int  # G: w_ih has G*H rows
    gate_names: tuple  # the blocks of G*H rows, in order
    states: tuple  # the recurrent state: ("h",) or ("h", "c"); its arity is len(states)
    native: str  # the rnnkit._core.Cell value; {act} is the RNN's nonlinearity, upper case
    output: type  # <Name>Output(y, h_n, [c_n,] cache)
    grads: type  # <Name>Grads(dx, dh0, [dc0,] dw_ih, ...)
    cache: type  # <Name>Cache: its fields name what the forward keeps
    title: str  # the name people write: "LSTM"

    @property
    def cell_state(self):
        """True for a cell with a cell state c beside h (c0, c_n, dc_n, dc0)."""
        return len(self.states) > 1


CELLS = {
    "rnn": CellSpec("rnn", 1, ("h",), ("h",), "RNN_{act}", RNNOutput, RNNGrads, RNNCache, "RNN"),
    "lstm": CellSpec("lstm", 4, ("i", "f", "g", "o"), ("h", "c"), "LSTM", LSTMOutput, LSTMGrads,
                     LSTMCache, "LSTM"),
    "gru": CellSpec("gru", 3, ("r", "z", "n"), ("h",), "GRU", GRUOutput, GRUGrads, GRUCache,
                    "GRU"),
}

GATES = {name: spec.gates for name, spec in CELLS.items()}
