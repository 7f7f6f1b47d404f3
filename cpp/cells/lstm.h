// LSTM cell. The driver's recurrent GEMM adds h_prev w_hh^T onto x w_ih^T in the step's gates;
// the cell adds the biases, runs the pointwise pass and, with a projection, its own GEMM:
//   a = x w_ih^T + h_prev w_hh^T + b_ih + b_hh = [a_i, a_f, a_g, a_o]
//   i = σ(a_i + p_i c_prev)   f = σ(a_f + p_f c_prev)   (CIFG: f = 1 - i)
//   g = tanh(a_g)   c = f c_prev + i g   o = σ(a_o + p_o c)   m = o tanh(c)
//   h = m, or with a projection h = m w_proj^T
// Every pre-activation is clipped to [-clip, clip] when clipping (ONNX meaning).
// Options (template parameters): kPeep peepholes, kClip, kCifg input_forget, kProj projection,
// kLn layer norm (any of ln_ih, ln_hh, ln_c): a = LN_ih(x w_ih^T) + LN_hh(h_prev w_hh^T) +
// b_ih + b_hh, the recurrent product then in the cell's own buffer `rec`; m = o tanh(LN_c(c~))
// in a second pass over the row.
// Zoneout (run-time, by the row pointers zr/zcr, null without it: a loop-invariant branch
// costs nothing measurable, and as template flags the two doubled the build twice): of h,
// h[k+1] = z h_prev + (1 - z) h~, h~ the h above (zoned in the pass, or right after the
// projection GEMM); of c, c[k+1] = z c_prev + (1 - z) c~ where c~ is the c above (o's peephole
// and m read c~); the backward recomputes c~ from the gates.
#pragma once

#include "cells/step.h"
#include "kernel_api.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <class T, bool kPeep, bool kClip, bool kCifg, bool kProj, bool kLn>
struct LstmFwd {
  static constexpr int kGates = 4;
  const FwdArgs<T>& a;
  T* bias = nullptr;    // [4H] b_ih + b_hh, or null without biases
  T* m = nullptr;       // [B, H] m before the projection (kProj)
  T* w_proj = nullptr;  // packed w_proj^T: B[k, n] = w_proj[n, k], k < H, n < P (kProj)
  T* c_start = nullptr; // [B, H] c[k] with the reset rows zeroed (resets)
  T* rec = nullptr;     // [B, 4H] h_prev w_hh^T (kLn)
  T* ct = nullptr;      // [B, H] c~ of the step, read by the second pass (kLn with ln_c)

  explicit LstmFwd(const FwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    if (a.b_ih || a.b_hh) bias = ar.take(4 * a.d.H);
    if (a.resets) c_start = ar.take(a.d.B * a.d.H);
    if constexpr (kProj) {
      w_proj = ar.take(gemm_packed_b_size<T>(a.d.H, a.d.P));
      m = ar.take(a.d.B * a.d.H);
    }
    if constexpr (kLn) {
      rec = ar.take(a.d.B * 4 * a.d.H);
      if (a.ln_c) ct = ar.take(a.d.B * a.d.H);
    }
  }
  i64 rec_cols() const { return 4 * a.d.H; }
  void init(const Ctx<T>& cx) {
    copy_n(a.c, a.c0, cx.B * cx.H);
    if constexpr (kLn) ln_init(a);
  }
  void prepare(const Ctx<T>& cx) {
    if (bias) fold_bias(bias, a.b_ih, a.b_hh, cx.GH, cx.GH);
    if constexpr (kProj) pack_b<T>(w_proj, MatView<T>{a.w_proj, 1, cx.H}, cx.H, cx.P, cx.nth);
  }
  RecOut<T> rec_out(const FwdStep<T>& s) const {
    if constexpr (kLn) return {rec, 4 * a.d.H, false};
    return {s.gates, 4 * a.d.H, true};
  }

