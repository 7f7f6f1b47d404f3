"""Dense layers around the recurrent ones: ``Linear`` (a head) and ``Embedding`` (an input).

Both follow the layer protocol of ``rnnkit.LSTM`` (design page, "Layer protocol"):

    y = lin(x)                    # keeps the tape of this call in the layer
    dx = lin.backward(dy)         # uses the tape of the last call, accumulates into lin.grads
    y, tape = lin.forward(x)      # explicit tape, nothing kept
    dx = lin.backward(dy, tape)   # explicit tape (truncated BPTT wraps layers this way)

``grads`` holds one array per parameter, same names as ``state_dict``; backward adds into
these arrays IN PLACE and optimizers update the parameter arrays in place, so references
held by either side stay valid. Plain NumPy: a head is one GEMM, NumPy's BLAS does it well.

Letters: ``I`` in_features, ``O`` out_features, ``N`` num_embeddings, ``D`` embedding_dim.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._checks import FLOAT_DTYPES, as_array, fmt_shape

__all__ = ["Linear", "Embedding"]


def _check_dtype_arg(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dt}")
    return dt


def _check_size(name, n, minimum=0):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {n}")
    return int(n)


def _to_numpy(name, value):
    """A NumPy view of a NumPy array or a torch tensor (detached, on the CPU)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return as_array(name, value)


class _Module:
    """What Linear and Embedding share: parameters, grads, state dicts, the kept tape."""

    _names: tuple = ()

    def __init__(self, dtype):
        self.dtype = _check_dtype_arg(dtype)
        self.training = True
        self._tape = None
        self._params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def _add_param(self, name, value):
        value = np.ascontiguousarray(value, dtype=self.dtype)
        self._params[name] = value
        self.grads[name] = np.zeros_like(value)
        setattr(self, name, value)

    # -- the protocol ----------------------------------------------------------------------

    def __call__(self, x):
        y, self._tape = self.forward(x)
        return y

    def _tape_or_kept(self, tape):
        if tape is not None:
            return tape
        if self._tape is None:
            raise RuntimeError(f"{type(self).__name__}.backward: no tape; call the layer "
                               "first or pass the tape that forward returned")
        return self._tape

    def named_parameters(self):
        """[(name, array)]: the live arrays (optimizers update them in place)."""
        return list(self._params.items())

    def parameters(self):
        return list(self._params.values())

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        """{name: copy of the parameter}."""
        return {name: p.copy() for name, p in self._params.items()}

    def load_state_dict(self, state):
        """Copies NumPy arrays or torch tensors INTO the existing parameter arrays.

        Keys must match exactly (a missing or unexpected key is a ValueError), shapes too;
        values are converted to this layer's dtype (a checkpoint is data, not a call).
        """
        missing = [k for k in self._params if k not in state]
        extra = [k for k in state if k not in self._params]
        if missing or extra:
            raise ValueError(f"state: expected keys {sorted(self._params)}, missing {missing}, "
                             f"unexpected {extra}")
        values = {}
        for name, p in self._params.items():
            v = _to_numpy(name, state[name])
            if v.shape != p.shape:
                raise ValueError(f"{name}: expected shape {fmt_shape(p.shape)}, got "
                                 f"{fmt_shape(v.shape)}")
            values[name] = v
        for name, v in values.items():  # all checked before anything is written
            self._params[name][...] = v

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Linear(_Module):
    """``y = x W^T + b`` on the last axis, like ``torch.nn.Linear``.

    ``weight [O, I]``, ``bias [O]``; both ``U(-1/sqrt(I), 1/sqrt(I))`` as in PyTorch,
    reproducible from ``seed``. ``x [..., I]`` of the layer's dtype -> ``y [..., O]``.
    """

    def __init__(self, in_features, out_features, bias=True, *, dtype="float32", seed=None):
        super().__init__(dtype)
        self.in_features = _check_size("in_features", in_features)
        self.out_features = _check_size("out_features", out_features)
        self.bias_enabled = bool(bias)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        I, O = self.in_features, self.out_features
        self._add_param("weight", rng.uniform(-bound, bound, size=(O, I)))
        if self.bias_enabled:
            self._add_param("bias", rng.uniform(-bound, bound, size=(O,)))
        else:
            self.bias = None

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias_enabled, "dtype": self.dtype.name}

    def forward(self, x):
        """-> (y [..., O], tape). The tape is the input (backward needs it for dW)."""
        x = as_array("x", x)
        if x.dtype != self.dtype:
            raise TypeError(f"x: expected dtype {self.dtype} (the dtype of the layer), "
                            f"got {x.dtype}")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}), got "
                             f"{fmt_shape(x.shape)}")
        y = x @ self.weight.T  # [..., I] @ [I, O]
        if self.bias is not None:
            y += self.bias
        return y, x

    def backward(self, dy, tape=None):
        """dL/dy [..., O] -> dL/dx [..., I]; adds dW = dy^T x and db = sum(dy) into grads."""
        x = self._tape_or_kept(tape)
        dy = as_array("dy", dy)
        if dy.dtype != self.dtype:
            raise TypeError(f"dy: expected dtype {self.dtype} (the dtype of the layer), "
                            f"got {dy.dtype}")
        expected = x.shape[:-1] + (self.out_features,)
        if dy.shape != expected:
            raise ValueError(f"dy: expected shape {fmt_shape(expected)}, got "
                             f"{fmt_shape(dy.shape)}")
        dy2 = dy.reshape(-1, self.out_features)  # [M, O], M = prod(...)
        x2 = x.reshape(-1, self.in_features)  # [M, I]
        self.grads["weight"] += dy2.T @ x2  # [O, I]
        if self.bias is not None:
            self.grads["bias"] += dy2.sum(axis=0)
        return dy @ self.weight  # [..., O] @ [O, I]


