// GRU cell (gate order r, z, n). The driver's recurrent GEMM writes h_prev w_hh[0:R]^T into the
// cell's own buffer `rec` (the hidden part of n must stay apart from the input part):
//   r = σ(x w_ir + b_ir + h w_hr + b_hr)   z = σ(x w_iz + b_iz + h w_hz + b_hz)
//   linear_before_reset:  hn = h w_hn + b_hn,        n = tanh(x w_in + b_in + r * hn)   R = 3H
//   otherwise:            hn = (r*h) w_hn + b_hn,    n = tanh(x w_in + b_in + hn)       R = 2H
//   h_new = (1 - z) n + z h,  with zoneout (zoneout, null without) then z' h + (1 - z') h_new
// Without linear_before_reset the step needs r before its own second GEMM (r*h) w_hn^T, so its
// pointwise work comes in two passes around it (RzRow, then NRow); with it, one pass (Row).
// Options (template parameters): kClip, kLbr linear_before_reset, kMask
// (backward, !kLbr) a recurrent mask: (r*h) w_hn^T reads r * h_rec, so d(r*h_rec)/dh_prev =
// r * mask, kLn layer norm (ln_ih and/or ln_hh): the x w_ih^T and h w_hh^T rows (or, without
// linear_before_reset, h w_h{r,z}^T and (r*h) w_hn^T separately) are normalised before the
// biases; the first pass also writes the n part of LN_ih(x w_ih^T) back into the gates, where
// n_and_h reads it.
#pragma once

#include "cells/step.h"
#include "kernel_api.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T, bool kClip, bool kLbr, bool kLn>
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
  void init(const Ctx<T>&) {
    if constexpr (kLn) ln_init(a);
  }
  void prepare(const Ctx<T>& cx) {
    const i64 H = cx.H;
    if (bias) fold_bias(bias, a.b_ih, a.b_hh, 3 * H, 2 * H);  // b_hn stays inside r * (...)
    if constexpr (!kLbr) pack_b<T>(w_n, MatView<T>{a.w_hh + 2 * H * H, 1, H}, H, H, cx.nth);
  }
  RecOut<T> rec_out(const FwdStep<T>&) const { return {rec, kRec * a.d.H, false}; }
  const T* b_hn() const { return a.b_hh ? a.b_hh + 2 * a.d.H : nullptr; }

  // This row's norms (kLn): of x w_ih^T, and of the driver's product h w_hh[0:R]^T.
  struct Ln {
    LnFwd<T> x, h;
  };
  Ln ln_rows(const FwdStep<T>& s, i64 b) const {
    const i64 H = a.d.H, GH = 3 * H, R = kRec * H, r = s.k * a.d.B + b;
    T* rs = a.ln_rstd + r * 4;
    return {ln_row(a.ln_ih, GH, 0, s.gates + b * GH, GH, a.ih_hat + r * GH, rs + kLnIh),
            ln_row(a.ln_hh, GH, 0, rec + b * R, R, a.hh_hat + r * GH, rs + kLnHh)};
  }
  // r and z from their pre-activations; with kLn, also LN_ih of the n column back into gates.
  template <class V>
  RNNKIT_INLINE void rz(const FwdStep<T>& s, i64 b, i64 j, V& r, V& z, const Ln& ln) const {
    const i64 H = a.d.H;
    T* g = s.gates + b * 3 * H;
    const T* rc = rec + b * kRec * H;
    V ar, az;
    if constexpr (kLn) {
      ar = ln.x.at(V::load(g + j), j) + ln.h.at(V::load(rc + j), j);
      az = ln.x.at(V::load(g + H + j), H + j) + ln.h.at(V::load(rc + H + j), H + j);
      ln.x.at(V::load(g + 2 * H + j), 2 * H + j).store(g + 2 * H + j);
    } else {
      ar = V::load(g + j) + V::load(rc + j);
      az = V::load(g + H + j) + V::load(rc + H + j);
    }
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
  // row (zoneout, null without).
  template <class V>
  RNNKIT_INLINE void n_and_h(const FwdStep<T>& s, i64 b, i64 j, V r, V z, V hn, const T* zr) const {
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
    if (zr) h = zone(V::load(zr + j), hp, h);
    h.store(s.h_new + b * H + j);
  }

  struct Row {  // linear_before_reset: the whole step
    const GruFwd& c;
    const FwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (zoneout, null without)
    Ln ln{};
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      V r, z;
      c.rz(s, b, j, r, z, ln);
      V hn = V::load(c.rec + b * 3 * H + 2 * H + j);
      if constexpr (kLn) hn = ln.h.at(hn, 2 * H + j);
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
    Ln ln{};
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      V r, z;
      c.rz(s, b, j, r, z, ln);
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
    const T* zr;  // row b's zoneout row (zoneout, null without)
    LnFwd<T> ln{};  // the norm of (r*h) w_hn^T (kLn)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const T* g = s.gates + b * 3 * H;
      V hn = V::load(c.rec2 + b * H + j);
      if constexpr (kLn) hn = ln.at(hn, j);
      if (const T* bn = c.b_hn()) hn = hn + V::load(bn + j);
      c.n_and_h(s, b, j, V::load(g + j), V::load(g + H + j), hn, zr);
    }
  };
  void step(const FwdStep<T>& s, const Ctx<T>& cx) {
    const i64 H = cx.H;
    if constexpr (kLbr) {
      s.rows.each(cx.GH, [&](i64 b) {
        Row row{*this, s, b, zone_row(a.zoneout, s.rows, b, H)};
        if constexpr (kLn) row.ln = ln_rows(s, b);
        for_lanes<T>(H, row);
      });
    } else {
      s.rows.each(cx.GH, [&](i64 b) {
        RzRow row{*this, s, b};
        if constexpr (kLn) row.ln = ln_rows(s, b);
        for_lanes<T>(H, row);
      });
      gemm_packed<T>(cx.B, H, H, MatView<T>{rh, H, 1}, w_n, rec2, H, false, cx.gemm, cx.nth);
      s.rows.each(H, [&](i64 b) {
        NRow row{*this, s, b, zone_row(a.zoneout, s.rows, b, H)};
        if constexpr (kLn) {  // ln_hh columns [2H:3H], apart from those of r and z
          const i64 r = s.k * cx.B + b;
          row.ln = ln_row(a.ln_hh, cx.GH, 2 * H, rec2 + b * H, H, a.hh_hat + r * cx.GH + 2 * H,
                          a.ln_rstd + r * 4 + kLnHn);
        }
        for_lanes<T>(H, row);
      });
    }
  }
  void freeze(const FwdStep<T>& s, i64 b) {
    zero_n(a.hn + (s.k * a.d.B + b) * a.d.H, a.d.H);
    if constexpr (kLn) ln_freeze(a, s.k * a.d.B + b);
  }
};

