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
from typing import Any, Dict, List, Optional

import numpy as np

from .._files import NpzReader, atomic_write
from .._module import Module, check_int
from ..losses import log_softmax
from .data import UNK, Vocab

__all__ = ["CharLM", "load_checkpoint", "save_checkpoint"]

_CELLS = ("lstm", "gru", "rnn")
_GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ()}
FORMAT = "rnnkit.charlm/1"


class CharLM(Module):
    """Embedding/one-hot -> stacked RNN/LSTM/GRU -> Linear, over a ``Vocab``.

    ``embed_size=0`` feeds one-hot vectors (I = V) instead of an embedding. A ``Module``
    container: parameters, gradients, ``zero_grad``, ``train``/``eval`` and state dicts come
    from its sub-layers ``embed`` (absent for one-hot), ``rnn`` and ``head``.
    """

    batch_first = False

    def __init__(
        self,
        vocab: Vocab,
        *,
        cell: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 1,
        embed_size: int = 64,
        dropout: float = 0.0,
        backend: str = "native",
        dtype: str = "float32",
        seed: Optional[int] = 0,
        linear_before_reset: bool = True,
        nonlinearity: str = "tanh",
        layer_norm: bool = False,
        zoneout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ):
        import rnnkit

        cell = cell.lower()
        if cell not in _CELLS:
            raise ValueError(f"cell: expected one of {_CELLS}, got {cell!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a value in [0, 1), got {dropout}")
        Module.__init__(self)
        self.vocab = vocab
        V = len(vocab)
        self.cfg: Dict[str, Any] = dict(
            cell=cell,
            hidden_size=int(hidden_size),
            num_layers=int(num_layers),
            embed_size=int(embed_size),
            dropout=float(dropout),
            backend=backend,
            dtype=dtype,
            seed=seed,
            linear_before_reset=bool(linear_before_reset),
            nonlinearity=nonlinearity,
            layer_norm=bool(layer_norm),
            zoneout=float(zoneout),
            recurrent_dropout=float(recurrent_dropout),
            vocab_size=V,
        )
        self.dtype = np.dtype(dtype)
        ss = np.random.SeedSequence(seed)
        s_embed, s_rnn, s_head, s_drop = (int(s.generate_state(1)[0]) for s in ss.spawn(4))
        self.embed = (
            self._add_module("embed", rnnkit.Embedding(V, embed_size, dtype=dtype, seed=s_embed))
            if embed_size > 0
            else None
        )
        I = embed_size if embed_size > 0 else V
        kw = dict(
            num_layers=num_layers,
            dropout=dropout,
            dtype=dtype,
            backend=backend,
            seed=s_rnn,
            layer_norm=layer_norm,
            zoneout=zoneout,
            recurrent_dropout=recurrent_dropout,
        )
        if cell == "lstm":
            rnn = rnnkit.LSTM(I, hidden_size, **kw)
        elif cell == "gru":
            rnn = rnnkit.GRU(I, hidden_size, linear_before_reset=linear_before_reset, **kw)
        else:
            rnn = rnnkit.RNN(I, hidden_size, nonlinearity=nonlinearity, **kw)
        self.rnn = self._add_module("rnn", rnn)
        self.head = self._add_module(
            "head", rnnkit.Linear(hidden_size, V, dtype=dtype, seed=s_head)
        )
        self._drop_rng = np.random.default_rng(s_drop)
        self.loss_history: Dict[str, List[float]] = {"step": [], "train_loss": [], "val_loss": []}

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
        V = len(self.vocab)
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= V):  # -1 would pick id V-1
            bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
            raise ValueError(f"ids: expected values in [0, {V}), got {bad}")
        return np.eye(V, dtype=self.dtype)[ids], None

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

    def evaluate(
        self,
        ids: np.ndarray,
        *,
        B: int = 32,
        T: int = 256,
        max_chars: Optional[int] = None,
        starts=None,
    ) -> float:
        """Mean cross-entropy (nats/char) of the model on ``ids`` read as ``B`` streams with
        carried state, in eval mode (no dropout). ``max_chars`` caps the work. NaN for fewer
        than 2 characters (nothing to predict). ``starts``: the offsets in ``ids`` where
        documents (files) start; the state is reset there."""
        from .data import make_streams, stream_resets

        ids = np.asarray(ids)
        if max_chars is not None:
            ids = ids[:max_chars]
        if len(ids) < 2:  # no character with a next one to predict
            return float("nan")
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
                logits, state = self.logits(
                    streams[pos:stop], state, resets=r if r is not None and r.any() else None
                )
                logp = log_softmax(logits.astype(np.float64))
                tgt = streams[pos + 1 : stop + 1]
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
                out[f"l{k}.{name}"] = np.array(cache.gates[:, 0, g * H : (g + 1) * H])
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
        return {
            "__dict__": [
                [_flatten(k, f"{prefix}k{i}/", arrays), _flatten(v, f"{prefix}{i}/", arrays)]
                for i, (k, v) in enumerate(tree.items())
            ]
        }
    if isinstance(tree, (list, tuple)):
        return {
            "__list__": [_flatten(v, f"{prefix}{i}/", arrays) for i, v in enumerate(tree)],
            "tuple": isinstance(tree, tuple),
        }
    if isinstance(tree, np.generic):
        return tree.item()
    if hasattr(tree, "detach"):  # a torch tensor
        return _flatten(tree.detach().cpu().numpy(), prefix, arrays)
    return tree


