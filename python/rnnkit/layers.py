"""PyTorch-shaped recurrent layers: ``rnnkit.RNN``, ``rnnkit.LSTM``, ``rnnkit.GRU``.

A layer is a stack of ``num_layers`` layers of ``D`` directions (2 when bidirectional), each
one call of the functional API (``rnnkit.<cell>_forward``, or ``rnnkit.reference`` with
``backend="reference"``). The forward keeps every call's cache on a *tape*; the backward
walks the tape in reverse, layer by layer:

    layer l input  x_l = dropout(y_{l-1})  (x_0 = x; dropout only in training, l >= 1)
    layer l output y_l = [y_l_fwd, y_l_rev]  (concatenated on the last axis, like PyTorch)
    dx_l = (dx_l_fwd + dx_l_rev) * mask_l    (both directions read the same x_l)

Shapes follow ``torch.nn.LSTM`` (``batch_first`` included): ``x[T, B, I]``,
``y[T, B, D*Hout]`` with ``Hout = P`` (projection) or ``H``, states ``[L*D, B, Hout]`` (LSTM
``c`` ``[L*D, B, H]``), index ``l*D + d``. With ``lengths``, ``y`` is 0 past each sequence's
end and the reverse direction starts at each sequence's own last step (packed sequences).

Parameters are NumPy arrays named like PyTorch's (``weight_ih_l0``, ``bias_hh_l1_reverse``,
``weight_hr_l0``) plus ``weight_peep_l0`` ``[3, H]`` (rows p_i, p_f, p_o) for peephole LSTMs.
Per layer and direction, in this order: weight_ih, weight_hh, bias_ih, bias_hh, weight_hr,
weight_peep, ln_ih, ln_hh, ln_c. ``named_parameters()`` returns the live arrays; ``grads``
holds arrays of the same names, accumulated in place by ``backward`` and zeroed in place by
``zero_grad``.

Cell options (API.md section 11; the equations are in docs/guides/functions.md):
``layer_norm=True`` adds ``ln_ih_l{k}``, ``ln_hh_l{k}`` ``[2, G*H]`` and, for the LSTM,
``ln_c_l{k}`` ``[2, H]`` (rows: gain, bias; initialised to gain 1, bias 0); ``zoneout=p``
zones h (and the LSTM's c, at the same rate) with a 0/1 mask that is 1 with probability p in
training and the constant p (its expectation) in eval; ``recurrent_dropout=p`` multiplies the
h read by every ``w_hh`` product by one mask per sequence, ``(random >= p) / (1 - p)``, the
same at every step, in training only. ``resets[T, B]`` (bool, ``[B, T]`` with batch_first) on
a call zeroes every layer's state of sequence b before step t; unidirectional layers only.

Randomness (reproducible from ``seed``): ``SeedSequence(seed).spawn(3)`` gives three
generators. The first initialises every parameter, in ``named_parameters()`` order, with
``uniform(-k, k, shape)`` (float64 draws, then cast), ``k = 1/sqrt(H)`` as in PyTorch
(peepholes included; the layer-norm parameters draw nothing). The second draws the dropout
masks, one ``random(x_l.shape)`` per layer l >= 1 per training forward, in layer order. The
third draws the cell masks of a training forward, per layer and direction in order:
``random((B, Hout))`` for recurrent dropout, ``random((T, B, Hout))`` for zoneout of h and
(LSTM) ``random((T, B, H))`` for zoneout of c, each only when its rate is above 0.
``seed=None`` takes fresh OS entropy.

The tape holds references to the parameter arrays (not copies): update the parameters only
after the backward of the forward that used them.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import numbers
from typing import NamedTuple

import numpy as np

from . import _checks
from ._cells import CELLS
from ._directions import PARALLEL_MIN_WORK, run_directions
from ._module import Module, check_dtype_arg, check_int, to_numpy

__all__ = ["RNN", "LSTM", "GRU", "load", "LayerTape", "PARALLEL_MIN_WORK"]


# backend name -> the module holding its functional API (<cell>_forward / <cell>_backward).
# Imported on first use, so that a layer on the reference never needs the compiled _core.
BACKENDS = {"native": "rnnkit.ops", "reference": "rnnkit.reference"}


def functional_api(backend):
    """The functional module of ``backend`` (a key of `BACKENDS`); else ValueError."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        names = " or ".join(repr(b) for b in BACKENDS)
        raise ValueError(f"backend: expected {names}, got {backend!r}")
    return importlib.import_module(BACKENDS[backend])


