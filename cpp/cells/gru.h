// GRU cell, pointwise part of one step (the driver has done the GEMMs):
//   r = σ(x w_ir + b_ir + h w_hr + b_hr)   z = σ(x w_iz + b_iz + h w_hz + b_hz)
//   linear_before_reset:  hn = h w_hn + b_hn,        n = tanh(x w_in + b_in + r * hn)
//   otherwise:            hn = (r*h) w_hn + b_hn,    n = tanh(x w_in + b_in + hn)
//   h_new = (1 - z) n + z h
// Without linear_before_reset the step needs r before its second GEMM, so the pointwise work
// comes in two phases around it (GruRzRow, then GruNRow); with it, GruFwdRow does it all.
#pragma once

#include "simd/math.h"
#include "cells/step.h"

namespace rnnkit {
namespace RNNKIT_NS {

struct GruCell {
  static constexpr int G = 3;
};

// r and z from their pre-activations (rec row stride = rec_ld).
template <class T, class V, bool kClip>
RNNKIT_INLINE void gru_rz(const Step<T>& s, i64 b, i64 j, i64 rec_ld, V& r, V& z) {
  const i64 H = s.H;
  T* g = s.gates + b * 3 * H;
  const T* rc = s.rec + b * rec_ld;
  V ar = V::load(g + j) + V::load(rc + j);
  V az = V::load(g + H + j) + V::load(rc + H + j);
  if (s.bias) {
    ar = ar + V::load(s.bias + j);
    az = az + V::load(s.bias + H + j);
  }
  if constexpr (kClip) {
    const V lim = V::set1(s.clip);
    ar = clip_and_mark(ar, lim, s.mask + b * 3 * H + j);
    az = clip_and_mark(az, lim, s.mask + b * 3 * H + H + j);
  }
  r = vsigmoid(ar);
  z = vsigmoid(az);
}

// n and h_new, given r, z and the hidden part hn of n's pre-activation (before/after reset).
template <class T, class V, bool kClip, bool kLbr>
RNNKIT_INLINE void gru_n(const Step<T>& s, i64 b, i64 j, V r, V z, V hn) {
  const i64 H = s.H;
  T* g = s.gates + b * 3 * H;
  V an = V::load(g + 2 * H + j);
  if (s.bias) an = an + V::load(s.bias + 2 * H + j);
  an = kLbr ? fma(r, hn, an) : an + hn;
  if constexpr (kClip) an = clip_and_mark(an, V::set1(s.clip), s.mask + b * 3 * H + 2 * H + j);
  const V n = vtanh(an);
  const V hp = V::load(s.h_prev + b * H + j);
  n.store(g + 2 * H + j);
  hn.store(s.hn + b * H + j);
  fma(z, hp - n, n).store(s.h_new + b * H + j);  // (1-z) n + z h
}

template <class T, bool kClip>
struct GruFwdRow {  // linear_before_reset
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    V r, z;
    gru_rz<T, V, kClip>(s, b, j, 3 * H, r, z);
    V hn = V::load(s.rec + b * 3 * H + 2 * H + j);
    if (s.b_hn) hn = hn + V::load(s.b_hn + j);
    T* g = s.gates + b * 3 * H;
    r.store(g + j);
    z.store(g + H + j);
    gru_n<T, V, kClip, true>(s, b, j, r, z, hn);
  }
};

template <class T, bool kClip>
struct GruRzRow {  // phase 1 without linear_before_reset: r, z and r*h_prev
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    V r, z;
    gru_rz<T, V, kClip>(s, b, j, 2 * H, r, z);
    T* g = s.gates + b * 3 * H;
    r.store(g + j);
    z.store(g + H + j);
    (r * V::load(s.h_prev + b * H + j)).store(s.rh + b * H + j);
  }
};

template <class T, bool kClip>
struct GruNRow {  // phase 2 without linear_before_reset: n and h_new
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    const T* g = s.gates + b * 3 * H;
    V hn = V::load(s.rec2 + b * H + j);
    if (s.b_hn) hn = hn + V::load(s.b_hn + j);
    gru_n<T, V, kClip, false>(s, b, j, V::load(g + j), V::load(g + H + j), hn);
  }
};

// Backward, common part: dz, dn and the direct path dh_prev = dh z.
// Writes dgx z and n parts; returns da_n.
template <class T, class V, bool kClip>
RNNKIT_INLINE V gru_bwd_zn(const Step<T>& s, i64 b, i64 j) {
  const i64 H = s.H;
  const T* g = s.gates_in + b * 3 * H;
  const V one = V::set1(T(1));
  const V z = V::load(g + H + j), n = V::load(g + 2 * H + j);
  const V dh = V::load(s.dh + b * H + j);
  const V hp = V::load(s.h_prev + b * H + j);
  V daz = dh * (hp - n) * z * (one - z);
  V dan = dh * (one - z) * fnma(n, n, one);
  if constexpr (kClip) {
    daz = unclip(daz, s.mask_in + b * 3 * H + H + j);
    dan = unclip(dan, s.mask_in + b * 3 * H + 2 * H + j);
  }
  T* d = s.dgx + b * 3 * H;
  daz.store(d + H + j);
  dan.store(d + 2 * H + j);
  (dh * z).store(s.dh_direct + b * H + j);
  return dan;
}

template <class T, bool kClip>
struct GruBwdRow {  // linear_before_reset: everything in one pass
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    const V one = V::set1(T(1));
    const V dan = gru_bwd_zn<T, V, kClip>(s, b, j);
    const V r = V::load(s.gates_in + b * 3 * H + j);
    V dar = dan * V::load(s.hn_in + b * H + j) * r * (one - r);
    if constexpr (kClip) dar = unclip(dar, s.mask_in + b * 3 * H + j);
    dar.store(s.dgx + b * 3 * H + j);
    // the hidden side sees r * da_n for n, the same as the input side for r and z
    T* dh = s.dgh + b * 3 * H;
    dar.store(dh + j);
    V::load(s.dgx + b * 3 * H + H + j).store(dh + H + j);
    (dan * r).store(dh + 2 * H + j);
  }
};

template <class T, bool kClip>
struct GruBwdZnRow {  // without linear_before_reset, before the d(r*h) GEMM
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const { gru_bwd_zn<T, V, kClip>(s, b, j); }
};

template <class T, bool kClip>
struct GruBwdRRow {  // without linear_before_reset, after the d(r*h) GEMM
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    const V one = V::set1(T(1));
    const V r = V::load(s.gates_in + b * 3 * H + j);
    const V hp = V::load(s.h_prev + b * H + j);
    const V drh = V::load(s.drh + b * H + j);
    V dar = drh * hp * r * (one - r);
    if constexpr (kClip) dar = unclip(dar, s.mask_in + b * 3 * H + j);
    dar.store(s.dgx + b * 3 * H + j);
    T* dd = s.dh_direct + b * H + j;
    fma(drh, r, V::load(dd)).store(dd);
    (r * hp).store(s.rh + b * H + j);  // kept for dw_hn = da_n^T (r*h)
  }
};

}  // namespace RNNKIT_NS
}  // namespace rnnkit
