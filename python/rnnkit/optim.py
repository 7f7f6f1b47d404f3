"""Optimizers, gradient clipping and a gradient-norm history, step for step like torch.optim.

Each optimizer updates parameter arrays IN PLACE (layers and optimizers share the arrays)
from the gradient arrays the layers' ``backward`` fills. ``params`` is any of:

- a model: anything with ``named_parameters()`` and a ``grads`` dict (rnnkit layers,
  ``rnnkit.Linear``, ``rnnkit.Embedding``, or your own wrapper);
- a list of models;
- a list of ``(param, grad)`` array pairs;
- a list of parameter arrays of rnnkit layers, PyTorch's idiom ``Adam(m.parameters())``:
  each array's gradient is its layer's ``grads`` entry.

For models the gradient arrays are looked up in ``model.grads`` at every step, so a model
that replaces its grad arrays (rather than zeroing them) still works. The per-parameter
state (momentum buffers, moments, step counts) is kept in ``opt.state``, one dict per
parameter in order, as PyTorch does; a parameter whose grad is None is skipped.

The update formulas are PyTorch's single-tensor CPU implementations (torch/optim/*.py), in
the same order of operations, so float64 runs agree with torch to rounding.
No param groups: one set of hyper-parameters per optimizer, each a settable attribute
(``opt.lr = ...`` for a schedule).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._checks import FLOAT_DTYPES, check_number, fmt_shape
from ._module import owner_of

__all__ = ["Optimizer", "SGD", "Adagrad", "Adam", "AdamW", "clip_grad_norm", "clip_grad_value",
           "GradNormHistory"]


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
        raise TypeError(f"{name}: expected a NumPy array (updated in place), got "
                        f"{type(p).__name__}")
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
            raise TypeError("params: expected a model (named_parameters() and grads), a list "
                            f"of models or a list of (param, grad) pairs, got "
                            f"{type(params).__name__}")
        slots = []
        for i, item in enumerate(list(params)):
            if _is_model(item):
                slots += _model_slots(item, prefix=f"{i}.")
            elif isinstance(item, np.ndarray):  # PyTorch's idiom: layer.parameters()
                found = owner_of(item)
                if found is None:
                    raise TypeError(f"params[{i}]: an array that is not a parameter of a live "
                                    "rnnkit layer, so its gradient is unknown; pass the layer, "
                                    "or (param, grad) pairs")
                layer, name = found
                slots.append(_Slot(name, item, model=layer))
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                p, g = item
                _check_param(f"params[{i}][0]", p)
                if g is not None:
                    if not isinstance(g, np.ndarray):
                        raise TypeError(f"params[{i}][1]: expected a NumPy array or None, got "
                                        f"{type(g).__name__}")
                    if g.shape != p.shape:
                        raise ValueError(f"params[{i}][1]: expected shape {fmt_shape(p.shape)} "
                                         f"(the parameter's), got {fmt_shape(g.shape)}")
                slots.append(_Slot(str(i), p, grad=g))
            else:
                raise TypeError(f"params[{i}]: expected a model or a (param, grad) pair, got "
                                f"{type(item).__name__}")
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


class Optimizer:
    """Base class: parameters, per-parameter state, zero_grad, state dicts."""

    _hyper: tuple = ()  # names of the hyper-parameters, saved in state_dict

    def __init__(self, params, lr):
        self._slots = _collect_params(params)
        self.lr = lr
        self.state: list[dict[str, Any]] = [{} for _ in self._slots]

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _nonneg("lr", value)

    @property
    def params(self):
        """The live parameter arrays, in order."""
        return [s.param for s in self._slots]

    def zero_grad(self):
        """Fills every gradient array with 0 (in place: layers keep their references)."""
        for s in self._slots:
            g = s.grad
            if g is not None:
                g.fill(0)

    def step(self):
        for i, s in enumerate(self._slots):
            g = s.grad
            if g is None:
                continue
            if g.shape != s.param.shape:
                raise ValueError(f"grad of {s.name}: expected shape {fmt_shape(s.param.shape)}, "
                                 f"got {fmt_shape(g.shape)}")
            if g.dtype != s.param.dtype:
                raise TypeError(f"grad of {s.name}: expected dtype {s.param.dtype} (the "
                                f"parameter's), got {g.dtype}")
            self._update(s.param, g, self.state[i])

    def _update(self, p, g, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self):
        """{"type", "hyper": {name: value}, "names": [...], "state": [{key: copy}, ...]}."""
        hyper = {name: getattr(self, name) for name in ("lr",) + self._hyper}
        state = [{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
                 for st in self.state]
        return {"type": type(self).__name__, "hyper": hyper,
                "names": [s.name for s in self._slots], "state": state}

    def load_state_dict(self, d):
        """Restores hyper-parameters and state (copies), checked against these parameters."""
        if d.get("type") != type(self).__name__:
            raise ValueError(f"state_dict: expected type {type(self).__name__}, "
                             f"got {d.get('type')!r}")
        state = d["state"]
        if len(state) != len(self._slots):
            raise ValueError(f"state_dict: expected state for {len(self._slots)} parameters, "
                             f"got {len(state)}")
        for s, st in zip(self._slots, state):
            for k, v in st.items():
                if isinstance(v, np.ndarray) and v.shape != s.param.shape:
                    raise ValueError(f"state_dict: {s.name}.{k}: expected shape "
                                     f"{fmt_shape(s.param.shape)}, got {fmt_shape(v.shape)}")
        for name, value in d["hyper"].items():
            setattr(self, name, value)
        self.state = [{k: (np.array(v, dtype=s.param.dtype) if isinstance(v, np.ndarray) else v)
                       for k, v in st.items()} for s, st in zip(self._slots, state)]

    def __repr__(self):
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in ("lr",) + self._hyper)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (torch.optim.SGD).

        g = grad (+ weight_decay * p);  g = -g if maximize
        buf = g (first step)  or  momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov)  or  buf
        p -= lr * g
    """

    _hyper = ("momentum", "dampening", "weight_decay", "nesterov", "maximize")

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        self.momentum = _nonneg("momentum", momentum)
        self.dampening = _number("dampening", dampening)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        self.nesterov, self.maximize = bool(nesterov), bool(maximize)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"nesterov: requires momentum > 0 and dampening == 0, got "
                             f"momentum={momentum}, dampening={dampening}")
        super().__init__(params, lr)

    def _update(self, p, g, state):
        d_p = -g if self.maximize else g
        if self.weight_decay != 0:
            d_p = d_p + self.weight_decay * p
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d_p.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * d_p
            d_p = d_p + self.momentum * buf if self.nesterov else buf
        p -= self.lr * d_p


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad).

        step += 1;  g = grad (+ weight_decay * p);  g = -g if maximize
        clr = lr / (1 + (step - 1) * lr_decay)
        sum += g * g
        p -= clr * g / (sqrt(sum) + eps)
    """

    _hyper = ("lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False):
        self.lr_decay = _nonneg("lr_decay", lr_decay)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        self.initial_accumulator_value = _nonneg("initial_accumulator_value",
                                                 initial_accumulator_value)
        self.eps = _nonneg("eps", eps)
        self.maximize = bool(maximize)
        super().__init__(params, lr)

    def _update(self, p, g, state):
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p, self.initial_accumulator_value)
        state["step"] += 1
        g = -g if self.maximize else g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        clr = self.lr / (1 + (state["step"] - 1) * self.lr_decay)
        state["sum"] += g * g
        std = np.sqrt(state["sum"]) + self.eps
        p -= clr * (g / std)


class Adam(Optimizer):
    """Adam (torch.optim.Adam), with ``amsgrad``; ``AdamW`` decouples the weight decay.

        step += 1;  g = grad (+ weight_decay * p, Adam only);  g = -g if maximize
        p *= 1 - lr * weight_decay                          (AdamW only)
        m += (1 - beta1) * (g - m);   v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v)                                 (amsgrad: use vmax for v)
        p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
    """

    _hyper = ("betas", "eps", "weight_decay", "amsgrad", "maximize")
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        self.betas = _betas(betas)
        self.eps = _nonneg("eps", eps)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        self.amsgrad, self.maximize = bool(amsgrad), bool(maximize)
        super().__init__(params, lr)

    def __setattr__(self, name, value):  # keep validation when a checkpoint restores betas
        if name == "betas":
            value = _betas(value)
        super().__setattr__(name, value)

    def _update(self, p, g, state):
        beta1, beta2 = self.betas
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        step = state["step"]
        g = -g if self.maximize else g
        if self.weight_decay != 0:
            if self._decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)  # torch's lerp(m, g, 1 - beta1) for a weight < 0.5
        v *= beta2
        v += (1 - beta2) * (g * g)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = math.sqrt(bias_correction2)
        if self.amsgrad:
            vmax = state.setdefault("max_exp_avg_sq", np.zeros_like(p))
            np.maximum(vmax, v, out=vmax)
            v = vmax
        denom = np.sqrt(v) / bias_correction2_sqrt + self.eps
        p -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): ``p *= 1 - lr * weight_decay``
    before the Adam step, instead of adding ``weight_decay * p`` to the gradient."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


# ---------------------------------------------------------------- clipping


def _grad_items(grads, what="grads"):
    """-> [(name, array)] from a model, a list of models, a dict, an array or a list of arrays."""
    if _is_model(grads):
        items = list(grads.grads.items())
    elif isinstance(grads, dict):
        items = list(grads.items())
    elif isinstance(grads, np.ndarray):
        items = [("0", grads)]
    elif hasattr(grads, "__iter__"):
        items = []
        for i, g in enumerate(list(grads)):
            if _is_model(g):
                items += [(f"{i}.{k}", v) for k, v in g.grads.items()]
            else:
                items.append((str(i), g))
    else:
        raise TypeError(f"{what}: expected a model, a dict of arrays or a list of arrays, got "
                        f"{type(grads).__name__}")
    out = []
    for name, g in items:
        if g is None:
            continue
        if not isinstance(g, np.ndarray):
            raise TypeError(f"{what}: {name}: expected a NumPy array, got {type(g).__name__}")
        if g.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{what}: {name}: expected dtype float32 or float64, got {g.dtype}")
        out.append((name, g))
    return out


def _norm_type(norm_type):
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        return math.inf
    v = _number("norm_type", norm_type)
    if not v > 0:
        raise ValueError(f"norm_type: expected a number > 0 or inf, got {norm_type}")
    return v


def _vector_norm(g, p):
    """||g||_p in g's dtype (torch.linalg.vector_norm); 0 for an empty array."""
    a = np.abs(g.ravel())
    if a.size == 0:
        return g.dtype.type(0)
    if p == math.inf:
        return a.max()
    if p == 2:
        return np.sqrt(np.dot(a, a))
    if p == 1:
        return a.sum()
    return np.sum(a ** p) ** (1 / p)


