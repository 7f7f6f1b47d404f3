// The GEMM's tunable parameters and how they are chosen for the CPU at hand.
//
// gemm.h is one GEMM for every CPU; what differs between CPUs is
// - the register tile MR x NV (rows x vectors of columns), picked from the few that each SIMD
//   target compiles (gemm.h: kTiles) by a table of CPU families (gemm_params.cpp), because the
//   best tile depends on how many FMA ports there are and how wide they are, which cpuid does
//   not tell;
// - the cache blocking KC, MC, NC, computed from the cache sizes cpuid reports (BLIS's
//   analytical model, Low et al. 2016): a kc x NR panel of packed B stays in L1 while the MR-row
//   micro-panels of A stream past it, the mc x kc block of packed A stays in L2 while every B
//   panel meets it, and a task's kc x nc slice of B stays in this core's share of L3.
// Tests force every tile and blocking (rnnkit._core._set_gemm_params) and compare with NumPy.
#pragma once

#include "common.h"
#include "cpu_features.h"

namespace rnnkit {

struct GemmTileShape {
  int mr, nv;  // rows of A, vectors of B columns (NR = nv x lanes)
};

struct GemmParams {
  int tile;  // index into the target's tile list
  i64 kc;    // K block (rows of a packed B panel), a multiple of 8
  i64 mc;    // rows of A packed per block, a multiple of the tile's MR
  i64 nc;    // columns of B one task covers at most, a multiple of NR
};

enum SimdTarget : int { kTargetScalar = 0, kTargetAvx2 = 1, kTargetAvx512 = 2 };

// The parameters for this CPU: the family table gives the tile and the cache fractions, the
// cache sizes give the blocks. tiles[0..n_tiles) are the target's tiles; lanes: vector lanes of
// the dtype; elem: sizeof the dtype.
GemmParams choose_gemm_params(const CpuFeatures& cpu, int target, const GemmTileShape* tiles,
                              int n_tiles, int lanes, int elem);

// Which row of the family table matched (for rnnkit info): e.g. "AMD Zen 5".
const char* gemm_family_name(const CpuFeatures& cpu);

// Bounds every choice respects (checked by the test hook too).
constexpr i64 kMinKc = 8, kMaxKc = 1024, kMaxMc = 1024;

// One target's GEMM parameters, readable and (for tests) settable from the baseline code.
struct GemmTuning {
  const GemmTileShape* tiles;
  int n_tiles;
  int lanes_f32, lanes_f64;
  GemmParams (*get)(int elem);                   // elem: 4 or 8
  void (*set)(int elem, const GemmParams* p);    // null p: back to choose_gemm_params
};

const GemmTuning* gemm_tuning_scalar();
const GemmTuning* gemm_tuning_avx2();
const GemmTuning* gemm_tuning_avx512();

}  // namespace rnnkit