template <class T, bool kClip, bool kLbr, bool kMask, bool kLn>
struct GruBwd {
  static constexpr int kGates = 3;
  static constexpr int kRec = kLbr ? 3 : 2;
  const BwdArgs<T>& a;
  T* dgh = nullptr;     // [T, B, 3H] dL/d(h w_hh^T + b_hh) (kLbr: r * da_n for n)
  T* rh_all = nullptr;  // [T, B, H] r * h_prev of every step, 0 on frozen rows (!kLbr)
  T* drh = nullptr;     // [B, H] dL/d(r*h_prev) = da_n w_hn (!kLbr)
  T* w_n = nullptr;     // packed w_hn [H, H] (!kLbr)
  // kLn (0 on frozen rows): da [T, B, 3H] dL/d(LN_ih(x w_ih^T) + b_ih), the gradient after the
  // norm; dgl [T, B, 3H] dL/d(h w_hh^T), before the hidden norms (kLbr: with ln_hh; otherwise
  // always: columns [0:2H] of h w_h{r,z}^T, [2H:3H] of (r*h) w_hn^T)
  T* da = nullptr;
  T* dgl = nullptr;

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
    if constexpr (kLn) {
      da = ar.take(d.T * d.B * 3 * d.H);
      if (!kLbr || a.ln_hh) dgl = ar.take(d.T * d.B * 3 * d.H);
    }
  }
  i64 rec_cols() const { return kRec * a.d.H; }
  void init(const Ctx<T>&) {}
  void prepare(const Ctx<T>& cx) {
    const i64 H = cx.H;
    if constexpr (!kLbr) pack_b<T>(w_n, MatView<T>{a.w_hh + 2 * H * H, H, 1}, H, H, cx.nth);
  }
  const T* dg_rec(const BwdStep<T>& s) const {
    if constexpr (kLn) return dg_hidden(nullptr) + s.k * a.d.B * 3 * a.d.H;
    return kLbr ? dgh + s.k * a.d.B * 3 * a.d.H : s.dgx;
  }
  const T* dg_hidden(const T* dgx) const {
    if constexpr (kLn) return dgl ? dgl : dgh;
    return kLbr ? dgh : dgx;
  }
  const T* dg_bias_ih(const T* dgx) const { return kLn ? da : dgx; }
  const T* dg_bias_hh(const T* dgx) const { return kLbr ? dgh : kLn ? da : dgx; }
  // Where the row b of dL/d(x-side pre-activation) goes: dgx, or da before the norm (kLn).
  T* dx_out(const BwdStep<T>& s, i64 b) const {
    return kLn ? da + (s.k * a.d.B + b) * 3 * a.d.H : s.dgx + b * 3 * a.d.H;
  }

  // dz, dn and the direct path dh_prev = dh z; writes dgx's z and n parts, returns da_n.
  // zr: row b's zoneout row (zoneout, null without).
  template <class V>
  RNNKIT_INLINE V zn(const BwdStep<T>& s, i64 b, i64 j, const T* zr) const {
    const i64 H = a.d.H;
    const T* g = s.gates + b * 3 * H;
    const V one = V::set1(T(1));
    const V z = V::load(g + H + j), n = V::load(g + 2 * H + j);
    V dh = V::load(s.dh + b * H + j);
    const V hp = V::load(s.h_prev + b * H + j);
    T* dd = s.dh_prev + b * H + j;
    if (zr) dh = unzone(V::load(zr + j), dh, dd);
    V daz = dh * (hp - n) * z * (one - z);
    V dan = dh * (one - z) * fnma(n, n, one);
    if constexpr (kClip) {
      daz = unclip(daz, s.mask + b * 3 * H + H + j);
      dan = unclip(dan, s.mask + b * 3 * H + 2 * H + j);
    }
    T* d = dx_out(s, b);
    daz.store(d + H + j);
    dan.store(d + 2 * H + j);
    if (zr)
      fma(dh, z, V::load(dd)).store(dd);
    else
      (dh * z).store(dd);
    return dan;
  }

  struct Row {  // linear_before_reset: everything in one pass
    const GruBwd& c;
    const BwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (zoneout, null without)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const V one = V::set1(T(1));
      const V dan = c.template zn<V>(s, b, j, zr);
      const V r = V::load(s.gates + b * 3 * H + j);
      const V hn = V::load(c.a.hn + (s.k * c.a.d.B + b) * H + j);
      V dar = dan * hn * r * (one - r);
      if constexpr (kClip) dar = unclip(dar, s.mask + b * 3 * H + j);
      T* dx = c.dx_out(s, b);
      dar.store(dx + j);
      // the hidden side sees r * da_n for n, the same as the input side for r and z
      T* dh = c.dgh + (s.k * c.a.d.B + b) * 3 * H;
      dar.store(dh + j);
      V::load(dx + H + j).store(dh + H + j);
      (dan * r).store(dh + 2 * H + j);
    }
  };
  struct ZnRow {  // without linear_before_reset, before the d(r*h) GEMM
    const GruBwd& c;
    const BwdStep<T>& s;
    i64 b;
    const T* zr;  // row b's zoneout row (zoneout, null without)
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
      dar.store(c.dx_out(s, b) + j);
      T* dd = s.dh_prev + b * H + j;
      if constexpr (kMask)
        fma(drh * V::load(c.a.recurrent_mask + b * H + j), r, V::load(dd)).store(dd);
      else
        fma(drh, r, V::load(dd)).store(dd);
      (r * hp).store(c.rh_all + (s.k * c.a.d.B + b) * H + j);  // for dw_hn = da_n^T (r*h)
    }
  };
  // kLn: back through one norm of processing row r, over the columns [lo, lo + n) of the
  // parameter ln (null: a copy), of the rows out/in [3H] and of hat's row; col: of ln_rstd.
  void unnorm(T* out, const T* in, const T* hat, const T* ln, i64 lo, i64 n, int col, i64 r) const {
    const i64 GH = 3 * a.d.H;
    ln_backward_row(out + lo, in + lo, hat ? hat + r * GH + lo : nullptr, ln ? ln + lo : nullptr,
                    a.ln_rstd[r * 4 + col], n);
  }
  void step(const BwdStep<T>& s, const Ctx<T>& cx) {
    const i64 H = cx.H;
    const i64 GH = cx.GH;
    if constexpr (kLbr) {
      s.rows.each(cx.GH, [&](i64 b) {
        for_lanes<T>(H, Row{*this, s, b, zone_row(a.zoneout, s.rows, b, H)});
        if constexpr (kLn) {
          const i64 r = s.k * cx.B + b;
          unnorm(s.dgx + b * GH, da + r * GH, a.ih_hat, a.ln_ih, 0, GH, kLnIh, r);
          if (dgl) unnorm(dgl + r * GH, dgh + r * GH, a.hh_hat, a.ln_hh, 0, GH, kLnHh, r);
        }
      });
    } else {
      s.rows.each(cx.GH, [&](i64 b) {
        for_lanes<T>(H, ZnRow{*this, s, b, zone_row(a.zoneout, s.rows, b, H)});
        if constexpr (kLn) {  // dL/d((r*h) w_hn^T), read by the d(r*h) GEMM
          const i64 r = s.k * cx.B + b;
          unnorm(dgl + r * GH, da + r * GH, a.hh_hat, a.ln_hh, 2 * H, H, kLnHn, r);
        }
      });
      const T* dan = kLn ? dgl + s.k * cx.B * GH + 2 * H : s.dgx + 2 * H;
      gemm_packed<T>(cx.B, H, H, MatView<T>{dan, cx.GH, 1}, w_n, drh, H, false, cx.gemm, cx.nth);
      s.rows.each(H, [&](i64 b) {
        for_lanes<T>(H, RRow{*this, s, b});
        if constexpr (kLn) {
          const i64 r = s.k * cx.B + b;
          unnorm(dgl + r * GH, da + r * GH, a.hh_hat, a.ln_hh, 0, 2 * H, kLnHh, r);
          unnorm(s.dgx + b * GH, da + r * GH, a.ih_hat, a.ln_ih, 0, GH, kLnIh, r);
        }
      });
    }
  }
  void freeze(const BwdStep<T>& s, i64 b) {
    const i64 B = a.d.B, H = a.d.H;
    if constexpr (kLbr)
      zero_n(dgh + (s.k * B + b) * 3 * H, 3 * H);
    else
      zero_n(rh_all + (s.k * B + b) * H, H);
    if constexpr (kLn) {
      zero_n(da + (s.k * B + b) * 3 * H, 3 * H);
      if (dgl) zero_n(dgl + (s.k * B + b) * 3 * H, 3 * H);
    }
  }
  void finish(const Ctx<T>& cx, const T* dgx) {
    const i64 H = cx.H, GH = cx.GH, TB = cx.T_ * cx.B;
    if constexpr (kLn) {
      if (a.dln_ih) ln_param_grad(a.dln_ih, GH, da, a.ih_hat, GH, TB);
      // the gradient into the hidden norms' outputs: r * da_n for n (kLbr), or da itself
      if (a.dln_hh) ln_param_grad(a.dln_hh, GH, kLbr ? dgh : da, a.hh_hat, GH, TB);
      if constexpr (!kLbr) dgx = dgl;  // dw_hn reads dL/d((r*h) w_hn^T)
    }
    if constexpr (!kLbr)  // dw_hn = da_n^T (r*h); the driver did the r and z rows
      gemm<T>(H, H, cx.T_ * cx.B, MatView<T>{dgx + 2 * H, 1, cx.GH}, MatView<T>{rh_all, H, 1},
              a.dw_hh + 2 * H * H, H, false, cx.gemm, cx.nth);
  }
  void empty(const Ctx<T>& cx) {
    if (a.dln_ih) zero_n(a.dln_ih, 2 * cx.GH);
    if (a.dln_hh) zero_n(a.dln_hh, 2 * cx.GH);
  }
};

template <bool kFwd, class T, class Args, class F>
void with_gru(const Args& a, F&& f) {
  with_flags(
      [&](auto kClip, auto kLbr, auto kMask, auto kLn) {
        constexpr bool c = decltype(kClip)::value, l = decltype(kLbr)::value,
                       m = decltype(kMask)::value, n = decltype(kLn)::value;
        f(std::conditional_t<kFwd, GruFwd<T, c, l, n>, GruBwd<T, c, l, m, n>>(a));
      },
      a.clip_mask != nullptr, a.linear_before_reset,
      !kFwd && !a.linear_before_reset && a.recurrent_mask != nullptr,
      a.ln_ih != nullptr || a.ln_hh != nullptr);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
