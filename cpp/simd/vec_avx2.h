// AVX2 + FMA vectors: F32x8 (8 floats) and F64x4 (4 doubles), with the interface documented
// in vec_scalar.h. A Mask is a compare result (all-ones or all-zero lanes). Included only by
// targets compiled with -mavx2 -mfma (the AVX-512 target uses it for its half-width types).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#ifndef RNNKIT_INLINE
#define RNNKIT_INLINE inline __attribute__((always_inline))
#endif

namespace rnnkit {
namespace RNNKIT_NS {

// Bit i of `bits` (i < 8) to byte i of the result, as 0 or 1. The multiply by 0x00204081 puts
// copies of a 4-bit group 7 bits apart: bit i lands on bit 8i, the copies never overlap (so
// nothing carries), and the mask keeps bit 0 of each byte. Two groups of 4 make 8 lanes.
RNNKIT_INLINE std::uint64_t mask_bits_to_bytes(unsigned bits) {
  const std::uint64_t lo = ((bits & 15u) * 0x00204081u) & 0x01010101u;
  const std::uint64_t hi = (((bits >> 4) & 15u) * 0x00204081u) & 0x01010101u;
  return lo | hi << 32;
}

struct F32x8 {
  using Elem = float;
  using Mask = __m256;
  static constexpr int kLanes = 8;
  __m256 v;

  static RNNKIT_INLINE F32x8 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static RNNKIT_INLINE F32x8 set1(float x) { return {_mm256_set1_ps(x)}; }
  static RNNKIT_INLINE F32x8 zero() { return {_mm256_setzero_ps()}; }
  RNNKIT_INLINE void store(float* p) const { _mm256_storeu_ps(p, v); }
  // 8 bytes widened to 8 int32 lanes, then lane = (byte > 0) as all-ones.
  static RNNKIT_INLINE Mask load_mask_u8(const std::uint8_t* p) {
    const __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(w, _mm256_setzero_si256()));
  }
  static RNNKIT_INLINE Mask load_mask(const std::uint8_t* p) { return load_mask_u8(p); }

  friend RNNKIT_INLINE F32x8 operator+(F32x8 a, F32x8 b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x8 operator-(F32x8 a, F32x8 b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x8 operator*(F32x8 a, F32x8 b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x8 operator/(F32x8 a, F32x8 b) { return {_mm256_div_ps(a.v, b.v)}; }
  friend RNNKIT_INLINE F32x8 operator-(F32x8 a) {
    return {_mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f))};  // flips the sign bit, like scalar -x
  }
};

struct F64x4 {
  using Elem = double;
  using Mask = __m256d;
  static constexpr int kLanes = 4;
  __m256d v;

  static RNNKIT_INLINE F64x4 load(const double* p) { return {_mm256_loadu_pd(p)}; }
  static RNNKIT_INLINE F64x4 set1(double x) { return {_mm256_set1_pd(x)}; }
  static RNNKIT_INLINE F64x4 zero() { return {_mm256_setzero_pd()}; }
  RNNKIT_INLINE void store(double* p) const { _mm256_storeu_pd(p, v); }
  static RNNKIT_INLINE Mask load_mask_u8(const std::uint8_t* p) {
    std::int32_t b;
    std::memcpy(&b, p, 4);
    const __m256i w = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(b));
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(w, _mm256_setzero_si256()));
  }
  static RNNKIT_INLINE Mask load_mask(const std::uint8_t* p) { return load_mask_u8(p); }

