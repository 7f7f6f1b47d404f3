// Choosing the SIMD target: which kernel tables were compiled, which this CPU can run, the
// best one picked at import, and the override (RNNKIT_SIMD, set_simd_target).
#pragma once

#include <string>
#include <vector>

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

}  // namespace rnnkit
