"""rnnkit.optim: optimizers step for step against torch.optim (float64, 1e-12), first steps
against their formulas, clipping against torch.nn.utils, state dicts, errors, and the
gradient-norm history."""

import itertools
import math
import zlib

import numpy as np
import pytest

import rnnkit
import rnnkit.optim as optim

SHAPES = [(3, 4), (5,), (1,), (2, 1, 3)]
STEPS = 20


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def _combos(**options):
    keys = list(options)
    return [dict(zip(keys, values)) for values in itertools.product(*options.values())]


SGD_CASES = [
    c
    for c in _combos(
        lr=[0.05],
        momentum=[0.0, 0.9],
        dampening=[0.0, 0.3],
        weight_decay=[0.0, 0.1],
        nesterov=[False, True],
        maximize=[False, True],
    )
    if not (c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0))
]
ADAGRAD_CASES = _combos(
    lr=[0.1],
    lr_decay=[0.0, 0.01],
    weight_decay=[0.0, 0.1],
    initial_accumulator_value=[0.0, 0.5],
    eps=[1e-10, 1e-3],
    maximize=[False, True],
)
ADAM_CASES = _combos(
    lr=[0.01],
    betas=[(0.9, 0.999), (0.5, 0.9), (0.0, 0.0)],
    eps=[1e-8, 0.1],
    weight_decay=[0.0, 0.1],
    amsgrad=[False, True],
    maximize=[False, True],
)
CASES = (
    [("SGD", c) for c in SGD_CASES]
    + [("Adagrad", c) for c in ADAGRAD_CASES]
    + [("Adam", c) for c in ADAM_CASES]
    + [("AdamW", c) for c in ADAM_CASES]
)


def _case_id(case):
    name, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items() if k != "lr")


def _run_pairs(name, kw, params0, grads_per_step, lr_at=None):
    """rnnkit over (param, grad) pairs; grads are written into the same arrays each step."""
    params = [p.copy() for p in params0]
    grads = [np.zeros_like(p) for p in params]
    opt = getattr(optim, name)(list(zip(params, grads)), **kw)
    for i, step_grads in enumerate(grads_per_step):
        if lr_at is not None and i == lr_at[0]:
            opt.lr = lr_at[1]
        for g, new in zip(grads, step_grads):
            g[...] = new
        opt.step()
    return params, opt


def _random_run(seed=0, steps=STEPS, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params0 = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return params0, grads


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_torch_step_by_step(torch, case):
    name, kw = case
    params0, grads = _random_run(seed=zlib.crc32(_case_id(case).encode()))
    lr_at = (STEPS // 2, kw["lr"] / 3)  # a schedule: lr is settable mid-run
    ours = [p.copy() for p in params0]
    pairs = [(p, np.zeros_like(p)) for p in ours]
    opt = getattr(optim, name)(pairs, **kw)
    tparams = [torch.tensor(p, requires_grad=True) for p in params0]
    topt = getattr(torch.optim, name)(tparams, **kw)
    for i, step_grads in enumerate(grads):
        if i == lr_at[0]:
            opt.lr = lr_at[1]
            topt.param_groups[0]["lr"] = lr_at[1]
        for (_, g), tp, new in zip(pairs, tparams, step_grads):
            g[...] = new
            tp.grad = torch.tensor(new)
        opt.step()
        topt.step()
        for p, tp in zip(ours, tparams):
            np.testing.assert_allclose(
                p, tp.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=f"step {i}"
            )


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "Adam", "AdamW"])
def test_matches_torch_float32(torch, name):
    kw = {"lr": 0.01}
    if name == "SGD":
        kw.update(momentum=0.9, nesterov=True)
    params0, grads = _random_run(seed=3, dtype=np.float32)
    ours, _ = _run_pairs(name, kw, params0, grads)
    tparams = [torch.tensor(p, requires_grad=True) for p in params0]
    topt = getattr(torch.optim, name)(tparams, **kw)
    for step_grads in grads:
        for tp, g in zip(tparams, step_grads):
            tp.grad = torch.tensor(g)
        topt.step()
    for p, tp in zip(ours, tparams):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- first steps from the formula


