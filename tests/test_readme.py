"""Every code example in README.md and in the documentation pages (docs/**/*.md) runs, each in a
fresh interpreter, in a temporary directory. Blocks that import torch, matplotlib, onnx or keras
skip when it is missing.

README.md: fenced ```python blocks are complete examples; fragments that cannot run alone are
fenced ```py, and signature listings that are not Python syntax are skipped.

docs/: stricter, since a page is what a reader copies. Every fenced block has a language.
``python`` blocks run; ``bash`` and ``console`` blocks run their ``rnnkit ...`` commands (in a
console block, the lines after ``$ ``), as ``python -m rnnkit``. Both run in a folder that holds
a small ``charlm.npz`` (an untrained character model), so that commands and examples that read a
checkpoint work without minutes of training. ``text`` blocks are program output or listings.
A block that cannot run here carries ``<!-- not run: the reason -->`` on the line before it;
`test_the_not_run_list_is_short` prints that list and bounds its length.
"""

import ast
import os
import pathlib
import re
import shlex
import shutil
import string
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->\s*$")
OPTIONAL = ("torch", "matplotlib", "keras", "onnx", "onnxruntime")
MAX_NOT_RUN = 6  # the docs' blocks that cannot run here: keep this list short


def _blocks(path):
    """(language, code, line, not-run reason or None) for every fenced block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NOT_RUN.search(before)
        out.append((m.group(1), m.group(2), line, reason.group(1) if reason else None))
    return out


def _readme_examples():
    out = []
    for lang, code, line, _ in _blocks(README):
        if lang != "python":
            continue
        try:
            ast.parse(code)
        except SyntaxError:
            continue
        out.append(pytest.param(code, id=f"line{line}"))
    return out


def _doc_pages():
    return sorted(DOCS.rglob("*.md"))


def _doc_blocks():
    """Every block of the docs, as pytest params (lang, code, reason), id page:line."""
    out = []
    for page in _doc_pages():
        for lang, code, line, reason in _blocks(page):
            out.append(pytest.param(lang, code, reason, id=f"{page.relative_to(DOCS)}:{line}"))
    return out


EXAMPLES = _readme_examples()
DOC_BLOCKS = _doc_blocks()


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def _skip_without_optional_imports(code):
    for mod in OPTIONAL:
        if re.search(rf"^\s*(import|from)\s+{mod}\b|^\s*import .*\b{mod}\b", code, re.M):
            pytest.importorskip(mod)


def _run_python(code, cwd):
    _skip_without_optional_imports(code)
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 1


@pytest.mark.parametrize("code", EXAMPLES)
def test_readme_example_runs(code, tmp_path):
    _run_python(code, tmp_path)


# --- the documentation pages -----------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small untrained char model saved as charlm.npz (what `rnnkit train` writes)."""
    from rnnkit.charlm import CharLM, Vocab

    folder = tmp_path_factory.mktemp("ckpt")
    vocab = Vocab.from_text(string.printable)
    CharLM(vocab, cell="gru", hidden_size=16, embed_size=8, seed=0).save(str(folder / "charlm.npz"))
    return folder / "charlm.npz"


def _commands(lang, code):
    """The shell commands of a bash or console block (comments and output removed)."""
    lines = code.splitlines()
    if lang == "console":
        lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
    cmds = []
    for ln in lines:
        words = shlex.split(ln, comments=True)
        if words:
            cmds.append(words)
    return cmds


def test_the_docs_have_pages_and_examples():
    assert (DOCS / "index.md").exists()
    assert sum(1 for p in DOC_BLOCKS if p.values[0] == "python") >= 8


def test_the_not_run_list_is_short(capsys):
    skipped = [(p.id, p.values[2]) for p in DOC_BLOCKS if p.values[2] is not None]
    with capsys.disabled():
        print(f"\ndocs blocks not run ({len(skipped)} of {len(DOC_BLOCKS)}):")
        for where, reason in skipped:
            print(f"  {where}: {reason}")
    assert len(skipped) <= MAX_NOT_RUN, skipped


@pytest.mark.parametrize("lang,code,reason", DOC_BLOCKS)
def test_docs_block_runs(lang, code, reason, checkpoint, tmp_path):
    assert lang, "give every fenced block a language: python, bash, console or text"
    assert lang in ("python", "bash", "console", "text"), f"unknown block language {lang!r}"
    if reason is not None or lang == "text":
        return  # listed by test_the_not_run_list_is_short; text is output, nothing to run
    shutil.copy(checkpoint, tmp_path / "charlm.npz")
    if lang == "python":
        _run_python(code, tmp_path)
        return
    cmds = _commands(lang, code)
    assert cmds, "a shell block without a command"
    for words in cmds:
        assert words[0] == "rnnkit", (
            f"{' '.join(words)!r}: only rnnkit commands run here; mark the block "
            "<!-- not run: reason -->"
        )
        r = subprocess.run(
            [sys.executable, "-m", "rnnkit", *words[1:]],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, f"{words}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
