"""Look inside the cells of a character-level language model.

After Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent Networks"
(2015): colour every character of a text by the activation of one cell, and search for the
cells that track something simple (quotes, brackets, indentation, the position in the line).

Everything here works on plain data, no model import:

- ``text``: a ``str`` of N characters;
- ``acts``: a dict ``key -> ndarray [N, H]``, the value of each unit after reading each
  character. Keys are ``"l{k}.{q}"``: layer k (from 0) and quantity q, ``h`` and ``c``
  (LSTM states), gates ``i f g o`` (LSTM) or ``r z n`` (GRU);
- ``loss_history``: a dict with arrays ``step``, ``train_loss``, ``val_loss`` (NaN where the
  validation loss was not evaluated).

Outputs: :func:`write_html` (one self-contained offline page), :func:`plot_heatmap` and
:func:`plot_loss` (PNG through matplotlib, imported lazily), :func:`text_features` and
:func:`find_interpretable` (Pearson correlation of every unit with every feature), and
:func:`write_report`, which writes all of them into a directory.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .._files import atomic_write, save_figure

__all__ = [
    "FEATURES",
    "text_features",
    "find_interpretable",
    "format_interpretable",
    "write_html",
    "draw_heatmap",
    "plot_heatmap",
    "draw_loss",
    "plot_loss",
    "write_report",
]

FEATURES = ("in_quotes", "in_parens", "indent_depth", "line_position", "after_newline")

# Quantities squashed by a sigmoid, in [0, 1]: coloured so that 0.5 is white.
_GATES = frozenset("ifozr")
# Unbounded quantities (the LSTM cell state): coloured by tanh(value), shown raw on hover.
_UNBOUNDED = frozenset("c")
# Everything else (h, g, n, unknown keys) is taken to lie in [-1, 1].

# Ends of the diverging colour scale (white in the middle), shared by the page and plots.
_RED = (220, 50, 47)
_BLUE = (38, 110, 200)
_OPEN = "([{"
_CLOSE = ")]}"
# Python and C string prefixes: a quote right after one of these opens a string even though
# it sits between letters (f'x', rb'x', L'x'), where a quote would otherwise be an apostrophe.
_STRING_PREFIXES = frozenset(["r", "b", "f", "u", "rb", "br", "fr", "rf", "L", "U", "u8"])


# ------------------------------------------------------------------------------------------
# Text features and the interpretable-cell search
# ------------------------------------------------------------------------------------------


def text_features(text: str) -> Dict[str, np.ndarray]:
    """Simple per-character features of ``text``, each a float64 array ``[N]``.

    Every feature at character i depends only on characters 0..i (the model is causal too):

    - ``in_quotes``: 1 inside a ``'...'`` or ``"..."`` literal, both quote characters
      included. A backslash escapes the next character inside a literal. A single-quoted
      literal ends at the end of its line (an unterminated one, or a stray apostrophe, does
      not leak into the rest of the text); a double-quoted one may span lines (dialogue in
      prose). A ``'`` between two letters (``don't``) is an apostrophe, not a quote, unless
      the word before it is a string prefix (``f'..'``, ``rb'..'``).
    - ``in_parens``: 1 when the bracket depth of ``()``, ``[]``, ``{}`` is > 0, the
      brackets themselves included. Brackets inside quotes are not counted; an unmatched
      closing bracket does not make the depth negative.
    - ``indent_depth``: number of leading whitespace characters (space or tab, each counts 1)
      of the current line seen so far.
    - ``line_position``: column of the character in its line (0 for the first); a ``'\\n'``
      belongs to the line it ends.
    - ``after_newline``: 1 for the character right after a ``'\\n'``.
    """
    n = len(text)
    in_quotes = np.zeros(n)
    in_parens = np.zeros(n)
    indent_depth = np.zeros(n)
    line_position = np.zeros(n)
    after_newline = np.zeros(n)

    quote = None  # the quote character of the open literal, or None
    escaped = False  # the previous character was a backslash inside a literal
    depth = 0  # bracket depth outside literals
    col = 0  # column of the current character
    indent = 0  # leading whitespace of the current line so far
    leading = True  # still in the leading whitespace of the line
    word = ""  # the letters right before the current character (for apostrophes)
    prev = "\n"
    for i, ch in enumerate(text):
        line_position[i] = col
        after_newline[i] = 1.0 if i > 0 and prev == "\n" else 0.0
        if leading and ch in " \t":
            indent += 1
        elif ch != "\n":
            leading = False
        indent_depth[i] = indent

        if quote is not None:  # inside a literal
            in_quotes[i] = 1.0
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            elif ch == "\n" and quote == "'":  # single-quoted literals end with the line
                quote = None
                in_quotes[i] = 0.0
        elif ch == '"' or (ch == "'" and not _is_apostrophe(text, i, word)):
            quote = ch
            in_quotes[i] = 1.0
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE and depth > 0:
            in_parens[i] = 1.0  # the closing bracket is still inside
            depth -= 1
        if depth > 0:
            in_parens[i] = 1.0

        if ch == "\n":
            col, indent, leading = 0, 0, True
        else:
            col += 1
        word = word + ch if ch.isalnum() or ch == "_" else ""
        prev = ch
    return {
        "in_quotes": in_quotes,
        "in_parens": in_parens,
        "indent_depth": indent_depth,
        "line_position": line_position,
        "after_newline": after_newline,
    }


def _is_apostrophe(text: str, i: int, word: str) -> bool:
    """True when the ``'`` at ``text[i]`` sits between two letters, as in ``don't``."""
    if not word or i + 1 >= len(text) or not text[i + 1].isalpha():
        return False
    return word not in _STRING_PREFIXES and text[i - 1].isalpha()


def find_interpretable(
    text: str,
    acts: Mapping[str, np.ndarray],
    top: int = 10,
    features: Optional[Mapping[str, np.ndarray]] = None,
) -> List[Tuple[str, str, int, float]]:
    """The units whose activation correlates best with a simple feature of the text.

    Returns up to ``top`` tuples ``(feature, key, unit, correlation)`` sorted by
    ``|correlation|``, largest first (``top=None``: every pair). ``features`` is a dict
    ``name -> array [N]`` (default: :func:`text_features` of ``text``). The Pearson
    correlation of every unit of ``acts[key]`` with every feature is one matrix product;
    constant units and features (no variation over the text), and those holding NaN or
    infinity, are skipped. Fewer than 2 characters: an empty list.
    """
    n = len(text)
    if features is None:
        features = text_features(text)
    names = list(features)
    F = np.empty((n, len(names)))
    for k, name in enumerate(names):
        f = np.asarray(features[name], dtype=np.float64)
        if f.shape != (n,):
            raise ValueError(
                f"features[{name!r}]: expected shape ({n},) (one value per character of text), "
                f"got {f.shape}"
            )
        F[:, k] = f
    checked = {key: _check_acts(acts, key, n) for key in acts}
    if n < 2:  # no correlation without variation
        return []
    f_ok = _varies(F)
    F = F[:, f_ok] - F[:, f_ok].mean(axis=0)
    F /= np.sqrt((F * F).sum(axis=0))
    f_names = [name for name, ok in zip(names, f_ok) if ok]

    found = []  # (|r|, feature, key, unit, r) for every pair
    for key, A in checked.items():
        A = A.astype(np.float64)
        units = np.flatnonzero(_varies(A))
        if not len(units) or not f_names:
            continue
        A = A[:, units] - A[:, units].mean(axis=0)
        A /= np.sqrt((A * A).sum(axis=0))
        R = np.clip(F.T @ A, -1.0, 1.0)  # [features, units]: Pearson correlation
        for (fi, ui), r in np.ndenumerate(R):
            found.append((-abs(r), f_names[fi], key, int(units[ui]), float(r)))
    found.sort()
    if top is not None:
        found = found[:top]
    return [(feature, key, unit, r) for _, feature, key, unit, r in found]


def _varies(a: np.ndarray) -> np.ndarray:
    """Columns of ``a`` [N, K] that are finite and not constant (without warnings)."""
    return np.isfinite(a).all(axis=0) & (a.max(axis=0) > a.min(axis=0))


def format_interpretable(found: Sequence[Tuple[str, str, int, float]]) -> str:
    """A plain-text table of :func:`find_interpretable`'s result."""
    lines = [f"{'rank':>4}  {'feature':<14} {'cell':<12} {'correlation':>11}"]
    for rank, (feature, key, unit, r) in enumerate(found, 1):
        lines.append(f"{rank:>4}  {feature:<14} {f'{key}/{unit}':<12} {r:>+11.3f}")
    return "\n".join(lines) + "\n"


