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


# --- the options of the functions guide --------------------------------------------------------

LN_EPS = 1e-5  # as torch.nn.functional.layer_norm
LN_COL = {"ih": 0, "hh": 1, "hn": 2, "c": 3}  # the column of cache.ln_rstd of each norm
LN_HAT = {"ih": "ih_hat", "hh": "hh_hat", "hn": "hh_hat", "c": "c_hat"}  # its cache field
LN_ARG = {"ih": "ln_ih", "hh": "ln_hh", "hn": "ln_hh", "c": "ln_c"}  # its parameter


def layer_norm(a, ln):
    """Layer normalisation of each row of a[B, N] with ln[2, N] (gain, bias), biased variance.
    Returns (gain * hat + bias, hat, rstd[B]) with hat = (a - mean) * rstd."""
    mean = a.mean(axis=1, keepdims=True)
    d = a - mean
    rstd = 1 / np.sqrt((d * d).mean(axis=1, keepdims=True) + LN_EPS)
    hat = d * rstd
    return hat * ln[0] + ln[1], hat, rstd[:, 0]


def layer_norm_backward(dout, hat, rstd, ln, dln):
    """The gradient through `layer_norm`: dout[B, N] = dL/d(its output). Adds dL/dgain and
    dL/dbias into dln[2, N]; returns dL/da[B, N]."""
    dln[0] += (dout * hat).sum(axis=0)
    dln[1] += dout.sum(axis=0)
    dhat = dout * ln[0]
    return rstd[:, None] * (
        dhat - dhat.mean(axis=1, keepdims=True) - hat * (dhat * hat).mean(axis=1, keepdims=True)
    )


class Norms:
    """The layer normalisations of one forward call, and what their backward reads.

    ``apply(a, which, k, b, cols)`` normalises a[B, N] (the rows b of step k) with the
    parameter of ``which`` ("ih", "hh", "hn" or "c", see LN_ARG) restricted to ``cols``, and
    keeps hat and rstd; without that parameter it returns a unchanged. ``fields()`` are the
    cache fields (ih_hat, hh_hat, c_hat, ln_rstd; None where unused).
    """

    def __init__(self, f, T, B, GH, H):
        z = lambda n, ln: None if ln is None else np.zeros((T, B, n), f.dtype)  # noqa: E731
        self.ln = {"ln_ih": f.ln_ih, "ln_hh": f.ln_hh, "ln_c": f.ln_c}
        self.hat = {"ih_hat": z(GH, f.ln_ih), "hh_hat": z(GH, f.ln_hh), "c_hat": z(H, f.ln_c)}
        any_ln = any(v is not None for v in self.ln.values())
        self.rstd = np.zeros((T, B, 4), f.dtype) if any_ln else None

    def apply(self, a, which, k, b, cols=slice(None)):
        ln = self.ln[LN_ARG[which]]
        if ln is None:
            return a
        out, hat, rstd = layer_norm(a, ln[:, cols])
        self.hat[LN_HAT[which]][k, b, cols] = hat
        self.rstd[k, b, LN_COL[which]] = rstd
        return out

    def fields(self, cls):
        """The cache fields of cls (a cache class) this holds."""
        return {k: v for k, v in dict(self.hat, ln_rstd=self.rstd).items() if k in cls._fields}


class NormGrads:
    """The backward of `Norms` from a cache: ``apply(d, which, k, b, cols)`` turns
    dL/d(normalised value) into dL/d(value) and accumulates the parameter's gradient;
    ``grads`` maps dln_ih, dln_hh, dln_c to arrays (None where the cache had no parameter)."""

    def __init__(self, cache):
        self.cache = cache
        self.grads = {}
        for name in ("ln_ih", "ln_hh", "ln_c"):
            if name not in cache._fields:
                continue
            ln = getattr(cache, name)
            self.grads["d" + name] = None if ln is None else np.zeros_like(ln)

    def apply(self, d, which, k, b, cols=slice(None)):
        name = LN_ARG[which]
        ln = getattr(self.cache, name, None)
        if ln is None:
            return d
        hat = getattr(self.cache, LN_HAT[which])[k, b, cols]
        rstd = self.cache.ln_rstd[k, b, LN_COL[which]]
        return layer_norm_backward(d, hat, rstd, ln[:, cols], self.grads["d" + name][:, cols])


def reset_rows(state, resets, t, b):
    """state (rows b of one step) with the rows where resets[t, b] set to zero: the state a
    step starts from after a reset, and the gradient that may not cross it."""
    if resets is None:
        return state
    return np.where(resets[t, b][:, None], state.dtype.type(0), state)


def masked(h, mask, b):
    """h * mask[b] (recurrent dropout: what the products with w_hh read), or h without mask."""
    return h if mask is None else h * mask[b]


def zone(z, t, b, old, new):
    """Zoneout: z[t, b] * old + (1 - z[t, b]) * new, or new without zoneout."""
    if z is None:
        return new
    zt = z[t, b]
    return zt * old + (1 - zt) * new


def unzone(z, t, b, d):
    """The gradient through `zone`: (dL/dnew, dL/dold), or (d, None) without zoneout."""
    if z is None:
        return d, None
    zt = z[t, b]
    return d * (1 - zt), d * zt


def add(a, b):
    """a + b, where b may be None (no term)."""
    return a if b is None else a + b
