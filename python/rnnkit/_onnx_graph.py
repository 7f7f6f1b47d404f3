"""Finding an ONNX model's recurrent nodes and the constant arrays that feed them.

Models exported by PyTorch rarely hand W, R and B to an LSTM as plain initializers: they come
out of small constant subgraphs (``Constant -> Unsqueeze``, ``Identity``, ``Cast``, ...), and
the recurrent node may sit inside the branches of ``If`` nodes (or a ``Loop``/``Scan`` body),
where the names of every enclosing graph are visible. This module walks the graph and its
subgraphs, folds the nodes whose inputs are all constant (a small set of shape and type ops,
never arithmetic), and lists every RNN/GRU/LSTM node with the arrays it can see.

``onnx`` is imported by the caller (``rnnkit.convert.from_onnx``) and passed in.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

RECURRENT_OPS = ("RNN", "GRU", "LSTM")


class Found(NamedTuple):
    """One recurrent node: where it is (``path``, e.g. ``"If_0.then_branch/LSTM_2"``), the
    node, and the constants visible to it (``arrays.get(name)``: an array or None)."""

    path: str
    node: object
    arrays: "Scope"


class Scope:
    """The constants one graph sees: its own and its enclosing graphs' initializers (read only
    when asked for, so an unused external-data weight is never opened) and folded outputs."""

    def __init__(self, read_initializer, outer=None):
        self._read = read_initializer
        self._values = dict(outer._values) if outer is not None else {}

    def add_initializer(self, init):
        self._values[init.name] = init

    def set(self, name, value):
        self._values[name] = value

    def __contains__(self, name):
        return name in self._values

    def get(self, name):
        v = self._values.get(name)
        if v is not None and not isinstance(v, np.ndarray):
            v = self._values[name] = self._read(v)
        return v


def recurrent_nodes(onnx, graph, read_initializer):
    """Every RNN/GRU/LSTM node of ``graph`` and of its subgraphs, in graph order.
    ``read_initializer(tensor_proto) -> array`` reads an initializer when it is needed."""
    found = []
    _walk(onnx, graph, Scope(read_initializer), "", found)
    return found


def _label(node, i):
    return node.name or f"{node.op_type}_{i}"


def _walk(onnx, graph, outer, prefix, found):
    scope = Scope(outer._read, outer)
    for init in graph.initializer:
        scope.add_initializer(init)
    for i, node in enumerate(graph.node):
        here = prefix + _label(node, i)
        if node.op_type in RECURRENT_OPS:
            found.append(Found(here, node, Scope(scope._read, scope)))
        for attr in node.attribute:
            subs = []
            if attr.type == onnx.AttributeProto.GRAPH:
                subs = [(attr.name, attr.g)]
            elif attr.type == onnx.AttributeProto.GRAPHS:
                subs = [(f"{attr.name}[{k}]", g) for k, g in enumerate(attr.graphs)]
            for name, sub in subs:
                _walk(onnx, sub, scope, f"{here}.{name}/", found)
        folded = _fold(onnx, node, scope)
        if folded is not None:
            for name, value in zip(node.output, folded):
                if name:
                    scope.set(name, value)


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


_FOLDABLE = ("Identity", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Transpose", "Concat")


def _fold(onnx, node, scope):
    """The outputs of ``node`` when it is a foldable op with constant inputs, else None."""
    op = node.op_type
    if op == "Constant":
        return [_constant(onnx, node)]
    if op not in _FOLDABLE or any(name and name not in scope for name in node.input):
        return None
    ins = [scope.get(name) if name else None for name in node.input]
    try:
        if op == "Identity":
            return [ins[0]]
        if op == "Cast":
            from onnx import helper

            return [ins[0].astype(helper.tensor_dtype_to_np_dtype(_attr(node, "to")))]
        if op in ("Unsqueeze", "Squeeze"):
            axes = _attr(node, "axes")
            if axes is None and len(ins) > 1 and ins[1] is not None:
                axes = [int(a) for a in np.ravel(ins[1])]
            if op == "Squeeze":
                return [np.squeeze(ins[0], axis=None if axes is None else tuple(axes))]
            out = ins[0]
            ndim = out.ndim + len(axes)
            for a in sorted(a % ndim for a in axes):
                out = np.expand_dims(out, a)
            return [out]
        if op == "Reshape":
            shape = [int(s) for s in np.ravel(ins[1])]
            shape = [ins[0].shape[k] if s == 0 else s for k, s in enumerate(shape)]
            return [np.reshape(ins[0], shape)]
        if op == "Transpose":
            perm = _attr(node, "perm")
            return [np.transpose(ins[0], None if perm is None else list(perm))]
        if op == "Concat":
            return [np.concatenate(ins, axis=int(_attr(node, "axis", 0)))]
    except (ValueError, IndexError, TypeError) as e:
        raise ValueError(
            f"node_or_model: cannot fold the constant {op} node "
            f"{node.name or node.output[0]!r}: {e}"
        ) from None
    return None


def _constant(onnx, node):
    from onnx import numpy_helper

    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), np.float32)
        if a.name == "value_int":
            return np.array(a.i, np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), np.int64)
    raise ValueError(
        f"node_or_model: Constant node {node.name or node.output[0]!r} has no "
        f"value rnnkit can read (value, value_float(s), value_int(s))"
    )
