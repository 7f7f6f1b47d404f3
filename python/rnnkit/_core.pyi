"""Type stubs for the private native module `rnnkit._core` (cpp/bindings.cpp).

Use the public functions in `rnnkit` instead: they validate arguments and allocate outputs.
`forward` and `backward` take keyword arguments only; outputs are written in place. An array
a cell does not have (``c`` without a cell state, ``hn`` outside the GRU, ...) is ignored.
"""

import enum
from typing import Any, Optional, Union, overload

import numpy as np

class Cell(enum.Enum):  # cpp/cells/kinds.h
    RNN_TANH = 0
    RNN_RELU = 1
    LSTM = 2
    GRU = 3
    MGU = 4

class MathFn(enum.Enum):  # cpp/simd/math.h
    EXP = 0
    SIGMOID = 1
    TANH = 2

build_info: dict

def forward(
    *,
    cell: Cell,
    x: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray] = None,
    b_hh: Optional[np.ndarray] = None,
    h0: np.ndarray,
    c0: Optional[np.ndarray] = None,
    w_peep: Optional[np.ndarray] = None,
    w_proj: Optional[np.ndarray] = None,
    lengths: Optional[np.ndarray] = None,
    reverse: bool = False,
    input_forget: bool = False,
    linear_before_reset: bool = True,
    clip: float = 0.0,
    y: np.ndarray,
    h: np.ndarray,
    c: Optional[np.ndarray] = None,
    gates: np.ndarray,
    hn: Optional[np.ndarray] = None,
    clip_mask: Optional[np.ndarray] = None,
    resets: Optional[np.ndarray] = None,
    zoneout: Optional[np.ndarray] = None,
    zoneout_c: Optional[np.ndarray] = None,
    recurrent_mask: Optional[np.ndarray] = None,
) -> None: ...
def backward(
    *,
    cell: Cell,
    x: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    w_peep: Optional[np.ndarray] = None,
    w_proj: Optional[np.ndarray] = None,
    lengths: Optional[np.ndarray] = None,
    reverse: bool = False,
    input_forget: bool = False,
    linear_before_reset: bool = True,
    clip: float = 0.0,
    h: np.ndarray,
    c: Optional[np.ndarray] = None,
    gates: np.ndarray,
    hn: Optional[np.ndarray] = None,
    clip_mask: Optional[np.ndarray] = None,
    dy: np.ndarray,
    dh_n: np.ndarray,
    dc_n: Optional[np.ndarray] = None,
    dx: np.ndarray,
    dh0: np.ndarray,
    dc0: Optional[np.ndarray] = None,
    dw_ih: np.ndarray,
    dw_hh: np.ndarray,
    db_ih: Optional[np.ndarray] = None,
    db_hh: Optional[np.ndarray] = None,
    dw_peep: Optional[np.ndarray] = None,
    dw_proj: Optional[np.ndarray] = None,
    resets: Optional[np.ndarray] = None,
    zoneout: Optional[np.ndarray] = None,
    zoneout_c: Optional[np.ndarray] = None,
    recurrent_mask: Optional[np.ndarray] = None,
) -> None: ...

class Stream:  # cpp/stream.cpp; made by rnnkit.stream.Stream (layer.stream())
    def __init__(
        self,
        *,
        cell: Cell,
        layers: list[
            tuple[
                np.ndarray,
                np.ndarray,
                Optional[np.ndarray],
                Optional[np.ndarray],
                Optional[np.ndarray],
                Optional[np.ndarray],
            ]
        ],
        batch_size: int,
        input_forget: bool = False,
        linear_before_reset: bool = True,
        clip: float = 0.0,
        bfloat16: bool = False,
        zoneout: float = 0.0,
        slow_check: Any,
    ) -> None: ...
    def step(self, x_t: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray: ...
    def run(self, x: np.ndarray) -> np.ndarray: ...
    def state(self) -> tuple[np.ndarray, Optional[np.ndarray]]: ...
    def set_state(self, h: Optional[np.ndarray], c: Optional[np.ndarray]) -> None: ...

def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray: ...
def pool_info() -> dict[str, int]: ...
def set_pool_limit(limit_bytes: int) -> None: ...
def _math_eval(fn: Union[MathFn, str], x: np.ndarray) -> np.ndarray: ...
@overload
def _gemm(a: np.ndarray, b: np.ndarray, b2: None = None) -> np.ndarray: ...
@overload
def _gemm(a: np.ndarray, b: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
def simd_targets() -> list[str]: ...
def compiled_targets() -> list[str]: ...
def get_simd_target() -> str: ...
def set_simd_target(name: str) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def default_num_threads() -> int: ...
