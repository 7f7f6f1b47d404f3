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

import html
import json
import math
import os
import re
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

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

    quote = None      # the quote character of the open literal, or None
    escaped = False   # the previous character was a backslash inside a literal
    depth = 0         # bracket depth outside literals
    col = 0           # column of the current character
    indent = 0        # leading whitespace of the current line so far
    leading = True    # still in the leading whitespace of the line
    word = ""         # the letters right before the current character (for apostrophes)
    prev = "\n"
    for i, ch in enumerate(text):
        line_position[i] = col
        after_newline[i] = 1.0 if i > 0 and prev == "\n" else 0.0
        if leading and ch in " \t":
            indent += 1
        elif ch != "\n":
            leading = False
        indent_depth[i] = indent

        if quote is not None:                       # inside a literal
            in_quotes[i] = 1.0
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            elif ch == "\n" and quote == "'":      # single-quoted literals end with the line
                quote = None
                in_quotes[i] = 0.0
        elif ch == '"' or (ch == "'" and not _is_apostrophe(text, i, word)):
            quote = ch
            in_quotes[i] = 1.0
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE and depth > 0:
            in_parens[i] = 1.0                     # the closing bracket is still inside
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
                f"got {f.shape}")
        F[:, k] = f
    checked = {key: _check_acts(acts, key, n) for key in acts}
    if n < 2:                                  # no correlation without variation
        return []
    f_ok = _varies(F)
    F = F[:, f_ok] - F[:, f_ok].mean(axis=0)
    F /= np.sqrt((F * F).sum(axis=0))
    f_names = [name for name, ok in zip(names, f_ok) if ok]

    found = []   # (|r|, feature, key, unit, r) for every pair
    for key, A in checked.items():
        A = A.astype(np.float64)
        units = np.flatnonzero(_varies(A))
        if not len(units) or not f_names:
            continue
        A = A[:, units] - A[:, units].mean(axis=0)
        A /= np.sqrt((A * A).sum(axis=0))
        R = np.clip(F.T @ A, -1.0, 1.0)        # [features, units]: Pearson correlation
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
            f"acts[{key!r}]: expected shape ({n}, H) (one row per character of text), "
            f"got {a.shape}")
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


def _milli_json(a: np.ndarray) -> str:
    """Rows of ``a`` [H, N] as a JSON array of arrays of integers (value * 1000, rounded)."""
    finite = np.isfinite(a)
    q = np.rint(np.where(finite, a, 0.0) * 1000.0).astype(np.int64)
    rows = []
    for row, ok in zip(q, finite):
        items = list(map(str, row.tolist()))
        if not ok.all():
            for j in np.flatnonzero(~ok):
                items[j] = "null"
        rows.append("[" + ",".join(items) + "]")
    return "[" + ",".join(rows) + "]"


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
    every unit of every key, about 4 bytes per value: ``max_chars * H * len(keys) * 4``.
    """
    n = len(text)
    keys = _sorted_keys(acts if keys is None else keys)
    for key in keys:
        if key not in acts:
            raise ValueError(f"keys: {key!r} is not in acts (has {sorted(acts)})")
        _check_acts(acts, key, n)
    if interpretable is None:
        interpretable = find_interpretable(text, {k: acts[k] for k in keys}, top=top,
                                           features=features)
    shown = text[:max(0, int(max_chars))]
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
    acts_json = "{" + ",".join(
        json.dumps(key) + ":" + _milli_json(np.asarray(acts[key])[:m].T) for key in keys) + "}"
    payload = '{"meta":' + meta_json + ',"acts":' + acts_json + "}"
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

    heading = html.escape(title or "rnnkit: inside the cells")
    page = (_PAGE.replace("%TITLE%", heading)
            .replace("%CSS%", _CSS).replace("%JS%", _JS).replace("%DATA%", payload))
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%TITLE%</title>
<style>%CSS%</style>
</head>
<body>
<header>
  <h1>%TITLE%</h1>
  <div class="controls">
    <label>layer <select id="layer"></select></label>
    <label>quantity <select id="quantity"></select></label>
    <label>unit <button id="prev" title="previous unit">&#9664;</button><input id="unit"
      type="number" min="0" value="0"><button id="next" title="next unit">&#9654;</button></label>
    <span id="units"></span>
    <span class="legend"><span id="lo"></span><span class="bar"></span><span id="hi"></span></span>
  </div>
  <div id="info">hover a character to see its value</div>
</header>
<main>
  <pre id="text"></pre>
  <aside>
    <h2>Most interpretable cells</h2>
    <p class="note">Pearson correlation with a text feature, over the whole text.</p>
    <ol id="top"></ol>
    <p id="more"></p>
  </aside>
</main>
<noscript>This page needs JavaScript to colour the text.</noscript>
<script type="application/json" id="data">%DATA%</script>
<script>%JS%</script>
</body>
</html>
"""