def _check_acts(acts: Mapping[str, np.ndarray], key: str, n: int) -> np.ndarray:
    a = np.asarray(acts[key])
    if a.ndim != 2 or a.shape[0] != n:
        raise ValueError(
            f"acts[{key!r}]: expected shape ({n}, H) (one row per character of text), got {a.shape}"
        )
    return a


def _split_key(key: str) -> Tuple[str, str]:
    """``"l0.c"`` -> ``("l0", "c")``; a key without a dot has an empty layer."""
    layer, _, quantity = key.rpartition(".")
    return layer, quantity


def _kind(key: str) -> str:
    """How a quantity is coloured: ``gate`` ([0, 1]), ``cell`` (unbounded) or ``tanh``."""
    q = _split_key(key)[1]
    return "gate" if q in _GATES else "cell" if q in _UNBOUNDED else "tanh"


def _scaled(value: float, kind: str) -> float:
    """Map an activation onto [-1, 1] for colouring (the page does the same in JS)."""
    v = 2.0 * value - 1.0 if kind == "gate" else math.tanh(value) if kind == "cell" else value
    return min(1.0, max(-1.0, v))


def _rgb(value: float, kind: str) -> Tuple[int, int, int]:
    """The page's background colour for ``value``: blue (-1), white (0), red (+1)."""
    t = _scaled(value, kind)
    end = _RED if t >= 0 else _BLUE
    return tuple(int(math.floor(255 + (e - 255) * abs(t) + 0.5)) for e in end)


