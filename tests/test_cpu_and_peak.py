"""The detected CPU (cpuid) and the built-in FMA-peak loop behind `rnnkit bench`."""

import numpy as np
import pytest

import rnnkit
from rnnkit import _core
from rnnkit._runtime import cpu_info


def test_cpu_info_is_plausible():
    c = cpu_info()
    assert c["vendor"] and isinstance(c["model_name"], str)
    assert c["family"] > 0 and c["model"] >= 0
    # Every x86-64 core since 2005 has at least 16 KiB of L1d; L2 and L3 are larger than L1.
    assert 16 << 10 <= c["l1d_bytes"] <= 1 << 20
    assert c["l2_bytes"] >= c["l1d_bytes"] and c["l3_bytes"] >= c["l2_bytes"] or c["l3_bytes"] == 0
    names = c["features"].split()
    assert ("avx2" in rnnkit.simd_targets()) == ("avx2" in names and "fma" in names)
    if "avx512" in rnnkit.simd_targets():
        assert {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= set(names)


def test_info_names_the_cpu():
    i = rnnkit.info()
    c = cpu_info()
    assert c["vendor"] in i["cpu"] and f"family {c['family']}" in i["cpu"]
    assert i["cpu_caches"].startswith("L1d ") and "L2 " in i["cpu_caches"]
    assert i["cpu_features"] == c["features"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fma_peak_per_target(dtype):
    peaks = {t: _core._fma_peak(t, dtype, 0.005) for t in rnnkit.simd_targets()}
    assert all(np.isfinite(g) and g > 0.1 for g in peaks.values()), peaks


def test_fma_peak_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dtype"):
        _core._fma_peak("scalar", "float16", 0.01)
    with pytest.raises(ValueError, match="seconds"):
        _core._fma_peak("scalar", "float32", 0)
    with pytest.raises(ValueError, match="target"):
        _core._fma_peak("sse9", "float32", 0.01)
