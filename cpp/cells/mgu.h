// Minimal gated unit (Zhou et al. 2016), gate order f, n. The driver's recurrent GEMM adds
// h_prev w_hf^T onto x w_if^T in the step's gates (R = H rows of w_hh); the cell needs f
// before its own second GEMM (f*h) w_hn^T, so its pointwise work comes in two passes:
//   f = σ(x w_if^T + b_if + h w_hf^T + b_hf)                  (FRow)
//   n = tanh(x w_in^T + b_in + (f*h) w_hn^T + b_hn)           (NRow)
//   h_new = (1 - f) h + f n,  with zoneout (zoneout, null without) then z h + (1 - z) h_new
// Every pre-activation is clipped to [-clip, clip] when clipping (as the GRU).
// Options (template parameters): kClip; zoneout (the kernels take it; the Python API
// does not offer it for the MGU).
#pragma once

#include "cells/step.h"
#include "kernel_api.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T, bool kClip>
struct MguFwd {
  static constexpr int kGates = 2;
  const FwdArgs<T>& a;
  T* bias = nullptr;  // [2H] b_ih + b_hh (b_hn adds outside f*h), or null
  T* w_n = nullptr;   // packed w_hn^T [H, H]
  T* fh = nullptr;    // [B, H] f * h_prev
  T* rec2 = nullptr;  // [B, H] (f*h_prev) w_hn^T

  explicit MguFwd(const FwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    const i64 B = a.d.B, H = a.d.H;
    if (a.b_ih || a.b_hh) bias = ar.take(2 * H);
    w_n = ar.take(gemm_packed_b_size<T>(H, H));
    fh = ar.take(B * H);
    rec2 = ar.take(B * H);
  }
  i64 rec_cols() const { return a.d.H; }
  void init(const Ctx<T>&) {}
  void prepare(const Ctx<T>& cx) {
    const i64 H = cx.H;
    if (bias) fold_bias(bias, a.b_ih, a.b_hh, 2 * H, 2 * H);
    pack_b<T>(w_n, MatView<T>{a.w_hh + H * H, 1, H}, H, H, cx.nth);
  }
  RecOut<T> rec_out(const FwdStep<T>& s) const { return {s.gates, 2 * a.d.H, true}; }

  struct FRow {
    const MguFwd& c;
    const FwdStep<T>& s;
    i64 b;
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      T* g = s.gates + b * 2 * H;
      V af = V::load(g + j);  // x w_if^T + h w_hf^T, accumulated by the driver's GEMMs
      if (c.bias) af = af + V::load(c.bias + j);
      if constexpr (kClip) af = clip_and_mark(af, V::set1(c.a.clip), s.mask + b * 2 * H + j);
      const V f = vsigmoid(af);
      f.store(g + j);
      (f * V::load(s.h_prev + b * H + j)).store(c.fh + b * H + j);
    }
  };
  struct NRow {
    const MguFwd& c;
    const FwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (zoneout, null without)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      T* g = s.gates + b * 2 * H;
      V an = V::load(g + H + j) + V::load(c.rec2 + b * H + j);
      if (c.bias) an = an + V::load(c.bias + H + j);
      if constexpr (kClip) an = clip_and_mark(an, V::set1(c.a.clip), s.mask + b * 2 * H + H + j);
      const V n = vtanh(an);
      const V f = V::load(g + j);
      const V hp = V::load(s.h_prev + b * H + j);
      n.store(g + H + j);
      V h = fma(f, n - hp, hp);  // (1-f) h + f n
      if (zr) h = zone(V::load(zr + j), hp, h);
      h.store(s.h_new + b * H + j);
    }
  };
  void step(const FwdStep<T>& s, const Ctx<T>& cx) {
    const i64 H = cx.H;
    s.rows.each(cx.GH, [&](i64 b) { for_lanes<T>(H, FRow{*this, s, b}); });
    gemm_packed<T>(cx.B, H, H, MatView<T>{fh, H, 1}, w_n, rec2, H, false, cx.gemm, cx.nth);
    s.rows.each(
        H, [&](i64 b) { for_lanes<T>(H, NRow{*this, s, b, zone_row(a.zoneout, s.rows, b, H)}); });
  }
  void freeze(const FwdStep<T>&, i64) {}
};

template <class T, bool kClip>
struct MguBwd {
  static constexpr int kGates = 2;
  const BwdArgs<T>& a;
  T* fh_all = nullptr;  // [T, B, H] f * h_prev of every step, 0 on frozen rows (dw_hn)
  T* dfh = nullptr;     // [B, H] dL/d(f*h_prev) = da_n w_hn
  T* w_n = nullptr;     // packed w_hn [H, H] as it is

