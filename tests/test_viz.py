"""rnnkit.charlm.viz: text features, the interpretable-cell search, the plots and the HTML
page, the page checked in a real headless browser (Debian's chromium) when it is installed."""

import html
import os
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from rnnkit.charlm import viz

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def marks(text, values):
    """The characters of text where values is non-zero, as a string (for readable asserts)."""
    return "".join(ch for ch, v in zip(text, values) if v)


# ------------------------------------------------------------------------------------------
# text_features
# ------------------------------------------------------------------------------------------


def test_features_quotes_with_escapes():
    text = r'x = "a\"b(" + ' + "'c\\'d' # end"
    f = viz.text_features(text)
    assert marks(text, f["in_quotes"]) == r'"a\"b("' + "'c\\'d'"
    assert not f["in_parens"].any()  # a bracket inside a literal does not count


def test_features_escaped_backslash_closes_the_literal():
    text = r'"a\\" b "c"'
    f = viz.text_features(text)
    assert marks(text, f["in_quotes"]) == r'"a\\""c"'


def test_features_apostrophes_and_line_ends():
    text = "don't say 'hi' it's f'{x}'\nx = 'open\ny = \"two\nlines\" z"
    q = viz.text_features(text)["in_quotes"]
    # apostrophes between letters are not quotes, a string prefix (f'...') still opens one
    assert marks(text, q) == "'hi''{x}''open\"two\nlines\""
    # a single-quoted literal ends with its line, a double-quoted one may go on
    assert q[text.index("\ny =")] == 0 and q[text.index("\nlines")] == 1


def test_features_nested_brackets():
    text = "a(b[c{d}e]f)g ) h (i"
    p = viz.text_features(text)["in_parens"]
    assert marks(text, p) == "(b[c{d}e]f)(i"  # unmatched ")" ignored, brackets included


def test_features_indentation_columns_and_newlines():
    text = "ab\n  cd\n\t x\n\ny"
    f = viz.text_features(text)
    assert f["indent_depth"].tolist() == [0, 0, 0, 1, 2, 2, 2, 2, 1, 2, 2, 2, 0, 0]
    assert f["line_position"].tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 0]
    assert f["after_newline"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1]
    assert set(f) == set(viz.FEATURES)
    assert all(v.dtype == np.float64 and v.shape == (len(text),) for v in f.values())


def test_features_empty_text():
    f = viz.text_features("")
    assert all(v.shape == (0,) for v in f.values())


# ------------------------------------------------------------------------------------------
# find_interpretable on a synthetic corpus where the answer is known
# ------------------------------------------------------------------------------------------


def fake_code(n_chars=5000, seed=0):
    """Python-looking text with quotes, nested brackets and indentation."""
    rng = np.random.default_rng(seed)
    names = ["x", "total", "count", "name", "value", "items", "self.data", "result"]
    words = ["hello", "world", "spam", "eggs", "a b c", "it\\'s", 'say \\"hi\\"', "(x)"]
    lines = []
    while sum(len(s) + 1 for s in lines) < n_chars:
        indent = "    " * int(rng.integers(0, 4))
        a, b = rng.choice(names, 2)
        w = str(rng.choice(words))
        q = "'" if rng.random() < 0.5 else '"'
        kind = rng.integers(0, 5)
        if kind == 0:
            line = f"{a} = {b}({q}{w}{q}, [{a}, {{{q}k{q}: {b}}}])"
        elif kind == 1:
            line = f"if {a} > len({b}):"
        elif kind == 2:
            line = f"print({q}{w}{q} + str({a}))  # note {w}"
        elif kind == 3:
            line = f"return {a}"
        else:
            line = f"{a}.append(({b}, {q}{w} {w}{q}))"
        lines.append(indent + line)
    return "\n".join(lines) + "\n"


