"""``GradNormHistory``: per-step gradient norms, to see vanishing or exploding gradients."""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_number
from ._common import _nonneg
from .clipping import _norm_type, grad_norms

__all__ = ["GradNormHistory"]


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
                prev = [x for x in self._total[max(0, i - self.window) : i] if math.isfinite(x)]
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
            lines.append(
                f"  total norm: min {finite.min():.3g}, median {np.median(finite):.3g}, "
                f"max {finite.max():.3g}"
            )
        for label, steps, rule in (
            ("vanishing", self.vanishing_steps, f"total < {self.vanishing:g}"),
            (
                "exploding",
                self.exploding_steps,
                f"total > {self.exploding:g}, not finite"
                + (f", or > {self.ratio:g} x recent median" if self.ratio is not None else ""),
            ),
        ):
            if steps:
                shown = ", ".join(f"{i} ({self._total[i]:.3g})" for i in steps[:10])
                more = f", ... ({len(steps)} in all)" if len(steps) > 10 else ""
                lines.append(f"  {label} steps ({rule}): {shown}{more}")
            else:
                lines.append(f"  no {label} steps ({rule})")
        medians = {
            k: float(np.nanmedian(v)) for k, v in self.per_param.items() if np.isfinite(v).any()
        }
        if medians:
            lo = min(medians, key=medians.get)
            hi = max(medians, key=medians.get)
            lines.append(
                f"  smallest median norm: {lo} ({medians[lo]:.3g}); "
                f"largest: {hi} ({medians[hi]:.3g})"
            )
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
            from .._files import save_figure

            save_figure(ax.figure, path, dpi=100, bbox_inches="tight")
        return ax
