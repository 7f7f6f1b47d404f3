"""``rnnkit.torch.RNN``, ``LSTM``, ``GRU``: drop-ins for ``torch.nn.RNN``, ``LSTM``, ``GRU``.

They subclass ``torch.nn.RNNBase`` (not ``torch.nn.LSTM`` & co., which ``torch.compile``
refuses to trace), so the constructor arguments, their checks, the parameters (names, shapes,
order, initialisation from torch's generator), the attributes and the ``state_dict`` keys are
``torch.nn``'s own. Only ``forward`` is rnnkit's: each layer and direction is one call of a
custom operator (``rnnkit.torch._ops``), so forward and backward run on rnnkit's kernels.

Extras, keyword-only (with their defaults the modules compute exactly what ``torch.nn``
computes): ``peephole`` (LSTM; adds ``weight_peep_l{k}[_reverse]`` ``[3, H]``, rows
``p_i, p_f, p_o``, after torch's parameters, initialised like them), ``linear_before_reset``
(GRU; False is the Cho et al. form) and ``clip`` (every gate pre-activation clipped to
``[-clip, clip]``, ONNX's meaning), and the cell options of API.md section 11, which
``torch.nn`` has no equivalent of (their parity is with ``rnnkit.LSTM`` & co.):
``layer_norm`` (adds ``ln_ih_l{k}``, ``ln_hh_l{k}`` ``[2, G*H]`` and, LSTM, ``ln_c_l{k}``
``[2, H]``, ``_reverse`` for the second direction, after the other parameters; gain 1, bias
0), ``zoneout`` (rate in [0, 1]; the LSTM zones h and c) and ``recurrent_dropout`` (rate in
[0, 1)). In training the masks are drawn from torch's generator (0/1 zoneout masks,
recurrent masks scaled by 1/(1-p)); in eval zoneout is its expectation p and recurrent
dropout is off. ``forward(input, hx, *, resets=None)`` takes bool ``resets`` on the input's
first two axes (``[T]`` unbatched): the state is zeroed before the marked steps
(unidirectional modules, padded input only). With any option in use a layer direction runs
on ``rnnkit::<cell>_forward_opts``.

``forward(input, hx=None)`` takes what ``torch.nn`` takes: ``[T, B, I]`` (``[B, T, I]`` with
``batch_first``), unbatched ``[T, I]``, or a ``PackedSequence`` (sorted or not), and returns
``output, h_n`` (LSTM ``output, (h_n, c_n)``); a packed input gives a packed output with the
input's ``batch_sizes`` and indices. Packed sequences run on rnnkit's ``lengths``: the reverse
direction starts at each sequence's own last step, as in PyTorch.

Input checks (before any kernel, also under ``torch.compile``): tensors must be float32 or
float64 (else ``TypeError``; ``torch.nn`` would say ``ValueError``/``RuntimeError``) and on the
CPU (else ``ValueError``), of the parameters' dtype (``TypeError``), with the shapes
``torch.nn`` expects (``ValueError``); each message names the argument.
"""

import math
import numbers

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import _ops

__all__ = ["RNN", "LSTM", "GRU"]

_FLOATS = (torch.float32, torch.float64)


def _check_clip(clip):
    """None, or a positive finite float (ValueError / TypeError naming ``clip``)."""
    if clip is None:
        return None
    if isinstance(clip, bool) or not isinstance(clip, numbers.Real):
        raise TypeError(f"clip: expected a positive number or None, got {type(clip).__name__}")
    if not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip: expected a positive finite number or None, got {clip}")
    return float(clip)


