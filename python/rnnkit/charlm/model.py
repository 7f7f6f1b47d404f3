"""``CharLM``: a character-level language model made of rnnkit pieces.

    ids[T, B] -> Embedding (or one-hot) -> x[T, B, I]
              -> rnnkit.LSTM / GRU / RNN, ``num_layers`` stacked (dropout between layers)
              -> dropout (training only) -> Linear -> logits[T, B, V]

It implements the layer protocol, so ``rnnkit.tbptt`` / ``rnnkit.TBPTT`` drive it with
``rnnkit.softmax_cross_entropy`` on the logits as the loss::

    logits, state, tape = lm.forward(ids, state)
    dx, dstate = lm.backward(dlogits, dstate, tape)   # accumulates into lm.grads

``dx`` is an empty ``[T, B, 0]`` array: the inputs are integer ids and have no gradient.
Parameters are named ``embed.weight``, ``rnn.weight_ih_l0`` ..., ``head.weight``,
``head.bias``; ``lm.grads`` holds the sub-layers' own gradient arrays (updated in place), so
an optimizer built on ``lm`` sees every gradient.

Checkpoint (``lm.save(path)`` / ``CharLM.load(path)``): one ``.npz`` with ``config`` (JSON),
``vocab`` (code points, id order), ``param/<name>`` (the state dict), ``history/step``,
``history/train_loss``, ``history/val_loss`` (the loss history) and, when training wrote it,
``train/...`` (optimizer state and position, for ``--resume``). Loads with
``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..losses import log_softmax
from .data import Vocab

__all__ = ["CharLM", "load_checkpoint", "save_checkpoint"]

_CELLS = ("lstm", "gru", "rnn")
_GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ()}
FORMAT = "rnnkit.charlm/1"


class CharLM:
    """Embedding/one-hot -> stacked RNN/LSTM/GRU -> Linear, over a ``Vocab``.

    ``embed_size=0`` feeds one-hot vectors (I = V) instead of an embedding.
    """

    batch_first = False

    def __init__(self, vocab: Vocab, *, cell: str = "lstm", hidden_size: int = 256,
                 num_layers: int = 1, embed_size: int = 64, dropout: float = 0.0,
                 backend: str = "native", dtype: str = "float32", seed: Optional[int] = 0,
                 linear_before_reset: bool = True, nonlinearity: str = "tanh",
                 layer_norm: bool = False, zoneout: float = 0.0,
                 recurrent_dropout: float = 0.0):
        import rnnkit

        cell = cell.lower()
        if cell not in _CELLS:
            raise ValueError(f"cell: expected one of {_CELLS}, got {cell!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a value in [0, 1), got {dropout}")
        self.vocab = vocab
        V = len(vocab)
        self.cfg: Dict[str, Any] = dict(
            cell=cell, hidden_size=int(hidden_size), num_layers=int(num_layers),
            embed_size=int(embed_size), dropout=float(dropout), backend=backend, dtype=dtype,
            seed=seed, linear_before_reset=bool(linear_before_reset),
            nonlinearity=nonlinearity, layer_norm=bool(layer_norm), zoneout=float(zoneout),
            recurrent_dropout=float(recurrent_dropout), vocab_size=V)
        self.dtype = np.dtype(dtype)
        ss = np.random.SeedSequence(seed)
        s_embed, s_rnn, s_head, s_drop = (int(s.generate_state(1)[0]) for s in ss.spawn(4))
        self.embed = (rnnkit.Embedding(V, embed_size, dtype=dtype, seed=s_embed)
                      if embed_size > 0 else None)
        I = embed_size if embed_size > 0 else V
        kw = dict(num_layers=num_layers, dropout=dropout, dtype=dtype, backend=backend,
                  seed=s_rnn, layer_norm=layer_norm, zoneout=zoneout,
                  recurrent_dropout=recurrent_dropout)
        if cell == "lstm":
            self.rnn = rnnkit.LSTM(I, hidden_size, **kw)
        elif cell == "gru":
            self.rnn = rnnkit.GRU(I, hidden_size, linear_before_reset=linear_before_reset, **kw)
        else:
            self.rnn = rnnkit.RNN(I, hidden_size, nonlinearity=nonlinearity, **kw)
        self.head = rnnkit.Linear(hidden_size, V, dtype=dtype, seed=s_head)
        self._drop_rng = np.random.default_rng(s_drop)
        self.training = True
        self.loss_history: Dict[str, List[float]] = {"step": [], "train_loss": [], "val_loss": []}

    # ------------------------------------------------------------ parameters

    def _parts(self):
        parts = [("rnn", self.rnn), ("head", self.head)]
        return ([("embed", self.embed)] if self.embed is not None else []) + parts

    def named_parameters(self) -> List[Tuple[str, np.ndarray]]:
        return [(f"{p}.{n}", a) for p, m in self._parts() for n, a in m.named_parameters()]

    def parameters(self) -> List[np.ndarray]:
        return [a for _, a in self.named_parameters()]

    @property
    def grads(self) -> Dict[str, np.ndarray]:
        return {f"{p}.{n}": g for p, m in self._parts() for n, g in m.grads.items()}

    def zero_grad(self) -> None:
        for _, m in self._parts():
            m.zero_grad()

    def num_parameters(self) -> int:
        return int(sum(a.size for a in self.parameters()))

    def train(self) -> "CharLM":
        self.training = True
        self.rnn.train()
        return self

    def eval(self) -> "CharLM":
        self.training = False
        self.rnn.eval()
        return self

    def state_dict(self) -> Dict[str, np.ndarray]:
        return {n: np.array(a, copy=True) for n, a in self.named_parameters()}

    def load_state_dict(self, d: Dict[str, np.ndarray]) -> None:
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(d))
        extra = sorted(set(d) - set(own))
        if missing or extra:
            raise ValueError(f"state dict: missing {missing}, unexpected {extra}")
        for p, m in self._parts():
            pre = p + "."
            m.load_state_dict({k[len(pre):]: np.asarray(v) for k, v in d.items()
                               if k.startswith(pre)})

    def config(self) -> Dict[str, Any]:
        return dict(self.cfg)

    @property
    def hidden_size(self) -> int:
        return self.cfg["hidden_size"]

    # ------------------------------------------------------------ the layer protocol

    def _inputs(self, ids):
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"ids: expected integer character ids, got dtype {ids.dtype}")
        if self.embed is not None:
            return self.embed.forward(ids)
        return np.eye(len(self.vocab), dtype=self.dtype)[ids], None

    def forward(self, ids, state=None, lengths=None, *, resets=None):
        """``ids[T, B]`` int -> ``(logits[T, B, V], state, tape)``; ``resets[T, B]`` bool
        zeroes the state of stream b before step t (a document starts there)."""
        x, t_embed = self._inputs(ids)
        y, state, t_rnn = self.rnn.forward(x, state, lengths, resets=resets)
        mask = None
        p = self.cfg["dropout"]
        if self.training and p > 0:
            mask = (self._drop_rng.random(y.shape) >= p).astype(y.dtype) / y.dtype.type(1 - p)
            y = y * mask
        logits, t_head = self.head.forward(y)
        return logits, state, (np.shape(ids), t_embed, t_rnn, mask, t_head)

    def backward(self, dlogits, dstate=None, tape=None):
        """Accumulates the gradients of one ``forward`` into ``self.grads``; returns
        ``(dx[T, B, 0], dstate)``."""
        shape, t_embed, t_rnn, mask, t_head = tape
        dy = self.head.backward(dlogits, t_head)
        if mask is not None:
            dy = dy * mask
        dx, dstate = self.rnn.backward(dy, dstate, t_rnn)
        if self.embed is not None:
            self.embed.backward(dx, t_embed)
        return np.zeros(tuple(shape) + (0,), self.dtype), dstate

    def __call__(self, ids, state=None, *, resets=None):
        logits, state, _ = self.forward(ids, state, resets=resets)
        return logits, state

    def logits(self, ids, state=None, *, resets=None):
        """Inference: ``ids[T]`` -> ``(logits[T, V], state)`` (batch of one), or
        ``ids[T, B]`` -> ``(logits[T, B, V], state)``. Keeps no tape. ``resets`` (bool,
        ``ids``' shape) zeroes the state before the marked steps."""
        ids = np.asarray(ids)
        one = ids.ndim == 1
        if one and resets is not None:
            resets = np.asarray(resets)[:, None]
        logits, state, _ = self.forward(ids[:, None] if one else ids, state, resets=resets)
        return (logits[:, 0] if one else logits), state

    def evaluate(self, ids: np.ndarray, *, B: int = 32, T: int = 256,
                 max_chars: Optional[int] = None, starts=None) -> float:
        """Mean cross-entropy (nats/char) of the model on ``ids`` read as ``B`` streams with
        carried state, in eval mode (no dropout). ``max_chars`` caps the work. ``starts``:
        the offsets in ``ids`` where documents (files) start; the state is reset there."""
        from .data import make_streams, stream_resets
        ids = np.asarray(ids)
        if max_chars is not None:
            ids = ids[:max_chars]
        B = max(1, min(B, len(ids) // 2))
        streams = make_streams(ids, B)
        resets = None if starts is None else stream_resets(starts, len(ids), B)
        was = self.training
        self.eval()
        total, count, state = 0.0, 0, None
        try:
            for pos in range(0, streams.shape[0] - 1, T):
                stop = min(pos + T, streams.shape[0] - 1)
                r = None if resets is None else resets[pos:stop]
                logits, state = self.logits(streams[pos:stop], state,
                                            resets=r if r is not None and r.any() else None)
                logp = log_softmax(logits.astype(np.float64))
                tgt = streams[pos + 1: stop + 1]
                total -= float(np.take_along_axis(logp, tgt[..., None], -1).sum())
                count += tgt.size
        finally:
            if was:
                self.train()
        return total / max(count, 1)

    # ------------------------------------------------------------ interpretability

    def activations(self, text: str) -> Dict[str, np.ndarray]:
        """Hidden states and gates of every layer for each character of ``text``.

        Keys ``"l{k}.h"`` (and ``"l{k}.c"`` for LSTM), gates ``"l{k}.i"/"f"/"g"/"o"`` (LSTM) or
        ``"l{k}.r"/"z"/"n"`` (GRU), each ``[N, H]`` for the N characters (layer k from 0):
        the state after reading the character. Read from the functional caches (``h``, ``c``,
        ``gates``) that the recurrent layer's tape keeps, one forward in eval mode.
        """
        cell = self.cfg["cell"]
        H = self.hidden_size
        x, _ = self._inputs(self.vocab.encode(text)[:, None])
        was = self.rnn.training
        self.rnn.eval()  # no dropout between layers
        try:
            _, _, tape = self.rnn.forward(x)
        finally:
            self.rnn.train(was)
        out: Dict[str, np.ndarray] = {}
        for k, (cache,) in enumerate(tape.caches):  # one direction per layer
            out[f"l{k}.h"] = np.array(cache.h[1:, 0])
            if cell == "lstm":
                out[f"l{k}.c"] = np.array(cache.c[1:, 0])
            for g, name in enumerate(_GATES[cell]):
                out[f"l{k}.{name}"] = np.array(cache.gates[:, 0, g * H:(g + 1) * H])
        return out

    # ------------------------------------------------------------ checkpoints

    def save(self, path: str, *, extra: Optional[Dict[str, Any]] = None) -> None:
        """Writes the checkpoint (atomically: a temporary file, then a rename)."""
        save_checkpoint(path, self, extra=extra)

    @classmethod
    def load(cls, path: str, *, backend: Optional[str] = None) -> "CharLM":
        return load_checkpoint(path, backend=backend)[0]


# ---------------------------------------------------------------- checkpoint files


def _flatten(tree, prefix: str, arrays: Dict[str, np.ndarray]):
    """Nested dicts/lists of arrays and scalars -> (JSON-able skeleton, arrays by key)."""
    if isinstance(tree, np.ndarray):
        key = prefix.rstrip("/")
        arrays[key] = tree
        return {"__array__": key}
    if isinstance(tree, dict):
        return {"__dict__": [[_flatten(k, f"{prefix}k{i}/", arrays),
                              _flatten(v, f"{prefix}{i}/", arrays)]
                             for i, (k, v) in enumerate(tree.items())]}
    if isinstance(tree, (list, tuple)):
        return {"__list__": [_flatten(v, f"{prefix}{i}/", arrays) for i, v in enumerate(tree)],
                "tuple": isinstance(tree, tuple)}
    if isinstance(tree, np.generic):
        return tree.item()
    if hasattr(tree, "detach"):  # a torch tensor
        return _flatten(tree.detach().cpu().numpy(), prefix, arrays)
    return tree


def _unflatten(skel, arrays):
    if isinstance(skel, dict):
        if "__array__" in skel:
            return np.array(arrays[skel["__array__"]])
        if "__dict__" in skel:
            return {_unflatten(k, arrays): _unflatten(v, arrays) for k, v in skel["__dict__"]}
        if "__list__" in skel:
            items = [_unflatten(v, arrays) for v in skel["__list__"]]
            return tuple(items) if skel.get("tuple") else items
    return skel


def save_checkpoint(path: str, model: CharLM, *, extra: Optional[Dict[str, Any]] = None) -> None:
    """One ``.npz``: config, vocab, params, loss history, and ``extra`` (any nested data of
    arrays and JSON scalars, e.g. optimizer state) under ``train/``."""
    entries: Dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "config": np.array(json.dumps(model.config())),
        "vocab": model.vocab.to_array(),
    }
    for n, a in model.named_parameters():
        entries[f"param/{n}"] = np.array(a)
    for k in ("step", "train_loss", "val_loss"):
        dt = np.int64 if k == "step" else np.float64
        entries[f"history/{k}"] = np.asarray(model.loss_history[k], dtype=dt)
    if extra is not None:
        arrays: Dict[str, np.ndarray] = {}
        skel = _flatten(extra, "train/", arrays)
        entries["train"] = np.array(json.dumps(skel))
        entries.update(arrays)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=d)
    os.close(fd)
    try:
        np.savez(tmp, **entries)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str, *, backend: Optional[str] = None):
    """Reads a checkpoint: ``(model, extra)`` (extra None when the file has no train state)."""
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError:  # not a .npy/.npz file (NumPy takes it for a pickle)
        raise ValueError(f"{path}: not a rnnkit char-LM checkpoint (not an .npz file)") from None
    if not hasattr(z, "files"):  # a single .npy array
        raise ValueError(f"{path}: not a rnnkit char-LM checkpoint (an .npy array, not an .npz)")
    with z:
        if "config" not in z.files or "vocab" not in z.files:
            raise ValueError(f"{path}: not a rnnkit char-LM checkpoint (no config/vocab)")
        cfg = json.loads(str(z["config"]))
        vocab = Vocab.from_array(z["vocab"])
        cfg.pop("vocab_size", None)
        if backend is not None:
            cfg["backend"] = backend
        model = CharLM(vocab, **cfg)
        model.load_state_dict({k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")})
        for k in ("step", "train_loss", "val_loss"):
            model.loss_history[k] = z[f"history/{k}"].tolist() if f"history/{k}" in z.files else []
        extra = None
        if "train" in z.files:
            arrays = {k: z[k] for k in z.files if k.startswith("train/")}
            extra = _unflatten(json.loads(str(z["train"])), arrays)
    return model, extra
