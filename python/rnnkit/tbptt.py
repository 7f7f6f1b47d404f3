"""Truncated backpropagation through time (Williams & Peng 1990; Sutskever 2013, sec. 2.8.6).

Every ``k1`` steps, backpropagate through the last ``k2 >= k1`` steps: a *window* is the
``k1`` newest steps plus up to ``k2 - k1`` older ones read again for context. Only the newest
steps carry a loss (the older ones get ``dy = 0``); the state at the window's first step is a
constant (the gradient is cut there); the state after the newest step is carried on.

    steps    0 ........................................ T
    window      [start ......... loss_start ....... stop)
                 <- k2 - k1 old ->  <- k1 new (loss) ->

Memory is bounded by ``k2``, not by the sequence length: between windows only the last
``k2 - k1`` inputs are kept, with the state just before them, and their forward is recomputed
in the next window (exactly: the same steps from the same state). A final window of fewer
than ``k1`` new steps also reaches ``k2 - k1`` steps back.

Document boundaries (``resets``): a True at ``[t, b]`` zeroes sample b's state before step t,
and no gradient crosses it. When the model's ``forward`` takes a ``resets`` keyword (rnnkit's
layers and the char LM do: the kernels reset the state themselves, API.md section 11), the
window's resets are passed to it and a window is at most two forward calls (split only where
the next window starts, whose state it keeps). Otherwise the window is split into segments at
such steps; each segment is one ``model.forward`` from the previous segment's state with the
reset samples zeroed, and the backward is chained through the segments with the state
gradient of those samples zeroed. Both give the same result; the first runs long windows of
short documents as a few long kernel calls instead of many short ones
(``bench/tbptt_resets.py``).

The model only needs the layer protocol: ``y, state, tape = model.forward(x, state)``
(optionally ``model.forward(x, state, resets=r)`` with ``r`` bool on x's first two axes,
``[B, n]`` for batch_first models), ``dx, dstate = model.backward(dy, dstate, tape)``
(accumulating into ``model.grads``) and ``model.batch_first``. A state is an array or a tuple
of arrays (LSTM ``(h, c)``) whose batch axis is the second to last (``[L*D, B, H]``,
PyTorch's layout, also with ``batch_first``).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable, Iterator, NamedTuple, Optional

import numpy as np

from ._checks import check_number

__all__ = ["Window", "TBPTT", "tbptt", "takes_resets"]


class Window(NamedTuple):
    """One truncated-BPTT update; ``model.grads`` has received its gradients.

    Steps are counted from the start of the sequence (or stream). The window reads steps
    ``[start, stop)``; the loss covers steps ``[loss_start, stop)``.
    """

    start: int  # first step the gradient reaches (its state is a constant)
    stop: int  # one past the newest step
    loss: float  # what loss_fn returned for the newest steps
    dx: np.ndarray  # dL/dx for steps [start, stop), in the model's layout (batch_first or not)
    state: Any  # the state after step stop - 1, carried into the next window
    loss_start: int  # first step whose loss counted (stop - loss_start <= k1 new steps)
    y: np.ndarray  # the model's outputs of steps [loss_start, stop): what loss_fn saw


# ---------------------------------------------------------------- state trees


def _tree_map(fn, tree):
    """Applies fn to every array of a state (an array, a tuple/list of states, or None)."""
    if tree is None:
        return None
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a NamedTuple
        return type(tree)(*(_tree_map(fn, t) for t in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_tree_map(fn, t) for t in tree)
    return fn(tree)


def _zero_samples(tree, mask):
    """Zeroes samples ``mask[B]`` of every state array (batch on axis -2). np.where, not a
    product, so that a NaN or Inf in a finished document does not leak into the next one."""
    keep = ~mask[:, None]
    return _tree_map(lambda a: np.where(keep, a, np.zeros((), a.dtype)), tree)


def takes_resets(model) -> bool:
    """Whether ``model.forward`` accepts a ``resets`` keyword (or any keyword)."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError, AttributeError):
        return False
    return any(
        p.name == "resets" and p.kind != p.POSITIONAL_ONLY or p.kind == p.VAR_KEYWORD
        for p in params
    )


# ---------------------------------------------------------------- validation


def _check_k(k1, k2):
    for name, k in (("k1", k1), ("k2", k2)):
        if k is None and name == "k2":
            continue
        check_number(name, k, integer=True)
    if k1 < 1:
        raise ValueError(f"k1: expected an integer >= 1, got {k1}")
    k2 = k1 if k2 is None else k2
    if k2 < k1:
        raise ValueError(f"k2: expected an integer >= k1 ({k1}), got {k2}")
    return int(k1), int(k2)


