// exp, sigmoid and tanh, written once against the vector interface of simd/vec.h, for float and
// double: exp within 1 ulp, sigmoid and tanh within 3 ulp (float) / 2 ulp (double) over the
// whole domain (these feed recurrences of hundreds of steps that must track the NumPy
// reference), NaN in -> NaN out, no fast-math shortcuts.
//
// exp(x): clamp x (NaN passes; the clamped ends still overflow to inf / underflow to 0), write
//   x = n ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 in two parts, n * ln2_hi exact), then
//   exp(x) = 2^n (1 + expm1(r)) with mul_pow2 rounding once, also into the subnormal range.
// expm1(r) on |r| <= ln2/2: r + r^2 (1/2! + r/3! + ... + r^(K-2)/K!), the Taylor series
//   (K = 7 float, 14 double: truncation below 0.1 / 0.02 ulp; K = 8 for float cost 5% more
//   per sigmoid / tanh for 0.73 instead of 0.78 ulp in exp), the same coefficients for both uses.
// tanh(x) = sign(x) * -E / (2 + E) with E = expm1(-2|x|) = 2^n expm1(r) + (2^n - 1): no
//   cancellation near 0 (E is relatively accurate there), odd by construction, exactly +-1 once
//   |x| passes the clamp, and x itself for |x| so small that tanh(x) rounds to x (this also
//   keeps the sign of +-0 and makes subnormal inputs exact).
// sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, with e = exp(-|x|): the second
//   form stays relatively accurate for large negative x all the way into the subnormal range
//   (1 / (1 + exp(-x)) would return 0 once exp(-x) overflows), is exactly 1 for large x and
//   0 at -inf.
// Precision of the last steps. double carries e and E as double words and corrects the
//   quotient with a Newton step (about half an ulp). float rounds e and E to one float each
//   and divides once: up to 2.5 ulp (checked on every float of [2^-13, 10] for tanh and of
//   +-[1e-8, 104] for sigmoid, avx512: 2.498 and 2.402; the double-word form gave 0.8), for a
//   third cheaper sigmoid and a 45% cheaper tanh (ns per element, 16k floats, avx512: sigmoid
//   0.54 -> 0.37, tanh 0.73 -> 0.40), which is 8% of an LSTM forward at B=1 H=64.
//   Native vs reference in float32 stays within the tests' 1e-5 relative tolerance.
//
// Measured maximum error, in ulp of the result's type, against a long-double NumPy reference,
// by `python bench/math_accuracy.py` (the dense grids of tests/test_simd_math.py plus 2e6 random
// finite bit patterns per dtype; exp over its normal-result range, the subnormal range has its
// own test). The scalar target has no hardware FMA, hence its larger sigmoid/tanh error.
// tests/test_simd_math.py asserts the bounds on the right on every run.
//                      avx512   avx2   scalar   bound
//   float   exp         0.78    0.78    0.81     1
//   float   sigmoid     2.09    2.09    2.09     3
//   float   tanh        2.46    2.46    2.46     3
//   double  exp         0.73    0.73    0.73     1
//   double  sigmoid     0.72    0.72    1.34     2
//   double  tanh        0.98    0.98    1.40     2
#pragma once

#include <cstdint>

#include "kernel_api.h"
#include "simd/vec.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T>
struct MathConst;

template <>
struct MathConst<float> {
  // exp: 2^128 overflows, 2^-150 rounds to 0, so clamping here keeps both results right.
  static constexpr float kExpHi = 89.0f;
  static constexpr float kExpLo = -104.0f;
  static constexpr float kLog2e = 1.44269504088896341f;
  // ln2 = kLn2Hi + kLn2Lo; kLn2Hi has 16 significant bits, so n * kLn2Hi is exact for |n| < 256.
  static constexpr float kLn2Hi = 0.693145751953125f;
  static constexpr float kLn2Lo = 1.42860682030941723212e-6f;
  static constexpr int kTerms = 7;  // expm1 Taylor series up to r^7 / 7!
  // tanh: 1 - tanh|x| < 2^-25 for |x| > 9.02, so tanh rounds to +-1 beyond kTanhBig; below
  // kTanhTiny, x^2 / 3 < 2^-26 and tanh(x) rounds to x.
  static constexpr float kTanhBig = 10.0f;
  static constexpr float kTanhTiny = 1.220703125e-4f;  // 2^-13
};