class LayerTape(NamedTuple):
    """What ``backward`` needs from one forward: per layer, its dropout mask (or None) and
    the caches of its directions."""

    masks: tuple  # per layer: None or the scaled mask [T, B, in_l] applied to its input
    caches: tuple  # per layer: tuple of D caches (forward, then reverse)
    T: int
    B: int


def param_shapes(
    cell,
    input_size,
    hidden_size,
    num_layers,
    *,
    bias=True,
    bidirectional=False,
    proj_size=0,
    peephole=False,
    layer_norm=False,
):
    """Yields ``(name, shape)`` of every parameter, in ``named_parameters()`` order, without
    allocating anything (``rnnkit.load`` checks a file against it before building a layer)."""
    D, H, G = 2 if bidirectional else 1, hidden_size, CELLS[cell].gates
    Hout = proj_size or H
    for layer in range(num_layers):
        in_size = input_size if layer == 0 else D * Hout
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            yield "weight_ih" + sfx, (G * H, in_size)
            yield "weight_hh" + sfx, (G * H, Hout)
            if bias:
                yield "bias_ih" + sfx, (G * H,)
                yield "bias_hh" + sfx, (G * H,)
            if proj_size:
                yield "weight_hr" + sfx, (proj_size, H)
            if peephole:
                yield "weight_peep" + sfx, (3, H)
            if layer_norm:
                yield "ln_ih" + sfx, (2, G * H)
                yield "ln_hh" + sfx, (2, G * H)
                if CELLS[cell].cell_state:
                    yield "ln_c" + sfx, (2, H)


