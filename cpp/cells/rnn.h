// Vanilla RNN cell: the driver's recurrent GEMM adds h_prev w_hh^T onto x w_ih^T in the
// step's gates, so the pointwise pass reads one buffer:
//   a = x w_ih^T + h_prev w_hh^T + b_ih + b_hh,  h = act(a),  act = tanh or relu.
// gates holds h~ = act(a) (the one post-activation value of this cell); with zoneout (kZone)
// h = z h_prev + (1 - z) h~.
#pragma once

#include "cells/step.h"
#include "kernel_api.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T, bool kRelu, bool kClip, bool kZone>
struct RnnFwd {
  static constexpr int kGates = 1;
  const FwdArgs<T>& a;
  T* bias = nullptr;  // [H] b_ih + b_hh, or null without biases

  explicit RnnFwd(const FwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    if (a.b_ih || a.b_hh) bias = ar.take(a.d.H);
  }
  i64 rec_cols() const { return a.d.H; }
  void init(const Ctx<T>&) {}
  void prepare(const Ctx<T>&) {
    if (bias) fold_bias(bias, a.b_ih, a.b_hh, a.d.H, a.d.H);
  }
  RecOut<T> rec_out(const FwdStep<T>& s) const { return {s.gates, a.d.H, true}; }

  struct Row {
    const RnnFwd& c;
    const FwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (kZone)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      T* g = s.gates + b * H;
      V a = V::load(g + j);  // x w_ih^T + h w_hh^T, accumulated by the driver's GEMMs
      if (c.bias) a = a + V::load(c.bias + j);
      if constexpr (kClip) a = clip_and_mark(a, V::set1(c.a.clip), s.mask + b * H + j);
      V h = kRelu ? max(V::zero(), a) : vtanh(a);
      h.store(g + j);
      if constexpr (kZone)
        h = zone(V::load(zr + j), V::load(s.h_prev + b * H + j), h);
      h.store(s.h_new + b * H + j);
    }
  };
  void step(const FwdStep<T>& s, const Ctx<T>& cx) {
    s.rows.each(cx.H, [&](i64 b) {
      for_lanes<T>(cx.H, Row{*this, s, b, zone_row(a.zoneout, s.rows, b, cx.H)});
    });
  }
  void freeze(const FwdStep<T>&, i64) {}
};

template <class T, bool kRelu, bool kClip, bool kZone>
struct RnnBwd {
  static constexpr int kGates = 1;
  const BwdArgs<T>& a;

  explicit RnnBwd(const BwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>&) {}
  i64 rec_cols() const { return a.d.H; }
  void init(const Ctx<T>&) {}
  void prepare(const Ctx<T>&) {}
  const T* dg_rec(const BwdStep<T>& s) const { return s.dgx; }
  const T* dg_hidden(const T* dgx) const { return dgx; }

  struct Row {
    const BwdStep<T>& s;
    i64 H, b;
    const T* zr;  // row b's zoneout row (kZone)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const V h = V::load(s.gates + b * H + j);
      V dh = V::load(s.dh + b * H + j);
      if constexpr (kZone)  // z dh to h_prev
        dh = unzone(V::load(zr + j), dh, s.dh_prev + b * H + j);
      // relu'(a) = [h > 0]; tanh'(a) = 1 - h^2
      V da = kRelu ? select(gt(h, V::zero()), dh, V::zero()) : dh * fnma(h, h, V::set1(T(1)));
      if constexpr (kClip) da = unclip(da, s.mask + b * H + j);
      da.store(s.dgx + b * H + j);
    }
  };
  void step(const BwdStep<T>& s, const Ctx<T>& cx) {
    s.rows.each(cx.H, [&](i64 b) {
      for_lanes<T>(cx.H, Row{s, cx.H, b, zone_row(a.zoneout, s.rows, b, cx.H)});
      if constexpr (!kZone) zero_n(s.dh_prev + b * cx.P, cx.P);  // h_prev: only through w_hh
    });
  }
  void freeze(const BwdStep<T>&, i64) {}
  void finish(const Ctx<T>&, const T*) {}
  void empty(const Ctx<T>&) {}
};

// Calls f(cell) with the forward (kFwd) or backward cell of this call's options.
template <bool kFwd, class T, class Args, class F>
void with_rnn(const Args& a, bool relu, F&& f) {
  with_flags(
      [&](auto kRelu, auto kClip, auto kZone) {
        constexpr bool r = decltype(kRelu)::value, c = decltype(kClip)::value,
                       z = decltype(kZone)::value;
        f(std::conditional_t<kFwd, RnnFwd<T, r, c, z>, RnnBwd<T, r, c, z>>(a));
      },
      relu, a.clip_mask != nullptr, a.zoneout != nullptr);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