  // One step's rows for the pointwise pass.
  struct Io {
    const T* c_prev;  // [B, H] c[k]
    T* c_new;         // [B, H] c[k+1]
    T* m;             // [B, H] o tanh(c): h_new itself without a projection
  };
  struct Row {
    const LstmFwd& c;
    const FwdStep<T>& s;
    const Io& io;
    i64 b;
    const T* zr;   // row b's zoneout row, null without zoneout
    const T* zcr;  // and zoneout_c row, null without
    LnFwd<T> lx{}, lh{};  // this row's norms of x w_ih^T and h w_hh^T (kLn)
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const T* bias = c.bias;
      const T* peep = c.a.w_peep;
      T* g = s.gates + b * 4 * H;  // in: x w_ih^T + h w_hh^T, accumulated by the driver's GEMMs
      V ai = V::load(g + j);
      V af = V::load(g + H + j);
      V ag = V::load(g + 2 * H + j);
      V ao = V::load(g + 3 * H + j);
      if constexpr (kLn) {  // g holds x w_ih^T alone, rec h w_hh^T
        const T* rc = c.rec + b * 4 * H;
        ai = lx.at(ai, j) + lh.at(V::load(rc + j), j);
        af = lx.at(af, H + j) + lh.at(V::load(rc + H + j), H + j);
        ag = lx.at(ag, 2 * H + j) + lh.at(V::load(rc + 2 * H + j), 2 * H + j);
        ao = lx.at(ao, 3 * H + j) + lh.at(V::load(rc + 3 * H + j), 3 * H + j);
      }
      if (bias) {
        ai = ai + V::load(bias + j);
        af = af + V::load(bias + H + j);
        ag = ag + V::load(bias + 2 * H + j);
        ao = ao + V::load(bias + 3 * H + j);
      }
      const V cp = V::load(io.c_prev + b * H + j);
      if constexpr (kPeep) {
        ai = fma(V::load(peep + j), cp, ai);
        if constexpr (!kCifg) af = fma(V::load(peep + H + j), cp, af);
      }
      const V one = V::set1(T(1));
      V lim;
      std::uint8_t* mk = nullptr;
      if constexpr (kClip) {
        lim = V::set1(c.a.clip);
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
      const V cn = fma(f, cp, i * gg);
      if constexpr (kPeep) ao = fma(V::load(peep + 2 * H + j), cn, ao);
      if constexpr (kClip) ao = clip_and_mark(ao, lim, mk + 3 * H + j);
      const V o = vsigmoid(ao);
      i.store(g + j);
      f.store(g + H + j);
      gg.store(g + 2 * H + j);
      o.store(g + 3 * H + j);
      if (zcr)  // c[k+1] = z c_prev + (1 - z) c~
        zone(V::load(zcr + j), cp, cn).store(io.c_new + b * H + j);
      else
        cn.store(io.c_new + b * H + j);
      if constexpr (kLn) {
        if (c.ct) {  // m needs the norm of the whole row of c~: the second pass (MRow)
          cn.store(c.ct + b * H + j);
          return;
        }
      }
      V m = o * vtanh(cn);
      if (!kProj && zr)  // m is h~ itself: zoned here (H = P)
        m = zone(V::load(zr + j), V::load(s.h_prev + b * H + j), m);
      m.store(io.m + b * H + j);
    }
  };
  struct MRow {  // kLn with ln_c: m = o tanh(LN_c(c~))
    const LstmFwd& c;
    const FwdStep<T>& s;
    const Io& io;
    i64 b;
    LnFwd<T> lc;
    const T* zr;  // row b's zoneout row, null without zoneout
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const V o = V::load(s.gates + b * 4 * H + 3 * H + j);
      V m = o * vtanh(lc.at(V::load(c.ct + b * H + j), j));
      if (!kProj && zr)  // m is h~ itself: zoned here (H = P)
        m = zone(V::load(zr + j), V::load(s.h_prev + b * H + j), m);
      m.store(io.m + b * H + j);
    }
  };
  void step(const FwdStep<T>& s, const Ctx<T>& cx) {
    const i64 B = cx.B, H = cx.H;
    const T* c_prev = a.c + s.k * B * H;
    if (s.reset) c_prev = reset_state(c_start, c_prev, s.reset, s.rows, H);
    const Io io{c_prev, a.c + (s.k + 1) * B * H, kProj ? m : s.h_new};
    s.rows.each(cx.GH, [&](i64 b) {
      const T* zr = zone_row(a.zoneout, s.rows, b, cx.P);
      Row row{*this, s, io, b, zr, zone_row(a.zoneout_c, s.rows, b, H)};
      if constexpr (kLn) {
        const i64 r = s.k * B + b, GH = cx.GH;
        T* rs = a.ln_rstd + r * 4;
        row.lx = ln_row(a.ln_ih, GH, 0, s.gates + b * GH, GH, a.ih_hat + r * GH, rs + kLnIh);
        row.lh = ln_row(a.ln_hh, GH, 0, rec + b * GH, GH, a.hh_hat + r * GH, rs + kLnHh);
      }
      for_lanes<T>(H, row);
      if constexpr (kLn) {
        if (ct) {
          const i64 r = s.k * B + b;
          const LnFwd<T> lc = ln_row(a.ln_c, H, 0, ct + b * H, H, a.c_hat + r * H,
                                     a.ln_rstd + r * 4 + kLnC);
          for_lanes<T>(H, MRow{*this, s, io, b, lc, zr});
        }
      }
    });
    if constexpr (kProj) {  // h = m w_proj^T (the driver then restores the frozen rows)
      gemm_packed<T>(B, cx.P, H, MatView<T>{m, H, 1}, w_proj, s.h_new, cx.P, false, cx.gemm,
                     cx.nth);
      if (a.zoneout) zone_rows(s.h_new, s.h_prev, a.zoneout, s.rows, cx.P);
    }
  }
  void freeze(const FwdStep<T>& s, i64 b) {
    const i64 B = a.d.B, H = a.d.H;
    copy_n(a.c + ((s.k + 1) * B + b) * H, a.c + (s.k * B + b) * H, H);
    if constexpr (kLn) ln_freeze(a, s.k * B + b);
  }
};

