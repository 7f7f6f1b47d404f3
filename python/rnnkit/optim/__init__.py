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

Modules: ``optimizers`` (SGD, Adagrad, Adam, AdamW), ``clipping`` (``clip_grad_norm``,
``clip_grad_value``, ``grad_norms``) and ``history`` (``GradNormHistory``); every name is
importable from ``rnnkit.optim`` itself.
"""

from .clipping import clip_grad_norm, clip_grad_value, grad_norms
from .history import GradNormHistory
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "clip_grad_norm",
    "clip_grad_value",
    "grad_norms",
    "GradNormHistory",
]