  explicit MguBwd(const BwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    const Dims& d = a.d;
    fh_all = ar.take(d.T * d.B * d.H);
    dfh = ar.take(d.B * d.H);
    w_n = ar.take(gemm_packed_b_size<T>(d.H, d.H));
  }
  i64 rec_cols() const { return a.d.H; }
  void init(const Ctx<T>&) {}
  void prepare(const Ctx<T>& cx) {
    const i64 H = cx.H;
    pack_b<T>(w_n, MatView<T>{a.w_hh + H * H, H, 1}, H, H, cx.nth);
  }
  const T* dg_rec(const BwdStep<T>& s) const { return s.dgx; }
  const T* dg_hidden(const T* dgx) const { return dgx; }
  const T* dg_bias_ih(const T* dgx) const { return dgx; }
  const T* dg_bias_hh(const T* dgx) const { return dgx; }

  struct NRow {  // before the d(f*h) GEMM: da_n, the direct paths through h_new
    const BwdStep<T>& s;
    i64 H, b;
    const T* zr;  // row b's zoneout row (zoneout, null without)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const T* g = s.gates + b * 2 * H;
      const V one = V::set1(T(1));
      const V f = V::load(g + j), n = V::load(g + H + j);
      V dh = V::load(s.dh + b * H + j);
      T* dd = s.dh_prev + b * H + j;
      if (zr) dh = unzone(V::load(zr + j), dh, dd);
      const V hp = V::load(s.h_prev + b * H + j);
      V dan = dh * f * fnma(n, n, one);  // h_new = h + f (n - h), n = tanh(a_n)
      if constexpr (kClip) dan = unclip(dan, s.mask + b * 2 * H + H + j);
      T* d = s.dgx + b * 2 * H;
      dan.store(d + H + j);
      (dh * (n - hp)).store(d + j);          // dL/df so far; FRow adds the f*h path
      if (zr)
        (fnma(dh, f, dh) + V::load(dd)).store(dd);  // dh (1 - f), after z dh
      else
        fnma(dh, f, dh).store(dd);  // dh (1 - f)
    }
  };
  struct FRow {  // after the d(f*h) GEMM: da_f, and f*h for dw_hn
    const MguBwd& c;
    const BwdStep<T>& s;
    i64 b;
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const V one = V::set1(T(1));
      const V f = V::load(s.gates + b * 2 * H + j);
      const V hp = V::load(s.h_prev + b * H + j);
      const V dfh = V::load(c.dfh + b * H + j);
      T* d = s.dgx + b * 2 * H;
      V daf = fma(dfh, hp, V::load(d + j)) * f * (one - f);
      if constexpr (kClip) daf = unclip(daf, s.mask + b * 2 * H + j);
      daf.store(d + j);
      T* dd = s.dh_prev + b * H + j;
      fma(dfh, f, V::load(dd)).store(dd);
      (f * hp).store(c.fh_all + (s.k * c.a.d.B + b) * H + j);
    }
  };
  void step(const BwdStep<T>& s, const Ctx<T>& cx) {
    const i64 H = cx.H;
    s.rows.each(cx.GH,
                [&](i64 b) { for_lanes<T>(H, NRow{s, H, b, zone_row(a.zoneout, s.rows, b, H)}); });
    gemm_packed<T>(cx.B, H, H, MatView<T>{s.dgx + H, cx.GH, 1}, w_n, dfh, H, false, cx.gemm,
                   cx.nth);
    s.rows.each(H, [&](i64 b) { for_lanes<T>(H, FRow{*this, s, b}); });
  }
  void freeze(const BwdStep<T>& s, i64 b) { zero_n(fh_all + (s.k * a.d.B + b) * a.d.H, a.d.H); }
  void finish(const Ctx<T>& cx, const T* dgx) {  // dw_hn = da_n^T (f*h); the driver did w_hf
    const i64 H = cx.H;
    gemm<T>(H, H, cx.T_ * cx.B, MatView<T>{dgx + H, 1, cx.GH}, MatView<T>{fh_all, H, 1},
            a.dw_hh + H * H, H, false, cx.gemm, cx.nth);
  }
  void empty(const Ctx<T>&) {}
};

template <bool kFwd, class T, class Args, class F>
void with_mgu(const Args& a, F&& f) {
  with_flags(
      [&](auto kClip) {
        constexpr bool c = decltype(kClip)::value;
        f(std::conditional_t<kFwd, MguFwd<T, c>, MguBwd<T, c>>(a));
      },
      a.clip_mask != nullptr);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
