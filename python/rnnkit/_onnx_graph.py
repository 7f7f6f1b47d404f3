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
    node, and every constant array visible to it (outer graphs first, its own last)."""

    path: str
    node: object
    arrays: dict


def recurrent_nodes(onnx, graph, base_dir=None):
    """Every RNN/GRU/LSTM node of ``graph`` and of its subgraphs, in graph order."""
    found = []
    _walk(onnx, graph, {}, "", found, base_dir)
    return found


def _label(node, i):
    return node.name or f"{node.op_type}_{i}"


def _walk(onnx, graph, outer, prefix, found, base_dir):
    arrays = dict(outer)
    for init in graph.initializer:
        arrays[init.name] = _tensor(onnx, init, base_dir)
    for i, node in enumerate(graph.node):
        here = prefix + _label(node, i)
        if node.op_type in RECURRENT_OPS:
            found.append(Found(here, node, dict(arrays)))
        for attr in node.attribute:
            subs = []
            if attr.type == onnx.AttributeProto.GRAPH:
                subs = [(attr.name, attr.g)]
            elif attr.type == onnx.AttributeProto.GRAPHS:
                subs = [(f"{attr.name}[{k}]", g) for k, g in enumerate(attr.graphs)]
            for name, sub in subs:
                _walk(onnx, sub, arrays, f"{here}.{name}/", found, base_dir)
        folded = _fold(onnx, node, arrays)
        if folded is not None:
            for name, value in zip(node.output, folded):
                if name:
                    arrays[name] = value


def _tensor(onnx, tensor, base_dir):
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor, base_dir or "")


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _fold(onnx, node, arrays):
    """The outputs of ``node`` when it is a foldable op with constant inputs, else None."""
    op = node.op_type
    if op == "Constant":
        return [_constant(onnx, node)]
    if any(name and name not in arrays for name in node.input):
        return None
    ins = [arrays[name] if name else None for name in node.input]
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
        raise ValueError(f"node_or_model: cannot fold the constant {op} node "
                         f"{node.name or node.output[0]!r}: {e}") from None
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
    raise ValueError(f"node_or_model: Constant node {node.name or node.output[0]!r} has no "
                     f"value rnnkit can read (value, value_float(s), value_int(s))")
