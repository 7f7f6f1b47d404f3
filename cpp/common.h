// Shared basics for every translation unit: sizes, the restrict keyword, the kernel assert.
// Kernels trust their arguments (Python validated them); RNNKIT_ASSERT only guards internal
// invariants in debug builds and compiles away otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__GNUC__)
#define RESTRICT __restrict__
#else
#define RESTRICT
#endif

#ifndef RNNKIT_INLINE
#define RNNKIT_INLINE inline __attribute__((always_inline))
#endif

#ifdef RNNKIT_DEBUG
#include <cstdio>
#include <cstdlib>
#define RNNKIT_ASSERT(cond)                                                                   \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "rnnkit internal error: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
#else
#define RNNKIT_ASSERT(cond) ((void)0)
#endif

namespace rnnkit {

using i64 = std::int64_t;

// The letters of the API: T steps, B batch, I input, H hidden, P projection (= H without one),
// G gates (RNN 1, MGU 2, GRU 3, LSTM 4).
struct Dims {
  i64 T, B, I, H, P, G;
};

inline i64 round_up(i64 x, i64 m) { return (x + m - 1) / m * m; }
inline i64 ceil_div(i64 x, i64 m) { return (x + m - 1) / m; }

}  // namespace rnnkit
