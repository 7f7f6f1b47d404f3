// What this CPU and its operating system support, for choosing a SIMD target.
#pragma once

namespace rnnkit {

struct CpuFeatures {
  bool avx2_fma;  // AVX2 + FMA3, and the OS saves YMM state
  bool avx512;    // AVX-512 F, DQ, BW, VL, and the OS saves ZMM and opmask state
};

CpuFeatures detect_cpu_features();

}  // namespace rnnkit