def planted_acts(text, seed=1):
    """Noise everywhere except l0.c unit 7, which tracks in_quotes; l1.h unit 2 is constant."""
    rng = np.random.default_rng(seed)
    n = len(text)
    q = viz.text_features(text)["in_quotes"]
    acts = {key: rng.normal(0.0, 0.5, (n, 16)) for key in ("l0.h", "l0.c", "l1.h", "l1.c")}
    acts["l0.i"] = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 1.0, (n, 16))))
    acts["l0.c"][:, 7] = 1.5 * np.tanh(3.0 * (q - 0.5)) + rng.normal(0.0, 0.2, n)
    acts["l1.h"][:, 2] = 0.25
    return acts


def test_find_interpretable_finds_the_planted_quote_cell():
    text = fake_code()
    assert 5000 <= len(text) < 5200
    feats = viz.text_features(text)
    assert 0.2 < feats["in_quotes"].mean() < 0.6 and feats["in_parens"].mean() > 0.2
    acts = planted_acts(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constant units and features: no warnings
        found = viz.find_interpretable(text, acts, top=10)
    assert len(found) == 10
    feature, key, unit, r = found[0]
    assert (feature, key, unit) == ("in_quotes", "l0.c", 7) and r > 0.9
    assert abs(found[1][3]) < 0.2  # everything else is noise
    rs = [abs(row[3]) for row in found]
    assert rs == sorted(rs, reverse=True)
    assert all(
        not (k == "l1.h" and u == 2) for _, k, u, _ in viz.find_interpretable(text, acts, top=None)
    )  # the constant unit is skipped
    # the vectorised correlation is Pearson's
    for feature, key, unit, r in found[:4]:
        assert r == pytest.approx(np.corrcoef(feats[feature], acts[key][:, unit])[0, 1], abs=1e-12)


def test_find_interpretable_custom_features_and_errors():
    text = "abcdefgh"
    acts = {"l0.h": np.arange(16.0).reshape(8, 2) * [1.0, -1.0]}
    feats = {"ramp": np.arange(8.0), "flat": np.ones(8)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = viz.find_interpretable(text, acts, features=feats)
    assert [(f, k, u) for f, k, u, _ in found] == [("ramp", "l0.h", 0), ("ramp", "l0.h", 1)]
    assert [r for *_, r in found] == pytest.approx([1.0, -1.0])
    with pytest.raises(ValueError, match=r"acts\['l0.h'\]: expected shape \(9, H\)"):
        viz.find_interpretable(text + "i", acts, features={"x": np.arange(9.0)})
    with pytest.raises(ValueError, match=r"features\['x'\]: expected shape \(8,\)"):
        viz.find_interpretable(text, acts, features={"x": np.arange(9.0)})
    assert "l0.h/0" in viz.format_interpretable(found)


# ------------------------------------------------------------------------------------------
# The HTML page (as text)
# ------------------------------------------------------------------------------------------


def page_acts(page):
    """The activations a page holds: {key: uint8 [H, n]} (decoded as its script does)."""
    import base64
    import json

    data = json.loads(
        re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1)
    )
    n = len(data["meta"]["text"])
    return {
        k: np.frombuffer(base64.b64decode(v), np.uint8).reshape(-1, n)
        for k, v in data["acts"].items()
    }


def test_html_is_self_contained_and_escapes_the_text(tmp_path):
    text = 'a</script><script>alert("x")</script><!-- & \u2028 <b>\n'
    n = len(text)
    acts = {"l0.h": np.linspace(-1, 1, n * 3).reshape(n, 3), "l0.f": np.full((n, 3), 0.5)}
    acts["l0.h"][:2, 0] = [-1.0, -0.77777]
    path = viz.write_html(tmp_path / "p.html", text, acts, title="<i>t</i>")
    page = read(path)
    assert page.count("<script") == 2 and page.count("</script>") == 2  # only the page's own
    assert "alert" in page and "<b>" not in page and "<!--" not in page
    assert "<title>&lt;i&gt;t&lt;/i&gt;</title>" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # no network
    h = page_acts(page)["l0.h"]  # bytes, unit-major
    assert h[0, :2].tolist() == [0, viz.quantised(np.array(-0.77777), "h")] == [0, 28]


def test_html_truncates_and_rejects_bad_input(tmp_path):
    text = "x" * 50
    acts = {"l0.h": np.zeros((50, 2))}
    page = read(viz.write_html(tmp_path / "p.html", text, acts, max_chars=10))
    assert '"total":50' in page and '"text":"xxxxxxxxxx"' in page
    with pytest.raises(ValueError, match=r"acts\['l0.h'\]: expected shape \(49, H\)"):
        viz.write_html(tmp_path / "q.html", text[1:], acts)
    with pytest.raises(ValueError, match="keys: 'l0.c' is not in acts"):
        viz.write_html(tmp_path / "q.html", text, acts, keys=["l0.c"])


# ------------------------------------------------------------------------------------------
# PNG outputs
# ------------------------------------------------------------------------------------------


def assert_png(path, min_bytes=3000):
    with open(path, "rb") as fh:
        data = fh.read()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes
    from matplotlib.image import imread

    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.05  # not a blank image


def test_plots_and_report(tmp_path):
    pytest.importorskip("matplotlib")
    text = fake_code(600)
    acts = planted_acts(text)
    acts["l0.h"] = np.tanh(acts["l0.h"])
    assert_png(viz.plot_heatmap(tmp_path / "h.png", text, acts, "l0.c", max_chars=120))
    assert_png(viz.plot_heatmap(tmp_path / "g.png", text, acts, "l0.i", units=[1, 7]))
    steps = np.arange(0, 1000, 10)
    history = {
        "step": steps,
        "train_loss": 3.0 * np.exp(-steps / 300) + 1.2,
        "val_loss": np.where(steps % 100 == 0, 3.0 * np.exp(-steps / 300) + 1.3, np.nan),
    }
    assert_png(viz.plot_loss(tmp_path / "loss.png", history))
    assert_png(viz.plot_loss(tmp_path / "empty.png", {}), min_bytes=1000)

    paths = viz.write_report(tmp_path / "out", text, acts, history, title="report")
    assert set(paths) == {
        "index.html",
        "interpretable.txt",
        "loss.png",
        "heatmap_l0.h.png",
        "heatmap_l0.c.png",
        "heatmap_l1.h.png",
        "heatmap_l1.c.png",
    }
    for name, path in paths.items():
        assert os.path.dirname(path) == str(tmp_path / "out") and os.path.getsize(path) > 500
        if name.endswith(".png"):
            assert_png(path)
    report = read(paths["interpretable.txt"])
    first = report.splitlines()[2].split()
    assert first[:3] == ["1", "in_quotes", "l0.c/7"] and float(first[3]) > 0.9
    assert "# Best cell for each feature" in report


# ------------------------------------------------------------------------------------------
# The HTML page in a real headless browser
# ------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
)


