// The boundary between the bindings and the per-ISA kernels: argument structs (validated raw
// pointers and sizes) and the table of entry points each target fills in. No pybind11 here.
#pragma once

#include "common.h"

namespace rnnkit {

enum CellKind : int { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3 };

// Forward over one sequence batch. Optional pointers are null when absent.
template <class T>
struct FwdArgs {
  int cell;
  Dims d;
  const T* x;       // [T, B, I]
  const T* w_ih;    // [G*H, I]
  const T* w_hh;    // [G*H, P]
  const T* b_ih;    // [G*H] or null
  const T* b_hh;    // [G*H] or null
  const T* h0;      // [B, P]
  const T* c0;      // [B, H] (LSTM)
  const T* w_peep;  // [3, H] or null (LSTM)
  const T* w_proj;  // [P, H] or null (LSTM)
  const i64* lengths;  // [B] or null
  bool reverse, input_forget, linear_before_reset;
  T clip;  // > 0 to clip, 0 otherwise
  // outputs (all fully written; y is zero past each length)
  T* y;      // [T, B, P]
  T* h;      // [T+1, B, P]
  T* c;      // [T+1, B, H] (LSTM)
  T* gates;  // [T, B, G*H]
  T* hn;     // [T, B, H] (GRU)
  std::uint8_t* clip_mask;  // [T, B, G*H] when clipping
  int n_threads;
};

template <class T>
struct BwdArgs {
  int cell;
  Dims d;
  const T* x;
  const T* w_ih;
  const T* w_hh;
  const T* w_peep;
  const T* w_proj;
  const i64* lengths;
  bool reverse, input_forget, linear_before_reset;
  T clip;
  const T* h;      // [T+1, B, P]
  const T* c;      // [T+1, B, H]
  const T* gates;  // [T, B, G*H]
  const T* hn;     // [T, B, H]
  const std::uint8_t* clip_mask;
  const T* dy;     // [T, B, P]
  const T* dh_n;   // [B, P]
  const T* dc_n;   // [B, H]
  // outputs; the optional ones are null when that parameter is absent
  T* dx;       // [T, B, I]
  T* dh0;      // [B, P]
  T* dc0;      // [B, H]
  T* dw_ih;    // [G*H, I]
  T* dw_hh;    // [G*H, P]
  T* db_ih;    // [G*H]
  T* db_hh;    // [G*H]
  T* dw_peep;  // [3, H]
  T* dw_proj;  // [P, H]
  int n_threads;
};

// One target's entry points. Workspace sizes are in elements of T; the workspace passed in
// must be 64-byte aligned and at least that large.
struct KernelTable {
  const char* name;
  i64 (*fwd_workspace_f32)(const FwdArgs<float>&);
  void (*fwd_f32)(const FwdArgs<float>&, float* ws);
  i64 (*bwd_workspace_f32)(const BwdArgs<float>&);
  void (*bwd_f32)(const BwdArgs<float>&, float* ws);
  i64 (*fwd_workspace_f64)(const FwdArgs<double>&);
  void (*fwd_f64)(const FwdArgs<double>&, double* ws);
  i64 (*bwd_workspace_f64)(const BwdArgs<double>&);
  void (*bwd_f64)(const BwdArgs<double>&, double* ws);
  void (*math_f32)(int fn, const float* x, float* y, i64 n);
  void (*math_f64)(int fn, const double* x, double* y, i64 n);
  // C[M,N] = A[M,K] B[K,N], all row-major contiguous: exposed for tests and the benchmark.
  void (*gemm_f32)(i64 M, i64 N, i64 K, const float* A, const float* B, float* C, float* ws, int nth);
  void (*gemm_f64)(i64 M, i64 N, i64 K, const double* A, const double* B, double* C, double* ws, int nth);
  i64 (*gemm_workspace_f32)(i64 M, i64 N, i64 K, int nth);
  i64 (*gemm_workspace_f64)(i64 M, i64 N, i64 K, int nth);
};

}  // namespace rnnkit
