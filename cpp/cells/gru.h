// GRU cell (gate order r, z, n). The driver's recurrent GEMM writes h_prev w_hh[0:R]^T into the
// cell's own buffer `rec` (the hidden part of n must stay apart from the input part):
//   r = σ(x w_ir + b_ir + h w_hr + b_hr)   z = σ(x w_iz + b_iz + h w_hz + b_hz)
//   linear_before_reset:  hn = h w_hn + b_hn,        n = tanh(x w_in + b_in + r * hn)   R = 3H
//   otherwise:            hn = (r*h) w_hn + b_hn,    n = tanh(x w_in + b_in + hn)       R = 2H
//   h_new = (1 - z) n + z h,  with zoneout (kZone) then z' h + (1 - z') h_new
// Without linear_before_reset the step needs r before its own second GEMM (r*h) w_hn^T, so its
// pointwise work comes in two passes around it (RzRow, then NRow); with it, one pass (Row).
// Options (template parameters): kClip, kLbr linear_before_reset, kZone zoneout, kMask
// (backward, !kLbr) a recurrent mask: (r*h) w_hn^T reads r * h_rec, so d(r*h_rec)/dh_prev =
// r * mask.
#pragma once

#include "cells/step.h"
#include "kernel_api.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T, bool kClip, bool kLbr, bool kZone>
struct GruFwd {
  static constexpr int kGates = 3;
  static constexpr int kRec = kLbr ? 3 : 2;  // R = kRec * H
  const FwdArgs<T>& a;
  T* bias = nullptr;  // [3H] b_ih + b_hh for r and z, b_in alone for n; or null
  T* rec = nullptr;   // [B, R] h_prev w_hh[0:R]^T, written by the driver
  T* w_n = nullptr;   // packed w_hn^T [H, H] (!kLbr)
  T* rec2 = nullptr;  // [B, H] (r*h_prev) w_hn^T (!kLbr)
  T* rh = nullptr;    // [B, H] r * h_prev (!kLbr)

  explicit GruFwd(const FwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    const i64 B = a.d.B, H = a.d.H;
    rec = ar.take(B * kRec * H);
    if constexpr (!kLbr) {
      w_n = ar.take(gemm_packed_b_size<T>(H, H));
      rec2 = ar.take(B * H);
      rh = ar.take(B * H);
    }
    if (a.b_ih || a.b_hh) bias = ar.take(3 * H);
  }
  i64 rec_cols() const { return kRec * a.d.H; }
  void init(const Ctx<T>&) {}
  void prepare(const Ctx<T>& cx) {
    const i64 H = cx.H;
    if (bias) fold_bias(bias, a.b_ih, a.b_hh, 3 * H, 2 * H);  // b_hn stays inside r * (...)
    if constexpr (!kLbr) pack_b<T>(w_n, MatView<T>{a.w_hh + 2 * H * H, 1, H}, H, H, cx.nth);
  }
  RecOut<T> rec_out(const FwdStep<T>&) const { return {rec, kRec * a.d.H, false}; }
  const T* b_hn() const { return a.b_hh ? a.b_hh + 2 * a.d.H : nullptr; }

  // r and z from their pre-activations.
  template <class V>
  RNNKIT_INLINE void rz(const FwdStep<T>& s, i64 b, i64 j, V& r, V& z) const {
    const i64 H = a.d.H;
    T* g = s.gates + b * 3 * H;
    const T* rc = rec + b * kRec * H;
    V ar = V::load(g + j) + V::load(rc + j);
    V az = V::load(g + H + j) + V::load(rc + H + j);
    if (bias) {
      ar = ar + V::load(bias + j);
      az = az + V::load(bias + H + j);
    }
    if constexpr (kClip) {
      const V lim = V::set1(a.clip);
      ar = clip_and_mark(ar, lim, s.mask + b * 3 * H + j);
      az = clip_and_mark(az, lim, s.mask + b * 3 * H + H + j);
    }
    r = vsigmoid(ar);
    z = vsigmoid(az);
  }
  // n and h_new, given r, z and the hidden part hn of n's pre-activation; zr: row b's zoneout
  // row (kZone).
  template <class V>
  RNNKIT_INLINE void n_and_h(const FwdStep<T>& s, i64 b, i64 j, V r, V z, V hn,
                             const T* zr) const {
    const i64 H = a.d.H;
    T* g = s.gates + b * 3 * H;
    V an = V::load(g + 2 * H + j);
    if (bias) an = an + V::load(bias + 2 * H + j);
    an = kLbr ? fma(r, hn, an) : an + hn;
    if constexpr (kClip) an = clip_and_mark(an, V::set1(a.clip), s.mask + b * 3 * H + 2 * H + j);
    const V n = vtanh(an);
    const V hp = V::load(s.h_prev + b * H + j);
    n.store(g + 2 * H + j);
    hn.store(a.hn + (s.k * a.d.B + b) * H + j);
    V h = fma(z, hp - n, n);  // (1-z) n + z h
    if constexpr (kZone) h = zone(V::load(zr + j), hp, h);
    h.store(s.h_new + b * H + j);
  }

