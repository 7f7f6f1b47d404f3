"""The section-11 cell options in rnnkit.torch: the ``<cell>_forward_opts`` /
``<cell>_backward_opts`` operators (opcheck, gradcheck in float64), the modules' extras
(layer_norm, zoneout, recurrent_dropout, resets) against the rnnkit layers (torch.nn has no
such cells), torch.compile, and the converters. Skipped without torch; the operators run on
the native kernels, so every test here needs the native options (h/opts-kernels)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _options import NO_OPTIONS, has_options  # noqa: E402

import rnnkit  # noqa: E402
import rnnkit.torch as rkt  # noqa: E402
from rnnkit import convert  # noqa: E402

needs_native = pytest.mark.skipif(not has_options("native"), reason=NO_OPTIONS.format("native"))

D64 = torch.float64
T, B, I, H = 5, 3, 4, 3
G = {"rnn": 1, "lstm": 4, "gru": 3}
TORCH = {"rnn": rkt.RNN, "lstm": rkt.LSTM, "gru": rkt.GRU}
LAYERS = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}


def op_inputs(
    cell, *, ln=True, zone=True, rec=True, resets=True, lengths=False, grad=True, dtype=D64, seed=0
):
    """Positional inputs of rnnkit::<cell>_forward_opts (tensors, then the flags)."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.5):
        return (scale * torch.randn(*shape, generator=gen, dtype=dtype)).requires_grad_(grad)

    g = G[cell]
    t = {
        "x": r(T, B, I),
        "w_ih": r(g * H, I),
        "w_hh": r(g * H, H),
        "b_ih": r(g * H),
        "b_hh": r(g * H),
        "h0": r(B, H),
    }
    if cell == "lstm":
        t.update(c0=r(B, H), w_peep=r(3, H))
    if ln:
        for n, w in (("ln_ih", g * H), ("ln_hh", g * H)) + (
            (("ln_c", H),) if cell == "lstm" else ()
        ):
            t[n] = torch.stack(
                [
                    1 + 0.3 * torch.randn(w, generator=gen, dtype=dtype),
                    0.3 * torch.randn(w, generator=gen, dtype=dtype),
                ]
            ).requires_grad_(grad)
    if zone:
        t["zoneout"] = (torch.rand(T, B, H, generator=gen, dtype=dtype) < 0.3).to(dtype)
        if cell == "lstm":
            t["zoneout_c"] = torch.full((T, B, H), 0.25, dtype=dtype)
    if rec:
        t["recurrent_mask"] = (torch.rand(B, H, generator=gen, dtype=dtype) < 0.7).to(dtype) / 0.7
    if resets:
        rs = torch.zeros(T, B, dtype=torch.bool)
        rs[2, 0] = rs[3, 2] = True
        t["resets"] = rs
    if lengths:
        t["lengths"] = torch.tensor([5, 2, 4])
    from rnnkit.torch._ops import _names

    names = _names(cell)
    flags = {"rnn": (False, "tanh", None), "lstm": (False, None), "gru": (False, True, None)}
    return [t.get(n) for n in names] + list(flags[cell]), names


@needs_native
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_opcheck_options_operators(cell):
    args, names = op_inputs(cell, dtype=torch.float32, lengths=True)
    fwd = getattr(torch.ops.rnnkit, f"{cell}_forward_opts").default
    torch.library.opcheck(fwd, args)
    plain = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
    outs = fwd(*plain)
    douts = [torch.ones_like(o) for o in outs]
    torch.library.opcheck(getattr(torch.ops.rnnkit, f"{cell}_backward_opts").default, plain + douts)


@needs_native
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("which", ["ln", "zone", "rec", "resets", "all"])
def test_gradcheck_options_float64(cell, which):
    on = {k: which in (k, "all") for k in ("ln", "zone", "rec", "resets")}
    args, names = op_inputs(cell, **on)
    op = getattr(torch.ops.rnnkit, f"{cell}_forward_opts")
    diff = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad]

    def fn(*tensors):
        full = list(args)
        for i, t in zip(diff, tensors):
            full[i] = t
        return op(*full)

    assert torch.autograd.gradcheck(fn, [args[i] for i in diff], eps=1e-6, atol=1e-7, rtol=1e-5)


def copy_params(module, layer):
    layer.load_state_dict({k: v.detach().numpy().copy() for k, v in module.state_dict().items()})


@needs_native
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_module_parameters_and_parity_with_the_layer_eval(cell):
    torch.manual_seed(0)
    m = TORCH[cell](I, H, 2, dtype=D64, layer_norm=True, zoneout=0.2, recurrent_dropout=0.3)
    names = [n for n, _ in m.named_parameters()]
    assert names[-2:] == (["ln_hh_l1", "ln_c_l1"] if cell == "lstm" else ["ln_ih_l1", "ln_hh_l1"])
    assert torch.equal(m.ln_ih_l0[0], torch.ones(G[cell] * H))
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.startswith("ln_"):
                p.add_(0.3 * torch.randn_like(p))
    layer = LAYERS[cell](
        I, H, 2, dtype="float64", layer_norm=True, zoneout=0.2, recurrent_dropout=0.3
    )
    copy_params(m, layer)
    x = torch.randn(T, B, I, dtype=D64)
    m.eval()
    layer.eval()
    y, _ = m(x)
    np.testing.assert_allclose(y.detach().numpy(), layer(x.numpy())[0], rtol=1e-10, atol=1e-12)