_FIXED_MEMBERS = ("format", "config", "vocab", "train")
_MAX_DEPTH = 12  # nesting of the train state (optimizer state is 3 levels deep)


def _unflatten(skel, arrays, f, depth=0):
    """The inverse of ``_flatten``; ``arrays(key)`` reads one member. A forged skeleton (too
    deep, a missing array, an unknown node) is a FileFormatError of ``f``."""
    if depth > _MAX_DEPTH:
        raise f.error(f"train state nested deeper than {_MAX_DEPTH} levels")
    if isinstance(skel, dict):
        if "__array__" in skel:
            key = skel["__array__"]
            if not isinstance(key, str) or not key.startswith("train/") or key not in f.members:
                raise f.error(f"train state refers to a missing array {key!r}")
            return arrays(key)
        if "__dict__" in skel and isinstance(skel["__dict__"], list):
            out = {}
            for item in skel["__dict__"]:
                if not isinstance(item, list) or len(item) != 2:
                    raise f.error("train state: malformed dict entry")
                k = _unflatten(item[0], arrays, f, depth + 1)
                if not isinstance(k, (str, int)):
                    raise f.error(f"train state: invalid key {k!r}")
                out[k] = _unflatten(item[1], arrays, f, depth + 1)
            return out
        if "__list__" in skel and isinstance(skel["__list__"], list):
            items = [_unflatten(v, arrays, f, depth + 1) for v in skel["__list__"]]
            return tuple(items) if skel.get("tuple") else items
        raise f.error("train state: unknown node")
    if skel is None or isinstance(skel, (bool, int, float, str)):
        return skel
    raise f.error(f"train state: unexpected {type(skel).__name__}")


def save_checkpoint(path: str, model: CharLM, *, extra: Optional[Dict[str, Any]] = None) -> None:
    """One ``.npz``: config, vocab, params, loss history, and ``extra`` (any nested data of
    arrays and JSON scalars, e.g. optimizer state) under ``train/``. Written atomically
    (``rnnkit._files.atomic_write``): a kill mid-save keeps the previous checkpoint."""
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
    with atomic_write(path) as fh:
        np.savez(fh, **entries)


_CONFIG_DEFAULTS = dict(
    cell="lstm",
    hidden_size=256,
    num_layers=1,
    embed_size=64,
    dropout=0.0,
    backend="native",
    dtype="float32",
    seed=0,
    linear_before_reset=True,
    nonlinearity="tanh",
    layer_norm=False,
    zoneout=0.0,
    recurrent_dropout=0.0,
    vocab_size=None,
)
_CHOICES = {
    "cell": _CELLS,
    "backend": ("native", "reference"),
    "dtype": ("float32", "float64"),
    "nonlinearity": ("tanh", "relu"),
}


def _check_config(cfg: Dict[str, Any], f) -> Dict[str, Any]:
    """A checkpoint's model config: only known keys, each of its type and range."""
    unknown = sorted(set(cfg) - set(_CONFIG_DEFAULTS))
    if unknown:
        raise f.error(f"config: unknown keys {unknown[:5]}")
    out = dict(_CONFIG_DEFAULTS, **cfg)
    try:
        for name, choices in _CHOICES.items():
            if out[name] not in choices:
                raise ValueError(f"{name}: expected one of {choices}, got {out[name]!r}")
        for name, low in (("hidden_size", 1), ("num_layers", 1), ("embed_size", 0)):
            out[name] = check_int(name, out[name], low)
        if out["vocab_size"] is not None:
            out["vocab_size"] = check_int("vocab_size", out["vocab_size"], 1)
        for name, closed in (("dropout", False), ("zoneout", True), ("recurrent_dropout", False)):
            d = out[name]
            if (
                isinstance(d, bool)
                or not isinstance(d, (int, float))
                or not (0.0 <= d <= 1.0 if closed else 0.0 <= d < 1.0)
            ):
                raise ValueError(
                    f"{name}: expected a number in [0, {'1]' if closed else '1)'}, got {d!r}"
                )
        if out["seed"] is not None:
            out["seed"] = check_int("seed", out["seed"], 0)
        for name in ("linear_before_reset", "layer_norm"):
            if not isinstance(out[name], bool):
                raise TypeError(f"{name}: expected a bool, got {out[name]!r}")
    except (TypeError, ValueError) as e:
        raise f.error(f"config: {e}") from None
    return out


