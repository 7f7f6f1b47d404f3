"""Streams: a layer's weights frozen for inference, fed one step (or one chunk) at a time.

``s = m.stream(batch_size=1, state=None, *, weight_dtype=None)`` snapshots the weights of an
``rnnkit.RNN`` / ``LSTM`` / ``GRU`` (a copy: later changes to the layer do not reach the
stream) and keeps the recurrent state between calls:

    y_t = s.step(x_t)     # x_t [B, I] -> y_t [B, Hout]
    y = s.run(x)          # x [T, B, I] ([B, T, I] with batch_first) -> y likewise
    s.state               # a copy: h [L, B, Hout] (LSTM: (h, c), c [L, B, H])
    s.reset(state=None)   # zeros, or the given state

Eval semantics (no dropout, no recurrent dropout, zoneout by its expectation: the constant
rate; layer-norm parameters are snapshotted with the weights). Unidirectional layers only: a
reverse direction needs the future.
``weight_dtype="bfloat16"`` (float32 layers) rounds every weight matrix to the nearest
bfloat16 (ties to even) once; the arithmetic stays float32. Both backends round the same way;
the native stream then reads w_ih and w_hh as 16-bit panels (cpp/bf16.h), half the bytes.

The native backend holds a ``rnnkit._core.Stream`` (cpp/stream.cpp): the weights are packed
once, when the stream is made, and every ``step`` and ``run`` reads those panels (a step is
one pass over the weights, without the GIL; ``run`` is the whole-sequence driver on the same
panels, so a stream is also rnnkit's session for repeated whole-sequence inference; zoneout
runs there too, its rate p filling the kernels' zoneout masks). The
reference backend runs its functional API at ``T = 1`` per step and one whole-sequence call
per layer for ``run``, with the snapshot's weights and the carried state.
"""

from __future__ import annotations

import threading

import numpy as np

from . import _checks
from ._module import check_int
from .layers import zoneout_expectation

__all__ = ["Stream", "round_to_bfloat16"]

WEIGHT_DTYPES = (None, "float32", "bfloat16")


def round_to_bfloat16(a):
    """float32 array -> float32 array holding the nearest bfloat16 values (ties to even).

    NaN stays NaN (quiet), +-Inf stays +-Inf; values beyond the largest bfloat16 round to Inf,
    as IEEE rounding does."""
    a = np.ascontiguousarray(a, np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32).copy()
    nan = np.isnan(a)
    out[nan] = np.float32("nan")
    return out.reshape(a.shape)


