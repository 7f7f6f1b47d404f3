// Products of a few rows against a weight matrix read as it is stored: C[m, n] (+)= A[m, :] .
// W[n, :], W row-major [N, K] (PyTorch's w_ih [G*H, I] and w_hh [G*H, P]). No packing.
//
// Why: a whole-sequence call packs w_ih and w_hh into GEMM panels (gemm.h) once and reuses them
// for every step. With one step (T = 1, B = 1: a sampling loop calling the functional API) the
// packing is most of the call: it reads and writes both matrices to then read them once more
// (LSTM H=64: 33k of the kernel's ~50k instructions under callgrind). Here each output is a dot
// product of a row of A with a row of W: both contiguous, read once, SIMD along k.
//
// Blocking: MB rows of A (MB <= 4) times NB rows of W, MB x NB vector accumulators (as many as
// the target's registers hold with the loads beside them), reduced lane by lane in a fixed
// order (reduce_add); the k tail (K not a multiple of the lanes) is added in scalar after. Every
// element is summed by one task in one order, so results do not depend on the thread count.
// They differ from the packed GEMM in rounding only (another summation order).
//
// Included inside a target namespace (see target_impl.h) after gemm.h (MatView) and threads.h.
#pragma once

#include "common.h"
#include "gemm.h"
#include "simd/vec.h"
#include "threads.h"

