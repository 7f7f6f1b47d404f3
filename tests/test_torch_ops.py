"""rnnkit's custom operators (rnnkit.torch._ops): torch.library.opcheck on all six, gradcheck
in float64 for every cell and option, no backward cache without grad, torch.compile of
Embedding -> rnnkit.torch.GRU/LSTM -> Linear with fullgraph=True against eager mode, and the
input errors. Skipped when torch is not installed."""

import pytest

torch = pytest.importorskip("torch")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

import rnnkit.torch as rkt  # noqa: E402
from rnnkit.torch import _ops  # noqa: E402

D64 = torch.float64
T, B, I, H, P = 4, 3, 5, 6, 4
LENGTHS = [4, 1, 3]  # unsorted on purpose: rnnkit's lengths need no order

# cell, options of the wrapper (rnnkit.torch.rnn / lstm / gru), with_bias, with_h0
CASES = {
    "rnn_tanh": ("rnn", {}, True, True),
    "rnn_relu": ("rnn", {"nonlinearity": "relu"}, True, True),
    "rnn_clip_nobias": ("rnn", {"clip": 0.7}, False, False),
    "lstm": ("lstm", {}, True, True),
    "lstm_peephole": ("lstm", {"w_peep": True}, True, True),
    "lstm_proj": ("lstm", {"w_proj": True}, True, True),
    "lstm_clip": ("lstm", {"clip": 0.5}, True, False),
    "lstm_lengths": ("lstm", {"lengths": True}, True, True),
    "lstm_reverse_lengths_all": (
        "lstm",
        {"lengths": True, "reverse": True, "w_peep": True, "w_proj": True},
        False,
        True,
    ),
    "lstm_reverse": ("lstm", {"reverse": True}, True, True),
    "gru": ("gru", {}, True, True),
    "gru_before_reset_false": ("gru", {"linear_before_reset": False}, True, True),
    "gru_clip_lengths_reverse": (
        "gru",
        {"clip": 0.6, "lengths": True, "reverse": True},
        True,
        True,
    ),
    "gru_nobias_noh0": ("gru", {}, False, False),
}
G = {"rnn": 1, "lstm": 4, "gru": 3}


def make_args(name, dtype=D64, grad=True, seed=0):
    """(fn, tensors, options): ``fn(*tensors)`` is the wrapper call for the case."""
    cell, opts, bias, with_h0 = CASES[name]
    gen = torch.Generator().manual_seed(seed)
    hout = P if opts.get("w_proj") else H

    def r(*shape):
        return (0.5 * torch.randn(*shape, generator=gen, dtype=dtype)).requires_grad_(grad)

    g = G[cell]
    t = {"x": r(T, B, I), "w_ih": r(g * H, I), "w_hh": r(g * H, hout)}
    if bias:
        t.update(b_ih=r(g * H), b_hh=r(g * H))
    if with_h0:
        t["h0"] = r(B, hout)
        if cell == "lstm":
            t["c0"] = r(B, H)
    kw = dict(opts)
    for w, shape in (("w_peep", (3, H)), ("w_proj", (P, H))):
        if kw.pop(w, False):
            t[w] = r(*shape)
    if kw.pop("lengths", False):
        kw["lengths"] = torch.tensor(LENGTHS)
    names = list(t)
    fn_cell = getattr(rkt, cell)

    def fn(*tensors):
        return fn_cell(**dict(zip(names, tensors)), **kw)

    return fn, tuple(t.values()), cell, t, kw


