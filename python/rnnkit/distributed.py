"""Data-parallel training of rnnkit's NumPy models over ``torch.distributed`` (gloo, CPU).

Launch any script (or ``rnnkit train``) with ``torchrun``: one machine, ``torchrun
--nproc-per-node N ...``; several, ``torchrun --nnodes M --nproc-per-node N --rdzv-backend
c10d --rdzv-endpoint HOST:PORT ...`` on each. ``torchrun`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; ``init_from_env`` reads them and
returns a ``Group``, or None for a single process (then nothing imports torch). The recipe
for any rnnkit layer and optimizer::

    group = rnnkit.distributed.init_from_env()        # None without torchrun
    my = group.shard(B, "batch")                      # this rank's slice of the global batch
    group.broadcast(model.parameters())               # the same start everywhere
    ...forward/backward on x[:, my] (the loss a mean over this rank's share)...
    group.all_reduce_mean(model.grads)                # in place, zero-copy: the global mean
    opt.step()                                        # identical on every rank

Every array travels through ``torch.from_numpy`` (the tensor is the array's memory): a large
gradient is all-reduced in place; small ones are packed into one buffer per bucket first,
since one collective's latency costs more than the copy. Equal shares make the mean of the ranks'
mean losses the mean over the whole batch: the weights follow a one-process run on the
whole batch to float rounding (the order of the summation differs).
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

__all__ = ["Group", "init_from_env", "launched", "is_main_process", "world_size_from_env"]


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when unset)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise ValueError(
            f"WORLD_SIZE: expected an integer, got {os.environ['WORLD_SIZE']!r}"
        ) from None


def launched() -> bool:
    """Whether this process is one of several started by torchrun (WORLD_SIZE > 1)."""
    return world_size_from_env() > 1


def is_main_process() -> bool:
    """True for rank 0 (and for a process not started by torchrun)."""
    return not launched() or os.environ.get("RANK", "0") == "0"


def _tree(fn, state):
    """``fn`` on every array of a state (an array, a tuple/list of them, or None)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(_tree(fn, s) for s in state)
    return fn(state)


def _arrays(arrays):
    """The arrays of a dict of arrays (``layer.grads``) or of an iterable of arrays."""
    return list(arrays.values()) if isinstance(arrays, dict) else list(arrays)


# Gradients are summed in buckets of about this many bytes: measured on the 2-core machine
# (gloo, loopback, 2 processes), 7 all-reduces of a char LM's gradients took 5.9-9.0 ms a step,
# one of them all together 0.46-1.0 ms; copying 4 MB in and out costs well under that.
BUCKET_BYTES = 4 << 20


def _buckets(arrays, limit):
    """Consecutive runs of arrays of one dtype, each at most ``limit`` bytes (an array larger
    than that alone)."""
    out, cur, size = [], [], 0
    for a in arrays:
        if cur and (a.dtype != cur[0].dtype or size + a.nbytes > limit):
            out.append(cur)
            cur, size = [], 0
        cur.append(a)
        size += a.nbytes
    if cur:
        out.append(cur)
    return out


