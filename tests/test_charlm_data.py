"""The character-level language model's data pipeline: files, split by file, vocabulary,
batching into streams for truncated BPTT, the unigram baseline. Tiny sizes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rnnkit.charlm import data as D

TEXT = "def f(x):\n    return x + 1\n\nclass A:\n    pass\n" * 20


@pytest.fixture
def corpus_dir(tmp_path):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    for i in range(12):
        (d / ("sub" if i % 2 else "") / f"f{i:02d}.py").write_text(
            f"# file {i}\n" + TEXT[: 200 + 10 * i], encoding="utf-8"
        )
    (d / "binary.bin").write_bytes(b"\x00\x01\x02binary")
    (d / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\r\n".encode("latin-1"))
    return d


def test_stdlib_files_default_corpus():
    files = D.stdlib_files()
    assert files == sorted(files) and len(files) > 100
    assert all(f.endswith(".py") for f in files)
    assert not any(os.sep + "site-packages" + os.sep in f for f in files)
    tr, va = D.split_files(files, 0.05)
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == len(files)
    assert 0.02 < len(va) / len(files) < 0.10
    assert sorted(D.split_files(files[::-1], 0.05)[1]) == va  # order of listing does not matter


def test_resolve_files_folder_glob_file(corpus_dir):
    files = D.resolve_files(str(corpus_dir))
    assert not any(f.endswith(".bin") for f in files)  # binary files are skipped
    assert len(files) == 13
    assert len(D.resolve_files(str(corpus_dir / "**" / "*.py"))) == 12
    one = str(corpus_dir / "f00.py")
    assert D.resolve_files(one) == [one]
    with pytest.raises(ValueError, match="--data"):
        D.resolve_files(str(corpus_dir / "nothing*.zzz"))


def test_read_text_replaces_bad_bytes_and_crlf(corpus_dir):
    t = D.read_text(str(corpus_dir / "latin1.txt"))
    assert D.UNK in t and "\r" not in t and t.endswith("\n")


def test_split_by_file_and_by_position(corpus_dir):
    c = D.load_corpus(str(corpus_dir), val_fraction=0.2)
    assert c.val_files and set(c.train_files).isdisjoint(c.val_files)
    assert len(c.val) > 0 and len(c.train) > len(c.val)
    # A single file: split by position, the last share is validation.
    c1 = D.load_corpus(str(corpus_dir / "f02.py"), val_fraction=0.1)
    text = D.read_text(str(corpus_dir / "f02.py")) + "\n"  # a final newline is added
    assert len(c1.train) + len(c1.val) == len(text)
    assert c1.vocab.decode(c1.val) == text[len(c1.train) :]


def test_vocab_round_trip_and_unknown():
    v = D.Vocab.from_text("hello world")
    assert v.chars[0] == D.UNK and len(v) == 1 + len(set("hello world"))
    ids = v.encode("hello world")
    assert ids.dtype == np.int64 and v.decode(ids) == "hello world"
    assert v.encode("hxz").tolist()[1:] == [0, 0]  # unseen -> unknown
    assert D.Vocab.from_array(v.to_array()) == v
    rare = D.Vocab.from_text("aaab", min_count=2)
    assert rare.chars == [D.UNK, "a"]
    uni = D.Vocab.from_text("é😀\n")
    assert uni.decode(uni.encode("😀é")) == "😀é"


def test_streams_and_windows_continue_each_stream():
    ids = np.arange(103)
    s = D.make_streams(ids, 4)
    assert s.shape == (25, 4)
    assert s[:, 1].tolist() == list(range(25, 50))  # stream b is a contiguous slice
    wins = list(D.windows(s, 7))
    assert [w[1].shape for w in wins] == [(7, 4)] * 3 + [(3, 4)]
    xs = np.concatenate([w[1] for w in wins])
    ys = np.concatenate([w[2] for w in wins])
    assert np.array_equal(xs, s[:-1]) and np.array_equal(ys, s[1:])  # window j+1 continues j
    assert np.array_equal(ys[:-1], xs[1:])
    with pytest.raises(ValueError, match="B"):
        D.make_streams(ids, 0)


def test_unigram_baseline():
    V = 4
    train = np.array([1, 1, 2, 3] * 50)
    b = D.unigram_baseline(train, train, V)
    assert abs(b - D.entropy_nats(train, V)) < 0.02
    assert (
        abs(D.unigram_baseline(np.array([1] * 10), np.array([1] * 10), 2) - np.log(12 / 11)) < 1e-12
    )
