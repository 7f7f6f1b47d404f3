// Vanilla RNN cell: the driver's recurrent GEMM adds h_prev w_hh^T onto x w_ih^T in the
// step's gates, so the pointwise pass reads one buffer:
//   a = x w_ih^T + h_prev w_hh^T + b_ih + b_hh,  h = act(a),  act = tanh or relu.
// gates holds h~ = act(a) (the one post-activation value of this cell); with zoneout (zoneout)
// h = z h_prev + (1 - z) h~.
// Options (template parameters): kRelu, kClip, kLn layer norm (ln_ih and/or ln_hh):
//   a = LN_ih(x w_ih^T) + LN_hh(h_prev w_hh^T) + b_ih + b_hh; the recurrent product then goes
//   to the cell's own buffer `rec`, and each row's norms are taken before its pointwise pass.
#pragma once

#include "cells/step.h"
#include "kernel_api.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T, bool kRelu, bool kClip, bool kLn>
struct RnnFwd {
  static constexpr int kGates = 1;
  const FwdArgs<T>& a;
  T* bias = nullptr;  // [H] b_ih + b_hh, or null without biases
  T* rec = nullptr;   // [B, H] h_prev w_hh^T (kLn)

  explicit RnnFwd(const FwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    if (a.b_ih || a.b_hh) bias = ar.take(a.d.H);
    if constexpr (kLn) rec = ar.take(a.d.B * a.d.H);
  }
  i64 rec_cols() const { return a.d.H; }
  void init(const Ctx<T>&) {
    if constexpr (kLn) ln_init(a);
  }
  void prepare(const Ctx<T>&) {
    if (bias) fold_bias(bias, a.b_ih, a.b_hh, a.d.H, a.d.H);
  }
  RecOut<T> rec_out(const FwdStep<T>& s) const {
    if constexpr (kLn) return {rec, a.d.H, false};
    return {s.gates, a.d.H, true};
  }

  struct Row {
    const RnnFwd& c;
    const FwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (zoneout)
    LnFwd<T> lx{}, lh{};  // this row's norms of x w_ih^T and h w_hh^T (kLn)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      T* g = s.gates + b * H;
      V a = V::load(g + j);  // x w_ih^T + h w_hh^T, accumulated by the driver's GEMMs
      if constexpr (kLn) a = lx.at(a, j) + lh.at(V::load(c.rec + b * H + j), j);
      if (c.bias) a = a + V::load(c.bias + j);
      if constexpr (kClip) a = clip_and_mark(a, V::set1(c.a.clip), s.mask + b * H + j);
      V h = kRelu ? max(V::zero(), a) : vtanh(a);
      h.store(g + j);
      if (zr) h = zone(V::load(zr + j), V::load(s.h_prev + b * H + j), h);
      h.store(s.h_new + b * H + j);
    }
  };
  void step(const FwdStep<T>& s, const Ctx<T>& cx) {
    const i64 H = cx.H;
    s.rows.each(H, [&](i64 b) {
      Row row{*this, s, b, zone_row(a.zoneout, s.rows, b, H)};
      if constexpr (kLn) {
        const i64 r = s.k * cx.B + b;
        T* rs = a.ln_rstd + r * 4;
        row.lx = ln_row(a.ln_ih, H, 0, s.gates + b * H, H, a.ih_hat + r * H, rs + kLnIh);
        row.lh = ln_row(a.ln_hh, H, 0, rec + b * H, H, a.hh_hat + r * H, rs + kLnHh);
      }
      for_lanes<T>(H, row);
    });
  }
  void freeze(const FwdStep<T>& s, i64 b) {
    if constexpr (kLn) ln_freeze(a, s.k * a.d.B + b);
  }
};

template <class T, bool kRelu, bool kClip, bool kLn>
struct RnnBwd {
  static constexpr int kGates = 1;
  const BwdArgs<T>& a;
  T* da = nullptr;   // [T, B, H] dL/da, the gradient after the norms (kLn; 0 on frozen rows)
  T* dgh = nullptr;  // [T, B, H] dL/d(h w_hh^T) (kLn with ln_hh; 0 on frozen rows)

