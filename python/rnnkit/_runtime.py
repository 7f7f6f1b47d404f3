"""Runtime control: threads and SIMD target (documentation: "Threads and SIMD", linked from
the README), and `info()`."""

from __future__ import annotations

import os
import platform

import numpy as np

from . import _core
from ._checks import check_number
from ._version import __version__


def set_num_threads(n):
    """Sets the number of threads the kernels may use (>= 1). Results do not depend on it."""
    n = check_number("n", n, integer=True)
    if n < 1:
        raise ValueError(f"n: expected a thread count >= 1, got {n}")
    _core.set_num_threads(int(n))


def get_num_threads():
    """The number of threads the kernels may use (default: RNNKIT_NUM_THREADS, else the cores
    this process may run on)."""
    return _core.get_num_threads()


def simd_targets():
    """The SIMD targets compiled in and usable on this CPU, best first, e.g.
    ``('avx512', 'avx2', 'scalar')``."""
    return tuple(_core.simd_targets())


def get_simd_target():
    """The SIMD target the kernels use now."""
    return _core.get_simd_target()


def set_simd_target(name):
    """Selects a SIMD target by name (see `simd_targets`); ValueError if unknown or unusable."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    _core.set_simd_target(name)


def _kib(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n >> 10} KiB"


def cpu_info():
    """The CPU as cpuid describes it: vendor, model name, family/model/stepping, cache sizes in
    bytes (leaf 4 on Intel, 0x8000001D on AMD; one core's view, `*_shared_by` logical CPUs
    share one), and the instruction-set extensions it reports."""
    return dict(_core._cpu_info())


def _cpu_lines(c):
    name = c["model_name"] or "unknown model"
    ident = f"{name} ({c['vendor']}, family {c['family']} model {c['model']} stepping {c['stepping']}"
    ident += ", virtual machine)" if c["hypervisor"] else ")"
    caches = (f"L1d {_kib(c['l1d_bytes'])}, L2 {_kib(c['l2_bytes'])}, L3 {_kib(c['l3_bytes'])} "
              f"(L3 shared by {c['l3_shared_by']} logical CPUs)")
    if not c["caches_from_cpuid"]:
        caches += " [assumed: no cpuid cache leaf answered]"
    return ident, caches, c["features"]


def _gemm_line(target):
    """The GEMM tile and blocking `target` uses, per dtype, and the CPU-family row chosen."""
    parts = []
    for dtype in ("float32", "float64"):
        p = _core._gemm_params(target, dtype)
        parts.append(f"{dtype} tile {p['mr']}x{p['nr']} kc {p['kc']} mc {p['mc']} nc {p['nc']}")
    return f"{'; '.join(parts)} (family row '{p['family']}')"


def info():
    """A dict describing this build and runtime: version, SIMD target, threads, compiler, flags,
    and the detected CPU (`cpu`, `cpu_caches`, `cpu_features`; `cpu_info()` has the numbers)."""
    build = dict(_core.build_info)
    cpu, caches, features = _cpu_lines(cpu_info())
    return {
        "version": __version__,
        "cpu": cpu,
        "cpu_caches": caches,
        "cpu_features": features,
        "simd_target": get_simd_target(),
        "simd_targets": list(simd_targets()),
        "gemm": _gemm_line(get_simd_target()),
        "compiled_targets": list(_core.compiled_targets()),
        "num_threads": get_num_threads(),
        "compiler": build.get("compiler", ""),
        "build_flags": build.get("flags", ""),
        "build_type": build.get("build_type", ""),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "env": {k: os.environ[k] for k in ("RNNKIT_SIMD", "RNNKIT_NUM_THREADS", "OPENBLAS_CORETYPE")
                if k in os.environ},
    }


def _apply_environment():
    """Honours RNNKIT_SIMD at import; a target this machine cannot run is an error, not a
    silent fallback."""
    want = os.environ.get("RNNKIT_SIMD")
    if want:
        try:
            _core.set_simd_target(want.strip().lower())
        except ValueError as e:
            raise ValueError(f"RNNKIT_SIMD: {e}") from None
