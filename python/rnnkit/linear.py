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

import numpy as np

from ._checks import as_array, check_dtype, check_flag, fmt_shape
from ._module import Module, check_dtype_arg, check_int

__all__ = ["Linear", "Embedding"]


class _Dense(Module):
    """Linear and Embedding: parameters registered by name (also as attributes)."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype = check_dtype_arg(dtype)

    def _add_param(self, name, value):
        value = np.ascontiguousarray(value, dtype=self.dtype)
        self._params[name] = value
        self.grads[name] = np.zeros_like(value)
        self._register(name)
        setattr(self, name, value)

    def __call__(self, x):
        y, self._tape = self.forward(x)
        return y

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Linear(_Dense):
    """``y = x W^T + b`` on the last axis, like ``torch.nn.Linear``.

    ``weight [O, I]``, ``bias [O]``; both ``U(-1/sqrt(I), 1/sqrt(I))`` as in PyTorch,
    reproducible from ``seed``. ``x [..., I]`` of the layer's dtype -> ``y [..., O]``.
    """

    def __init__(self, in_features, out_features, bias=True, *, dtype="float32", seed=None):
        super().__init__(dtype)
        self.in_features = check_int("in_features", in_features, 0)
        self.out_features = check_int("out_features", out_features, 0)
        self.bias_enabled = check_flag("bias", bias)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        I, O = self.in_features, self.out_features
        self._add_param("weight", rng.uniform(-bound, bound, size=(O, I)))
        if self.bias_enabled:
            self._add_param("bias", rng.uniform(-bound, bound, size=(O,)))
        else:
            self.bias = None

    def config(self):
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias_enabled,
            "dtype": self.dtype.name,
        }

    def forward(self, x):
        """-> (y [..., O], tape). The tape is the input (backward needs it for dW)."""
        given, x = x, as_array("x", x)
        check_dtype("x", x, self.dtype, "the layer", given)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x: expected shape (..., {self.in_features}), got {fmt_shape(x.shape)}"
            )
        y = x @ self.weight.T  # [..., I] @ [I, O]
        if self.bias is not None:
            y += self.bias
        return y, x

    def backward(self, dy, tape=None):
        """dL/dy [..., O] -> dL/dx [..., I]; adds dW = dy^T x and db = sum(dy) into grads."""
        x = self._tape_or_kept(tape)
        given, dy = dy, as_array("dy", dy)
        check_dtype("dy", dy, self.dtype, "the layer", given)
        expected = x.shape[:-1] + (self.out_features,)
        if dy.shape != expected:
            raise ValueError(f"dy: expected shape {fmt_shape(expected)}, got {fmt_shape(dy.shape)}")
        dy2 = dy.reshape(-1, self.out_features)  # [M, O], M = prod(...)
        x2 = x.reshape(-1, self.in_features)  # [M, I]
        self.grads["weight"] += dy2.T @ x2  # [O, I]
        if self.bias is not None:
            self.grads["bias"] += dy2.sum(axis=0)
        return dy @ self.weight  # [..., O] @ [O, I]


class Embedding(_Dense):
    """``y = weight[ids]``, like ``torch.nn.Embedding``: ``weight [N, D]`` ~ ``N(0, 1)``.

    ``ids`` is an integer array of any shape with values in ``[0, N)``; ``y [..., D]``.
    ``backward(dy)`` adds ``dy`` into the rows of ``grads["weight"]`` (``np.add.at``, so a
    repeated id accumulates) and returns None: ids have no gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, *, dtype="float32", seed=None):
        super().__init__(dtype)
        self.num_embeddings = check_int("num_embeddings", num_embeddings, 0)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, 0)
        rng = np.random.default_rng(seed)
        self._add_param("weight", rng.standard_normal((self.num_embeddings, self.embedding_dim)))

    def config(self):
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "dtype": self.dtype.name,
        }

    def _check_ids(self, ids):
        ids = as_array("ids", ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids: expected an integer array, got dtype {ids.dtype}")
        if ids.size:
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.num_embeddings:
                bad = lo if lo < 0 else hi
                raise ValueError(f"ids: expected values in [0, {self.num_embeddings}), got {bad}")
        return ids

    def forward(self, ids):
        """-> (y [..., D], tape). The tape is the ids (a copy: the caller may reuse its array)."""
        ids = self._check_ids(ids)
        return self.weight[ids], ids.copy()

    def backward(self, dy, tape=None):
        ids = self._tape_or_kept(tape)
        given, dy = dy, as_array("dy", dy)
        check_dtype("dy", dy, self.dtype, "the layer", given)
        expected = ids.shape + (self.embedding_dim,)
        if dy.shape != expected:
            raise ValueError(f"dy: expected shape {fmt_shape(expected)}, got {fmt_shape(dy.shape)}")
        np.add.at(self.grads["weight"], ids.reshape(-1), dy.reshape(-1, self.embedding_dim))
        return None
