"""rnnkit.Linear, rnnkit.Embedding and rnnkit.softmax_cross_entropy: finite differences in
float64, PyTorch autograd parity when torch is installed, stability, init and errors."""

import math

import numpy as np
import pytest
from conftest import numeric_grad

import rnnkit
from rnnkit.losses import log_softmax, softmax


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


# ---------------------------------------------------------------- Linear


@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 3), (0, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(rng, shape, bias):
    I, O = shape[-1] if len(shape) > 1 else 5, 4
    x = rng.standard_normal(shape[:-1] + (I,))
    lin = rnnkit.Linear(I, O, bias=bias, dtype="float64", seed=1)
    w_out = rng.standard_normal(x.shape[:-1] + (O,))  # loss = sum(w_out * y)

    def loss():
        return float((lin.forward(x)[0] * w_out).sum())

    y = lin(x)
    assert y.shape == x.shape[:-1] + (O,) and y.dtype == np.float64
    dx = lin.backward(w_out)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(
        lin.grads["weight"], numeric_grad(loss, lin.weight), rtol=1e-7, atol=1e-8
    )
    if bias:
        np.testing.assert_allclose(
            lin.grads["bias"], numeric_grad(loss, lin.bias), rtol=1e-7, atol=1e-8
        )
    else:
        assert lin.bias is None and list(lin.grads) == ["weight"]


def test_linear_explicit_tape_and_accumulation(rng):
    lin = rnnkit.Linear(3, 2, dtype="float64", seed=0)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    y1, tape1 = lin.forward(x1)
    y2, tape2 = lin.forward(x2)
    dy1, dy2 = np.ones_like(y1), 2 * np.ones_like(y2)
    dx1 = lin.backward(dy1, tape1)  # an older tape, after a newer forward
    lin.backward(dy2, tape2)
    np.testing.assert_allclose(dx1, dy1 @ lin.weight)
    np.testing.assert_allclose(lin.grads["weight"], dy1.T @ x1 + dy2.T @ x2)
    np.testing.assert_allclose(lin.grads["bias"], dy1.sum(0) + dy2.sum(0))
    grads = lin.grads["weight"]
    lin.zero_grad()
    assert lin.grads["weight"] is grads and not grads.any()


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_linear_matches_torch(torch, rng, dtype, tol):
    lin = rnnkit.Linear(7, 5, dtype=dtype, seed=3)
    tlin = torch.nn.Linear(7, 5, dtype=getattr(torch, dtype))
    tlin.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    x = rng.standard_normal((3, 4, 7)).astype(dtype)
    dy = rng.standard_normal((3, 4, 5)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = tlin(tx)
    ty.backward(torch.tensor(dy))
    y = lin(x)
    dx = lin.backward(dy)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(lin.grads["weight"], tlin.weight.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(lin.grads["bias"], tlin.bias.grad.numpy(), rtol=tol, atol=tol)


def test_linear_loads_torch_state_dict(torch):
    tlin = torch.nn.Linear(3, 2, dtype=torch.float64)
    lin = rnnkit.Linear(3, 2, dtype="float64")
    w = lin.weight
    lin.load_state_dict(tlin.state_dict())  # tensors, copied into the existing arrays
    assert lin.weight is w
    np.testing.assert_array_equal(lin.weight, tlin.weight.detach().numpy())


def test_linear_init_like_torch_and_seeded():
    lin = rnnkit.Linear(16, 300, seed=0)
    bound = 1 / math.sqrt(16)
    assert lin.weight.shape == (300, 16) and lin.bias.shape == (300,)
    assert lin.weight.dtype == np.float32
    assert np.abs(lin.weight).max() <= bound and np.abs(lin.bias).max() <= bound
    assert np.abs(lin.weight).max() > 0.95 * bound  # uniform over the whole range
    np.testing.assert_array_equal(rnnkit.Linear(16, 300, seed=0).weight, lin.weight)
    assert not np.array_equal(rnnkit.Linear(16, 300, seed=1).weight, lin.weight)
    assert rnnkit.Linear(0, 2).weight.shape == (2, 0)


def test_linear_state_dict_copies():
    lin = rnnkit.Linear(2, 2, seed=0)
    sd = lin.state_dict()
    sd["weight"] += 1
    assert not np.array_equal(sd["weight"], lin.weight)
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    assert lin.parameters()[0] is lin.weight


def test_linear_errors():
    lin = rnnkit.Linear(3, 2, seed=0)
    with pytest.raises(
        TypeError,
        match=r"x: expected dtype float32 \(the dtype of the layer\), "
        r"got float64",
    ):
        lin(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 3\), got \(4, 2\)"):
        lin(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 3\), got \(\)"):
        lin(np.float32(1.0))
    with pytest.raises(RuntimeError, match="no tape"):
        rnnkit.Linear(3, 2).backward(np.zeros((1, 2), np.float32))
    lin(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy: expected shape \(4, 2\), got \(4, 3\)"):
        lin.backward(np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match=r"dy: expected dtype float32"):
        lin.backward(np.zeros((4, 2)))
    with pytest.raises(TypeError, match=r"dtype: expected 'float32' or 'float64', got int32"):
        rnnkit.Linear(3, 2, dtype="int32")
    with pytest.raises(ValueError, match=r"in_features: expected an integer >= 0, got -1"):
        rnnkit.Linear(-1, 2)
    with pytest.raises(TypeError, match=r"out_features: expected an integer, got float"):
        rnnkit.Linear(3, 2.0)
    f32 = np.float32
    with pytest.raises(
        ValueError,
        match=r"state_dict\['weight'\]: expected shape \(2, 3\), "
        r"got \(3, 2\)",
    ):
        lin.load_state_dict({"weight": np.zeros((3, 2), f32), "bias": np.zeros(2, f32)})
    with pytest.raises(ValueError, match=r"missing keys \['bias'\]"):
        lin.load_state_dict({"weight": np.zeros((2, 3), f32)})
    with pytest.raises(TypeError, match=r"state_dict\['bias'\]: expected dtype float32"):
        lin.load_state_dict({"weight": np.zeros((2, 3), f32), "bias": np.zeros(2)})


# ---------------------------------------------------------------- Embedding


def test_embedding_forward_backward(rng):
    emb = rnnkit.Embedding(6, 3, dtype="float64", seed=0)
    ids = np.array([[0, 5, 2], [2, 2, 1]])
    y = emb(ids)
    np.testing.assert_array_equal(y, emb.weight[ids])
    dy = rng.standard_normal((2, 3, 3))
    assert emb.backward(dy) is None
    expected = np.zeros((6, 3))
    for i in np.ndindex(ids.shape):
        expected[ids[i]] += dy[i]  # a repeated id accumulates
    np.testing.assert_allclose(emb.grads["weight"], expected, rtol=1e-15)


def test_embedding_matches_torch(torch, rng):
    emb = rnnkit.Embedding(10, 4, dtype="float64", seed=1)
    temb = torch.nn.Embedding(10, 4, dtype=torch.float64)
    temb.load_state_dict({"weight": torch.tensor(emb.weight)})
    ids = rng.integers(0, 10, size=(5, 7))
    dy = rng.standard_normal((5, 7, 4))
    ty = temb(torch.tensor(ids))
    ty.backward(torch.tensor(dy))
    np.testing.assert_array_equal(emb(ids), ty.detach().numpy())
    emb.backward(dy)
    np.testing.assert_allclose(
        emb.grads["weight"], temb.weight.grad.numpy(), rtol=1e-12, atol=1e-12
    )


def test_embedding_init_and_errors():
    emb = rnnkit.Embedding(2000, 8, seed=0)
    assert emb.weight.dtype == np.float32 and emb.weight.shape == (2000, 8)
    assert abs(emb.weight.mean()) < 0.05 and abs(emb.weight.std() - 1) < 0.05  # N(0, 1)
    np.testing.assert_array_equal(rnnkit.Embedding(2000, 8, seed=0).weight, emb.weight)
    with pytest.raises(ValueError, match=r"ids: expected values in \[0, 2000\), got 2000"):
        emb(np.array([1, 2000]))
    with pytest.raises(ValueError, match=r"ids: expected values in \[0, 2000\), got -1"):
        emb(np.array([-1, 3]))
    with pytest.raises(TypeError, match=r"ids: expected an integer array, got dtype float64"):
        emb(np.array([1.0]))
    emb(np.array([1, 2], np.uint8))
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 8\), got \(2, 7\)"):
        emb.backward(np.zeros((2, 7), np.float32))
    assert emb(np.zeros((0, 3), np.int64)).shape == (0, 3, 8)


# ---------------------------------------------------------------- cross entropy


def _loss_value(loss):
    return float(np.sum(loss))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [None, 2, -100])
def test_cross_entropy_gradcheck(rng, reduction, ignore_index):
    logits = rng.standard_normal((3, 4, 5))
    targets = rng.integers(0, 5, size=(3, 4))
    if ignore_index is not None:
        targets[0, :2] = ignore_index

    def f():
        return _loss_value(
            rnnkit.softmax_cross_entropy(
                logits, targets, reduction=reduction, ignore_index=ignore_index
            )[0]
        )

    loss, dlogits = rnnkit.softmax_cross_entropy(
        logits, targets, reduction=reduction, ignore_index=ignore_index
    )
    if reduction == "none":
        assert loss.shape == (3, 4)
    else:
        assert isinstance(loss, float)
    assert dlogits.shape == logits.shape and dlogits.dtype == np.float64
    np.testing.assert_allclose(dlogits, numeric_grad(f, logits), rtol=1e-6, atol=1e-9)
    if ignore_index is not None:
        assert not dlogits[0, :2].any()


def test_cross_entropy_known_answers():
    loss, d = rnnkit.softmax_cross_entropy(np.array([[1e4, -1e4, 0.0]]), np.array([1]))
    assert loss == 2e4
    np.testing.assert_array_equal(d, [[1.0, -1.0, 0.0]])
    loss, d = rnnkit.softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    assert loss == pytest.approx(math.log(4), rel=1e-15)
    np.testing.assert_allclose(d, (np.full((2, 4), 0.25) - np.eye(4)[[0, 3]]) / 2)
    loss, d = rnnkit.softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, -1]), ignore_index=-1)
    assert math.isnan(loss) and not d.any()  # all ignored: 0/0 as in PyTorch
    loss, d = rnnkit.softmax_cross_entropy(
        np.zeros((2, 3)), np.array([-1, -1]), ignore_index=-1, reduction="sum"
    )
    assert loss == 0.0