  explicit RnnBwd(const BwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    const i64 n = a.d.T * a.d.B * a.d.H;
    if constexpr (kLn) {
      da = ar.take(n);
      if (a.ln_hh) dgh = ar.take(n);
    }
  }
  i64 rec_cols() const { return a.d.H; }
  void init(const Ctx<T>&) {}
  void prepare(const Ctx<T>&) {}
  const T* dg_rec(const BwdStep<T>& s) const {
    if constexpr (kLn) return (dgh ? dgh : da) + s.k * a.d.B * a.d.H;
    return s.dgx;
  }
  const T* dg_hidden(const T* dgx) const {
    if constexpr (kLn) return dgh ? dgh : da;
    return dgx;
  }
  const T* dg_bias_ih(const T* dgx) const { return kLn ? da : dgx; }
  const T* dg_bias_hh(const T* dgx) const { return kLn ? da : dgx; }

  struct Row {
    const BwdStep<T>& s;
    T* out;  // [B, H] where dL/da goes: dgx, or this step's rows of da (kLn)
    i64 H, b;
    const T* zr;  // row b's zoneout row (zoneout)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const V h = V::load(s.gates + b * H + j);
      V dh = V::load(s.dh + b * H + j);
      if (zr)  // z dh to h_prev
        dh = unzone(V::load(zr + j), dh, s.dh_prev + b * H + j);
      // relu'(a) = [h > 0]; tanh'(a) = 1 - h^2
      V da = kRelu ? select(gt(h, V::zero()), dh, V::zero()) : dh * fnma(h, h, V::set1(T(1)));
      if constexpr (kClip) da = unclip(da, s.mask + b * H + j);
      da.store(out + b * H + j);
    }
  };
  void step(const BwdStep<T>& s, const Ctx<T>& cx) {
    const i64 H = cx.H;
    T* out = kLn ? da + s.k * cx.B * H : s.dgx;
    s.rows.each(H, [&](i64 b) {
      for_lanes<T>(H, Row{s, out, H, b, zone_row(a.zoneout, s.rows, b, H)});
      if (!a.zoneout) zero_n(s.dh_prev + b * cx.P, cx.P);  // h_prev: only through w_hh
      if constexpr (kLn) {  // back through the norms: dL/d(x w_ih^T), dL/d(h w_hh^T)
        const i64 r = s.k * cx.B + b;
        const T* rs = a.ln_rstd + r * 4;
        const T* dar = da + r * H;
        ln_backward_row(s.dgx + b * H, dar, a.ih_hat + r * H, a.ln_ih, rs[kLnIh], H);
        if (dgh) ln_backward_row(dgh + r * H, dar, a.hh_hat + r * H, a.ln_hh, rs[kLnHh], H);
      }
    });
  }
  void freeze(const BwdStep<T>& s, i64 b) {
    if constexpr (kLn) {
      const i64 r = s.k * a.d.B + b, H = a.d.H;
      zero_n(da + r * H, H);
      if (dgh) zero_n(dgh + r * H, H);
    }
  }
  void finish(const Ctx<T>& cx, const T*) {
    if constexpr (kLn) {
      const i64 TB = cx.T_ * cx.B, H = cx.H;
      if (a.dln_ih) ln_param_grad(a.dln_ih, H, da, a.ih_hat, H, TB);
      if (a.dln_hh) ln_param_grad(a.dln_hh, H, da, a.hh_hat, H, TB);
    }
  }
  void empty(const Ctx<T>& cx) {
    if (a.dln_ih) zero_n(a.dln_ih, 2 * cx.H);
    if (a.dln_hh) zero_n(a.dln_hh, 2 * cx.H);
  }
};

// Calls f(cell) with the forward (kFwd) or backward cell of this call's options.
template <bool kFwd, class T, class Args, class F>
void with_rnn(const Args& a, bool relu, F&& f) {
  with_flags(
      [&](auto kRelu, auto kClip, auto kLn) {
        constexpr bool r = decltype(kRelu)::value, c = decltype(kClip)::value,
                       n = decltype(kLn)::value;
        f(std::conditional_t<kFwd, RnnFwd<T, r, c, n>, RnnBwd<T, r, c, n>>(a));
      },
      relu, a.clip_mask != nullptr, a.ln_ih != nullptr || a.ln_hh != nullptr);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