def _check_tensor(name, t, dtype=None):
    """A float32/float64 CPU tensor (of ``dtype`` when given)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name}: expected dtype torch.float32 or torch.float64, got {t.dtype}")
    if t.device.type != "cpu":
        raise ValueError(f"{name}: expected a CPU tensor, got device {t.device}")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (the dtype of input), got {t.dtype}")


def _check_rate(name, value, closed):
    """A rate in [0, 1] (``closed``) or [0, 1), as a float."""
    want = "[0, 1]" if closed else "[0, 1)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number in {want}, got {type(value).__name__}")
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise ValueError(f"{name}: expected a number in {want}, got {value}")
    return float(value)


def _check_resets(resets, T, B, batch_first, batched, bidirectional, packed):
    """``resets`` as a time-major bool ``[T, B]`` tensor, or None."""
    if resets is None:
        return None
    if bidirectional:
        raise ValueError(
            "resets: a bidirectional module cannot reset its state (the reverse "
            "direction runs backwards through the boundary); expected None"
        )
    if packed:
        raise ValueError(
            "resets: not supported with a PackedSequence input; pass the padded "
            "tensor and its lengths"
        )
    if not isinstance(resets, torch.Tensor):
        raise TypeError(f"resets: expected a bool torch.Tensor, got {type(resets).__name__}")
    if resets.dtype != torch.bool:
        raise TypeError(f"resets: expected dtype torch.bool, got {resets.dtype}")
    want = ((B, T) if batch_first else (T, B)) if batched else (T,)
    _check_shape("resets", resets, want)
    if not batched:
        return resets.unsqueeze(1)
    return resets.transpose(0, 1).contiguous() if batch_first else resets


def _check_shape(name, t, shape):
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(t.shape)}")


class _RNNBase(nn.RNNBase):
    """The forward shared by the three modules; a subclass supplies ``_run`` (one layer,
    one direction) and the number of state tensors."""

    _lstm = False

    def __init__(
        self,
        mode,
        input_size,
        hidden_size,
        num_layers,
        bias,
        batch_first,
        dropout,
        bidirectional,
        proj_size,
        device,
        dtype,
        clip,
        layer_norm=False,
        zoneout=0.0,
        recurrent_dropout=0.0,
    ):
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device=device,
            dtype=dtype,
        )
        for name in self._flat_weights_names:
            p = getattr(self, name)
            if p.dtype not in _FLOATS:
                raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {p.dtype}")
        self.clip = _check_clip(clip)
        if not isinstance(layer_norm, bool):
            raise TypeError(f"layer_norm: expected a bool, got {type(layer_norm).__name__}")
        self.layer_norm = layer_norm
        self.zoneout = _check_rate("zoneout", zoneout, closed=True)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout, closed=False)

    def _add_layer_norm(self):
        """Registers the layer-norm parameters (gain 1, bias 0) after all the others."""
        G = {"LSTM": 4, "GRU": 3}.get(self.mode, 1)
        H = self.hidden_size
        widths = [("ln_ih", G * H), ("ln_hh", G * H)] + ([("ln_c", H)] if self._lstm else [])
        ref = self.weight_ih_l0
        for layer in range(self.num_layers):
            for d in range(2 if self.bidirectional else 1):
                for base, width in widths:
                    w = torch.zeros(2, width, device=ref.device, dtype=ref.dtype)
                    w[0] = 1
                    self.register_parameter(base + self._sfx(layer, d), nn.Parameter(w))

    def _options(self, layer, d, T, B, like, resets):
        """The section-11 inputs of one layer direction ({} when none is in use)."""
        s = self._sfx(layer, d)
        opts = {
            n: getattr(self, n + s)
            for n in ("ln_ih", "ln_hh", "ln_c")
            if getattr(self, n + s, None) is not None
        }
        H, Hout = self.hidden_size, self.proj_size or self.hidden_size
        p = self.recurrent_dropout
        if self.training and p > 0:
            keep = torch.rand(B, Hout, dtype=like.dtype) >= p
            opts["recurrent_mask"] = keep.to(like.dtype) / (1.0 - p)
        if self.zoneout > 0:
            if self.training:
                opts["zoneout"] = (torch.rand(T, B, Hout, dtype=like.dtype) < self.zoneout).to(
                    like.dtype
                )
            else:
                opts["zoneout"] = like.new_full((T, B, Hout), self.zoneout)
            if self._lstm:
                opts["zoneout_c"] = (
                    (torch.rand(T, B, H, dtype=like.dtype) < self.zoneout).to(like.dtype)
                    if self.training
                    else like.new_full((T, B, H), self.zoneout)
                )
        if resets is not None:
            opts["resets"] = resets
        return opts

    # ------------------------------------------------------------------ helpers

    def _sfx(self, layer, d):
        return f"_l{layer}" + ("_reverse" if d else "")

    def _weights(self, layer, d):
        """(w_ih, w_hh, b_ih, b_hh, w_hr, w_peep) of one layer and direction (None: absent)."""
        s = self._sfx(layer, d)
        return tuple(
            getattr(self, n + s, None)
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_peep")
        )

    def _check_parameters(self, dtype):
        for name, p in self.named_parameters(recurse=False):
            _check_tensor(name, p, dtype)

    def _check_hx(self, hx, B, dtype, batched):
        """hx as a list of time-major ``[L*D, B, .]`` tensors (h, and c for the LSTM)."""
        LD = self.num_layers * (2 if self.bidirectional else 1)
        Hout = self.proj_size or self.hidden_size
        if self._lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(
                    f"hx: expected a tuple (h_0, c_0) for the LSTM, got {type(hx).__name__}"
                )
            parts = [("hx[0]", hx[0], Hout), ("hx[1]", hx[1], self.hidden_size)]
        else:
            parts = [("hx", hx, Hout)]
        out = []
        for name, t, size in parts:
            _check_tensor(name, t, dtype)
            _check_shape(name, t, (LD, B, size) if batched else (LD, size))
            out.append(t if batched else t.unsqueeze(1))
        return out

    def extra_repr(self):
        s = super().extra_repr()
        for name, default in (
            ("peephole", False),
            ("linear_before_reset", True),
            ("clip", None),
            ("layer_norm", False),
            ("zoneout", 0.0),
            ("recurrent_dropout", 0.0),
        ):
            v = getattr(self, name, default)
            if v != default:
                s += f", {name}={v}"
        return s

    # ------------------------------------------------------------------ forward

    def forward(self, input, hx=None, *, resets=None):
        """``output, h_n`` (LSTM: ``output, (h_n, c_n)``), shaped like ``torch.nn``'s;
        ``resets``: see the module docstring."""
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            _check_tensor("input", input.data)
            # Pad in the packed (sorted) batch order; the states follow that order too.
            x, lengths = pad_packed_sequence(PackedSequence(input.data, input.batch_sizes))
            batched = True
        else:
            _check_tensor("input", input)
            if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
                raise ValueError(
                    f"input: expected a 3-D tensor (or 2-D, unbatched) with "
                    f"{self.input_size} features, got shape {tuple(input.shape)}"
                )
            batched = input.dim() == 3
            if not batched:
                x = input.unsqueeze(1)
            else:
                # Contiguous once here, not in each layer's forward and backward operator.
                x = input.transpose(0, 1).contiguous() if self.batch_first else input
        dtype = x.dtype
        self._check_parameters(dtype)
        B = x.shape[1]
        states = None if hx is None else self._check_hx(hx, B, dtype, batched)
        resets = _check_resets(
            resets, x.shape[0], B, self.batch_first, batched, self.bidirectional, packed
        )
        if packed and states is not None and input.sorted_indices is not None:
            states = [s.index_select(1, input.sorted_indices) for s in states]

        y, finals = self._layers(x, states, lengths, resets)

        finals = [torch.stack(f) for f in finals]
        if packed:
            if input.unsorted_indices is not None:
                finals = [f.index_select(1, input.unsorted_indices) for f in finals]
            data = pack_padded_sequence(y, lengths).data
            output = PackedSequence(
                data, input.batch_sizes, input.sorted_indices, input.unsorted_indices
            )
        elif not batched:
            output = y.squeeze(1)
            finals = [f.squeeze(1) for f in finals]
        else:
            output = y.transpose(0, 1).contiguous() if self.batch_first else y
        return output, (tuple(finals) if self._lstm else finals[0])

    def _layers(self, x, states, lengths, resets=None):
        """The stack: ``y[T, B, D*Hout]`` and, per state, the list of its ``L*D`` finals."""
        D = 2 if self.bidirectional else 1
        finals = [[] for _ in range(2 if self._lstm else 1)]
        inp = x
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                inp = nn.functional.dropout(inp, self.dropout, training=True)
            ys = []
            for d in range(D):
                k = layer * D + d
                init = [None] * len(finals) if states is None else [s[k] for s in states]
                opts = self._options(layer, d, inp.shape[0], inp.shape[1], inp, resets)
                if opts:
                    out = self._run_opts(inp, self._weights(layer, d), init, lengths, d == 1, opts)
                else:
                    out = self._run(inp, self._weights(layer, d), init, lengths, d == 1)
                ys.append(out[0])
                for f, s in zip(finals, out[1:]):
                    f.append(s)
            inp = ys[0] if D == 1 else torch.cat(ys, dim=2)
        return inp, finals

    def _run_opts(self, x, w, init, lengths, reverse, opts):
        """One layer direction with section-11 options, on ``rnnkit::<cell>_forward_opts``."""
        cell = {"LSTM": "lstm", "GRU": "gru"}.get(self.mode, "rnn")
        weights = dict(zip(("w_ih", "w_hh", "b_ih", "b_hh", "w_proj", "w_peep"), w))
        init = dict(zip(("h0", "c0"), init))
        if cell == "lstm":
            flags = (self.clip,)
        elif cell == "gru":
            flags = (self.linear_before_reset, self.clip)
        else:
            flags = (self.nonlinearity, self.clip)
        return _ops.with_options(cell, x, weights, init, lengths, reverse, opts, flags)


class RNN(_RNNBase):
    """Elman RNN on rnnkit's kernels, a drop-in for ``torch.nn.RNN`` (see the module doc)."""

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        device=None,
        dtype=None,
        *,
        clip=None,
        layer_norm=False,
        zoneout=0.0,
        recurrent_dropout=0.0,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
            clip,
            layer_norm,
            zoneout,
            recurrent_dropout,
        )
        if layer_norm:
            self._add_layer_norm()

    def _run(self, x, w, init, lengths, reverse):
        return _ops.rnn(
            x,
            w[0],
            w[1],
            w[2],
            w[3],
            init[0],
            nonlinearity=self.nonlinearity,
            clip=self.clip,
            lengths=lengths,
            reverse=reverse,
        )