def test_softmax_helpers_stable():
    z = np.array(
        [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e308, 0.0, -1e300]]
    )  # -1e308 - 1e308 is -inf: exact
    p, lp = softmax(z), log_softmax(z)
    assert np.isfinite(lp).all() and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(-1), 1.0)
    np.testing.assert_allclose(lp[1], np.log(1 / 3))
    assert lp[0, 1] == -2e4


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [None, 1, -100])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_matches_torch(torch, rng, reduction, ignore_index, scale):
    F = torch.nn.functional
    logits = scale * rng.standard_normal((6, 5, 7))
    logits[0, 0] = [1e4, -1e4, 0, 0, 0, 0, 0]
    targets = rng.integers(0, 7, size=(6, 5))
    if ignore_index is not None:
        targets[1] = ignore_index
    t_logits = torch.tensor(logits.reshape(-1, 7), requires_grad=True)
    kw = {} if ignore_index is None else {"ignore_index": ignore_index}
    tloss = F.cross_entropy(t_logits, torch.tensor(targets.reshape(-1)), reduction=reduction, **kw)
    tloss.backward(torch.ones_like(tloss))
    loss, d = rnnkit.softmax_cross_entropy(
        logits, targets, reduction=reduction, ignore_index=ignore_index
    )
    np.testing.assert_allclose(
        np.reshape(loss, -1), tloss.detach().numpy().reshape(-1), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(d.reshape(-1, 7), t_logits.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_cross_entropy_float32_matches_torch(torch, rng):
    logits = rng.standard_normal((8, 11)).astype(np.float32) * 30
    targets = rng.integers(0, 11, size=8)
    t = torch.tensor(logits, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(t, torch.tensor(targets))
    tl.backward()
    loss, d = rnnkit.softmax_cross_entropy(logits, targets)
    assert d.dtype == np.float32
    assert loss == pytest.approx(tl.item(), rel=1e-5)
    np.testing.assert_allclose(d, t.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_cross_entropy_errors():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"targets: expected values in \[0, 3\), got 3"):
        rnnkit.softmax_cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"or ignore_index \(-100\), got -1"):
        rnnkit.softmax_cross_entropy(z, np.array([-1, -100]), ignore_index=-100)
    with pytest.raises(
        ValueError,
        match=r"targets: expected shape \(2,\) \(logits without its "
        r"last axis\), got \(3,\)",
    ):
        rnnkit.softmax_cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match=r"targets: expected an integer array, got dtype float64"):
        rnnkit.softmax_cross_entropy(z, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match=r"logits: expected dtype float32 or float64, got int64"):
        rnnkit.softmax_cross_entropy(np.zeros((2, 3), np.int64), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"reduction: expected one of"):
        rnnkit.softmax_cross_entropy(z, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"logits: expected an array \[\.\.\., C\], got shape"):
        rnnkit.softmax_cross_entropy(np.float64(1.0), np.array(0))


# ---------------------------------------------------------------- together


def test_linear_softmax_training_decreases_loss(rng):
    """A linear classifier on separable data: loss falls, gradients chain through Linear."""
    x = rng.standard_normal((64, 5))
    w_true = rng.standard_normal((5, 3))
    targets = np.argmax(x @ w_true, axis=1)
    lin = rnnkit.Linear(5, 3, dtype="float64", seed=0)
    opt = rnnkit.optim.Adam(lin, lr=0.05)
    first = None
    for _ in range(100):
        opt.zero_grad()
        loss, d = rnnkit.softmax_cross_entropy(lin(x), targets)
        lin.backward(d)
        opt.step()
        first = loss if first is None else first
    assert loss < 0.3 * first
    assert (np.argmax(lin(x), 1) == targets).mean() > 0.9
