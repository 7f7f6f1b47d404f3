// bfloat16 weight panels for streams (weight_dtype="bfloat16"): the weights are held in 16 bits
// and widened to float32 as they are read (a shift left by 16 is exact), so the arithmetic and
// the activations stay float32 and the results are those of float32 weights rounded to
// bfloat16. At batch 1 a step is bound by reading the weights: half the bytes.
//
// Layout: W[N, K] (a weight matrix, row n = output column n of the product) is cut into panels
// of NR = kBf16Cols columns: panel j holds dst[j*K*NR + k*NR + c] = bf16(W[j*NR + c, k]),
// zero past N. Unlike the GEMM's float panels there is no K blocking: one panel is read
// from k = 0 to K, contiguously.
//
// The product C[M, N] (+)= A[M, K] W^T reads A rows through a MatView (processing-order rows)
// and walks each panel once per block of up to 4 rows, the widened panel row shared by them.
// AVX512-BF16's vdpbf16ps would round the activations to bfloat16 too; it is not used, so the
// documented error bound (weights only) holds on every target.
#pragma once

#include <cstdint>
#include <cstring>

#include "common.h"
#include "gemm.h"
#include "simd/vec.h"

namespace rnnkit {
namespace RNNKIT_NS {

using VF = Vec<float>;
constexpr int kBf16Vecs = VF::kLanes == 1 ? 8 : 2;  // vectors per panel row
constexpr int kBf16Cols = kBf16Vecs * VF::kLanes;   // columns per panel

inline i64 bf16_panels_size(i64 N, i64 K) { return round_up(N, kBf16Cols) * K; }

// Nearest bfloat16 of x, ties to even; NaN stays a quiet NaN (as stream.round_to_bfloat16).
inline std::uint16_t to_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40);
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// dst [bf16_panels_size(N, K)] <- the panels of W [N, K] (row-major, contiguous).
inline void pack_bf16_panels(std::uint16_t* dst, const float* W, i64 N, i64 K) {
  constexpr int NR = kBf16Cols;
  for (i64 j = 0; j * NR < N; ++j)
    for (i64 k = 0; k < K; ++k)
      for (int c = 0; c < NR; ++c) {
        const i64 n = j * NR + c;
        dst[(j * K + k) * NR + c] = n < N ? to_bf16(W[n * K + k]) : 0;
      }
}

// kLanes bfloat16 values widened to float32.
RNNKIT_INLINE VF load_bf16(const std::uint16_t* p) {
#if defined(RNNKIT_TARGET_AVX512)
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
#elif defined(RNNKIT_TARGET_AVX2)
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))};
#else
  const std::uint32_t u = static_cast<std::uint32_t>(*p) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return {f};
#endif
}

// Rows r0 .. r0+MR of C (+)= A W^T over one panel j: MR * kBf16Vecs accumulators, k split
// over KS interleaved sets when there are too few of them to hide the FMA latency.
template <int MR>
RNNKIT_INLINE void bf16_panel_rows(const float* const* a, const std::uint16_t* RESTRICT w, i64 K,
                                   float* const* c, i64 n_eff, bool accumulate) {
  constexpr int NV = kBf16Vecs, L = VF::kLanes, NR = kBf16Cols;
  constexpr int KS = MR * NV >= 8 ? 1 : (MR * NV >= 4 ? 2 : 4);
  VF acc[KS][MR][NV];
  for (int s = 0; s < KS; ++s)
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[s][r][v] = VF::zero();
  i64 k = 0;
  for (; k + KS <= K; k += KS)
#pragma GCC unroll 4
    for (int s = 0; s < KS; ++s) {
      VF wv[NV];
      for (int v = 0; v < NV; ++v) wv[v] = load_bf16(w + (k + s) * NR + v * L);
      for (int r = 0; r < MR; ++r) {
        const VF av = VF::set1(a[r][k + s]);
        for (int v = 0; v < NV; ++v) acc[s][r][v] = fma(av, wv[v], acc[s][r][v]);
      }
    }
  for (; k < K; ++k)
    for (int r = 0; r < MR; ++r) {
      const VF av = VF::set1(a[r][k]);
      for (int v = 0; v < NV; ++v)
        acc[0][r][v] = fma(av, load_bf16(w + k * NR + v * L), acc[0][r][v]);
    }
  for (int s = 1; s < KS; ++s)
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[0][r][v] = acc[0][r][v] + acc[s][r][v];
  for (int r = 0; r < MR; ++r) {
    float buf[NR];
    for (int v = 0; v < NV; ++v) acc[0][r][v].store(buf + v * L);
    float* dst = c[r];
    if (accumulate)
      for (i64 n = 0; n < n_eff; ++n) dst[n] += buf[n];
    else
      for (i64 n = 0; n < n_eff; ++n) dst[n] = buf[n];
  }
}

// C[M, N] (+)= A[M, K] W^T, W as bf16 panels of W [>= N, K]; C row stride ldc. A's rows are
// contiguous (A.cs == 1) and all present: streams have no lengths and no reverse.
inline void bf16_matmul(i64 M, i64 N, i64 K, MatView<float> A, const std::uint16_t* Wp, float* C,
                        i64 ldc, bool accumulate) {
  constexpr int NR = kBf16Cols;
  for (i64 r0 = 0; r0 < M; r0 += 4) {
    const int mr = static_cast<int>(M - r0 < 4 ? M - r0 : 4);
    const float* a[4];
    for (int r = 0; r < mr; ++r) a[r] = A.row(r0 + r);
    for (i64 j = 0; j * NR < N; ++j) {
      const i64 n_eff = N - j * NR < NR ? N - j * NR : NR;
      float* c[4];
      for (int r = 0; r < mr; ++r) c[r] = C + (r0 + r) * ldc + j * NR;
      const std::uint16_t* w = Wp + j * K * NR;
      switch (mr) {
        case 4: bf16_panel_rows<4>(a, w, K, c, n_eff, accumulate); break;
        case 3: bf16_panel_rows<3>(a, w, K, c, n_eff, accumulate); break;
        case 2: bf16_panel_rows<2>(a, w, K, c, n_eff, accumulate); break;
        default: bf16_panel_rows<1>(a, w, K, c, n_eff, accumulate); break;
      }
    }
  }
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
