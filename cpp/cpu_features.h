// What this CPU and its operating system support, for choosing a SIMD target, and what it is
// (vendor, model, cache sizes), for sizing the GEMM's blocks and for `rnnkit info`.
// Plain data only: per-target code reads it, and per-target code uses no STL types.
#pragma once

#include "common.h"

namespace rnnkit {

enum CpuVendor : int { kVendorOther = 0, kVendorIntel = 1, kVendorAmd = 2 };

struct CpuFeatures {
  bool avx2_fma;  // AVX2 + FMA3, and the OS saves YMM state
  bool avx512;    // AVX-512 F, DQ, BW, VL, and the OS saves ZMM and opmask state

  // Identity (cpuid leaves 0, 1, 0x80000002..4).
  int vendor;           // CpuVendor
  char vendor_id[13];   // "GenuineIntel", "AuthenticAMD", ...
  char brand[49];       // the model name, e.g. "AMD EPYC 9B45"
  int family, model, stepping;  // display family / model (base + extended), as Linux prints them

  // Caches in bytes, as one core sees them (cpuid leaf 4 on Intel, 0x8000001D on AMD, else the
  // legacy AMD leaves 0x80000005/6); 0 when unknown. *_shared: logical CPUs sharing one.
  i64 l1d, l2, l3;
  int l1d_shared, l2_shared, l3_shared;
  bool caches_from_cpuid;  // false: the defaults below were assumed (no cache leaf answered)

  // Instruction-set extensions the CPU reports (OS state support checked only for the two
  // flags above, which are what the targets need).
  bool sse42, avx, avx2, fma3, avx512f, avx512dq, avx512bw, avx512vl, avx512_vnni, avx512_bf16,
      avx512_fp16, avx512_vp2intersect, avx_vnni, amx_tile, amx_bf16, amx_int8;
  bool hypervisor;  // running in a virtual machine (cache and model leaves may be the host's)
};

// Detected once (cpuid and xgetbv are cheap, but callers ask often).
const CpuFeatures& cpu_features();
CpuFeatures detect_cpu_features();

// The extension names of `f` that are set, space-separated, into out[0..n); returns out.
const char* cpu_feature_names(const CpuFeatures& f, char* out, int n);

}  // namespace rnnkit
