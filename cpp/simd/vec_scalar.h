// VecScalar<T>: the vector interface with one lane. It is the scalar target's vector and every
// target's loop tail, so it has the exact semantics of the SIMD versions: max/min follow SSE
// (`max(a, b) = a > b ? a : b`, so max(0, NaN) is NaN), fma is a*b + c without a libm call.
#pragma once

#include <cstdint>
#include <cstring>

#ifndef RNNKIT_INLINE
#define RNNKIT_INLINE inline __attribute__((always_inline))
#endif

namespace rnnkit {
namespace RNNKIT_NS {

template <class T>
struct VecScalar {
  using Elem = T;
  using Mask = bool;
  static constexpr int kLanes = 1;
  T v;

  static RNNKIT_INLINE VecScalar load(const T* p) { return {*p}; }
  static RNNKIT_INLINE VecScalar set1(T x) { return {x}; }
  static RNNKIT_INLINE VecScalar zero() { return {T(0)}; }
  RNNKIT_INLINE void store(T* p) const { *p = v; }
  static RNNKIT_INLINE Mask load_mask(const std::uint8_t* p) { return *p != 0; }

  friend RNNKIT_INLINE VecScalar operator+(VecScalar a, VecScalar b) { return {a.v + b.v}; }
  friend RNNKIT_INLINE VecScalar operator-(VecScalar a, VecScalar b) { return {a.v - b.v}; }
  friend RNNKIT_INLINE VecScalar operator*(VecScalar a, VecScalar b) { return {a.v * b.v}; }
  friend RNNKIT_INLINE VecScalar operator/(VecScalar a, VecScalar b) { return {a.v / b.v}; }
  friend RNNKIT_INLINE VecScalar operator-(VecScalar a) { return {-a.v}; }
};

template <class T> RNNKIT_INLINE void store(T* p, VecScalar<T> a) { *p = a.v; }
template <class T> RNNKIT_INLINE VecScalar<T> fma(VecScalar<T> a, VecScalar<T> b, VecScalar<T> c) { return {a.v * b.v + c.v}; }
template <class T> RNNKIT_INLINE VecScalar<T> fnma(VecScalar<T> a, VecScalar<T> b, VecScalar<T> c) { return {c.v - a.v * b.v}; }
template <class T> RNNKIT_INLINE VecScalar<T> max(VecScalar<T> a, VecScalar<T> b) { return {a.v > b.v ? a.v : b.v}; }
template <class T> RNNKIT_INLINE VecScalar<T> min(VecScalar<T> a, VecScalar<T> b) { return {a.v < b.v ? a.v : b.v}; }
RNNKIT_INLINE VecScalar<float> abs(VecScalar<float> a) { return {__builtin_fabsf(a.v)}; }
RNNKIT_INLINE VecScalar<double> abs(VecScalar<double> a) { return {__builtin_fabs(a.v)}; }
template <class T> RNNKIT_INLINE T reduce_add(VecScalar<T> a) { return a.v; }

template <class T> RNNKIT_INLINE bool lt(VecScalar<T> a, VecScalar<T> b) { return a.v < b.v; }
template <class T> RNNKIT_INLINE bool gt(VecScalar<T> a, VecScalar<T> b) { return a.v > b.v; }
template <class T> RNNKIT_INLINE bool le(VecScalar<T> a, VecScalar<T> b) { return a.v <= b.v; }
template <class T> RNNKIT_INLINE bool ge(VecScalar<T> a, VecScalar<T> b) { return a.v >= b.v; }
template <class T> RNNKIT_INLINE VecScalar<T> select(bool m, VecScalar<T> a, VecScalar<T> b) { return m ? a : b; }
RNNKIT_INLINE bool mask_or(bool a, bool b) { return a || b; }
RNNKIT_INLINE void store_mask_u8(std::uint8_t* p, bool m) { *p = m ? 1 : 0; }

// Nearest integer (ties to even) for |x| < 2^22 (float) / 2^51 (double), as the same type:
// adding and subtracting 1.5 * 2^mantissa rounds in the FPU's default mode.
RNNKIT_INLINE VecScalar<float> round_nearest(VecScalar<float> a) {
  volatile float t = a.v + 12582912.0f;  // volatile: keep the compiler from folding it away
  return {t - 12582912.0f};
}
RNNKIT_INLINE VecScalar<double> round_nearest(VecScalar<double> a) {
  volatile double t = a.v + 6755399441055744.0;
  return {t - 6755399441055744.0};
}

// a * 2^n for integral n in [-300, 300] (float) / [-2200, 2200] (double), in two normal
// power-of-two factors so that results in the subnormal range or overflowing to inf are right.
RNNKIT_INLINE VecScalar<float> ldexp_n(VecScalar<float> a, VecScalar<float> n) {
  const std::int32_t k = n.v == n.v ? static_cast<std::int32_t>(n.v) : 0;  // NaN: a is NaN too
  const std::int32_t k1 = k >> 1, k2 = k - k1;
  const std::uint32_t b1 = static_cast<std::uint32_t>(k1 + 127) << 23;
  const std::uint32_t b2 = static_cast<std::uint32_t>(k2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, 4);
  std::memcpy(&s2, &b2, 4);
  return {a.v * s1 * s2};
}
RNNKIT_INLINE VecScalar<double> ldexp_n(VecScalar<double> a, VecScalar<double> n) {
  const std::int64_t k = n.v == n.v ? static_cast<std::int64_t>(n.v) : 0;
  const std::int64_t k1 = k >> 1, k2 = k - k1;
  const std::uint64_t b1 = static_cast<std::uint64_t>(k1 + 1023) << 52;
  const std::uint64_t b2 = static_cast<std::uint64_t>(k2 + 1023) << 52;
  double s1, s2;
  std::memcpy(&s1, &b1, 8);
  std::memcpy(&s2, &b2, 8);
  return {a.v * s1 * s2};
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