@needs_native
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_module_training_gradients_match_the_layer(cell):
    """layer_norm and resets are deterministic: the training gradients of every parameter
    equal the rnnkit layer's."""
    torch.manual_seed(1)
    m = TORCH[cell](I, H, 1, dtype=D64, layer_norm=True, batch_first=True)
    layer = LAYERS[cell](I, H, 1, dtype="float64", layer_norm=True, batch_first=True)
    with torch.no_grad():
        m.ln_hh_l0.add_(0.3 * torch.randn_like(m.ln_hh_l0))
    copy_params(m, layer)
    x = torch.randn(B, T, I, dtype=D64, requires_grad=True)
    resets = torch.zeros(B, T, dtype=torch.bool)
    resets[1, 2] = True
    y, _ = m(x, resets=resets)
    w = torch.randn_like(y)
    (y * w).sum().backward()
    ly, _ = layer(x.detach().numpy(), resets=resets.numpy())
    np.testing.assert_allclose(y.detach().numpy(), ly, rtol=1e-10, atol=1e-12)
    dx, _ = layer.backward(w.numpy())
    np.testing.assert_allclose(x.grad.numpy(), dx, rtol=1e-9, atol=1e-12)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), layer.grads[n], rtol=1e-9, atol=1e-12, err_msg=n)


@needs_native
def test_module_training_masks_move_and_zoneout_one_keeps_the_state():
    m = rkt.GRU(I, H, dtype=D64, zoneout=1.0)
    x = torch.randn(T, B, I, dtype=D64)
    h0 = torch.randn(1, B, H, dtype=D64)
    y, h = m(x, h0)
    assert torch.equal(h, h0) and torch.equal(y, h0.expand(T, B, H))
    m = rkt.LSTM(I, H, dtype=D64, recurrent_dropout=0.5)
    assert not torch.equal(m(x)[0], m(x)[0])  # new masks each training call
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])


def test_module_errors():
    with pytest.raises(ValueError, match=r"zoneout: expected a number in \[0, 1\], got 2"):
        rkt.LSTM(I, H, zoneout=2)
    with pytest.raises(ValueError, match=r"recurrent_dropout: expected a number in \[0, 1\)"):
        rkt.GRU(I, H, recurrent_dropout=1.0)
    with pytest.raises(TypeError, match="layer_norm: expected a bool"):
        rkt.RNN(I, H, layer_norm=1)
    x = torch.randn(T, B, I)
    with pytest.raises(TypeError, match="resets: expected dtype torch.bool"):
        rkt.GRU(I, H)(x, resets=torch.zeros(T, B))
    with pytest.raises(ValueError, match=r"resets: expected shape \(5, 3\)"):
        rkt.GRU(I, H)(x, resets=torch.zeros(B, T, dtype=torch.bool))
    with pytest.raises(ValueError, match="resets: a bidirectional module"):
        rkt.GRU(I, H, bidirectional=True)(x, resets=torch.zeros(T, B, dtype=torch.bool))


@needs_native
def test_compile_fullgraph_with_options():
    torch.manual_seed(0)
    m = rkt.LSTM(I, H, 2, layer_norm=True, zoneout=0.1, recurrent_dropout=0.2).eval()
    x = torch.randn(T, B, I)
    torch._dynamo.reset()
    out = torch.compile(m, fullgraph=True)(x)[0]
    torch.testing.assert_close(out, m(x)[0], rtol=1e-5, atol=1e-6)


@needs_native
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_convert_round_trip_keeps_the_options(cell):
    torch.manual_seed(0)
    kw = {"peephole": True} if cell == "lstm" else {"linear_before_reset": False}
    m = TORCH[cell](I, H, 2, dtype=D64, layer_norm=True, zoneout=0.2, **kw).eval()
    layer = convert.from_torch(m)
    assert (layer.layer_norm, layer.zoneout) == (True, 0.2)
    x = torch.randn(T, B, I, dtype=D64)
    np.testing.assert_allclose(layer(x.numpy())[0], m(x)[0].detach().numpy(), rtol=1e-10)
    back = convert.to_torch(layer, target="rnnkit.torch")
    assert type(back) is type(m) and not back.training
    for (n, p), (n2, p2) in zip(m.named_parameters(), back.named_parameters()):
        assert n == n2 and torch.equal(p, p2)
    with pytest.raises(ValueError, match="layer_norm=True cannot be expressed by torch.nn"):
        convert.to_torch(layer)
    with pytest.raises(ValueError, match="clip=0.5 has no rnnkit layer equivalent"):
        convert.from_torch(TORCH[cell](I, H, clip=0.5))
