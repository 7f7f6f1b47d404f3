"""The documentation site, as a reader meets it: `mkdocs build --strict` (every warning, a broken
link or a docstring that does not parse, is an error) builds it; every internal link of the built
pages resolves (.ci/check_site.py); the front page, opened in headless chromium, shows the
header bar, the navigation and the text. Skips when MkDocs (the `docs` extra) is not installed;
.ci/docs builds and checks the same site in CI. The code blocks of the pages run in
test_readme.py.
"""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_site", ROOT / ".ci" / "check_site.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check_site = _load_checker()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for mod in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(mod, reason="the docs extra (pip install '.[docs]') is not installed")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout}\n{r.stderr}"
    return out


def test_every_page_of_the_nav_is_built(site):
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(ROOT / "docs") for p in (ROOT / "docs").rglob("*.md"))
    for page in pages:
        assert f" {page.as_posix()}" in nav, f"{page} is not in mkdocs.yml's nav"
        assert (site / page.with_suffix(".html")).is_file(), page
    api = (site / "reference" / "functions.html").read_text(encoding="utf-8")
    assert "lstm_forward" in api and "Gradients of an" in api  # from the docstrings


def test_internal_links_resolve(site):
    assert check_site.count_links(site) > 100
    assert check_site.broken_links(site) == []


def test_the_checker_finds_a_broken_link(site, tmp_path):
    bad = tmp_path / "site"
    shutil.copytree(site, bad)
    page = bad / "index.html"
    text = page.read_text(encoding="utf-8")
    assert 'href="guides/layers.html"' in text
    page.write_text(
        text.replace('href="guides/layers.html"', 'href="guides/gone.html"', 1).replace(
            'href="guides/charlm.html"', 'href="guides/charlm.html#gone"', 1
        ),
        encoding="utf-8",
    )
    found = check_site.broken_links(bad)
    assert "index.html: guides/gone.html (no such file)" in found
    assert any("#gone (no element with id 'gone'" in b for b in found), found


def _chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no chromium (CI installs Debian's)")


def test_front_page_in_a_browser(site, tmp_path):
    """The rendered front page: the DOM after scripts ran holds the nav and the sections, and
    a screenshot has the indigo header bar and dark text on white (not a blank page)."""
    browser = _chromium()
    url = (site / "index.html").as_uri()
    args = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,1000",
        "--virtual-time-budget=3000",
    ]
    dom = subprocess.run(
        args + ["--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    for text in (
        "Swap one import",
        "Two commands",
        "The character-level language model",
        "API reference",
    ):
        assert text in dom, text
    png = tmp_path / "front.png"
    subprocess.run(args + [f"--screenshot={png}", url], capture_output=True, timeout=120)
    assert png.is_file() and png.stat().st_size > 20_000
    image = pytest.importorskip("matplotlib.image")
    rgb = (image.imread(str(png))[..., :3] * 255).round()
    header = rgb[5:40, 300:900].reshape(-1, 3).mean(0)
    assert header[2] > 150 and header[0] < 110, header  # Material's indigo bar
    body = rgb[100:, 250:1000]
    dark = (body.max(-1) < 100).mean()
    assert 0.005 < dark < 0.5, dark  # text, not a blank or a black page