class LSTM(_RNNBase):
    """LSTM on rnnkit's kernels, a drop-in for ``torch.nn.LSTM`` (``proj_size`` included),
    with optional peepholes and clip (see the module doc)."""

    _lstm = True

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        device=None,
        dtype=None,
        *,
        peephole=False,
        clip=None,
        layer_norm=False,
        zoneout=0.0,
        recurrent_dropout=0.0,
    ):
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
            clip,
            layer_norm,
            zoneout,
            recurrent_dropout,
        )
        if not isinstance(peephole, bool):
            raise TypeError(f"peephole: expected a bool, got {type(peephole).__name__}")
        self.peephole = peephole
        if peephole:
            k = 1.0 / math.sqrt(hidden_size)
            ref = self.weight_ih_l0
            for layer in range(self.num_layers):
                for d in range(2 if self.bidirectional else 1):
                    w = torch.empty(3, hidden_size, device=ref.device, dtype=ref.dtype)
                    nn.init.uniform_(w, -k, k)
                    self.register_parameter("weight_peep" + self._sfx(layer, d), nn.Parameter(w))
        if layer_norm:
            self._add_layer_norm()

    def _run(self, x, w, init, lengths, reverse):
        return _ops.lstm(
            x,
            w[0],
            w[1],
            w[2],
            w[3],
            init[0],
            init[1],
            w_peep=w[5],
            w_proj=w[4],
            clip=self.clip,
            lengths=lengths,
            reverse=reverse,
        )


class GRU(_RNNBase):
    """GRU on rnnkit's kernels, a drop-in for ``torch.nn.GRU``; ``linear_before_reset=False``
    gives the Cho et al. form (see the module doc)."""

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        device=None,
        dtype=None,
        *,
        linear_before_reset=True,
        clip=None,
        layer_norm=False,
        zoneout=0.0,
        recurrent_dropout=0.0,
    ):
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
            clip,
            layer_norm,
            zoneout,
            recurrent_dropout,
        )
        if not isinstance(linear_before_reset, bool):
            raise TypeError(
                f"linear_before_reset: expected a bool, got {type(linear_before_reset).__name__}"
            )
        self.linear_before_reset = linear_before_reset
        if layer_norm:
            self._add_layer_norm()

    def _run(self, x, w, init, lengths, reverse):
        return _ops.gru(
            x,
            w[0],
            w[1],
            w[2],
            w[3],
            init[0],
            linear_before_reset=self.linear_before_reset,
            clip=self.clip,
            lengths=lengths,
            reverse=reverse,
        )
