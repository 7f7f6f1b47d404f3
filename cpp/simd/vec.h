// The vector layer a kernel sees. Vec<T> is the widest vector of T (float or double) on this
// translation unit's target, Scalar<T> the one-lane version for loop tails; both offer the
// interface documented at the top of vec_scalar.h, so kernels are written once against it.
// The including target_<isa>.cpp defines RNNKIT_NS (the namespace everything goes in, so no
// inline function is shared between targets) and RNNKIT_TARGET_SCALAR / _AVX2 / _AVX512.
#pragma once

#include <cstdint>

#ifndef RNNKIT_INLINE
#define RNNKIT_INLINE inline __attribute__((always_inline))
#endif

#ifndef RNNKIT_NS
#error "define RNNKIT_NS (the target's namespace) before including simd/vec.h"
#endif

#include "simd/vec_scalar.h"
#if defined(RNNKIT_TARGET_AVX2) || defined(RNNKIT_TARGET_AVX512)
#include "simd/vec_avx2.h"
#endif
#if defined(RNNKIT_TARGET_AVX512)
#include "simd/vec_avx512.h"
#endif

namespace rnnkit {
namespace RNNKIT_NS {

template <class T>
struct WidestVec {
  using type = VecScalar<T>;
};
#if defined(RNNKIT_TARGET_AVX512)
template <>
struct WidestVec<float> {
  using type = F32x16;
};
template <>
struct WidestVec<double> {
  using type = F64x8;
};
#elif defined(RNNKIT_TARGET_AVX2)
template <>
struct WidestVec<float> {
  using type = F32x8;
};
template <>
struct WidestVec<double> {
  using type = F64x4;
};
#endif

template <class T>
using Vec = typename WidestVec<T>::type;
template <class T>
using Scalar = VecScalar<T>;

// Square transposes for GEMM packing (see vec_avx2.h): none on the scalar target, whose
// pack_b_panels copies element by element (0 disables the blocked path).
#if defined(RNNKIT_TARGET_SCALAR)
template <class T>
constexpr int kTransposeSquare = 0;
template <class T>
RNNKIT_INLINE void transpose_square(const T*, std::int64_t, T*, std::int64_t) {}
#endif

// Free spelling of V::load_mask_u8 (a byte pointer alone cannot pick the vector type).
template <class V>
RNNKIT_INLINE typename V::Mask load_mask_u8(const std::uint8_t* p) {
  return V::load_mask_u8(p);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
