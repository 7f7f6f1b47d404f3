// The FMA-throughput loop behind `rnnkit bench`'s "% of peak": the most multiply-adds one core
// retires per second with this target's widest vectors, the limit every GEMM here runs against.
//
// kChains independent accumulators, each updated acc = acc * m + a in a dependent chain, so the
// loop is bound by FMA throughput and not latency as long as kChains >= latency x FMA ports
// (4 x 2 on Intel server cores and Zen 5, 4 x 1 zmm on Zen 4): 16 zmm chains (of 32 registers),
// 12 ymm (of 16), 8 scalar. m and a are opaque to the compiler (read through a volatile), and
// the sum of the chains is returned, so nothing folds away. The scalar target has no FMA
// instruction (baseline x86-64): there a "multiply-add" is one multiply plus one add.
//
// Declarations for dispatch.cpp come first; the per-target definitions are compiled inside each
// target's namespace (target_impl.h includes this header with RNNKIT_NS defined).
#pragma once

#include "common.h"

namespace rnnkit {

// One target's loop: run_*(iters) does iters x flops_per_iter_* floating-point operations (an
// FMA counts 2) and returns a checksum, kept so the work is not optimised away.
struct FmaLoop {
  double (*run_f32)(i64 iters);
  double (*run_f64)(i64 iters);
  i64 flops_per_iter_f32, flops_per_iter_f64;
};

const FmaLoop* fma_loop_scalar();
const FmaLoop* fma_loop_avx2();
const FmaLoop* fma_loop_avx512();

#ifdef RNNKIT_NS
}  // namespace rnnkit
#include "simd/vec.h"
namespace rnnkit {
namespace RNNKIT_NS {

#if defined(RNNKIT_TARGET_AVX512)
constexpr int kFmaChains = 16;
#elif defined(RNNKIT_TARGET_AVX2)
constexpr int kFmaChains = 12;
#else
constexpr int kFmaChains = 12;  // a multiply then an add: a chain twice as long
#endif

template <class T>
double fma_loop_run(i64 iters) {
  using V = Vec<T>;
  volatile T m_in = T(0.999999), a_in = T(1e-7);  // |acc| stays bounded: no overflow, no denormals
  const V m = V::set1(m_in), a = V::set1(a_in);
  V acc[kFmaChains];
#pragma GCC unroll 16
  for (int c = 0; c < kFmaChains; ++c) acc[c] = V::set1(T(c + 1));
  for (i64 i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kFmaChains; ++c) acc[c] = fma(acc[c], m, a);
  }
  T lanes[V::kLanes];
  V sum = acc[0];
  for (int c = 1; c < kFmaChains; ++c) sum = sum + acc[c];
  sum.store(lanes);
  double s = 0;
  for (int l = 0; l < V::kLanes; ++l) s += static_cast<double>(lanes[l]);
  return s;
}

inline const FmaLoop kFmaLoop = {&fma_loop_run<float>, &fma_loop_run<double>,
                                 2 * kFmaChains * Vec<float>::kLanes,
                                 2 * kFmaChains * Vec<double>::kLanes};

}  // namespace RNNKIT_NS
#endif

}  // namespace rnnkit
