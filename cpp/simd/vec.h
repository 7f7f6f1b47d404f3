// The vector layer a kernel sees: Vec<T> is the widest vector of T on this translation unit's
// target, Scalar<T> the one-lane version used for loop tails. Every vector type offers the same
// operations (vec_scalar.h documents them), so kernels are written once against the interface.
#pragma once

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
template <> struct WidestVec<float> { using type = F32x16; };
template <> struct WidestVec<double> { using type = F64x8; };
#elif defined(RNNKIT_TARGET_AVX2)
template <> struct WidestVec<float> { using type = F32x8; };
template <> struct WidestVec<double> { using type = F64x4; };
#endif

template <class T>
using Vec = typename WidestVec<T>::type;
template <class T>
using Scalar = VecScalar<T>;

}  // namespace RNNKIT_NS
}  // namespace rnnkit
