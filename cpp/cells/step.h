// What a cell sees of one step, and the contract between a cell and the sequence driver.
//
// A cell is a pair of structs, chosen (with its options as template parameters) once per call
// by cells.h: `XxxFwd<T, options...>` and `XxxBwd<T, options...>`. The driver (sequence.h)
// owns what every cell shares: the input projection, the recurrent GEMM h_prev w_hh[0:R]^T
// (forward) and dh_prev += dG[:, 0:R] w_hh[0:R] (backward) over the first R = rec_cols() rows
// of w_hh, the row maps of lengths and reverse, the frozen rows past a sequence's end
// (h copied, gates, clip mask and dgx zeroed, dh passed through), y, and the weight-gradient
// GEMMs of w_ih and of w_hh[0:R]. A cell supplies the rest:
//
//   Forward                                   Backward
//   static constexpr int kGates               static constexpr int kGates
//   XxxFwd(const FwdArgs<T>&)                 XxxBwd(const BwdArgs<T>&)
//   void plan(Arena<T>&)  its buffers         void plan(Arena<T>&)
//   i64 rec_cols() const                      i64 rec_cols() const
//   void init(const Ctx<T>&) states at k = 0  void init(const Ctx<T>&)  dc = dc_n and the like
//   void prepare(const Ctx<T>&) pack, biases  void prepare(const Ctx<T>&)  pack its weights
//   RecOut<T> rec_out(const FwdStep<T>&)      const T* dg_rec(const BwdStep<T>&) [B, >= R], ld GH
//   void step(const FwdStep<T>&, const Ctx<T>&)  void step(const BwdStep<T>&, const Ctx<T>&)
//   void freeze(const FwdStep<T>&, i64 b)     void freeze(const BwdStep<T>&, i64 b)
//                                             const T* dg_hidden(const T* dgx) const [T*B, GH]
//                                             void finish(const Ctx<T>&, const T* dgx)
//                                             void empty(const Ctx<T>&)  (nothing ran: T*B*GH = 0)
//                                             const T* dg_bias_ih(const T* dgx) const
//                                             const T* dg_bias_hh(const T* dgx) const
//
// dg_bias_ih/hh name the [T*B, GH] rows whose column sums are db_ih and db_hh: dgx and
// dg_hidden(dgx) for a plain cell; with layer norm the biases add after the normalisation, so
// they are the gradients before it, kept by the cell (the same pointer twice: one pass).
//
// step() runs the pointwise pass(es) on the live rows (s.rows.each) and the cell's own
// per-step GEMMs; freeze() handles the cell's own state and caches of a row past its end.
// Forward freezes after step() (a projection GEMM writes every row of h_new), backward before
// it (so dgx of frozen rows is 0 when the cell's own GEMMs read it).
//
// Zoneout (FwdArgs::zoneout [T, B, P], x order) is the cell's: it zones h where it writes it,
// h_new = z h_prev + (1 - z) h~ (zone()), in its pointwise pass, or right after its own GEMM
// when a GEMM writes h (zone_rows: LSTM with a projection); gates keep the cell's h~. In
// backward it splits dL/dh_t (s.dh) in its pass: (1 - z) to its own arithmetic, z into dh_prev
// (unzone(), unzone_rows()). A cell state (the LSTM's c, zoneout_c) is zoned the same way.
//
// Recurrent mask (variational dropout, FwdArgs::recurrent_mask [B, P]): the driver hands every
// product with w_hh h_rec = h_prev * mask (a masked copy, after resets), in FwdStep/BwdStep,
// and masks its own dh_prev product and dw_hh; a cell whose own GEMMs read h (GRU without
// linear_before_reset: (r*h) w_hn^T) reads s.h_rec there and masks that path's dh_prev itself.
// The cell's other reads of h (the GRU's z*h, zoneout) stay on s.h_prev.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common.h"
#include "gemm.h"
#include "kernel_api.h"
#include "simd/math.h"
#include "threads.h"

