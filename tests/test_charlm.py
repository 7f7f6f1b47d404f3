"""The character-level language model: checkpoints, sampling, training, CLI (the data
pipeline is in test_charlm_data.py).

Sizes are tiny so the file runs in seconds."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

import rnnkit
from rnnkit.charlm import data as D
from rnnkit.charlm.model import CharLM
from rnnkit.charlm.sample import generate, next_id, probabilities

TEXT = "def f(x):\n    return x + 1\n\nclass A:\n    pass\n" * 20


# ---------------------------------------------------------------- model, checkpoint


def _model(cell="lstm", **kw):
    v = D.Vocab.from_text(TEXT)
    args = dict(cell=cell, hidden_size=16, num_layers=2, embed_size=8, seed=1)
    args.update(kw)
    return CharLM(v, **args)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_checkpoint_round_trip_identical_logits(tmp_path, cell):
    m = _model(cell, embed_size=0 if cell == "rnn" else 8)
    m.loss_history = {"step": [1, 2], "train_loss": [3.0, 2.5], "val_loss": [3.1, 2.7]}
    p = str(tmp_path / "m.npz")
    m.save(
        p,
        extra={"optim": {"t": 3, "m": [np.ones(2), np.zeros(3)]}, "state": (np.ones((2, 1, 16)),)},
    )
    m2 = CharLM.load(p)
    ids = m.vocab.encode("def f(x):")
    a, _ = m.eval().logits(ids)
    b, _ = m2.eval().logits(ids)
    assert np.array_equal(a, b)
    assert m2.config() == m.config() and m2.vocab == m.vocab
    assert m2.loss_history == m.loss_history
    with np.load(p, allow_pickle=False) as z:  # a plain .npz, no pickle
        assert "config" in z.files and "vocab" in z.files and "history/val_loss" in z.files
    from rnnkit.charlm.model import load_checkpoint

    _, extra = load_checkpoint(p)
    assert extra["optim"]["t"] == 3 and np.array_equal(extra["optim"]["m"][0], np.ones(2))
    assert isinstance(extra["state"], tuple)


def test_forward_backward_protocol_and_activations():
    m = _model("lstm")
    ids = m.vocab.encode(TEXT[:40]).reshape(10, 4)
    logits, state, tape = m.forward(ids)
    assert logits.shape == (10, 4, len(m.vocab)) and state[0].shape == (2, 4, 16)
    loss, dl = rnnkit.softmax_cross_entropy(logits, ids)
    dx, dstate = m.backward(dl, None, tape)
    assert dx.shape == (10, 4, 0)
    assert set(m.grads) == {n for n, _ in m.named_parameters()}
    assert all(np.any(g != 0) for g in m.grads.values())
    acts = m.activations("def f")
    assert set(acts) == {f"l{k}.{q}" for k in (0, 1) for q in "hcifgo"}
    assert all(a.shape == (5, 16) for a in acts.values())
    # The states from the functional caches are the model's own states.
    m.eval()
    _, st = m.logits(m.vocab.encode("def f"))
    np.testing.assert_allclose(acts["l1.h"][-1], st[0][1, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["l0.c"][-1], st[1][0, 0], rtol=1e-5, atol=1e-6)
    assert set(_model("gru").activations("ab")) == {f"l{k}.{q}" for k in (0, 1) for q in "hrzn"}


# ---------------------------------------------------------------- sampling


def test_probabilities_top_k_and_temperature():
    z = np.array([1.0, 3.0, 2.0, 0.0])
    p = probabilities(z, top_k=2)
    assert p[0] == 0 and p[3] == 0 and abs(p.sum() - 1) < 1e-12
    cold = probabilities(z, temperature=0.1)
    assert cold[1] > 0.99
    rng = np.random.default_rng(0)
    assert {next_id(z, rng, top_k=1) for _ in range(50)} == {1}
    assert {next_id(z, rng, top_k=2) for _ in range(200)} == {1, 2}
    assert next_id(z, rng, argmax=True) == 1
    with pytest.raises(ValueError, match="temperature"):
        probabilities(z, temperature=0)


def test_generate_reproducible_with_seed():
    m = _model("gru")
    a = "".join(generate(m, 60, prime="def ", seed=7))
    b = "".join(generate(m, 60, prime="def ", seed=7))
    c = "".join(generate(m, 60, prime="def ", seed=8))
    assert a == b and a != c and len(a) == 60
    g1 = "".join(generate(m, 30, argmax=True, seed=1))
    g2 = "".join(generate(m, 30, argmax=True, seed=2))
    assert g1 == g2
    assert m.training  # restored after sampling


# ---------------------------------------------------------------- training, CLI


def test_tiny_training_loss_goes_down(tmp_path):
    from rnnkit.charlm.train import TrainConfig, train

    f = tmp_path / "t.txt"
    f.write_text(TEXT * 3)
    cfg = TrainConfig(
        data=str(f),
        hidden_size=32,
        embed_size=16,
        seq_len=16,
        batch_size=4,
        steps=120,
        time=None,
        eval_every=60,
        out=str(tmp_path / "m.npz"),
        lr=1e-2,
        min_count=1,
        progress=False,
    )
    out = io.StringIO()
    m = train(cfg, out=out)
    h = m.loss_history
    assert h["step"][-1] == 120 and len(h["val_loss"]) == 3
    assert h["val_loss"][-1] < 0.6 * D.unigram_baseline(*_tr_va(f), len(m.vocab))
    assert "validation loss" in out.getvalue()
    # Resume: continues the step count from the checkpoint.
    cfg.resume, cfg.steps = True, 10
    m2 = train(cfg, out=io.StringIO())
    assert m2.loss_history["step"][-1] == 130


def _tr_va(f):
    c = D.load_corpus(str(f), min_count=1)
    return c.train, c.val


def test_hello_demo():
    from rnnkit.charlm.hello import hello_demo

    out = io.StringIO()
    assert hello_demo(out=out) == 0
    assert "'hello'" in out.getvalue() and "l -> o" in out.getvalue()


def test_cli_train_and_sample(tmp_path, capsys):
    from rnnkit.cli import main

    f = tmp_path / "t.txt"
    f.write_text(TEXT * 2)
    ck = str(tmp_path / "c.npz")
    assert (
        main(
            [
                "train",
                "--data",
                str(f),
                "--hidden",
                "16",
                "--embed",
                "8",
                "--seq-len",
                "8",
                "--batch",
                "2",
                "--steps",
                "5",
                "--time",
                "0",
                "--out",
                ck,
                "--min-count",
                "1",
                "--sample-length",
                "20",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "unigram baseline" in out and "--- sample" in out and os.path.exists(ck)
    assert (
        main(
            [
                "sample",
                ck,
                "--length",
                "25",
                "--seed",
                "3",
                "--prime",
                "def",
                "--temperature",
                "0.7",
                "--top-k",
                "5",
            ]
        )
        == 0
    )
    s1 = capsys.readouterr().out
    assert s1.startswith("def") and len(s1) == len("def") + 25 + 1
    main(
        [
            "sample",
            ck,
            "--length",
            "25",
            "--seed",
            "3",
            "--prime",
            "def",
            "--temperature",
            "0.7",
            "--top-k",
            "5",
        ]
    )
    assert capsys.readouterr().out == s1
    assert main(["sample", ck, "--length", "10", "--argmax"]) == 0
    assert main(["sample", str(tmp_path / "missing.npz")]) == 2
    # rnnkit viz on the same checkpoint: the report, from --text and from the --data split
    vz = tmp_path / "vz"
    assert main(["viz", ck, "--text", str(f), "--chars", "400", "--out", str(vz)]) == 0
    out = capsys.readouterr().out
    assert "Most interpretable cells" in out and "index.html" in out
    for name in ("index.html", "interpretable.txt"):
        assert (vz / name).stat().st_size > 1000
    page = (vz / "index.html").read_text(encoding="utf-8")
    assert "c.npz on " in page
    assert main(["viz", ck, "--data", str(f), "--chars", "300", "--out", str(tmp_path / "v2")]) == 0
    assert "validation split" in capsys.readouterr().out
    assert main(["viz", str(tmp_path / "missing.npz")]) == 2


def test_cli_bad_input_is_a_one_line_error(tmp_path, capsys):
    """Bad options and files give `rnnkit <cmd>: error: ...` naming the culprit, exit 2, no
    traceback."""
    from rnnkit.cli import main

    f = tmp_path / "t.txt"
    f.write_text(TEXT)
    bad_npz = tmp_path / "b.npz"
    np.savez(bad_npz, a=np.zeros(2))
    cases = [
        (["train", "--hidden", "0"], "argument --hidden: expected an integer >= 1, got 0"),
        (["train", "--lr", "-1"], "argument --lr: expected a finite number >= 0, got -1"),
        (["train", "--seq-len", "x"], "argument --seq-len: expected an integer, got 'x'"),
        (
            ["train", "--data", str(tmp_path / "none"), "--steps", "1", "--time", "0"],
            "--data: no text file found",
        ),
        (
            ["train", "--data", str(f), "--dropout", "1.5", "--steps", "1", "--time", "0"],
            "dropout: expected a value in [0, 1), got 1.5",
        ),
        (["sample", str(f)], "not a rnnkit char-LM checkpoint (not an .npz file)"),
        (["viz", str(bad_npz)], "not a rnnkit char-LM checkpoint (no config/vocab)"),
        (["viz", "--chars", "1"], "argument --chars: expected an integer >= 2, got 1"),
    ]
    for argv, msg in cases:
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own errors
            code = e.code
        err = capsys.readouterr().err
        assert code == 2, argv
        assert msg in err and "Traceback" not in err, (argv, err)
