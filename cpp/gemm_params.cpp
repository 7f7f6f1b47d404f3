// The GEMM parameters for the detected CPU (see gemm_params.h): one table row per CPU family
// picks the register tile and the share of L1 / L2 the packed panels may use; the cache sizes
// from cpuid turn those shares into KC, MC and NC. Baseline code: no ISA flags here.
#include "gemm_params.h"

namespace rnnkit {

namespace {

struct FamilyRow {
  const char* name;
  int vendor;                  // CpuVendor; kVendorOther matches any (the last, default row)
  int family_lo, family_hi;    // display family range
  int tile_avx512, tile_avx2;  // index into that target's tile list (gemm.h: kTiles)
  double l1_share;  // of L1d for one kc x NR panel of packed B
  double l2_share;  // of L2 for the mc x kc block of packed A
};

// First match wins. Tiles: avx512 {12x2, 8x3, 6x4}, avx2 {6x2, 4x3} (gemm.h).
// - Zen 4 (AMD family 0x19): 512-bit instructions run as two 256-bit halves, one zmm FMA per
//   cycle, 32 KiB L1d: an L1 share of 1 keeps the KC of 256 that ran there.
// - Zen 5 (family 0x1A): two full 512-bit FMA pipes, 48 KiB L1d, 1 MiB L2. Measured on an EPYC
//   (family 26 model 2), one thread, CPU time, interleaved (bench/gemm_tiles.py and the
//   _set_gemm_params hook): the 12x2 tile is fastest (LSTM B=64 H=256 fwd+bwd 94.8 ms against
//   98.1 for 6x4 and 99.1 for 8x3). KC 512 (a B panel of 1.5 L1: it streams from L2, and each
//   extra K block is one more pass over C) beat 256 at H=512: LSTM B=64 forward 143 against
//   174 ms, fwd+bwd 390 against 436 (float64 958 against 1037). An A block of half of L2 beat
//   the old 96 rows for the float64 2048^3 product (90 -> 102-108 GFLOP/s); float32 and the
//   sequences did not care. The other rows keep their earlier KC and share MC's rule, unmeasured.
// - Intel cores with AVX-512 (Skylake-SP onwards): two zmm FMA ports on server parts, 48 KiB
//   L1d and 2 MiB L2 from Ice Lake on.
const FamilyRow kFamilies[] = {
    {"AMD Zen 4 and earlier", kVendorAmd, 0x17, 0x19, 0, 0, 1.0, 0.5},
    {"AMD Zen 5", kVendorAmd, 0x1A, 0x1A, 0, 0, 1.5, 0.5},
    {"Intel", kVendorIntel, 0, 0xFF, 0, 0, 0.75, 0.5},
    {"other", kVendorOther, 0, 0xFF, 0, 0, 0.75, 0.5},
};

const FamilyRow& family_row(const CpuFeatures& cpu) {
  for (const FamilyRow& r : kFamilies)
    if ((r.vendor == kVendorOther || r.vendor == cpu.vendor) && cpu.family >= r.family_lo &&
        cpu.family <= r.family_hi)
      return r;
  return kFamilies[sizeof(kFamilies) / sizeof(kFamilies[0]) - 1];
}

i64 clamp(i64 v, i64 lo, i64 hi) { return v < lo ? lo : v > hi ? hi : v; }

}  // namespace

const char* gemm_family_name(const CpuFeatures& cpu) { return family_row(cpu).name; }

GemmParams choose_gemm_params(const CpuFeatures& cpu, int target, const GemmTileShape* tiles,
                              int n_tiles, int lanes, int elem) {
  const FamilyRow& row = family_row(cpu);
  int tile = target == kTargetAvx512 ? row.tile_avx512 : target == kTargetAvx2 ? row.tile_avx2 : 0;
  if (tile < 0 || tile >= n_tiles) tile = 0;
  const i64 mr = tiles[tile].mr, nr = static_cast<i64>(tiles[tile].nv) * lanes;
  GemmParams p;
  p.tile = tile;
  // KC: one kc x NR panel of B in its share of L1, a multiple of 8, at least 64.
  p.kc = clamp(static_cast<i64>(cpu.l1d * row.l1_share) / (nr * elem) / 8 * 8, 64, 512);
  // MC: the mc x kc block of A in its share of L2, a multiple of MR, at least 4 micro-panels.
  p.mc = clamp(static_cast<i64>(cpu.l2 * row.l2_share) / (p.kc * elem) / mr * mr, 4 * mr,
               kMaxMc / mr * mr);
  // NC: a task's kc x nc slice of B in half this core's share of L3.
  const i64 l3_core = cpu.l3 / (cpu.l3_shared > 0 ? cpu.l3_shared : 1);
  p.nc = clamp(l3_core / 2 / (p.kc * elem) / nr * nr, 4 * nr, i64(1) << 40);
  return p;
}

}  // namespace rnnkit