# ------------------------------------------------------------------------------------------
# The HTML page
# ------------------------------------------------------------------------------------------

_QUANTITY_ORDER = "hcifgorzn"


def _sorted_keys(keys) -> List[str]:
    def order(key):
        layer, q = _split_key(key)
        m = re.fullmatch(r"[A-Za-z]*(\d+)", layer)
        pos = _QUANTITY_ORDER.find(q) if len(q) == 1 else -1
        return (int(m.group(1)) if m else 1 << 30, layer, pos if pos >= 0 else 99, q)

    return sorted(keys, key=order)


# The page stores one byte per value (base64: 4/3 bytes in the file, against about 5 for
# JSON numbers): the colour scale position t in [-1, 1] (see _scaled) as round((t+1)*127),
# 0..254, and 255 for NaN/Inf. The colours differ from the exact ones by at most 1 of 255.
BYTES_PER_VALUE = 4 / 3
_NAN_BYTE = 255


def quantised(a: np.ndarray, kind: str) -> np.ndarray:
    """uint8 bytes of ``a`` as the page stores them (see ``BYTES_PER_VALUE``)."""
    a = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a)
    v = np.where(finite, a, 0.0)
    t = 2.0 * v - 1.0 if kind == "gate" else np.tanh(v) if kind == "cell" else v
    q = np.asarray(np.rint((np.clip(t, -1.0, 1.0) + 1.0) * 127.0)).astype(np.uint8)
    q[~finite] = _NAN_BYTE
    return q


