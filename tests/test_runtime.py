"""Runtime control (API.md section 6): threads, SIMD targets, info(), environment variables."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnkit

pytestmark = pytest.mark.skipif(not hasattr(rnnkit, "simd_targets"), reason="native not built")


def run_python(code, **env):
    full_env = dict(os.environ)
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_simd_targets_include_scalar_and_current():
    targets = rnnkit.simd_targets()
    assert isinstance(targets, tuple) and targets[-1] == "scalar"
    assert rnnkit.get_simd_target() in targets
    # On this project's machines (AVX-512) every compiled target must be usable and tested.
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if " avx512f " in flags and " avx512bw " in flags and " avx512vl " in flags:
        assert targets == ("avx512", "avx2", "scalar")


def test_set_simd_target_round_trip():
    before = rnnkit.get_simd_target()
    try:
        for t in rnnkit.simd_targets():
            rnnkit.set_simd_target(t)
            assert rnnkit.get_simd_target() == t
    finally:
        rnnkit.set_simd_target(before)


def test_unknown_simd_target_is_value_error():
    with pytest.raises(ValueError, match="unknown SIMD target 'sse9'"):
        rnnkit.set_simd_target("sse9")
    with pytest.raises(TypeError, match="name"):
        rnnkit.set_simd_target(3)


def test_threads_round_trip_and_errors():
    before = rnnkit.get_num_threads()
    try:
        rnnkit.set_num_threads(3)
        assert rnnkit.get_num_threads() == 3
    finally:
        rnnkit.set_num_threads(before)
    with pytest.raises(ValueError, match="n: expected a thread count >= 1, got 0"):
        rnnkit.set_num_threads(0)
    with pytest.raises(TypeError, match="n: expected an int"):
        rnnkit.set_num_threads(1.5)


def test_info_describes_the_build():
    info = rnnkit.info()
    for key in ("version", "simd_target", "num_threads", "compiler", "build_flags"):
        assert key in info
    assert info["version"] == rnnkit.__version__
    assert "avx2" in info["build_flags"]


def test_version_is_pep440():
    from packaging.version import Version

    assert str(Version(rnnkit.__version__)) == rnnkit.__version__


def test_env_selects_target_and_threads():
    r = run_python(
        "import rnnkit, json; print(json.dumps([rnnkit.get_simd_target(), "
        "rnnkit.get_num_threads()]))",
        RNNKIT_SIMD="scalar",
        RNNKIT_NUM_THREADS="3",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ["scalar", 3]


def test_env_unknown_target_fails_loudly():
    r = run_python("import rnnkit", RNNKIT_SIMD="neon")
    assert r.returncode != 0
    assert "RNNKIT_SIMD" in r.stderr and "unknown SIMD target 'neon'" in r.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_targets_agree_within_rounding(dtype):
    """Different SIMD targets agree to rounding (bitwise only within one target)."""
    rng = np.random.default_rng(3)
    T, B, I, H = 20, 4, 9, 19
    x = rng.standard_normal((T, B, I)).astype(dtype)
    w_ih = (rng.standard_normal((4 * H, I)) * 0.3).astype(dtype)
    w_hh = (rng.standard_normal((4 * H, H)) * 0.3).astype(dtype)
    before = rnnkit.get_simd_target()
    ys = {}
    try:
        for t in rnnkit.simd_targets():
            rnnkit.set_simd_target(t)
            ys[t] = rnnkit.lstm_forward(x, w_ih, w_hh).y
            assert rnnkit.lstm_forward(x, w_ih, w_hh).y.tobytes() == ys[t].tobytes()
    finally:
        rnnkit.set_simd_target(before)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for t, y in ys.items():
        np.testing.assert_allclose(y, ys["scalar"], rtol=tol, atol=tol, err_msg=t)


def test_cli_info_and_demo():
    r = subprocess.run(
        [sys.executable, "-m", "rnnkit", "info", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == rnnkit.__version__
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnkit",
            "demo",
            "--T",
            "5",
            "--B",
            "2",
            "--H",
            "8",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "speed-up" in r.stdout


def test_cli_bench_runs_and_writes_json_and_plot(tmp_path):
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    args = [
        sys.executable,
        "-m",
        "rnnkit",
        "bench",
        "--cells",
        "gru",
        "--T",
        "4",
        "--batch",
        "2",
        "--hidden",
        "8",
        "--repeat",
        "1",
        "--no-progress",
        "--json",
        str(out_json),
    ]
    try:
        import matplotlib  # noqa: F401

        args += ["--plot", str(out_png)]
    except ImportError:
        out_png = None
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out_json.read_text())
    impls = {row["impl"] for row in res["results"]}
    assert {f"rnnkit-{t}" for t in rnnkit.simd_targets()} <= impls and "numpy-reference" in impls
    assert res["machine"]["gemm_peak_gflops"] > 0
    assert set(res["machine"]["fma_peak_gflops"]) == set(rnnkit.simd_targets())
    assert res["machine"]["peak_gflops"] == max(res["machine"]["fma_peak_gflops"].values())
    for row in res["results"]:
        assert row["fwd"]["median_ms"] > 0
        peak = res["machine"]["peak_gflops"]
        assert abs(row["fwd"]["pct_peak"] - 100 * row["fwd"]["gflops"] / peak) < 1e-6
    assert "FMA peak" in r.stdout and "NumPy" in r.stdout
    if out_png is not None:
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_thread_clock_one_thread_only():
    from rnnkit import bench

    res = bench.run(
        cells=("rnn",),
        shapes=[(3, 2, 8)],
        repeat=1,
        reference=False,
        torch=False,
        onnx=False,
        progress=False,
        clock="thread",
    )
    assert res["machine"]["clock"] == "thread"
    assert all(r["fwd"]["median_ms"] >= 0 for r in res["results"])
    with pytest.raises(ValueError, match="clock"):
        bench.run(cells=("rnn",), shapes=[(3, 2, 8)], threads=2, clock="thread", progress=False)
    r = subprocess.run(
        [sys.executable, "-m", "rnnkit", "bench", "--clock", "thread", "--threads", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "--clock thread" in r.stderr


@pytest.mark.parametrize("threads", [1, 2])
def test_bench_waits_out_spinning_peers_only_with_threads(threads, monkeypatch):
    """With more than one thread, onnxruntime's and PyTorch's pools keep spinning after a run:
    the benchmark sleeps their settle time after each of their timed calls, and never on one
    thread (where nothing spins)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from rnnkit import bench

    slept = []
    monkeypatch.setattr(bench, "_wait_out", slept.append)
    repeat = 2
    bench.run(
        cells=("gru",),
        shapes=[(3, 2, 8)],
        threads=threads,
        repeat=repeat,
        targets=[rnnkit.simd_targets()[0]],
        reference=False,
        progress=False,
    )
    if threads == 1:
        assert slept == []
    else:
        assert sorted(slept) == sorted([0.02, 0.25] * repeat)
