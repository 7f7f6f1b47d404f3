"""Gradient norms and clipping, like torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""

from __future__ import annotations

import math

import numpy as np

from .._checks import FLOAT_DTYPES
from ._common import _is_model, _nonneg, _number

__all__ = ["grad_norms", "clip_grad_norm", "clip_grad_value"]


# ---------------------------------------------------------------- clipping


def _grad_items(grads, what="grads"):
    """-> [(name, array)] from a model, a list of models, a dict, an array or a list of arrays."""
    if _is_model(grads):
        items = list(grads.grads.items())
    elif isinstance(grads, dict):
        items = list(grads.items())
    elif isinstance(grads, np.ndarray):
        items = [("0", grads)]
    elif hasattr(grads, "__iter__"):
        items = []
        for i, g in enumerate(list(grads)):
            if _is_model(g):
                items += [(f"{i}.{k}", v) for k, v in g.grads.items()]
            else:
                items.append((str(i), g))
    else:
        raise TypeError(
            f"{what}: expected a model, a dict of arrays or a list of arrays, got "
            f"{type(grads).__name__}"
        )
    out = []
    for name, g in items:
        if g is None:
            continue
        if not isinstance(g, np.ndarray):
            raise TypeError(f"{what}: {name}: expected a NumPy array, got {type(g).__name__}")
        if g.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{what}: {name}: expected dtype float32 or float64, got {g.dtype}")
        out.append((name, g))
    return out


def _norm_type(norm_type):
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        return math.inf
    v = _number("norm_type", norm_type)
    if not v > 0:
        raise ValueError(f"norm_type: expected a number > 0 or inf, got {norm_type}")
    return v


def _vector_norm(g, p):
    """||g||_p in g's dtype (torch.linalg.vector_norm); 0 for an empty array."""
    a = np.abs(g.ravel())
    if a.size == 0:
        return g.dtype.type(0)
    if p == math.inf:
        return a.max()
    if p == 2:
        return np.sqrt(np.dot(a, a))
    if p == 1:
        return a.sum()
    return np.sum(a**p) ** (1 / p)


def grad_norms(grads, norm_type=2.0):
    """-> (total, {name: norm}): the norm of each gradient and of all of them together."""
    p = _norm_type(norm_type)
    per = {name: float(_vector_norm(g, p)) for name, g in _grad_items(grads)}
    total = float(_vector_norm(np.array(list(per.values()), np.float64), p)) if per else 0.0
    return total, per


def clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scales all gradients in place so that their joint norm is at most ``max_norm``.

    PyTorch's ``clip_grad_norm_``: ``total`` = the ``norm_type`` norm of the per-array norms
    (``inf`` = the largest absolute entry); ``coef = max_norm / (total + 1e-6)``; the
    gradients are multiplied by ``coef`` only when it is below 1 (a NaN total makes them
    NaN, as in PyTorch). ``error_if_nonfinite``: a NaN or Inf total is a RuntimeError and
    nothing is changed. Returns the total norm before clipping, as a float.
    """
    max_norm = _nonneg("max_norm", max_norm)
    items = _grad_items(grads)
    p = _norm_type(norm_type)
    if not items:
        return 0.0
    norms = np.array([_vector_norm(g, p) for _, g in items], np.float64)
    total = float(_vector_norm(norms, p))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients is non-finite "
            f"({total}), so it cannot be clipped; pass error_if_nonfinite=False "
            "to clip anyway"
        )
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # below 1, or NaN
        with np.errstate(invalid="ignore"):  # inf * 0 = NaN, as in PyTorch
            for _, g in items:
                g *= g.dtype.type(coef)
    return total


def clip_grad_value(grads, clip_value):
    """Clamps every gradient entry to ``[-clip_value, clip_value]`` in place (NaN stays NaN)."""
    v = _nonneg("clip_value", clip_value)
    for _, g in _grad_items(grads):
        np.clip(g, -v, v, out=g)
