"""The cells of rnnkit as data: each fact about a cell written once, read by the native ops,
the validation, the layers, the converters and the benchmark.

``CELLS[name]`` is a `CellSpec`. Adding a cell is a row here, its types in `_types`, its
reference in `rnnkit.reference` and its kernels in ``cpp/cells/`` (the C++ twin of this table
is ``cpp/cells/kinds.h``).
"""

from __future__ import annotations

from typing import NamedTuple

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


class CellSpec(NamedTuple):
    name: str  # "rnn", "lstm", ...: the prefix of <name>_forward / <name>_backward
    title: str  # the name people write: "LSTM" (also the torch.nn class)
    gates: int  # G: w_ih has G*H rows
    gate_names: tuple  # the blocks of G*H rows, in order
    states: tuple  # the recurrent state: ("h",) or ("h", "c"); its arity is len(states)
    native: str  # the rnnkit._core.Cell value; {act} is the RNN's nonlinearity, upper case
    output: type  # <Title>Output(y, h_n, [c_n,] cache)
    grads: type  # <Title>Grads(dx, dh0, [dc0,] dw_ih, ...)
    cache: type  # <Title>Cache: its fields name what the forward keeps
    cell_state: bool  # carries c beside h (c0, c_n, dc_n, dc0): len(states) > 1
    hn_cache: bool  # its cache keeps hn[T, B, H]


def _cell(name, title, gate_names, states, native, output, grads, cache):
    return CellSpec(
        name,
        title,
        len(gate_names),
        gate_names,
        states,
        native,
        output,
        grads,
        cache,
        len(states) > 1,
        "hn" in cache._fields,
    )


CELLS = {
    "rnn": _cell("rnn", "RNN", ("h",), ("h",), "RNN_{act}", RNNOutput, RNNGrads, RNNCache),
    "lstm": _cell(
        "lstm", "LSTM", ("i", "f", "g", "o"), ("h", "c"), "LSTM", LSTMOutput, LSTMGrads, LSTMCache
    ),
    "gru": _cell("gru", "GRU", ("r", "z", "n"), ("h",), "GRU", GRUOutput, GRUGrads, GRUCache),
    "mgu": _cell("mgu", "MGU", ("f", "n"), ("h",), "MGU", MGUOutput, MGUGrads, MGUCache),
}

GATES = {name: spec.gates for name, spec in CELLS.items()}
