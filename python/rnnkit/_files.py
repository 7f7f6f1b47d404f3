"""Files rnnkit writes and reads: one atomic save, one guarded ``.npz`` reader.

Writing (``atomic_write``): the data goes to a temporary file in the target's folder, is
flushed and fsynced, renamed over the target (atomic on POSIX), and the folder is fsynced so
the rename survives a power cut. A kill at any moment leaves either the old file or the new
one, never a truncated mix. The file gets the mode a plain ``open()`` would give (0666 less
the umask). Temporary files left by an earlier killed save (their writer process is gone) are
removed by the next save into that folder. ``defer_sigint`` holds Ctrl-C back while a save
that must not be cut short runs.

Reading (``NpzReader``): a checkpoint or layer file may come from anyone. Before anything is
allocated or decompressed, every member's ``.npy`` header is read (it declares the shape and
dtype before the data) and checked against the zip directory: the declared data must be
exactly the member's size, a compressed member may not expand beyond ``MAX_RATIO`` times its
compressed size, and the total stays under the caller's bound. Every failure, from a
truncated zip to a bit flip in a header, is one ``FileFormatError`` naming the file.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import tempfile
import threading
import zipfile
import zlib

import numpy as np

__all__ = [
    "atomic_write",
    "save_figure",
    "defer_sigint",
    "FileFormatError",
    "NpzReader",
    "TMP_PREFIX",
]

TMP_PREFIX = ".rnnkit-tmp-"  # + "<pid>-<random>": the pid tells a live save from an orphan


# ---------------------------------------------------------------- writing


def _umask():
    """The process umask, read without changing it where Linux allows (/proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # elsewhere: the classic set-and-restore (not thread-safe)
    os.umask(old)
    return old


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_orphans(folder):
    """Deletes temporary files of earlier saves into ``folder`` whose process has exited."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(TMP_PREFIX):
            continue
        pid = name[len(TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and (int(pid) == os.getpid() or _pid_alive(int(pid))):
            continue  # a save in progress (this process's own temp files are cleaned by it)
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, name))


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the rename still happened
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="wb", *, encoding=None):
    """``with atomic_write(path) as f: f.write(...)``: ``path`` holds either its old content
    or everything written, whatever happens (exception, kill, power cut). ``mode`` "wb" or
    "w" (text, ``encoding`` default UTF-8). Creates the folder if needed."""
    if mode not in ("wb", "w"):
        raise ValueError(f"mode: expected 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_orphans(folder)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=".part", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() honours the umask
        text = mode == "w"
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if text else None) as f:
            fd = None
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(folder)
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def save_figure(fig, path, **kwargs):
    """``fig.savefig`` through ``atomic_write``; the format comes from the suffix (as
    matplotlib does for a path), PNG without one. Returns the path."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1][1:].lower() or "png"
    with atomic_write(path) as f:
        fig.savefig(f, format=fmt, **kwargs)
    return path


@contextlib.contextmanager
def defer_sigint():
    """Holds SIGINT (Ctrl-C) back until the block ends, then raises ``KeyboardInterrupt``
    once if one came. Only the main thread can own signal handlers; elsewhere (and when
    SIGINT is not Python's default handler) this does nothing."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda sig, frame: caught.append(sig))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


# ---------------------------------------------------------------- reading


class FileFormatError(ValueError):
    """A file rnnkit was asked to read is not what it should be (message names the file)."""


# A compressed member may expand at most this much: rnnkit writes stored (uncompressed)
# members, and float parameters compress by well under 2x; zeros (fresh optimizer moments)
# compress by ~1000x with deflate, so a savez_compressed copy of a fresh checkpoint is refused
# only when almost all of it is zeros. A zip bomb (1000x and more) is refused before it is
# decompressed.
MAX_RATIO = 64
_SLACK = 1 << 20  # bytes a small compressed member may expand to whatever its ratio
_MAX_MEMBERS = 100_000
_DTYPE_KINDS = "biufU"  # numbers and str (config JSON); never objects or structured types


class NpzReader:
    """A ``.npz`` file opened for checked reading: ``members`` maps each name (without
    ``.npy``) to its declared ``(shape, dtype)``; nothing but the headers is read until
    ``array(name)`` or ``text(name)``.

    ``what`` names the kind of file in messages ("checkpoint", "layer file").
    ``max_bytes`` bounds the total declared data (None: only the per-member checks).
    """

    def __init__(self, path, what="file", *, max_bytes=None):
        self.path = os.fspath(path)
        self.what = what
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            raise self.not_a("not a regular file")  # a FIFO would block, a device never end
        try:
            size = os.path.getsize(self.path)
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile:
            raise self.not_a("not an .npz file") from None
        except (ValueError, EOFError, OverflowError) as e:  # damaged central directory
            raise self.error(f"damaged zip directory ({e})") from None
        try:
            self.members = self._read_headers(size, max_bytes)
        except BaseException:
            self._zip.close()
            raise

    def error(self, detail):
        """The error for a file of the right kind that is damaged or forged."""
        return FileFormatError(f"{self.path}: invalid {self.what}: {detail}")

    def not_a(self, detail):
        """The error for a file that is not of this kind at all."""
        return FileFormatError(f"{self.path}: not a {self.what} ({detail})")

    def _read_headers(self, file_size, max_bytes):
        infos = self._zip.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise self.error(f"{len(infos)} members, expected at most {_MAX_MEMBERS}")
        if sum(i.compress_size for i in infos) > file_size:
            raise self.error(
                "the zip directory declares more data than the file holds (truncated or forged)"
            )
        members, self._infos, total = {}, {}, 0
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                raise self.not_a(f"member {name!r} is not an .npy array")
            key = name[:-4]
            if key in members:
                raise self.error(f"member {key!r} appears twice")
            stored = info.compress_type == zipfile.ZIP_STORED
            if stored and info.compress_size != info.file_size:
                raise self.error(
                    f"member {key!r}: stored size {info.compress_size} differs "
                    f"from its size {info.file_size}"
                )
            if not stored and info.file_size > MAX_RATIO * info.compress_size + _SLACK:
                raise self.error(
                    f"member {key!r} would expand from {info.compress_size} to "
                    f"{info.file_size} bytes (more than {MAX_RATIO}x): refused"
                )
            shape, dtype, offset = self._header(key, info)
            nbytes = math.prod(shape) * dtype.itemsize
            if offset + nbytes != info.file_size:
                raise self.error(
                    f"member {key!r}: its header declares shape {shape} of "
                    f"{dtype} ({nbytes} bytes) but it holds "
                    f"{info.file_size - offset} bytes"
                )
            total += nbytes
            if max_bytes is not None and total > max_bytes:
                raise self.error(f"declares more than {max_bytes} bytes of data: refused")
            members[key] = (shape, dtype)
            self._infos[key] = info
        return members

    def _header(self, key, info):
        """-> (shape, dtype, offset of the data) from a member's .npy header."""
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unknown .npy version {version}")
                offset = f.tell()
        except (
            ValueError,
            EOFError,
            OSError,
            zipfile.BadZipFile,
            zlib.error,
            NotImplementedError,  # zipfile: a flipped "compression method" field
            SyntaxError,
            TypeError,
            RecursionError,
            MemoryError,
        ) as e:
            raise self.error(f"member {key!r}: unreadable .npy header ({_short(e)})") from None
        if dtype.kind not in _DTYPE_KINDS or dtype.fields is not None or dtype.subdtype:
            raise self.error(f"member {key!r}: dtype {dtype} is not a plain number or text")
        if any(not isinstance(n, int) or n < 0 for n in shape):
            raise self.error(f"member {key!r}: invalid shape {shape}")
        return tuple(int(n) for n in shape), dtype, offset

    def check_params(self, shapes, dtype, prefix=""):
        """The file must hold exactly the parameters ``shapes`` (``(name, shape)`` from a
        config, a generator: it stops at the first one missing, so a forged count of
        layers costs nothing) as members ``prefix + name`` of ``dtype``. Returns the other
        members whose name starts with ``prefix``, sorted (for the caller to refuse)."""
        seen = set()
        for name, shape in shapes:
            got = self.members.get(prefix + name)
            if got is None:
                raise self.error(f"its config needs parameter {name!r}, which the file lacks")
            if got != (shape, dtype):
                raise self.error(
                    f"parameter {name!r}: expected shape {shape} {dtype} (from its "
                    f"config), got {got[0]} {got[1]}"
                )
            seen.add(prefix + name)
        return sorted(k for k in self.members if k.startswith(prefix) and k not in seen)

    def array(self, key):
        """The member's array (its size was checked against the file)."""
        if key not in self.members:
            raise self.error(f"no member {key!r}")
        try:
            with self._zip.open(self._infos[key]) as f:
                a = np.lib.format.read_array(f, allow_pickle=False)
        except (
            ValueError,
            EOFError,
            OSError,
            zipfile.BadZipFile,
            zlib.error,
            NotImplementedError,
        ) as e:
            raise self.error(f"member {key!r}: unreadable data ({_short(e)})") from None
        if a.shape != self.members[key][0]:  # a header read twice must say the same
            raise self.error(f"member {key!r}: inconsistent shape")
        return a

    def text(self, key, *, max_chars=1 << 22):
        """A 0-d str member (JSON written by rnnkit), at most ``max_chars`` characters."""
        shape, dtype = self.members.get(key, (None, None))
        if shape is None:
            raise self.error(f"no member {key!r}")
        if shape != () or dtype.kind != "U" or dtype.itemsize // 4 > max_chars:
            raise self.error(f"member {key!r}: expected a text entry, got shape {shape} {dtype}")
        return str(self.array(key))

    def json(self, key):
        """A text member parsed as a JSON object (a dict)."""
        import json

        try:
            value = json.loads(self.text(key))
        except (ValueError, RecursionError) as e:
            raise self.error(f"member {key!r}: invalid JSON ({_short(e)})") from None
        if not isinstance(value, dict):
            raise self.error(f"member {key!r}: expected a JSON object, got {type(value).__name__}")
        return value

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _short(e):
    text = str(e) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."
