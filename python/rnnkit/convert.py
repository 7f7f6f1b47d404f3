"""Weight exchange with ONNX, PyTorch and Keras.

rnnkit uses PyTorch's layout and gate orders (LSTM i, f, g, o; GRU r, z, n; peepholes
p_i, p_f, p_o). ONNX stacks directions first and orders gates differently (LSTM i, o, f, c;
GRU z, r, h; peepholes i, o, f), and merges the two biases into one ``B = [Wb, Rb]``. The
conversions here only reorder and split/merge: they are exact.

    layer = rnnkit.convert.from_onnx(model)            # OnnxLayer(cell, hidden_size, ...)
    Y, Y_h, Y_c = rnnkit.convert.onnx_forward(layer, X) # ONNX shapes and semantics, on rnnkit
    model = rnnkit.convert.to_onnx("lstm", weights, direction="bidirectional", clip=3.0)

The `onnx` package is needed only for `to_onnx` and for reading protobufs in `from_onnx`.

Whole layers (``rnnkit.RNN`` / ``LSTM`` / ``GRU``, see ``rnnkit.layers``):

    layer = rnnkit.convert.from_torch(torch_module)    # configuration and weights
    module = rnnkit.convert.to_torch(layer)            # ValueError for peepholes, Cho GRUs
    module = rnnkit.convert.to_torch(layer, target="rnnkit.torch")  # every option kept

``from_torch`` also reads ``rnnkit.torch`` modules, with their extras (peepholes, the Cho GRU,
layer norm, zoneout, recurrent dropout); ``to_torch(layer, target="rnnkit.torch")`` writes
them. ONNX's RNN/GRU/LSTM operators and Keras' layers have no layer-norm parameters, zoneout
or per-sequence recurrent mask (Keras' ``recurrent_dropout`` is a training setting, not a
weight): ``from_onnx`` / ``from_keras`` never produce them and ``to_onnx`` takes no such
weights; a layer with these options converts its plain weights only.
    layer = rnnkit.convert.from_keras("gru", kernel, recurrent_kernel, bias, reset_after=True)

Keras stores transposed weights (``kernel[I, G*H]``) with gate orders LSTM i, f, c, o (as
PyTorch) and GRU z, r, h, and one bias (``[2, 3H]`` for a ``reset_after`` GRU). PyTorch needs
only ``torch``, Keras nothing: ``from_keras`` takes the arrays.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ._cells import CELLS
from ._module import to_numpy

# rnnkit gate block j comes from ONNX gate block ORDER[cell][j]
_TO_RNNKIT = {"rnn": [0], "gru": [1, 0, 2], "lstm": [0, 2, 3, 1]}
# ONNX gate block j comes from rnnkit gate block _TO_ONNX[cell][j]
_TO_ONNX = {"rnn": [0], "gru": [1, 0, 2], "lstm": [0, 3, 1, 2]}
_PEEP_TO_RNNKIT = [0, 2, 1]  # ONNX P = [i, o, f]; rnnkit w_peep rows = [i, f, o]
_PEEP_TO_ONNX = [0, 2, 1]
_OPS = {"RNN": "rnn", "GRU": "gru", "LSTM": "lstm"}
_GATES = {cell: CELLS[cell].gates for cell in _TO_RNNKIT}  # the cells ONNX and Keras have


class OnnxLayer(NamedTuple):
    """One ONNX RNN/GRU/LSTM node in rnnkit terms.

    ``weights`` has one dict per direction (forward first, then reverse), each with
    ``w_ih``, ``w_hh``, ``b_ih``, ``b_hh`` (None when the node has no B) and, for the LSTM,
    ``w_peep`` (None without P), in rnnkit's layout. ``options`` are the keyword arguments of
    ``rnnkit.<cell>_forward`` (nonlinearity, clip, input_forget, linear_before_reset).
    """

    cell: str
    hidden_size: int
    direction: str  # "forward", "reverse" or "bidirectional"
    layout: int  # 0: [T, B, .]; 1: batch-major [B, T, .]
    options: dict
    weights: tuple


def _blocks(a, order, H):
    """Reorders the gate blocks (of H rows) along axis 0."""
    return np.concatenate([a[j * H : (j + 1) * H] for j in order], axis=0)


def _attrs(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _decode(v):
    return v.decode() if isinstance(v, bytes) else v


def _initializer(init, base_dir):
    """An initializer as an array; external data is read relative to ``base_dir`` (the
    model's folder), with onnx's own checks of the location and the file's bounds."""
    from onnx import TensorProto, external_data_helper, numpy_helper

    if init.data_location == TensorProto.EXTERNAL and base_dir is None:
        raise ValueError(
            f"initializer {init.name!r}: its data is in an external file; pass "
            f"the model's path to from_onnx (or base_dir=its folder)"
        )
    try:
        if init.data_location == TensorProto.EXTERNAL:
            external_data_helper.load_external_data_for_tensor(init, base_dir)
        return numpy_helper.to_array(init)
    except Exception as e:  # onnx raises ValueError, OSError, TypeError...: one message
        raise ValueError(
            f"initializer {init.name!r}: unreadable ({type(e).__name__}: {e})"
        ) from None


def _flag_attr(at, name):
    """A 0/1 integer attribute (ONNX spells booleans so): anything else is an error."""
    v = at.get(name, 0)
    if isinstance(v, bool) or not isinstance(v, int) or v not in (0, 1):
        raise ValueError(f"{name}: expected 0 or 1, got {v!r}")
    return bool(v)


def _check_weight(what, a, shape):
    """An ONNX weight: a float32/float64 array of exactly ``shape``."""
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{what}: expected float32 or float64, got {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{what}: expected shape {shape}, got {a.shape}")
    return a


def from_onnx(
    node_or_model,
    weights: Optional[dict] = None,
    *,
    name: Optional[str] = None,
    base_dir: Optional[str] = None,
) -> OnnxLayer:
    """Reads one RNN/GRU/LSTM node.

    ``node_or_model``: the path of an ``.onnx`` file, an ``onnx.ModelProto``, or an
    ``onnx.NodeProto`` with ``weights`` mapping its input names to arrays. In a model, the
    recurrent node may sit inside the branches of ``If`` nodes (or ``Loop``/``Scan`` bodies),
    and W, R, B and P may be initializers (of its graph or an enclosing one) or come out of
    constant subgraphs (``Constant``, ``Identity``, ``Cast``, ``Unsqueeze``, ``Squeeze``,
    ``Reshape``, ``Transpose``, ``Concat``), which are folded; ``weights`` overrides any of
    them. A model with several recurrent nodes needs ``name``: the node's name or its path as
    listed in the error (e.g. ``"If_0.then_branch/LSTM_2"``). External-data initializers are
    read relative to the model file (``base_dir`` for a ModelProto loaded without its external
    data). Malformed weights and attributes are a ValueError naming them.
    """
    import os

    import onnx

    from . import _onnx_graph

    arrays = dict(weights or {})
    if isinstance(node_or_model, (str, os.PathLike)):
        path = os.fspath(node_or_model)
        try:
            node_or_model = onnx.load(path, load_external_data=False)
        except OSError:
            raise
        except Exception as e:  # protobuf's DecodeError
            raise ValueError(f"{path}: not an ONNX model ({type(e).__name__}: {e})") from None
        base_dir = os.path.dirname(os.path.abspath(path)) if base_dir is None else base_dir
    if isinstance(node_or_model, onnx.ModelProto):
        found = _onnx_graph.recurrent_nodes(
            onnx, node_or_model.graph, lambda init: _initializer(init, base_dir)
        )
        listed = ", ".join(f"{f.path!r} ({f.node.op_type})" for f in found)
        if name is not None:
            found = [f for f in found if name in (f.path, f.node.name)]
            if not found:
                raise ValueError(
                    f"name: no RNN, GRU or LSTM node called {name!r}; the model "
                    f"has {listed or 'none'}"
                )
        if len(found) != 1:
            raise ValueError(
                f"node_or_model: expected one RNN, GRU or LSTM node, found "
                f"{len(found)}" + (f": {listed}; choose one with name=" if found else "")
            )
        node, scope = found[0].node, found[0].arrays
        for key in node.input:  # only the node's own inputs are read (external data included)
            if key and key not in arrays:
                value = scope.get(key)
                if value is not None:
                    arrays[key] = value
    elif isinstance(node_or_model, onnx.NodeProto):
        node = node_or_model
    else:
        raise TypeError(
            f"node_or_model: expected an onnx ModelProto or NodeProto, "
            f"got {type(node_or_model).__name__}"
        )
    if node.op_type not in _OPS:
        raise ValueError(f"node_or_model: expected an RNN, GRU or LSTM node, got {node.op_type}")
    cell = _OPS[node.op_type]
    G = _GATES[cell]
    at = _attrs(node)
    names = list(node.input) + [""] * (8 - len(node.input))

    def get(i, what, required=False):
        name = names[i]
        if not name:
            if required:
                raise ValueError(f"{node.op_type} node: input {what} is missing")
            return None
        if name not in arrays:
            raise ValueError(f"weights: expected an array for {what} ({name!r}), none given")
        return np.asarray(arrays[name])

    W, R, B = get(1, "W", True), get(2, "R", True), get(3, "B")
    P = get(7, "P") if cell == "lstm" else None
    direction = _decode(at.get("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(
            f"direction: expected forward, reverse or bidirectional, got {direction!r}"
        )
    D = 2 if direction == "bidirectional" else 1
    if W.ndim != 3 or R.ndim != 3:
        raise ValueError(f"W, R: expected 3-D arrays [D, G*H, .], got shapes {W.shape}, {R.shape}")
    H = at.get("hidden_size", R.shape[-1])
    if isinstance(H, bool) or not isinstance(H, int) or H < 1:
        raise ValueError(f"hidden_size: expected an integer >= 1, got {H!r}")
    I = W.shape[2]
    if W.shape[0] != D:
        raise ValueError(f"W: {W.shape[0]} directions do not match direction={direction!r}")
    _check_weight("W", W, (D, G * H, I))
    _check_weight("R", R, (D, G * H, H))
    if B is not None:
        _check_weight("B", B, (D, 2 * G * H))
    if P is not None:
        _check_weight("P", P, (D, 3 * H))
    layout = at.get("layout", 0)
    if isinstance(layout, bool) or layout not in (0, 1):
        raise ValueError(f"layout: expected 0 or 1, got {layout!r}")

    options = {}
    acts = [_decode(a) for a in at.get("activations", [])]
    defaults = {"rnn": ["Tanh"], "gru": ["Sigmoid", "Tanh"], "lstm": ["Sigmoid", "Tanh", "Tanh"]}[
        cell
    ]
    per_dir = len(defaults)
    for d in range(D):
        mine = acts[d * per_dir : (d + 1) * per_dir] if acts else defaults
        if cell == "rnn" and mine in (["Tanh"], ["Relu"]):
            options["nonlinearity"] = mine[0].lower()
        elif mine != defaults:
            raise NotImplementedError(
                f"activations: rnnkit supports {defaults} for {node.op_type}"
                f"{' (or Relu)' if cell == 'rnn' else ''}, got {mine}"
            )
    if "activation_alpha" in at or "activation_beta" in at:
        raise NotImplementedError(
            "activation_alpha/activation_beta: no rnnkit activation uses them"
        )
    if "clip" in at:
        clip = at["clip"]
        if not isinstance(clip, float) or not clip > 0 or clip == float("inf"):
            raise ValueError(f"clip: expected a finite number > 0, got {clip!r}")
        options["clip"] = clip
    if cell == "lstm":
        options["input_forget"] = _flag_attr(at, "input_forget")
    if cell == "gru":
        options["linear_before_reset"] = _flag_attr(at, "linear_before_reset")

    order = _TO_RNNKIT[cell]
    per_direction = []
    for d in range(D):
        w = {
            "w_ih": _blocks(W[d], order, H),
            "w_hh": _blocks(R[d], order, H),
            "b_ih": None if B is None else _blocks(B[d, : G * H], order, H),
            "b_hh": None if B is None else _blocks(B[d, G * H :], order, H),
        }
        if cell == "lstm":
            w["w_peep"] = None if P is None else P[d].reshape(3, H)[_PEEP_TO_RNNKIT].copy()
        per_direction.append(w)
    return OnnxLayer(cell, H, direction, int(layout), options, tuple(per_direction))


def to_onnx(
    cell,
    weights,
    *,
    direction="forward",
    layout=0,
    nonlinearity="tanh",
    clip=None,
    input_forget=False,
    linear_before_reset=True,
    opset=14,
    with_sequence_lens=True,
):
    """A one-node ONNX model for rnnkit weights.

    ``weights``: one dict (w_ih, w_hh, b_ih, b_hh[, w_peep]) or, for ``"bidirectional"``, a
    pair (forward, reverse). Graph inputs: X, sequence_lens (if ``with_sequence_lens``),
    initial_h (and initial_c); outputs Y, Y_h (and Y_c). W, R, B, P are initializers.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if cell not in _GATES:
        raise ValueError(f"cell: expected 'rnn', 'gru' or 'lstm', got {cell!r}")
    dirs = list(weights) if isinstance(weights, (list, tuple)) else [weights]
    D = 2 if direction == "bidirectional" else 1
    if len(dirs) != D:
        raise ValueError(
            f"weights: expected {D} direction(s) for direction={direction!r}, got {len(dirs)}"
        )
    G = _GATES[cell]
    w_ih0 = np.asarray(dirs[0]["w_ih"])
    dtype = w_ih0.dtype
    H, I = w_ih0.shape[0] // G, w_ih0.shape[1]
    order = _TO_ONNX[cell]
    W = np.stack([_blocks(np.asarray(d["w_ih"]), order, H) for d in dirs])
    R = np.stack([_blocks(np.asarray(d["w_hh"]), order, H) for d in dirs])
    has_b = any(d.get("b_ih") is not None or d.get("b_hh") is not None for d in dirs)
    zeros = np.zeros(G * H, dtype)

    def bias(d, k):
        return zeros if d.get(k) is None else _blocks(np.asarray(d[k]), order, H)

    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")]
    inputs = ["X", "W", "R", ""]
    if has_b:
        B = np.stack([np.concatenate([bias(d, "b_ih"), bias(d, "b_hh")]) for d in dirs])
        inits.append(numpy_helper.from_array(B, "B"))
        inputs[3] = "B"
    inputs += ["sequence_lens" if with_sequence_lens else "", "initial_h"]
    if cell == "lstm":
        inputs.append("initial_c")
        if any(d.get("w_peep") is not None for d in dirs):
            P = np.stack(
                [
                    np.zeros(3 * H, dtype)
                    if d.get("w_peep") is None
                    else np.asarray(d["w_peep"])[_PEEP_TO_ONNX].reshape(-1)
                    for d in dirs
                ]
            )
            inits.append(numpy_helper.from_array(P, "P"))
            inputs.append("P")
    attrs = {"hidden_size": H, "direction": direction, "layout": layout}
    if clip is not None:
        attrs["clip"] = float(clip)
    if cell == "rnn":
        attrs["activations"] = [{"tanh": "Tanh", "relu": "Relu"}[nonlinearity]] * D
    if cell == "lstm" and input_forget:
        attrs["input_forget"] = 1
    if cell == "gru":
        attrs["linear_before_reset"] = int(bool(linear_before_reset))
    outputs = ["Y", "Y_h"] + (["Y_c"] if cell == "lstm" else [])
    node = helper.make_node(
        {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[cell], inputs, outputs, **attrs
    )
    et = helper.np_dtype_to_tensor_dtype(dtype)
    seq = ["T", "B"] if layout == 0 else ["B", "T"]
    state = [D, "B", H] if layout == 0 else ["B", D, H]
    g_inputs = [helper.make_tensor_value_info("X", et, seq + [I])]
    if with_sequence_lens:
        g_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]))
    g_inputs.append(helper.make_tensor_value_info("initial_h", et, state))
    if cell == "lstm":
        g_inputs.append(helper.make_tensor_value_info("initial_c", et, state))
    y_shape = ["T", D, "B", H] if layout == 0 else ["B", "T", D, H]
    g_outputs = [
        helper.make_tensor_value_info("Y", et, y_shape),
        helper.make_tensor_value_info("Y_h", et, state),
    ]
    if cell == "lstm":
        g_outputs.append(helper.make_tensor_value_info("Y_c", et, state))
    graph = helper.make_graph([node], f"rnnkit_{cell}", g_inputs, g_outputs, inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="rnnkit"
    )
    onnx.checker.check_model(model)
    return model


def onnx_forward(
    layer: OnnxLayer, X, sequence_lens=None, initial_h=None, initial_c=None, *, backend=None
):
    """Runs an ONNX-described layer on rnnkit with ONNX's shapes and meaning.

    Returns ``(Y, Y_h, Y_c)`` (Y_c None unless LSTM): with layout 0, ``Y[T, D, B, H]`` and
    ``Y_h[D, B, H]``; with layout 1, ``Y[B, T, D, H]`` and ``Y_h[B, D, H]``. ``backend`` is
    ``rnnkit`` (default) or ``rnnkit.reference``.
    """
    if backend is None:
        import rnnkit as backend
    X = np.asarray(X)
    bm = layer.layout == 1
    x = np.swapaxes(X, 0, 1) if bm else X

    def per_dir(s, d):
        if s is None:
            return None
        s = np.asarray(s)
        return s[:, d] if bm else s[d]

    lengths = None if sequence_lens is None else np.asarray(sequence_lens)
    fwd = getattr(backend, f"{layer.cell}_forward")
    ys, hs, cs = [], [], []
    for d, w in enumerate(layer.weights):
        reverse = layer.direction == "reverse" or d == 1
        args = [x, w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"], per_dir(initial_h, d)]
        kw = dict(layer.options, lengths=lengths, reverse=reverse)
        if layer.cell == "lstm":
            args.append(per_dir(initial_c, d))
            kw["w_peep"] = w.get("w_peep")
        out = fwd(*args, **kw)
        ys.append(out.y)
        hs.append(out.h_n)
        if layer.cell == "lstm":
            cs.append(out.c_n)
    Y = np.stack(ys, axis=1)  # [T, D, B, H]
    Y_h = np.stack(hs)  # [D, B, H]
    Y_c = np.stack(cs) if cs else None
    if bm:
        Y = np.transpose(Y, (2, 0, 1, 3))
        Y_h = np.swapaxes(Y_h, 0, 1)
        Y_c = None if Y_c is None else np.swapaxes(Y_c, 0, 1)
    return Y, Y_h, Y_c


# ---------------------------------------------------------------- PyTorch and Keras layers

_TORCH_KINDS = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}


def from_torch(module, *, dtype=None, backend="native"):
    """An ``rnnkit.RNN`` / ``LSTM`` / ``GRU`` with the configuration and weights of a
    ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (``proj_size``, ``batch_first``, ``dropout`` and its
    training mode included).

    ``dtype``: None keeps the module's (float32 or float64); another one casts the weights
    (an explicit request, so not a silent cast).
    """
    import torch

    from . import layers

    kind = None
    for name in _TORCH_KINDS:
        if isinstance(module, getattr(torch.nn, name)):
            kind = name
    extras = _rnnkit_torch_extras(module)
    if extras is not None:
        kind = {"LSTM": "LSTM", "GRU": "GRU"}.get(module.mode, "RNN")
    if kind is None:
        raise TypeError(
            f"module: expected a torch.nn.RNN, LSTM or GRU (or an rnnkit.torch "
            f"one), got {type(module).__name__}"
        )
    sd = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    src = next(iter(sd.values())).dtype
    dt = np.dtype(src if dtype is None else dtype)
    kw = dict(
        bias=bool(module.bias),
        batch_first=bool(module.batch_first),
        dropout=float(module.dropout),
        bidirectional=bool(module.bidirectional),
        dtype=dt,
        backend=backend,
    )
    if kind == "RNN":
        kw["nonlinearity"] = module.nonlinearity
    if kind == "LSTM":
        kw["proj_size"] = int(module.proj_size)
    kw.update(extras or {})
    layer = getattr(layers, kind)(module.input_size, module.hidden_size, module.num_layers, **kw)
    layer.load_state_dict({k: v.astype(dt, copy=False) for k, v in sd.items()})
    layer.train(module.training)
    return layer


def _rnnkit_torch_extras(module):
    """The rnnkit layer arguments of an ``rnnkit.torch`` module's extras, or None when
    ``module`` is not one. Its ``clip`` has no layer equivalent: ValueError."""
    if not type(module).__module__.startswith("rnnkit.torch"):
        return None
    if getattr(module, "clip", None) is not None:
        raise ValueError(
            f"module: clip={module.clip} has no rnnkit layer equivalent (the "
            f"layers have no clip); expected clip=None"
        )
    extras = {
        "layer_norm": bool(module.layer_norm),
        "zoneout": float(module.zoneout),
        "recurrent_dropout": float(module.recurrent_dropout),
    }
    if module.mode == "LSTM":
        extras["peephole"] = bool(module.peephole)
    if module.mode == "GRU":
        extras["linear_before_reset"] = bool(module.linear_before_reset)
    return extras


def to_torch(layer, *, target="torch.nn"):
    """The ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (``target="rnnkit.torch"``: the
    ``rnnkit.torch`` module) equal to an rnnkit layer (same dtype, weights and training mode).
    ``torch.nn`` has no peepholes, only ``linear_before_reset=True`` GRUs and none of the
    cell options (layer norm, zoneout, recurrent dropout): those raise ValueError for it;
    ``rnnkit.torch`` takes them all."""
    import torch

    kind = type(layer).__name__
    if kind not in _TORCH_KINDS:
        raise TypeError(f"layer: expected an rnnkit RNN, LSTM or GRU, got {type(layer).__name__}")
    if target not in ("torch.nn", "rnnkit.torch"):
        raise ValueError(f"target: expected 'torch.nn' or 'rnnkit.torch', got {target!r}")
    if target == "rnnkit.torch":
        return _to_rnnkit_torch(layer, kind)
    for opt, off in (("layer_norm", False), ("zoneout", 0.0), ("recurrent_dropout", 0.0)):
        if getattr(layer, opt, off) != off:
            raise ValueError(
                f"layer: {opt}={getattr(layer, opt)} cannot be expressed by "
                f"torch.nn.{kind}; use to_torch(layer, target='rnnkit.torch')"
            )
    if getattr(layer, "peephole", False) and kind == "LSTM":
        raise ValueError("layer: peephole=True cannot be expressed by torch.nn.LSTM (no peepholes)")
    if kind == "GRU" and not layer.linear_before_reset:
        raise ValueError(
            "layer: linear_before_reset=False cannot be expressed by torch.nn.GRU "
            "(PyTorch applies the reset gate after the hidden matmul)"
        )
    dt = torch.float64 if layer.dtype == np.float64 else torch.float32
    kw = dict(
        bias=layer.bias,
        batch_first=layer.batch_first,
        dropout=layer.dropout,
        bidirectional=layer.bidirectional,
        dtype=dt,
    )
    if kind == "RNN":
        kw["nonlinearity"] = layer.nonlinearity
    if kind == "LSTM":
        kw["proj_size"] = layer.proj_size
    module = getattr(torch.nn, kind)(layer.input_size, layer.hidden_size, layer.num_layers, **kw)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    module.train(layer.training)
    return module


def _to_rnnkit_torch(layer, kind):
    import torch

    from . import torch as rkt

    dt = torch.float64 if layer.dtype == np.float64 else torch.float32
    kw = dict(
        bias=layer.bias,
        batch_first=layer.batch_first,
        dropout=layer.dropout,
        bidirectional=layer.bidirectional,
        dtype=dt,
        layer_norm=layer.layer_norm,
        zoneout=layer.zoneout,
        recurrent_dropout=layer.recurrent_dropout,
    )
    if kind == "RNN":
        kw["nonlinearity"] = layer.nonlinearity
    if kind == "LSTM":
        kw.update(proj_size=layer.proj_size, peephole=layer.peephole)
    if kind == "GRU":
        kw["linear_before_reset"] = layer.linear_before_reset
    module = getattr(rkt, kind)(layer.input_size, layer.hidden_size, layer.num_layers, **kw)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    module.train(layer.training)
    return module


_KERAS_CELLS = {"simplernn": "rnn", "rnn": "rnn", "lstm": "lstm", "gru": "gru"}
# rnnkit GRU gate block j (r, z, n) comes from Keras block _GRU_FROM_KERAS[j] (Keras: z, r, h)
_GRU_FROM_KERAS = [1, 0, 2]


def _keras_array(name, a):
    return None if a is None else to_numpy(name, a)


def from_keras(
    cell,
    kernel,
    recurrent_kernel,
    bias=None,
    *,
    reset_after=True,
    nonlinearity="tanh",
    dtype=None,
    backend="native",
    batch_first=False,
):
    """A one-layer rnnkit layer from the weights of a Keras ``SimpleRNN``/``LSTM``/``GRU``
    (e.g. ``keras_layer.get_weights()``, or ``cell.kernel`` etc.).

    ``cell``: ``"rnn"`` (or ``"simplernn"``), ``"lstm"`` or ``"gru"``. Keras stores
    ``kernel[I, G*H]``, ``recurrent_kernel[H, G*H]`` (the transposes of PyTorch's) and one
    bias: LSTM gates i, f, c, o (PyTorch's i, f, g, o: no reordering), bias ``[4H]``; GRU
    gates z, r, h (reordered to r, z, n), bias ``[2, 3H]`` (input and recurrent rows) with
    ``reset_after=True`` (Keras' default, = ``linear_before_reset=True``) or ``[3H]`` with
    ``reset_after=False`` (the Cho et al. form, = ``linear_before_reset=False``); SimpleRNN
    bias ``[H]``. ``bias=None`` (``use_bias=False``) gives ``bias=False``. Keras' default
    activations are assumed (tanh, recurrent sigmoid; SimpleRNN ``nonlinearity`` tanh or
    relu). Keras inputs are batch-major: pass ``batch_first=True`` to feed them as they are.
    ``dtype`` None keeps the kernel's.
    """
    from . import layers

    key = str(cell).lower()
    if key not in _KERAS_CELLS:
        raise ValueError(f"cell: expected 'rnn' (or 'simplernn'), 'lstm' or 'gru', got {cell!r}")
    kind = _KERAS_CELLS[key]
    G = _GATES[kind]
    kernel = _keras_array("kernel", kernel)
    rec = _keras_array("recurrent_kernel", recurrent_kernel)
    bias = _keras_array("bias", bias)
    if kernel.ndim != 2 or kernel.shape[1] % G:
        raise ValueError(f"kernel: expected a 2-D array [I, {G}*H], got shape {kernel.shape}")
    I, H = kernel.shape[0], kernel.shape[1] // G
    if rec.shape != (H, G * H):
        raise ValueError(f"recurrent_kernel: expected shape {(H, G * H)}, got {rec.shape}")
    dt = np.dtype(kernel.dtype if dtype is None else dtype)
    w_ih, w_hh = kernel.T, rec.T
    b_ih = b_hh = None
    if bias is not None:
        if kind == "gru" and reset_after:
            if bias.shape != (2, G * H):
                raise ValueError(
                    f"bias: expected shape {(2, G * H)} (GRU, reset_after=True), got {bias.shape}"
                )
            b_ih, b_hh = bias[0], bias[1]
        else:
            if bias.shape != (G * H,):
                what = " (GRU, reset_after=False)" if kind == "gru" else ""
                raise ValueError(f"bias: expected shape {(G * H,)}{what}, got {bias.shape}")
            b_ih, b_hh = bias, np.zeros_like(bias)
    if kind == "gru":
        order = _GRU_FROM_KERAS
        w_ih, w_hh = _blocks(w_ih, order, H), _blocks(w_hh, order, H)
        if bias is not None:
            b_ih, b_hh = _blocks(b_ih, order, H), _blocks(b_hh, order, H)
    kw = dict(bias=bias is not None, batch_first=batch_first, dtype=dt, backend=backend)
    if kind == "rnn":
        layer = layers.RNN(I, H, nonlinearity=nonlinearity, **kw)
    elif kind == "lstm":
        layer = layers.LSTM(I, H, **kw)
    else:
        layer = layers.GRU(I, H, linear_before_reset=bool(reset_after), **kw)
    sd = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh}
    if bias is not None:
        sd.update(bias_ih_l0=b_ih, bias_hh_l0=b_hh)
    layer.load_state_dict({k: np.asarray(v).astype(dt, copy=False) for k, v in sd.items()})
    return layer
