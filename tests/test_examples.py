"""The examples train: shortened runs (a fraction of their steps) reach a lower accuracy.

Full runs and the accuracy each states: `python examples/<name>.py` (exit status 0 when
reached). Thresholds leave room for other SIMD targets and thread counts.
"""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name,steps,at_least",
    [
        ("many_to_one", 150, 0.7),  # full run: 600 steps, >= 0.95 (chance: ~0.3)
        ("one_to_many", 80, 0.8),  # full run: 400 steps, >= 0.95 (chance: ~0.17)
        ("seq2seq", 250, 0.7),  # full run: 800 steps, >= 0.95 (chance: 0.1)
    ],
)
def test_example_learns(name, steps, at_least):
    acc = load(name).main(steps=steps, seed=0)
    assert at_least <= acc <= 1.0, f"{name}: accuracy {acc:.3f} after {steps} steps"


def test_examples_are_reproducible():
    m = load("one_to_many")
    assert m.main(steps=20, seed=3) == m.main(steps=20, seed=3)
