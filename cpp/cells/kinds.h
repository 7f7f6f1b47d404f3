// The cells the kernels know, as data: one row per cell. The bindings read it to name the
// Python enum values and to know which arrays a cell needs; cells.h maps each kind to its
// step functions. Adding a cell adds a row here (no SIMD code, no pybind11 in this file).
#pragma once

namespace rnnkit {

enum class Cell : int { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3, kMgu = 4 };

struct CellInfo {
  Cell id;
  const char* name;  // the Python enum value: rnnkit._core.Cell.<name>
  int gates;         // G: w_ih has G*H rows
  bool cell_state;   // carries c (c0, c, dc_n, dc0)
  bool peep_proj;    // may have peepholes w_peep[3, H] and a projection w_proj[P, H]
  bool hn_cache;     // keeps hn[T, B, H], the hidden part of a gate's pre-activation
};

inline constexpr CellInfo kCells[] = {
    {Cell::kRnnTanh, "RNN_TANH", 1, false, false, false},
    {Cell::kRnnRelu, "RNN_RELU", 1, false, false, false},
    {Cell::kLstm, "LSTM", 4, true, true, false},
    {Cell::kGru, "GRU", 3, false, false, true},
    {Cell::kMgu, "MGU", 2, false, false, false},
};

// The row of a cell, or null for a value outside the enum.
inline const CellInfo* find_cell(Cell c) {
  for (const CellInfo& info : kCells)
    if (info.id == c) return &info;
  return nullptr;
}

}  // namespace rnnkit