template <class T, bool kPeep, bool kClip, bool kCifg, bool kProj, bool kLn>
struct LstmBwd {
  static constexpr int kGates = 4;
  const BwdArgs<T>& a;
  T* dc = nullptr;  // [B, H] in: dL/dc[k+1], out: dL/dc[k]
  T* dm = nullptr;  // [B, H] dL/dm = dh w_proj (kProj)
  T* dht = nullptr;  // [T, B, P] dL/dh~ of every step, 0 on frozen rows (kProj, for dw_proj)
  T* m_all = nullptr;  // [T, B, H] m of every step, recomputed for dw_proj (kProj)
  T* w_proj = nullptr;  // packed w_proj: B[k, n] = w_proj[k, n], k < P, n < H (kProj)
  T* c_start = nullptr;  // [B, H] c[k] with the reset rows zeroed (resets)
  T* ct_all = nullptr;  // [T, B, H] c~ of every step, recomputed, 0 on frozen rows (zoneout_c)
  // kLn (0 on frozen rows): da [T, B, 4H] dL/da, the gradient after the norms; dgh [T, B, 4H]
  // dL/d(h w_hh^T) (ln_hh); dco [T, B, H] dL/d(LN_c(c~)) and dcl [B, H] dL/dc~ through the
  // norm of this step (ln_c)
  T* da = nullptr;
  T* dgh = nullptr;
  T* dco = nullptr;
  T* dcl = nullptr;

  explicit LstmBwd(const BwdArgs<T>& args) : a(args) {}
  void plan(Arena<T>& ar) {
    const Dims& d = a.d;
    if (a.resets) c_start = ar.take(d.B * d.H);
    if (a.zoneout_c) ct_all = ar.take(d.T * d.B * d.H);
    if constexpr (kProj) {
      dht = ar.take(d.T * d.B * d.P);
      m_all = ar.take(d.T * d.B * d.H);
      dm = ar.take(d.B * d.H);
      w_proj = ar.take(gemm_packed_b_size<T>(d.P, d.H));
    }
    dc = ar.take(d.B * d.H);
    if constexpr (kLn) {
      da = ar.take(d.T * d.B * 4 * d.H);
      if (a.ln_hh) dgh = ar.take(d.T * d.B * 4 * d.H);
      if (a.ln_c) {
        dco = ar.take(d.T * d.B * d.H);
        dcl = ar.take(d.B * d.H);
      }
    }
  }
  i64 rec_cols() const { return 4 * a.d.H; }
  void init(const Ctx<T>& cx) { copy_n(dc, a.dc_n, cx.B * cx.H); }
  void prepare(const Ctx<T>& cx) {
    if constexpr (kProj) pack_b<T>(w_proj, MatView<T>{a.w_proj, cx.H, 1}, cx.P, cx.H, cx.nth);
  }
  const T* dg_rec(const BwdStep<T>& s) const {
    if constexpr (kLn) return (dgh ? dgh : da) + s.k * a.d.B * 4 * a.d.H;
    return s.dgx;
  }
  const T* dg_hidden(const T* dgx) const {
    if constexpr (kLn) return dgh ? dgh : da;
    return dgx;
  }
  const T* dg_bias_ih(const T* dgx) const { return kLn ? da : dgx; }
  const T* dg_bias_hh(const T* dgx) const { return kLn ? da : dgx; }

