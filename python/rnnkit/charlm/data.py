"""Text corpora for the character-level language model: files, split, vocabulary, batches.

The default corpus is the source of the running interpreter's standard library
(``sysconfig.get_paths()["stdlib"]``): nothing is downloaded and nothing is copied into the
repository. Its ``site-packages``/``dist-packages`` (installed third-party code) and its
``test`` package (regression tests full of deliberately odd bytes and encodings) are left out.

Train and validation are split *by file* (never inside one file, so validation text is
unseen code, not the other half of a seen function), deterministically: a file goes to
validation when a CRC-32 of its relative path falls in the lowest ``val_fraction`` of the
range. The split does not depend on the order of listing nor on which other files exist.
A corpus of a single file (or one whose split leaves a side empty) is split by position
instead: the last ``val_fraction`` of the text is validation.

Batching for truncated BPTT: the train text is cut into ``B`` contiguous streams, one per
batch row, ``streams[n, B]``; window ``j`` of length ``T`` reads rows ``[j*T, (j+1)*T)`` and
its targets are the next characters, so every window continues each stream exactly where the
previous one stopped and the recurrent state can be carried from one window to the next.
"""

from __future__ import annotations

import glob as _glob
import math
import os
import sysconfig
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "UNK",
    "Vocab",
    "Corpus",
    "stdlib_files",
    "resolve_files",
    "read_text",
    "split_files",
    "load_corpus",
    "make_streams",
    "stream_resets",
    "windows",
    "unigram_baseline",
]

UNK = "\ufffd"  # the unknown symbol: also what undecodable bytes become (errors="replace")

MIN_CHARS = 4  # a corpus split by position: 2 characters to train on, 2 to validate

_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "idle_test", ".git"}


# ---------------------------------------------------------------- files


def stdlib_files(root: Optional[str] = None) -> List[str]:
    """The ``.py`` files of the standard library (sorted), without third-party packages and
    without the ``test`` package."""
    root = root or sysconfig.get_paths()["stdlib"]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        out += [os.path.join(dirpath, f) for f in filenames if f.endswith(".py")]
    return sorted(out)


def _is_text_file(path: str) -> bool:
    """A file is text when its first 8 KiB hold no NUL byte (what git and grep check)."""
    try:
        with open(path, "rb") as f:
            return b"\0" not in f.read(8192)
    except OSError:
        return False


def resolve_files(data: str) -> List[str]:
    """``data`` is a file, a folder (every text file below it, recursively) or a glob
    pattern (``"src/**/*.c"``, recursive). Returns sorted paths; ValueError when none."""
    if os.path.isfile(data):
        return [data]
    if os.path.isdir(data):
        files = []
        for dirpath, dirnames, filenames in os.walk(data):
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and d != "__pycache__"
            )
            files += [os.path.join(dirpath, f) for f in filenames if not f.startswith(".")]
        files = [f for f in sorted(files) if _is_text_file(f)]
    else:
        files = sorted(f for f in _glob.glob(data, recursive=True) if os.path.isfile(f))
    if not files:
        raise ValueError(
            f"--data: no text file found at {data!r} (expected a file, a folder or a glob pattern)"
        )
    return files


def read_text(path: str, max_chars: Optional[int] = None) -> str:
    """A file's text as UTF-8; undecodable bytes become U+FFFD (the unknown symbol) and
    line endings are normalised to ``\\n``. ``max_chars``: only the first ones, reading at
    most 4 bytes per character (UTF-8's longest) instead of the whole file."""
    with open(path, "rb") as f:
        raw = f.read() if max_chars is None else f.read(4 * max_chars + 1)
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return text if max_chars is None else text[:max_chars]


