"""A spec-faithful NumPy implementation of the ONNX RNN, GRU and LSTM operators, written from
the operator definitions with ONNX's gate orders (LSTM i, o, f, c; GRU z, r, h; peepholes
i, o, f), independent of rnnkit. It implements what onnx.reference ignores: clip (applied to
every gate's input before its activation), input_forget (f = 1 - i), sequence_lens (each
sequence runs over its own length, reverse included; Y is zero past the length; Y_h is the
last valid state) and layout. One batch row at a time, for clarity."""

import numpy as np


def _sig(a):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


def _clip(a, clip):
    return a if clip is None else np.clip(a, -clip, clip)


def run(
    op,
    X,
    W,
    R,
    B=None,
    sequence_lens=None,
    initial_h=None,
    initial_c=None,
    P=None,
    *,
    direction="forward",
    layout=0,
    clip=None,
    input_forget=0,
    linear_before_reset=0,
    activations=None,
):
    if layout == 1:
        X = np.swapaxes(X, 0, 1)
        initial_h = None if initial_h is None else np.swapaxes(initial_h, 0, 1)
        initial_c = None if initial_c is None else np.swapaxes(initial_c, 0, 1)
    T, Bn, _ = X.shape
    D, GH, _ = W.shape
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    H = GH // G
    dt = X.dtype
    if B is None:
        B = np.zeros((D, 2 * GH), dt)
    lens = np.full(Bn, T) if sequence_lens is None else np.asarray(sequence_lens)
    h0 = np.zeros((D, Bn, H), dt) if initial_h is None else initial_h
    c0 = np.zeros((D, Bn, H), dt) if initial_c is None else initial_c
    Pm = np.zeros((D, 3 * H), dt) if P is None else P
    act = "Tanh" if not activations else activations[0]
    Y = np.zeros((T, D, Bn, H), dt)
    Yh = np.zeros((D, Bn, H), dt)
    Yc = np.zeros((D, Bn, H), dt)
    for d in range(D):
        rev = direction == "reverse" or d == 1
        Wb, Rb = B[d, :GH], B[d, GH:]
        for b in range(Bn):
            h, c = h0[d, b].copy(), c0[d, b].copy()
            n = int(lens[b])
            for s in range(n):
                t = n - 1 - s if rev else s
                x = X[t, b]
                if op == "RNN":
                    a = _clip(x @ W[d].T + h @ R[d].T + Wb + Rb, clip)
                    h = np.tanh(a) if act == "Tanh" else np.maximum(a, 0)
                elif op == "GRU":
                    xw, hr = x @ W[d].T + Wb, h @ R[d].T
                    z = _sig(_clip(xw[:H] + hr[:H] + Rb[:H], clip))
                    r = _sig(_clip(xw[H : 2 * H] + hr[H : 2 * H] + Rb[H : 2 * H], clip))
                    if linear_before_reset:
                        hh = np.tanh(_clip(xw[2 * H :] + r * (hr[2 * H :] + Rb[2 * H :]), clip))
                    else:
                        hh = np.tanh(
                            _clip(xw[2 * H :] + (r * h) @ R[d][2 * H :].T + Rb[2 * H :], clip)
                        )
                    h = (1 - z) * hh + z * h
                else:
                    a = x @ W[d].T + Wb + h @ R[d].T + Rb  # blocks i, o, f, c
                    pi, po, pf = Pm[d, :H], Pm[d, H : 2 * H], Pm[d, 2 * H :]
                    i = _sig(_clip(a[:H] + pi * c, clip))
                    f = 1 - i if input_forget else _sig(_clip(a[2 * H : 3 * H] + pf * c, clip))
                    g = np.tanh(_clip(a[3 * H :], clip))
                    c = f * c + i * g
                    o = _sig(_clip(a[H : 2 * H] + po * c, clip))
                    h = o * np.tanh(c)
                Y[t, d, b] = h
            Yh[d, b], Yc[d, b] = h, c
    if layout == 1:
        return np.transpose(Y, (2, 0, 1, 3)), np.swapaxes(Yh, 0, 1), np.swapaxes(Yc, 0, 1)
    return Y, Yh, Yc
