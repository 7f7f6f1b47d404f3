"""What the optimizers, the clipping functions and the history share: finding each
parameter's gradient, and the checks of their number arguments."""

from __future__ import annotations

import numpy as np

from .._checks import FLOAT_DTYPES, check_number, fmt_shape
from .._module import owner_of

# ---------------------------------------------------------------- params


def _is_model(obj):
    return hasattr(obj, "named_parameters") and hasattr(obj, "grads")


class _Slot:
    """One parameter: a live array and where its gradient comes from."""

    __slots__ = ("name", "param", "_model", "_grad")

    def __init__(self, name, param, model=None, grad=None):
        self.name, self.param, self._model, self._grad = name, param, model, grad

    @property
    def grad(self):
        return self._model.grads.get(self.name) if self._model is not None else self._grad


def _check_param(name, p):
    if not isinstance(p, np.ndarray):
        raise TypeError(
            f"{name}: expected a NumPy array (updated in place), got {type(p).__name__}"
        )
    if p.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {p.dtype}")
    if not p.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array (it is updated in place)")


def _model_slots(model, prefix=""):
    slots = []
    for name, p in model.named_parameters():
        _check_param(f"params: {prefix}{name}", p)
        slots.append(_Slot(name, p, model=model))
    return slots


def _collect_params(params):
    """-> [_Slot] from a model, a list of models, a list of (param, grad) pairs, or a list of
    parameter arrays of rnnkit layers (``layer.parameters()``: their grads are the layer's)."""
    if _is_model(params):
        slots = _model_slots(params)
    else:
        if isinstance(params, np.ndarray) or not hasattr(params, "__iter__"):
            raise TypeError(
                "params: expected a model (named_parameters() and grads), a list "
                f"of models or a list of (param, grad) pairs, got "
                f"{type(params).__name__}"
            )
        slots = []
        for i, item in enumerate(list(params)):
            if _is_model(item):
                slots += _model_slots(item, prefix=f"{i}.")
            elif isinstance(item, np.ndarray):  # PyTorch's idiom: layer.parameters()
                found = owner_of(item)
                if found is None:
                    raise TypeError(
                        f"params[{i}]: an array that is not a parameter of a live "
                        "rnnkit layer, so its gradient is unknown; pass the layer, "
                        "or (param, grad) pairs"
                    )
                layer, name = found
                slots.append(_Slot(name, item, model=layer))
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                p, g = item
                _check_param(f"params[{i}][0]", p)
                if g is not None:
                    if not isinstance(g, np.ndarray):
                        raise TypeError(
                            f"params[{i}][1]: expected a NumPy array or None, got "
                            f"{type(g).__name__}"
                        )
                    if g.shape != p.shape:
                        raise ValueError(
                            f"params[{i}][1]: expected shape {fmt_shape(p.shape)} "
                            f"(the parameter's), got {fmt_shape(g.shape)}"
                        )
                slots.append(_Slot(str(i), p, grad=g))
            else:
                raise TypeError(
                    f"params[{i}]: expected a model or a (param, grad) pair, got "
                    f"{type(item).__name__}"
                )
    if not slots:
        raise ValueError("params: expected at least one parameter, got an empty list")
    if len({id(s.param) for s in slots}) != len(slots):
        raise ValueError("params: a parameter array appears more than once")
    return slots


# ---------------------------------------------------------------- hyper-parameters


def _number(name, value):
    return check_number(name, value)


def _nonneg(name, value):
    v = _number(name, value)
    if not v >= 0:  # also catches NaN
        raise ValueError(f"{name}: expected a number >= 0, got {value}")
    return v


def _betas(value):
    try:
        b1, b2 = value
    except (TypeError, ValueError):
        raise TypeError(f"betas: expected a pair (beta1, beta2), got {value!r}") from None
    out = []
    for i, b in enumerate((b1, b2)):
        v = _number(f"betas[{i}]", b)
        if not 0.0 <= v < 1.0:
            raise ValueError(f"betas[{i}]: expected a number in [0, 1), got {b}")
        out.append(v)
    return tuple(out)


def _flag(name, value):
    """A bool option (True/False, not 0/1 or "yes": a checkpoint may hold anything)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)
