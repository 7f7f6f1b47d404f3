// CPU detection with cpuid, plus xgetbv: an instruction set is usable only when the CPU has it
// AND the operating system saves its registers on context switches (XCR0 bits). Also reads the
// vendor, model and cache sizes, which size the GEMM's blocks (gemm_params.h) and which
// `rnnkit info` prints.
#include "cpu_features.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace rnnkit {

namespace {

// Assumed when no cache leaf answers: a common modern core.
constexpr i64 kDefaultL1d = 32 << 10, kDefaultL2 = 1 << 20, kDefaultL3 = 8 << 20;

#if defined(__x86_64__) || defined(__i386__)
unsigned long long read_xcr0() {
  unsigned int eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

bool bit(unsigned int r, int i) { return (r >> i) & 1u; }

// Walks a deterministic cache-parameters leaf (Intel 4, AMD 0x8000001D: same layout).
bool read_cache_leaf(unsigned int leaf, CpuFeatures& f) {
  unsigned int max = __get_cpuid_max(leaf & 0x80000000u, nullptr);
  if (max < leaf) return false;
  bool any = false;
  for (unsigned int i = 0; i < 16; ++i) {
    unsigned int a, b, c, d;
    __cpuid_count(leaf, i, a, b, c, d);
    const unsigned int type = a & 0x1F;  // 0 none, 1 data, 2 instruction, 3 unified
    if (type == 0) break;
    if (type == 2) continue;
    const int level = (a >> 5) & 0x7;
    const int shared = static_cast<int>(((a >> 14) & 0xFFF) + 1);
    const i64 line = (b & 0xFFF) + 1, parts = ((b >> 12) & 0x3FF) + 1,
              ways = ((b >> 22) & 0x3FF) + 1;
    const i64 size = line * parts * ways * (static_cast<i64>(c) + 1);
    if (level == 1) f.l1d = size, f.l1d_shared = shared;
    if (level == 2) f.l2 = size, f.l2_shared = shared;
    if (level == 3) f.l3 = size, f.l3_shared = shared;
    any = true;
  }
  return any;
}

// AMD's legacy leaves: L1d in KB (0x80000005 ECX[31:24]), L2 in KB (0x80000006 ECX[31:16]),
// L3 in 512 KB units (0x80000006 EDX[31:18]).
bool read_amd_legacy_caches(CpuFeatures& f) {
  unsigned int a, b, c, d;
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000006u) return false;
  __cpuid(0x80000005u, a, b, c, d);
  f.l1d = static_cast<i64>(c >> 24) << 10;
  __cpuid(0x80000006u, a, b, c, d);
  f.l2 = static_cast<i64>(c >> 16) << 10;
  f.l3 = static_cast<i64>(d >> 18) * (512 << 10);
  f.l1d_shared = f.l2_shared = 1;
  return f.l1d > 0 && f.l2 > 0;
}

void read_identity(CpuFeatures& f) {
  unsigned int a, b, c, d;
  __cpuid(0, a, b, c, d);
  std::memcpy(f.vendor_id, &b, 4);
  std::memcpy(f.vendor_id + 4, &d, 4);
  std::memcpy(f.vendor_id + 8, &c, 4);
  f.vendor_id[12] = '\0';
  if (std::strcmp(f.vendor_id, "GenuineIntel") == 0)
    f.vendor = kVendorIntel;
  else if (std::strcmp(f.vendor_id, "AuthenticAMD") == 0 ||
           std::strcmp(f.vendor_id, "HygonGenuine") == 0)
    f.vendor = kVendorAmd;
  __cpuid(1, a, b, c, d);
  const int base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
  f.family = base_family == 0xF ? base_family + static_cast<int>((a >> 20) & 0xFF) : base_family;
  f.model = (base_family == 0x6 || base_family == 0xF)
                ? base_model + static_cast<int>(((a >> 16) & 0xF) << 4)
                : base_model;
  f.stepping = a & 0xF;
  f.hypervisor = bit(c, 31);
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    unsigned int r[12];
    for (unsigned int i = 0; i < 3; ++i)
      __cpuid(0x80000002u + i, r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]);
    std::memcpy(f.brand, r, 48);
    f.brand[48] = '\0';
    // Trim the padding some CPUs put around the name.
    char* s = f.brand;
    while (*s == ' ') ++s;
    std::memmove(f.brand, s, std::strlen(s) + 1);
    for (int n = static_cast<int>(std::strlen(f.brand)); n > 0 && f.brand[n - 1] == ' '; --n)
      f.brand[n - 1] = '\0';
  }
}