  struct Row {  // linear_before_reset: the whole step
    const GruFwd& c;
    const FwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (kZone)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      V r, z;
      c.rz(s, b, j, r, z);
      V hn = V::load(c.rec + b * 3 * H + 2 * H + j);
      if (const T* bn = c.b_hn()) hn = hn + V::load(bn + j);
      T* g = s.gates + b * 3 * H;
      r.store(g + j);
      z.store(g + H + j);
      c.n_and_h(s, b, j, r, z, hn, zr);
    }
  };
  struct RzRow {  // pass 1 without linear_before_reset: r, z and r*h_prev
    const GruFwd& c;
    const FwdStep<T>& s;
    i64 b;
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      V r, z;
      c.rz(s, b, j, r, z);
      T* g = s.gates + b * 3 * H;
      r.store(g + j);
      z.store(g + H + j);
      (r * V::load(s.h_rec + b * H + j)).store(c.rh + b * H + j);  // r * (h * mask)
    }
  };
  struct NRow {  // pass 2 without linear_before_reset: n and h_new
    const GruFwd& c;
    const FwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (kZone)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const T* g = s.gates + b * 3 * H;
      V hn = V::load(c.rec2 + b * H + j);
      if (const T* bn = c.b_hn()) hn = hn + V::load(bn + j);
      c.n_and_h(s, b, j, V::load(g + j), V::load(g + H + j), hn, zr);
    }
  };
  void step(const FwdStep<T>& s, const Ctx<T>& cx) {
    const i64 H = cx.H;
    if constexpr (kLbr) {
      s.rows.each(cx.GH, [&](i64 b) {
        for_lanes<T>(H, Row{*this, s, b, zone_row(a.zoneout, s.rows, b, H)});
      });
    } else {
      s.rows.each(cx.GH, [&](i64 b) { for_lanes<T>(H, RzRow{*this, s, b}); });
      gemm_packed<T>(cx.B, H, H, MatView<T>{rh, H, 1}, w_n, rec2, H, false, cx.gemm, cx.nth);
      s.rows.each(H, [&](i64 b) {
        for_lanes<T>(H, NRow{*this, s, b, zone_row(a.zoneout, s.rows, b, H)});
      });
    }
  }
  void freeze(const FwdStep<T>& s, i64 b) { zero_n(a.hn + (s.k * a.d.B + b) * a.d.H, a.d.H); }
};

template <class T, bool kClip, bool kLbr, bool kMask, bool kZone>
struct GruBwd {
  static constexpr int kGates = 3;
  static constexpr int kRec = kLbr ? 3 : 2;
  const BwdArgs<T>& a;
  T* dgh = nullptr;     // [T, B, 3H] dL/d(h w_hh^T + b_hh) (kLbr: r * da_n for n)
  T* rh_all = nullptr;  // [T, B, H] r * h_prev of every step, 0 on frozen rows (!kLbr)
  T* drh = nullptr;     // [B, H] dL/d(r*h_prev) = da_n w_hn (!kLbr)
  T* w_n = nullptr;     // packed w_hn [H, H] (!kLbr)

  explicit GruBwd(const BwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    const Dims& d = a.d;
    if constexpr (kLbr) {
      dgh = ar.take(d.T * d.B * 3 * d.H);
    } else {
      rh_all = ar.take(d.T * d.B * d.H);
      drh = ar.take(d.B * d.H);
      w_n = ar.take(gemm_packed_b_size<T>(d.H, d.H));
    }
  }
  i64 rec_cols() const { return kRec * a.d.H; }
  void init(const Ctx<T>&) {}
  void prepare(const Ctx<T>& cx) {
    const i64 H = cx.H;
    if constexpr (!kLbr) pack_b<T>(w_n, MatView<T>{a.w_hh + 2 * H * H, H, 1}, H, H, cx.nth);
  }
  const T* dg_rec(const BwdStep<T>& s) const {
    return kLbr ? dgh + s.k * a.d.B * 3 * a.d.H : s.dgx;
  }
  const T* dg_hidden(const T* dgx) const { return kLbr ? dgh : dgx; }

  // dz, dn and the direct path dh_prev = dh z; writes dgx's z and n parts, returns da_n.
  // zr: row b's zoneout row (kZone).
  template <class V>
  RNNKIT_INLINE V zn(const BwdStep<T>& s, i64 b, i64 j, const T* zr) const {
    const i64 H = a.d.H;
    const T* g = s.gates + b * 3 * H;
    const V one = V::set1(T(1));
    const V z = V::load(g + H + j), n = V::load(g + 2 * H + j);
    V dh = V::load(s.dh + b * H + j);
    const V hp = V::load(s.h_prev + b * H + j);
    T* dd = s.dh_prev + b * H + j;
    if constexpr (kZone) dh = unzone(V::load(zr + j), dh, dd);
    V daz = dh * (hp - n) * z * (one - z);
    V dan = dh * (one - z) * fnma(n, n, one);
    if constexpr (kClip) {
      daz = unclip(daz, s.mask + b * 3 * H + H + j);
      dan = unclip(dan, s.mask + b * 3 * H + 2 * H + j);
    }
    T* d = s.dgx + b * 3 * H;
    daz.store(d + H + j);
    dan.store(d + 2 * H + j);
    if constexpr (kZone)
      fma(dh, z, V::load(dd)).store(dd);
    else
      (dh * z).store(dd);
    return dan;
  }

