"""Data-parallel `rnnkit train` over torch.distributed (rnnkit.distributed), and the promise
that `import rnnkit` never imports torch.

The torchrun tests launch `python -m torch.distributed.run --standalone --nproc-per-node 2
-m rnnkit train ...` on a small generated corpus (loopback), and compare its checkpoint with a
one-process run of the same --batch: equal to float rounding, and only rank 0 printed.
Without torch the torchrun tests skip; the no-torch behaviour is tested by hiding torch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnkit

PKG = os.path.dirname(os.path.dirname(rnnkit.__file__))  # the folder that holds rnnkit
ARGS = [
    "--hidden",
    "12",
    "--embed",
    "6",
    "--batch",
    "4",
    "--seq-len",
    "12",
    "--eval-every",
    "3",
    "--time",
    "0",
    "--dtype",
    "float64",
    "--sample-length",
    "0",
    "--max-chars",
    "6000",
    "--cell",
    "lstm",
    "--layers",
    "2",
]


def env(**extra):
    e = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", **extra)
    e["PYTHONPATH"] = os.pathsep.join([PKG, e.get("PYTHONPATH", "")])
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if k not in extra:
            e.pop(k, None)
    return e


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = "def class return import for in if else while with self x y".split()
    text = "\n".join(" ".join(rng.choice(words, 7)) for _ in range(800))
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(text)
    return str(path)


def run(cmd, cwd, **extra):
    p = subprocess.run(
        [sys.executable] + cmd,
        cwd=cwd,
        env=env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p


def rnnkit_train(cwd, corpus, out, *more, procs=1):
    launcher = (
        ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
        if procs > 1
        else []
    )
    p = run(
        launcher + ["-m", "rnnkit", "train", "--data", corpus, "--out", out] + ARGS + list(more),
        cwd,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def assert_same_checkpoint(a, b, rtol=1e-9):
    """Every float array to rounding, every other entry equal (the training record apart
    from its clock and output path)."""
    assert set(a) == set(b)
    for k in a:
        if a[k].dtype.kind == "f":
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=1e-12, err_msg=k)
        elif k == "train":
            ja, jb = (json.loads(str(x[k])) for x in (a, b))
            for j in (ja, jb):  # drop the fields that differ by nature
                j["__dict__"] = [kv for kv in j["__dict__"] if kv[0] not in ("elapsed",)]
                for kv in j["__dict__"]:
                    if kv[0] == "train_config":
                        kv[1]["__dict__"] = [c for c in kv[1]["__dict__"] if c[0] != "out"]
            assert ja == jb
        else:
            assert np.array_equal(a[k], b[k]), k


# ---------------------------------------------------------------- without torch


def test_import_rnnkit_never_imports_torch():
    code = (
        "import sys, rnnkit, rnnkit.cli, rnnkit.distributed, rnnkit.charlm.train, "
        "rnnkit.layers, rnnkit.convert; rnnkit.cli.build_parser(); "
        "rnnkit.distributed.init_from_env(); "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    )
    p = run(["-c", code], PKG)
    assert p.returncode == 0, p.stderr


HIDE_TORCH = "import sys; sys.modules['torch'] = None; from rnnkit.cli import main; "


def test_without_torch_train_works_and_a_distributed_launch_says_torch_is_needed(tmp_path, corpus):
    cmd = HIDE_TORCH + f"sys.exit(main(['train', '--data', {corpus!r}, '--steps', '2'] + {ARGS}))"
    p = run(["-c", cmd], str(tmp_path))
    assert p.returncode == 0 and "done: 2 steps" in p.stdout, p.stderr
    p = run(["-c", cmd], str(tmp_path), WORLD_SIZE="2", RANK="0")
    assert p.returncode == 2
    assert "distributed launch (WORLD_SIZE=2) needs PyTorch" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


# ---------------------------------------------------------------- with torch


def test_uneven_batch_is_an_error_naming_batch():
    pytest.importorskip("torch")
    import torch.distributed as dist

    from rnnkit.distributed import Group

    g = Group(dist, rank=1, world_size=3, local_world_size=3)
    assert g.shard(12, "--batch") == slice(4, 8)
    with pytest.raises(ValueError, match=r"--batch: 10 does not split evenly over 3 processes"):
        g.shard(10, "--batch")
    state = (np.arange(24.0).reshape(1, 12, 2), np.arange(12.0).reshape(1, 12, 1))
    assert np.array_equal(g.take(state)[0], state[0][:, 4:8])


class _AddOneDist:
    """A stand-in for torch.distributed whose all-reduce adds 1 (another rank's ones)."""

    class ReduceOp:
        SUM = "sum"

    def __init__(self):
        self.calls = 0

    def all_reduce(self, t, op):
        assert op == "sum"
        self.calls += 1
        t.add_(1)


def test_all_reduce_mean_buckets_small_arrays_and_writes_every_array_back():
    pytest.importorskip("torch")
    from rnnkit.distributed import Group

    rng = np.random.default_rng(0)
    grads = {
        "a": rng.random((3, 4)),
        "b": rng.random(5),
        "c": rng.random((6, 2)).T,
        "d": rng.random(7).astype(np.float32),
        "big": rng.random(1000),
    }
    want = {k: (v + 1) / 2 for k, v in grads.items()}
    fake = _AddOneDist()
    Group(fake, rank=0, world_size=2, local_world_size=2).all_reduce_mean(grads, 2000)
    for k in grads:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-6, err_msg=k)
    assert fake.calls == 3  # a, b and c (float64, 232 bytes) together; d (float32); big alone


def test_torchrun_two_processes_equal_one_process(tmp_path, corpus):
    pytest.importorskip("torch")
    one = rnnkit_train(str(tmp_path), corpus, "one.npz", "--steps", "6")
    two = rnnkit_train(str(tmp_path), corpus, "two.npz", "--steps", "6", procs=2)
    assert_same_checkpoint(arrays(tmp_path / "one.npz"), arrays(tmp_path / "two.npz"))
    for line in ("model: LSTM 2x12", "step      3", "step      6", "done: 6 steps"):
        assert one.count(line) == 1 and two.count(line) == 1, (line, two)
    # The printed losses are the whole batch's, as in the one-process run.
    assert [ln.split("train")[1][:20] for ln in two.splitlines() if ln.startswith("step")] == [
        ln.split("train")[1][:20] for ln in one.splitlines() if ln.startswith("step")
    ]
    # --resume for the whole group (each rank takes its share of the saved state): 3 steps
    # in one process, then 3 more in two, equal 6 steps.
    rnnkit_train(str(tmp_path), corpus, "resumed.npz", "--steps", "3")
    two = rnnkit_train(str(tmp_path), corpus, "resumed.npz", "--steps", "3", "--resume", procs=2)
    assert two.count("resuming from resumed.npz: step 3") == 1, two
    a, b = arrays(tmp_path / "one.npz"), arrays(tmp_path / "resumed.npz")
    for k in a:
        if k.startswith("param/") or k.startswith("train/"):
            np.testing.assert_allclose(b[k], a[k], rtol=1e-9, atol=1e-12, err_msg=k)