def split_files(
    files: Sequence[str], val_fraction: float = 0.05, root: Optional[str] = None
) -> Tuple[List[str], List[str]]:
    """Deterministic split by file: validation when CRC-32(relative path) < fraction * 2^32.

    Always puts at least one file on each side when there are two files or more (the file
    with the smallest hash goes to validation)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a value in [0, 1), got {val_fraction}")
    root = root or (os.path.commonpath([os.path.abspath(f) for f in files]) if files else "")

    def key(f):
        rel = os.path.relpath(os.path.abspath(f), root) if root else f
        return zlib.crc32(rel.replace(os.sep, "/").encode("utf-8"))

    keys = {f: key(f) for f in files}
    limit = val_fraction * 2**32
    val = [f for f in files if keys[f] < limit]
    if val_fraction > 0 and not val and len(files) >= 2:
        val = [min(files, key=lambda f: keys[f])]
    if len(val) == len(files) and len(files) >= 2:
        val = [min(files, key=lambda f: keys[f])]
    vs = set(val)
    return [f for f in files if f not in vs], [f for f in files if f in vs]


# ---------------------------------------------------------------- vocabulary


class Vocab:
    """Characters <-> integer ids. Id 0 is the unknown symbol ``UNK``; the others are the
    characters of the training text seen at least ``min_count`` times, sorted by code point.
    """

    def __init__(self, chars: Iterable[str]):
        chars = [c for c in chars if c != UNK]
        if len(set(chars)) != len(chars):
            raise ValueError("chars: expected distinct characters")
        self.chars: List[str] = [UNK] + sorted(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}
        # Code points of ids 1..V-1, sorted: encode() maps a text through searchsorted.
        self._codes = np.array([ord(c) for c in self.chars[1:]], dtype=np.int64)

    @classmethod
    def from_text(cls, text: str, min_count: int = 1) -> "Vocab":
        codes, counts = np.unique(_codepoints(text), return_counts=True)
        return cls(chr(int(c)) for c, n in zip(codes, counts) if n >= min_count)

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def encode(self, text: str) -> np.ndarray:
        """ids int64 [N] (vectorised: fast on megabytes); unknown characters -> 0."""
        cp = _codepoints(text)
        if not len(self._codes):
            return np.zeros(len(cp), np.int64)
        pos = np.searchsorted(self._codes, cp)
        pos_c = np.minimum(pos, len(self._codes) - 1)
        return np.where(self._codes[pos_c] == cp, pos_c + 1, 0).astype(np.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))

    def to_array(self) -> np.ndarray:
        """The characters as code points int32 [V] (what a checkpoint stores)."""
        return np.array([ord(c) for c in self.chars], dtype=np.int32)

    @classmethod
    def from_array(cls, codes) -> "Vocab":
        codes = [chr(int(c)) for c in np.asarray(codes).reshape(-1)]
        if not codes or codes[0] != UNK:
            raise ValueError("vocab: expected code points with the unknown symbol U+FFFD first")
        return cls(codes[1:])


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)


# ---------------------------------------------------------------- corpus


@dataclass
class Corpus:
    train: np.ndarray  # int64 ids [N_train]
    val: np.ndarray  # int64 ids [N_val]
    vocab: Vocab
    train_files: List[str] = field(default_factory=list)
    val_files: List[str] = field(default_factory=list)
    source: str = ""
    rare_chars: int = 0  # distinct training characters below min_count (mapped to UNK)
    unk_fraction: float = 0.0  # share of the training text they make up
    # Offsets in train / val where a document (a file) starts, int64, sorted; the state of
    # the language model is reset there (0 is included when a side starts with a file).
    train_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def describe(self) -> str:
        where = (
            f"{len(self.train_files)} train / {len(self.val_files)} validation files"
            if len(self.train_files) + len(self.val_files) > 1
            else "split by position"
        )
        return (
            f"corpus {self.source}: {len(self.train):,} train / {len(self.val):,} "
            f"validation characters ({where}), vocabulary {len(self.vocab)}"
        )


def load_corpus(
    data: Optional[str] = None,
    *,
    val_fraction: float = 0.05,
    min_count: int = 1,
    vocab: Optional[Vocab] = None,
    max_chars: Optional[int] = None,
) -> Corpus:
    """Loads a corpus: ``data=None`` the standard library, else a file, folder or glob.

    Files are joined in sorted order, each followed by a newline when it does not end with
    one. ``vocab`` (e.g. from a checkpoint being resumed) is used as is; otherwise it is
    built from the training text with ``min_count``. ``max_chars`` truncates each side
    (for quick runs and tests)."""
    if data is None:
        files, source = stdlib_files(), f"Python {sysconfig.get_python_version()} standard library"
        root = sysconfig.get_paths()["stdlib"]
    else:
        files, source, root = resolve_files(data), data, None
    tr_files, va_files = split_files(files, val_fraction, root=root)

    def join(fs):
        """The files' text joined, and the offset where each file starts."""
        parts, starts, n = [], [], 0
        for f in fs:
            t = read_text(f)
            t = t if t.endswith("\n") or not t else t + "\n"
            if t:
                starts.append(n)
            parts.append(t)
            n += len(t)
        return "".join(parts), np.array(starts, np.int64)

    if not va_files or not tr_files:  # one file: split by position
        text, starts = join(files)
        if len(text) < MIN_CHARS:
            raise ValueError(
                f"--data: {data!r} holds too little text ({len(text)} characters "
                f"with the newline added at its end; at least {MIN_CHARS} needed: "
                f"2 to train on and 2 to validate)"
            )
        n_val = min(len(text) - 2, max(2, int(round(len(text) * val_fraction))))
        cut = len(text) - n_val
        tr_text, va_text = text[:cut], text[cut:]
        tr_starts, va_starts = starts[starts < cut], starts[starts >= cut] - cut
        tr_files, va_files = list(files), []
    else:
        (tr_text, tr_starts), (va_text, va_starts) = join(tr_files), join(va_files)
    if max_chars is not None:
        tr_text, va_text = tr_text[:max_chars], va_text[:max_chars]
        tr_starts, va_starts = tr_starts[tr_starts < max_chars], va_starts[va_starts < max_chars]
    rare, unk_fraction = 0, 0.0
    if vocab is None:
        vocab = Vocab.from_text(tr_text, min_count=min_count)
        codes, counts = np.unique(_codepoints(tr_text), return_counts=True)
        low = counts < min_count
        rare = int(low.sum())
        unk_fraction = float(counts[low].sum() / max(1, len(tr_text)))
    return Corpus(
        vocab.encode(tr_text),
        vocab.encode(va_text),
        vocab,
        tr_files,
        va_files,
        source,
        rare,
        unk_fraction,
        tr_starts,
        va_starts,
    )


