"""The `rnnkit` command line (also `python -m rnnkit`).

Subcommands: `train` (the character-level language model, rnnkit/charlm/train.py),
`sample` (text from a char-LM checkpoint, or the tiny "hello" demo), `viz` (the cell viewer,
heatmaps and interpretable-cell search for a checkpoint, rnnkit/charlm/viz.py), `demo` (the default
with no subcommand: time one LSTM forward+backward against the NumPy reference and print
the speed-up), `bench` (the benchmark harness, rnnkit/bench.py) and `info` (build and
runtime description).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _int_at_least(low):
    """An argparse type: an integer >= low (argparse names the option in its message)."""

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {v}")
        return v

    return parse


def _number_at_least(low):
    """An argparse type: a finite number >= low."""

    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not v >= low or v == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a finite number >= {low}, got {text}")
        return v

    return parse


def _rate(closed):
    """An argparse type: a probability in [0, 1] (``closed``) or [0, 1)."""
    want = "[0, 1]" if closed else "[0, 1)"

    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {want}, got {text!r}") from None
        if not (0.0 <= v <= 1.0 if closed else 0.0 <= v < 1.0):
            raise argparse.ArgumentTypeError(f"expected a number in {want}, got {text}")
        return v

    return parse


def _cmd_info(args) -> int:
    import rnnkit

    info = rnnkit.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:18} {v}")
    return 0


def _cmd_demo(args) -> int:
    import numpy as np

    import rnnkit
    import rnnkit.reference as ref

    T, B, H = args.T, args.B, args.H
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    s = 1.0 / np.sqrt(H)
    x = rng.standard_normal((T, B, H)).astype(dtype)
    w = [
        rng.uniform(-s, s, shape).astype(dtype)
        for shape in ((4 * H, H), (4 * H, H), (4 * H,), (4 * H,))
    ]
    dy = rng.standard_normal((T, B, H)).astype(dtype)

    def run(mod):
        out = mod.lstm_forward(x, *w)
        return out, mod.lstm_backward(out.cache, dy=dy)

    print(
        f"rnnkit {rnnkit.__version__}: LSTM forward+backward, T={T} B={B} I=H={H} {dtype}, "
        f"SIMD {rnnkit.get_simd_target()}, {rnnkit.get_num_threads()} thread(s)"
    )
    (o_n, g_n), (o_r, g_r) = run(rnnkit), run(ref)
    err = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip((o_n.y, g_n.dx, g_n.dw_hh), (o_r.y, g_r.dx, g_r.dw_hh))
    )
    print(f"  max |native - reference| over y, dx, dw_hh: {err:.2e}")
    times = {"reference": [], "native": []}
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        for name, mod in (("reference", ref), ("native", rnnkit)):
            t0 = time.perf_counter()
            run(mod)
            times[name].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(f"  reference (NumPy): {med['reference'] * 1e3:9.2f} ms")
    print(f"  rnnkit (native):   {med['native'] * 1e3:9.2f} ms")
    print(
        f"  speed-up:          {med['reference'] / med['native']:9.1f}x  (median of {args.repeat})"
    )
    return 0


def _add_train_arguments(t) -> None:
    from .charlm.train import TrainConfig

    d = TrainConfig()
    g = t.add_argument_group("data")
    g.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="a text file, a folder or a glob (default: the source of the Python "
        "standard library of this interpreter, nothing downloaded)",
    )
    g.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        help="share of files held out for validation (default %(default)s)",
    )
    g.add_argument(
        "--min-count",
        type=_int_at_least(1),
        default=d.min_count,
        help="rarer characters map to the unknown symbol (default %(default)s)",
    )
    g.add_argument(
        "--max-chars",
        type=_int_at_least(1),
        default=None,
        help="truncate train and validation text",
    )
    g = t.add_argument_group("model")
    g.add_argument("--cell", choices=["lstm", "gru", "rnn"], default=d.cell)
    g.add_argument("--hidden", type=_int_at_least(1), default=d.hidden_size, dest="hidden_size")
    g.add_argument("--layers", type=_int_at_least(1), default=d.num_layers, dest="num_layers")
    g.add_argument(
        "--embed",
        type=_int_at_least(0),
        default=d.embed_size,
        dest="embed_size",
        help="embedding size; 0 = one-hot input (default %(default)s)",
    )
    g.add_argument("--dropout", type=float, default=d.dropout)
    g.add_argument(
        "--layer-norm",
        action="store_true",
        dest="layer_norm",
        help="layer-normalised cells (Ba et al. 2016)",
    )
    g.add_argument(
        "--zoneout",
        type=_rate(True),
        default=d.zoneout,
        metavar="P",
        help="zoneout rate of the states (Krueger et al. 2016; default %(default)s)",
    )
    g.add_argument(
        "--recurrent-dropout",
        type=_rate(False),
        default=d.recurrent_dropout,
        metavar="P",
        dest="recurrent_dropout",
        help="variational dropout of the recurrent input (Gal & Ghahramani 2016; "
        "default %(default)s)",
    )
    g.add_argument(
        "--doc-resets",
        action=argparse.BooleanOptionalAction,
        default=d.doc_resets,
        dest="doc_resets",
        help="reset the state where a file of the corpus starts (default: on)",
    )
    g.add_argument("--dtype", choices=["float32", "float64"], default=d.dtype)
    g.add_argument("--backend", choices=["native", "reference"], default=d.backend)
    g = t.add_argument_group("optimisation")
    g.add_argument(
        "--seq-len",
        type=_int_at_least(1),
        default=d.seq_len,
        help="TBPTT window (default %(default)s)",
    )
    g.add_argument(
        "--batch",
        type=_int_at_least(1),
        default=d.batch_size,
        dest="batch_size",
        help="parallel streams (default %(default)s)",
    )
    g.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "adagrad"], default=d.optimizer)
    g.add_argument("--lr", type=_number_at_least(0), default=d.lr)
    g.add_argument(
        "--clip", type=_number_at_least(0), default=d.clip, help="gradient-norm clip, 0 = off"
    )
    g.add_argument(
        "--time",
        type=_number_at_least(0),
        default=d.time,
        help="training budget in seconds, 0 = none (default %(default)s)",
    )
    g.add_argument("--steps", type=_int_at_least(1), default=None, help="optimizer-step budget")
    g.add_argument(
        "--eval-every",
        type=_int_at_least(1),
        default=None,
        help="steps between evaluations (default: every tenth of the time budget)",
    )
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--threads", type=_int_at_least(1), default=None)
    g = t.add_argument_group("output")
    g.add_argument("--out", default=d.out, help="checkpoint path (default %(default)s)")
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue from --out if it exists (the model options come from it)",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing --out instead of refusing (without --resume)",
    )
    g.add_argument(
        "--sample-length",
        type=_int_at_least(0),
        default=d.sample_length,
        help="characters sampled at the end, 0 = none (default %(default)s)",
    )
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tqdm progress bar (default: on a terminal when tqdm is installed)",
    )


def _cmd_train(args) -> int:
    from dataclasses import fields

    from .charlm.sample import generate
    from .charlm.train import TrainConfig, train

    cfg = TrainConfig(
        **{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    )
    cfg.given = tuple(cfg.given)
    if cfg.time == 0:
        cfg.time = None
    model = train(cfg)
    from .distributed import is_main_process

    if not is_main_process():  # under torchrun, rank 0 alone prints
        return 0
    if cfg.sample_length > 0:
        print(f"--- sample (temperature {cfg.sample_temperature}, seed {cfg.seed}) ---")
        for ch in generate(
            model,
            cfg.sample_length,
            prime=cfg.sample_prime,
            temperature=cfg.sample_temperature,
            seed=cfg.seed,
        ):
            sys.stdout.write(ch)
        sys.stdout.write("\n")
        sys.stdout.flush()
    print(f"more: rnnkit sample {cfg.out} --length 1000 --temperature 0.8")
    return 0


def _add_sample_arguments(s) -> None:
    s.add_argument(
        "checkpoint",
        nargs="?",
        default="charlm.npz",
        help="checkpoint written by `rnnkit train` (default %(default)s)",
    )
    s.add_argument(
        "--length",
        type=_int_at_least(0),
        default=500,
        help="characters to generate (default %(default)s)",
    )
    s.add_argument(
        "--temperature",
        type=_number_at_least(0),
        default=1.0,
        help="sampling temperature; lower is more conservative (default %(default)s)",
    )
    s.add_argument(
        "--top-k",
        type=_int_at_least(1),
        default=None,
        help="sample among the k most likely characters (default: all)",
    )
    s.add_argument("--argmax", action="store_true", help="always the most likely character")
    s.add_argument(
        "--prime", default="", help="text the model reads before sampling, echoed (default: none)"
    )
    s.add_argument(
        "--seed", type=int, default=None, help="random seed (default: fresh randomness each run)"
    )
    s.add_argument(
        "--hello",
        action="store_true",
        help="the lecture demo: train an RNN on 'hello' in seconds and show its "
        "predictions (no checkpoint needed)",
    )


def _cmd_sample(args) -> int:
    from .charlm.model import CharLM
    from .charlm.sample import generate

    if args.hello:
        from .charlm.hello import hello_demo

        return hello_demo(seed=0 if args.seed is None else args.seed)
    import os

    if not os.path.exists(args.checkpoint):
        print(
            f"rnnkit sample: no checkpoint {args.checkpoint!r}; train one with `rnnkit train` "
            f"(or try `rnnkit sample --hello`)",
            file=sys.stderr,
        )
        return 2
    model = CharLM.load(args.checkpoint)
    sys.stdout.write(args.prime)
    for ch in generate(
        model,
        args.length,
        prime=args.prime,
        temperature=args.temperature,
        top_k=args.top_k,
        argmax=args.argmax,
        seed=args.seed,
    ):
        sys.stdout.write(ch)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _add_viz_arguments(v) -> None:
    v.add_argument(
        "checkpoint",
        nargs="?",
        default="charlm.npz",
        help="checkpoint written by `rnnkit train` (default %(default)s)",
    )
    v.add_argument(
        "--text",
        metavar="FILE",
        default=None,
        help="the text to run the model over (default: the start of the validation "
        "split of --data)",
    )
    v.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="corpus whose validation split is read when --text is not given "
        "(default: the Python standard library, as `rnnkit train`)",
    )
    v.add_argument(
        "--chars",
        type=_int_at_least(2),
        default=20000,
        help="characters of text to analyse (default %(default)s)",
    )
    v.add_argument(
        "--page-chars",
        type=_int_at_least(1),
        default=None,
        help="characters shown on the HTML page (default: as many as keep it near "
        "40 MB, at most 20000; a value takes 4/3 bytes)",
    )
    v.add_argument("--top", type=_int_at_least(1), default=20, help="interpretable cells to list")
    v.add_argument("--out", default="charlm_viz", help="output directory (default %(default)s)")


def _cmd_viz(args) -> int:
    import os

    from .charlm import viz
    from .charlm.model import CharLM

    if not os.path.exists(args.checkpoint):
        print(
            f"rnnkit viz: no checkpoint {args.checkpoint!r}; train one with `rnnkit train`",
            file=sys.stderr,
        )
        return 2
    model = CharLM.load(args.checkpoint)
    if args.text is not None:
        from .charlm.data import read_text

        text, source = read_text(args.text, max_chars=args.chars), args.text
    else:
        from .charlm.data import load_corpus

        corpus = load_corpus(args.data, vocab=model.vocab)
        text = model.vocab.decode(corpus.val if len(corpus.val) else corpus.train)
        source = f"{corpus.source}, validation split"
    text = text[: args.chars]
    t0 = time.perf_counter()
    acts = model.activations(text)
    print(
        f"{len(text):,} characters of {source}: activations of {len(acts)} quantities in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    title = f"{os.path.basename(args.checkpoint)} on {source}"
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # a note, not a raw UserWarning
        warnings.simplefilter("always")
        paths = viz.write_report(
            args.out,
            text,
            acts,
            model.loss_history,
            title=title,
            max_chars=args.page_chars,
            top=args.top,
        )
    for w in caught:
        print(f"rnnkit viz: note: {w.message}", file=sys.stderr)
    with open(paths["interpretable.txt"], encoding="utf-8") as fh:
        head = fh.read().splitlines()[:12]
    print("\n".join(head))
    for name, path in paths.items():
        print(f"wrote {name:18} {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    print(f"open {os.path.join(args.out, 'index.html')} in a browser")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit", description="Fast recurrent networks on the CPU.")
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser(
        "train",
        help="train a character-level language model (default corpus: "
        "the Python standard library; about one minute)",
    )
    _add_train_arguments(t)
    t.set_defaults(func=_cmd_train)
    p.train_parser = t  # _given_options reads its options
    s = sub.add_parser("sample", help="generate text from a `rnnkit train` checkpoint")
    _add_sample_arguments(s)
    s.set_defaults(func=_cmd_sample)
    v = sub.add_parser(
        "viz",
        help="look inside a checkpoint's cells: an HTML page, heatmaps, the "
        "loss curve and the most interpretable cells",
    )
    _add_viz_arguments(v)
    v.set_defaults(func=_cmd_viz)
    d = sub.add_parser("demo", help="time one LSTM against the NumPy reference (the default)")
    d.add_argument("--T", type=_int_at_least(1), default=100, help="steps (default %(default)s)")
    d.add_argument("--B", type=_int_at_least(1), default=8, help="batch (default %(default)s)")
    d.add_argument(
        "--H",
        type=_int_at_least(1),
        default=256,
        help="input and hidden size (default %(default)s)",
    )
    d.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    d.add_argument(
        "--repeat",
        type=_int_at_least(1),
        default=5,
        help="timed runs, the median is shown (default %(default)s)",
    )
    d.set_defaults(func=_cmd_demo)
    b = sub.add_parser(
        "bench",
        help="time rnnkit against the NumPy reference, PyTorch, onnxruntime "
        "and the GEMM peak, side by side",
    )
    from . import bench as _bench

    _bench.add_arguments(b)
    b.set_defaults(func=lambda a: _bench.main(a, a.bench_argv))
    i = sub.add_parser("info", help="describe this build: version, SIMD target, threads, compiler")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_info)
    return p


def _given_options(parser, argv):
    """The dests of the options given on the command line (train: what --resume refuses to
    override silently)."""
    if not argv or argv[0] != "train":
        return []
    given = []
    for action in parser.train_parser._actions:
        if any(a == o or a.startswith(o + "=") for a in argv[1:] for o in action.option_strings):
            given.append(action.dest)
    return given


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.command == "bench":
        args.bench_argv = argv[argv.index("bench") + 1 :]
    if args.command is None:
        args = parser.parse_args(["demo"] + list(argv or []))
    args.given = _given_options(parser, argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as e:  # bad data, checkpoint or
        # option value; ImportError: a torchrun launch without torch
        print(f"rnnkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
