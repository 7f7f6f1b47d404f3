// exp, sigmoid and tanh for any vector type of simd/vec.h, float and double.
//
// exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then the Taylor polynomial of exp(r)
// (degree 7 for float, 13 for double: truncation below 0.1 ulp), scaled by 2^n in two steps so
// that overflow gives inf and tiny results fall gracefully into the subnormal range.
// tanh: tanh|x| = -e / (2 + e) with e = expm1(-2|x|); expm1 is a Taylor polynomial (degree 7 /
// 13) where |u| <= ln2/2, else exp(u) - 1, so tanh is relatively accurate near 0 too.
// sigmoid: 1 / (1 + exp(-x)); exact 1 for large x, 0 for x -> -inf, relative accuracy kept
// for large negative x.
// NaN propagates through all three (the clamps use SSE min/max order: min(hi, max(lo, x))).
//
// Measured maximum error against a correctly rounded reference (tests/test_simd_math.py,
// dense grids over [-30, 30] plus special values; same bound on scalar, AVX2, AVX-512):
//   float:  exp <= 2 ulp, sigmoid <= 3 ulp, tanh <= 3 ulp
//   double: exp <= 2 ulp, sigmoid <= 3 ulp, tanh <= 4 ulp
// (subnormal exp results: within 1 ulp of the subnormal spacing).
#pragma once

#include "common.h"
#include "simd/vec.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T>
struct MathConst;
template <>
struct MathConst<float> {
  static constexpr float hi = 89.0f;    // exp(89) overflows: clamping here still gives inf
  static constexpr float lo = -104.0f;  // exp(-104) is below half the smallest subnormal
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;  // 9 significant bits: n * ln2_hi is exact
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr int kExpDegree = 7;
  static constexpr int kExpm1Degree = 7;
};
template <>
struct MathConst<double> {
  static constexpr double hi = 710.0;
  static constexpr double lo = -746.0;
  static constexpr double log2e = 1.44269504088896338700e+00;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;  // trailing zero bits
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr int kExpDegree = 13;
  static constexpr int kExpm1Degree = 13;
};

// 1/k! for k = 0..13
template <class T>
constexpr T inv_factorial(int k) {
  T f = T(1);
  for (int i = 2; i <= k; ++i) f *= T(i);
  return T(1) / f;
}

template <class V>
RNNKIT_INLINE V vexp(V x) {
  using T = typename V::Elem;
  using C = MathConst<T>;
  x = min(V::set1(C::hi), max(V::set1(C::lo), x));
  const V n = round_nearest(x * V::set1(C::log2e));
  V r = fnma(n, V::set1(C::ln2_hi), x);
  r = fnma(n, V::set1(C::ln2_lo), r);
  V p = V::set1(inv_factorial<T>(C::kExpDegree));
#pragma GCC unroll 16
  for (int k = C::kExpDegree - 1; k >= 0; --k) p = fma(p, r, V::set1(inv_factorial<T>(k)));
  return ldexp_n(p, n);
}

// expm1 for u <= 0 (what tanh needs); relatively accurate for small |u|.
template <class V>
RNNKIT_INLINE V vexpm1_neg(V u) {
  using T = typename V::Elem;
  using C = MathConst<T>;
  V q = V::set1(inv_factorial<T>(C::kExpm1Degree));
#pragma GCC unroll 16
  for (int k = C::kExpm1Degree - 1; k >= 1; --k) q = fma(q, u, V::set1(inv_factorial<T>(k)));
  const V small = q * u;
  const V large = vexp(u) - V::set1(T(1));
  return select(gt(u, V::set1(T(-0.34657359027997264))), small, large);
}

template <class V>
RNNKIT_INLINE V vtanh(V x) {
  using T = typename V::Elem;
  const V u = V::set1(T(-2)) * abs(x);
  const V e = vexpm1_neg(u);
  const V t = e / (e + V::set1(T(2)));  // -tanh|x|
  return select(lt(x, V::zero()), t, -t);
}

template <class V>
RNNKIT_INLINE V vsigmoid(V x) {
  using T = typename V::Elem;
  const V one = V::set1(T(1));
  return one / (one + vexp(-x));
}

// y = f(x) elementwise; fn: 0 exp, 1 sigmoid, 2 tanh. Full vectors, then a scalar tail.
template <class T>
void math_apply(int fn, const T* x, T* y, i64 n) {
  using V = Vec<T>;
  using S = Scalar<T>;
  i64 i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) {
    const V v = V::load(x + i);
    (fn == 0 ? vexp(v) : fn == 1 ? vsigmoid(v) : vtanh(v)).store(y + i);
  }
  for (; i < n; ++i) {
    const S v = S::load(x + i);
    (fn == 0 ? vexp(v) : fn == 1 ? vsigmoid(v) : vtanh(v)).store(y + i);
  }
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
