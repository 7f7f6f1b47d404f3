"""from_onnx on models shaped like real exports: weights produced by constant subgraphs
(Constant -> Unsqueeze, Identity, Cast, Reshape, Transpose, Concat) and recurrent nodes inside
If branches two levels deep, with several recurrent nodes selected by name. Each model is also
run by onnxruntime, the oracle, where it is installed."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from rnnkit import convert  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

T, B, I, H = 5, 2, 3, 4


def rand(shape, seed):
    return (np.random.default_rng(seed).standard_normal(shape) * 0.5).astype(np.float32)


def const(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


def lstm_weights(seed):
    return rand((1, 4 * H, I), seed), rand((1, 4 * H, H), seed + 1), rand((1, 8 * H), seed + 2)


def model(graph, opset=17):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def run_ort(m, feeds):
    if ort is None:
        pytest.skip("onnxruntime is not installed")
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def x_info():
    return helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I])


def y_info(name="Y"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["T", "D", "B", "H"])


def test_weights_from_constant_subgraphs():
    W, R, Bias = lstm_weights(0)
    nodes = [
        const("W2", W[0]),  # [4H, I] -> Unsqueeze(axes input) -> [1, 4H, I]
        const("axes0", np.array([0], np.int64)),
        helper.make_node("Unsqueeze", ["W2", "axes0"], ["W"]),
        helper.make_node("Identity", ["R_init"], ["R"]),
        const("B64", Bias.astype(np.float64)),
        helper.make_node("Cast", ["B64"], ["B"], to=TensorProto.FLOAT),
        helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=H),
    ]
    g = helper.make_graph(
        nodes, "g", [x_info()], [y_info()], initializer=[numpy_helper.from_array(R, "R_init")]
    )
    m = model(g)
    layer = convert.from_onnx(m)
    want = convert.from_onnx(
        helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=H),
        weights={"W": W, "R": R, "B": Bias},
    )
    for k, v in want.weights[0].items():
        np.testing.assert_array_equal(layer.weights[0][k], v)
    x = rand((T, B, I), 9)
    Y, _, _ = convert.onnx_forward(layer, x)
    (Y_ort,) = run_ort(m, {"X": x})
    np.testing.assert_allclose(Y, Y_ort, rtol=1e-5, atol=1e-6)


def test_reshape_transpose_concat_and_opset11_unsqueeze():
    W, R, Bias = lstm_weights(3)
    nodes = [
        const("Wt", np.ascontiguousarray(W[0].T)),  # [I, 4H] -> Transpose -> [4H, I]
        helper.make_node("Transpose", ["Wt"], ["Wn"], perm=[1, 0]),
        helper.make_node("Unsqueeze", ["Wn"], ["W"], axes=[0]),  # opset 11: axes attribute
        const("Rflat", R.reshape(-1)),
        const("Rshape", np.array([1, 4 * H, -1], np.int64)),
        helper.make_node("Reshape", ["Rflat", "Rshape"], ["R"]),
        const("Bw", Bias[:, : 4 * H]),
        const("Br", Bias[:, 4 * H :]),
        helper.make_node("Concat", ["Bw", "Br"], ["B"], axis=1),
        helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=H),
    ]
    m = model(helper.make_graph(nodes, "g", [x_info()], [y_info()]), opset=11)
    layer = convert.from_onnx(m)
    x = rand((T, B, I), 4)
    (Y_ort,) = run_ort(m, {"X": x})
    np.testing.assert_allclose(convert.onnx_forward(layer, x)[0], Y_ort, rtol=1e-5, atol=1e-6)


def nested_if_model():
    """outer If(c1): then -> inner If(c2): then LSTM, else GRU; else Identity(X). The LSTM's
    weights are initializers of the main graph; the GRU's come from Constants in its branch."""
    W, R, Bias = lstm_weights(10)
    Wg, Rg = rand((1, 3 * H, I), 20), rand((1, 3 * H, H), 21)
    lstm_branch = helper.make_graph(
        [
            helper.make_node("Identity", ["W_init"], ["W_l"]),
            helper.make_node(
                "LSTM", ["X", "W_l", "R_init", "B_init"], ["Y_l"], hidden_size=H, name="speech_lstm"
            ),
        ],
        "lstm_branch",
        [],
        [y_info("Y_l")],
    )
    gru_branch = helper.make_graph(
        [
            const("W_g", Wg),
            const("R_g", Rg),
            helper.make_node("GRU", ["X", "W_g", "R_g"], ["Y_g"], hidden_size=H),
        ],
        "gru_branch",
        [],
        [y_info("Y_g")],
    )
    inner = helper.make_graph(
        [helper.make_node("If", ["c2"], ["Y_in"], then_branch=lstm_branch, else_branch=gru_branch)],
        "inner",
        [],
        [y_info("Y_in")],
    )
    other = helper.make_graph(
        [helper.make_node("Unsqueeze", ["X"], ["Y_x"], axes=[1])], "other", [], [y_info("Y_x")]
    )
    g = helper.make_graph(
        [helper.make_node("If", ["c1"], ["Y"], then_branch=inner, else_branch=other)],
        "g",
        [
            x_info(),
            helper.make_tensor_value_info("c1", TensorProto.BOOL, []),
            helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
        ],
        [y_info()],
        initializer=[
            numpy_helper.from_array(a, n)
            for a, n in ((W, "W_init"), (R, "R_init"), (Bias, "B_init"))
        ],
    )
    return model(g, opset=11)