void read_caches(CpuFeatures& f) {
  bool ok = false;
  if (f.vendor == kVendorAmd) {
    unsigned int a, b, c, d;
    const bool topo_ext = __get_cpuid(0x80000001u, &a, &b, &c, &d) && bit(c, 22);
    ok = (topo_ext && read_cache_leaf(0x8000001Du, f)) || read_amd_legacy_caches(f);
  } else {
    ok = read_cache_leaf(4, f);
  }
  f.caches_from_cpuid = ok && f.l1d > 0 && f.l2 > 0;
}
#endif

}  // namespace

#if defined(__x86_64__) || defined(__i386__)
CpuFeatures detect_cpu_features() {
  CpuFeatures f{};
  read_identity(f);
  read_caches(f);
  unsigned int a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    f.sse42 = bit(c, 20);
    f.fma3 = bit(c, 12);
    f.avx = bit(c, 28);
    const bool osxsave = bit(c, 27);
    const unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    const bool os_ymm = (xcr0 & 0x6) == 0x6;    // SSE + AVX state
    const bool os_zmm = (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM_Hi256, Hi16_ZMM
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      f.avx2 = bit(b, 5);
      f.avx512f = bit(b, 16), f.avx512dq = bit(b, 17), f.avx512bw = bit(b, 30),
      f.avx512vl = bit(b, 31);
      f.avx512_vnni = bit(c, 11);
      f.avx512_vp2intersect = bit(d, 8), f.avx512_fp16 = bit(d, 23);
      f.amx_bf16 = bit(d, 22), f.amx_tile = bit(d, 24), f.amx_int8 = bit(d, 25);
      if (a >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        f.avx_vnni = bit(a, 4), f.avx512_bf16 = bit(a, 5);
      }
    }
    f.avx2_fma = f.avx && os_ymm && f.avx2 && f.fma3;
    f.avx512 = f.avx2_fma && os_zmm && f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl;
  }
  if (f.l1d <= 0) f.l1d = kDefaultL1d, f.l1d_shared = 1;
  if (f.l2 <= 0) f.l2 = kDefaultL2, f.l2_shared = 1;
  if (f.l3 <= 0) f.l3 = kDefaultL3, f.l3_shared = 1;
  return f;
}
#else
CpuFeatures detect_cpu_features() {
  CpuFeatures f{};
  f.l1d = kDefaultL1d, f.l2 = kDefaultL2, f.l3 = kDefaultL3;
  f.l1d_shared = f.l2_shared = f.l3_shared = 1;
  return f;
}
#endif

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect_cpu_features();
  return f;
}

const char* cpu_feature_names(const CpuFeatures& f, char* out, int n) {
  const struct {
    bool on;
    const char* name;
  } names[] = {{f.sse42, "sse4_2"},
               {f.avx, "avx"},
               {f.avx2, "avx2"},
               {f.fma3, "fma"},
               {f.avx512f, "avx512f"},
               {f.avx512dq, "avx512dq"},
               {f.avx512bw, "avx512bw"},
               {f.avx512vl, "avx512vl"},
               {f.avx512_vnni, "avx512_vnni"},
               {f.avx512_bf16, "avx512_bf16"},
               {f.avx512_fp16, "avx512_fp16"},
               {f.avx512_vp2intersect, "avx512_vp2intersect"},
               {f.avx_vnni, "avx_vnni"},
               {f.amx_tile, "amx_tile"},
               {f.amx_bf16, "amx_bf16"},
               {f.amx_int8, "amx_int8"}};
  int used = 0;
  if (n > 0) out[0] = '\0';
  for (const auto& e : names) {
    if (!e.on) continue;
    const int len = static_cast<int>(std::strlen(e.name));
    if (used + len + 2 > n) break;
    if (used) out[used++] = ' ';
    std::memcpy(out + used, e.name, len + 1);
    used += len;
  }
  return out;
}

}  // namespace rnnkit