def param_shapes(cfg: Dict[str, Any], V: int):
    """Yields ``(name, shape)`` of a CharLM's parameters for ``cfg``, without allocating."""
    from ..layers import param_shapes as rnn_shapes

    E, H = cfg["embed_size"], cfg["hidden_size"]
    if E > 0:
        yield "embed.weight", (V, E)
    for n, shape in rnn_shapes(
        cfg["cell"],
        E if E > 0 else V,
        H,
        cfg["num_layers"],
        layer_norm=cfg.get("layer_norm", False),
    ):
        yield "rnn." + n, shape
    yield "head.weight", (V, H)
    yield "head.bias", (V,)


def _read_vocab(f) -> Vocab:
    shape, dt = f.members["vocab"]
    if len(shape) != 1 or dt.kind not in "iu" or not 1 <= shape[0] <= 0x110000:
        raise f.error(f"vocab: expected code points [V], got shape {shape} {dt}")
    raw = f.array("vocab")
    if int(raw.min()) < 0 or int(raw.max()) > 0x10FFFF:  # before a cast could wrap a uint64
        raise f.error("vocab: code points outside [0, 0x10FFFF]")
    codes = raw.astype(np.int64)
    if codes[0] != ord(UNK) or len(np.unique(codes)) != len(codes):
        raise f.error("vocab: expected distinct code points with U+FFFD first")
    return Vocab(chr(int(c)) for c in codes[1:])


def load_checkpoint(path: str, *, backend: Optional[str] = None):
    """Reads a checkpoint: ``(model, extra)`` (extra None when the file has no train state).

    Nothing in the file is trusted: the config is checked key by key, every parameter's
    declared shape against the config before the model is built, the sizes of the arrays
    against the file. A bad file is a ``FileFormatError`` (a ValueError) naming it."""
    with NpzReader(path, "rnnkit char-LM checkpoint") as f:
        if "config" not in f.members or "vocab" not in f.members:
            raise f.not_a("no config/vocab")
        if "format" in f.members and f.text("format", max_chars=64) != FORMAT:
            raise f.error(f"format {f.text('format', max_chars=64)!r}, expected {FORMAT!r}")
        cfg = _check_config(f.json("config"), f)
        vocab = _read_vocab(f)
        V = cfg.pop("vocab_size")
        if V is not None and V != len(vocab):
            raise f.error(f"config says vocab_size {V}, the vocab holds {len(vocab)}")
        dtype = np.dtype(cfg["dtype"])
        left = f.check_params(param_shapes(cfg, len(vocab)), dtype, prefix="param/")
        if left:
            raise f.error(f"unexpected parameters {left[:5]}")
        unknown = sorted(
            k
            for k in f.members
            if k not in _FIXED_MEMBERS and not k.startswith(("param/", "history/", "train/"))
        )
        if unknown:
            raise f.error(f"unexpected entries {unknown[:5]}")
        history = {}
        for k in ("step", "train_loss", "val_loss"):
            key = f"history/{k}"
            if key in f.members:
                shape, dt = f.members[key]
                if len(shape) != 1 or dt.kind not in "iuf":
                    raise f.error(f"{key}: expected a 1-D numeric array, got {shape} {dt}")
                history[k] = f.array(key).tolist()
            else:
                history[k] = []
        params = {k[len("param/") :]: f.array(k) for k in f.members if k.startswith("param/")}
        extra = None
        if "train" in f.members:
            extra = _unflatten(f.json("train"), f.array, f)
            if not isinstance(extra, dict):
                raise f.error("train state: expected a dict")
    if backend is not None:
        cfg["backend"] = backend
    model = CharLM(vocab, **cfg)
    model.load_state_dict(params)
    model.loss_history = history
    return model, extra
