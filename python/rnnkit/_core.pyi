"""Type stubs for the private native module `rnnkit._core` (cpp/bindings.cpp).

Use the public functions in `rnnkit` instead: they validate arguments and allocate outputs.
"""

from typing import Optional

import numpy as np

CELL_RNN_TANH: int
CELL_RNN_RELU: int
CELL_LSTM: int
CELL_GRU: int
build_info: dict

def forward(
    cell: int, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
    b_ih: Optional[np.ndarray], b_hh: Optional[np.ndarray], h0: np.ndarray,
    c0: Optional[np.ndarray], w_peep: Optional[np.ndarray], w_proj: Optional[np.ndarray],
    lengths: Optional[np.ndarray], reverse: bool, input_forget: bool,
    linear_before_reset: bool, clip: float,
    y: np.ndarray, h: np.ndarray, c: Optional[np.ndarray], gates: np.ndarray,
    hn: Optional[np.ndarray], clip_mask: Optional[np.ndarray],
) -> None: ...
def backward(
    cell: int, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
    w_peep: Optional[np.ndarray], w_proj: Optional[np.ndarray], lengths: Optional[np.ndarray],
    reverse: bool, input_forget: bool, linear_before_reset: bool, clip: float,
    h: np.ndarray, c: Optional[np.ndarray], gates: np.ndarray, hn: Optional[np.ndarray],
    clip_mask: Optional[np.ndarray], dy: np.ndarray, dh_n: np.ndarray, dc_n: Optional[np.ndarray],
    dx: np.ndarray, dh0: np.ndarray, dc0: Optional[np.ndarray], dw_ih: np.ndarray,
    dw_hh: np.ndarray, db_ih: Optional[np.ndarray], db_hh: Optional[np.ndarray],
    dw_peep: Optional[np.ndarray], dw_proj: Optional[np.ndarray],
) -> None: ...
def _math_eval(fn: str, x: np.ndarray) -> np.ndarray: ...
def _gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray: ...
def simd_targets() -> list[str]: ...
def compiled_targets() -> list[str]: ...
def get_simd_target() -> str: ...
def set_simd_target(name: str) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def default_num_threads() -> int: ...