template <>
struct MathConst<double> {
  static constexpr double kExpHi = 710.0;   // exp(709.79) overflows
  static constexpr double kExpLo = -746.0;  // exp(-745.14) < 2^-1075 rounds to 0
  static constexpr double kLog2e = 1.44269504088896338700e+00;
  // kLn2Hi has 32 significant bits (the low 21 are zero): n * kLn2Hi exact for |n| < 2^21.
  static constexpr double kLn2Hi = 6.93147180369123816490e-01;
  static constexpr double kLn2Lo = 1.90821492927058770002e-10;
  static constexpr int kTerms = 14;
  static constexpr double kTanhBig = 20.0;                    // 1 - tanh|x| < 2^-54 from 19.06
  static constexpr double kTanhTiny = 3.7252902984619141e-9;  // 2^-28
};

// 1 / k!, rounded once (k! itself is exact in T for the k used here).
template <class T>
constexpr T inv_factorial(int k) {
  T f = T(1);
  for (int i = 2; i <= k; ++i) f *= T(i);
  return T(1) / f;
}

// r^2 (1/2! + r/3! + ... + r^(K-2)/K!): expm1(r) - r for |r| <= ln2/2 (a little more is fine).
template <class V>
RNNKIT_INLINE V expm1_tail(V r) {
  using T = typename V::Elem;
  constexpr int K = MathConst<T>::kTerms;
  V p = V::set1(inv_factorial<T>(K));
#pragma GCC unroll 16
  for (int k = K - 1; k >= 2; --k) p = fma(p, r, V::set1(inv_factorial<T>(k)));
  return (r * r) * p;
}

// x = n ln2 + r with n = round(x / ln2): returns r, sets n. The first step is exact (n * kLn2Hi
// is, and x is close to it), so r carries only kLn2Lo's tiny error.
template <class V>
RNNKIT_INLINE V reduce_ln2(V x, V& n) {
  using C = MathConst<typename V::Elem>;
  n = round_int(x * V::set1(C::kLog2e));
  const V r = fnma(n, V::set1(C::kLn2Hi), x);
  return fnma(n, V::set1(C::kLn2Lo), r);
}

// (num + num_lo) / (c + e + e_lo), the two sums taken unrounded (num_lo, e_lo are the small
// low parts of double-word values; |e| <= c). d + d_lo = c + e + e_lo (Fast2Sum plus the low
// part), q = num / d to about an ulp, and one Newton step on the residual
// num + num_lo - q (d + d_lo), exact up to the tiny q * d_lo with FMA, makes the quotient
// correct to about half an ulp plus the error already in the inputs.
template <class V>
RNNKIT_INLINE V div_sum(V num, V num_lo, V c, V e, V e_lo) {
  using T = typename V::Elem;
  const V d = c + e;
  const V d_lo = ((c - d) + e) + e_lo;
  const V rd = V::set1(T(1)) / d;
  const V q = num * rd;
  const V res = fnma(q, d_lo, fnma(q, d, num) + num_lo);
  return fma(res, rd, q);
}

// exp(x) = 2^n (p + p_lo) for x already clamped: p + p_lo = 1 + r + tail to far below an ulp.
template <class V>
struct ExpParts {
  V n, p, p_lo;
};
template <class V>
RNNKIT_INLINE ExpParts<V> exp_parts(V x) {
  using T = typename V::Elem;
  const V one = V::set1(T(1));
  ExpParts<V> e;
  const V r = reduce_ln2(x, e.n);
  const V hi = one + r;
  const V lo = (one - hi) + r;  // hi + lo = 1 + r exactly (Fast2Sum, |r| < 1)
  const V t = lo + expm1_tail(r);
  e.p = hi + t;
  e.p_lo = (hi - e.p) + t;
  return e;
}

