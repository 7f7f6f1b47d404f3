"""Softmax cross entropy with its fused gradient, and the stable softmax it is built on.

For one row of logits ``z[C]`` and its target class ``t``:

    log_softmax(z) = z - m - log(sum(exp(z - m))),   m = max(z)   (never overflows)
    loss           = -log_softmax(z)[t]
    dloss/dz       = softmax(z) - onehot(t)                         (fused: no Jacobian)

Classes are on the LAST axis: ``logits[..., C]`` with ``targets[...]`` (PyTorch puts them on
axis 1: ``F.cross_entropy(logits.reshape(-1, C), targets.reshape(-1))`` is the same thing).
"""

from __future__ import annotations

import numpy as np

from ._checks import FLOAT_DTYPES, as_array, check_number, fmt_shape

__all__ = ["softmax_cross_entropy", "log_softmax", "softmax"]

REDUCTIONS = ("mean", "sum", "none")


def _check_logits(logits, name="logits"):
    logits = as_array(name, logits)
    if logits.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {logits.dtype}")
    if logits.ndim < 1:
        raise ValueError(f"{name}: expected an array [..., C], got shape {fmt_shape(logits.shape)}")
    return logits


def log_softmax(logits, axis=-1):
    """``z - max(z) - log(sum(exp(z - max(z))))`` along ``axis``: finite for any finite z."""
    z = _check_logits(logits)
    m = np.max(z, axis=axis, keepdims=True) if z.shape[axis] else 0
    shifted = z - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(logits, axis=-1):
    """``exp(z - max(z)) / sum(exp(z - max(z)))`` along ``axis``."""
    z = _check_logits(logits)
    m = np.max(z, axis=axis, keepdims=True) if z.shape[axis] else 0
    e = np.exp(z - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_cross_entropy(logits, targets, *, reduction="mean", ignore_index=None):
    """Cross entropy of ``logits[..., C]`` against integer class ids ``targets[...]``.

    Returns ``(loss, dlogits)``:

    - ``reduction="mean"``: loss is a float, the mean over the non-ignored positions
      (NaN when every position is ignored or there is none, as in PyTorch); ``dlogits =
      (softmax - onehot) / count``.
    - ``"sum"``: a float, the sum; ``dlogits = softmax - onehot``.
    - ``"none"``: an array ``[...]`` (0 at ignored positions); ``dlogits`` is the gradient
      of its sum, ``softmax - onehot`` (scale it by your own upstream gradient).

    ``ignore_index``: positions whose target equals it contribute neither loss nor gradient
    (their rows of ``dlogits`` are 0); it may lie outside ``[0, C)`` (e.g. -100, PyTorch's
    default when given). Every other target must lie in ``[0, C)``: else ``ValueError``.
    ``dlogits`` has the dtype of ``logits``; the loss is computed in that dtype.
    """
    logits = _check_logits(logits)
    C = logits.shape[-1]
    if C == 0:
        raise ValueError(
            f"logits: expected at least one class on the last axis, got shape "
            f"{fmt_shape(logits.shape)}"
        )
    targets = as_array("targets", targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets: expected an integer array, got dtype {targets.dtype}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets: expected shape {fmt_shape(logits.shape[:-1])} (logits "
            f"without its last axis), got {fmt_shape(targets.shape)}"
        )
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    if ignore_index is not None:
        check_number("ignore_index", ignore_index, "an integer or None", integer=True)

    z = logits.reshape(-1, C)  # [M, C]
    t_given = targets.reshape(-1)  # [M], its own dtype: a uint64 above 2**63 must not wrap
    keep = np.ones(t_given.shape, bool) if ignore_index is None else t_given == ignore_index
    if ignore_index is not None:
        keep = ~keep
    if keep.any():
        kept = t_given[keep]
        lo, hi = int(kept.min()), int(kept.max())
        if lo < 0 or hi >= C:
            raise ValueError(
                f"targets: expected values in [0, {C})"
                + (f" or ignore_index ({ignore_index})" if ignore_index is not None else "")
                + f", got {lo if lo < 0 else hi}"
            )
    rows = np.arange(t_given.shape[0])
    # In range now (checked above), so the cast is exact; ignored rows read class 0, then
    # are zeroed.
    safe_t = np.where(keep, t_given, 0).astype(np.int64)

    logp = log_softmax(z)  # [M, C]
    losses = np.where(keep, -logp[rows, safe_t], np.zeros((), z.dtype))  # [M]
    dz = np.exp(logp)  # softmax
    dz[rows, safe_t] -= 1  # - onehot
    dz[~keep] = 0

    if reduction == "none":
        return losses.reshape(targets.shape), dz.reshape(logits.shape)
    total = losses.sum(dtype=z.dtype)
    if reduction == "sum":
        return float(total), dz.reshape(logits.shape)
    count = int(keep.sum())
    if count == 0:  # 0/0, as PyTorch: a NaN loss, a zero gradient
        return float("nan"), dz.reshape(logits.shape)
    dz /= z.dtype.type(count)
    return float(total / z.dtype.type(count)), dz.reshape(logits.shape)