  friend RNNKIT_INLINE F64x4 operator+(F64x4 a, F64x4 b) { return {_mm256_add_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x4 operator-(F64x4 a, F64x4 b) { return {_mm256_sub_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x4 operator*(F64x4 a, F64x4 b) { return {_mm256_mul_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x4 operator/(F64x4 a, F64x4 b) { return {_mm256_div_pd(a.v, b.v)}; }
  friend RNNKIT_INLINE F64x4 operator-(F64x4 a) {
    return {_mm256_xor_pd(a.v, _mm256_set1_pd(-0.0))};
  }
};

RNNKIT_INLINE void store(float* p, F32x8 a) { a.store(p); }
RNNKIT_INLINE void store(double* p, F64x4 a) { a.store(p); }
RNNKIT_INLINE F32x8 fma(F32x8 a, F32x8 b, F32x8 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
RNNKIT_INLINE F64x4 fma(F64x4 a, F64x4 b, F64x4 c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
RNNKIT_INLINE F32x8 fnma(F32x8 a, F32x8 b, F32x8 c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
RNNKIT_INLINE F64x4 fnma(F64x4 a, F64x4 b, F64x4 c) { return {_mm256_fnmadd_pd(a.v, b.v, c.v)}; }
// vmaxps / vminps return the second operand when either is NaN: `a > b ? a : b`.
RNNKIT_INLINE F32x8 max(F32x8 a, F32x8 b) { return {_mm256_max_ps(a.v, b.v)}; }
RNNKIT_INLINE F64x4 max(F64x4 a, F64x4 b) { return {_mm256_max_pd(a.v, b.v)}; }
RNNKIT_INLINE F32x8 min(F32x8 a, F32x8 b) { return {_mm256_min_ps(a.v, b.v)}; }
RNNKIT_INLINE F64x4 min(F64x4 a, F64x4 b) { return {_mm256_min_pd(a.v, b.v)}; }
RNNKIT_INLINE F32x8 abs(F32x8 a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
RNNKIT_INLINE F64x4 abs(F64x4 a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
RNNKIT_INLINE float reduce_add(F32x8 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
// (l0 + l2) + (l1 + l3)
RNNKIT_INLINE double reduce_add(F64x4 a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

RNNKIT_INLINE __m256 lt(F32x8 a, F32x8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ); }
RNNKIT_INLINE __m256 gt(F32x8 a, F32x8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ); }
RNNKIT_INLINE __m256 le(F32x8 a, F32x8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ); }
RNNKIT_INLINE __m256 ge(F32x8 a, F32x8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ); }
RNNKIT_INLINE __m256d lt(F64x4 a, F64x4 b) { return _mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ); }
RNNKIT_INLINE __m256d gt(F64x4 a, F64x4 b) { return _mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ); }
RNNKIT_INLINE __m256d le(F64x4 a, F64x4 b) { return _mm256_cmp_pd(a.v, b.v, _CMP_LE_OQ); }
RNNKIT_INLINE __m256d ge(F64x4 a, F64x4 b) { return _mm256_cmp_pd(a.v, b.v, _CMP_GE_OQ); }
// blendv takes the second source where the mask lane's sign bit is set.
RNNKIT_INLINE F32x8 select(__m256 m, F32x8 a, F32x8 b) { return {_mm256_blendv_ps(b.v, a.v, m)}; }
RNNKIT_INLINE F64x4 select(__m256d m, F64x4 a, F64x4 b) { return {_mm256_blendv_pd(b.v, a.v, m)}; }
RNNKIT_INLINE __m256 mask_or(__m256 a, __m256 b) { return _mm256_or_ps(a, b); }
RNNKIT_INLINE __m256d mask_or(__m256d a, __m256d b) { return _mm256_or_pd(a, b); }
RNNKIT_INLINE void store_mask_u8(std::uint8_t* p, __m256 m) {
  const std::uint64_t bytes = mask_bits_to_bytes(static_cast<unsigned>(_mm256_movemask_ps(m)));
  std::memcpy(p, &bytes, 8);  // x86 is little-endian: byte i of the integer is p[i]
}
RNNKIT_INLINE void store_mask_u8(std::uint8_t* p, __m256d m) {
  const std::uint32_t bytes = static_cast<std::uint32_t>(
      mask_bits_to_bytes(static_cast<unsigned>(_mm256_movemask_pd(m))));
  std::memcpy(p, &bytes, 4);
}

RNNKIT_INLINE F32x8 round_int(F32x8 a) {
  return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
RNNKIT_INLINE F64x4 round_int(F64x4 a) {
  return {_mm256_round_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
// a * 2^k1 * 2^k2 with k1 + k2 = n, as in vec_scalar.h. A NaN n converts to INT_MIN and gives
// garbage scale factors, harmless because a is then NaN too (math.h) and NaN * s is NaN.
RNNKIT_INLINE F32x8 mul_pow2(F32x8 a, F32x8 n) {
  const __m256i k = _mm256_cvtps_epi32(n.v);
  const __m256i k1 = _mm256_srai_epi32(k, 1), k2 = _mm256_sub_epi32(k, k1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  return {_mm256_mul_ps(_mm256_mul_ps(a.v, s1), s2)};
}
RNNKIT_INLINE F64x4 mul_pow2(F64x4 a, F64x4 n) {
  const __m128i k = _mm256_cvtpd_epi32(n.v);
  const __m128i k1 = _mm_srai_epi32(k, 1), k2 = _mm_sub_epi32(k, k1);
  const __m256i bias = _mm256_set1_epi64x(1023);
  const __m256d s1 = _mm256_castsi256_pd(
      _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(k1), bias), 52));
  const __m256d s2 = _mm256_castsi256_pd(
      _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(k2), bias), 52));
  return {_mm256_mul_pd(_mm256_mul_pd(a.v, s1), s2)};
}

// Square transposes for GEMM packing (not part of the Vec interface: only pack_b_panels and
// pack_a_block use them): dst[i * ldd + j] = src[j * lds + i] for i, j < 8 (float) /
// 4 (double). 8 loads, 24 shuffles and 8 stores for 64 floats, where an element-wise copy
// costs a load and a store per element.
RNNKIT_INLINE void transpose_square(const float* src, std::int64_t lds, float* dst,
                                    std::int64_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // r_i0 r_{i+1}0 r_i1 r_{i+1}1 (per half)
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // r_i2 r_{i+1}2 r_i3 r_{i+1}3
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));      // column 0 (4 rows)
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));  // column 1
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {  // rows 0-3 and 4-7 of column i (low halves), of i+4 (high)
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
RNNKIT_INLINE void transpose_square(const double* src, std::int64_t lds, double* dst,
                                    std::int64_t ldd) {
  __m256d r[4];
  for (int i = 0; i < 4; ++i) r[i] = _mm256_loadu_pd(src + i * lds);
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}
template <class T>
constexpr int kTransposeSquare = sizeof(T) == 4 ? 8 : 4;

}  // namespace RNNKIT_NS
}  // namespace rnnkit
