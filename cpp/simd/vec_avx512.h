// AVX-512 vectors: 16 floats (F32x16) or 8 doubles (F64x8), with the interface of
// vec_scalar.h. Masks are k-registers. Needs AVX512F/DQ/BW/VL (target_avx512.cpp only).
#pragma once

#include <immintrin.h>

// gcc 12's own AVX-512 headers (max/min/roundscale use _mm512_undefined_*) trip
// -Wmaybe-uninitialized where they are inlined; a known false positive, silenced for this target.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstdint>

#ifndef RNNKIT_INLINE
#define RNNKIT_INLINE inline __attribute__((always_inline))
#endif

namespace rnnkit {
namespace RNNKIT_NS {

struct F32x16 {
  using Elem = float;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  __m512 v;
  static RNNKIT_INLINE F32x16 load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static RNNKIT_INLINE F32x16 set1(float x) { return {_mm512_set1_ps(x)}; }
  static RNNKIT_INLINE F32x16 zero() { return {_mm512_setzero_ps()}; }
  RNNKIT_INLINE void store(float* p) const { _mm512_storeu_ps(p, v); }
  static RNNKIT_INLINE Mask load_mask(const std::uint8_t* p) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm_test_epi8_mask(b, b);
  }
  friend RNNKIT_INLINE F32x16 operator+(F32x16 a, F32x16 b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x16 operator-(F32x16 a, F32x16 b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x16 operator*(F32x16 a, F32x16 b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x16 operator/(F32x16 a, F32x16 b) { return {_mm512_div_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x16 operator-(F32x16 a) { return {_mm512_xor_ps(a.v, _mm512_set1_ps(-0.0f))}; }
};

struct F64x8 {
  using Elem = double;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  __m512d v;
  static RNNKIT_INLINE F64x8 load(const double* p) { return {_mm512_loadu_pd(p)}; }
  static RNNKIT_INLINE F64x8 set1(double x) { return {_mm512_set1_pd(x)}; }
  static RNNKIT_INLINE F64x8 zero() { return {_mm512_setzero_pd()}; }
  RNNKIT_INLINE void store(double* p) const { _mm512_storeu_pd(p, v); }
  static RNNKIT_INLINE Mask load_mask(const std::uint8_t* p) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return static_cast<__mmask8>(_mm_test_epi8_mask(b, b));
  }
  friend RNNKIT_INLINE F64x8 operator+(F64x8 a, F64x8 b) { return {_mm512_add_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x8 operator-(F64x8 a, F64x8 b) { return {_mm512_sub_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x8 operator*(F64x8 a, F64x8 b) { return {_mm512_mul_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x8 operator/(F64x8 a, F64x8 b) { return {_mm512_div_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x8 operator-(F64x8 a) { return {_mm512_xor_pd(a.v, _mm512_set1_pd(-0.0))}; }
};

RNNKIT_INLINE void store(float* p, F32x16 a) { a.store(p); }
RNNKIT_INLINE void store(double* p, F64x8 a) { a.store(p); }
RNNKIT_INLINE F32x16 fma(F32x16 a, F32x16 b, F32x16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
RNNKIT_INLINE F64x8 fma(F64x8 a, F64x8 b, F64x8 c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
RNNKIT_INLINE F32x16 fnma(F32x16 a, F32x16 b, F32x16 c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }
RNNKIT_INLINE F64x8 fnma(F64x8 a, F64x8 b, F64x8 c) { return {_mm512_fnmadd_pd(a.v, b.v, c.v)}; }
// vmaxps returns the second operand when either is NaN: the same as `a > b ? a : b`.
RNNKIT_INLINE F32x16 max(F32x16 a, F32x16 b) { return {_mm512_max_ps(a.v, b.v)}; }
RNNKIT_INLINE F64x8 max(F64x8 a, F64x8 b) { return {_mm512_max_pd(a.v, b.v)}; }
RNNKIT_INLINE F32x16 min(F32x16 a, F32x16 b) { return {_mm512_min_ps(a.v, b.v)}; }
RNNKIT_INLINE F64x8 min(F64x8 a, F64x8 b) { return {_mm512_min_pd(a.v, b.v)}; }
RNNKIT_INLINE F32x16 abs(F32x16 a) { return {_mm512_andnot_ps(_mm512_set1_ps(-0.0f), a.v)}; }
RNNKIT_INLINE F64x8 abs(F64x8 a) { return {_mm512_andnot_pd(_mm512_set1_pd(-0.0), a.v)}; }
// Halves added pairwise down to one lane: a fixed order.
RNNKIT_INLINE float reduce_add(F32x16 a) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a.v),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
RNNKIT_INLINE double reduce_add(F64x8 a) {
  const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(a.v), _mm512_extractf64x4_pd(a.v, 1));
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

RNNKIT_INLINE __mmask16 lt(F32x16 a, F32x16 b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ); }
RNNKIT_INLINE __mmask16 gt(F32x16 a, F32x16 b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ); }
RNNKIT_INLINE __mmask16 le(F32x16 a, F32x16 b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ); }
RNNKIT_INLINE __mmask16 ge(F32x16 a, F32x16 b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ); }
RNNKIT_INLINE __mmask8 lt(F64x8 a, F64x8 b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ); }
RNNKIT_INLINE __mmask8 gt(F64x8 a, F64x8 b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ); }
RNNKIT_INLINE __mmask8 le(F64x8 a, F64x8 b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_LE_OQ); }
RNNKIT_INLINE __mmask8 ge(F64x8 a, F64x8 b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GE_OQ); }
RNNKIT_INLINE F32x16 select(__mmask16 m, F32x16 a, F32x16 b) { return {_mm512_mask_blend_ps(m, b.v, a.v)}; }
RNNKIT_INLINE F64x8 select(__mmask8 m, F64x8 a, F64x8 b) { return {_mm512_mask_blend_pd(m, b.v, a.v)}; }
RNNKIT_INLINE __mmask16 mask_or(__mmask16 a, __mmask16 b) { return static_cast<__mmask16>(a | b); }
RNNKIT_INLINE __mmask8 mask_or(__mmask8 a, __mmask8 b) { return static_cast<__mmask8>(a | b); }
RNNKIT_INLINE void store_mask_u8(std::uint8_t* p, __mmask16 m) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_maskz_set1_epi8(m, 1));
}
RNNKIT_INLINE void store_mask_u8(std::uint8_t* p, __mmask8 m) {
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_maskz_set1_epi8(m, 1));
}

RNNKIT_INLINE F32x16 round_nearest(F32x16 a) {
  return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
RNNKIT_INLINE F64x8 round_nearest(F64x8 a) {
  return {_mm512_roundscale_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
// a * 2^n: vscalef handles overflow to inf and results in the subnormal range itself.
RNNKIT_INLINE F32x16 ldexp_n(F32x16 a, F32x16 n) { return {_mm512_scalef_ps(a.v, n.v)}; }
RNNKIT_INLINE F64x8 ldexp_n(F64x8 a, F64x8 n) { return {_mm512_scalef_pd(a.v, n.v)}; }

}  // namespace RNNKIT_NS
}  // namespace rnnkit