def page_value(value: float, kind: str) -> float:
    """The value the page colours ``value`` by, after its quantisation (NaN stays NaN)."""
    q = int(quantised(np.array([value]), kind)[0])
    if q == _NAN_BYTE:
        return math.nan
    t = q / 127.0 - 1.0
    if kind == "gate":
        return (t + 1.0) / 2.0
    if kind == "cell":  # the page colours by tanh(c); +-1 is anything beyond about +-3.8
        return math.atanh(max(-1 + 1e-12, min(1 - 1e-12, t)))
    return t


def _viewer_file(name: str) -> str:
    """The page's template, style sheet and script: package data in rnnkit/charlm/viewer/."""
    from importlib.resources import files

    return files("rnnkit.charlm").joinpath("viewer", name).read_text(encoding="utf-8")


def write_html(
    path,
    text: str,
    acts: Mapping[str, np.ndarray],
    *,
    title: str = "",
    features: Optional[Mapping[str, np.ndarray]] = None,
    max_chars: int = 20000,
    keys: Optional[Sequence[str]] = None,
    interpretable: Optional[Sequence[Tuple[str, str, int, float]]] = None,
    top: int = 12,
) -> str:
    """Write one self-contained HTML page (inline CSS and JS, no network) and return its path.

    The page shows the first ``max_chars`` characters of ``text``, each with a background
    colour given by the activation of the selected cell: blue (-1), white (0), red (+1);
    gates (i f o r z, in [0, 1]) are mapped so that 0.5 is white; the LSTM cell state ``c``
    is coloured by ``tanh(c)``. Hovering a character shows its raw value. Selectors pick the
    layer, the quantity and the unit; the selection is kept in the URL fragment
    (``page.html#l0.c/17`` opens unit 17 of ``l0.c``). A side list shows the most
    interpretable cells (``interpretable``, default: :func:`find_interpretable` of the whole
    text with ``features``), each a link to its cell.

    ``keys`` restricts the quantities included (default: all of ``acts``). The page holds
    every unit of every key, one byte per value in base64 (``BYTES_PER_VALUE``): about
    ``max_chars * H * len(keys) * 4/3`` bytes (27 MB for 20,000 characters of a 1x256 GRU,
    whose h, r, z, n are 1024 values per character).
    """
    n = len(text)
    keys = _sorted_keys(acts if keys is None else keys)
    for key in keys:
        if key not in acts:
            raise ValueError(f"keys: {key!r} is not in acts (has {sorted(acts)})")
        _check_acts(acts, key, n)
    if interpretable is None:
        interpretable = find_interpretable(
            text, {k: acts[k] for k in keys}, top=top, features=features
        )
    shown = text[: max(0, int(max_chars))]
    m = len(shown)
    meta = {
        "title": title,
        "text": shown,
        "total": n,
        "keys": keys,
        "kind": {key: _kind(key) for key in keys},
        "units": {key: int(np.asarray(acts[key]).shape[1]) for key in keys},
        "top": [[f, k, u, round(r, 3)] for f, k, u, r in interpretable if k in keys],
        "red": _RED,
        "blue": _BLUE,
    }
    # ensure_ascii keeps U+2028/2029 escaped; "<" ">" "&" only occur inside JSON strings, so
    # escaping them keeps "</script>" or "<!--" in the text from ending the script element.
    meta_json = json.dumps(meta, ensure_ascii=True, separators=(",", ":"))
    acts_json = (
        "{"
        + ",".join(
            json.dumps(key)
            + ':"'
            + base64.b64encode(
                np.ascontiguousarray(quantised(np.asarray(acts[key])[:m].T, _kind(key)))
            ).decode()
            + '"'
            for key in keys
        )
        + "}"
    )
    payload = '{"meta":' + meta_json + ',"acts":' + acts_json + "}"
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

    heading = html.escape(title or "rnnkit: inside the cells")
    page = (
        _viewer_file("page.html")
        .replace("%TITLE%", heading)
        .replace("%CSS%", _viewer_file("page.css"))
        .replace("%JS%", _viewer_file("page.js"))
        .replace("%DATA%", payload)
    )
    path = os.fspath(path)
    with atomic_write(path, "w") as fh:
        fh.write(page)
    return path


