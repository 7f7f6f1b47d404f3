"""The optimizers, step for step like torch.optim (see ``rnnkit.optim``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._checks import fmt_shape
from ._common import _betas, _collect_params, _flag, _nonneg, _number

__all__ = ["Optimizer", "SGD", "Adagrad", "Adam", "AdamW"]


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
                raise ValueError(
                    f"grad of {s.name}: expected shape {fmt_shape(s.param.shape)}, "
                    f"got {fmt_shape(g.shape)}"
                )
            if g.dtype != s.param.dtype:
                raise TypeError(
                    f"grad of {s.name}: expected dtype {s.param.dtype} (the "
                    f"parameter's), got {g.dtype}"
                )
            self._update(s.param, g, self.state[i])

    def _update(self, p, g, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self):
        """{"type", "hyper": {name: value}, "names": [...], "state": [{key: copy}, ...]}."""
        hyper = {name: getattr(self, name) for name in ("lr",) + self._hyper}
        state = [
            {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
            for st in self.state
        ]
        return {
            "type": type(self).__name__,
            "hyper": hyper,
            "names": [s.name for s in self._slots],
            "state": state,
        }

    def load_state_dict(self, d):
        """Restores hyper-parameters and state (copies), checked against these parameters.

        A state dict may come from a file: only the fields ``state_dict`` writes are read,
        each validated as the constructor validates it (a ValueError or TypeError naming
        the field); nothing changes unless everything passes."""
        if not isinstance(d, dict):
            raise TypeError(f"state_dict: expected a dict, got {type(d).__name__}")
        unknown = sorted(str(k) for k in set(d) - {"type", "hyper", "names", "state"})
        missing = [k for k in ("type", "hyper", "state") if k not in d]
        if unknown or missing:
            raise ValueError(f"state_dict: missing keys {missing}, unexpected keys {unknown}")
        if d["type"] != type(self).__name__:
            raise ValueError(f"state_dict: expected type {type(self).__name__}, got {d['type']!r}")
        hyper = self._checked_hyper(d["hyper"])
        state = self._checked_state(d["state"])
        names = [s.name for s in self._slots]
        if "names" in d and not (
            isinstance(d["names"], (list, tuple)) and list(d["names"]) == names
        ):
            raise ValueError(
                f"state_dict: names: expected the parameters {names[:4]}..., got {d['names']!r:.80}"
            )
        for name, value in hyper.items():
            setattr(self, name, value)
        self.state = state

    # The hyper-parameters' checks (the constructors use the same ones).
    _CHECKS = {
        "lr": _nonneg,
        "momentum": _nonneg,
        "dampening": _number,
        "weight_decay": _nonneg,
        "nesterov": _flag,
        "maximize": _flag,
        "lr_decay": _nonneg,
        "initial_accumulator_value": _nonneg,
        "eps": _nonneg,
        "betas": lambda name, v: _betas(v),
        "amsgrad": _flag,
    }
    # Per-parameter state: key -> "array" (the parameter's shape) or "count" (an int >= 0);
    # the keys in _OPTIONAL_STATE may be absent from a non-empty state.
    _STATE: dict = {}
    _OPTIONAL_STATE: frozenset = frozenset()

    def _checked_hyper(self, hyper):
        if not isinstance(hyper, dict):
            raise TypeError(f"state_dict: hyper: expected a dict, got {type(hyper).__name__}")
        want = ("lr",) + self._hyper
        if set(hyper) != set(want):
            raise ValueError(
                f"state_dict: hyper: expected the keys {list(want)}, got {sorted(map(str, hyper))}"
            )
        out = {n: self._CHECKS[n](f"state_dict: hyper: {n}", hyper[n]) for n in want}
        self._check_combination(out)
        return out

    def _check_combination(self, hyper):
        """Constraints between hyper-parameters (SGD's nesterov)."""

    def _checked_state(self, state):
        if not isinstance(state, (list, tuple)) or len(state) != len(self._slots):
            n = len(state) if isinstance(state, (list, tuple)) else type(state).__name__
            raise ValueError(
                f"state_dict: expected state for {len(self._slots)} parameters, got {n}"
            )
        out = []
        for s, st in zip(self._slots, state):
            if not isinstance(st, dict):
                raise TypeError(f"state_dict: {s.name}: expected a dict, got {type(st).__name__}")
            unknown = sorted(str(k) for k in set(st) - set(self._STATE))
            absent = [k for k in self._STATE if k not in st and k not in self._OPTIONAL_STATE]
            if unknown or (st and absent):
                raise ValueError(
                    f"state_dict: {s.name}: expected the keys "
                    f"{sorted(self._STATE)}, missing {absent if st else []}, "
                    f"unexpected {unknown}"
                )
            checked = {}
            for k, v in st.items():
                where = f"state_dict: {s.name}.{k}"
                if self._STATE[k] == "count":
                    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                        raise ValueError(f"{where}: expected an integer >= 0, got {v!r}")
                    checked[k] = int(v)
                    continue
                if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
                    raise TypeError(
                        f"{where}: expected a float array, got "
                        f"{getattr(v, 'dtype', type(v).__name__)}"
                    )
                if v.shape != s.param.shape:
                    raise ValueError(
                        f"{where}: expected shape {fmt_shape(s.param.shape)}, got "
                        f"{fmt_shape(v.shape)}"
                    )
                checked[k] = np.array(v, dtype=s.param.dtype)
            out.append(checked)
        return out

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
    _STATE = {"momentum_buffer": "array"}

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        *,
        maximize=False,
    ):
        self.momentum = _nonneg("momentum", momentum)
        self.dampening = _number("dampening", dampening)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        self.nesterov, self.maximize = bool(nesterov), bool(maximize)
        self._check_combination(vars(self))
        super().__init__(params, lr)

    def _check_combination(self, hyper):
        if hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
            raise ValueError(
                f"nesterov: requires momentum > 0 and dampening == 0, got "
                f"momentum={hyper['momentum']}, dampening={hyper['dampening']}"
            )

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
    _STATE = {"step": "count", "sum": "array"}

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        *,
        maximize=False,
    ):
        self.lr_decay = _nonneg("lr_decay", lr_decay)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        self.initial_accumulator_value = _nonneg(
            "initial_accumulator_value", initial_accumulator_value
        )
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
    _STATE = {"step": "count", "exp_avg": "array", "exp_avg_sq": "array", "max_exp_avg_sq": "array"}
    _OPTIONAL_STATE = frozenset({"max_exp_avg_sq"})
    _decoupled = False

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        maximize=False,
    ):
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
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
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

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
