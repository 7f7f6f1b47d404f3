"""Shared fixtures: the two backends and every compiled SIMD target."""

import numpy as np
import pytest

import rnnkit
import rnnkit.reference

try:  # the native backend exists once the extension is built
    from rnnkit import _core  # noqa: F401

    HAVE_NATIVE = True
except ImportError:  # pragma: no cover - only while bootstrapping
    HAVE_NATIVE = False

BACKENDS = ["reference"] + (["native"] if HAVE_NATIVE else [])


def backend_module(name):
    return rnnkit.reference if name == "reference" else rnnkit


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend's module: `rnnkit.reference` or `rnnkit` (native)."""
    return backend_module(request.param)


def _targets():
    return list(rnnkit.simd_targets()) if HAVE_NATIVE else []


@pytest.fixture(params=_targets() or [pytest.param(None, marks=pytest.mark.skip("no native"))])
def simd_target(request):
    """Run the test once per compiled SIMD target (scalar and AVX2 are forced explicitly)."""
    before = rnnkit.get_simd_target()
    rnnkit.set_simd_target(request.param)
    try:
        yield request.param
    finally:
        rnnkit.set_simd_target(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def numeric_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of a (perturbed in
    place and restored)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g