# ------------------------------------------------------------------------------------------
# Plots (matplotlib, imported lazily; no pyplot, so no global backend is changed)
# ------------------------------------------------------------------------------------------


def _figure(what: str, **kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{what} needs matplotlib: pip install matplotlib (or rnnkit[plot])"
        ) from err
    return Figure(**kwargs)


def _tick_label(ch: str) -> str:
    return {"\n": "\u21b5", "\t": "\u2192", " ": "\u2423"}.get(
        ch, ch if ch.isprintable() else "\u00b7"
    )


def _pick_units(a: np.ndarray, units, limit: int = 64) -> np.ndarray:
    if units is not None:
        return np.asarray(units, dtype=np.intp).reshape(-1)
    h = a.shape[1]
    if h <= limit:
        return np.arange(h)
    return np.sort(np.argsort(-a.std(axis=0), kind="stable")[:limit])  # the most active ones


def draw_heatmap(
    ax, text: str, acts: Mapping[str, np.ndarray], key: str, units=None, max_chars: int = 200
):
    """Draw ``acts[key]`` as an image units x characters into ``ax`` and return ``ax``.

    ``units``: the units to show (default: all when H <= 64, else the 64 that vary most over
    the shown characters). Gates use the range [0, 1], ``c`` a symmetric range at its
    largest magnitude, other quantities [-1, 1].
    """
    a = _check_acts(acts, key, len(text))[:max_chars].astype(np.float64)
    shown = text[:max_chars]
    units = _pick_units(a, units)
    img = a[:, units].T
    ax.set_title(f"{key}: units x characters", fontsize=10)
    if not img.size:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
        return ax
    kind = _kind(key)
    finite = np.abs(img[np.isfinite(img)])
    if kind == "gate":
        vmin, vmax = 0.0, 1.0
    elif kind == "cell":
        lim = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        vmin, vmax = -lim, lim
    else:
        vmin, vmax = -1.0, 1.0
    im = ax.imshow(img, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([_tick_label(ch) for ch in shown], fontsize=7, family="monospace")
    ax.tick_params(axis="x", length=0, pad=2)
    step = max(1, len(units) // 32)
    ax.set_yticks(range(0, len(units), step))
    ax.set_yticklabels([str(u) for u in units[::step]], fontsize=7)
    ax.set_ylabel("unit")
    ax.figure.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    return ax


def plot_heatmap(
    path, text: str, acts: Mapping[str, np.ndarray], key: str, units=None, max_chars: int = 200
) -> str:
    """Write :func:`draw_heatmap` to a PNG at ``path`` and return the path."""
    n_units = len(_pick_units(_check_acts(acts, key, len(text))[:max_chars], units))
    n_chars = min(len(text), max_chars)
    fig = _figure(
        "plot_heatmap",
        figsize=(max(6.0, 0.11 * n_chars + 1.5), min(16.0, max(2.5, 0.14 * n_units + 1.2))),
    )
    draw_heatmap(fig.add_subplot(), text, acts, key, units=units, max_chars=max_chars)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def draw_loss(ax, loss_history: Mapping[str, Sequence[float]]):
    """Draw the loss at each evaluation against the step: the training loss (its moving
    average, a line) and the validation loss (markers); return ``ax``."""
    step = np.asarray(loss_history.get("step", []), dtype=np.float64).reshape(-1)
    train = np.asarray(loss_history.get("train_loss", []), dtype=np.float64).reshape(-1)
    val = np.asarray(loss_history.get("val_loss", []), dtype=np.float64).reshape(-1)
    if len(train):
        x = step if len(step) == len(train) else np.arange(len(train))
        ax.plot(x, train, lw=1.2, color="C0", label="train (moving average)")
    if len(val):
        x = step if len(step) == len(val) else np.arange(len(val))
        ok = np.isfinite(val)
        if ok.any():
            ax.plot(x[ok], val[ok], "o-", ms=3.5, lw=1, color="C3", label="validation")
    if not (len(train) or np.isfinite(val).any()):
        ax.text(0.5, 0.5, "no loss recorded", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / character)")
    ax.grid(True, alpha=0.3)
    ax.set_title("loss at each evaluation", fontsize=10)
    return ax


def plot_loss(path, loss_history: Mapping[str, Sequence[float]]) -> str:
    """Write :func:`draw_loss` to a PNG at ``path`` and return the path."""
    fig = _figure("plot_loss", figsize=(7.0, 4.0))
    draw_loss(fig.add_subplot(), loss_history)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


# ------------------------------------------------------------------------------------------
# Everything at once
# ------------------------------------------------------------------------------------------


def write_report(
    out_dir,
    text: str,
    acts: Mapping[str, np.ndarray],
    loss_history: Optional[Mapping[str, Sequence[float]]] = None,
    *,
    title: str = "",
    max_chars: Optional[int] = None,
    top: int = 20,
    max_page_bytes: float = 40e6,
) -> Dict[str, str]:
    """Write the page, the plots and the interpretable-cell list into ``out_dir``.

    Files: ``index.html`` (:func:`write_html`), ``interpretable.txt`` (the ``top`` cells of
    :func:`find_interpretable`, then the best cell for each feature), ``heatmap_<key>.png``
    for every ``h`` and ``c`` key, ``loss.png`` when ``loss_history`` is given. Without
    matplotlib the PNGs are skipped with a warning. Returns a dict ``name -> path``.

    The page shows ``max_chars`` characters (default: as many as keep it near
    ``max_page_bytes``, ``BYTES_PER_VALUE`` per value, between 1000 and 20000); the search and
    ``interpretable.txt`` always cover the whole text.
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    n = len(text)
    for key in acts:
        _check_acts(acts, key, n)
    feats = text_features(text)
    every = find_interpretable(text, acts, top=None, features=feats)
    found = every[:top]
    paths = {}

    best = {}
    for row in every:
        best.setdefault(row[0], row)
    txt = os.path.join(out_dir, "interpretable.txt")
    with atomic_write(txt, "w") as fh:
        fh.write(f"# Most interpretable cells ({n} characters, {len(every)} unit/feature pairs)\n")
        fh.write(format_interpretable(found))
        fh.write("\n# Best cell for each feature\n")
        fh.write(format_interpretable([best[f] for f in feats if f in best]))
    paths["interpretable.txt"] = txt
    if max_chars is None:
        values = sum(int(np.asarray(a).shape[1]) for a in acts.values())
        max_chars = int(min(20000, max(1000, max_page_bytes // (BYTES_PER_VALUE * max(values, 1)))))
    paths["index.html"] = write_html(
        os.path.join(out_dir, "index.html"),
        text,
        acts,
        title=title,
        max_chars=max_chars,
        interpretable=found,
    )
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        warnings.warn(
            "matplotlib is not installed: the PNG plots are skipped (pip install matplotlib)",
            stacklevel=2,
        )
        return paths
    for key in _sorted_keys(acts):
        if _split_key(key)[1] in ("h", "c"):
            name = f"heatmap_{key}.png"
            paths[name] = plot_heatmap(os.path.join(out_dir, name), text, acts, key)
    if loss_history is not None:
        paths["loss.png"] = plot_loss(os.path.join(out_dir, "loss.png"), loss_history)
    return paths
