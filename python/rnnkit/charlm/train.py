"""Training loop of the character-level language model (``rnnkit train``).

Truncated BPTT over ``B`` parallel streams of the training text (``rnnkit.TBPTT``: the state
is carried from one window to the next, gradients stop at the window's start), one optimizer
step per window with gradient-norm clipping, evaluation on the validation text at intervals,
a checkpoint at each evaluation, a time or step budget, and resume from a checkpoint.

Under torchrun (``rnnkit.distributed``) each process trains on its equal share of the
``--batch`` streams; the gradients are averaged over the processes every step, and every
decision (evaluation, stop) follows rank 0's clock, so the weights stay identical. Rank 0
alone prints, evaluates and writes the checkpoint, which holds the whole batch's state (so a
run may resume with another number of processes). Dropout masks are drawn per process.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

from .._files import FileFormatError, defer_sigint
from .data import load_corpus, make_streams, stream_resets, unigram_baseline
from .model import CharLM, load_checkpoint

__all__ = ["TrainConfig", "train", "make_optimizer"]


@dataclass
class TrainConfig:
    data: Optional[str] = None  # None: the Python standard library
    cell: str = (
        "gru"  # measured: GRU 1x256 beat LSTM 1x256 in 60 s (1.26-1.29 vs 1.31-1.50 nats/char)
    )
    hidden_size: int = 256
    num_layers: int = 1
    embed_size: int = 64
    dropout: float = 0.0
    layer_norm: bool = False
    zoneout: float = 0.0
    recurrent_dropout: float = 0.0
    doc_resets: bool = True  # reset the state where a file of the corpus starts
    seq_len: int = 64
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 2e-3
    clip: float = 5.0
    time: Optional[float] = 60.0  # seconds of training (None: no time limit)
    steps: Optional[int] = None  # optimizer steps (None: no step limit)
    eval_every: Optional[int] = None  # steps between evaluations (None: ~every budget/10 s)
    eval_chars: int = (
        32_768  # validation characters per intermediate evaluation (the final one reads all)
    )
    seed: int = 0
    threads: Optional[int] = None
    out: str = "charlm.npz"
    resume: bool = False
    force: bool = False  # overwrite an existing ``out`` when not resuming
    backend: str = "native"
    dtype: str = "float32"
    min_count: int = 5
    val_fraction: float = 0.05
    max_chars: Optional[int] = None
    sample_length: int = 400
    sample_prime: str = ""
    sample_temperature: float = 0.8
    progress: Optional[bool] = None  # None: a tqdm bar when on a terminal and tqdm is installed
    given: Tuple[str, ...] = ()  # the fields set explicitly (the CLI's options): see _check_resume


# The fields that define the model (and their options): on --resume they come from the
# checkpoint.
MODEL_FIELDS = {
    "cell": "--cell",
    "hidden_size": "--hidden",
    "num_layers": "--layers",
    "embed_size": "--embed",
    "dropout": "--dropout",
    "dtype": "--dtype",
}
# What the checkpoint's train state may hold, with the type each field must have.
_TRAIN_FIELDS = {
    "optim": dict,
    "step": int,
    "pos": int,
    "epoch": int,
    "chars_seen": int,
    "elapsed": float,
    "state": object,
    "batch_size": int,
    "train_config": dict,
}


def make_optimizer(name: str, model, lr: float):
    from rnnkit import optim

    name = name.lower()
    table = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD, "adagrad": optim.Adagrad}
    if name not in table:
        raise ValueError(f"optimizer: expected one of {sorted(table)}, got {name!r}")
    return table[name](model, lr=lr)


def _fmt_chars(n: float) -> str:
    return f"{n / 1e3:.1f}k" if n < 1e6 else f"{n / 1e6:.2f}M"


class _Reporter:
    """A tqdm bar when asked for (or on a terminal with tqdm installed), else log lines."""

    def __init__(self, cfg: TrainConfig, out=None):
        self.out = out or sys.stdout
        self.bar = None
        want = cfg.progress
        if want is None:
            want = self.out.isatty() if hasattr(self.out, "isatty") else False
        if want:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                if cfg.steps is not None:
                    self.bar = tqdm(total=cfg.steps, unit="step", file=self.out, dynamic_ncols=True)
                    self.by_time = False
                else:
                    self.bar = tqdm(
                        total=round(cfg.time or 0),
                        unit="s",
                        file=self.out,
                        dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s{postfix}",
                    )
                    self.by_time = True
        self._last = 0.0

    def update(self, step, elapsed, postfix: Dict[str, str]):
        if self.bar is None:
            return
        if self.by_time:
            self.bar.update(min(elapsed, self.bar.total) - self.bar.n)
        else:
            self.bar.update(step - self.bar.n)
        if elapsed - self._last > 0.25:
            self.bar.set_postfix(postfix, refresh=False)
            self._last = elapsed

    def log(self, line: str):
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def train(cfg: TrainConfig, out=None) -> CharLM:
    """Trains (or resumes) a model as ``cfg`` says; writes ``cfg.out``; returns the model."""
    import rnnkit
    from rnnkit import optim as _optim

    out = out or sys.stdout
    from .. import distributed

    group = distributed.init_from_env()  # None: one process
    if group is not None:
        shard = group.shard(cfg.batch_size, "--batch")
        if not group.is_main:
            out = open(os.devnull, "w")  # noqa: SIM115 - rank 0 alone prints
    if cfg.threads:
        rnnkit.set_num_threads(cfg.threads)
    elif group is not None:
        rnnkit.set_num_threads(group.threads_per_process())
    if cfg.backend == "native":  # NumPy's BLAS threads would fight rnnkit's (see _blas.py)
        from ._blas import limit_blas_threads

        limit_blas_threads(1)

    extra: Optional[Dict[str, Any]] = None
    model: Optional[CharLM] = None
    if cfg.resume and os.path.exists(cfg.out):
        model, extra = load_checkpoint(cfg.out, backend=cfg.backend)
        extra = _check_train_state(cfg.out, extra or {})
        _check_resume(cfg, model, extra)
        print(
            f"resuming from {cfg.out}: step {extra.get('step', 0)}, "
            f"{model.num_parameters():,} parameters",
            file=out,
        )
    elif cfg.resume:
        print(f"--resume: no checkpoint {cfg.out} yet, starting a new model", file=out)
    elif os.path.exists(cfg.out) and not cfg.force:
        raise ValueError(
            f"--out: {cfg.out} already exists; pass --resume to continue training "
            f"it, --force to overwrite it, or another --out"
        )

    t_load = time.perf_counter()
    corpus = load_corpus(
        cfg.data,
        val_fraction=cfg.val_fraction,
        min_count=cfg.min_count,
        vocab=model.vocab if model is not None else None,
        max_chars=cfg.max_chars,
    )
    V = len(corpus.vocab)
    baseline = unigram_baseline(corpus.train, corpus.val, V)
    print(f"{corpus.describe()} [{time.perf_counter() - t_load:.1f} s]", file=out)
    print(
        f"unigram baseline (validation cross-entropy of character frequencies): "
        f"{baseline:.3f} nats/char",
        file=out,
    )

    if model is None:
        model = CharLM(
            corpus.vocab,
            cell=cfg.cell,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            embed_size=cfg.embed_size,
            dropout=cfg.dropout,
            backend=cfg.backend,
            dtype=cfg.dtype,
            seed=cfg.seed,
            layer_norm=cfg.layer_norm,
            zoneout=cfg.zoneout,
            recurrent_dropout=cfg.recurrent_dropout,
        )
    c = model.cfg
    cell_opts = "".join(
        f", {name} {c[key]}"
        for key, name in (
            ("layer_norm", "layer norm"),
            ("zoneout", "zoneout"),
            ("recurrent_dropout", "recurrent dropout"),
        )
        if c.get(key)
    )
    print(
        f"model: {c['cell'].upper()} {c['num_layers']}x{c['hidden_size']}, "
        f"{'embedding ' + str(c['embed_size']) if c['embed_size'] else 'one-hot input'}, "
        f"dropout {c['dropout']}{cell_opts}, {model.num_parameters():,} parameters; "
        f"{cfg.optimizer} lr {cfg.lr}, clip {cfg.clip}, T={cfg.seq_len} B={cfg.batch_size}, "
        f"{rnnkit.get_num_threads()} thread(s), backend {c['backend']}",
        file=out,
    )

    if len(corpus.val) < 2:
        print(
            f"warning: the validation text has {len(corpus.val)} characters, so the "
            f"validation loss cannot be measured; give --data more text or a larger "
            f"--val-fraction",
            file=out,
        )
    if corpus.unk_fraction > 0.05:
        print(
            f"warning: --min-count {cfg.min_count} maps {corpus.rare_chars} of the "
            f"{corpus.rare_chars + len(corpus.vocab) - 1} distinct characters "
            f"({corpus.unk_fraction:.0%} of the training text) to the unknown symbol; pass a "
            f"smaller --min-count (e.g. 1) to keep them",
            file=out,
        )
    opt = make_optimizer(cfg.optimizer, model, cfg.lr)
    if len(corpus.train) < 2 * cfg.batch_size:
        raise ValueError(
            f"--batch: the training text has {len(corpus.train)} characters, too "
            f"few for --batch {cfg.batch_size} streams of 2 or more; pass --batch "
            f"{max(1, len(corpus.train) // 2)} or less, or more --data"
        )
    streams = make_streams(corpus.train, cfg.batch_size)
    # Document boundaries (file starts): the state is reset there, in the kernels.
    resets = (
        stream_resets(corpus.train_starts, len(corpus.train), cfg.batch_size)
        if cfg.doc_resets
        else None
    )
    if group is not None:
        streams = streams[:, shard]
        resets = None if resets is None else resets[:, shard]
        group.broadcast(model.parameters())
    n_rows = streams.shape[0]

    def loss_fn(logits, targets):
        return rnnkit.softmax_cross_entropy(logits, targets)

    runner = rnnkit.TBPTT(model, loss_fn, k1=cfg.seq_len)
    step, pos, epoch, chars_seen, elapsed0 = 0, 0, 0, 0, 0.0
    if extra:
        if "optim" in extra:
            try:
                opt.load_state_dict(extra["optim"])
            except (TypeError, ValueError) as e:
                raise FileFormatError(f"{cfg.out}: invalid optimizer state ({e})") from None
        step, pos, epoch = extra.get("step", 0), extra.get("pos", 0), extra.get("epoch", 0)
        chars_seen, elapsed0 = extra.get("chars_seen", 0), extra.get("elapsed", 0.0)
        if pos >= n_rows - 1:
            pos = 0
        if extra.get("state") is not None and cfg.batch_size == extra.get("batch_size", -1):
            try:
                model.rnn._check_state("state", extra["state"], cfg.batch_size)
            except (TypeError, ValueError) as e:
                raise FileFormatError(f"{cfg.out}: invalid recurrent state ({e})") from None
            state = extra["state"]
            runner.reset_state(state if group is None else group.take(state, axis=1))

    def checkpoint(gather=True):
        state = runner.state
        if group is not None:  # every rank calls this: the state is gathered to all
            state = group.gather(state, axis=1) if gather else None
            if not group.is_main:
                return
        # Ctrl-C waits until the file is complete (and the atomic write keeps the previous
        # one whatever happens); the KeyboardInterrupt comes right after.
        with defer_sigint():
            model.save(
                cfg.out,
                extra=dict(
                    optim=opt.state_dict(),
                    step=step,
                    pos=pos,
                    epoch=epoch,
                    chars_seen=chars_seen,
                    elapsed=elapsed0 + elapsed,
                    state=state,
                    batch_size=cfg.batch_size,
                    train_config=asdict(cfg),
                ),
            )

    budget_t = cfg.time if cfg.time is not None and cfg.time > 0 else math.inf
    start_step, start_chars = step, chars_seen
    budget_s = (start_step + cfg.steps) if cfg.steps is not None else None
    eval_every_s = max(5.0, budget_t / 10) if math.isfinite(budget_t) else 30.0
    rep = _Reporter(cfg, out)
    interrupted = False
    model.train()
    model.zero_grad()
    t0 = time.perf_counter()
    elapsed = eval_time = 0.0
    last_eval_t, last_eval_step = 0.0, step
    ema, val = None, float("nan")
    rate_chars, rate_t = 0, t0
    cps = 0.0

    def evaluate(full=False):
        nonlocal val
        if group is not None and not group.is_main:
            return val
        val = model.evaluate(
            corpus.val,
            B=32,
            T=256,
            max_chars=None if full else cfg.eval_chars,
            starts=corpus.val_starts if cfg.doc_resets else None,
        )
        model.loss_history["step"].append(step)
        model.loss_history["train_loss"].append(float(ema) if ema is not None else float("nan"))
        model.loss_history["val_loss"].append(val)
        return val

    try:
        while True:
            if budget_s is not None and step >= budget_s:
                break
            if elapsed >= budget_t:
                break
            stop = min(pos + cfg.seq_len, n_rows - 1)
            x, y = streams[pos:stop], streams[pos + 1 : stop + 1]
            r = None if resets is None else resets[pos:stop]
            w = runner.step(x, y, r if r is not None and r.any() else None)
            loss = w.loss
            if group is not None:
                group.all_reduce_mean(model.grads)
            if cfg.clip and cfg.clip > 0:
                _optim.clip_grad_norm(model.grads, cfg.clip)
            opt.step()
            model.zero_grad()
            step += 1
            n_chars = x.size * (group.world_size if group is not None else 1)
            chars_seen += n_chars
            rate_chars += n_chars
            pos = stop
            if pos >= n_rows - 1:  # an epoch: start the streams again from zero state
                pos, epoch = 0, epoch + 1
                runner.reset_state()
            now = time.perf_counter()
            elapsed = now - t0
            if group is not None:  # the mean loss, and rank 0's clock for every decision
                loss, elapsed = group.step_values(loss, elapsed)
            ema = loss if ema is None else 0.95 * ema + 0.05 * loss
            if now - rate_t > 1.0:
                cps, rate_chars, rate_t = rate_chars / (now - rate_t), 0, now
            elif cps == 0.0 and now > rate_t:
                cps = rate_chars / (now - rate_t)
            due = (
                (step - last_eval_step >= cfg.eval_every)
                if cfg.eval_every
                else (elapsed - last_eval_t >= eval_every_s)
            )
            if due:
                te = time.perf_counter()
                evaluate()
                checkpoint()
                eval_time += time.perf_counter() - te  # inside the budget, not in chars/s
                rate_t += time.perf_counter() - te
                last_eval_t, last_eval_step = elapsed, step
                rep.log(
                    f"step {step:6d}  {elapsed0 + elapsed:6.1f} s  train {ema:.3f}  "
                    f"val {val:.3f} nats/char  ({val / math.log(2):.2f} bits)  "
                    f"{_fmt_chars(cps)} chars/s"
                )
            rep.update(
                step - start_step,
                elapsed,
                {
                    "loss": f"{ema:.3f}",
                    "val": "-" if math.isnan(val) else f"{val:.3f}",
                    "chars/s": _fmt_chars(cps),
                },
            )
    except KeyboardInterrupt:
        interrupted = True
        rep.log("interrupted: saving the checkpoint")
    else:
        interrupted = False
    finally:
        rep.close()

    if step == start_step:
        print("no step was run (budget reached)", file=out)
    if interrupted:  # save first: the full evaluation takes a while and may be cut short
        try:
            checkpoint(gather=False)
        except KeyboardInterrupt:  # pressed again during the save: it completed regardless
            print(
                f"saved {cfg.out}; interrupted again, so no final evaluation; the "
                f"checkpoint holds step {step}",
                file=out,
            )
            return model
        print(f"saved {cfg.out} at step {step}; evaluating (Ctrl-C again skips it)", file=out)
    ev_t = time.perf_counter()
    try:
        evaluate(full=True)
        ev_t = time.perf_counter() - ev_t
        checkpoint(gather=not interrupted)  # the other ranks may be anywhere after a Ctrl-C
    except KeyboardInterrupt:
        if not interrupted:
            raise
        print(f"evaluation skipped; checkpoint {cfg.out} holds step {step}", file=out)
        return model
    run_chars = chars_seen - start_chars
    train_time = max(elapsed - eval_time, 1e-9)
    print(
        f"done: {step - start_step} steps, {_fmt_chars(run_chars)} characters in "
        f"{elapsed:.1f} s ({train_time:.1f} s training: {_fmt_chars(run_chars / train_time)} "
        f"chars/s; {eval_time:.1f} s evaluations), epoch {epoch}",
        file=out,
    )
    print(
        f"validation loss {val:.3f} nats/char ({val / math.log(2):.2f} bits/char) on "
        f"{len(corpus.val):,} characters vs unigram baseline {baseline:.3f} "
        f"[{ev_t:.1f} s]; checkpoint {cfg.out}",
        file=out,
    )
    if group is not None:
        group.close()
    return model


def _check_train_state(path: str, extra: Dict[str, Any]) -> Dict[str, Any]:
    """Only the fields ``train`` writes, each of its type and >= 0 (a forged checkpoint
    cannot set anything else)."""
    unknown = sorted(str(k) for k in set(extra) - set(_TRAIN_FIELDS))
    if unknown:
        raise FileFormatError(f"{path}: invalid train state: unknown fields {unknown[:5]}")
    for name, kind in _TRAIN_FIELDS.items():
        if name not in extra or kind is object:
            continue
        v = extra[name]
        ok = (
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if kind is float
            else isinstance(v, kind) and not isinstance(v, bool)
        )
        if not ok or (kind in (int, float) and v < 0):
            raise FileFormatError(
                f"{path}: invalid train state: {name} = {v!r}, expected a "
                f"{kind.__name__}" + (" >= 0" if kind in (int, float) else "")
            )
    return extra


def _check_resume(cfg: TrainConfig, model: CharLM, extra: Dict[str, Any]) -> None:
    """The model comes from the checkpoint, the data from --data: refuse what contradicts it,
    and never read a path the checkpoint names."""
    saved = model.config()
    clash = [
        f"{opt} {getattr(cfg, n)} (checkpoint: {saved[n]})"
        for n, opt in MODEL_FIELDS.items()
        if (n in cfg.given or getattr(cfg, n) != getattr(TrainConfig, n))
        and getattr(cfg, n) != saved[n]
    ]
    if clash:
        raise ValueError(
            f"--resume: the model options come from the checkpoint {cfg.out}; "
            f"these differ from it: {', '.join(clash)}. Drop them, or train a "
            f"new model with another --out"
        )
    data = (extra.get("train_config") or {}).get("data")
    if cfg.data is None and data is not None:
        raise ValueError(
            f"--resume: pass --data; {cfg.out} was trained on {str(data)!r}, but a "
            f"path stored in a checkpoint is never read"
        )