def grad_norms(grads, norm_type=2.0):
    """-> (total, {name: norm}): the norm of each gradient and of all of them together."""
    p = _norm_type(norm_type)
    per = {name: float(_vector_norm(g, p)) for name, g in _grad_items(grads)}
    total = float(_vector_norm(np.array(list(per.values()), np.float64), p)) if per else 0.0
    return total, per


def clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scales all gradients in place so that their joint norm is at most ``max_norm``.

    PyTorch's ``clip_grad_norm_``: ``total`` = the ``norm_type`` norm of the per-array norms
    (``inf`` = the largest absolute entry); ``coef = max_norm / (total + 1e-6)``; the
    gradients are multiplied by ``coef`` only when it is below 1 (a NaN total makes them
    NaN, as in PyTorch). ``error_if_nonfinite``: a NaN or Inf total is a RuntimeError and
    nothing is changed. Returns the total norm before clipping, as a float.
    """
    max_norm = _nonneg("max_norm", max_norm)
    items = _grad_items(grads)
    p = _norm_type(norm_type)
    if not items:
        return 0.0
    norms = np.array([_vector_norm(g, p) for _, g in items], np.float64)
    total = float(_vector_norm(norms, p))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients is non-finite "
                           f"({total}), so it cannot be clipped; pass error_if_nonfinite=False "
                           "to clip anyway")
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # below 1, or NaN
        with np.errstate(invalid="ignore"):  # inf * 0 = NaN, as in PyTorch
            for _, g in items:
                g *= g.dtype.type(coef)
    return total


def clip_grad_value(grads, clip_value):
    """Clamps every gradient entry to ``[-clip_value, clip_value]`` in place (NaN stays NaN)."""
    v = _nonneg("clip_value", clip_value)
    for _, g in _grad_items(grads):
        np.clip(g, -v, v, out=g)


# ---------------------------------------------------------------- gradient-norm history


class GradNormHistory:
    """Per-step gradient norms, to see vanishing or exploding gradients.

    Call ``record(model_or_grads)`` once per step, after backward and before clipping.
    A step is *vanishing* when its total norm is below ``vanishing`` (1e-6), *exploding*
    when it is above ``exploding`` (1e3) or is not finite, and, if ``ratio`` is given
    (e.g. 10), when it is above ``ratio`` times the median of the previous ``window`` steps
    (after at least 5 steps). The ratio rule is off by default: near convergence the median
    is tiny and ordinary spikes of a well-behaved run would be flagged.

    ``total``: array of total norms, one per step. ``per_param``: {name: array of norms}
    (NaN for a step where the name was absent). ``summary()``: a readable report.
    """

    def __init__(self, vanishing=1e-6, exploding=1e3, *, ratio=None, window=50, norm_type=2.0):
        self.vanishing = _nonneg("vanishing", vanishing)
        self.exploding = _nonneg("exploding", exploding)
        self.ratio = None if ratio is None else _nonneg("ratio", ratio)
        self.window = check_number("window", window, integer=True)
        if self.window < 1:
            raise ValueError(f"window: expected an integer >= 1, got {window}")
        self.norm_type = _norm_type(norm_type)
        self._total: list[float] = []
        self._per: dict[str, list[float]] = {}

    def __len__(self):
        return len(self._total)

    def record(self, grads):
        """Records the norms of this step's gradients; returns the total norm."""
        total, per = grad_norms(grads, self.norm_type)
        n = len(self._total)
        for name in per:
            if name not in self._per:
                self._per[name] = [math.nan] * n
        for name, values in self._per.items():
            values.append(per.get(name, math.nan))
        self._total.append(total)
        return total

    @property
    def total(self):
        return np.array(self._total, np.float64)

    @property
    def per_param(self):
        return {name: np.array(v, np.float64) for name, v in self._per.items()}

    @property
    def vanishing_steps(self):
        return [i for i, t in enumerate(self._total) if t < self.vanishing]

    @property
    def exploding_steps(self):
        out = []
        for i, t in enumerate(self._total):
            if not math.isfinite(t) or t > self.exploding:
                out.append(i)
            elif self.ratio is not None and i >= 5:
                prev = [x for x in self._total[max(0, i - self.window):i] if math.isfinite(x)]
                if prev and t > self.ratio * float(np.median(prev)) > 0:
                    out.append(i)
        return out

    def summary(self):
        """Steps, min / median / max total norm, the vanishing and exploding steps, and the
        parameters with the smallest and largest median norm."""
        if not self._total:
            return "GradNormHistory: no steps recorded"
        t = self.total
        finite = t[np.isfinite(t)]
        lines = [f"GradNormHistory: {len(t)} steps"]
        if finite.size:
            lines.append(f"  total norm: min {finite.min():.3g}, median {np.median(finite):.3g}, "
                         f"max {finite.max():.3g}")
        for label, steps, rule in (
                ("vanishing", self.vanishing_steps, f"total < {self.vanishing:g}"),
                ("exploding", self.exploding_steps,
                 f"total > {self.exploding:g}, not finite"
                 + (f", or > {self.ratio:g} x recent median" if self.ratio is not None else ""))):
            if steps:
                shown = ", ".join(f"{i} ({self._total[i]:.3g})" for i in steps[:10])
                more = f", ... ({len(steps)} in all)" if len(steps) > 10 else ""
                lines.append(f"  {label} steps ({rule}): {shown}{more}")
            else:
                lines.append(f"  no {label} steps ({rule})")
        medians = {k: float(np.nanmedian(v)) for k, v in self.per_param.items()
                   if np.isfinite(v).any()}
        if medians:
            lo = min(medians, key=medians.get)
            hi = max(medians, key=medians.get)
            lines.append(f"  smallest median norm: {lo} ({medians[lo]:.3g}); "
                         f"largest: {hi} ({medians[hi]:.3g})")
        return "\n".join(lines)

    def plot(self, path=None, *, ax=None, per_param=False):
        """Total (and optionally per-parameter) norms on a log scale, with the vanishing and
        exploding thresholds. Needs matplotlib. Returns the axes; saves to ``path`` if given."""
        import matplotlib

        if ax is None:
            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(7, 3.5))
        steps = np.arange(len(self._total))
        if per_param:
            for name, v in self.per_param.items():
                ax.plot(steps, v, lw=0.8, alpha=0.7, label=name)
        ax.plot(steps, self.total, color="black", lw=1.5, label="total")
        ax.axhline(self.vanishing, color="tab:blue", ls="--", lw=0.8, label="vanishing")
        ax.axhline(self.exploding, color="tab:red", ls="--", lw=0.8, label="exploding")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("gradient norm")
        ax.legend(fontsize="small")
        if path is not None:
            ax.figure.savefig(path, dpi=100, bbox_inches="tight")
        return ax
