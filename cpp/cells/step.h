// What a cell's pointwise code sees for one time step: pointers to the step's rows and the
// call's options. The sequence driver fills it; cells read only what they need.
// Row b of an array [B, X] is `p + b * X`. All arrays are in processing order.
#pragma once

#include "common.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T>
struct Step {
  i64 H, P, GH;
  // forward
  T* gates;          // [B, GH] in: x w_ih^T (+ h_prev w_hh^T for RNN and LSTM); out: gates
  const T* rec;      // [B, 3H] (without linear_before_reset: [B, 2H]) GRU: h_prev w_hh^T
  const T* rec2;     // [B, H] GRU without linear_before_reset: (r*h_prev) w_hn^T
  const T* bias;     // [GH] b_ih + b_hh folded (GRU: n part holds b_in only), or null
  const T* b_hn;     // [H] GRU: b_hn, or null
  const T* h_prev;   // [B, P]
  T* h_new;          // [B, P] (LSTM with projection: unused by the cell, see m)
  const T* c_prev;   // [B, H] LSTM
  T* c_new;          // [B, H] LSTM
  T* m;              // [B, H] LSTM output before projection (= h_new without projection)
  T* hn;             // [B, H] GRU hidden part of n's pre-activation
  T* rh;             // [B, H] GRU without linear_before_reset: r * h_prev
  std::uint8_t* mask;  // [B, GH] clip mask, or null
  const T* peep;     // [3, H] LSTM peepholes, or null
  T clip;            // > 0 when clipping
  // backward
  const T* dh;       // [B, P] total gradient w.r.t. this step's output state
  const T* dm;       // [B, H] LSTM: gradient w.r.t. m (dh projected back), or dh
  T* dc;             // [B, H] LSTM: in dc_t, out dc_prev
  T* dgx;            // [B, GH] gradient w.r.t. the input-side pre-activations
  T* dgh;            // [B, GH] GRU with linear_before_reset: w.r.t. the hidden-side ones
  T* dh_direct;      // [B, P] gradient reaching h_prev other than through w_hh
  const T* drh;      // [B, H] GRU without linear_before_reset: gradient w.r.t. r*h_prev
  const std::uint8_t* mask_in;  // [B, GH] clip mask read in backward, or null
  const T* hn_in;    // [B, H] GRU hn read in backward
  const T* gates_in; // [B, GH] gates read in backward
};

// Clips v to [-clip, clip] and records where it was outside (gradient blocked there).
template <class V>
RNNKIT_INLINE V clip_and_mark(V v, V lim, std::uint8_t* mask) {
  store_mask_u8(mask, gt(abs(v), lim));
  return min(lim, max(-lim, v));
}

// Zeroes a gradient where the forward clipped the pre-activation.
template <class V>
RNNKIT_INLINE V unclip(V g, const std::uint8_t* mask) {
  return select(V::load_mask(mask), V::zero(), g);
}

// Runs body.template lanes<V>(j) over [0, n): full vectors, then a scalar tail.
template <class T, class Body>
RNNKIT_INLINE void for_lanes(i64 n, const Body& body) {
  using V = Vec<T>;
  i64 j = 0;
  for (; j + V::kLanes <= n; j += V::kLanes) body.template lanes<V>(j);
  for (; j < n; ++j) body.template lanes<Scalar<T>>(j);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