def test_recurrent_nodes_inside_if_branches():
    m = nested_if_model()
    with pytest.raises(
        ValueError,
        match=r"found 2: 'If_0.then_branch/If_0.else_branch/GRU_2' "
        r"\(GRU\), 'If_0.then_branch/If_0.then_branch/"
        r"speech_lstm' \(LSTM\); choose one with name=",
    ):
        convert.from_onnx(m)
    with pytest.raises(ValueError, match="name: no RNN, GRU or LSTM node called 'nope'"):
        convert.from_onnx(m, name="nope")
    x = rand((T, B, I), 5)
    lstm = convert.from_onnx(m, name="speech_lstm")
    assert lstm.cell == "lstm"
    (Y_ort,) = run_ort(m, {"X": x, "c1": np.array(True), "c2": np.array(True)})
    np.testing.assert_allclose(convert.onnx_forward(lstm, x)[0], Y_ort, rtol=1e-5, atol=1e-6)
    gru = convert.from_onnx(m, name="If_0.then_branch/If_0.else_branch/GRU_2")
    assert gru.cell == "gru"
    (Y_ort,) = run_ort(m, {"X": x, "c1": np.array(True), "c2": np.array(False)})
    np.testing.assert_allclose(convert.onnx_forward(gru, x)[0], Y_ort, rtol=1e-5, atol=1e-6)


def test_no_recurrent_node_and_unfoldable_input():
    g = helper.make_graph(
        [helper.make_node("Unsqueeze", ["X"], ["Y"], axes=[1])], "g", [x_info()], [y_info()]
    )
    with pytest.raises(ValueError, match="expected one RNN, GRU or LSTM node, found 0$"):
        convert.from_onnx(model(g, opset=11))
    # W computed from the graph's input: not a constant, so it must come from `weights`.
    _, R, _ = lstm_weights(0)
    g = helper.make_graph(
        [
            helper.make_node("Identity", ["Wx"], ["W"]),
            helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=H),
        ],
        "g",
        [x_info(), helper.make_tensor_value_info("Wx", TensorProto.FLOAT, [1, 4 * H, I])],
        [y_info()],
        initializer=[numpy_helper.from_array(R, "R")],
    )
    with pytest.raises(ValueError, match=r"expected an array for W \('W'\), none given"):
        convert.from_onnx(model(g))
    W = lstm_weights(0)[0]
    layer = convert.from_onnx(model(g), weights={"W": W})
    assert layer.weights[0]["w_ih"].shape == (4 * H, I)
