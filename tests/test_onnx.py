"""ONNX conformance of rnnkit (both backends) and of rnnkit.convert.

1. The ONNX backend node test cases for RNN, GRU and LSTM, regenerated from the installed onnx
   package (onnx.backend.test.case.node), through from_onnx + onnx_forward.
2. Random one-node models over direction (forward/reverse/bidirectional), linear_before_reset,
   peepholes, clip, input_forget, sequence_lens and layout: rnnkit against a spec-faithful NumPy
   implementation (tests/onnx_spec.py) always, and against onnxruntime where it runs the model.
   (onnx.reference.ReferenceEvaluator ignores clip, sequence_lens, input_forget and activations,
   so it is no oracle for them.)
3. Converters: exact round trips, and onnxruntime running an exported model.
Skipped when onnx (or onnxruntime, for the parts that need it) is not installed."""

import importlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
import onnx_spec  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import rnnkit  # noqa: E402
import rnnkit.reference  # noqa: E402
from rnnkit import convert  # noqa: E402

try:
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # its own errors are expected for unsupported models
except ImportError:  # pragma: no cover
    ort = None

BACKENDS = {"native": rnnkit, "reference": rnnkit.reference}


# ------------------------------------------------------------------------------------------
# 1. ONNX backend node test cases


def collect_node_cases():
    cases = []
    for mod_name in ("rnn", "gru", "lstm"):
        mod = importlib.import_module(f"onnx.backend.test.case.node.{mod_name}")
        saved = mod.expect

        def grab(node, inputs, outputs, name, **kwargs):
            cases.append((name, node, inputs, outputs))

        mod.expect = grab
        try:
            for cls in vars(mod).values():
                if isinstance(cls, type) and cls.__module__ == mod.__name__:
                    for attr in dir(cls):
                        if attr.startswith("export"):
                            getattr(cls, attr)()
        finally:
            mod.expect = saved
    return cases


NODE_CASES = collect_node_cases()


def test_node_cases_were_found():
    names = {c[0] for c in NODE_CASES}
    assert len(NODE_CASES) >= 15, names
    assert {"test_lstm_defaults", "test_gru_defaults", "test_simple_rnn_defaults"} <= names