_CSS = """
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: #222; background: #fafafa; }
header { position: sticky; top: 0; z-index: 1; background: #fff; padding: 6px 12px;
         border-bottom: 1px solid #ddd; }
h1 { font-size: 16px; margin: 0 0 4px 0; }
h2 { font-size: 14px; margin: 0 0 4px 0; }
.controls { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; }
.controls input { width: 4.5em; }
.controls button { padding: 0 5px; }
#units { color: #777; }
.legend { display: inline-flex; align-items: center; gap: 4px; font-size: 12px; color: #555; }
.legend .bar { display: inline-block; width: 110px; height: 10px; border: 1px solid #ccc;
  background: linear-gradient(to right, rgb(38,110,200), #fff, rgb(220,50,47)); }
#info { font: 12px/1.4 ui-monospace, monospace; color: #444; min-height: 1.4em; }
main { display: flex; gap: 12px; padding: 8px 12px; align-items: flex-start; }
pre#text { flex: 1; min-width: 0; margin: 0; padding: 8px; background: #fff;
  border: 1px solid #ddd; white-space: pre-wrap; word-wrap: break-word; tab-size: 4;
  font: 13px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre#text .c:hover { outline: 1px solid #000; }
pre#text .w { color: #aaa; }
aside { width: 250px; flex: none; font-size: 13px; }
aside .note { color: #777; font-size: 12px; margin: 0 0 4px 0; }
aside ol { margin: 0; padding-left: 22px; }
aside li { margin: 1px 0; }
aside a { color: #1a4f8b; text-decoration: none; font-family: ui-monospace, monospace; }
aside a:hover { text-decoration: underline; }
aside li.on { background: #fff3c4; }
aside .r { color: #666; }
"""