  struct Row {  // linear_before_reset: everything in one pass
    const GruBwd& c;
    const BwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (kZone)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const V one = V::set1(T(1));
      const V dan = c.template zn<V>(s, b, j, zr);
      const V r = V::load(s.gates + b * 3 * H + j);
      const V hn = V::load(c.a.hn + (s.k * c.a.d.B + b) * H + j);
      V dar = dan * hn * r * (one - r);
      if constexpr (kClip) dar = unclip(dar, s.mask + b * 3 * H + j);
      dar.store(s.dgx + b * 3 * H + j);
      // the hidden side sees r * da_n for n, the same as the input side for r and z
      T* dh = c.dgh + (s.k * c.a.d.B + b) * 3 * H;
      dar.store(dh + j);
      V::load(s.dgx + b * 3 * H + H + j).store(dh + H + j);
      (dan * r).store(dh + 2 * H + j);
    }
  };
  struct ZnRow {  // without linear_before_reset, before the d(r*h) GEMM
    const GruBwd& c;
    const BwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (kZone)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      c.template zn<V>(s, b, j, zr);
    }
  };
  struct RRow {  // without linear_before_reset, after the d(r*h) GEMM
    const GruBwd& c;
    const BwdStep<T>& s;
    i64 b;
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const V one = V::set1(T(1));
      const V r = V::load(s.gates + b * 3 * H + j);
      const V hp = V::load(s.h_rec + b * H + j);  // h_prev * mask
      const V drh = V::load(c.drh + b * H + j);
      V dar = drh * hp * r * (one - r);
      if constexpr (kClip) dar = unclip(dar, s.mask + b * 3 * H + j);
      dar.store(s.dgx + b * 3 * H + j);
      T* dd = s.dh_prev + b * H + j;
      if constexpr (kMask)
        fma(drh * V::load(c.a.recurrent_mask + b * H + j), r, V::load(dd)).store(dd);
      else
        fma(drh, r, V::load(dd)).store(dd);
      (r * hp).store(c.rh_all + (s.k * c.a.d.B + b) * H + j);  // for dw_hn = da_n^T (r*h)
    }
  };
  void step(const BwdStep<T>& s, const Ctx<T>& cx) {
    const i64 H = cx.H;
    if constexpr (kLbr) {
      s.rows.each(cx.GH, [&](i64 b) {
        for_lanes<T>(H, Row{*this, s, b, zone_row(a.zoneout, s.rows, b, H)});
      });
    } else {
      s.rows.each(cx.GH, [&](i64 b) {
        for_lanes<T>(H, ZnRow{*this, s, b, zone_row(a.zoneout, s.rows, b, H)});
      });
      gemm_packed<T>(cx.B, H, H, MatView<T>{s.dgx + 2 * H, cx.GH, 1}, w_n, drh, H, false, cx.gemm,
                     cx.nth);
      s.rows.each(H, [&](i64 b) { for_lanes<T>(H, RRow{*this, s, b}); });
    }
  }
  void freeze(const BwdStep<T>& s, i64 b) {
    const i64 B = a.d.B, H = a.d.H;
    if constexpr (kLbr)
      zero_n(dgh + (s.k * B + b) * 3 * H, 3 * H);
    else
      zero_n(rh_all + (s.k * B + b) * H, H);
  }
  void finish(const Ctx<T>& cx, const T* dgx) {
    const i64 H = cx.H;
    if constexpr (!kLbr)  // dw_hn = da_n^T (r*h); the driver did the r and z rows
      gemm<T>(H, H, cx.T_ * cx.B, MatView<T>{dgx + 2 * H, 1, cx.GH}, MatView<T>{rh_all, H, 1},
              a.dw_hh + 2 * H * H, H, false, cx.gemm, cx.nth);
  }
  void empty(const Ctx<T>&) {}
};

template <bool kFwd, class T, class Args, class F>
void with_gru(const Args& a, F&& f) {
  with_flags(
      [&](auto kClip, auto kLbr, auto kMask, auto kZone) {
        constexpr bool c = decltype(kClip)::value, l = decltype(kLbr)::value,
                       m = decltype(kMask)::value, z = decltype(kZone)::value;
        f(std::conditional_t<kFwd, GruFwd<T, c, l, z>, GruBwd<T, c, l, m, z>>(a));
      },
      a.clip_mask != nullptr, a.linear_before_reset,
      !kFwd && !a.linear_before_reset && a.recurrent_mask != nullptr, a.zoneout != nullptr);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