class Group:
    """This process's view of the process group: ``rank``, ``world_size`` and the few
    collectives data-parallel training needs. Made by ``init_from_env``."""

    def __init__(self, dist, rank: int, world_size: int, local_world_size: int):
        self._dist = dist  # the torch.distributed module
        import torch

        self._torch = torch
        self.rank, self.world_size, self.local_world_size = rank, world_size, local_world_size

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints, evaluates and writes files."""
        return self.rank == 0

    def threads_per_process(self) -> int:
        """This machine's cores shared by its processes (at least 1 each)."""
        return max(1, (os.cpu_count() or 1) // max(1, self.local_world_size))

    def shard(self, n: int, name: str = "batch") -> slice:
        """This rank's equal slice of ``n`` items; ``ValueError`` naming ``name`` unless the
        world size divides ``n`` (unequal shares would weigh the ranks' means unequally)."""
        if n % self.world_size:
            raise ValueError(
                f"{name}: {n} does not split evenly over {self.world_size} "
                f"processes; use a multiple of {self.world_size}"
            )
        b = n // self.world_size
        return slice(self.rank * b, (self.rank + 1) * b)

    def _tensor(self, a: np.ndarray):
        if not (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable):
            raise TypeError("expected writable C-contiguous NumPy arrays (e.g. layer.grads)")
        return self._torch.from_numpy(a)

    def all_reduce_mean(self, arrays, bucket_bytes: int = BUCKET_BYTES) -> None:
        """Replaces each array (``layer.grads`` or any list of arrays) by its mean over the
        ranks, in place. Arrays of one dtype travel together in buckets of up to
        ``bucket_bytes`` (one collective each: the per-call latency dominates small arrays);
        an array larger than that is reduced in place on its own."""
        for bucket in _buckets(_arrays(arrays), bucket_bytes):
            a = bucket[0]
            in_place = len(bucket) == 1 and a.flags.c_contiguous and a.flags.writeable
            flat = a if in_place else np.concatenate([b.ravel() for b in bucket])
            self._dist.all_reduce(self._tensor(flat), op=self._dist.ReduceOp.SUM)
            flat /= self.world_size
            if not in_place:
                at = 0
                for b in bucket:
                    np.copyto(b, flat[at : at + b.size].reshape(b.shape))
                    at += b.size

    def broadcast(self, arrays, src: int = 0) -> None:
        """Overwrites each array with rank ``src``'s, in place (e.g. ``model.parameters()``)."""
        for a in _arrays(arrays):
            self._dist.broadcast(self._tensor(a), src=src)

    def step_values(self, mean: float, main: float):
        """One collective per training step: the ranks' mean of ``mean`` (e.g. the loss) and
        rank 0's ``main`` (e.g. its clock, so that every rank takes the same decisions)."""
        v = np.array([mean / self.world_size, main if self.is_main else 0.0])
        self._dist.all_reduce(self._tensor(v), op=self._dist.ReduceOp.SUM)
        return float(v[0]), float(v[1])

    def gather(self, state, axis: int = 1):
        """The whole batch of a state sharded along ``axis`` (an array, a tuple of arrays or
        None), on every rank: the concatenation of the ranks' shares in rank order."""

        def one(a):
            a = np.ascontiguousarray(a)
            parts = [np.empty_like(a) for _ in range(self.world_size)]
            self._dist.all_gather([self._tensor(p) for p in parts], self._tensor(a))
            return np.concatenate(parts, axis=axis)

        return _tree(one, state)

    def take(self, state, axis: int = 1):
        """This rank's share of a whole-batch state along ``axis`` (the inverse of gather)."""

        def one(a):
            sl = self.shard(a.shape[axis], "state")
            return np.ascontiguousarray(np.take(a, range(sl.start, sl.stop), axis=axis))

        return _tree(one, state)

    def close(self) -> None:
        if self._dist.is_initialized():
            self._dist.destroy_process_group()


def init_from_env(timeout_s: float = 1800.0) -> Optional[Group]:
    """The process group torchrun describes in the environment (gloo backend), or None when
    this is a single process (``WORLD_SIZE`` unset or 1; torch is then never imported).
    ``ImportError`` saying so when the launch is distributed but torch is missing."""
    world = world_size_from_env()
    if world <= 1:
        return None
    try:
        import torch  # noqa: F401
        import torch.distributed as dist
    except ImportError as e:
        raise ImportError(
            f"a distributed launch (WORLD_SIZE={world}) needs PyTorch for "
            f"torch.distributed: pip install 'rnnkit[torch]' ({e})"
        ) from None
    import datetime

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout_s))
        # A process that exits with the group alive (an error, a return without close()) is
        # aborted by gloo's threads at shutdown ("terminate called without an active
        # exception"): take the group down before that.
        import atexit

        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return Group(dist, dist.get_rank(), dist.get_world_size(), local)