class Embedding(_Module):
    """``y = weight[ids]``, like ``torch.nn.Embedding``: ``weight [N, D]`` ~ ``N(0, 1)``.

    ``ids`` is an integer array of any shape with values in ``[0, N)``; ``y [..., D]``.
    ``backward(dy)`` adds ``dy`` into the rows of ``grads["weight"]`` (``np.add.at``, so a
    repeated id accumulates) and returns None: ids have no gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, *, dtype="float32", seed=None):
        super().__init__(dtype)
        self.num_embeddings = _check_size("num_embeddings", num_embeddings)
        self.embedding_dim = _check_size("embedding_dim", embedding_dim)
        rng = np.random.default_rng(seed)
        self._add_param("weight", rng.standard_normal((self.num_embeddings, self.embedding_dim)))

    def config(self):
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "dtype": self.dtype.name}

    def _check_ids(self, ids):
        ids = as_array("ids", ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids: expected an integer array, got dtype {ids.dtype}")
        if ids.size:
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.num_embeddings:
                bad = lo if lo < 0 else hi
                raise ValueError(f"ids: expected values in [0, {self.num_embeddings}), "
                                 f"got {bad}")
        return ids

    def forward(self, ids):
        """-> (y [..., D], tape). The tape is the ids (a copy: the caller may reuse its array)."""
        ids = self._check_ids(ids)
        return self.weight[ids], ids.copy()

    def backward(self, dy, tape=None):
        ids = self._tape_or_kept(tape)
        dy = as_array("dy", dy)
        if dy.dtype != self.dtype:
            raise TypeError(f"dy: expected dtype {self.dtype} (the dtype of the layer), "
                            f"got {dy.dtype}")
        expected = ids.shape + (self.embedding_dim,)
        if dy.shape != expected:
            raise ValueError(f"dy: expected shape {fmt_shape(expected)}, got "
                             f"{fmt_shape(dy.shape)}")
        np.add.at(self.grads["weight"], ids.reshape(-1), dy.reshape(-1, self.embedding_dim))
        return None
