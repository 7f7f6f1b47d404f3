"""rnnkit.torch.RNN / LSTM / GRU against torch.nn.RNN / LSTM / GRU: the constructor,
parameters, attributes, initialisation and state_dict (both ways, strict), then random
configurations (cell, layers, directions, batch_first, bias, projection, dtype, hx or not;
tensors, unbatched input, packed sequences of random lengths with enforce_sorted both ways):
outputs, final states and every gradient (input, states, each parameter by name).
Skipped when torch is not installed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence  # noqa: E402

import rnnkit.torch as rkt  # noqa: E402

PAIRS = {
    "rnn": (rkt.RNN, torch.nn.RNN),
    "lstm": (rkt.LSTM, torch.nn.LSTM),
    "gru": (rkt.GRU, torch.nn.GRU),
}
ATTRS = (
    "mode",
    "input_size",
    "hidden_size",
    "num_layers",
    "bias",
    "batch_first",
    "dropout",
    "bidirectional",
    "proj_size",
    "_flat_weights_names",
    "training",
)


def pair(cell, *args, seed=0, **kw):
    """The two modules built from the same torch seed (so the same initial weights)."""
    ours, theirs = PAIRS[cell]
    torch.manual_seed(seed)
    a = ours(*args, **kw)
    torch.manual_seed(seed)
    b = theirs(*args, **kw)
    return a, b


@pytest.mark.parametrize(
    "cell,args",
    [
        ("rnn", (3, 5, 2, "relu", False, True, 0.0, True)),
        ("lstm", (3, 5, 2, False, True, 0.0, True, 2)),
        ("gru", (3, 5, 1, True, False, 0.0, True)),
    ],
)
def test_constructor_parameters_attributes_and_init_are_torch_s(cell, args):
    a, b = pair(cell, *args, dtype=torch.float64)
    for attr in ATTRS:
        assert getattr(a, attr) == getattr(b, attr), attr
    if cell == "rnn":
        assert a.nonlinearity == b.nonlinearity == "relu"
    na, nb = list(a.named_parameters()), list(b.named_parameters())
    assert [n for n, _ in na] == [n for n, _ in nb]
    for (n, p), (_, q) in zip(na, nb):
        assert isinstance(p, torch.nn.Parameter) and p.dtype == torch.float64
        assert torch.equal(p, q), n  # the same initialisation, from torch's generator
    assert list(a.state_dict()) == list(b.state_dict())
    assert repr(a) == repr(b)


@pytest.mark.parametrize("cell", list(PAIRS))
def test_state_dict_loads_both_ways_strictly(cell):
    kw = {"proj_size": 2} if cell == "lstm" else {}
    a, b = pair(cell, 4, 6, 2, bidirectional=True, seed=1, **kw)
    torch.manual_seed(7)
    c = PAIRS[cell][1](4, 6, 2, bidirectional=True, **kw)
    a.load_state_dict(c.state_dict(), strict=True)  # torch.nn -> rnnkit
    b.load_state_dict(a.state_dict(), strict=True)  # rnnkit -> torch.nn
    for (n, p), (_, q) in zip(c.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n
    x = torch.randn(5, 2, 4)
    torch.testing.assert_close(a(x)[0], c(x)[0], rtol=1e-4, atol=1e-6)


def test_peephole_parameters_follow_torch_s_and_load_back():
    m = rkt.LSTM(3, 4, 2, bidirectional=True, peephole=True)
    names = [n for n, _ in m.named_parameters()]
    t = torch.nn.LSTM(3, 4, 2, bidirectional=True)
    assert names[: len(list(t.parameters()))] == [n for n, _ in t.named_parameters()]
    assert names[-4:] == [
        "weight_peep_l0",
        "weight_peep_l0_reverse",
        "weight_peep_l1",
        "weight_peep_l1_reverse",
    ]
    assert m.weight_peep_l1.shape == (3, 4) and float(m.weight_peep_l1.detach().abs().max()) <= 0.5
    m2 = rkt.LSTM(3, 4, 2, bidirectional=True, peephole=True)
    m2.load_state_dict(m.state_dict(), strict=True)
    x = torch.randn(4, 2, 3)
    assert torch.equal(m(x)[0], m2(x)[0])
    assert "peephole=True" in repr(m)


def test_extras_change_the_result_and_default_to_torch_s():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 3)
    base, _ = pair("gru", 3, 4)
    other = rkt.GRU(3, 4, linear_before_reset=False)
    clipped = rkt.GRU(3, 4, clip=0.1)
    for m in (other, clipped):
        m.load_state_dict(base.state_dict())
        assert not torch.allclose(m(x)[0], base(x)[0])


def test_dropout_between_layers_in_training_only():
    torch.manual_seed(0)
    m = rkt.LSTM(3, 8, 3, dropout=0.5)
    x = torch.randn(6, 4, 3)
    m.eval()
    e1, e2 = m(x)[0], m(x)[0]
    assert torch.equal(e1, e2)
    m.train()
    t1, t2 = m(x)[0], m(x)[0]
    assert not torch.equal(t1, t2) and not torch.equal(t1, e1)
    t1.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


# ---------------------------------------------------------------- random configurations


def _config(i):
    rng = np.random.default_rng(1000 + i)
    cell = ["rnn", "lstm", "gru"][i % 3]
    H = int(rng.integers(1, 12))
    kw = dict(
        num_layers=int(rng.integers(1, 3)),
        bidirectional=bool(rng.integers(2)),
        batch_first=bool(rng.integers(2)),
        bias=bool(rng.integers(4) > 0),
        dtype=[torch.float64, torch.float32][int(rng.integers(2))],
    )
    if cell == "lstm" and H > 1 and rng.integers(2):
        kw["proj_size"] = int(rng.integers(1, H))
    if cell == "rnn":
        kw["nonlinearity"] = ["tanh", "relu"][int(rng.integers(2))]
    layout = ["tensor", "unbatched", "packed_sorted", "packed_unsorted"][int(rng.integers(4))]
    return dict(
        cell=cell,
        I=int(rng.integers(1, 9)),
        H=H,
        T=int(rng.integers(1, 8)),
        B=int(rng.integers(1, 6)),
        kw=kw,
        layout=layout,
        hx=bool(rng.integers(3) > 0),
        seed=i,
    )


CONFIGS = [_config(i) for i in range(48)]


def _describe(c):
    kw = c["kw"]
    flags = ("-bidir" if kw["bidirectional"] else "") + ("-bfirst" if kw["batch_first"] else "")
    return (
        f"{c['cell']}-L{kw['num_layers']}{flags}-{'' if kw['bias'] else 'nobias-'}"
        f"P{kw.get('proj_size', 0)}-{str(kw['dtype'])[6:]}-{c['layout']}"
        f"{'-hx' if c['hx'] else ''}"
    )


def _run(model, c, x, lengths, hx):
    """Output (padded, if packed), final states and the gradients of one module."""
    x = x.clone().requires_grad_(True)
    hx = None if hx is None else tuple(h.clone().requires_grad_(True) for h in hx)
    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(
            x,
            lengths,
            batch_first=c["kw"]["batch_first"],
            enforce_sorted=c["layout"] == "packed_sorted",
        )
    state_in = None if hx is None else (hx if c["cell"] == "lstm" else hx[0])
    out, state = model(inp, state_in)
    states = state if c["cell"] == "lstm" else (state,)
    if lengths is not None:
        assert isinstance(out, PackedSequence)
        assert torch.equal(out.batch_sizes, inp.batch_sizes)
        for name in ("sorted_indices", "unsorted_indices"):
            a, b = getattr(out, name), getattr(inp, name)
            assert (a is None and b is None) or torch.equal(a, b)
        out = out.data
    gen = torch.Generator().manual_seed(c["seed"])
    loss = sum(
        (o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
        for o in (out,) + tuple(states)
    )
    loss.backward()
    grads = {"input": x.grad}
    if hx is not None:
        grads.update({f"hx[{k}]": h.grad for k, h in enumerate(hx)})
    grads.update({n: p.grad for n, p in model.named_parameters()})
    return out.detach(), [s.detach() for s in states], grads


@pytest.mark.parametrize("c", CONFIGS, ids=[f"{i}:{_describe(c)}" for i, c in enumerate(CONFIGS)])
def test_random_configuration_matches_torch_nn(c):
    cell, kw, T, B = c["cell"], c["kw"], c["T"], c["B"]
    ours, theirs = pair(cell, c["I"], c["H"], seed=c["seed"], **kw)
    dt = kw["dtype"]
    gen = torch.Generator().manual_seed(c["seed"])
    L = kw["num_layers"] * (2 if kw["bidirectional"] else 1)
    hout = kw.get("proj_size") or c["H"]
    shape = (
        (T, c["I"])
        if c["layout"] == "unbatched"
        else ((B, T, c["I"]) if kw["batch_first"] else (T, B, c["I"]))
    )
    x = torch.randn(shape, generator=gen, dtype=dt)
    lengths = None
    if c["layout"].startswith("packed"):
        lengths = torch.randint(1, T + 1, (B,), generator=gen)
        if c["layout"] == "packed_sorted":
            lengths = lengths.sort(descending=True).values
    hx = None
    if c["hx"]:
        lead = (L,) if c["layout"] == "unbatched" else (L, B)
        hx = (torch.randn(lead + (hout,), generator=gen, dtype=dt),)
        if cell == "lstm":
            hx += (torch.randn(lead + (c["H"],), generator=gen, dtype=dt),)
    got = _run(ours, c, x, lengths, hx)
    want = _run(theirs, c, x, lengths, hx)
    tol = dict(rtol=1e-10, atol=1e-10) if dt == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[0], want[0], **tol, msg="output")
    assert len(got[1]) == len(want[1])
    for k, (a, b) in enumerate(zip(got[1], want[1])):
        torch.testing.assert_close(a, b, **tol, msg=f"state {k}")
    assert list(got[2]) == list(want[2])
    for name, g in want[2].items():
        scale = max(1.0, float(g.abs().max()))
        torch.testing.assert_close(
            got[2][name], g, rtol=tol["rtol"], atol=tol["atol"] * scale, msg=name
        )


@pytest.mark.parametrize("i", [1, 10, 20, 31])
def test_matches_torch_nn_on_every_simd_target(simd_target, i):
    test_random_configuration_matches_torch_nn(CONFIGS[i])


@pytest.fixture
def keep_threads():
    """The bench sets rnnkit's and torch's thread counts: put them back afterwards."""
    import rnnkit

    before = rnnkit.get_num_threads(), torch.get_num_threads()
    yield
    rnnkit.set_num_threads(before[0])
    torch.set_num_threads(before[1])


def test_bench_torch_modules_flag_prints_the_table(capsys, keep_threads):
    from rnnkit.cli import main

    assert (
        main(
            [
                "bench",
                "--torch-modules",
                "--cells",
                "gru",
                "rnn",
                "--batch",
                "2",
                "--hidden",
                "8",
                "--T",
                "3",
                "--repeat",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith(("gru ", "rnn "))]
    assert [r[:3] for r in rows] == [["gru", "8", "2"], ["rnn", "8", "2"]]
    assert all(r[5].endswith("x") and float(r[6]) < 1e-4 for r in rows)  # ratio, loss check
