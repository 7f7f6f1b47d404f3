"""Weight exchange: rnnkit.convert.from_torch / to_torch (round trips, outputs, what torch
cannot express) and from_keras against a NumPy transcription of Keras' documented equations
(LSTM gates i, f, c, o; GRU z, r, h with reset_after True and False; SimpleRNN), and against
real Keras layers when keras is importable."""

import os

import numpy as np
import pytest

import rnnkit
from rnnkit import convert

T, B, I, H = 6, 3, 4, 5


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# ---------------------------------------------------------------- PyTorch


TORCH_CONFIGS = [
    ("RNN", dict(nonlinearity="relu", num_layers=2, bidirectional=True)),
    ("LSTM", dict(num_layers=2, proj_size=3, batch_first=True, dropout=0.2)),
    ("LSTM", dict(num_layers=1, bias=False)),
    ("GRU", dict(num_layers=3, bidirectional=True, batch_first=True)),
]


TORCH_IDS = [f"{k}{i}" for i, (k, _) in enumerate(TORCH_CONFIGS)]


@pytest.mark.parametrize("kind,kw", TORCH_CONFIGS, ids=TORCH_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_torch_to_torch_round_trip(kind, kw, dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    kw = dict(kw)
    n = kw.pop("num_layers")
    tdt = getattr(torch, dtype)
    mod = getattr(torch.nn, kind)(I, H, n, dtype=tdt, **kw).eval()
    layer = convert.from_torch(mod)
    assert type(layer).__name__ == kind and layer.dtype == np.dtype(dtype)
    assert not layer.training and layer.batch_first == mod.batch_first
    assert list(layer.state_dict()) == list(mod.state_dict())
    shape = (B, T, I) if mod.batch_first else (T, B, I)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    with torch.no_grad():
        want, _ = mod(torch.from_numpy(x))
    y, _ = layer(x)
    tol = 1e-10 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(y, want.numpy(), rtol=tol, atol=tol)
    back = convert.to_torch(layer)
    assert type(back) is type(mod) and back.training == mod.training
    for (n1, p1), (n2, p2) in zip(mod.state_dict().items(), back.state_dict().items()):
        assert n1 == n2 and p1.dtype == p2.dtype
        assert torch.equal(p1, p2)
    for attr in (
        "input_size",
        "hidden_size",
        "num_layers",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
    ):
        assert getattr(back, attr) == getattr(mod, attr), attr


def test_from_torch_dtype_and_backend():
    torch = pytest.importorskip("torch")
    mod = torch.nn.GRU(I, H)
    layer = convert.from_torch(mod, dtype="float64", backend="reference")
    assert layer.dtype == np.float64 and layer.backend == "reference" and layer.training
    np.testing.assert_array_equal(
        layer.state_dict()["weight_hh_l0"], mod.weight_hh_l0.detach().numpy().astype(np.float64)
    )


def test_to_torch_rejects_what_torch_cannot_express():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="peephole"):
        convert.to_torch(rnnkit.LSTM(I, H, peephole=True))
    with pytest.raises(ValueError, match="linear_before_reset=False"):
        convert.to_torch(rnnkit.GRU(I, H, linear_before_reset=False))
    with pytest.raises(TypeError, match="module: expected a torch.nn.RNN, LSTM or GRU"):
        convert.from_torch(object())


# ---------------------------------------------------------------- Keras (NumPy transcription)


def keras_lstm(x, kernel, rec, bias):
    """keras.layers.LSTM (batch-major x[B, T, I]): z = x K + h U + b split i, f, c, o."""
    h = np.zeros((x.shape[0], rec.shape[0]))
    c = np.zeros_like(h)
    ys = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ rec + bias
        i, f, cc, o = np.split(z, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(cc)
        h = sigmoid(o) * np.tanh(c)
        ys.append(h)
    return np.stack(ys, axis=1), h, c


def keras_gru(x, kernel, rec, bias, reset_after):
    """keras.layers.GRU: gates z, r, h; reset_after=True: bias[2, 3H] (input, recurrent),
    hh = tanh(x_h + r * (h U_h + b_rh)); False: bias[3H], hh = tanh(x_h + (r * h) U_h)."""
    Hk = rec.shape[0]
    h = np.zeros((x.shape[0], Hk))
    ys = []
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * Hk))
    for t in range(x.shape[1]):
        xi = x[:, t] @ kernel + b_in
        x_z, x_r, x_h = np.split(xi, 3, axis=1)
        if reset_after:
            inner = h @ rec + b_rec
            r_z, r_r, r_h = np.split(inner, 3, axis=1)
            z, r = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
            hh = np.tanh(x_h + r * r_h)
        else:
            z = sigmoid(x_z + h @ rec[:, :Hk])
            r = sigmoid(x_r + h @ rec[:, Hk : 2 * Hk])
            hh = np.tanh(x_h + (r * h) @ rec[:, 2 * Hk :])
        h = z * h + (1 - z) * hh
        ys.append(h)
    return np.stack(ys, axis=1), h


