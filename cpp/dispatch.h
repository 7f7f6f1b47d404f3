// Choosing the SIMD target: which kernel tables were compiled, which this CPU can run, the
// best one picked at import, and the override (RNNKIT_SIMD, set_simd_target).
#pragma once

#include <string>
#include <vector>

#include "gemm_params.h"
#include "kernel_api.h"

namespace rnnkit {

const KernelTable* table_scalar();
const KernelTable* table_avx2();
const KernelTable* table_avx512();

// Compiled targets this CPU can run, best first.
std::vector<std::string> usable_targets();
// Every compiled target, usable here or not.
std::vector<std::string> compiled_targets();
const KernelTable& current_table();
// Throws std::invalid_argument with a message naming the target and the choices.
void set_target(const std::string& name);

// The FMA throughput of one core with `target`'s widest vectors (fma_peak.h), in GFLOP/s:
// the best of short bursts over about `seconds`. dtype_bytes: 4 (float32) or 8 (float64).
// Throws std::invalid_argument for a target this CPU cannot run.
double fma_peak_gflops(const std::string& target, int dtype_bytes, double seconds);

// The GEMM parameters of a usable target (gemm_params.h); throws like set_target.
const GemmTuning& gemm_tuning(const std::string& target);

}  // namespace rnnkit
