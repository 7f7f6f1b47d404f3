// AVX-512 vectors: F32x16 (16 floats) and F64x8 (8 doubles), with the interface documented in
// vec_scalar.h. A Mask is a k-register (__mmask16 / __mmask8). Needs AVX512 F, DQ, BW and VL:
// included only by the target compiled with those flags.
#pragma once

#include <immintrin.h>

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
  // vptestmb: mask bit i = (byte i != 0).
  static RNNKIT_INLINE Mask load_mask_u8(const std::uint8_t* p) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm_test_epi8_mask(b, b);
  }
  static RNNKIT_INLINE Mask load_mask(const std::uint8_t* p) { return load_mask_u8(p); }

  friend RNNKIT_INLINE F32x16 operator+(F32x16 a, F32x16 b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x16 operator-(F32x16 a, F32x16 b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x16 operator*(F32x16 a, F32x16 b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x16 operator/(F32x16 a, F32x16 b) { return {_mm512_div_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x16 operator-(F32x16 a) {
    return {_mm512_xor_ps(a.v, _mm512_set1_ps(-0.0f))};  // flips the sign bit, like scalar -x
  }
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
  static RNNKIT_INLINE Mask load_mask_u8(const std::uint8_t* p) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));  // 8 bytes
    return static_cast<__mmask8>(_mm_test_epi8_mask(b, b));
  }
  static RNNKIT_INLINE Mask load_mask(const std::uint8_t* p) { return load_mask_u8(p); }

  friend RNNKIT_INLINE F64x8 operator+(F64x8 a, F64x8 b) { return {_mm512_add_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x8 operator-(F64x8 a, F64x8 b) { return {_mm512_sub_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x8 operator*(F64x8 a, F64x8 b) { return {_mm512_mul_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x8 operator/(F64x8 a, F64x8 b) { return {_mm512_div_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x8 operator-(F64x8 a) {
    return {_mm512_xor_pd(a.v, _mm512_set1_pd(-0.0))};
  }
};

RNNKIT_INLINE void store(float* p, F32x16 a) { a.store(p); }
RNNKIT_INLINE void store(double* p, F64x8 a) { a.store(p); }
RNNKIT_INLINE F32x16 fma(F32x16 a, F32x16 b, F32x16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
RNNKIT_INLINE F64x8 fma(F64x8 a, F64x8 b, F64x8 c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
RNNKIT_INLINE F32x16 fnma(F32x16 a, F32x16 b, F32x16 c) {
  return {_mm512_fnmadd_ps(a.v, b.v, c.v)};
}
RNNKIT_INLINE F64x8 fnma(F64x8 a, F64x8 b, F64x8 c) { return {_mm512_fnmadd_pd(a.v, b.v, c.v)}; }
// vmaxps / vminps return the second operand when either is NaN: `a > b ? a : b`.
// Why the masked forms with an all-ones mask (same instruction): gcc 12 implements the unmasked
// _mm512_max_ps, _min_, _roundscale_ and _scalef_ with _mm512_undefined_ps(), a self-initialised
// variable that -Wmaybe-uninitialized reports wherever they are inlined.
RNNKIT_INLINE F32x16 max(F32x16 a, F32x16 b) { return {_mm512_mask_max_ps(a.v, 0xFFFF, a.v, b.v)}; }
RNNKIT_INLINE F64x8 max(F64x8 a, F64x8 b) { return {_mm512_mask_max_pd(a.v, 0xFF, a.v, b.v)}; }
RNNKIT_INLINE F32x16 min(F32x16 a, F32x16 b) { return {_mm512_mask_min_ps(a.v, 0xFFFF, a.v, b.v)}; }
RNNKIT_INLINE F64x8 min(F64x8 a, F64x8 b) { return {_mm512_mask_min_pd(a.v, 0xFF, a.v, b.v)}; }
RNNKIT_INLINE F32x16 abs(F32x16 a) { return {_mm512_andnot_ps(_mm512_set1_ps(-0.0f), a.v)}; }
RNNKIT_INLINE F64x8 abs(F64x8 a) { return {_mm512_andnot_pd(_mm512_set1_pd(-0.0), a.v)}; }
// Upper half added onto the lower half until one lane is left:
// (((l0+l8) + (l4+l12)) + ((l2+l10) + (l6+l14))) + (((l1+l9) + (l5+l13)) + ((l3+l11) + (l7+l15)))
RNNKIT_INLINE float reduce_add(F32x16 a) {
  const __m256 h = _mm256_add_ps(
      _mm512_castps512_ps256(a.v),
      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
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
// mask_blend takes its second vector where the mask bit is set.
RNNKIT_INLINE F32x16 select(__mmask16 m, F32x16 a, F32x16 b) {
  return {_mm512_mask_blend_ps(m, b.v, a.v)};
}
RNNKIT_INLINE F64x8 select(__mmask8 m, F64x8 a, F64x8 b) {
  return {_mm512_mask_blend_pd(m, b.v, a.v)};
}
RNNKIT_INLINE __mmask16 mask_or(__mmask16 a, __mmask16 b) { return static_cast<__mmask16>(a | b); }
RNNKIT_INLINE __mmask8 mask_or(__mmask8 a, __mmask8 b) { return static_cast<__mmask8>(a | b); }
// Byte i = 1 where mask bit i is set, else 0 (vpmovm2b would give 0xFF).
RNNKIT_INLINE void store_mask_u8(std::uint8_t* p, __mmask16 m) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_maskz_set1_epi8(m, 1));
}
RNNKIT_INLINE void store_mask_u8(std::uint8_t* p, __mmask8 m) {
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_maskz_set1_epi8(m, 1));
}

// Masked forms for the reason given at max().
RNNKIT_INLINE F32x16 round_int(F32x16 a) {
  return {
      _mm512_mask_roundscale_ps(a.v, 0xFFFF, a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
RNNKIT_INLINE F64x8 round_int(F64x8 a) {
  return {_mm512_mask_roundscale_pd(a.v, 0xFF, a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
// vscalef computes a * 2^floor(n) rounded once, overflow and subnormal results included, and
// returns NaN for a NaN n: no splitting needed, and n may be any value.
RNNKIT_INLINE F32x16 mul_pow2(F32x16 a, F32x16 n) {
  return {_mm512_mask_scalef_ps(a.v, 0xFFFF, a.v, n.v)};
}
RNNKIT_INLINE F64x8 mul_pow2(F64x8 a, F64x8 n) {
  return {_mm512_mask_scalef_pd(a.v, 0xFF, a.v, n.v)};
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