  // tanh of what m reads: c~, or LN_c(c~) from the cache (kLn with ln_c); r the processing row
  template <class V>
  RNNKIT_INLINE V tanh_out(V cn, i64 r, i64 j) const {
    if constexpr (kLn) {
      if (const T* ln = a.ln_c)
        return vtanh(
            fma(V::load(a.c_hat + r * a.d.H + j), V::load(ln + j), V::load(ln + a.d.H + j)));
    }
    return vtanh(cn);
  }

  struct Io {
    const T* c_prev;  // [B, H] c[k]
    const T* c_new;  // [B, H] c[k+1]
    const T* dm;  // [B, H] dL/dm (= dh without a projection)
  };
  struct Row {
    const LstmBwd& c;
    const BwdStep<T>& s;
    const Io& io;
    i64 b;
    const T* zr;  // row b's zoneout row, null without zoneout
    const T* zcr;  // and zoneout_c row, null without
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H;
      const T* peep = c.a.w_peep;
      const T* g = s.gates + b * 4 * H;
      const V one = V::set1(T(1));
      const V i = V::load(g + j), f = V::load(g + H + j), gg = V::load(g + 2 * H + j),
              o = V::load(g + 3 * H + j);
      const V cp = V::load(io.c_prev + b * H + j);
      // c~ = f c_prev + i g: c[k+1] itself, or recomputed under zoneout of c
      const V cn = zcr ? fma(f, cp, i * gg) : V::load(io.c_new + b * H + j);
      V dm = V::load(io.dm + b * H + j);
      if (!kProj && zr)  // dm = dL/dh_t here: z of it to h_prev
        dm = unzone(V::load(zr + j), dm, s.dh_prev + b * H + j);
      const i64 r = s.k * c.a.d.B + b;
      const V tc = c.tanh_out(cn, r, j);
      V dc_in = V::load(c.dc + b * H + j);  // dL/dc[k+1]
      V dc_keep = V::zero();  // the part zoneout sends to c_prev
      if (zcr) {
        const V z = V::load(zcr + j);
        cn.store(c.ct_all + (s.k * c.a.d.B + b) * H + j);
        dc_keep = dc_in * z;
        dc_in = dc_in * (one - z);
      }
      // m = o tanh(c~)
      V dao = dm * tc * o * (one - o);
      V dcv;
      if (kLn && c.dcl)  // through LN_c, from the pre-pass (CRow)
        dcv = dc_in + V::load(c.dcl + b * H + j);
      else
        dcv = fma(dm * o, fnma(tc, tc, one), dc_in);
      if constexpr (kClip) dao = unclip(dao, s.mask + b * 4 * H + 3 * H + j);
      if constexpr (kPeep) dcv = fma(V::load(peep + 2 * H + j), dao, dcv);  // o peeks at c_t
      // c = f c_prev + i g   (CIFG: f = 1 - i, so dc/di = g - c_prev)
      V dai = kCifg ? dcv * (gg - cp) : dcv * gg;
      dai = dai * i * (one - i);
      V daf = kCifg ? V::zero() : dcv * cp * f * (one - f);
      V dag = dcv * i * fnma(gg, gg, one);
      if constexpr (kClip) {
        const std::uint8_t* mk = s.mask + b * 4 * H;
        dai = unclip(dai, mk + j);
        if constexpr (!kCifg) daf = unclip(daf, mk + H + j);
        dag = unclip(dag, mk + 2 * H + j);
      }
      V dcp = dcv * f;
      if (zcr) dcp = dcp + dc_keep;
      if constexpr (kPeep) {
        dcp = fma(V::load(peep + j), dai, dcp);
        if constexpr (!kCifg) dcp = fma(V::load(peep + H + j), daf, dcp);
      }
      T* d = kLn ? c.da + r * 4 * H : s.dgx + b * 4 * H;
      dai.store(d + j);
      daf.store(d + H + j);
      dag.store(d + 2 * H + j);
      dao.store(d + 3 * H + j);
      dcp.store(c.dc + b * H + j);
    }
  };
  struct CRow {  // kLn with ln_c, before Row: dco = dL/d(LN_c(c~)) = dm o (1 - tanh^2)
    const LstmBwd& c;
    const BwdStep<T>& s;
    const Io& io;
    i64 b;
    const T* zr;  // row b's zoneout row, null without zoneout
    template <class V>
    RNNKIT_INLINE void lanes(i64 j) const {
      const i64 H = c.a.d.H, r = s.k * c.a.d.B + b;
      const V o = V::load(s.gates + b * 4 * H + 3 * H + j);
      const V tc = c.tanh_out(V::zero(), r, j);
      V dm = V::load(io.dm + b * H + j);
      if (!kProj && zr)  // as Row: the (1 - z) part of dL/dh_t is the cell's
        dm = dm * (V::set1(T(1)) - V::load(zr + j));
      (dm * o * fnma(tc, tc, V::set1(T(1)))).store(c.dco + r * H + j);
    }
  };
  void step(const BwdStep<T>& s, const Ctx<T>& cx) {
    const i64 B = cx.B, H = cx.H, P = cx.P;
    if constexpr (kProj) {  // dm = dh~ w_proj, keeping dh~ (0 on frozen rows) for dw_proj
      T* dh = dht + s.k * B * P;
      for (i64 b = 0; b < B; ++b) {
        if (!s.rows.live(b))
          zero_n(dh + b * P, P);
        else if (!a.zoneout)
          copy_n(dh + b * P, s.dh + b * P, P);
      }
      if (a.zoneout) unzone_rows(dh, s.dh_prev, s.dh, a.zoneout, s.rows, P);
      gemm_packed<T>(B, H, P, MatView<T>{dh, P, 1}, w_proj, dm, H, false, cx.gemm, cx.nth);
    }
    const T* c_prev = a.c + s.k * B * H;
    if (s.reset) c_prev = reset_state(c_start, c_prev, s.reset, s.rows, H);
    const Io io{c_prev, a.c + (s.k + 1) * B * H, kProj ? dm : s.dh};
    s.rows.each(cx.GH, [&](i64 b) {
      const i64 r = s.k * B + b, GH = cx.GH;
      const T* zr = zone_row(a.zoneout, s.rows, b, P);
      if constexpr (kLn) {
        if (dcl) {
          for_lanes<T>(H, CRow{*this, s, io, b, zr});
          ln_backward_row(dcl + b * H, dco + r * H, a.c_hat + r * H, a.ln_c,
                          a.ln_rstd[r * 4 + kLnC], H);
        }
      }
      for_lanes<T>(H, Row{*this, s, io, b, zr, zone_row(a.zoneout_c, s.rows, b, H)});
      if (!a.zoneout) zero_n(s.dh_prev + b * P, P);  // h_prev: only through w_hh
      if (s.reset && s.reset[b]) zero_n(dc + b * H, H);  // no gradient crosses a reset
      if constexpr (kLn) {  // back through the norms: dL/d(x w_ih^T), dL/d(h w_hh^T)
        const T* rs = a.ln_rstd + r * 4;
        ln_backward_row(s.dgx + b * GH, da + r * GH, a.ih_hat + r * GH, a.ln_ih, rs[kLnIh], GH);
        if (dgh)
          ln_backward_row(dgh + r * GH, da + r * GH, a.hh_hat + r * GH, a.ln_hh, rs[kLnHh], GH);
      }
    });
  }
  void freeze(const BwdStep<T>& s, i64 b) {  // dc passes through unchanged
    if (ct_all) zero_n(ct_all + (s.k * a.d.B + b) * a.d.H, a.d.H);
    if constexpr (kLn) {
      const i64 r = s.k * a.d.B + b, H = a.d.H;
      zero_n(da + r * 4 * H, 4 * H);
      if (dgh) zero_n(dgh + r * 4 * H, 4 * H);
      if (dco) zero_n(dco + r * H, H);
    }
  }
  void finish(const Ctx<T>& cx, const T* dgx) {
    const i64 B = cx.B, H = cx.H, GH = cx.GH, TB = cx.T_ * cx.B;
    const T* c_tilde = ct_all ? ct_all : a.c + B * H;  // [T, B, H] c~ of every step
    copy_n(a.dc0, dc, B * H);
    if constexpr (kLn) {
      dgx = da;  // the peepholes and the projection read the gradient after the norms
      if (a.dln_ih) ln_param_grad(a.dln_ih, GH, da, a.ih_hat, GH, TB);
      if (a.dln_hh) ln_param_grad(a.dln_hh, GH, da, a.hh_hat, GH, TB);
      if (a.dln_c) ln_param_grad(a.dln_c, H, dco, a.c_hat, H, TB);
    }
    if constexpr (kPeep) {
      // da_i c_prev, da_f c_prev (c_prev = 0 after a reset: those rows are left out)
      column_sums<T>(a.dw_peep, dgx, GH, a.c, H, TB, H, a.resets);
      column_sums<T>(a.dw_peep + H, dgx + H, GH, a.c, H, TB, H, a.resets);
      column_sums<T>(a.dw_peep + 2 * H, dgx + 3 * H, GH, c_tilde, H, TB, H);  // da_o c~
    }
    if constexpr (kProj) {
      for (i64 r = 0; r < TB; ++r) {  // m = o tanh(c_t), recomputed rather than stored
        const T* o = a.gates + r * GH + 3 * H;
        T* mr = m_all + r * H;
        const T* cv = c_tilde + r * H;
        if (kLn && a.ln_c) {  // m = o tanh(LN_c(c~)), LN_c(c~) again from the cache
          for (i64 j = 0; j < H; ++j) mr[j] = a.c_hat[r * H + j] * a.ln_c[j] + a.ln_c[H + j];
          cv = mr;
        }
        math_apply<T>(MathFn::kTanh, cv, mr, H);
        for (i64 j = 0; j < H; ++j) mr[j] *= o[j];
      }
      gemm<T>(cx.P, H, TB, MatView<T>{dht, 1, cx.P}, MatView<T>{m_all, H, 1}, a.dw_proj, H, false,
              cx.gemm, cx.nth);
    }
  }
  void empty(const Ctx<T>& cx) {
    copy_n(a.dc0, a.dc_n, cx.B * cx.H);
    if constexpr (kPeep) zero_n(a.dw_peep, 3 * cx.H);
    if constexpr (kProj) zero_n(a.dw_proj, cx.P * cx.H);
    if (a.dln_ih) zero_n(a.dln_ih, 2 * cx.GH);
    if (a.dln_hh) zero_n(a.dln_hh, 2 * cx.GH);
    if (a.dln_c) zero_n(a.dln_c, 2 * cx.H);
  }
};

template <bool kFwd, class T, class Args, class F>
void with_lstm(const Args& a, F&& f) {
  with_flags(
      [&](auto kPeep, auto kClip, auto kCifg, auto kProj, auto kLn) {
        constexpr bool p = decltype(kPeep)::value, c = decltype(kClip)::value,
                       i = decltype(kCifg)::value, r = decltype(kProj)::value,
                       n = decltype(kLn)::value;
        f(std::conditional_t<kFwd, LstmFwd<T, p, c, i, r, n>, LstmBwd<T, p, c, i, r, n>>(a));
      },
      a.w_peep != nullptr, a.clip_mask != nullptr, a.input_forget, a.w_proj != nullptr,
      a.ln_ih != nullptr || a.ln_hh != nullptr || a.ln_c != nullptr);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