def run_node(node, inputs, backend):
    named = dict(zip(node.input, inputs))
    layer = convert.from_onnx(node, weights={k: v for k, v in named.items() if k})
    slot = list(node.input) + [""] * 8

    def at(i):
        return named.get(slot[i]) if slot[i] else None

    Y, Y_h, Y_c = convert.onnx_forward(
        layer,
        at(0),
        sequence_lens=at(4),
        initial_h=at(5),
        initial_c=at(6) if layer.cell == "lstm" else None,
        backend=backend,
    )
    return dict(zip(["Y", "Y_h", "Y_c"], [Y, Y_h, Y_c]))


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("case", NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_onnx_node_case(case, backend):
    name, node, inputs, outputs = case
    got = run_node(node, inputs, BACKENDS[backend])
    # `outputs` holds the values of the node's non-empty outputs, in order
    present = [(pos, n) for pos, n in enumerate(node.output) if n]
    assert len(present) == len(outputs)
    checked = 0
    for (pos, _), expected in zip(present, outputs):
        key = {0: "Y", 1: "Y_h", 2: "Y_c"}[pos]
        np.testing.assert_allclose(
            got[key], expected, rtol=1e-5, atol=1e-6, err_msg=f"{name} {key}"
        )
        checked += 1
    assert checked >= 1


# ------------------------------------------------------------------------------------------
# 2. Random one-node models


def random_config(i):
    rng = np.random.default_rng(1000 + i)
    cell = ["rnn", "gru", "lstm"][i % 3]
    c = {
        "cell": cell,
        "direction": ["forward", "reverse", "bidirectional"][(i // 3) % 3],
        "layout": int(rng.integers(2)),
        "T": int(rng.integers(1, 7)),
        "B": int(rng.integers(1, 5)),
        "I": int(rng.integers(1, 9)),
        "H": int(rng.integers(1, 9)),
        "seq_lens": bool(rng.integers(2)),
        "bias": bool(rng.integers(4) > 0),
        "clip": float(rng.uniform(0.3, 2.0)) if rng.integers(3) == 0 else None,
        "dtype": [np.float32, np.float64][int(rng.integers(2))],
    }
    if cell == "rnn":
        c["nonlinearity"] = ["tanh", "relu"][int(rng.integers(2))]
    if cell == "gru":
        c["linear_before_reset"] = bool(rng.integers(2))
    if cell == "lstm":
        c["peep"] = bool(rng.integers(2))
        c["input_forget"] = bool(rng.integers(3) == 0)
    return c


N_RANDOM = 90
RANDOM = [random_config(i) for i in range(N_RANDOM)]


def for_onnxruntime(c):
    """The same configuration in the form onnxruntime's CPU kernels accept: float32, layout 0
    (they reject float64 and batch-major layout). Its lengths are >= 1: for a length-0 sequence
    onnxruntime returns Y_h = 0 where API.md (and PyTorch's packed sequences) keep the initial
    state; the spec tests cover length 0."""
    return dict(c, dtype=np.float32, layout=0, min_len=1)


def build(c, seed):
    rng = np.random.default_rng(seed)
    G = {"rnn": 1, "gru": 3, "lstm": 4}[c["cell"]]
    H, I, dt = c["H"], c["I"], c["dtype"]
    D = 2 if c["direction"] == "bidirectional" else 1
    r = lambda *s: (rng.standard_normal(s) * 0.6).astype(dt)  # noqa: E731
    dirs = []
    for _ in range(D):
        w = {
            "w_ih": r(G * H, I),
            "w_hh": r(G * H, H),
            "b_ih": r(G * H) if c["bias"] else None,
            "b_hh": r(G * H) if c["bias"] else None,
        }
        if c["cell"] == "lstm":
            w["w_peep"] = r(3, H) if c["peep"] else None
        dirs.append(w)
    kw = {
        "direction": c["direction"],
        "layout": c["layout"],
        "clip": c["clip"],
        "with_sequence_lens": c["seq_lens"],
    }
    for k in ("nonlinearity", "linear_before_reset", "input_forget"):
        if k in c:
            kw[k] = c[k]
    model = convert.to_onnx(c["cell"], dirs if D == 2 else dirs[0], **kw)
    T, Bn = c["T"], c["B"]
    X = r(T, Bn, I) if c["layout"] == 0 else r(Bn, T, I)
    state = (D, Bn, H) if c["layout"] == 0 else (Bn, D, H)
    feeds = {"X": X, "initial_h": r(*state)}
    if c["cell"] == "lstm":
        feeds["initial_c"] = r(*state)
    if c["seq_lens"]:
        lens = rng.integers(c.get("min_len", 0), T + 1, size=Bn).astype(np.int32)
        lens[0] = T
        lens[-1] = max(1, lens[-1])
        feeds["sequence_lens"] = lens
    return model, feeds


def spec_outputs(model, feeds, c):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    acts = None
    if c["cell"] == "rnn":
        acts = [{"tanh": "Tanh", "relu": "Relu"}[c["nonlinearity"]]]
    clip = convert.from_onnx(model).options.get("clip")  # as stored: ONNX floats are float32
    return onnx_spec.run(
        {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[c["cell"]],
        feeds["X"],
        inits["W"],
        inits["R"],
        inits.get("B"),
        feeds.get("sequence_lens"),
        feeds["initial_h"],
        feeds.get("initial_c"),
        inits.get("P"),
        direction=c["direction"],
        layout=c["layout"],
        clip=clip,
        input_forget=int(c.get("input_forget", False)),
        linear_before_reset=int(c.get("linear_before_reset", False)),
        activations=acts,
    )


def tol(c):
    return (1e-10, 1e-12) if c["dtype"] == np.float64 else (1e-4, 1e-5)


def describe(c):
    keys = [
        "cell",
        "direction",
        "layout",
        "seq_lens",
        "clip",
        "peep",
        "input_forget",
        "linear_before_reset",
        "nonlinearity",
    ]
    return "-".join(f"{k}={c[k]}" for k in keys if k in c and c[k] not in (None, False))


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize(
    "i", range(N_RANDOM), ids=[f"{i}:{describe(c)}" for i, c in enumerate(RANDOM)]
)
def test_random_model_matches_spec(i, backend):
    c = RANDOM[i]
    model, feeds = build(c, seed=i)
    layer = convert.from_onnx(model)
    got = convert.onnx_forward(
        layer,
        feeds["X"],
        feeds.get("sequence_lens"),
        feeds["initial_h"],
        feeds.get("initial_c"),
        backend=BACKENDS[backend],
    )
    want = spec_outputs(model, feeds, c)
    rtol, atol = tol(c)
    for k, name in enumerate(["Y", "Y_h", "Y_c"]):
        if c["cell"] != "lstm" and name == "Y_c":
            continue
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=name)


def ort_outputs(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.skipif(ort is None, reason="onnxruntime not installed")
@pytest.mark.parametrize(
    "i", range(N_RANDOM), ids=[f"{i}:{describe(c)}" for i, c in enumerate(RANDOM)]
)
def test_random_model_matches_onnxruntime(i):
    c = for_onnxruntime(RANDOM[i])
    model, feeds = build(c, seed=i)
    want = ort_outputs(model, feeds)  # every attribute here is one onnxruntime implements
    layer = convert.from_onnx(model)
    got = convert.onnx_forward(
        layer, feeds["X"], feeds.get("sequence_lens"), feeds["initial_h"], feeds.get("initial_c")
    )
    assert len(want) == (3 if c["cell"] == "lstm" else 2)
    for k, name in enumerate(["Y", "Y_h", "Y_c"][: len(want)]):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=name)


# ------------------------------------------------------------------------------------------
# 3. Converters


@pytest.mark.parametrize("i", range(0, N_RANDOM, 5))
def test_round_trip_is_exact(i):
    c = RANDOM[i]
    model, _ = build(c, seed=i)
    layer = convert.from_onnx(model)
    again = convert.from_onnx(
        convert.to_onnx(
            c["cell"],
            list(layer.weights) if len(layer.weights) == 2 else layer.weights[0],
            direction=layer.direction,
            layout=layer.layout,
            **{k: v for k, v in layer.options.items()},
        )
    )
    assert again.options == layer.options and again.direction == layer.direction
    for a, b in zip(layer.weights, again.weights):
        assert a.keys() == b.keys()
        for k in a:
            if a[k] is None:
                assert b[k] is None
            else:
                assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def test_gate_orders_by_hand():
    """An LSTM whose rnnkit gate blocks are 0, 1, 2, 3 lands in ONNX order i, o, f, c."""
    H = 2
    w = {
        "w_ih": np.repeat(np.arange(4.0), H)[:, None],
        "w_hh": np.zeros((4 * H, H)),
        "b_ih": np.repeat(np.arange(4.0), H),
        "b_hh": np.repeat(np.arange(4.0) + 10, H),
        "w_peep": np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]),
    }
    m = convert.to_onnx("lstm", w)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    assert inits["W"][0, :, 0].tolist() == [0, 0, 3, 3, 1, 1, 2, 2]
    assert inits["B"][0].tolist() == [0, 0, 3, 3, 1, 1, 2, 2, 10, 10, 13, 13, 11, 11, 12, 12]
    assert inits["P"][0].tolist() == [0, 0, 2, 2, 1, 1]
    g = convert.to_onnx(
        "gru",
        {
            "w_ih": np.repeat(np.arange(3.0), H)[:, None],
            "w_hh": np.zeros((3 * H, H)),
            "b_ih": None,
            "b_hh": None,
        },
    )
    assert numpy_helper.to_array(g.graph.initializer[0])[0, :, 0].tolist() == [1, 1, 0, 0, 2, 2]


def test_from_onnx_errors():
    with pytest.raises(TypeError, match="node_or_model: expected an onnx ModelProto or NodeProto"):
        convert.from_onnx(42)  # (a path is read: tests/test_hardening.py)
    node = onnx.helper.make_node(
        "LSTM", ["X", "W", "R"], ["Y"], hidden_size=2, activations=["Sigmoid", "Relu", "Tanh"]
    )
    w = {"W": np.zeros((1, 8, 3), np.float32), "R": np.zeros((1, 8, 2), np.float32)}
    with pytest.raises(NotImplementedError, match="activations"):
        convert.from_onnx(node, w)
    with pytest.raises(ValueError, match="weights: expected an array for R"):
        convert.from_onnx(
            onnx.helper.make_node("GRU", ["X", "W", "R"], ["Y"], hidden_size=2),
            {"W": np.zeros((1, 6, 3), np.float32)},
        )
