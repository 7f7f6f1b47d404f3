"""Helpers shared by the reference cells: activations, the ONNX clip, and which sequences run
at a step and which row of x they read."""

import numpy as np


def sigmoid(a):
    """σ(a) = 1 / (1 + exp(-a)). For very negative a, exp overflows to inf and σ is exactly 0."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-a))


def relu(a):
    return np.maximum(a, 0)


def zeros_if_none(bias, size, dtype):
    """An absent bias is zero."""
    return np.zeros(size, dtype) if bias is None else bias


def clip_preact(a, clip):
    """Clips a gate pre-activation to [-clip, clip] (ONNX). Returns (clipped a, mask) where
    mask is True where |a| > clip (there the gradient is zero); mask is None without clip."""
    if clip is None:
        return a, None
    return np.clip(a, -clip, clip), np.abs(a) > clip


def unclip(da, mask):
    """The gradient through the clip: da where the forward did not clip, 0 where it did."""
    return da if mask is None else np.where(mask, 0, da).astype(da.dtype, copy=False)


def mask_cols(mask, lo, hi):
    """Columns lo:hi of a [B, G*H] clip mask, or None without clip."""
    return None if mask is None else mask[:, lo:hi]


def running(k, lengths, T, B, reverse):
    """The sequences that take step k, and the row t of x each of them reads.

    Returns (b, t), int arrays of equal length: b = the batch indices with k < lengths[b]
    (all of them without lengths), t = k, or lengths[b]-1-k with reverse. Every other
    sequence has ended: its state is carried over unchanged.
    """
    n = np.full(B, T, dtype=np.int64) if lengths is None else lengths
    b = np.flatnonzero(k < n)
    t = n[b] - 1 - k if reverse else np.full(b.shape, k, dtype=np.int64)
    return b, t