@functools.lru_cache(maxsize=None)
def _param_keys(num_layers):
    """Per layer, the state-dict names of w_ih, w_hh, b_ih, b_hh (one direction)."""
    return tuple(
        tuple(f"{k}_l{layer}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        for layer in range(num_layers)
    )


class _Recurrent(Module):
    """The layer machinery shared by RNN, LSTM and GRU (a subclass sets ``_cell``)."""

    _cell = ""

    @property
    def _has_c(self):
        """The cell carries a cell state: the state is (h, c), not h."""
        return CELLS[self._cell].cell_state

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        *,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        peephole=False,
        nonlinearity="tanh",
        linear_before_reset=True,
        layer_norm=False,
        zoneout=0.0,
        recurrent_dropout=0.0,
        dtype="float32",
        backend="native",
        seed=None,
    ):
        self.input_size = check_int("input_size", input_size, 1)
        self.hidden_size = check_int("hidden_size", hidden_size, 1)
        self.num_layers = check_int("num_layers", num_layers, 1)
        self.proj_size = check_int("proj_size", proj_size, 0)
        if self.proj_size and self._cell != "lstm":
            raise ValueError(
                f"proj_size: only the LSTM has a projection, expected 0, got {proj_size}"
            )
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"proj_size: expected 0 or < hidden_size={hidden_size}, got {proj_size}"
            )
        self.bias = _checks.check_flag("bias", bias)
        self.batch_first = _checks.check_flag("batch_first", batch_first)
        self.bidirectional = _checks.check_flag("bidirectional", bidirectional)
        self.peephole = _checks.check_flag("peephole", peephole)
        self.linear_before_reset = _checks.check_flag("linear_before_reset", linear_before_reset)
        self.nonlinearity = _checks.check_nonlinearity(nonlinearity)
        self.dropout = _checks.check_number("dropout", dropout, "a number in [0, 1)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a number in [0, 1), got {dropout}")
        self.layer_norm = _checks.check_flag("layer_norm", layer_norm)
        self.zoneout = _checks.check_number("zoneout", zoneout, "a number in [0, 1]")
        if not 0.0 <= self.zoneout <= 1.0:
            raise ValueError(f"zoneout: expected a number in [0, 1], got {zoneout}")
        self.recurrent_dropout = _checks.check_number(
            "recurrent_dropout", recurrent_dropout, "a number in [0, 1)"
        )
        if not 0.0 <= self.recurrent_dropout < 1.0:
            raise ValueError(
                f"recurrent_dropout: expected a number in [0, 1), got {recurrent_dropout}"
            )
        self.dtype = dt = check_dtype_arg(dtype)
        functional = functional_api(backend)
        self.backend = backend
        self._fwd = getattr(functional, f"{self._cell}_forward")
        self._bwd = getattr(functional, f"{self._cell}_backward")
        self.seed = seed
        # spawn(3)'s first two children are spawn(2)'s: adding the mask generator changed
        # neither the initialisation nor the dropout masks of a seeded layer.
        init_ss, drop_ss, mask_ss = np.random.SeedSequence(seed).spawn(3)
        self._dropout_rng = np.random.default_rng(drop_ss)
        self._mask_rng = np.random.default_rng(mask_ss)
        Module.__init__(self)
        self.parallel_directions = None  # None: automatic (see _parallel); True / False: forced

        if self.peephole and self._cell != "lstm":
            raise ValueError("peephole: only the LSTM has peepholes, expected False")
        rng = np.random.default_rng(init_ss)
        k = 1.0 / math.sqrt(self.hidden_size)
        for name, shape in param_shapes(
            self._cell,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            bias=self.bias,
            bidirectional=self.bidirectional,
            proj_size=self.proj_size,
            peephole=self.peephole,
            layer_norm=self.layer_norm,
        ):
            if name.startswith("ln_"):  # gain 1, bias 0: no draw
                self._params[name] = np.zeros(shape, dt)
                self._params[name][0] = 1
            else:
                self._params[name] = rng.uniform(-k, k, shape).astype(dt)
        self._init_grads()

    # ------------------------------------------------------------ properties and protocol

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def _ln_names(self):
        """The layer-norm parameters of one direction, without their suffix."""
        return ("ln_ih", "ln_hh", "ln_c") if self._has_c else ("ln_ih", "ln_hh")

    @property
    def output_size(self):
        """The last size of y: D * (P or H)."""
        return self.num_directions * (self.proj_size or self.hidden_size)

    def config(self):
        """The constructor arguments, as a JSON-serialisable dict (plus ``"type"``)."""
        c = {
            "type": type(self).__name__,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "dropout": self.dropout,
            "bidirectional": self.bidirectional,
            "layer_norm": self.layer_norm,
            "zoneout": self.zoneout,
            "recurrent_dropout": self.recurrent_dropout,
            "dtype": self.dtype.name,
            "backend": self.backend,
            "seed": int(self.seed) if isinstance(self.seed, numbers.Integral) else None,
        }
        c.update(self._extra_config())
        return c

    def _extra_config(self):
        return {}

    def save(self, path):
        """Writes the configuration (JSON) and the state dict to one ``.npz`` file at ``path``
        (exactly that path: no suffix is added). ``rnnkit.load(path)`` reads it back."""
        from ._files import atomic_write

        arrays = self.state_dict()
        arrays["__config__"] = np.array(json.dumps(self.config()))
        with atomic_write(path) as f:  # a kill mid-save keeps the previous file
            np.savez(f, **arrays)

    def __repr__(self):
        c = self.config()
        args = ", ".join(f"{k}={v!r}" for k, v in c.items() if k != "type")
        return f"rnnkit.{c['type']}({args})"

    # ------------------------------------------------------------ input checks

    def _check_seq(self, name, a, last, what):
        """[T, B, last] (or [B, T, last] with batch_first) of the layer's dtype -> time-major.
        ``what`` says what the last axis is (e.g. "input_size"), for the message."""
        layout = ("[B, T, %s]" if self.batch_first else "[T, B, %s]") % last
        if a is None:
            raise TypeError(f"{name}: expected a 3-D array {layout}, got None")
        given, a = a, to_numpy(name, a)
        _checks.check_dtype(name, a, self.dtype, "the layer", given)
        if a.ndim != 3:
            raise ValueError(
                f"{name}: expected a 3-D array {layout}, got shape {_checks.fmt_shape(a.shape)}"
            )
        if a.shape[2] != last:
            raise ValueError(
                f"{name}: expected {last} ({what}) on the last axis of {layout}, "
                f"got {a.shape[2]} (shape {_checks.fmt_shape(a.shape)})"
            )
        return np.swapaxes(a, 0, 1) if self.batch_first else a

    def _state_shapes(self, B):
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        hs = (LD, B, self.proj_size or H)
        return [hs, (LD, B, H)] if self._has_c else [hs]

    def _check_state(self, name, state, B):
        """A state (h, or (h, c) for the LSTM) as a list of arrays, or None."""
        if state is None:
            return None
        shapes = self._state_shapes(B)
        if self._has_c:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(
                    f"{name}: expected a tuple (h, c) for the LSTM, got {type(state).__name__}"
                )
            parts, names = list(state), [f"{name}[0]", f"{name}[1]"]
        else:
            parts, names = [state], [name]
        out = []
        for part, pname, shape in zip(parts, names, shapes):
            if part is None:
                out.append(None)
                continue
            a = to_numpy(pname, part)
            _checks.check_dtype(pname, a, self.dtype, "the layer", part)
            if a.shape != shape:
                raise ValueError(
                    f"{pname}: expected shape {_checks.fmt_shape(shape)}, "
                    f"got {_checks.fmt_shape(a.shape)}"
                )
            out.append(a)
        return out

    def _pack_state(self, parts):
        return (parts[0], parts[1]) if self._has_c else parts[0]

    # ------------------------------------------------------------ one direction

    def _weights(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        p = self._params
        return (
            p["weight_ih" + sfx],
            p["weight_hh" + sfx],
            p.get("bias_ih" + sfx),
            p.get("bias_hh" + sfx),
            p.get("weight_hr" + sfx),
            p.get("weight_peep" + sfx),
            sfx,
        )

    def _ln_weights(self, layer, d):
        """The layer-norm keyword arguments of one direction's call ({} without layer_norm):
        ``ln_ih``, ``ln_hh`` and, for the LSTM, ``ln_c``, the live parameter arrays."""
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        return {
            base: self._params[base + sfx] for base in self._ln_names if base + sfx in self._params
        }

    def _cell_masks(self, T, B):
        """The mask keyword arguments of one direction's call of this forward: in training
        0/1 zoneout masks (1 with probability ``zoneout``) and the recurrent-dropout mask
        scaled by 1/(1-p), drawn from the mask generator; in eval the zoneout expectation
        (the constant p) and no recurrent mask. {} with both rates 0."""
        dt, H, Hout = self.dtype, self.hidden_size, self.proj_size or self.hidden_size
        kw = {}
        p = self.recurrent_dropout
        if self.training and p > 0:
            keep = self._mask_rng.random((B, Hout)) >= p
            kw["recurrent_mask"] = keep.astype(dt) * dt.type(1.0 / (1.0 - p))
        if self.zoneout > 0:
            if self.training:
                kw["zoneout"] = (self._mask_rng.random((T, B, Hout)) < self.zoneout).astype(dt)
                if self._has_c:
                    kw["zoneout_c"] = (self._mask_rng.random((T, B, H)) < self.zoneout).astype(dt)
            else:
                kw.update(zoneout_expectation(self._cell, self.zoneout, T, B, Hout, H, dt))
        return kw

    def _call_options(self):
        """The cell's keyword options of a functional forward call (beyond lengths, reverse)."""
        if self._cell == "gru":
            return {"linear_before_reset": self.linear_before_reset}
        if self._cell == "rnn":
            return {"nonlinearity": self.nonlinearity}
        return {}

    def _run_forward(self, x, layer, d, h0, c0, lengths, options):
        """One direction's functional forward; ``options``: its keyword arguments of section
        11 (layer norm, masks, resets), only those in use."""
        w_ih, w_hh, b_ih, b_hh, w_hr, w_peep, _ = self._weights(layer, d)
        kw = {"lengths": lengths, "reverse": bool(d), **self._call_options(), **options}
        if self._cell == "lstm":
            out = self._fwd(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep=w_peep, w_proj=w_hr, **kw)
            return out.y, out.h_n, out.c_n, out.cache
        out = self._fwd(x, w_ih, w_hh, b_ih, b_hh, h0, **kw)
        return out.y, out.h_n, None, out.cache

    def stream(self, batch_size=1, state=None, *, weight_dtype=None):
        """An inference-only snapshot of this layer, fed one step at a time: see
        ``rnnkit.stream.Stream`` (``s.step(x_t)``, ``s.run(x)``, ``s.state``, ``s.reset()``).
        ``weight_dtype="bfloat16"`` holds the weight matrices rounded to bfloat16."""
        from .stream import Stream

        return Stream(self, batch_size, state, weight_dtype=weight_dtype)

    def _run_backward(self, cache, dy, dh_n, dc_n):
        if self._cell == "lstm":
            return self._bwd(cache, dy, dh_n, dc_n)
        return self._bwd(cache, dy, dh_n)

    def _parallel(self, T, B, in_size):
        """Whether to run the two directions of a layer on two threads (see PARALLEL_MIN_WORK).
        The results are bitwise the same either way: each direction is one independent call."""
        if self.num_directions == 1:
            return False
        if self.parallel_directions is not None:
            return bool(self.parallel_directions)
        if self.backend != "native":
            return False  # NumPy holds the GIL too often for two threads to pay
        from ._runtime import get_num_threads

        if get_num_threads() != 1:
            return False  # the kernels already use the cores
        G, H, Hout = CELLS[self._cell].gates, self.hidden_size, self.proj_size or self.hidden_size
        return T * B * G * H * (in_size + Hout) >= PARALLEL_MIN_WORK

    # ------------------------------------------------------------ forward and backward

    def __call__(self, x, state=None, lengths=None, *, resets=None):
        """``y, state = m(x, state=None, lengths=None, *, resets=None)``; keeps the tape for
        ``m.backward``."""
        y, state, tape = self.forward(x, state, lengths, resets=resets)
        self._tape = tape
        return y, state

    def _check_resets(self, resets, T, B):
        """``resets``: None, or a bool array with x's first two axes, returned time-major
        ``[T, B]``; a bidirectional layer takes none (the reverse direction would read them
        backwards)."""
        if resets is None:
            return None
        layout = "[B, T]" if self.batch_first else "[T, B]"
        if self.bidirectional:
            raise ValueError(
                "resets: a bidirectional layer cannot reset its state (the reverse "
                "direction runs backwards through the boundary); expected None, "
                "got an array"
            )
        a = to_numpy("resets", resets)
        if a.dtype != np.bool_:
            raise TypeError(f"resets: expected a bool array {layout}, got dtype {a.dtype}")
        want = (B, T) if self.batch_first else (T, B)
        if a.shape != want:
            raise ValueError(
                f"resets: expected shape {_checks.fmt_shape(want)} {layout} (the "
                f"first two axes of x), got {_checks.fmt_shape(a.shape)}"
            )
        return np.ascontiguousarray(a.T if self.batch_first else a)

    def forward(self, x, state=None, lengths=None, *, resets=None):
        """``y, state, tape``: like calling the layer, but the tape is returned, not kept.

        ``x[T, B, I]`` (``[B, T, I]`` with batch_first) of the layer's dtype; ``state``: h
        (``(h, c)`` for the LSTM) ``[L*D, B, Hout]`` / ``[L*D, B, H]``, None: zeros (either
        half of an LSTM state may be None); ``lengths[B]`` integers in [0, T] or None;
        ``resets`` bool ``[T, B]`` (``[B, T]`` with batch_first) or None: True at ``[t, b]``
        zeroes sequence b's state (every layer's h, and c) before step t, and no gradient
        crosses that step.
        """
        fast = self._forward_plain(x, state, lengths, resets)
        if fast is not None:
            return fast
        xt = self._check_seq("x", x, self.input_size, "input_size")
        T, B = int(xt.shape[0]), int(xt.shape[1])
        parts = self._check_state("state", state, B)
        lengths = _checks.check_lengths(lengths, T, B)
        resets = self._check_resets(resets, T, B)
        D = self.num_directions
        Hout = self.proj_size or self.hidden_size
        h_n = np.empty(self._state_shapes(B)[0], self.dtype)
        c_n = np.empty(self._state_shapes(B)[1], self.dtype) if self._has_c else None
        masks, caches = [], []
        inp = xt
        for layer in range(self.num_layers):
            mask = None
            if layer > 0 and self.training and self.dropout > 0:
                keep = self._dropout_rng.random(inp.shape) >= self.dropout
                mask = keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - self.dropout))
                inp = inp * mask
            args = []
            for d in range(D):
                i = layer * D + d
                h0 = None if parts is None or parts[0] is None else parts[0][i]
                c0 = None
                if self._has_c and parts is not None and parts[1] is not None:
                    c0 = parts[1][i]
                options = {**self._ln_weights(layer, d), **self._cell_masks(T, B)}
                if resets is not None:
                    options["resets"] = resets
                args.append((inp, layer, d, h0, c0, lengths, options))
            outs = run_directions(self._parallel(T, B, inp.shape[2]), self._run_forward, args)
            for d, (_, hn_d, cn_d, _) in enumerate(outs):
                h_n[layer * D + d] = hn_d
                if c_n is not None:
                    c_n[layer * D + d] = cn_d
            masks.append(mask)
            caches.append(tuple(o[3] for o in outs))
            inp = outs[0][0] if D == 1 else np.concatenate([o[0] for o in outs], axis=2)
        y = inp
        if self.batch_first:
            y = np.ascontiguousarray(np.swapaxes(y, 0, 1))
        assert y.shape[-1] == D * Hout
        state_out = (h_n, c_n) if self._has_c else h_n
        return y, state_out, LayerTape(tuple(masks), tuple(caches), T, B)

    def _forward_plain(self, x, state, lengths, resets):
        """``forward``'s result for a plain call, without the general machinery (which cost a
        T=1 call 5x its functional calls, issue 13); None for any other call, which then takes
        the general path (and its checks and errors).

        Plain: x an exact ndarray ``[T, B, I]`` of the layer's dtype (time-major), ``state``
        None or exact ndarrays of the state's shapes (a tuple for the LSTM), no lengths or
        resets, one direction, no projection, peepholes, layer norm or zoneout, and no dropout
        of any kind in training. Each layer then runs the functional call the general path
        makes, with the same arguments."""
        if (
            lengths is not None
            or resets is not None
            or type(x) is not np.ndarray
            or self.batch_first
            or self.bidirectional
            or self.proj_size
            or self.peephole
            or self.layer_norm
            or self.zoneout
            or (self.training and (self.dropout or self.recurrent_dropout))
        ):
            return None
        dt = self.dtype
        if x.dtype != dt or x.ndim != 3 or x.shape[2] != self.input_size:
            return None
        T, B = x.shape[0], x.shape[1]
        shape = (self.num_layers, B, self.hidden_size)
        has_c = self._has_c
        h = c = None
        if state is not None:
            if has_c:
                if type(state) is not tuple or len(state) != 2:
                    return None
                h, c = state
            else:
                h = state
            for part in (h, c):
                if part is not None and (
                    type(part) is not np.ndarray or part.dtype != dt or part.shape != shape
                ):
                    return None
        p, opts, L = self._params, self._call_options(), self.num_layers
        outs = []
        inp = x
        for layer, (ki, kh, kbi, kbh) in enumerate(_param_keys(L)):
            h0 = None if h is None else h[layer]
            if has_c:
                c0 = None if c is None else c[layer]
                out = self._fwd(inp, p[ki], p[kh], p.get(kbi), p.get(kbh), h0, c0)
            else:
                out = self._fwd(inp, p[ki], p[kh], p.get(kbi), p.get(kbh), h0, **opts)
            outs.append(out)
            inp = out.y
        if L == 1:  # the functional call's fresh h_n (c_n) seen as [1, B, H]: no copy
            h_n = outs[0].h_n[None]
            c_n = outs[0].c_n[None] if has_c else None
        else:
            h_n = np.stack([o.h_n for o in outs])
            c_n = np.stack([o.c_n for o in outs]) if has_c else None
        caches = tuple((o.cache,) for o in outs)
        tape = tuple.__new__(LayerTape, ((None,) * L, caches, T, B))
        return inp, ((h_n, c_n) if has_c else h_n), tape

    def backward(self, dy=None, dstate=None, tape=None):
        """``dx, dstate``: the gradients of the input and the initial state of a forward.

        ``dy`` (layout of y) and ``dstate`` (structure of the state; either half of an LSTM
        dstate may be None) default to zeros. Parameter gradients are accumulated into
        ``m.grads`` in place. Without ``tape``, uses the tape of the last ``m(x)`` call.
        """
        tape = self._tape_or_kept(tape)
        if not isinstance(tape, LayerTape):
            raise TypeError(f"tape: expected a LayerTape (from forward), got {type(tape).__name__}")
        T, B, D = tape.T, tape.B, self.num_directions
        if len(tape.caches) != self.num_layers or any(len(c) != D for c in tape.caches):
            raise ValueError(
                f"tape: expected {self.num_layers} layers of {D} direction(s) (a "
                f"tape of this layer), got {[len(c) for c in tape.caches]}"
            )
        Hout = self.proj_size or self.hidden_size
        if dy is None:
            dyt = np.zeros((T, B, D * Hout), self.dtype)
        else:
            dyt = self._check_seq("dy", dy, D * Hout, "the layer's output_size")
            if dyt.shape[:2] != (T, B):
                want = (B, T, D * Hout) if self.batch_first else (T, B, D * Hout)
                raise ValueError(
                    f"dy: expected shape {_checks.fmt_shape(want)}, "
                    f"got {_checks.fmt_shape(np.shape(dy))}"
                )
        parts = self._check_state("dstate", dstate, B) or [None] * len(self._state_shapes(B))
        shapes = self._state_shapes(B)
        dh0 = np.zeros(shapes[0], self.dtype)
        dc0 = np.zeros(shapes[1], self.dtype) if self._has_c else None
        dinp = dyt
        for layer in reversed(range(self.num_layers)):
            caches = tape.caches[layer]
            args = []
            for d in range(D):
                i = layer * D + d
                dy_d = (
                    dinp if D == 1 else np.ascontiguousarray(dinp[..., d * Hout : (d + 1) * Hout])
                )
                dh = None if parts[0] is None else parts[0][i]
                dc = None if not self._has_c or parts[1] is None else parts[1][i]
                args.append((caches[d], dy_d, dh, dc))
            in_size = caches[0].x.shape[2]
            grads = run_directions(self._parallel(T, B, in_size), self._run_backward, args)
            dx = None
            for d, g in enumerate(grads):  # fixed order: bitwise the same sequential or not
                self._accumulate(layer, d, g)
                dh0[layer * D + d] = g.dh0
                if dc0 is not None:
                    dc0[layer * D + d] = g.dc0
                dx = g.dx if dx is None else dx + g.dx
            mask = tape.masks[layer]
            dinp = dx if mask is None else dx * mask
        dx = np.ascontiguousarray(np.swapaxes(dinp, 0, 1)) if self.batch_first else dinp
        return dx, ((dh0, dc0) if self._has_c else dh0)

    def _accumulate(self, layer, d, g):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        pairs = [
            ("weight_ih", g.dw_ih),
            ("weight_hh", g.dw_hh),
            ("bias_ih", g.db_ih),
            ("bias_hh", g.db_hh),
        ]
        if self._cell == "lstm":
            pairs += [("weight_hr", g.dw_proj), ("weight_peep", g.dw_peep)]
        pairs += [(base, getattr(g, "d" + base, None)) for base in self._ln_names]
        for base, grad in pairs:
            if grad is not None:
                self.grads[base + sfx] += grad


