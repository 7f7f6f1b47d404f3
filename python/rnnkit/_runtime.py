"""Runtime control: threads and SIMD target (documentation: "Threads and SIMD", linked from
the README), and `info()`."""

from __future__ import annotations

import os
import platform

import numpy as np

from . import _core
from ._checks import check_number
from ._version import __version__

# The most threads the kernels may use: 256, or twice the CPUs on a bigger machine. Threads
# beyond the cores only add workers that spin and then sleep (each with its stack and its
# scratch) and never make a call faster; an unbounded count (10**6) made every later call
# fail with std::bad_alloc, and 10,000 left 1,072 threads that never exit.
MAX_THREADS = max(256, 2 * (os.cpu_count() or 1))


def _check_thread_count(name, n):
    if n < 1:
        raise ValueError(f"{name}: expected a thread count >= 1, got {n}")
    if n > MAX_THREADS:
        raise ValueError(
            f"{name}: expected a thread count <= {MAX_THREADS} (rnnkit.MAX_THREADS: "
            f"256, or twice the CPUs on a bigger machine), got {n}"
        )
    return int(n)


def set_num_threads(n):
    """Sets the number of threads the kernels may use, from 1 to ``MAX_THREADS`` (256, or
    twice the CPUs on a larger machine). Results do not depend on it."""
    n = check_number("n", n, integer=True)
    _core.set_num_threads(_check_thread_count("n", n))


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


def memory_pool():
    """The pool that keeps the blocks of freed large outputs for the next call's outputs: a
    dict of ``kept_bytes``, ``kept_blocks``, ``limit_bytes``, ``min_bytes`` (arrays smaller
    than this are NumPy's own), ``reused`` and ``allocated`` (blocks handed out so far)."""
    return dict(_core.pool_info())


def set_memory_pool_limit(nbytes):
    """Sets how many bytes of freed outputs the pool may keep (default 256 MiB, env
    RNNKIT_POOL_MB); the oldest blocks beyond it are freed now. ``0`` turns the pool off and
    frees everything it kept. Results do not depend on it."""
    nbytes = check_number("nbytes", nbytes, integer=True)
    if nbytes < 0:
        raise ValueError(f"nbytes: expected a byte count >= 0, got {nbytes}")
    _core.set_pool_limit(min(int(nbytes), 2**62))


def _kib(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n >> 10} KiB"


def cpu_info():
    """The CPU as cpuid describes it: vendor, model name, family/model/stepping, cache sizes in
    bytes (leaf 4 on Intel, 0x8000001D on AMD; one core's view, `*_shared_by` logical CPUs
    share one), and the instruction-set extensions it reports."""
    return dict(_core._cpu_info())


def _cpu_lines(c):
    name = c["model_name"] or "unknown model"
    ident = (
        f"{name} ({c['vendor']}, family {c['family']} model {c['model']} stepping {c['stepping']}"
    )
    ident += ", virtual machine)" if c["hypervisor"] else ")"
    caches = (
        f"L1d {_kib(c['l1d_bytes'])}, L2 {_kib(c['l2_bytes'])}, L3 {_kib(c['l3_bytes'])} "
        f"(L3 shared by {c['l3_shared_by']} logical CPUs)"
    )
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


def _pool_line(p):
    if p["limit_bytes"] == 0:
        return "off (RNNKIT_POOL_MB=0)"
    return (
        f"keeps up to {_kib(p['limit_bytes'])} of freed outputs of {_kib(p['min_bytes'])} or "
        f"more; {_kib(p['kept_bytes'])} kept now"
    )


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
        "memory_pool": _pool_line(memory_pool()),
        "compiler": build.get("compiler", ""),
        "build_flags": build.get("flags", ""),
        "build_type": build.get("build_type", ""),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "env": {
            k: os.environ[k]
            for k in ("RNNKIT_SIMD", "RNNKIT_NUM_THREADS", "RNNKIT_POOL_MB", "OPENBLAS_CORETYPE")
            if k in os.environ
        },
    }


def _apply_environment():
    """Honours RNNKIT_SIMD, RNNKIT_NUM_THREADS and RNNKIT_POOL_MB at import. A value that
    cannot be used (a target this machine cannot run, a count that is not an integer in range)
    is a ValueError naming the variable, never a silent fallback. An empty value counts as
    unset."""
    want = os.environ.get("RNNKIT_SIMD", "").strip()
    if want:
        try:
            _core.set_simd_target(want.lower())
        except ValueError as e:
            raise ValueError(f"RNNKIT_SIMD: {e}") from None
    text = os.environ.get("RNNKIT_NUM_THREADS", "").strip()
    if text:
        try:
            n = int(text, 10)
        except ValueError:
            raise ValueError(
                f"RNNKIT_NUM_THREADS: expected an integer from 1 to {MAX_THREADS}, got {text!r}"
            ) from None
        _core.set_num_threads(_check_thread_count("RNNKIT_NUM_THREADS", n))
    text = os.environ.get("RNNKIT_POOL_MB", "").strip()
    if text:
        try:
            mib = int(text, 10)
        except ValueError:
            mib = -1
        if not 0 <= mib <= 2**40:
            raise ValueError(
                f"RNNKIT_POOL_MB: expected an integer number of MiB from 0 to {2**40}, got {text!r}"
            )
        _core.set_pool_limit(mib << 20)