class Stream:
    """See the module docstring. Made by ``layer.stream(...)``; not constructed directly."""

    def __init__(self, layer, batch_size=1, state=None, *, weight_dtype=None):
        if layer.num_directions != 1:
            raise ValueError(
                "layer: a stream needs a unidirectional layer (a reverse direction "
                "reads the future), got bidirectional=True"
            )
        self.batch_size = check_int("batch_size", batch_size, 1)
        if weight_dtype not in WEIGHT_DTYPES:
            raise ValueError(
                f"weight_dtype: expected None, 'float32' or 'bfloat16', got {weight_dtype!r}"
            )
        if weight_dtype == "bfloat16" and layer.dtype != np.float32:
            raise ValueError(
                f"weight_dtype: 'bfloat16' needs a float32 layer, got a {layer.dtype} layer"
            )
        self.weight_dtype = weight_dtype or layer.dtype.name
        self.dtype = layer.dtype
        self.cell = layer._cell
        self.num_layers = layer.num_layers
        self.input_size = layer.input_size
        self.hidden_size = layer.hidden_size
        self.output_size = layer.proj_size or layer.hidden_size
        self.batch_first = layer.batch_first
        self.backend = layer.backend
        self._fwd = layer._fwd
        self._options = layer._call_options()
        bf16 = weight_dtype == "bfloat16"
        self._weights = []
        for ell in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh, w_hr, w_peep, _ = layer._weights(ell, 0)
            # Matrices (what a step reads most) are rounded; biases and peepholes stay exact.
            mat = round_to_bfloat16 if bf16 else np.array
            self._weights.append(
                (
                    mat(w_ih),
                    mat(w_hh),
                    _copy(b_ih),
                    _copy(b_hh),
                    None if w_hr is None else mat(w_hr),
                    _copy(w_peep),
                )
            )
        # Section 11 options: copies of the layer-norm parameters, and the zoneout rate whose
        # expectation (a constant array) each call passes.
        self._ln = [
            {k: np.array(v) for k, v in layer._ln_weights(ell, 0).items()}
            for ell in range(self.num_layers)
        ]
        self._zoneout = layer.zoneout
        self._layer_state_shapes = layer._state_shapes
        self._check_state = layer._check_state
        self._busy = threading.Lock()
        self._native = self._make_native(layer) if self.backend == "native" else None
        self.reset(state)

    def _make_native(self, layer):
        """The native stream over the snapshot's weights, or None for options it lacks."""
        from . import ops
        from ._core import Stream as NativeStream

        opts = dict(self._options)
        act = opts.pop("nonlinearity", "tanh")
        lbr = opts.pop("linear_before_reset", True)
        if opts:
            return None  # an option the native stream does not know yet: the functional path
        cell = ops._NATIVE[self.cell, act]
        layers = [
            (w_ih, w_hh, b_ih, b_hh, w_peep, w_hr, *(ln.get(n) for n in ("ln_ih", "ln_hh", "ln_c")))
            for (w_ih, w_hh, b_ih, b_hh, w_hr, w_peep), ln in zip(self._weights, self._ln)
        ]
        return NativeStream(
            cell=cell,
            layers=layers,
            batch_size=self.batch_size,
            linear_before_reset=bool(lbr),
            bfloat16=self.weight_dtype == "bfloat16",
            zoneout=float(self._zoneout or 0.0),
            slow_check=self._slow_check_step,
        )

    # ------------------------------------------------------------ state

    @property
    def state(self):
        """A copy of the carried state, shaped like the layer's (``(h, c)`` for the LSTM)."""
        if self._native is not None:
            h, c = self._native.state()
            return (h, c) if self.cell == "lstm" else h
        if self.cell == "lstm":
            return self._h.copy(), self._c.copy()
        return self._h.copy()

    def reset(self, state=None):
        """Sets the carried state to zeros, or to ``state`` (the layer's state shapes)."""
        shapes = self._layer_state_shapes(self.batch_size)
        parts = self._check_state("state", state, self.batch_size)
        h = np.zeros(shapes[0], self.dtype)
        c = np.zeros(shapes[1], self.dtype) if self.cell == "lstm" else None
        if parts is not None:
            if parts[0] is not None:
                h[...] = parts[0]
            if c is not None and parts[1] is not None:
                c[...] = parts[1]
        if self._native is not None:
            self._native.set_state(h, c)
        else:
            self._h, self._c = h, c

    # ------------------------------------------------------------ stepping

    def step(self, x_t, out=None):
        """One step: ``x_t[B, I]`` -> ``y_t[B, Hout]`` (written into ``out`` when given)."""
        if self._native is not None:
            return self._native.step(x_t, out)
        B, dt = self.batch_size, self.dtype
        if type(x_t) is not np.ndarray or x_t.dtype != dt or x_t.shape != (B, self.input_size):
            x_t = self._slow_check_step(x_t)
        y = self._layers(x_t[None])[0]
        if out is None:
            return y
        if (
            type(out) is not np.ndarray
            or out.dtype != dt
            or out.shape != y.shape
            or not out.flags.writeable
        ):
            raise ValueError(
                f"out: expected a writeable {dt} array of shape "
                f"{_checks.fmt_shape(y.shape)}, got "
                f"{_describe(out)}"
            )
        out[...] = y
        return out

    def run(self, x):
        """``T`` steps at once: ``x[T, B, I]`` (``[B, T, I]`` with batch_first) -> ``y`` likewise.
        Equal to calling ``step`` on each ``x[t]`` in turn."""
        xt = self._check_seq(x)
        if self._native is not None:
            y = self._native.run(np.ascontiguousarray(xt))
        else:
            y = self._layers(xt)
        return np.ascontiguousarray(np.swapaxes(y, 0, 1)) if self.batch_first else y

    def _layers(self, x):
        """Runs every layer over ``x[T, B, I]`` from the carried state; advances it."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                "stream: used from two threads at once; give each thread its "
                "own stream (layer.stream())"
            )
        try:
            h, c = self._h.copy(), None if self._c is None else self._c.copy()
            inp = x
            zone = zoneout_expectation(
                self.cell,
                self._zoneout,
                x.shape[0],
                x.shape[1],
                self.output_size,
                self.hidden_size,
                self.dtype,
            )
            for ell, (w_ih, w_hh, b_ih, b_hh, w_hr, w_peep) in enumerate(self._weights):
                kw = {**self._options, **self._ln[ell], **zone}
                if self.cell == "lstm":
                    out = self._fwd(
                        inp,
                        w_ih,
                        w_hh,
                        b_ih,
                        b_hh,
                        h[ell],
                        c[ell],
                        w_peep=w_peep,
                        w_proj=w_hr,
                        **kw,
                    )
                    c[ell] = out.c_n
                else:
                    out = self._fwd(inp, w_ih, w_hh, b_ih, b_hh, h[ell], **kw)
                h[ell] = out.h_n
                inp = out.y
            self._h, self._c = h, c  # only after every layer ran: an error leaves the state
            return inp
        finally:
            self._busy.release()

    # ------------------------------------------------------------ input checks

    def _slow_check_step(self, x_t):
        a = _checks.as_array("x_t", x_t)
        if a.dtype != self.dtype:
            raise TypeError(f"x_t: expected dtype {self.dtype} (the layer's dtype), got {a.dtype}")
        want = (self.batch_size, self.input_size)
        if a.shape != want:
            raise ValueError(
                f"x_t: expected shape {_checks.fmt_shape(want)} (batch_size, "
                f"input_size), got {_checks.fmt_shape(a.shape)}"
            )
        return np.ascontiguousarray(a)

    def _check_seq(self, x):
        a = _checks.as_array("x", x)
        if a.dtype != self.dtype:
            raise TypeError(f"x: expected dtype {self.dtype} (the layer's dtype), got {a.dtype}")
        B, I = self.batch_size, self.input_size
        want = "[B=%d, T, I=%d]" % (B, I) if self.batch_first else "[T, B=%d, I=%d]" % (B, I)
        batch_axis = 0 if self.batch_first else 1
        if a.ndim != 3 or a.shape[2] != I or a.shape[batch_axis] != B:
            raise ValueError(
                f"x: expected a 3-D array {want}, got shape {_checks.fmt_shape(a.shape)}"
            )
        return np.swapaxes(a, 0, 1) if self.batch_first else a

    def __repr__(self):
        return (
            f"rnnkit.Stream({self.cell.upper()} {self.num_layers}x{self.hidden_size}, "
            f"batch_size={self.batch_size}, weight_dtype={self.weight_dtype!r}, "
            f"backend={self.backend!r})"
        )


def _copy(a):
    return None if a is None else np.array(a)


def _describe(a):
    if isinstance(a, np.ndarray):
        return f"a {a.dtype} array of shape {_checks.fmt_shape(a.shape)}"
    return type(a).__name__
