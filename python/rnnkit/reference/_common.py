"""Helpers shared by the reference cells: activations, clipping, the step/row bookkeeping."""

import numpy as np


def sigmoid(a):
    """1 / (1 + exp(-a)); exp overflowing to inf for very negative a gives the right 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


def clip_preact(a, clip, mask):
    """Clips a gate pre-activation to [-clip, clip] (ONNX) and records where it was outside."""
    if clip is None:
        return a
    mask[...] = np.abs(a) > clip
    return np.clip(a, -clip, clip)


def unclip(da, clip, mask):
    """No gradient flows where the forward clipped."""
    return da if clip is None else np.where(mask, 0, da).astype(da.dtype, copy=False)


def running(k, lengths, T, B, reverse):
    """The sequences still running at step k, and the time index each one reads.

    Step k of sequence b reads x[k, b], or x[lengths[b]-1-k, b] when reversed.
    """
    n = np.full(B, T, dtype=np.int64) if lengths is None else lengths
    b = np.flatnonzero(k < n)
    t = n[b] - 1 - k if reverse else np.full(b.shape, k, dtype=np.int64)
    return b, t


def add_bias(a, bias):
    return a if bias is None else a + bias
