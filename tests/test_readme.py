"""Every Python example in README.md runs (each in a fresh interpreter, in a temporary
directory). Fenced ```python blocks are complete examples; fragments that cannot run alone are
fenced ```py, and signature listings that are not Python syntax are skipped. Blocks that
import torch, matplotlib or keras skip when it is missing."""

import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    text = README.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        code = m.group(1)
        try:
            ast.parse(code)
        except SyntaxError:
            continue
        line = text.count("\n", 0, m.start()) + 1
        out.append(pytest.param(code, id=f"line{line}"))
    return out


EXAMPLES = _examples()


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("code", EXAMPLES)
def test_readme_example_runs(code, tmp_path):
    for mod in ("torch", "matplotlib", "keras"):
        if re.search(rf"^\s*(import|from)\s+{mod}\b|import .*\b{mod}\b", code, re.M):
            pytest.importorskip(mod)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
