"""rnnkit.torch modules under DistributedDataParallel: two processes on 127.0.0.1 (gloo, a
free port, a 60 s timeout) train an LSTM and a GRU model a few SGD steps on halves of one
batch; the parameters are identical on both ranks and equal a one-process run on the whole
batch. Skipped when torch is not installed."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env():
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    import rnnkit

    pkg = os.path.dirname(os.path.dirname(rnnkit.__file__))  # the folder that holds rnnkit
    env["PYTHONPATH"] = os.pathsep.join([pkg, HERE, env.get("PYTHONPATH", "")])
    return env


def test_ddp_two_processes_equal_one_process(tmp_path):
    import _ddp_worker

    port = free_port()
    outs = [str(tmp_path / f"rank{r}.npz") for r in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, os.path.join(HERE, "_ddp_worker.py"), str(r), "2", str(port), outs[r]],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    try:
        logs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], logs
    ranks = [dict(np.load(o)) for o in outs]
    whole = {}
    for cell in ("lstm", "gru"):
        whole.update(_ddp_worker.train(cell))
    assert set(ranks[0]) == set(ranks[1]) == set(whole)
    start = {}
    for cell in ("lstm", "gru"):
        torch.manual_seed(0)
        start.update(
            {
                f"{cell}.{n}": p.detach().numpy()
                for n, p in _ddp_worker.Model(cell).named_parameters()
            }
        )
    for name, w in whole.items():
        assert np.array_equal(ranks[0][name], ranks[1][name]), name
        np.testing.assert_allclose(ranks[0][name], w, rtol=1e-10, atol=1e-12, err_msg=name)
        assert not np.allclose(w, start[name]), name  # the steps did train it
