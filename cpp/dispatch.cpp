// The kernel table in use. Picked at first use from the CPU's features (cpuid + xgetbv, see
// cpu_features.cpp); set_target switches it atomically, so a call in flight on another thread
// keeps the table it started with.
#include "dispatch.h"

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "cpu_features.h"
#include "fma_peak.h"

namespace rnnkit {
namespace {

struct Entry {
  const char* name;
  const KernelTable* (*table)();
  bool (*usable)(const CpuFeatures&);
  const FmaLoop* (*fma_loop)();
  const GemmTuning* (*gemm_tuning)();
};

const Entry kEntries[] = {
    // best first
    {"avx512", &table_avx512, [](const CpuFeatures& f) { return f.avx512; }, &fma_loop_avx512,
     &gemm_tuning_avx512},
    {"avx2", &table_avx2, [](const CpuFeatures& f) { return f.avx2_fma; }, &fma_loop_avx2,
     &gemm_tuning_avx2},
    {"scalar", &table_scalar, [](const CpuFeatures&) { return true; }, &fma_loop_scalar,
     &gemm_tuning_scalar},
};

const CpuFeatures& features() { return cpu_features(); }

const Entry& usable_entry(const std::string& name) {
  for (const Entry& e : kEntries) {
    if (name != e.name) continue;
    if (!e.usable(features()))
      throw std::invalid_argument("SIMD target '" + name +
                                  "' is compiled in but this CPU does not support it");
    return e;
  }
  std::string choices;
  for (const Entry& e : kEntries)
    if (e.usable(features()))
      choices += (choices.empty() ? "'" : ", '") + std::string(e.name) + "'";
  throw std::invalid_argument("unknown SIMD target '" + name + "': expected one of " + choices);
}

std::atomic<const KernelTable*> g_current{nullptr};

}  // namespace

std::vector<std::string> compiled_targets() {
  std::vector<std::string> out;
  for (const Entry& e : kEntries) out.push_back(e.name);
  return out;
}

std::vector<std::string> usable_targets() {
  std::vector<std::string> out;
  for (const Entry& e : kEntries)
    if (e.usable(features())) out.push_back(e.name);
  return out;
}

const KernelTable& current_table() {
  const KernelTable* t = g_current.load(std::memory_order_acquire);
  if (!t) {
    for (const Entry& e : kEntries)
      if (e.usable(features())) {
        t = e.table();
        break;
      }
    g_current.store(t, std::memory_order_release);
  }
  return *t;
}

void set_target(const std::string& name) {
  g_current.store(usable_entry(name).table(), std::memory_order_release);
}

const GemmTuning& gemm_tuning(const std::string& target) {
  return *usable_entry(target).gemm_tuning();
}

double fma_peak_gflops(const std::string& target, int dtype_bytes, double seconds) {
  const FmaLoop& loop = *usable_entry(target).fma_loop();
  double (*run)(i64) = dtype_bytes == 8 ? loop.run_f64 : loop.run_f32;
  const i64 per_iter = dtype_bytes == 8 ? loop.flops_per_iter_f64 : loop.flops_per_iter_f32;
  // Bursts of ~0.25 ms: short enough that one usually runs without being preempted on a busy
  // machine, long enough to dwarf the clock reads. The best burst is the peak; the first ones
  // also wake the wide FMA units (some cores run them slower until used).
  using clock = std::chrono::steady_clock;
  i64 iters = 1024;
  double best = 0;
  volatile double sink = 0;  // the checksums, so no call is dropped
  const auto start = clock::now();
  for (int burst = 0;; ++burst) {
    const auto t0 = clock::now();
    sink = sink + run(iters);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt > 0) {
      const double gflops = static_cast<double>(iters * per_iter) / dt * 1e-9;
      if (gflops > best) best = gflops;
      if (dt < 2.5e-4 && iters < (i64(1) << 30)) iters *= 2;
    }
    if (std::chrono::duration<double>(clock::now() - start).count() >= seconds && burst >= 8) break;
  }
  return best;
}

}  // namespace rnnkit
