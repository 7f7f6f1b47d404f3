// The boundary between the bindings and the per-ISA kernels: argument structs (validated raw
// pointers and sizes) and the table of entry points each target fills in, one part per dtype.
// No pybind11 here. Arrays are C-contiguous; row b of an array [B, X] is `p + b * X`.
// Inputs never alias outputs; outputs never alias each other.
#pragma once

#include "cells/kinds.h"
#include "common.h"

namespace rnnkit {

// The element-wise functions of simd/math.h, exposed for the accuracy tests.
enum class MathFn : int { kExp = 0, kSigmoid = 1, kTanh = 2 };

// Asked by the driver between steps, from the calling thread only, after about kWork
// multiply-adds of work (a clock read per step cost 2.5 us per T=100 call): true = stop now.
// The outputs are then incomplete, and the caller must discard them (the bindings raise).
struct Interrupt {
  static constexpr i64 kWork = i64(1) << 20;  // ~0.1 ms of one core
  bool (*poll)(void* ctx) = nullptr;
  void* ctx = nullptr;
  i64 done = 0;  // work since the last poll
  // Called once per step with that step's work.
  bool requested(i64 work) {
    done += work;
    if (done < kWork) return false;
    done = 0;
    return poll && poll(ctx);
  }
};

// Forward over one sequence batch. Optional pointers are null when absent; a cell reads only
// the fields it has (kinds.h says which).
template <class T>
struct FwdArgs {
  Cell cell;
  Dims d;
  const T* x;          // [T, B, I]
  const T* w_ih;       // [G*H, I]
  const T* w_hh;       // [G*H, P]
  const T* b_ih;       // [G*H] or null
  const T* b_hh;       // [G*H] or null
  const T* h0;         // [B, P]
  const T* c0;         // [B, H] (cells with a cell state)
  const T* w_peep;     // [3, H] or null (LSTM)
  const T* w_proj;     // [P, H] or null (LSTM)
  const i64* lengths;  // [B] values in [0, T], or null (all T)
  // [T, B] (x time order) nonzero where the state is zero before that step, or null; never
  // with reverse (the validation refuses it). Entries past a sequence's end are ignored.
  const std::uint8_t* resets;
  const T* zoneout;    // [T, B, P] (x time order) values in [0, 1], or null
  const T* zoneout_c;  // [T, B, H] (x time order, LSTM) values in [0, 1], or null
  // [B, P] the same at every step: the products with w_hh read h_prev * recurrent_mask, or null
  const T* recurrent_mask;
  // Layer norm (rows gain, bias), each or null: ln_ih [2, G*H] of x w_ih^T, ln_hh [2, G*H] of
  // h w_hh^T (GRU without linear_before_reset: [0:2H] of h w_h{r,z}^T, [2H:3H] of
  // (r*h) w_hn^T), ln_c [2, H] of c~ inside m = o tanh(LN(c~)) (LSTM). Cells' tables say which.
  const T* ln_ih;
  const T* ln_hh;
  const T* ln_c;
  bool reverse, input_forget, linear_before_reset;
  T clip;  // the clip bound when clip_mask is given (0 then clips everything to 0)
  // outputs: every element written, whatever the lengths (y and gates are 0 past the end)
  T* y;                     // [T, B, P]
  T* h;                     // [T+1, B, P]
  T* c;                     // [T+1, B, H] (cells with a cell state)
  T* gates;                 // [T, B, G*H]
  T* hn;                    // [T, B, H] (cells with hn_cache)
  std::uint8_t* clip_mask;  // [T, B, G*H] when clipping, else null (clipping is off)
  // the layer-norm cache (processing order, 0 past the end), each given with its norm:
  T* ih_hat;   // [T, B, G*H] normalised x w_ih^T (ln_ih)
  T* hh_hat;   // [T, B, G*H] normalised h w_hh^T (ln_hh)
  T* c_hat;    // [T, B, H] normalised c~ (ln_c)
  T* ln_rstd;  // [T, B, 4] 1/sqrt(var + 1e-5): columns ih, hh, hn, c (step.h LnCol); 0 unused
  int n_threads;
  Interrupt interrupt;
  // The workspace already holds this call's packed weights and folded biases, left there by
  // an earlier call on the same target with the same cell, options, weights, B, I, H, P and no
  // more threads (T may differ; no lengths, no reverse: their row maps would move the layout).
  // Streams (stream.cpp) pack once and then pass true on every step.
  bool packed;
  // bfloat16 panels (bf16.h layout, packed by KernelTable::pack_bf16) of w_ih [G*H, I] and of
  // w_hh [G*H, P], read instead of w_ih and w_hh by the driver's two products; float32 only,
  // no lengths, no reverse (streams with weight_dtype="bfloat16"). Null otherwise.
  const std::uint16_t* w_ih16;
  const std::uint16_t* w_hh16;
  // A call of few steps and rows may read w_ih and w_hh as they are instead of packing them
  // (gemv.h): set by the functional calls; false for streams, which keep their panels.
  bool direct_ok;
};

template <class T>
struct BwdArgs {
  Cell cell;
  Dims d;
  const T* x;          // [T, B, I]
  const T* w_ih;       // [G*H, I]
  const T* w_hh;       // [G*H, P]
  const T* w_peep;     // [3, H] or null
  const T* w_proj;     // [P, H] or null
  const i64* lengths;  // [B] or null
  const std::uint8_t* resets;  // [T, B] as in FwdArgs, or null: no gradient crosses a reset
  const T* zoneout;            // [T, B, P] as in FwdArgs, or null
  const T* zoneout_c;          // [T, B, H] as in FwdArgs, or null
  const T* recurrent_mask;     // [B, P] as in FwdArgs, or null
  const T* ln_ih;              // [2, G*H] as in FwdArgs, or null
  const T* ln_hh;              // [2, G*H] as in FwdArgs, or null
  const T* ln_c;               // [2, H] as in FwdArgs, or null
  bool reverse, input_forget, linear_before_reset;
  T clip;
  const T* h;                     // [T+1, B, P] from the forward
  const T* c;                     // [T+1, B, H]
  const T* gates;                 // [T, B, G*H]
  const T* hn;                    // [T, B, H]
  const std::uint8_t* clip_mask;  // [T, B, G*H] when clipping, else null
  const T* ih_hat;                // [T, B, G*H] with ln_ih (FwdArgs has the layer-norm cache)
  const T* hh_hat;                // [T, B, G*H] with ln_hh
  const T* c_hat;                 // [T, B, H] with ln_c
  const T* ln_rstd;               // [T, B, 4] with any of them
  const T* dy;                    // [T, B, P]
  const T* dh_n;                  // [B, P]
  const T* dc_n;                  // [B, H]
  // outputs, every element written; the optional ones are null when that parameter is absent
  T* dx;       // [T, B, I]
  T* dh0;      // [B, P]
  T* dc0;      // [B, H]
  T* dw_ih;    // [G*H, I]
  T* dw_hh;    // [G*H, P]
  T* db_ih;    // [G*H]
  T* db_hh;    // [G*H]
  T* dw_peep;  // [3, H]
  T* dw_proj;  // [P, H]
  T* dln_ih;   // [2, G*H] with ln_ih
  T* dln_hh;   // [2, G*H] with ln_hh
  T* dln_c;    // [2, H] with ln_c
  int n_threads;
  Interrupt interrupt;
};

// One target's entry points for one dtype. Workspace sizes are in elements of T; the
// workspace passed in must be 64-byte aligned and at least that large.
template <class T>
struct Kernels {
  i64 (*fwd_workspace)(const FwdArgs<T>&);
  void (*fwd)(const FwdArgs<T>&, T* ws);
  i64 (*bwd_workspace)(const BwdArgs<T>&);
  void (*bwd)(const BwdArgs<T>&, T* ws);
  // y[n] = fn(x[n]); x and y do not overlap.
  void (*math)(MathFn fn, const T* x, T* y, i64 n);
  // C[M,N] = A[M,K] B[K,N], all row-major contiguous: exposed for tests and the benchmark.
  void (*gemm)(i64 M, i64 N, i64 K, const T* A, const T* B, T* C, T* ws, int nth);
  i64 (*gemm_workspace)(i64 M, i64 N, i64 K, int nth);
  // C1[M,N1] = A B1[K,N1] and C2[M,N2] = A B2[K,N2] as one product (gemm.h: gemm_pair).
  void (*gemm_pair)(i64 M, i64 N1, i64 N2, i64 K, const T* A, const T* B1, const T* B2, T* C1,
                    T* C2, T* ws, int nth);
  i64 (*gemm_pair_workspace)(i64 N1, i64 N2, i64 K, int nth);
};

struct KernelTable {
  const char* name;
  Kernels<float> f32;
  Kernels<double> f64;
  // bfloat16 weight panels of W [N, K] (row-major) for FwdArgs::w_ih16 / w_hh16: the size in
  // elements, and the packing (each value rounded to the nearest bfloat16, ties to even).
  i64 (*bf16_size)(i64 N, i64 K);
  void (*pack_bf16)(std::uint16_t* dst, const float* W, i64 N, i64 K);
  template <class T>
  const Kernels<T>& of() const {
    if constexpr (sizeof(T) == sizeof(float))
      return f32;
    else
      return f64;
  }
};

}  // namespace rnnkit
