"""The char LM with the section-11 cell options: document starts of the corpus, their
resets in the streams, the model options, their checkpoint and the ``rnnkit train`` flags."""

from __future__ import annotations

import io

import numpy as np
import pytest
from _options import NO_OPTIONS, has_options

from rnnkit.charlm import data as D
from rnnkit.charlm.model import CharLM

needs_reference = pytest.mark.skipif(
    not has_options("reference"), reason=NO_OPTIONS.format("reference")
)
needs_native = pytest.mark.skipif(not has_options("native"), reason=NO_OPTIONS.format("native"))


@pytest.fixture
def three_files(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    texts = ["alpha beta\n", "gamma", "delta epsilon zeta\n" * 3, ""]
    for i, t in enumerate(texts):
        (d / f"f{i}.txt").write_text(t, encoding="utf-8")
    return d, texts


def test_corpus_knows_where_each_file_starts(three_files):
    d, texts = three_files
    c = D.load_corpus(str(d), val_fraction=0.0, min_count=1)
    # f3 is empty and starts nothing; "gamma" gets its newline
    joined = "alpha beta\n" + "gamma\n" + "delta epsilon zeta\n" * 3
    train_text = c.vocab.decode(c.train)  # a split by position keeps 2 characters back
    assert joined.startswith(train_text) and len(train_text) >= len(joined) - 2
    np.testing.assert_array_equal(c.train_starts, [0, 11, 17])
    # the split by file keeps each side's own offsets
    c2 = D.load_corpus(str(d), val_fraction=0.4, min_count=1)
    for ids, starts in ((c2.train, c2.train_starts), (c2.val, c2.val_starts)):
        assert starts[0] == 0 and np.all(np.diff(starts) > 0) and starts[-1] < len(ids)
    # max_chars drops the starts beyond the cut
    c3 = D.load_corpus(str(d), val_fraction=0.0, min_count=1, max_chars=15)
    np.testing.assert_array_equal(c3.train_starts, [0, 11])


def test_stream_resets_mark_the_document_starts():
    N, B = 23, 3  # n = 7 rows, one character dropped
    starts = [0, 4, 7, 15, 20, 22]
    r = D.stream_resets(starts, N, B)
    assert r.shape == (7, 3) and r.dtype == bool
    ids = np.arange(N)
    streams = D.make_streams(ids, B)
    want = np.isin(streams, [4, 15, 20])  # 0 and 7 open a stream (row 0); 22 is dropped
    np.testing.assert_array_equal(r, want)


@needs_reference
def test_model_options_checkpoint_and_resets(tmp_path):
    vocab = D.Vocab.from_text("abcdef\n")
    m = CharLM(
        vocab,
        cell="lstm",
        hidden_size=8,
        embed_size=4,
        backend="reference",
        dtype="float64",
        layer_norm=True,
        zoneout=0.1,
        recurrent_dropout=0.2,
    )
    assert m.rnn.layer_norm and m.rnn.zoneout == 0.1 and m.rnn.recurrent_dropout == 0.2
    assert "rnn.ln_c_l0" in dict(m.named_parameters())
    path = str(tmp_path / "lm.npz")
    m.save(path)
    back = CharLM.load(path)
    assert back.cfg["layer_norm"] and back.cfg["zoneout"] == 0.1
    ids = vocab.encode("abcabcfed\nab")
    m.eval()
    r = np.zeros(len(ids), bool)
    r[5] = True
    full, _ = m.logits(ids, resets=r)
    fresh, _ = m.logits(ids[5:])
    np.testing.assert_allclose(full[5:], fresh, rtol=1e-12, atol=1e-12)
    # evaluate() resets at the given document starts
    starts = np.array([0, 6])
    with_r = m.evaluate(ids, B=1, T=4, starts=starts)
    assert with_r != m.evaluate(ids, B=1, T=4)


def test_cli_flags_parse_and_refuse_bad_rates(capsys):
    from rnnkit.cli import build_parser, main

    p = build_parser()
    a = p.parse_args(
        [
            "train",
            "--layer-norm",
            "--zoneout",
            "0.1",
            "--recurrent-dropout",
            "0.25",
            "--no-doc-resets",
        ]
    )
    assert (a.layer_norm, a.zoneout, a.recurrent_dropout, a.doc_resets) == (True, 0.1, 0.25, False)
    a = p.parse_args(["train"])
    assert (a.layer_norm, a.zoneout, a.recurrent_dropout, a.doc_resets) == (False, 0.0, 0.0, True)
    for argv, msg in (
        (["--zoneout", "1.5"], "expected a number in [0, 1], got 1.5"),
        (["--recurrent-dropout", "1"], "expected a number in [0, 1), got 1"),
        (["--zoneout", "x"], "expected a number in [0, 1], got 'x'"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["train"] + argv)
        assert e.value.code == 2
        assert msg in capsys.readouterr().err


@needs_native
def test_tiny_training_with_every_option_and_document_resets(three_files, tmp_path):
    from rnnkit.charlm.train import TrainConfig, train

    d, _ = three_files
    for i in range(6):
        (d / f"g{i}.txt").write_text(f"def f{i}(x):\n    return x + {i}\n" * 4)
    cfg = TrainConfig(
        data=str(d),
        cell="lstm",
        hidden_size=16,
        embed_size=8,
        seq_len=8,
        batch_size=2,
        steps=6,
        time=None,
        out=str(tmp_path / "m.npz"),
        min_count=1,
        progress=False,
        layer_norm=True,
        zoneout=0.1,
        recurrent_dropout=0.1,
        val_fraction=0.2,
    )
    out = io.StringIO()
    m = train(cfg, out=out)
    text = out.getvalue()
    assert "layer norm True, zoneout 0.1, recurrent dropout 0.1" in text
    assert np.isfinite(m.loss_history["val_loss"][-1])