class RNN(_Recurrent):
    """Elman RNN layers, ``h_t = act(x_t w_ih^T + b_ih + h w_hh^T + b_hh)`` (tanh or relu),
    shaped like ``torch.nn.RNN``. See the module docstring."""

    _cell = "rnn"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        *,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        layer_norm=False,
        zoneout=0.0,
        recurrent_dropout=0.0,
        dtype="float32",
        backend="native",
        seed=None,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            nonlinearity=nonlinearity,
            layer_norm=layer_norm,
            zoneout=zoneout,
            recurrent_dropout=recurrent_dropout,
            dtype=dtype,
            backend=backend,
            seed=seed,
        )

    def _extra_config(self):
        return {"nonlinearity": self.nonlinearity}


class LSTM(_Recurrent):
    """LSTM layers shaped like ``torch.nn.LSTM`` (``proj_size`` included), with optional
    peepholes (``weight_peep_l{k}`` ``[3, H]``). See the module docstring."""

    _cell = "lstm"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        *,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        peephole=False,
        layer_norm=False,
        zoneout=0.0,
        recurrent_dropout=0.0,
        dtype="float32",
        backend="native",
        seed=None,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            peephole=peephole,
            layer_norm=layer_norm,
            zoneout=zoneout,
            recurrent_dropout=recurrent_dropout,
            dtype=dtype,
            backend=backend,
            seed=seed,
        )

    def _extra_config(self):
        return {"proj_size": self.proj_size, "peephole": self.peephole}


