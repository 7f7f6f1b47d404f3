"""Checks a built documentation site (mkdocs build): every internal link of every page resolves.

An internal link is an ``href`` or ``src`` without a scheme (http:, mailto:, data:, ...) and not
protocol-relative (``//host``); a root-absolute one (``/x.html``) starts at the site's root. It
must name a file of the site (a folder link needs its ``index.html``), and its ``#fragment``,
if any, must be the ``id`` (or ``name``) of an element of the target page. Standard library
only, so that CI and the tests can run it anywhere.

    python .ci/check_site.py SITE_DIR      # prints the broken links; exit 1 if there are any
"""

from __future__ import annotations

import html.parser
import pathlib
import sys
import urllib.parse


class _Page(html.parser.HTMLParser):
    """The links (tag, attribute, value) and the element ids of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            if name in ("href", "src"):
                self.links.append((tag, name, value))


def _parse(path: pathlib.Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def _is_internal(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return not parts.scheme and not parts.netloc and not url.startswith("//")


def broken_links(site: pathlib.Path) -> list[str]:
    """'page: link (why)' for every internal link of the site that does not resolve."""
    site = site.resolve()
    pages = sorted(site.rglob("*.html"))
    if not pages:
        return [f"{site}: no HTML pages (was the site built?)"]
    parsed: dict[pathlib.Path, _Page] = {}

    def page_of(path):
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    bad = []
    for page in pages:
        for _, _, url in page_of(page).links:
            if not _is_internal(url):
                continue
            parts = urllib.parse.urlsplit(url)
            where = page.relative_to(site)
            target = page
            if parts.path:
                path = urllib.parse.unquote(parts.path)
                # a root-absolute link (the 404 page has them) starts at the site's root
                base = site if path.startswith("/") else page.parent
                target = (base / path.lstrip("/")).resolve()
                if target.is_dir():
                    target = target / "index.html"
                if site not in target.parents and target != site:
                    bad.append(f"{where}: {url} (outside the site)")
                    continue
                if not target.is_file():
                    bad.append(f"{where}: {url} (no such file)")
                    continue
            if parts.fragment and target.suffix == ".html":
                if urllib.parse.unquote(parts.fragment) not in page_of(target).ids:
                    bad.append(
                        f"{where}: {url} (no element with id "
                        f"{parts.fragment!r} in {target.relative_to(site)})"
                    )
    return bad


def count_links(site: pathlib.Path) -> int:
    """How many internal links the site's pages hold (to report what was checked)."""
    return sum(
        1
        for p in pathlib.Path(site).rglob("*.html")
        for _, _, url in _parse(p).links
        if _is_internal(url)
    )


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    site = pathlib.Path(args[0])
    bad = broken_links(site)
    for line in bad:
        print(line)
    n = count_links(site)
    print(f"{len(bad)} broken of {n} internal links in {site}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