namespace rnnkit {
namespace RNNKIT_NS {

// Carves the caller's workspace; with base == nullptr it only measures. The driver and the
// cell take their buffers from the same arena, in the same order, to measure and to run.
template <class T>
struct Arena {
  T* base;
  i64 used = 0;
  T* take(i64 n) {
    T* p = base ? base + used : nullptr;
    used += round_up(n > 0 ? n : 0, 64 / static_cast<i64>(sizeof(T)));
    return p;
  }
  i64* take_i64(i64 n) { return reinterpret_cast<i64*>(take(ceil_div(n * 8, sizeof(T)))); }
};

template <class T>
RNNKIT_INLINE void copy_n(T* RESTRICT dst, const T* RESTRICT src, i64 n) {
  for (i64 i = 0; i < n; ++i) dst[i] = src[i];
}
template <class T>
RNNKIT_INLINE void zero_n(T* dst, i64 n) {
  for (i64 i = 0; i < n; ++i) dst[i] = T(0);
}

// Runs fn(b) for every row b, split over threads by contiguous row chunks when worth it.
template <class Fn>
struct RowJob {
  const Fn* fn;
  i64 B, chunk;
};
template <class Fn>
void row_task(void* ctx, i64 task, int) {
  const RowJob<Fn>& j = *static_cast<const RowJob<Fn>*>(ctx);
  const i64 b1 = (task + 1) * j.chunk < j.B ? (task + 1) * j.chunk : j.B;
  for (i64 b = task * j.chunk; b < b1; ++b) (*j.fn)(b);
}
template <class Fn>
void for_rows(i64 B, i64 row_cost, int n_threads, const Fn& fn) {
  i64 nth = (B * row_cost) / (1 << 14);  // ~16k elements of pointwise work per thread
  if (nth > n_threads) nth = n_threads;
  if (nth > B) nth = B;
  if (nth <= 1) {
    for (i64 b = 0; b < B; ++b) fn(b);
    return;
  }
  RowJob<Fn> job{&fn, B, ceil_div(B, nth)};
  parallel_for(ceil_div(B, job.chunk), static_cast<int>(nth), &row_task<Fn>, &job);
}

// The rows of step k: row b is live while k < lengths[b] (always without lengths).
struct Rows {
  const i64* lengths;  // [B] or null
  i64 B, k;
  int n_threads;
  i64 T_;        // steps
  bool reverse;
  bool live(i64 b) const { return !lengths || k < lengths[b]; }
  // The row of x (and of y and the x-ordered masks) that live row b reads at step k.
  i64 x_row(i64 b) const {
    const i64 len = lengths ? lengths[b] : T_;
    return (reverse ? len - 1 - k : k) * B + b;
  }
  // fn(b) for every live row, threaded by row chunks; cost = elements of work per row.
  template <class Fn>
  void each(i64 cost, const Fn& fn) const {
    for_rows(B, cost, n_threads, [&](i64 b) {
      if (live(b)) fn(b);
    });
  }
};

// What every cell's step needs besides its own members: sizes, threads, the GEMM scratch.
template <class T>
struct Ctx {
  i64 T_, B, I, H, P, GH;
  int nth;
  T* gemm;  // GEMM scratch, nth * gemm_a_scratch<T>() or more (backward)
};

// One forward step k, filled by the driver. Arrays are this step's rows, processing order.
template <class T>
struct FwdStep {
  i64 k;
  const T* h_prev;     // [B, P] h[k]
  T* h_new;            // [B, P] h[k+1]: the cell writes the live rows, the driver the frozen
  T* gates;            // [B, GH] in: x w_ih^T (+ h_prev w_hh^T where rec_out put it there);
                       //         out: the post-activation gates of the live rows
  std::uint8_t* mask;  // [B, GH] clip mask (out), or null without clipping
  Rows rows;
  const std::uint8_t* reset;  // [B] live row b starts from a zero state (resets), or null;
                              // h_prev already has those rows zeroed, the cell's own state not
  const T* h_rec;  // [B, P] what the products with w_hh read: h_prev * recurrent_mask, or h_prev
};

// Where the driver's recurrent product h_prev w_hh[0:R]^T of one step goes: C[B, R], row
// stride ldc, added onto C (e.g. the step's gates, holding x w_ih^T) or written over it.
template <class T>
struct RecOut {
  T* C;
  i64 ldc;
  bool accumulate;
};

// One backward step k, filled by the driver.
template <class T>
struct BwdStep {
  i64 k;
  const T* gates;  // [B, GH] gates[k]
  const T* h_prev;  // [B, P] h[k]
  const std::uint8_t* mask;  // [B, GH] clip mask, or null
  const T* dh;  // [B, P] dL/dh[k+1]: carried from step k+1 plus dy
  T* dgx;  // [B, GH] out: dL/d(x w_ih^T + b_ih), live rows
  T* dh_prev;  // [B, P] out: dL/dh[k] except the shared dG w_hh product, live rows
  Rows rows;
  const std::uint8_t* reset;  // [B] as in FwdStep (h_prev zeroed there; the driver zeroes
                              // dh_prev of those rows after the step), or null
  const T* h_rec;  // [B, P] as in FwdStep: h_prev * recurrent_mask, or h_prev
};

// The state a step starts from under resets: dst[b] = 0 for the live rows b with reset[b],
// src[b] otherwise (rows [B, n]). Returns dst.
template <class T>
const T* reset_state(T* dst, const T* src, const std::uint8_t* reset, const Rows& rows, i64 n) {
  for (i64 b = 0; b < rows.B; ++b) {
    if (reset[b] && rows.live(b))
      zero_n(dst + b * n, n);
    else
      copy_n(dst + b * n, src + b * n, n);
  }
  return dst;
}

// What the products with w_hh read under a recurrent mask: dst[b] = src[b] * mask[b] for
// every row (rows [B, n], mask [B, n]; frozen rows too: their products are discarded).
// Returns dst.
template <class T>
const T* mask_state(T* RESTRICT dst, const T* src, const T* mask, i64 B, i64 n) {
  for (i64 r = 0; r < B * n; ++r) dst[r] = src[r] * mask[r];
  return dst;
}

// dst[j] += mask[j] * src[j], j < n: the masked recurrent path of dL/dh_prev.
template <class T>
void add_masked(T* RESTRICT dst, const T* src, const T* mask, i64 n) {
  for (i64 j = 0; j < n; ++j) dst[j] += mask[j] * src[j];
}

// out[j] = sum over rows r of A[r*lda + j] (* Bm[r*ldb + j] when Bm), rows in a fixed order
// (bitwise the same for any thread count), leaving out the rows r with skip[r] (when skip).
// out[cols] may not alias A or Bm.
template <class T>
void column_sums(T* RESTRICT out, const T* A, i64 lda, const T* Bm, i64 ldb, i64 rows, i64 cols,
                 const std::uint8_t* skip = nullptr) {
  using V = Vec<T>;
  constexpr i64 L = V::kLanes;
  i64 j = 0;
  // Four vectors of columns per pass over the rows: four independent sums hide the latency of
  // the adds, and each row's 4 L values are adjacent. Each column is still summed alone, in
  // row order, so the result is the same as one vector at a time.
  for (; j + 4 * L <= cols; j += 4 * L) {
    V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
    for (i64 r = 0; r < rows; ++r) {
      if (skip && skip[r]) continue;
      const T* a = A + r * lda + j;
      if (Bm) {
        const T* b = Bm + r * ldb + j;
        s0 = fma(V::load(a), V::load(b), s0);
        s1 = fma(V::load(a + L), V::load(b + L), s1);
        s2 = fma(V::load(a + 2 * L), V::load(b + 2 * L), s2);
        s3 = fma(V::load(a + 3 * L), V::load(b + 3 * L), s3);
      } else {
        s0 = s0 + V::load(a);
        s1 = s1 + V::load(a + L);
        s2 = s2 + V::load(a + 2 * L);
        s3 = s3 + V::load(a + 3 * L);
      }
    }
    s0.store(out + j);
    s1.store(out + j + L);
    s2.store(out + j + 2 * L);
    s3.store(out + j + 3 * L);
  }
  for (; j + L <= cols; j += L) {
    V acc = V::zero();
    for (i64 r = 0; r < rows; ++r) {
      if (skip && skip[r]) continue;
      const V v = V::load(A + r * lda + j);
      acc = Bm ? fma(v, V::load(Bm + r * ldb + j), acc) : acc + v;
    }
    acc.store(out + j);
  }
  for (; j < cols; ++j) {
    T acc = T(0);
    for (i64 r = 0; r < rows; ++r)
      if (!(skip && skip[r])) acc += Bm ? A[r * lda + j] * Bm[r * ldb + j] : A[r * lda + j];
    out[j] = acc;
  }
}

// column_sums without Bm, its blocks of columns split over threads: a column's sum is the same
// whichever thread computes it (vector and scalar adds round alike), so the split changes no
// bit. The bias gradients (TB x G*H) were the largest serial pass of a backward on two threads.
template <class T>
void column_sums_threaded(T* RESTRICT out, const T* A, i64 lda, i64 rows, i64 cols, int n_threads) {
  constexpr i64 W = 4 * Vec<T>::kLanes;
  for_rows(ceil_div(cols, W), rows * W, n_threads, [&](i64 blk) {
    const i64 j0 = blk * W;
    column_sums<T>(out + j0, A + j0, lda, nullptr, 0, rows, cols - j0 < W ? cols - j0 : W);
  });
}

// bias[j] = b_ih[j] + b_hh[j] for j < hh_cols, b_ih[j] beyond (absent biases are zero).
template <class T>
void fold_bias(T* bias, const T* b_ih, const T* b_hh, i64 GH, i64 hh_cols) {
  for (i64 j = 0; j < GH; ++j)
    bias[j] = (b_ih ? b_ih[j] : T(0)) + (b_hh && j < hh_cols ? b_hh[j] : T(0));
}

// Clips v to [-clip, clip] and records where it was outside (gradient blocked there).
template <class V>
RNNKIT_INLINE V clip_and_mark(V v, V lim, std::uint8_t* mask) {
  store_mask_u8(mask, gt(abs(v), lim));
  return min(lim, max(-lim, v));
}

// Zoneout, z the mask row: z old + (1 - z) new.
template <class V>
RNNKIT_INLINE V zone(V z, V old, V nw) {
  return fma(z, old, (V::set1(1) - z) * nw);
}

// The gradient through zone(), d = dL/dh_t: stores z d (the path to h_prev) at keep and
// returns (1 - z) d, the part that reaches the cell's new state.
template <class V, class T>
RNNKIT_INLINE V unzone(V z, V d, T* keep) {
  (d * z).store(keep);
  return d * (V::set1(T(1)) - z);
}

// Zeroes a gradient where the forward clipped the pre-activation.
template <class V>
RNNKIT_INLINE V unclip(V g, const std::uint8_t* mask) {
  return select(V::load_mask(mask), V::zero(), g);
}

// ---------------------------------------------------------------------------------------------
// Layer normalisation (FwdArgs/BwdArgs ln_ih, ln_hh, ln_c): eps 1e-5, biased variance, as
// torch.nn.functional.layer_norm. The cache keeps hat = (a - mean) rstd per row and rstd in
// ln_rstd[T, B, 4], one column per norm:
enum LnCol : int { kLnIh = 0, kLnHh = 1, kLnHn = 2, kLnC = 3 };

// mean and rstd = 1/sqrt(var + 1e-5) of a[n] in one pass: Welford's update in every lane (the
// lanes see the same count, so 1/count is one scalar per vector), the lanes merged by Chan's
// formula, then the tail. As accurate as two passes (a shift by one sample of the row lost up
// to 10x in float32 on rows whose first value lay far from the mean).
template <class T>
void ln_stats(const T* a, i64 n, T& mean, T& rstd) {
  using V = Vec<T>;
  i64 j = 0, cnt = 0;
  T mu = T(0), m2 = T(0);
  if (n >= V::kLanes) {
    V vmu = V::zero(), vm2 = V::zero();
    for (; j + V::kLanes <= n; j += V::kLanes) {
      ++cnt;
      const V x = V::load(a + j), d = x - vmu;
      vmu = fma(d, V::set1(T(1) / T(cnt)), vmu);
      vm2 = fma(d, x - vmu, vm2);
    }
    mu = reduce_add(vmu) / T(V::kLanes);
    const V dm = vmu - V::set1(mu);
    m2 = reduce_add(vm2) + T(cnt) * reduce_add(dm * dm);
    cnt *= V::kLanes;
  }
  for (; j < n; ++j) {
    ++cnt;
    const T d = a[j] - mu;
    mu += d / T(cnt);
    m2 += d * (a[j] - mu);
  }
  mean = mu;
  rstd = T(1) / std::sqrt((cnt && m2 > T(0) ? m2 / T(cnt) : T(0)) + T(1e-5));
}

// One row's normalisation inside a forward pointwise pass: at(v, j) = gain[j] hat + bias[j]
// with hat = (v - mean) rstd stored at hat[j]; the identity without a parameter (gain null).
template <class T>
struct LnFwd {
  const T* gain = nullptr;  // [n] row 0 of the parameter (its columns of this norm)
  const T* bias = nullptr;  // [n] row 1
  T* hat = nullptr;  // [n] this row of the cache's *_hat
  T mean = T(0), rstd = T(0);
  template <class V>
  RNNKIT_INLINE V at(V v, i64 j) const {
    if (!gain) return v;
    const V h = (v - V::set1(mean)) * V::set1(rstd);
    h.store(hat + j);
    return fma(h, V::load(gain + j), V::load(bias + j));
  }
};

// The norm of the row a[n] with columns [off, off + n) of ln[2, ld]; hat: the row's [n] of the
// cache, rstd: its entry of ln_rstd. ln null: the identity (nothing written).
template <class T>
LnFwd<T> ln_row(const T* ln, i64 ld, i64 off, const T* a, i64 n, T* hat, T* rstd) {
  LnFwd<T> l;
  if (!ln) return l;
  l.gain = ln + off;
  l.bias = ln + ld + off;
  l.hat = hat;
  ln_stats(a, n, l.mean, l.rstd);
  *rstd = l.rstd;
  return l;
}

// The gradient through one row's norm: da[n] = rstd (g - mean(g) - hat mean(g hat)) with
// g = dout gain; gain null: da = dout. da may be dout itself.
template <class T>
void ln_backward_row(T* da, const T* dout, const T* hat, const T* gain, T rstd, i64 n) {
  using V = Vec<T>;
  if (!gain) {
    if (da != dout) copy_n(da, dout, n);
    return;
  }
  V s1 = V::zero(), s2 = V::zero();
  i64 j = 0;
  for (; j + V::kLanes <= n; j += V::kLanes) {
    const V g = V::load(dout + j) * V::load(gain + j);
    s1 = s1 + g;
    s2 = fma(g, V::load(hat + j), s2);
  }
  T t1 = reduce_add(s1), t2 = reduce_add(s2);
  for (; j < n; ++j) {
    const T g = dout[j] * gain[j];
    t1 += g;
    t2 += g * hat[j];
  }
  const V m1 = V::set1(t1 / T(n)), m2 = V::set1(t2 / T(n)), r = V::set1(rstd);
  for (j = 0; j + V::kLanes <= n; j += V::kLanes) {
    const V g = V::load(dout + j) * V::load(gain + j);
    (r * fnma(V::load(hat + j), m2, g - m1)).store(da + j);
  }
  for (; j < n; ++j) da[j] = rstd * ((dout[j] * gain[j] - t1 / T(n)) - hat[j] * (t2 / T(n)));
}

// The forward cache of layer norm: ln_rstd is zero where unused and past a sequence's end
// (ln_init, before the first step), the hats of a frozen row too (ln_freeze, processing row r).
template <class T>
void ln_init(const FwdArgs<T>& a) {
  if (a.ln_rstd) zero_n(a.ln_rstd, a.d.T * a.d.B * 4);
}
template <class T>
void ln_freeze(const FwdArgs<T>& a, i64 r) {
  const i64 GH = a.d.G * a.d.H;
  if (a.ih_hat) zero_n(a.ih_hat + r * GH, GH);
  if (a.hh_hat) zero_n(a.hh_hat + r * GH, GH);
  if (a.c_hat) zero_n(a.c_hat + r * a.d.H, a.d.H);
}

// dln[2, n] (gain, bias rows) = the column sums of dout * hat and of dout over the rows
// [rows, ld] (0 on frozen rows): the gradient of one norm's parameter.
template <class T>
void ln_param_grad(T* dln, i64 n, const T* dout, const T* hat, i64 ld, i64 rows) {
  column_sums<T>(dln, dout, ld, hat, ld, rows, n);
  column_sums<T>(dln + n, dout, ld, nullptr, 0, rows, n);
}

// Calls f(std::bool_constant<b0>{}, std::bool_constant<b1>{}, ...) for the runtime flags b0,
// b1, ...: a call's options become template parameters once, not branches per row.
template <class F>
void with_flags(F&& f) {
  f();
}
template <class F, class... Rest>
void with_flags(F&& f, bool b, Rest... rest) {
  if (b)
    with_flags([&](auto... t) { f(std::true_type{}, t...); }, rest...);
  else
    with_flags([&](auto... t) { f(std::false_type{}, t...); }, rest...);
}

// Runs body.template lanes<V>(j) over [0, n): full vectors, then a scalar tail.
template <class T, class Body>
RNNKIT_INLINE void for_lanes(i64 n, const Body& body) {
  using V = Vec<T>;
  i64 j = 0;
  for (; j + V::kLanes <= n; j += V::kLanes) body.template lanes<V>(j);
  for (; j < n; ++j) body.template lanes<Scalar<T>>(j);
}

// Row b's row of an x-ordered mask m [T, B, n] at this step, or null without m: found once per
// row and handed to the row's pass (rows.x_row() per vector costs about ten instructions).
template <class T>
RNNKIT_INLINE const T* zone_row(const T* m, const Rows& rows, i64 b, i64 n) {
  return m ? m + rows.x_row(b) * n : nullptr;
}

// zone() and unzone() over the live rows of one step, for a cell whose GEMM writes h; z is the
// row of zoneout [T, B, n] that row b reads. zone_rows: h_new[b] = z h_prev[b] + (1 - z)
// h_new[b]. unzone_rows: d_cell[b] = (1 - z) d[b], d_prev[b] = z d[b]. Rows [B, n].
template <class T>
struct ZoneRow {
  T* h_new;
  const T* h_prev;
  const T* z;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    zone(V::load(z + j), V::load(h_prev + j), V::load(h_new + j)).store(h_new + j);
  }
};
template <class T>
struct UnzoneRow {
  T* d_cell;
  T* d_prev;
  const T* d;
  const T* z;
  template <class V>
  RNNKIT_INLINE void lanes(i64 j) const {
    unzone(V::load(z + j), V::load(d + j), d_prev + j).store(d_cell + j);
  }
};
template <class T>
void zone_rows(T* h_new, const T* h_prev, const T* zoneout, const Rows& rows, i64 n) {
  for (i64 b = 0; b < rows.B; ++b)
    if (rows.live(b))
      for_lanes<T>(n, ZoneRow<T>{h_new + b * n, h_prev + b * n, zoneout + rows.x_row(b) * n});
}
template <class T>
void unzone_rows(T* d_cell, T* d_prev, const T* d, const T* zoneout, const Rows& rows, i64 n) {
  for (i64 b = 0; b < rows.B; ++b)
    if (rows.live(b))
      for_lanes<T>(
          n, UnzoneRow<T>{d_cell + b * n, d_prev + b * n, d + b * n, zoneout + rows.x_row(b) * n});
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