def _first_step(name, kw, seed=1):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal((3, 5))
    g = rng.standard_normal((3, 5))
    p = p0.copy()
    getattr(optim, name)([(p, g.copy())], **kw).step()
    return p0, g, p


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_first_step_known_answer(nesterov):
    lr, m, wd = 0.1, 0.9, 0.01
    p0, g, p = _first_step("SGD", dict(lr=lr, momentum=m, weight_decay=wd, nesterov=nesterov))
    d = g + wd * p0  # the momentum buffer starts as the first gradient
    expected = p0 - lr * (d + m * d if nesterov else d)
    np.testing.assert_allclose(p, expected, rtol=1e-15, atol=1e-15)


def test_sgd_second_step_uses_dampening():
    lr, m, damp = 0.1, 0.5, 0.25
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.25])
    opt = optim.SGD([(p, g)], lr=lr, momentum=m, dampening=damp)
    opt.step()  # buf = g; p = p0 - lr g
    opt.step()  # buf = m g + (1 - damp) g
    expected = np.array([1.0, -2.0]) - lr * g - lr * (m * g + (1 - damp) * g)
    np.testing.assert_allclose(p, expected, rtol=1e-15)


def test_adagrad_first_step_known_answer():
    lr, init, eps, wd = 0.1, 0.5, 1e-3, 0.1
    p0, g, p = _first_step(
        "Adagrad",
        dict(lr=lr, initial_accumulator_value=init, eps=eps, weight_decay=wd, lr_decay=0.5),
    )
    d = g + wd * p0
    expected = p0 - lr * d / (np.sqrt(init + d * d) + eps)  # lr_decay acts from step 2 on
    np.testing.assert_allclose(p, expected, rtol=1e-14)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_first_step_known_answer(amsgrad):
    lr, (b1, b2), eps, wd = 0.01, (0.8, 0.99), 1e-3, 0.1
    p0, g, p = _first_step(
        "Adam", dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad)
    )
    d = g + wd * p0
    m, v = (1 - b1) * d, (1 - b2) * d * d
    expected = p0 - lr / (1 - b1) * m / (np.sqrt(v) / np.sqrt(1 - b2) + eps)
    np.testing.assert_allclose(p, expected, rtol=1e-14)
    # bias correction makes the first step ~lr * sign(g) whatever the betas
    np.testing.assert_allclose(p0 - p, lr * d / (np.abs(d) + eps), rtol=1e-12)


def test_adamw_first_step_known_answer():
    lr, eps, wd = 0.01, 1e-8, 0.5
    p0, g, p = _first_step("AdamW", dict(lr=lr, eps=eps, weight_decay=wd))
    expected = p0 * (1 - lr * wd) - lr * g / (np.abs(g) + eps)
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_adamw_default_weight_decay():
    assert optim.AdamW([(np.zeros(2), np.zeros(2))]).weight_decay == 1e-2
    assert optim.Adam([(np.zeros(2), np.zeros(2))]).weight_decay == 0.0


# ---------------------------------------------------------------- params, in place, state dicts


def test_model_params_updated_in_place():
    lin = rnnkit.Linear(4, 3, dtype="float64", seed=0)
    w, b = lin.weight, lin.bias
    w0 = w.copy()
    x = np.random.default_rng(0).standard_normal((5, 4))
    lin(x)
    lin.backward(np.ones((5, 3)))
    opt = optim.SGD(lin, lr=0.1)
    opt.step()
    assert lin.weight is w and lin.bias is b and lin.named_parameters()[0][1] is w
    np.testing.assert_allclose(w, w0 - 0.1 * np.ones((3, 5)) @ x)
    opt.zero_grad()
    assert all((g == 0).all() for g in lin.grads.values())


def test_list_of_models_and_grads_looked_up_each_step():
    a = rnnkit.Linear(2, 2, dtype="float64", seed=1)
    b = rnnkit.Embedding(3, 2, dtype="float64", seed=2)
    opt = optim.SGD([a, b], lr=1.0)
    assert len(opt.params) == 3
    b0 = b.weight.copy()
    b.grads["weight"] = np.ones_like(b.weight)  # a model that replaces its grad arrays
    opt.step()
    np.testing.assert_allclose(b.weight, b0 - 1)