def _check_steps(x, targets, resets, time_axis, what):
    """Validates one piece of sequence; returns (x, resets as bool [T, B] or None, T)."""
    names = (
        ("x", "targets", "resets") if what == "sequence" else ("x_chunk", "targets_chunk", "resets")
    )
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{names[0]}: expected a NumPy array, got {type(x).__name__}")
    layout = "[B, T, ...] (batch_first)" if time_axis == 1 else "[T, B, ...]"
    if x.ndim < 2:
        raise ValueError(f"{names[0]}: expected an array {layout}, got shape {x.shape}")
    T, B = x.shape[time_axis], x.shape[1 - time_axis]
    if targets is not None:
        shape = np.shape(targets)
        if len(shape) <= time_axis or shape[time_axis] != T:
            raise ValueError(
                f"{names[1]}: expected {T} steps along axis {time_axis} (as "
                f"{names[0]}), got shape {tuple(shape)}"
            )
    if resets is not None:
        resets = np.asarray(resets)
        if resets.dtype != np.bool_:
            raise TypeError(f"resets: expected a bool array [T, B], got dtype {resets.dtype}")
        if resets.shape != (T, B):
            raise ValueError(
                f"resets: expected shape ({T}, {B}) [T, B] (time-major also for "
                f"batch_first models), got {resets.shape}"
            )
    return x, resets, T


# ---------------------------------------------------------------- the streaming class


class TBPTT:
    """Truncated BPTT over a stream of chunks, one window per chunk.

    ``tb = TBPTT(model, loss_fn, k1=32, k2=64)``; then per chunk of at most ``k1`` steps
    ``w = tb.step(x_chunk, targets_chunk)`` runs the window that ends with that chunk (its
    steps plus up to ``k2 - k1`` earlier ones), accumulates into ``model.grads`` and returns a
    ``Window``. ``loss_fn(y_new, targets_chunk) -> (loss, dy_new)`` sees the model's outputs
    of the chunk's steps only.

    Between chunks it keeps the state after the newest step (``tb.state``) and, when
    ``k2 > k1``, the last ``k2 - k1`` inputs and resets with the state just before them:
    memory is O(k2) whatever the stream's length. ``tb.reset_state(state=None)`` starts a
    new stream (from zeros, or from ``state``).

    ``tb.pass_resets`` (True when ``model.forward`` takes ``resets``) says whether resets go
    to the model or split the window into segments; setting it False forces the segments.
    """

    def __init__(self, model, loss_fn: Callable, *, k1: int, k2: Optional[int] = None, state=None):
        self.model = model
        self.loss_fn = loss_fn
        self.k1, self.k2 = _check_k(k1, k2)
        self._time_axis = 1 if getattr(model, "batch_first", False) else 0
        # True: resets go to model.forward (the kernels); False: windows split at them.
        self.pass_resets = takes_resets(model)
        self.reset_state(state)

    @property
    def state(self):
        """The state after the newest step (None: zeros, before the first step)."""
        return self._state

    @property
    def position(self) -> int:
        """Steps processed since construction or the last ``reset_state``."""
        return self._pos

    def reset_state(self, state=None) -> None:
        """Starts a new stream at step 0 from ``state`` (None: the model's zero state)."""
        self._state = state
        self._pos = 0
        # The context: inputs and resets of the last k2 - k1 steps (None while empty) and the
        # state before the first of them (before its reset is applied).
        self._ctx_x = None
        self._ctx_resets = None
        self._ctx_state = state

    def _slice(self, a, lo, hi):
        """Steps [lo, hi) of an array in the model's layout."""
        return a[lo:hi] if self._time_axis == 0 else a[:, lo:hi]

    def step(self, x_chunk, targets_chunk=None, resets=None) -> Window:
        """Runs the window ending with this chunk (1 to k1 new steps); returns its Window.

        ``x_chunk[n, B, ...]`` (``[B, n, ...]`` for batch_first models), ``targets_chunk``
        with the same step axis (passed to loss_fn as is; may be None), ``resets[n, B]`` bool.
        """
        ax = self._time_axis
        x_chunk, resets, n = _check_steps(x_chunk, targets_chunk, resets, ax, "chunk")
        if not 1 <= n <= self.k1:
            raise ValueError(f"x_chunk: expected 1 to k1={self.k1} steps along axis {ax}, got {n}")
        B = x_chunk.shape[1 - ax]

        # The window: the stored context followed by the new chunk.
        m = 0 if self._ctx_x is None else self._ctx_x.shape[ax]
        x_win = x_chunk if m == 0 else np.concatenate([self._ctx_x, x_chunk], axis=ax)
        if resets is None and self._ctx_resets is None:
            r_win = None
        else:
            old = self._ctx_resets if self._ctx_resets is not None else np.zeros((m, B), bool)
            new = resets if resets is not None else np.zeros((n, B), bool)
            r_win = np.concatenate([old, new], axis=0)
        W = m + n
        cut = W - min(self.k2 - self.k1, W)  # where the next window will start

        # Segments: split at the next window's start, whose state the next window needs,
        # and (unless the model takes resets) at document boundaries.
        bounds = {0, cut, W}
        if r_win is not None and not self.pass_resets:
            bounds.update(int(t) for t in np.flatnonzero(r_win.any(axis=1)))
        bounds = sorted(bounds)

        # Forward, segment by segment, from the stored state (a constant: the cut).
        state = self._ctx_state
        next_ctx_state = state
        segments = []  # (lo, hi, tape, reset mask at lo or None)
        ys = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            mask, kw = None, {}
            if r_win is not None and self.pass_resets:
                seg = r_win[lo:hi]
                if seg.any():
                    kw["resets"] = seg if ax == 0 else np.ascontiguousarray(seg.T)
            elif r_win is not None and r_win[lo].any():
                mask = r_win[lo]
                state = _zero_samples(state, mask)
            y, state, tape = self.model.forward(self._slice(x_win, lo, hi), state, **kw)
            segments.append((lo, hi, tape, mask))
            ys.append(y)
            if hi == cut:
                next_ctx_state = state
        y_win = ys[0] if len(ys) == 1 else np.concatenate(ys, axis=ax)
        y_new = self._slice(y_win, m, W)

        # The loss sees only the newest steps; older steps get dy = 0.
        loss, dy_new = self.loss_fn(y_new, targets_chunk)
        dy_new = np.asarray(dy_new)
        if dy_new.shape != y_new.shape:
            raise ValueError(
                f"loss_fn: expected dy of shape {y_new.shape} (that of y), got {dy_new.shape}"
            )
        if m:
            pad = list(y_win.shape)
            pad[ax] = m
            dy_win = np.concatenate([np.zeros(pad, y_win.dtype), dy_new], axis=ax)
        else:
            dy_win = dy_new

        # Backward in reverse, chaining the state gradient; it stops at a reset (the state
        # was zeroed, a constant) and at the window's start (the truncation).
        dstate = None
        dxs = []
        for lo, hi, tape, mask in reversed(segments):
            dx, dstate = self.model.backward(self._slice(dy_win, lo, hi), dstate, tape)
            dxs.append(dx)
            if mask is not None:
                dstate = _zero_samples(dstate, mask)
        dx_win = dxs[0] if len(dxs) == 1 else np.concatenate(dxs[::-1], axis=ax)

        # Keep only what the next window re-reads: copies, so no view pins a larger array.
        start = self._pos - m
        self._pos += n
        if cut < W:
            self._ctx_x = self._slice(x_win, cut, W).copy()
            self._ctx_resets = None if r_win is None else r_win[cut:].copy()
        else:
            self._ctx_x = self._ctx_resets = None
        self._ctx_state = next_ctx_state
        self._state = state
        return Window(start, self._pos, float(loss), dx_win, state, self._pos - n, y_new)


