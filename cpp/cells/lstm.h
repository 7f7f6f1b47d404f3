// LSTM cell, pointwise part of one step (the driver has done the GEMMs and the projection):
//   a = x w_ih^T + h_prev w_hh^T + b_ih + b_hh = [a_i, a_f, a_g, a_o]
//   i = σ(a_i + p_i c_prev)   f = σ(a_f + p_f c_prev)   (CIFG: f = 1 - i)
//   g = tanh(a_g)   c = f c_prev + i g   o = σ(a_o + p_o c)   m = o tanh(c)
// Every pre-activation is clipped to [-clip, clip] when clipping (ONNX meaning).
#pragma once

#include "simd/math.h"
#include "cells/step.h"

namespace rnnkit {
namespace RNNKIT_NS {

struct LstmCell {
  static constexpr int G = 4;
};

template <class T, bool kPeep, bool kClip, bool kCifg>
struct LstmFwdRow {
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    T* g = s.gates + b * 4 * H;  // in: x w_ih^T + h w_hh^T, accumulated by the driver's GEMMs
    V ai = V::load(g + j);
    V af = V::load(g + H + j);
    V ag = V::load(g + 2 * H + j);
    V ao = V::load(g + 3 * H + j);
    if (s.bias) {
      ai = ai + V::load(s.bias + j);
      af = af + V::load(s.bias + H + j);
      ag = ag + V::load(s.bias + 2 * H + j);
      ao = ao + V::load(s.bias + 3 * H + j);
    }
    const V cp = V::load(s.c_prev + b * H + j);
    if constexpr (kPeep) {
      ai = fma(V::load(s.peep + j), cp, ai);
      if constexpr (!kCifg) af = fma(V::load(s.peep + H + j), cp, af);
    }
    const V one = V::set1(T(1));
    V lim;
    std::uint8_t* mk = nullptr;
    if constexpr (kClip) {
      lim = V::set1(s.clip);
      mk = s.mask + b * 4 * H;
      ai = clip_and_mark(ai, lim, mk + j);
      if constexpr (!kCifg)
        af = clip_and_mark(af, lim, mk + H + j);
      else
        store_mask_u8(mk + H + j, lt(one, V::zero()));  // f has no pre-activation: never clipped
      ag = clip_and_mark(ag, lim, mk + 2 * H + j);
    }
    const V i = vsigmoid(ai);
    const V f = kCifg ? one - i : vsigmoid(af);
    const V gg = vtanh(ag);
    const V c = fma(f, cp, i * gg);
    if constexpr (kPeep) ao = fma(V::load(s.peep + 2 * H + j), c, ao);
    if constexpr (kClip) ao = clip_and_mark(ao, lim, mk + 3 * H + j);
    const V o = vsigmoid(ao);
    i.store(g + j);
    f.store(g + H + j);
    gg.store(g + 2 * H + j);
    o.store(g + 3 * H + j);
    c.store(s.c_new + b * H + j);
    (o * vtanh(c)).store(s.m + b * H + j);
  }
};

template <class T, bool kPeep, bool kClip, bool kCifg>
struct LstmBwdRow {
  const Step<T>& s;
  i64 b;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    const i64 H = s.H;
    const T* g = s.gates_in + b * 4 * H;
    const V one = V::set1(T(1));
    const V i = V::load(g + j), f = V::load(g + H + j), gg = V::load(g + 2 * H + j),
            o = V::load(g + 3 * H + j);
    const V c = V::load(s.c_new + b * H + j);  // c_t (read-only in backward)
    const V cp = V::load(s.c_prev + b * H + j);
    const V dm = V::load(s.dm + b * H + j);
    const V tc = vtanh(c);
    // m = o tanh(c)
    V dao = dm * tc * o * (one - o);
    V dc = fma(dm * o, fnma(tc, tc, one), V::load(s.dc + b * H + j));
    if constexpr (kClip) dao = unclip(dao, s.mask_in + b * 4 * H + 3 * H + j);
    if constexpr (kPeep) dc = fma(V::load(s.peep + 2 * H + j), dao, dc);  // o peeks at c_t
    // c = f c_prev + i g   (CIFG: f = 1 - i, so dc/di = g - c_prev)
    V dai = kCifg ? dc * (gg - cp) : dc * gg;
    dai = dai * i * (one - i);
    V daf = kCifg ? V::zero() : dc * cp * f * (one - f);
    V dag = dc * i * fnma(gg, gg, one);
    if constexpr (kClip) {
      const std::uint8_t* mk = s.mask_in + b * 4 * H;
      dai = unclip(dai, mk + j);
      if constexpr (!kCifg) daf = unclip(daf, mk + H + j);
      dag = unclip(dag, mk + 2 * H + j);
    }
    V dcp = dc * f;
    if constexpr (kPeep) {
      dcp = fma(V::load(s.peep + j), dai, dcp);
      if constexpr (!kCifg) dcp = fma(V::load(s.peep + H + j), daf, dcp);
    }
    T* d = s.dgx + b * 4 * H;
    dai.store(d + j);
    daf.store(d + H + j);
    dag.store(d + 2 * H + j);
    dao.store(d + 3 * H + j);
    dcp.store(s.dc + b * H + j);
  }
};

}  // namespace RNNKIT_NS
}  // namespace rnnkit