# ---------------------------------------------------------------- batching


def make_streams(ids: np.ndarray, B: int) -> np.ndarray:
    """Cuts ``ids[N]`` into ``B`` contiguous streams: ``streams[N // B, B]`` with column b =
    ``ids[b*n:(b+1)*n]`` (the last ``N % B`` characters are dropped)."""
    ids = np.asarray(ids)
    if B < 1:
        raise ValueError(f"B: expected a batch size >= 1, got {B}")
    n = len(ids) // B
    if n < 2:
        raise ValueError(f"ids: {len(ids)} characters are too few for {B} streams of 2 or more")
    return np.ascontiguousarray(ids[: n * B].reshape(B, n).T)


def stream_resets(starts, N: int, B: int) -> np.ndarray:
    """The document boundaries of ``make_streams(ids[N], B)``: ``resets[N // B, B]`` bool,
    True at ``[t, b]`` when a document starts at ``ids[b*n + t]`` (``n = N // B``). A stream's
    first row is never a reset: its state starts from zeros anyway."""
    n = N // B
    starts = np.asarray(starts, np.int64)
    starts = starts[(starts >= 0) & (starts < n * B)]
    resets = np.zeros((n, B), bool)
    resets[starts % n, starts // n] = True
    resets[0] = False
    return resets


def windows(
    streams: np.ndarray, T: int, start: int = 0
) -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
    """Consecutive TBPTT windows over ``streams[n, B]``: yields ``(pos, x[T', B], y[T', B])``
    with ``y[t] = streams[pos + t + 1]`` (the next character); ``T' = T`` except for a shorter
    last window. Starts at row ``start``; one pass (an epoch)."""
    n = streams.shape[0]
    for pos in range(start, n - 1, T):
        stop = min(pos + T, n - 1)
        yield pos, streams[pos:stop], streams[pos + 1 : stop + 1]


def unigram_baseline(train: np.ndarray, val: np.ndarray, V: int) -> float:
    """Cross-entropy (nats/char) of ``val`` under the unigram character distribution of
    ``train`` (add-one smoothed): what a model that ignores context reaches. A language
    model has learnt something when its validation loss is clearly below this."""
    counts = np.bincount(np.asarray(train), minlength=V).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    val = np.asarray(val)
    if len(val) == 0:
        return float("nan")
    return float(-logp[val].mean())


def entropy_nats(ids: np.ndarray, V: int) -> float:
    """Entropy (nats/char) of the unigram distribution of ``ids``."""
    p = np.bincount(np.asarray(ids), minlength=V).astype(np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum()) if len(p) else math.nan