def keras_simplernn(x, kernel, rec, bias, act):
    h = np.zeros((x.shape[0], rec.shape[0]))
    ys = []
    for t in range(x.shape[1]):
        h = act(x[:, t] @ kernel + h @ rec + bias)
        ys.append(h)
    return np.stack(ys, axis=1), h


def keras_weights(cell, reset_after=True, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    kernel = rng.standard_normal((I, G * H)) * 0.5
    rec = rng.standard_normal((H, G * H)) * 0.5
    bias = rng.standard_normal((2, G * H) if cell == "gru" and reset_after else (G * H,)) * 0.5
    return kernel.astype(dtype), rec.astype(dtype), bias.astype(dtype)


def x_batch_major(dtype=np.float64):
    return np.random.default_rng(1).standard_normal((B, T, I)).astype(dtype)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_from_keras_lstm_matches_equations(backend):
    k, r, b = keras_weights("lstm")
    layer = convert.from_keras("lstm", k, r, b, backend=backend, batch_first=True)
    assert isinstance(layer, rnnkit.LSTM) and layer.num_layers == 1 and layer.dtype == np.float64
    x = x_batch_major()
    y_want, h_want, c_want = keras_lstm(x, k, r, b)
    y, (h, c) = layer(x)
    np.testing.assert_allclose(y, y_want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h[0], h_want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c[0], c_want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_from_keras_gru_matches_equations(backend, reset_after):
    k, r, b = keras_weights("gru", reset_after)
    layer = convert.from_keras("gru", k, r, b, reset_after=reset_after, backend=backend)
    assert layer.linear_before_reset == reset_after and not layer.batch_first
    x = x_batch_major()
    y_want, h_want = keras_gru(x, k, r, b, reset_after)
    y, h = layer(np.ascontiguousarray(x.transpose(1, 0, 2)))  # time-major by default
    np.testing.assert_allclose(y.transpose(1, 0, 2), y_want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h[0], h_want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_from_keras_simplernn_matches_equations(nonlinearity):
    k, r, b = keras_weights("rnn")
    layer = convert.from_keras("SimpleRNN", k, r, b, nonlinearity=nonlinearity, batch_first=True)
    act = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    y_want, _ = keras_simplernn(x_batch_major(), k, r, b, act)
    np.testing.assert_allclose(layer(x_batch_major())[0], y_want, rtol=1e-10, atol=1e-12)


def test_from_keras_no_bias_dtype_and_errors():
    k, r, _ = keras_weights("lstm", dtype=np.float32)
    layer = convert.from_keras("lstm", k, r, None)
    assert not layer.bias and layer.dtype == np.float32
    assert convert.from_keras("lstm", k, r, None, dtype="float64").dtype == np.float64
    with pytest.raises(
        ValueError, match=r"bias: expected shape \(2, 15\) \(GRU, reset_after=True\)"
    ):
        convert.from_keras("gru", *keras_weights("gru", reset_after=False))
    with pytest.raises(
        ValueError, match=r"bias: expected shape \(15,\) \(GRU, reset_after=False\)"
    ):
        convert.from_keras("gru", *keras_weights("gru"), reset_after=False)
    with pytest.raises(ValueError, match=r"recurrent_kernel: expected shape \(5, 20\)"):
        convert.from_keras("lstm", k, r[:, :-1], None)
    with pytest.raises(ValueError, match="cell: expected"):
        convert.from_keras("conv", k, r, None)


# ---------------------------------------------------------------- real Keras


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.parametrize(
    "cell,reset_after", [("lstm", True), ("gru", True), ("gru", False), ("rnn", True)]
)
def test_from_keras_matches_real_keras(keras, cell, reset_after):
    x = x_batch_major(np.float32)
    keras.utils.set_random_seed(0)
    if cell == "lstm":
        kl = keras.layers.LSTM(H, return_sequences=True, return_state=True)
    elif cell == "gru":
        kl = keras.layers.GRU(H, return_sequences=True, return_state=True, reset_after=reset_after)
    else:
        kl = keras.layers.SimpleRNN(H, return_sequences=True, return_state=True)
    out = kl(x)
    # nonzero biases, so that their placement is tested too
    w = kl.get_weights()
    w[2] = np.random.default_rng(2).standard_normal(w[2].shape).astype(np.float32) * 0.5
    kl.set_weights(w)
    out = [np.asarray(keras.ops.convert_to_numpy(o)) for o in kl(x)]
    layer = convert.from_keras(cell, *kl.get_weights(), reset_after=reset_after, batch_first=True)
    y, state = layer(x)
    np.testing.assert_allclose(y, out[0], rtol=1e-4, atol=1e-5)
    h = state[0] if cell == "lstm" else state
    np.testing.assert_allclose(h[0], out[1], rtol=1e-4, atol=1e-5)
    if cell == "lstm":
        np.testing.assert_allclose(state[1][0], out[2], rtol=1e-4, atol=1e-5)