# ---------------------------------------------------------------- the generator


class _Windows:
    """The iterator ``tbptt`` returns. Windows run only as it is iterated (the caller steps
    the optimizer between them), so one that is dropped unstarted did nothing at all: that
    gets a RuntimeWarning instead of passing silently."""

    def __init__(self, gen):
        self._gen = gen
        self._started = False

    def __iter__(self):
        return self

    def __next__(self) -> Window:
        self._started = True
        return next(self._gen)

    def __del__(self):
        if not self._started:
            warnings.warn(
                "rnnkit.tbptt(...) was never iterated, so no window ran and no "
                "gradient was computed; loop over it: for w in rnnkit.tbptt(...): ...",
                RuntimeWarning,
                stacklevel=2,
            )


def tbptt(
    model,
    x,
    targets,
    loss_fn: Callable,
    *,
    k1: int,
    k2: Optional[int] = None,
    state=None,
    resets=None,
) -> Iterator[Window]:
    """Truncated BPTT over a whole sequence: yields one ``Window`` per ``k1`` steps.

    ``x[T, B, ...]`` (``[B, T, ...]`` for batch_first models); ``targets`` with the same step
    axis (sliced per window and passed to loss_fn; may be None); ``loss_fn(y_new,
    targets_new) -> (loss, dy_new)`` on the newest ``k1`` steps of each window; ``state`` the
    initial state (None: zeros); ``resets[T, B]`` bool (time-major also for batch_first):
    True zeroes sample b's state before step t and stops the gradient there.

    Each window backpropagates through up to ``k2`` steps (``k2 = k1`` by default) and
    accumulates into ``model.grads``; step the optimizer and zero the grads per window::

        for w in rnnkit.tbptt(model, x, targets, loss_fn, k1=32, k2=64):
            opt.step(); opt.zero_grad()

    The last window has ``T % k1`` new steps when ``k1`` does not divide ``T``. Arguments
    are checked when called, before the first window runs. Windows run only as the result is
    iterated; one dropped without being iterated raises a RuntimeWarning, since nothing ran.
    """
    runner = TBPTT(model, loss_fn, k1=k1, k2=k2, state=state)
    ax = runner._time_axis
    if targets is not None and not isinstance(targets, np.ndarray):
        targets = np.asarray(targets)
    x, resets, T = _check_steps(x, targets, resets, ax, "sequence")

    def windows():
        for lo in range(0, T, runner.k1):
            hi = min(lo + runner.k1, T)
            t_chunk = None if targets is None else runner._slice(targets, lo, hi)
            r_chunk = None if resets is None else resets[lo:hi]
            yield runner.step(runner._slice(x, lo, hi), t_chunk, r_chunk)

    return _Windows(windows())