_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var M = D.meta, A = D.acts;
  var text = M.text, n = text.length;
  var $ = function (id) { return document.getElementById(id); };
  var layerSel = $("layer"), qSel = $("quantity"), unitIn = $("unit"), pre = $("text");

  // keys "l0.c" -> layer "l0", quantity "c"; keep the order given by Python.
  function split(key) { var j = key.lastIndexOf("."); return [key.slice(0, j), key.slice(j + 1)]; }
  var layers = [], byLayer = {};
  M.keys.forEach(function (key) {
    var p = split(key);
    if (!(p[0] in byLayer)) { byLayer[p[0]] = []; layers.push(p[0]); }
    byLayer[p[0]].push(p[1]);
  });
  layers.forEach(function (l) { layerSel.add(new Option(l || "(none)", l)); });

  // Colour: the same formula as viz._rgb in Python.
  function scaled(v, kind) {
    var t = kind === "gate" ? 2 * v - 1 : kind === "cell" ? Math.tanh(v) : v;
    return Math.max(-1, Math.min(1, t));
  }
  function colour(m, kind) {
    if (m === null) return "rgb(221, 221, 221)";
    var t = scaled(m / 1000, kind), e = t >= 0 ? M.red : M.blue, a = Math.abs(t);
    var rgb = e.map(function (x) { return Math.round(255 + (x - 255) * a); });
    return "rgb(" + rgb.join(", ") + ")";
  }

  // One span per character; newline and tab drawn visibly, control characters as symbols.
  var spans = new Array(n), frag = document.createDocumentFragment();
  for (var i = 0; i < n; i++) {
    var ch = text[i], s = document.createElement("span"), code = ch.charCodeAt(0);
    s.className = "c";
    if (ch === "\n") { s.textContent = "\u21b5\n"; s.className = "c w"; }
    else if (ch === "\t") { s.textContent = "\u2192\t"; s.className = "c w"; }
    else if (code < 32 || code === 127) {
      s.textContent = String.fromCharCode(code === 127 ? 0x2421 : 0x2400 + code);
      s.className = "c w";
    } else s.textContent = ch;
    s._i = i;
    spans[i] = s; frag.appendChild(s);
  }
  pre.appendChild(frag);
  if (M.total > n) {
    var more = document.createElement("div");
    more.style.color = "#999";
    more.textContent = "\u2026 (" + n + " of " + M.total + " characters shown)";
    pre.appendChild(more);
  }

  var cur = { key: M.keys[0], unit: 0 };

  function fill(key) {
    var p = split(key);
    layerSel.value = p[0];
    qSel.innerHTML = "";
    byLayer[p[0]].forEach(function (q) { qSel.add(new Option(q, q)); });
    qSel.value = p[1];
  }

  function legend(kind) {
    $("lo").textContent = kind === "gate" ? "0" : kind === "cell" ? "tanh(c) \u22121" : "\u22121";
    $("hi").textContent = kind === "gate" ? "1" : "+1";
  }

  function select(key, unit) {
    if (!(key in A)) return;
    var h = M.units[key];
    unit = Math.max(0, Math.min(h - 1, unit | 0));
    cur = { key: key, unit: unit };
    fill(key);
    unitIn.max = h - 1; unitIn.value = unit;
    $("units").textContent = "of 0\u2013" + (h - 1);
    var v = A[key][unit], kind = M.kind[key];
    legend(kind);
    for (var i = 0; i < n; i++) {
      var st = spans[i].style;
      st.backgroundColor = colour(v[i], kind);
      // light text on the darkest backgrounds
      st.color = v[i] !== null && Math.abs(scaled(v[i] / 1000, kind)) > 0.7 ? "#fff" : "";
    }
    var id = key + "/" + unit;
    document.querySelectorAll("#top li").forEach(function (li) {
      li.className = li.dataset.cell === id ? "on" : "";
    });
    document.title = id + " \u2013 " + (M.title || "rnnkit");
    if (decodeURIComponent(location.hash.slice(1)) !== id) {   // (no hashchange event)
      try { history.replaceState(null, "", "#" + id); } catch (err) { location.hash = id; }
    }
  }

  function fromHash() {
    var h = decodeURIComponent(location.hash.slice(1)), j = h.lastIndexOf("/");
    if (j < 0) return false;
    var key = h.slice(0, j), unit = parseInt(h.slice(j + 1), 10);
    if (!(key in A) || isNaN(unit)) return false;
    select(key, unit);
    return true;
  }

  // The interpretable-cell list.
  var ol = $("top");
  M.top.forEach(function (t) {
    var li = document.createElement("li"), a = document.createElement("a"), id = t[1] + "/" + t[2];
    li.dataset.cell = id;
    a.href = "#" + id; a.textContent = id;
    var r = document.createElement("span");
    r.className = "r";
    r.textContent = " " + t[0] + " r=" + (t[3] >= 0 ? "+" : "\u2212") + Math.abs(t[3]).toFixed(2);
    li.appendChild(a); li.appendChild(r); ol.appendChild(li);
  });
  if (!M.top.length) $("more").textContent = "(none: no unit and feature vary over the text)";

  layerSel.onchange = function () {
    var qs = byLayer[layerSel.value], q = split(cur.key)[1];
    select(layerSel.value + "." + (qs.indexOf(q) >= 0 ? q : qs[0]), cur.unit);
  };
  qSel.onchange = function () { select(layerSel.value + "." + qSel.value, cur.unit); };
  unitIn.onchange = function () { select(cur.key, parseInt(unitIn.value, 10) || 0); };
  $("prev").onclick = function () { select(cur.key, cur.unit - 1); };
  $("next").onclick = function () { select(cur.key, cur.unit + 1); };
  window.addEventListener("hashchange", fromHash);

  var info = $("info");
  pre.addEventListener("mouseover", function (e) {
    var i = e.target._i;
    if (i === undefined) return;
    var m = A[cur.key][cur.unit][i], ch = text[i];
    var shown = ch === "\n" ? "\\n" : ch === "\t" ? "\\t" : ch;
    info.textContent = "char " + i + " '" + shown + "'   " + cur.key + "/" + cur.unit + " = " +
      (m === null ? "nan" : (m / 1000).toFixed(3));
  });

  if (M.keys.length && !fromHash()) {
    if (M.top.length) select(M.top[0][1], M.top[0][2]); else select(M.keys[0], 0);
  }
})();
"""


# ------------------------------------------------------------------------------------------
# Plots (matplotlib, imported lazily; no pyplot, so no global backend is changed)
# ------------------------------------------------------------------------------------------


def _figure(what: str, **kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{what} needs matplotlib: pip install matplotlib (or rnnkit[plot])") from err
    return Figure(**kwargs)


def _tick_label(ch: str) -> str:
    return {"\n": "\u21b5", "\t": "\u2192", " ": "\u2423"}.get(
        ch, ch if ch.isprintable() else "\u00b7")


def _pick_units(a: np.ndarray, units, limit: int = 64) -> np.ndarray:
    if units is not None:
        return np.asarray(units, dtype=np.intp).reshape(-1)
    h = a.shape[1]
    if h <= limit:
        return np.arange(h)
    return np.sort(np.argsort(-a.std(axis=0), kind="stable")[:limit])  # the most active ones


def draw_heatmap(ax, text: str, acts: Mapping[str, np.ndarray], key: str, units=None,
                 max_chars: int = 200):
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
    im = ax.imshow(img, aspect="auto", interpolation="nearest", cmap="RdBu_r",
                   vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([_tick_label(ch) for ch in shown], fontsize=7, family="monospace")
    ax.tick_params(axis="x", length=0, pad=2)
    step = max(1, len(units) // 32)
    ax.set_yticks(range(0, len(units), step))
    ax.set_yticklabels([str(u) for u in units[::step]], fontsize=7)
    ax.set_ylabel("unit")
    ax.figure.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    return ax


def plot_heatmap(path, text: str, acts: Mapping[str, np.ndarray], key: str, units=None,
                 max_chars: int = 200) -> str:
    """Write :func:`draw_heatmap` to a PNG at ``path`` and return the path."""
    n_units = len(_pick_units(_check_acts(acts, key, len(text))[:max_chars], units))
    n_chars = min(len(text), max_chars)
    fig = _figure("plot_heatmap", figsize=(max(6.0, 0.11 * n_chars + 1.5),
                                           min(16.0, max(2.5, 0.14 * n_units + 1.2))))
    draw_heatmap(fig.add_subplot(), text, acts, key, units=units, max_chars=max_chars)
    fig.tight_layout()
    path = os.fspath(path)
    fig.savefig(path, dpi=100)
    return path


def draw_loss(ax, loss_history: Mapping[str, Sequence[float]]):
    """Draw the training (line) and validation (markers) loss against the step; return ``ax``."""
    step = np.asarray(loss_history.get("step", []), dtype=np.float64).reshape(-1)
    train = np.asarray(loss_history.get("train_loss", []), dtype=np.float64).reshape(-1)
    val = np.asarray(loss_history.get("val_loss", []), dtype=np.float64).reshape(-1)
    if len(train):
        x = step if len(step) == len(train) else np.arange(len(train))
        ax.plot(x, train, lw=1.2, color="C0", label="train")
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
    ax.set_title("training loss", fontsize=10)
    return ax


def plot_loss(path, loss_history: Mapping[str, Sequence[float]]) -> str:
    """Write :func:`draw_loss` to a PNG at ``path`` and return the path."""
    fig = _figure("plot_loss", figsize=(7.0, 4.0))
    draw_loss(fig.add_subplot(), loss_history)
    fig.tight_layout()
    path = os.fspath(path)
    fig.savefig(path, dpi=100)
    return path


# ------------------------------------------------------------------------------------------
# Everything at once
# ------------------------------------------------------------------------------------------


def write_report(out_dir, text: str, acts: Mapping[str, np.ndarray],
                 loss_history: Optional[Mapping[str, Sequence[float]]] = None, *,
                 title: str = "", max_chars: Optional[int] = None, top: int = 20,
                 max_page_bytes: float = 40e6) -> Dict[str, str]:
    """Write the page, the plots and the interpretable-cell list into ``out_dir``.

    Files: ``index.html`` (:func:`write_html`), ``interpretable.txt`` (the ``top`` cells of
    :func:`find_interpretable`, then the best cell for each feature), ``heatmap_<key>.png``
    for every ``h`` and ``c`` key, ``loss.png`` when ``loss_history`` is given. Without
    matplotlib the PNGs are skipped with a warning. Returns a dict ``name -> path``.

    The page shows ``max_chars`` characters (default: as many as keep it near
    ``max_page_bytes``, about 5 bytes per value, between 1000 and 20000); the search and
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
    with open(txt, "w", encoding="utf-8") as fh:
        fh.write(f"# Most interpretable cells ({n} characters, {len(every)} unit/feature pairs)\n")
        fh.write(format_interpretable(found))
        fh.write("\n# Best cell for each feature\n")
        fh.write(format_interpretable([best[f] for f in feats if f in best]))
    paths["interpretable.txt"] = txt
    if max_chars is None:
        values = sum(int(np.asarray(a).shape[1]) for a in acts.values())
        max_chars = int(min(20000, max(1000, max_page_bytes // (5 * max(values, 1)))))
    paths["index.html"] = write_html(os.path.join(out_dir, "index.html"), text, acts,
                                     title=title, max_chars=max_chars, interpretable=found)
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        warnings.warn("matplotlib is not installed: the PNG plots are skipped "
                      "(pip install matplotlib)", stacklevel=2)
        return paths
    for key in _sorted_keys(acts):
        if _split_key(key)[1] in ("h", "c"):
            name = f"heatmap_{key}.png"
            paths[name] = plot_heatmap(os.path.join(out_dir, name), text, acts, key)
    if loss_history is not None:
        paths["loss.png"] = plot_loss(os.path.join(out_dir, "loss.png"), loss_history)
    return paths