namespace rnnkit {
namespace RNNKIT_NS {

// Whether a call of T steps and B rows, with weights of `weights` = G*H*(I+P) elements, reads
// them unpacked. Measured (callgrind, LSTM, avx2, instructions per call): B = 4 rows at T = 1
// cost less unpacked than B = 5 packed (H=64: 109k vs 120k; H=256: 711k vs 1294k); at B = 1
// T = 4 steps unpacked cost less than T = 5 packed at H = 256 (699k vs 1242k: packing 2 MB is
// most of a short call) but more at H = 64 (122k vs 104k: there a packed step is ~10k, an
// unpacked one ~26k, the lane reductions of the dot products), so small weights take the
// unpacked path for T <= 2 steps only.
constexpr i64 kDirectMaxBatch = 4;
constexpr i64 kDirectMaxSteps = 4;
constexpr i64 kDirectMaxStepsSmall = 2;   // for weights below kDirectLargeWeights elements
constexpr i64 kDirectLargeWeights = i64(1) << 17;  // LSTM H = I = 128

inline bool use_direct(i64 T_, i64 B, i64 weights) {
  const i64 steps = weights >= kDirectLargeWeights ? kDirectMaxSteps : kDirectMaxStepsSmall;
  return T_ <= steps && B <= kDirectMaxBatch;
}

// Vector accumulators one block may use: the register file less the NB + MB loads.
#if defined(RNNKIT_TARGET_AVX512)
constexpr int kGemvAccumulators = 16;
#else
constexpr int kGemvAccumulators = 8;
#endif

// C[m, n] (+)= sum_k a[m][k] W[n0 + n, k] for m < MB, n < NB; a[m]: rows of K elements.
template <class T, int MB, int NB>
RNNKIT_INLINE void gemv_block(const T* const* a, const T* W, i64 ldw, i64 n0, i64 K, T* C, i64 ldc,
                              const i64* c_rows, bool accumulate) {
  using V = Vec<T>;
  constexpr int L = V::kLanes;
  V acc[MB][NB];
  for (int m = 0; m < MB; ++m)
    for (int n = 0; n < NB; ++n) acc[m][n] = V::zero();
  const T* w = W + n0 * ldw;
  i64 k = 0;
  for (; k + L <= K; k += L) {
    V wv[NB];
    for (int n = 0; n < NB; ++n) wv[n] = V::load(w + n * ldw + k);
    for (int m = 0; m < MB; ++m) {
      const V av = V::load(a[m] + k);
      for (int n = 0; n < NB; ++n) acc[m][n] = fma(av, wv[n], acc[m][n]);
    }
  }
  for (int m = 0; m < MB; ++m) {
    T* c = C + c_rows[m] * ldc + n0;
    for (int n = 0; n < NB; ++n) {
      T s = reduce_add(acc[m][n]);
      for (i64 j = k; j < K; ++j) s += a[m][j] * w[n * ldw + j];
      c[n] = accumulate ? c[n] + s : s;
    }
  }
}

// MB rows of A against W rows [n0, n1).
template <class T, int MB>
void gemv_rows(const T* const* a, const T* W, i64 ldw, i64 n0, i64 n1, i64 K, T* C, i64 ldc,
               const i64* c_rows, bool accumulate) {
  constexpr int NB0 = kGemvAccumulators / MB;
  constexpr int NB = NB0 > 8 ? 8 : NB0 < 1 ? 1 : NB0;
  i64 n = n0;
  for (; n + NB <= n1; n += NB) gemv_block<T, MB, NB>(a, W, ldw, n, K, C, ldc, c_rows, accumulate);
  for (; n < n1; ++n) gemv_block<T, MB, 1>(a, W, ldw, n, K, C, ldc, c_rows, accumulate);
}

template <class T>
struct GemvJob {
  i64 M, N, K;
  MatView<T> A;  // [M, K], rows contiguous (cs == 1); a null row (row map -1) reads as zeros
  const T* W;    // [N, ldw] row-major
  i64 ldw;
  T* C;  // [M, ldc]
  i64 ldc;
  bool accumulate;
  i64 chunk;  // W rows per task
};

// One task: every row of A against W rows [task * chunk, +chunk), rows of A in blocks of 4.
template <class T>
void gemv_task(void* ctx, i64 task, int) {
  const GemvJob<T>& j = *static_cast<const GemvJob<T>*>(ctx);
  const i64 n0 = task * j.chunk, n1 = n0 + j.chunk < j.N ? n0 + j.chunk : j.N;
  const T* a[4];
  i64 rows[4];
  i64 m = 0;
  while (m < j.M) {
    int mb = 0;  // the next (up to) 4 rows that exist; a missing row's C is 0 (or unchanged)
    for (; m < j.M && mb < 4; ++m) {
      const T* r = j.A.row(m);
      if (r) {
        a[mb] = r;
        rows[mb++] = m;
      } else if (!j.accumulate) {
        for (i64 n = n0; n < n1; ++n) j.C[m * j.ldc + n] = T(0);
      }
    }
    switch (mb) {
      case 4: gemv_rows<T, 4>(a, j.W, j.ldw, n0, n1, j.K, j.C, j.ldc, rows, j.accumulate); break;
      case 3: gemv_rows<T, 3>(a, j.W, j.ldw, n0, n1, j.K, j.C, j.ldc, rows, j.accumulate); break;
      case 2: gemv_rows<T, 2>(a, j.W, j.ldw, n0, n1, j.K, j.C, j.ldc, rows, j.accumulate); break;
      case 1: gemv_rows<T, 1>(a, j.W, j.ldw, n0, n1, j.K, j.C, j.ldc, rows, j.accumulate); break;
      default: break;
    }
  }
}

// C[M, N] (ld ldc) (+)= A[M, K] W[N, K]^T, W row-major with row stride ldw; A's rows
// contiguous (A.cs == 1, a row gather allowed). accumulate == false never reads C. Split over
// threads by blocks of W's rows when the work pays for them (gemm.h's kMinWorkPerThread).
template <class T>
void gemv(i64 M, i64 N, i64 K, MatView<T> A, const T* W, i64 ldw, T* C, i64 ldc, bool accumulate,
          int n_threads) {
  if (M <= 0 || N <= 0) return;
  const int nth = gemm_threads(M, N, K, n_threads);
  const i64 chunk = round_up(ceil_div(N, nth), 8);  // whole blocks of NB <= 8 rows per task
  GemvJob<T> job{M, N, K, A, W, ldw, C, ldc, accumulate, chunk};
  const i64 tasks = ceil_div(N, chunk);
  if (tasks <= 1)
    gemv_task<T>(&job, 0, 0);
  else
    parallel_for_owned(tasks, nth, &gemv_task<T>, &job);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