class GRU(_Recurrent):
    """GRU layers shaped like ``torch.nn.GRU``; ``linear_before_reset=False`` gives the
    Cho et al. form (ONNX's default), which PyTorch lacks. See the module docstring."""

    _cell = "gru"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        *,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        linear_before_reset=True,
        layer_norm=False,
        zoneout=0.0,
        recurrent_dropout=0.0,
        dtype="float32",
        backend="native",
        seed=None,
    ):
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            linear_before_reset=linear_before_reset,
            layer_norm=layer_norm,
            zoneout=zoneout,
            recurrent_dropout=recurrent_dropout,
            dtype=dtype,
            backend=backend,
            seed=seed,
        )

    def _extra_config(self):
        return {"linear_before_reset": self.linear_before_reset}


_CLASSES = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def zoneout_expectation(cell, p, T, B, Hout, H, dtype):
    """The eval-mode zoneout keyword arguments of one call: the constant ``p`` (the
    expectation of the training mask) as ``zoneout[T, B, Hout]`` and, for the LSTM,
    ``zoneout_c[T, B, H]``; {} when ``p`` is 0. Streams use it too."""
    if not p:
        return {}
    kw = {"zoneout": np.full((T, B, Hout), p, dtype)}
    if CELLS[cell].cell_state:
        kw["zoneout_c"] = np.full((T, B, H), p, dtype)
    return kw


