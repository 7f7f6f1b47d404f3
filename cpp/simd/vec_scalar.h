// VecScalar<T>: rnnkit's vector interface with one lane, for float and double. It is the
// scalar target's Vec<T> and every target's loop tail (Scalar<T>), so each operation has the
// exact semantics of its SIMD twin in vec_avx2.h and vec_avx512.h.
//
// The interface, the same in the three vec_*.h files (V a vector type, T = V::Elem):
//   V::kLanes; V::load(p), v.store(p), store(p, v): unaligned; V::set1(x), V::zero()
//   a + b, a - b, a * b, a / b, -a
//   fma(a, b, c) = a*b + c: one rounding on AVX2 / AVX-512. The scalar target has no FMA
//     instruction and we refuse a libm call, so there it rounds twice (and in the tails of the
//     FMA targets gcc may contract it to one rounding: compare targets with tolerances).
//   fnma(a, b, c) = c - a*b, same rounding remarks.
//   max(a, b) = a > b ? a : b, min(a, b) = a < b ? a : b: SSE semantics, the second operand
//     wins when either is NaN, so max(zero, x) and min(hi, max(lo, x)) keep a NaN x.
//   abs(a); reduce_add(a) -> T, lanes summed in the fixed order stated at each overload.
//   V::Mask; lt, gt, le, ge: ordered compares, false when either operand is NaN;
//   select(m, a, b) = m ? a : b; mask_or(m1, m2);
//   store_mask_u8(p, m): kLanes bytes, each 0 or 1; V::load_mask_u8(p): byte != 0 -> true.
//   For math.h: round_int(a), the nearest integer (ties to even) as T, valid for
//   |a| < 2^22 (float) / 2^51 (double); mul_pow2(a, n) = a * 2^n for integral n in
//   [-252, 254] (float) / [-2044, 2046] (double). For a in [0.5, 2] (exp's use) it is
//   rounded once, so results overflow to inf and land correctly in the subnormal range.
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
  static RNNKIT_INLINE Mask load_mask_u8(const std::uint8_t* p) { return *p != 0; }
  // Former name of load_mask_u8, still used by cells/step.h.
  static RNNKIT_INLINE Mask load_mask(const std::uint8_t* p) { return load_mask_u8(p); }

  friend RNNKIT_INLINE VecScalar operator+(VecScalar a, VecScalar b) { return {a.v + b.v}; }
  friend RNNKIT_INLINE VecScalar operator-(VecScalar a, VecScalar b) { return {a.v - b.v}; }
  friend RNNKIT_INLINE VecScalar operator*(VecScalar a, VecScalar b) { return {a.v * b.v}; }
  friend RNNKIT_INLINE VecScalar operator/(VecScalar a, VecScalar b) { return {a.v / b.v}; }
  friend RNNKIT_INLINE VecScalar operator-(VecScalar a) { return {-a.v}; }
};

template <class T>
RNNKIT_INLINE void store(T* p, VecScalar<T> a) {
  *p = a.v;
}
template <class T>
RNNKIT_INLINE VecScalar<T> fma(VecScalar<T> a, VecScalar<T> b, VecScalar<T> c) {
  return {a.v * b.v + c.v};
}
template <class T>
RNNKIT_INLINE VecScalar<T> fnma(VecScalar<T> a, VecScalar<T> b, VecScalar<T> c) {
  return {c.v - a.v * b.v};
}
// Written as the comparison maxss/minss implement, so gcc emits exactly those instructions.
template <class T>
RNNKIT_INLINE VecScalar<T> max(VecScalar<T> a, VecScalar<T> b) {
  return {a.v > b.v ? a.v : b.v};
}
template <class T>
RNNKIT_INLINE VecScalar<T> min(VecScalar<T> a, VecScalar<T> b) {
  return {a.v < b.v ? a.v : b.v};
}
RNNKIT_INLINE VecScalar<float> abs(VecScalar<float> a) { return {__builtin_fabsf(a.v)}; }
RNNKIT_INLINE VecScalar<double> abs(VecScalar<double> a) { return {__builtin_fabs(a.v)}; }
template <class T>
RNNKIT_INLINE T reduce_add(VecScalar<T> a) {
  return a.v;
}

template <class T>
RNNKIT_INLINE bool lt(VecScalar<T> a, VecScalar<T> b) {
  return a.v < b.v;
}
template <class T>
RNNKIT_INLINE bool gt(VecScalar<T> a, VecScalar<T> b) {
  return a.v > b.v;
}
template <class T>
RNNKIT_INLINE bool le(VecScalar<T> a, VecScalar<T> b) {
  return a.v <= b.v;
}
template <class T>
RNNKIT_INLINE bool ge(VecScalar<T> a, VecScalar<T> b) {
  return a.v >= b.v;
}
template <class T>
RNNKIT_INLINE VecScalar<T> select(bool m, VecScalar<T> a, VecScalar<T> b) {
  return m ? a : b;
}
RNNKIT_INLINE bool mask_or(bool a, bool b) { return a || b; }
RNNKIT_INLINE void store_mask_u8(std::uint8_t* p, bool m) { *p = m ? 1 : 0; }

// Adding 1.5 * 2^23 moves the binary point to the units place, so the FPU's default
// round-to-nearest-even does the rounding; subtracting it back is exact. Without fast-math
// the compiler may not fold (a + c) - c, and SSE arithmetic has no excess precision.
RNNKIT_INLINE VecScalar<float> round_int(VecScalar<float> a) {
  return {(a.v + 12582912.0f) - 12582912.0f};
}
RNNKIT_INLINE VecScalar<double> round_int(VecScalar<double> a) {
  return {(a.v + 6755399441055744.0) - 6755399441055744.0};
}

// 2^k from its exponent bits, for k in the normal range.
RNNKIT_INLINE float pow2_bits_f32(std::int32_t k) {
  const std::uint32_t b = static_cast<std::uint32_t>(k + 127) << 23;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
RNNKIT_INLINE double pow2_bits_f64(std::int64_t k) {
  const std::uint64_t b = static_cast<std::uint64_t>(k + 1023) << 52;
  double f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
// a * 2^k1 * 2^k2 with k1 + k2 = n, each a normal power of two: the first product is exact,
// the second rounds once, also when the result is subnormal or overflows. A NaN n only comes
// with a NaN a (math.h); it is mapped to 0 because converting NaN to an integer is undefined.
RNNKIT_INLINE VecScalar<float> mul_pow2(VecScalar<float> a, VecScalar<float> n) {
  const std::int32_t k = n.v == n.v ? static_cast<std::int32_t>(n.v) : 0;
  const std::int32_t k1 = k >> 1;
  return {a.v * pow2_bits_f32(k1) * pow2_bits_f32(k - k1)};
}
RNNKIT_INLINE VecScalar<double> mul_pow2(VecScalar<double> a, VecScalar<double> n) {
  const std::int64_t k = n.v == n.v ? static_cast<std::int64_t>(n.v) : 0;
  const std::int64_t k1 = k >> 1;
  return {a.v * pow2_bits_f64(k1) * pow2_bits_f64(k - k1)};
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