class Recorder(TorchDispatchMode):
    """Records the rnnkit operators called and their arguments."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "rnnkit":
            self.calls.append((func.__name__, args))
        return func(*args, **(kwargs or {}))


def forward_args(cell, t, kw, need_cache=True):
    """The positional arguments of ``rnnkit::<cell>_forward`` for a case."""
    x, w_ih, w_hh = t["x"], t["w_ih"], t["w_hh"]
    b_ih, b_hh, h0 = t.get("b_ih"), t.get("b_hh"), t.get("h0")
    lengths, reverse, clip = kw.get("lengths"), kw.get("reverse", False), kw.get("clip")
    if cell == "lstm":
        return (
            x,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            h0,
            t.get("c0"),
            t.get("w_peep"),
            t.get("w_proj"),
            lengths,
            reverse,
            clip,
            need_cache,
        )
    if cell == "gru":
        return (
            x,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            h0,
            lengths,
            reverse,
            kw.get("linear_before_reset", True),
            clip,
            need_cache,
        )
    return (
        x,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        h0,
        lengths,
        reverse,
        kw.get("nonlinearity", "tanh"),
        clip,
        need_cache,
    )


# ---------------------------------------------------------------- opcheck


@pytest.mark.parametrize(
    "name",
    [
        "rnn_clip_nobias",
        "rnn_relu",
        "lstm_reverse_lengths_all",
        "lstm_clip",
        "gru_clip_lengths_reverse",
        "gru_before_reset_false",
    ],
)
def test_opcheck_forward_and_backward(name):
    fn, tensors, cell, t, kw = make_args(name, dtype=torch.float32)
    fwd = getattr(torch.ops.rnnkit, f"{cell}_forward").default
    args = forward_args(cell, t, kw)
    torch.library.opcheck(fwd, args)
    detached = {k: v.detach() for k, v in t.items()}  # need_cache=False: calls without grad
    torch.library.opcheck(fwd, forward_args(cell, detached, kw, need_cache=False))
    # The backward, with the cache a forward produced (and the arguments autograd passes).
    rec = Recorder()
    with rec:
        out = fn(*tensors)
        sum(o.sum() for o in out).backward()
    (_, fwd_args), (bwd_name, bwd_args) = rec.calls
    assert bwd_name == f"{cell}_backward.default" and fwd_args[-1] is True
    plain = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in bwd_args)
    torch.library.opcheck(getattr(torch.ops.rnnkit, f"{cell}_backward").default, plain)


# ---------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_float64(name):
    fn, tensors, *_ = make_args(name)
    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-7, rtol=1e-5)


# ---------------------------------------------------------------- no cache without grad


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm_clip", "gru"])
def test_no_backward_cache_without_grad(name):
    fn, tensors, cell, t, kw = make_args(name)
    for ctx, want in (
        (torch.no_grad, False),
        (torch.inference_mode, False),
        (torch.enable_grad, True),
    ):
        rec = Recorder()
        with ctx(), rec:
            out = fn(*tensors)
        ((_, args),) = rec.calls
        assert args[-1] is want, ctx.__name__  # need_cache
    # The operator itself returns empty cache tensors without need_cache ...
    fwd = getattr(torch.ops.rnnkit, f"{cell}_forward")
    plain = forward_args(cell, {k: v.detach() for k, v in t.items()}, kw, need_cache=False)
    n_state = 3 if cell == "lstm" else 2
    lean = fwd(*plain)
    assert all(c.numel() == 0 for c in lean[n_state:])
    # ... and the same outputs as with it.
    full = fwd(*forward_args(cell, {k: v.detach() for k, v in t.items()}, kw))
    for a, b in zip(lean[:n_state], full[:n_state]):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b.detach()) for a, b in zip(lean[:n_state], out))


def test_outputs_do_not_alias_inputs_and_views_are_zero_copy():
    fn, tensors, cell, t, kw = make_args("lstm", grad=False)
    y, h_n, c_n = fn(*tensors)
    ptrs = {a.untyped_storage().data_ptr() for a in tensors}
    assert not ptrs & {o.untyped_storage().data_ptr() for o in (y, h_n, c_n)}
    assert _ops._np(t["x"]).ctypes.data == t["x"].data_ptr()  # a view, not a copy
    xt = t["x"].transpose(0, 1).contiguous().transpose(0, 1)  # non-contiguous, same values
    assert torch.equal(fn(xt, *tensors[1:])[0], y)


# ---------------------------------------------------------------- torch.compile


class _LM(torch.nn.Module):
    def __init__(self, cls):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 8)
        self.rnn = cls(8, 12, 2, batch_first=True)
        self.head = torch.nn.Linear(12, 20)

    def forward(self, ids):
        y, _ = self.rnn(self.embed(ids))
        return self.head(y)


@pytest.mark.parametrize("cls", [rkt.GRU, rkt.LSTM], ids=["gru", "lstm"])
def test_compile_fullgraph_matches_eager(cls):
    torch.manual_seed(0)
    model = _LM(cls)
    ids = torch.randint(0, 20, (3, 7))
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)  # a graph break raises
    out = compiled(ids)
    out.square().mean().backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    ref = model(ids)
    ref.square().mean().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for n, p in model.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-5, atol=1e-6, msg=n)
    explain = torch._dynamo.explain(model)(ids)
    assert explain.graph_break_count == 0 and explain.graph_count == 1


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.complex64])
def test_bad_input_dtype_is_a_type_error(dtype):
    m = rkt.GRU(3, 4)
    with pytest.raises(TypeError, match=r"input: expected dtype torch.float32 or torch.float64"):
        m(torch.zeros(2, 1, 3).to(dtype))


def test_non_cpu_input_is_a_value_error():
    m = rkt.LSTM(3, 4)
    with pytest.raises(ValueError, match=r"input: expected a CPU tensor, got device meta"):
        m(torch.zeros(2, 1, 3, device="meta"))
    with pytest.raises(ValueError, match=r"weight_ih_l0: expected a CPU tensor"):
        rkt.LSTM(3, 4, device="meta")(torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match=r"hx\[1\]: expected a CPU tensor"):
        m(torch.zeros(2, 1, 3), (torch.zeros(1, 1, 4), torch.zeros(1, 1, 4, device="meta")))


def test_mismatched_dtypes_and_shapes_name_the_argument():
    m = rkt.RNN(3, 4, 2)
    x = torch.zeros(5, 2, 3)
    with pytest.raises(TypeError, match=r"hx: expected dtype torch.float32 \(the dtype of input"):
        m(x, torch.zeros(2, 2, 4, dtype=D64))
    with pytest.raises(TypeError, match=r"weight_ih_l0: expected dtype torch.float64"):
        m(x.double())
    with pytest.raises(ValueError, match=r"hx: expected shape \(2, 2, 4\), got \(1, 2, 4\)"):
        m(x, torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"input: expected a 3-D tensor .* 3 features"):
        m(torch.zeros(5, 2, 4))
    with pytest.raises(TypeError, match=r"hx: expected a tuple \(h_0, c_0\)"):
        rkt.LSTM(3, 4)(x, torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"clip: expected a positive finite number"):
        rkt.GRU(3, 4, clip=0.0)
    with pytest.raises(TypeError, match=r"peephole: expected a bool"):
        rkt.LSTM(3, 4, peephole=1)
    with pytest.raises(TypeError, match=r"dtype: expected torch.float32 or torch.float64"):
        rkt.GRU(3, 4, dtype=torch.float16)
