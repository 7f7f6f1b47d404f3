// Vanilla RNN cell, pointwise part of one step (the driver has done the GEMMs):
//   a = x w_ih^T + h_prev w_hh^T + b_ih + b_hh,  h = act(a),  act = tanh or relu.
// gates holds h itself (the one post-activation value of this cell).
#pragma once

#include "simd/math.h"
#include "cells/step.h"

namespace rnnkit {
namespace RNNKIT_NS {

struct RnnCell {
  static constexpr int G = 1;
};

template <class T, bool kRelu, bool kClip>
struct RnnFwdRow {
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    T* g = s.gates + b * H;
    V a = V::load(g + j);  // x w_ih^T + h w_hh^T, accumulated by the driver's GEMMs
    if (s.bias) a = a + V::load(s.bias + j);
    if constexpr (kClip) a = clip_and_mark(a, V::set1(s.clip), s.mask + b * H + j);
    const V h = kRelu ? max(V::zero(), a) : vtanh(a);
    h.store(g + j);
    h.store(s.h_new + b * H + j);
  }
};

template <class T, bool kRelu, bool kClip>
struct RnnBwdRow {
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    const V h = V::load(s.gates_in + b * H + j);
    const V dh = V::load(s.dh + b * H + j);
    // relu'(a) = [h > 0]; tanh'(a) = 1 - h^2
    V da = kRelu ? select(gt(h, V::zero()), dh, V::zero()) : dh * fnma(h, h, V::set1(T(1)));
    if constexpr (kClip) da = unclip(da, s.mask_in + b * H + j);
    da.store(s.dgx + b * H + j);
  }
};

}  // namespace RNNKIT_NS
}  // namespace rnnkit