def load(path, *, backend=None):
    """A layer saved with ``m.save(path)``: same class, configuration and parameters
    (``backend`` overrides the saved one). The layer starts in training mode. ``path``
    without its ``.npz`` suffix is found too. A damaged or forged file is a ValueError
    (``FileFormatError``) naming the file, raised before anything large is allocated."""
    import os

    from ._files import FileFormatError, NpzReader

    if not os.path.exists(path) and os.path.exists(str(path) + ".npz"):
        path = str(path) + ".npz"  # NumPy's savez habit of adding the suffix
    with NpzReader(path, "rnnkit layer file") as f:
        if "__config__" not in f.members:
            raise f.not_a("no __config__ entry")
        config = f.json("__config__")
        kind = config.pop("type", None)
        if kind not in _CLASSES:
            raise f.error(f"unknown layer type {kind!r}, expected one of {sorted(_CLASSES)}")
        _check_members(f, _CLASSES[kind], config)
        arrays = {k: f.array(k) for k in f.members if k != "__config__"}
    if backend is not None:
        config["backend"] = backend
    try:
        layer = _CLASSES[kind](**config)
        layer.load_state_dict(arrays)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{path}: rnnkit layer file: invalid config ({e})") from None
    return layer


def _check_members(f, cls, config):
    """The file's declared arrays must be exactly the parameters its config makes."""
    try:
        sizes = [
            check_int(n, config.get(n, d), lo)
            for n, d, lo in (
                ("input_size", None, 1),
                ("hidden_size", None, 1),
                ("num_layers", 1, 1),
                ("proj_size", 0, 0),
            )
        ]
        dtype = check_dtype_arg(config.get("dtype", "float32"))
        flags = {
            n: _checks.check_flag(n, config.get(n, d))
            for n, d in (
                ("bias", True),
                ("bidirectional", False),
                ("peephole", False),
                ("layer_norm", False),
            )
        }
    except (TypeError, ValueError) as e:
        raise f.error(f"invalid config ({e})") from None
    left = f.check_params(param_shapes(cls._cell, *sizes[:3], proj_size=sizes[3], **flags), dtype)
    left = [k for k in left if k != "__config__"]
    if left:
        raise f.error(f"unexpected entries {left[:5]}")