template <class V>
RNNKIT_INLINE V vexp(V x) {
  using C = MathConst<typename V::Elem>;
  x = min(V::set1(C::kExpHi), max(V::set1(C::kExpLo), x));  // this operand order keeps NaN
  const ExpParts<V> e = exp_parts(x);
  return mul_pow2(e.p, e.n);
}

// sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, e = exp(-|x|) in (0, 1].
// float: e = 2^n (1 + (r + tail)), rounded without exp_parts' double word (sigmoid 11% faster,
// same measured error), and one division; double: e and the quotient carried to half an ulp.
template <class V>
RNNKIT_INLINE V vsigmoid(V x) {
  using T = typename V::Elem;
  using C = MathConst<T>;
  const V one = V::set1(T(1)), zero = V::zero();
  const V a = max(V::set1(C::kExpLo), -abs(x));  // keeps NaN
  const auto neg = lt(x, zero);
  if constexpr (sizeof(T) == 4) {
    V n;
    const V r = reduce_ln2(a, n);
    const V e = mul_pow2(one + (r + expm1_tail(r)), n);
    return select(neg, e, one) / (one + e);
  } else {
    const ExpParts<V> ep = exp_parts(a);
    const V e = mul_pow2(ep.p, ep.n);
    const V e_lo = mul_pow2(ep.p_lo, ep.n);
    return div_sum(select(neg, e, one), select(neg, e_lo, zero), one, e, e_lo);
  }
}

// tanh|x| = -E / (2 + E) with E = expm1(-2|x|) carried as a double word e + e_lo, so neither
// the cancellation inside E nor the sum 2 + E loses anything: about half an ulp from 0 up to the
// saturation at 1 (the Newton step of div_sum needs FMA; the scalar target gets about one ulp).
// With u = -2|x| = n ln2 + r and s = 2^n <= 1: w = exp(u) = s + s r + s tail (products by s
// are exact), then E = w - 1; each sum is a Fast2Sum, whose rounding error is carried along.
template <class V>
RNNKIT_INLINE V vtanh(V x) {
  using T = typename V::Elem;
  using C = MathConst<T>;
  const V one = V::set1(T(1));
  const V a = abs(x);
  const V u = max(V::set1(T(-2) * C::kTanhBig), V::set1(T(-2)) * a);  // keeps NaN
  V n;
  const V r = reduce_ln2(u, n);
  const V s = mul_pow2(one, n);
  V t;  // tanh|x|
  if constexpr (sizeof(T) == 4) {  // float: E = s expm1(r) + (s - 1) rounded once, one division
    const V e = fma(s, r + expm1_tail(r), s - one);
    t = -e / (V::set1(T(2)) + e);
  } else {
    const V sr = s * r, st = s * expm1_tail(r);
    const V b = sr + st, b_lo = (sr - b) + st;            // |st| <= |sr|
    const V w = s + b, w_lo = ((s - w) + b) + b_lo;       // |b| <= s
    const V e = w - one, e_lo = (w - (e + one)) + w_lo;   // w <= 1
    t = div_sum(-e, -e_lo, V::set1(T(2)), e, e_lo);
  }
  const V signed_t = select(lt(x, V::zero()), -t, t);
  return select(lt(a, V::set1(C::kTanhTiny)), x, signed_t);
}

// y[i] = f(x[i]) for i < n, f by fn: 0 exp, 1 sigmoid, 2 tanh. Full vectors, then a scalar
// tail. x and y may be the same array.
template <class T, class F>
RNNKIT_INLINE void math_map(const T* x, T* y, std::int64_t n, F f) {
  using V = Vec<T>;
  using S = Scalar<T>;
  std::int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) f(V::load(x + i)).store(y + i);
  for (; i < n; ++i) f(S::load(x + i)).store(y + i);
}

template <class T>
void math_apply(MathFn fn, const T* x, T* y, std::int64_t n) {
  if (fn == MathFn::kExp)
    math_map(x, y, n, [](auto v) { return vexp(v); });
  else if (fn == MathFn::kSigmoid)
    math_map(x, y, n, [](auto v) { return vsigmoid(v); });
  else
    math_map(x, y, n, [](auto v) { return vtanh(v); });
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