def test_pair_grad_none_is_skipped():
    p, q = np.ones(2), np.ones(3)
    opt = optim.Adam([(p, None), (q, np.ones(3))], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(p, 1)
    assert opt.state[0] == {} and opt.state[1]["step"] == 1


@pytest.mark.parametrize(
    "name,kw",
    [
        ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
        ("Adam", dict(lr=0.01, amsgrad=True)),
        ("AdamW", dict(lr=0.01)),
    ],
)
def test_state_dict_resume_equals_uninterrupted(name, kw):
    params0, grads = _random_run(seed=5)
    full, _ = _run_pairs(name, kw, params0, grads)
    half, opt = _run_pairs(name, kw, params0, grads[:10])
    sd = opt.state_dict()
    saved = [p.copy() for p in half]
    for p in half:  # the state dict holds copies, not views of the live state
        p += 100.0
    for st in opt.state:
        for v in st.values():
            if isinstance(v, np.ndarray):
                v += 100.0
    params = saved
    gbufs = [np.zeros_like(p) for p in params]
    other = dict(kw, lr=123.0)  # hyper-parameters come back from the state dict
    opt2 = getattr(optim, name)(list(zip(params, gbufs)), **other)
    opt2.load_state_dict(sd)
    assert opt2.lr == kw["lr"]
    for step_grads in grads[10:]:
        for g, new in zip(gbufs, step_grads):
            g[...] = new
        opt2.step()
    for a, b in zip(params, full):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


def test_load_state_dict_checks():
    opt = optim.Adam([(np.zeros(3), np.ones(3))])
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="expected type SGD"):
        optim.SGD([(np.zeros(3), np.ones(3))]).load_state_dict(sd)
    with pytest.raises(ValueError, match="expected state for 2 parameters, got 1"):
        optim.Adam([(np.zeros(3), np.ones(3)), (np.zeros(1), np.ones(1))]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"exp_avg: expected shape \(4,\), got \(3,\)"):
        optim.Adam([(np.zeros(4), np.ones(4))]).load_state_dict(sd)


# ---------------------------------------------------------------- errors


