"""What every rnnkit layer shares (RNN/LSTM/GRU, Linear, Embedding): its parameters and their
gradients, train/eval mode, the tape kept by ``__call__``, and state dicts.

``_params`` and ``grads`` map the same names to arrays. Both are updated IN PLACE (backward
adds into ``grads``, optimizers write into the parameters, ``load_state_dict`` copies into
them), so references held by an optimizer or a tape stay valid.
"""

from __future__ import annotations

import weakref

import numpy as np

from . import _checks


def to_numpy(name, value):
    """A NumPy array for an array, an array-like or a torch tensor (detached, on the CPU),
    its dtype kept. torch is never imported here."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return _checks.as_array(name, value)


# id(parameter array) -> (weak reference to its layer, name), so that an optimizer given
# ``layer.parameters()`` (PyTorch's idiom: bare arrays) finds each array's gradient.
_OWNERS: dict = {}


def _forget(ids):
    for i in ids:
        _OWNERS.pop(i, None)


def owner_of(param):
    """``(layer, name)`` for a parameter array of a live rnnkit layer, else None."""
    entry = _OWNERS.get(id(param))
    if entry is None:
        return None
    layer = entry[0]()
    if layer is None or layer._params.get(entry[1]) is not param:
        return None
    return layer, entry[1]


def check_dtype_arg(dtype):
    """A layer's ``dtype`` argument: float32 or float64 (a name, a NumPy dtype or type)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from None
    if dt not in _checks.FLOAT_DTYPES:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dt}")
    return dt


def check_int(name, value, low):
    """A size argument: a Python or NumPy integer (not a bool) >= low."""
    value = _checks.check_number(name, value, integer=True)
    if value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value}")
    return int(value)


class Module:
    """Base class: a subclass fills ``self._params`` (through ``_add_param`` or directly, then
    ``_init_grads``) in ``__init__`` after calling ``Module.__init__``.

    A container (``rnnkit.charlm.CharLM``) adds sub-layers with ``_add_module(name, m)``:
    their parameters and gradients appear as ``"name.param"``, and ``zero_grad``, ``train``,
    ``eval``, ``state_dict`` and ``load_state_dict`` reach them.
    """

    def __init__(self):
        self.training = True
        self._tape = None
        self._params: dict[str, np.ndarray] = {}
        self._modules: dict[str, Module] = {}
        self.grads: dict[str, np.ndarray] = {}

    def _add_module(self, name, module):
        self._modules[name] = module
        return module

    @property
    def grads(self):
        """{name: gradient array}: this layer's own, then its sub-layers' as "sub.name"."""
        if not self._modules:
            return self._grads
        out = dict(self._grads)
        for prefix, m in self._modules.items():
            out.update((f"{prefix}.{n}", g) for n, g in m.grads.items())
        return out

    @grads.setter
    def grads(self, value):
        self._grads = value

    def _init_grads(self):
        self.grads = {n: np.zeros_like(p) for n, p in self._params.items()}
        for n in self._params:
            self._register(n)

    def _register(self, name):
        """Lets optimizers find ``grads[name]`` from the bare parameter array."""
        i = id(self._params[name])
        _OWNERS[i] = (weakref.ref(self), name)
        weakref.finalize(self, _forget, (i,))

    def _tape_or_kept(self, tape):
        """The explicit tape if given, else the one the last ``__call__`` kept."""
        if tape is not None:
            return tape
        if self._tape is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward: no tape; call the layer "
                "first or pass the tape that forward returned"
            )
        return self._tape

    def named_parameters(self):
        """[(name, array)]: the live parameter arrays (optimizers update them in place)."""
        out = []
        for n, p in self._params.items():
            if owner_of(p) is None:  # a copy (copy.deepcopy, pickle) was never registered
                self._register(n)
            out.append((n, p))
        for prefix, m in self._modules.items():
            out += [(f"{prefix}.{n}", p) for n, p in m.named_parameters()]
        return out

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        return int(sum(p.size for p in self.parameters()))

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def train(self, mode=True):
        self.training = bool(mode)
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        """{name: copy of the parameter}, in parameter order."""
        return {n: p.copy() for n, p in self.named_parameters()}

    def load_state_dict(self, state_dict):
        """Copies NumPy arrays or torch tensors into the existing parameters.

        Missing or unexpected names and shape mismatches are a ValueError, a dtype other
        than the layer's a TypeError, each naming the key. Nothing is copied unless all pass.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"state_dict: expected a mapping, got {type(state_dict).__name__}")
        own = dict(self.named_parameters())
        given = set(state_dict.keys())
        missing = [n for n in own if n not in given]
        unexpected = sorted(str(n) for n in given - set(own))
        if missing or unexpected:
            raise ValueError(f"state_dict: missing keys {missing}, unexpected keys {unexpected}")
        arrays = {}
        for name, p in own.items():
            a = to_numpy(f"state_dict[{name!r}]", state_dict[name])
            if a.shape != p.shape:
                raise ValueError(
                    f"state_dict[{name!r}]: expected shape "
                    f"{_checks.fmt_shape(p.shape)}, got {_checks.fmt_shape(a.shape)}"
                )
            if a.dtype != p.dtype:
                raise TypeError(
                    f"state_dict[{name!r}]: expected dtype {p.dtype} (the layer's "
                    f"dtype), got {a.dtype}"
                )
            arrays[name] = a
        for name, a in arrays.items():
            np.copyto(own[name], a)
