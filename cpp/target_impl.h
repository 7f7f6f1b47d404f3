// Instantiates every kernel for one SIMD target. Included once by each target_<isa>.cpp, which
// first defines RNNKIT_NS (the target's namespace) and RNNKIT_TARGET_<ISA>.
#include "bf16.h"
#include "kernel_api.h"
#include "sequence.h"
#include "simd/math.h"
#include "fma_peak.h"

namespace rnnkit {
namespace RNNKIT_NS {

// Plain row-major C = A B, for tests and the GEMM-peak measurement of the benchmark.
template <class T>
void gemm_plain(i64 M, i64 N, i64 K, const T* A, const T* B, T* C, T* ws, int nth) {
  gemm<T>(M, N, K, MatView<T>{A, K, 1}, MatView<T>{B, N, 1}, C, N, false, ws, nth);
}
template <class T>
i64 gemm_plain_workspace(i64, i64 N, i64 K, int nth) {
  return gemm_scratch<T>(K, N, nth);
}

template <class T>
void gemm_pair_plain(i64 M, i64 N1, i64 N2, i64 K, const T* A, const T* B1, const T* B2, T* C1,
                     T* C2, T* ws, int nth) {
  gemm_pair<T>(M, K, MatView<T>{A, K, 1}, MatView<T>{B1, N1, 1}, N1, C1, N1, MatView<T>{B2, N2, 1},
               N2, C2, N2, ws, nth);
}
template <class T>
i64 gemm_pair_plain_workspace(i64 N1, i64 N2, i64 K, int nth) {
  return gemm_pair_scratch<T>(K, N1, N2, nth);
}

template <class T>
constexpr Kernels<T> kernels() {
  return {&forward_workspace<T>,
          &forward<T>,
          &backward_workspace<T>,
          &backward<T>,
          &math_apply<T>,
          &gemm_plain<T>,
          &gemm_plain_workspace<T>,
          &gemm_pair_plain<T>,
          &gemm_pair_plain_workspace<T>};
}

const KernelTable kTable = {RNNKIT_TARGET_NAME, kernels<float>(), kernels<double>(),
                            &bf16_panels_size, &pack_bf16_panels};

}  // namespace RNNKIT_NS

const KernelTable* RNNKIT_TABLE_FN() { return &RNNKIT_NS::kTable; }

// fma_loop_<target>(), declared in fma_peak.h.
#define RNNKIT_PASTE2(a, b) a##b
#define RNNKIT_PASTE(a, b) RNNKIT_PASTE2(a, b)
const FmaLoop* RNNKIT_PASTE(fma_loop_, RNNKIT_NS)() { return &RNNKIT_NS::kFmaLoop; }
// gemm_tuning_<target>(), declared in gemm_params.h.
const GemmTuning* RNNKIT_PASTE(gemm_tuning_, RNNKIT_NS)() { return &RNNKIT_NS::kGemmTuning; }

}  // namespace rnnkit