P = [(np.zeros(2), np.zeros(2))]


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: optim.SGD(P, lr=-0.1), r"lr: expected a number >= 0, got -0.1"),
        (lambda: optim.SGD(P, lr=float("nan")), r"lr: expected a number >= 0"),
        (lambda: optim.SGD(P, momentum=-1), r"momentum: expected a number >= 0"),
        (lambda: optim.SGD(P, weight_decay=-1), r"weight_decay: expected a number >= 0"),
        (lambda: optim.SGD(P, nesterov=True), r"nesterov: requires momentum > 0 and dampening"),
        (lambda: optim.SGD(P, momentum=0.9, dampening=0.1, nesterov=True), r"nesterov: requires"),
        (lambda: optim.Adam(P, betas=(1.0, 0.9)), r"betas\[0\]: expected a number in \[0, 1\)"),
        (lambda: optim.Adam(P, betas=(0.9, -0.1)), r"betas\[1\]: expected a number in \[0, 1\)"),
        (lambda: optim.AdamW(P, eps=-1e-8), r"eps: expected a number >= 0"),
        (lambda: optim.Adagrad(P, eps=-1), r"eps: expected a number >= 0"),
        (lambda: optim.Adagrad(P, lr_decay=-1), r"lr_decay: expected a number >= 0"),
        (lambda: optim.Adagrad(P, initial_accumulator_value=-1), r"initial_accumulator_value"),
        (lambda: optim.SGD([], lr=0.1), r"params: expected at least one parameter"),
        (
            lambda: optim.SGD([(np.zeros(2), np.zeros(3))]),
            r"params\[0\]\[1\]: expected shape \(2,\)",
        ),
        (lambda: optim.SGD([P[0], P[0]]), r"appears more than once"),
        (lambda: optim.clip_grad_norm([np.ones(2)], -1.0), r"max_norm: expected a number >= 0"),
        (lambda: optim.clip_grad_norm([np.ones(2)], 1.0, norm_type=0), r"norm_type"),
        (lambda: optim.clip_grad_value([np.ones(2)], -1.0), r"clip_value: expected a number >= 0"),
    ],
)
def test_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: optim.SGD(np.zeros(3)), r"params: expected a model"),
        (
            lambda: optim.SGD([np.zeros(3)]),
            r"params\[0\]: an array that is not a parameter of a live",
        ),
        (lambda: optim.SGD([3.0]), r"params\[0\]: expected a model or a \(param, grad\)"),
        (
            lambda: optim.SGD([(np.zeros(3, np.int64), np.zeros(3))]),
            r"params\[0\]\[0\]: expected "
            r"dtype float32 or float64",
        ),
        (lambda: optim.SGD([([0.0], np.zeros(1))]), r"params\[0\]\[0\]: expected a NumPy array"),
        (lambda: optim.SGD(P, lr="0.1"), r"lr: expected a number, got str"),
        (lambda: optim.Adam(P, betas=0.9), r"betas: expected a pair"),
        (lambda: optim.clip_grad_norm(3.0, 1.0), r"grads: expected a model"),
    ],
)
def test_type_errors(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_step_checks_grad_against_param():
    lin = rnnkit.Linear(2, 2, seed=0)
    opt = optim.SGD(lin, lr=0.1)
    lin.grads["bias"] = np.zeros(2)  # float64 grad for a float32 parameter
    with pytest.raises(TypeError, match=r"grad of bias: expected dtype float32 \(the "):
        opt.step()
    lin.grads["bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"grad of bias: expected shape \(2,\), got \(3,\)"):
        opt.step()


def test_lr_setter_validates():
    opt = optim.SGD(P, lr=0.1)
    opt.lr = 0.5
    assert opt.lr == 0.5
    with pytest.raises(ValueError, match="lr: expected a number >= 0"):
        opt.lr = -1


def test_read_only_param_rejected():
    p = np.zeros(2)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        optim.SGD([(p, np.zeros(2))])


# ---------------------------------------------------------------- clipping


def _grads(seed, scale=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [(scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES]


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6, 0.0])
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm):
    ours = _grads(7)
    theirs = [torch.tensor(g, requires_grad=True) for g in ours]
    for t, g in zip(theirs, ours):
        t.grad = torch.tensor(g)
    total = optim.clip_grad_norm(ours, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(float(ttotal), rel=1e-13)
    for g, t in zip(ours, theirs):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_clip_grad_norm_nonfinite_matches_torch(torch):
    ours = _grads(8)
    ours[1][2] = np.inf
    theirs = [torch.tensor(g, requires_grad=True) for g in ours]
    for t, g in zip(theirs, ours):
        t.grad = torch.tensor(g)
    before = [g.copy() for g in ours]
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm(ours, 1.0, error_if_nonfinite=True)
    for a, b in zip(ours, before):
        np.testing.assert_array_equal(a, b)
    total = optim.clip_grad_norm(ours, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total == float(ttotal) == math.inf
    for g, t in zip(ours, theirs):
        np.testing.assert_array_equal(g, t.grad.numpy())


@pytest.mark.parametrize("clip", [0.3, 10.0, 0.0])
def test_clip_grad_value_matches_torch(torch, clip):
    ours = _grads(9)
    ours[0][0, 0] = np.nan
    theirs = [torch.tensor(g, requires_grad=True) for g in ours]
    for t, g in zip(theirs, ours):
        t.grad = torch.tensor(g)
    optim.clip_grad_value(ours, clip)
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for g, t in zip(ours, theirs):
        np.testing.assert_array_equal(g, t.grad.numpy())


def test_clip_grad_norm_known_answer_and_inputs():
    g = np.array([3.0, 4.0])
    assert optim.clip_grad_norm({"a": g}, 1.0) == 5.0
    np.testing.assert_allclose(g, [3.0, 4.0] / np.float64(5.0 + 1e-6), rtol=1e-15)
    g = np.array([3.0, 4.0])
    assert optim.clip_grad_norm(g, 10.0) == 5.0  # under the limit: untouched
    np.testing.assert_array_equal(g, [3.0, 4.0])
    assert optim.clip_grad_norm([np.array([-7.0, 2.0]), np.array([1.0])], 1.0, "inf") == 7.0
    assert optim.clip_grad_norm([], 1.0) == 0.0
    lin = rnnkit.Linear(3, 2, seed=0)  # a model: its grads are clipped in place
    lin.grads["weight"][...] = 10
    lin.grads["bias"][...] = 10
    total = optim.clip_grad_norm(lin, 1.0)
    assert total == pytest.approx(10 * math.sqrt(8), rel=1e-6)
    assert lin.grads["weight"].dtype == np.float32
    assert optim.grad_norms(lin)[0] == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_value_known_answer():
    g = {"w": np.array([-3.0, 0.5, 2.0])}
    optim.clip_grad_value(g, 1.0)
    np.testing.assert_array_equal(g["w"], [-1.0, 0.5, 1.0])


# ---------------------------------------------------------------- gradient-norm history


def test_grad_norm_history_flags_planted_steps():
    hist = optim.GradNormHistory(ratio=10)  # vanishing < 1e-6, exploding > 1e3 or 10x median
    lin = rnnkit.Linear(4, 3, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    for step in range(20):
        lin.zero_grad()
        scale = {7: 1e5, 12: 1e-9, 16: 40.0}.get(step, 1.0)
        for g in lin.grads.values():
            g += scale * rng.standard_normal(g.shape) / 4
        total = hist.record(lin)
        assert total == pytest.approx(math.sqrt(sum((g**2).sum() for g in lin.grads.values())))
    assert len(hist) == 20 and hist.total.shape == (20,)
    assert set(hist.per_param) == {"weight", "bias"}
    assert hist.per_param["weight"].shape == (20,)
    assert hist.vanishing_steps == [12]
    assert hist.exploding_steps == [7, 16]  # 16: 40x the recent median, below 1e3
    text = hist.summary()
    assert "vanishing steps" in text and "12 (" in text
    assert "exploding steps" in text and "7 (" in text and "16 (" in text
    quiet = optim.GradNormHistory()  # the ratio rule is off by default
    for t in hist.total:
        quiet.record([np.array([t])])
    assert quiet.exploding_steps == [7]


def test_grad_norm_history_nonfinite_and_names():
    hist = optim.GradNormHistory()
    hist.record({"a": np.ones(4)})
    hist.record({"a": np.array([np.nan]), "b": np.ones(1)})
    assert hist.exploding_steps == [1]
    assert np.isnan(hist.per_param["b"][0]) and hist.per_param["b"][1] == 1.0
    assert "no vanishing steps" in hist.summary()
    assert optim.GradNormHistory().summary() == "GradNormHistory: no steps recorded"


def test_grad_norm_history_plot(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    hist = optim.GradNormHistory()
    for s in (1.0, 2.0, 1e-8, 1e4):
        hist.record([s * np.ones(3)])
    path = tmp_path / "norms.png"
    ax = hist.plot(path, per_param=True)
    assert path.stat().st_size > 0 and ax.get_yscale() == "log"
    import matplotlib.pyplot as plt

    plt.close("all")


def test_layer_parameters_list_like_pytorch():
    """Adam(m.parameters()) (bare arrays, PyTorch's idiom) finds each array's layer grad and
    steps exactly like Adam(m); an array that belongs to no layer is a clear TypeError."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3))
    a = rnnkit.LSTM(3, 4, num_layers=2, dtype="float64", seed=0)
    b = rnnkit.LSTM(3, 4, num_layers=2, dtype="float64", seed=0)
    head_a = rnnkit.Linear(4, 2, dtype="float64", seed=1)
    head_b = rnnkit.Linear(4, 2, dtype="float64", seed=1)
    opt_a = optim.Adam(a.parameters() + head_a.parameters(), lr=0.1)
    opt_b = optim.Adam([b, head_b], lr=0.1)
    for _ in range(3):
        for m, head, opt in ((a, head_a, opt_a), (b, head_b, opt_b)):
            opt.zero_grad()
            y, _ = m(x)
            head(y)
            m.backward(head.backward(np.ones((5, 2, 2))))
            opt.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q, err_msg=n)
    np.testing.assert_array_equal(head_a.weight, head_b.weight)
    with pytest.raises(TypeError, match=r"params\[0\]: an array that is not a parameter"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[0\]: an array that is not a parameter"):
        optim.SGD([a.parameters()[0].copy()], lr=0.1)