def chromium(tmp_path, url, *args):
    """Run headless chromium on url; returns stdout (the DOM with --dump-dom)."""
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        url,
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within 60 s: {' '.join(cmd)}")
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def screenshot(tmp_path, url, name):
    png = tmp_path / name
    chromium(tmp_path, url, f"--screenshot={png}", "--window-size=800,600")
    assert png.exists(), f"chromium wrote no screenshot {png}"
    from matplotlib.image import imread

    return np.round(imread(str(png))[..., :3] * 255).astype(int)


def dom_spans(dom):
    """(style, text) of every character span of the page, in order."""
    return [
        (style, html.unescape(inner))
        for style, inner in re.findall(
            r'<span class="c[^"]*" style="([^"]*)">(.*?)</span>', dom, re.S
        )
    ]


def background(style):
    m = re.search(r"background-color: rgb\((\d+), (\d+), (\d+)\)", style)
    assert m, style
    return tuple(int(x) for x in m.groups())


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    """A page where l0.c/7 is +5 on the first half of the text and -5 on the second half,
    l0.c/3 is 0, l0.i/2 holds known gate values; the text has HTML specials and tabs."""
    tmp = tmp_path_factory.mktemp("page")
    line = "if (a < b && c > \"d\") {\treturn '</script>';}  // x\n"
    text = line * 30
    n = len(text)
    rng = np.random.default_rng(0)
    acts = {key: rng.normal(0.0, 0.3, (n, 8)) for key in ("l0.h", "l0.c", "l1.h", "l1.c")}
    acts["l0.i"] = np.full((n, 8), 0.5)
    acts["l0.c"][:, 7] = np.where(np.arange(n) < n // 2, 5.0, -5.0)
    acts["l0.c"][:, 3] = 0.0
    acts["l0.i"][:4, 2] = [0.0, 0.25, 0.8, 1.0]
    path = viz.write_html(tmp / "page.html", text, acts, title="browser test")
    return tmp, "file://" + os.path.abspath(path), text, acts


@needs_chromium
def test_browser_dom_colours_every_character(browser_page, tmp_path):
    _, url, text, acts = browser_page
    spans = dom_spans(chromium(tmp_path, url + "#l0.c/7", "--dump-dom"))
    assert len(spans) == len(text)  # one span per character
    shown = "".join(t for _, t in spans).replace("\u21b5\n", "\n").replace("\u2192\t", "\t")
    assert shown == text  # specials render as text
    n = len(text)
    for i in (0, n // 2 - 1, n // 2, n - 1):
        assert background(spans[i][0]) == viz._rgb(
            viz.page_value(acts["l0.c"][i, 7], "cell"), "cell"
        )
    assert background(spans[0][0]) == (220, 50, 47) and background(spans[-1][0]) == (38, 110, 200)

    dom = chromium(tmp_path, url + "#l0.i/2", "--dump-dom")
    spans = dom_spans(dom)
    assert [background(s) for s, _ in spans[:5]] == [
        viz._rgb(viz.page_value(v, "gate"), "gate") for v in (0.0, 0.25, 0.8, 1.0, 0.5)
    ]
    assert background(spans[4][0]) == (255, 255, 255)  # a gate at 0.5 is white
    assert "<title>l0.i/2" in dom  # the fragment chose the cell
    assert '<option value="l1">l1</option>' in dom  # layer selector filled


@needs_chromium
def test_browser_screenshot_shows_the_selected_cell(browser_page, tmp_path):
    _, url, _, _ = browser_page
    img = screenshot(tmp_path, url + "#l0.c/7", "half.png")
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    red = np.mean((r > 190) & (g < 90) & (b < 90))
    blue = np.mean((b > 170) & (r < 80) & (g < 140))
    assert red > 0.08 and blue > 0.08, (red, blue)

    img = screenshot(tmp_path, url + "#l0.c/3", "zero.png")
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    strong = np.mean(((r > 190) & (g < 90) & (b < 90)) | ((b > 170) & (r < 80) & (g < 140)))
    white = np.mean((r > 240) & (g > 240) & (b > 240))
    assert strong < 0.005 and white > 0.6, (strong, white)


CONTROLS = """<!DOCTYPE html><html><body><pre id="out">not run</pre>
<iframe id="f" src="page.html" width="800" height="600"></iframe>
<script>
var f = document.getElementById("f");
f.onload = function () {
  var w = f.contentWindow, d = w.document, log = [];
  function bg() { return d.querySelector("pre .c").style.backgroundColor; }
  function $(id) { return d.getElementById(id); }
  log.push(w.location.hash);
  w.location.hash = "#l0.c/6";
  setTimeout(function () {
    log.push(w.location.hash + " " + $("unit").value + " " + $("quantity").value);
    $("next").click(); log.push(w.location.hash + " " + bg());
    $("unit").value = "3"; $("unit").onchange(); log.push(w.location.hash + " " + bg());
    $("layer").value = "l1"; $("layer").onchange(); log.push(w.location.hash);
    $("quantity").value = "h"; $("quantity").onchange(); log.push(w.location.hash);
    $("prev").click(); log.push(w.location.hash);
    w.location.hash = "#l0.i/99";
    setTimeout(function () {
      log.push(w.location.hash + " " + $("unit").value + " " + bg());
      d.querySelectorAll("pre .c")[1].dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
      log.push($("info").textContent);
      document.getElementById("out").textContent = log.join("|");
    }, 100);
  }, 100);
};
</script></body></html>
"""


@needs_chromium
def test_browser_controls_read_and_write_the_fragment(browser_page, tmp_path):
    """Drive the page's controls from a parent page (an iframe on the same file:// origin)."""
    tmp, _, text, acts = browser_page
    wrapper = tmp / "controls.html"
    wrapper.write_text(CONTROLS)
    dom = chromium(
        tmp_path,
        "file://" + str(wrapper),
        "--allow-file-access-from-files",
        "--virtual-time-budget=5000",
        "--dump-dom",
    )
    log = html.unescape(re.search(r'<pre id="out">(.*?)</pre>', dom, re.S).group(1)).split("|")
    _, key, unit, _ = viz.find_interpretable(text, acts, top=1)[0]
    assert log == [
        f"#{key}/{unit}",  # no fragment: the top interpretable cell
        "#l0.c/6 6 c",  # a new fragment selects its cell
        "#l0.c/7 rgb(220, 50, 47)",  # next
        "#l0.c/3 rgb(255, 255, 255)",  # unit typed in
        "#l1.c/3",  # layer: the quantity and unit are kept
        "#l1.h/3",  # quantity
        "#l1.h/2",  # previous
        "#l0.i/7 7 rgb(255, 255, 255)",  # an out-of-range unit is clamped, fragment fixed
        "char 1 'f'   l0.i/7 \u2248 0.50",  # hovering a character shows its value
    ]


def test_degenerate_inputs(tmp_path):
    pytest.importorskip("matplotlib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert viz.find_interpretable("", {"l0.h": np.zeros((0, 3))}) == []
        assert viz.find_interpretable("ab", {"l0.h": np.zeros((2, 3))}) == []
        paths = viz.write_report(tmp_path / "empty", "", {"l0.c": np.zeros((0, 3))}, {})
        assert set(paths) == {"index.html", "interpretable.txt", "heatmap_l0.c.png", "loss.png"}
        acts = {"l0.c": np.array([[np.nan, 1.0], [0.5, np.inf]])}
        page = read(viz.write_html(tmp_path / "nan.html", "ab", acts))
        c = page_acts(page)["l0.c"]  # non-finite values: byte 255
        assert c.tolist() == [
            [255, round((np.tanh(0.5) + 1) * 127)],  # unit 0, unit 1
            [round((np.tanh(1.0) + 1) * 127), 255],
        ]
        assert_png(viz.plot_heatmap(tmp_path / "nan.png", "ab", acts, "l0.c"), min_bytes=1000)


def test_report_page_size_budget(tmp_path):
    text = "ab\n" * 2000
    acts = {f"l0.{q}": np.zeros((len(text), 100)) for q in "hc"}
    paths = viz.write_report(tmp_path, text, acts, max_page_bytes=2e6)
    page = read(paths["index.html"])
    assert '"total":6000' in page and len(page) < 3e6
    shown = int(2e6 // (viz.BYTES_PER_VALUE * 200))  # 7500 characters: all 6000
    assert len(page_acts(page)["l0.h"][0]) == min(6000, shown)
    paths = viz.write_report(tmp_path, text, acts, max_page_bytes=4e5)
    assert page_acts(read(paths["index.html"]))["l0.c"].shape == (100, 1500)  # 4e5 / (4/3 * 200)
    assert 4e5 < os.path.getsize(paths["index.html"]) < 4e5 + 30000  # the budget, plus the code
