"""Ctrl-C stops a long native call: KeyboardInterrupt within 0.5 s, no outputs returned, and
the next call works. The call runs in a child process (SIGINT would otherwise hit pytest)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import rnnkit
    rnnkit.set_num_threads(1)
    rng = np.random.default_rng(0)
    T, B, I, H = 4000, 1, 1, 1024  # ~1 ms a step: several seconds in all
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih = rng.standard_normal((4 * H, I)).astype(np.float32)
    w_hh = (rng.standard_normal((4 * H, H)) / 32).astype(np.float32)
    rnnkit.lstm_forward(x[:2], w_ih, w_hh)  # warm up: the next print means the kernel runs
    out = None
    print("started", flush=True)
    try:
        out = getattr(rnnkit, sys.argv[1])(x, w_ih, w_hh)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), out is None, flush=True)
    small = rnnkit.lstm_forward(x[:3], w_ih, w_hh)
    print("next call", small.y.shape, flush=True)
""")


@pytest.mark.parametrize("fn", ["lstm_forward", "lstm_backward"])
def test_ctrl_c_stops_a_long_call(fn, tmp_path):
    script = tmp_path / "child.py"
    if fn == "lstm_backward":  # the forward first, then the long backward is interrupted
        body = CHILD.replace(
            "out = getattr(rnnkit, sys.argv[1])(x, w_ih, w_hh)",
            "out = rnnkit.lstm_backward(cache, dh_n=np.ones((B, H), np.float32))",
        )
        body = body.replace(
            'print("started", flush=True)',
            'cache = rnnkit.lstm_forward(x, w_ih, w_hh).cache\nprint("started", flush=True)',
        )
    else:
        body = CHILD
    script.write_text(body)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen(
        [sys.executable, str(script), fn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout.readline().strip() == "started"
        time.sleep(0.3)  # inside the kernel by now
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        line = child.stdout.readline().split()
        assert line and line[0] == "interrupted", f"the call was not interrupted: {line}"
        latency = float(line[1]) - sent
        assert latency < 0.5, f"KeyboardInterrupt came {latency:.3f} s after SIGINT"
        assert line[2] == "True", "the interrupted call returned outputs"
        assert child.stdout.readline().strip().startswith("next call")
        assert child.wait(timeout=30) == 0, child.stderr.read()
    finally:
        child.kill()
        child.wait()
