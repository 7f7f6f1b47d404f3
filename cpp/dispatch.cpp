// The kernel table in use. Picked at first use from the CPU's features (cpuid + xgetbv, see
// cpu_features.cpp); set_target switches it atomically, so a call in flight on another thread
// keeps the table it started with.
#include "dispatch.h"

#include <atomic>
#include <stdexcept>

#include "cpu_features.h"

namespace rnnkit {
namespace {

struct Entry {
  const char* name;
  const KernelTable* (*table)();
  bool (*usable)(const CpuFeatures&);
};

const Entry kEntries[] = {  // best first
    {"avx512", &table_avx512, [](const CpuFeatures& f) { return f.avx512; }},
    {"avx2", &table_avx2, [](const CpuFeatures& f) { return f.avx2_fma; }},
    {"scalar", &table_scalar, [](const CpuFeatures&) { return true; }},
};

const CpuFeatures& features() {
  static const CpuFeatures f = detect_cpu_features();
  return f;
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
  std::string choices;
  for (const Entry& e : kEntries) {
    if (name == e.name) {
      if (!e.usable(features()))
        throw std::invalid_argument("SIMD target '" + name +
                                    "' is compiled in but this CPU does not support it");
      g_current.store(e.table(), std::memory_order_release);
      return;
    }
  }
  for (const std::string& n : usable_targets()) choices += (choices.empty() ? "'" : ", '") + n + "'";
  throw std::invalid_argument("unknown SIMD target '" + name + "': expected one of " + choices);
}

}  // namespace rnnkit
