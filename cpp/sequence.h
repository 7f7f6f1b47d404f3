// The one sequence driver: forward and backward over T steps for every cell.
//
// Forward (haste / oneDNN structure):
//   1. GEMMs project the inputs of chunks of ~256 rows (steps x batch) on w_ih packed once:
//      gates[k] = x[t(k)] w_ih^T, written in processing order straight into the gates output
//      (the pointwise pass turns it into the post-activation gates in place). One GEMM over all
//      steps wrote the whole projection before reading any of it back: chunked, it is still in
//      cache when its steps run (GRU B=64 H=256 forward 3.5% faster);
//   2. per step, one GEMM h[k] w_hh^T on the weights packed once (RNN, LSTM: accumulated onto
//      the step's rows of gates, so the pointwise pass reads one buffer), then the cell's
//      pointwise pass per row (GRU without linear_before_reset: a second GEMM (r*h) w_hn^T and a second
//      pointwise pass; LSTM with projection: h = m w_proj^T).
// Backward: the reverse loop runs the cell's pointwise backward and dh_prev = dG w_hh per
// step, then the weight gradients are large GEMMs over all steps at once:
//   dx = dG w_ih, dw_ih = dG^T x, dw_hh = dG^T h[0:T], db = column sums of dG.
//
// Variable lengths and reverse are row maps: step k of sequence b reads x row t = k (or
// lengths[b]-1-k when reversed) and past the end (k >= lengths[b]) its state is frozen and
// its gates are zero. The GEMMs read x (and write dx) through these maps while packing, so no
// time-reversed copy of x is made.
#pragma once

#include <cstring>

#include "cells/gru.h"
#include "cells/lstm.h"
#include "cells/rnn.h"
#include "gemm.h"
#include "kernel_api.h"

namespace rnnkit {
namespace RNNKIT_NS {

// Carves the caller's workspace; with base == nullptr it only measures.
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

// Row maps between processing order (step k, row b) and x order (time t, row b).
// fmap[k*B+b] = t*B+b, imap[t*B+b] = k*B+b, vmap[k*B+b] = k*B+b; -1 past a sequence's end.
inline void fill_row_maps(i64 T_, i64 B, const i64* lengths, bool reverse, i64* fmap, i64* imap,
                          i64* vmap) {
  for (i64 k = 0; k < T_; ++k)
    for (i64 b = 0; b < B; ++b) {
      const i64 len = lengths ? lengths[b] : T_;
      const i64 r = k * B + b;
      const bool valid = k < len;
      const i64 t = reverse ? len - 1 - k : k;
      if (fmap) fmap[r] = valid ? t * B + b : -1;
      if (vmap) vmap[r] = valid ? r : -1;
      if (imap) imap[r] = -1;
    }
  if (imap)
    for (i64 k = 0; k < T_; ++k)
      for (i64 b = 0; b < B; ++b) {
        const i64 len = lengths ? lengths[b] : T_;
        if (k < len) imap[((reverse ? len - 1 - k : k)) * B + b] = k * B + b;
      }
}

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

template <class T>
inline i64 seq_len(const i64* lengths, i64 T_, i64 b) {
  return lengths ? lengths[b] : T_;
}

// ---------------------------------------------------------------------------------------------
// Forward

template <class T>
struct FwdPlan {
  i64* fmap = nullptr;
  T *w_rec = nullptr, *w_n = nullptr, *w_proj = nullptr;  // packed weights
  T *rec = nullptr, *rec2 = nullptr, *rh = nullptr, *m = nullptr, *bias = nullptr;
  T* w_in = nullptr;  // packed w_ih^T
  T* gemm = nullptr;
  i64 n_rec = 0;
};

// Steps per input-projection GEMM: about 256 rows each, so the projection of a chunk is still
// in cache when the recurrent GEMMs and the pointwise passes of its steps read it back.
inline i64 proj_chunk(i64 T_, i64 B) {
  const i64 c = ceil_div(256, B > 0 ? B : 1);
  return c < T_ ? c : (T_ > 0 ? T_ : 1);
}

template <class T>
FwdPlan<T> plan_forward(const FwdArgs<T>& a, Arena<T>& ar) {
  const Dims& d = a.d;
  const i64 GH = d.G * d.H;
  const bool gru_split = a.cell == kGru && !a.linear_before_reset;
  FwdPlan<T> p;
  if (a.lengths || a.reverse) p.fmap = ar.take_i64(d.T * d.B);
  p.n_rec = gru_split ? 2 * d.H : GH;
  p.w_rec = ar.take(gemm_packed_b_size<T>(d.P, p.n_rec));
  if (a.cell == kGru) p.rec = ar.take(d.B * p.n_rec);
  if (gru_split) {
    p.w_n = ar.take(gemm_packed_b_size<T>(d.H, d.H));
    p.rec2 = ar.take(d.B * d.H);
    p.rh = ar.take(d.B * d.H);
  }
  if (a.cell == kLstm && a.w_proj) {
    p.w_proj = ar.take(gemm_packed_b_size<T>(d.H, d.P));
    p.m = ar.take(d.B * d.H);
  }
  if (a.b_ih || a.b_hh) p.bias = ar.take(GH);
  p.w_in = ar.take(gemm_packed_b_size<T>(d.I, GH));
  p.gemm = ar.take(a.n_threads * gemm_a_scratch<T>());
  return p;
}

template <class T>
i64 forward_workspace(const FwdArgs<T>& a) {
  Arena<T> ar{nullptr};
  plan_forward(a, ar);
  return ar.used;
}

// The cell's row function for this call's options, chosen once.
template <class T, class Row>
RNNKIT_INLINE void run_row(const Step<T>& s, i64 b, i64 n) {
  for_lanes<T>(n, Row{s, b});
}

template <class T, bool kClip>
void forward_impl(const FwdArgs<T>& a, T* ws) {
  const Dims& d = a.d;
  const i64 T_ = d.T, B = d.B, I = d.I, H = d.H, P = d.P, GH = d.G * d.H;
  const int nth = a.n_threads;
  Arena<T> ar{ws};
  const FwdPlan<T> p = plan_forward(a, ar);
  const bool lstm = a.cell == kLstm, gru = a.cell == kGru;
  const bool gru_split = gru && !a.linear_before_reset;
  const bool proj = lstm && a.w_proj;

  copy_n(a.h, a.h0, B * P);
  if (lstm) copy_n(a.c, a.c0, B * H);
  if (T_ == 0 || B == 0) return;
  if (p.fmap) fill_row_maps(T_, B, a.lengths, a.reverse, p.fmap, nullptr, nullptr);
  if (a.lengths) zero_n(a.y, T_ * B * P);

  // Weights packed once for all steps: B[k, n] = w[n, k].
  if (I > 0) pack_b<T>(p.w_in, MatView<T>{a.w_ih, 1, I}, I, GH, nth);
  pack_b<T>(p.w_rec, MatView<T>{a.w_hh, 1, P}, P, p.n_rec, nth);
  if (gru_split) pack_b<T>(p.w_n, MatView<T>{a.w_hh + 2 * H * H, 1, H}, H, H, nth);
  if (proj) pack_b<T>(p.w_proj, MatView<T>{a.w_proj, 1, H}, H, P, nth);
  const T* b_hn = nullptr;
  if (p.bias) {
    for (i64 j = 0; j < GH; ++j) {
      const bool hidden_n = gru && j >= 2 * H;  // b_hn stays inside r * (...)
      p.bias[j] = (a.b_ih ? a.b_ih[j] : T(0)) + (a.b_hh && !hidden_n ? a.b_hh[j] : T(0));
    }
    if (gru && a.b_hh) b_hn = a.b_hh + 2 * H;
  }

  Step<T> s{};
  s.H = H;
  s.P = P;
  s.GH = GH;
  s.bias = p.bias;
  s.b_hn = b_hn;
  s.peep = a.w_peep;
  s.clip = a.clip;
  s.rec = p.rec;
  s.rec2 = p.rec2;
  s.rh = p.rh;
  const i64 n_first = gru_split ? 2 * H : GH;  // columns of the first pointwise pass

  const i64 chunk = proj_chunk(T_, B);
  for (i64 k = 0; k < T_; ++k) {
    if (k % chunk == 0) {  // 1. input projection of the next chunk of steps, into gates
      const i64 steps = T_ - k < chunk ? T_ - k : chunk;
      const MatView<T> xs = p.fmap ? MatView<T>{a.x, I, 1, p.fmap + k * B}
                                   : MatView<T>{a.x + k * B * I, I, 1};
      gemm_packed<T>(steps * B, GH, I, xs, p.w_in, a.gates + k * B * GH, GH, false, p.gemm, nth);
    }
    s.gates = a.gates + k * B * GH;
    s.h_prev = a.h + k * B * P;
    s.h_new = a.h + (k + 1) * B * P;
    s.c_prev = lstm ? a.c + k * B * H : nullptr;
    s.c_new = lstm ? a.c + (k + 1) * B * H : nullptr;
    s.m = proj ? p.m : s.h_new;
    s.hn = gru ? a.hn + k * B * H : nullptr;
    s.mask = kClip ? a.clip_mask + k * B * GH : nullptr;

    if (gru) {  // the GRU needs the hidden part of n apart: a scratch buffer
      gemm_packed<T>(B, p.n_rec, P, MatView<T>{s.h_prev, P, 1}, p.w_rec, p.rec, p.n_rec, false,
                     p.gemm, nth, k & 1);
    } else {  // RNN, LSTM: accumulate onto the step's input projection, already in gates
      gemm_packed<T>(B, GH, P, MatView<T>{s.h_prev, P, 1}, p.w_rec, s.gates, GH, true, p.gemm,
                     nth, k & 1);
    }
    for_rows(B, GH, nth, [&](i64 b) {
      if (k >= seq_len<T>(a.lengths, T_, b)) {  // past the end: frozen state, zero gates
        copy_n(s.h_new + b * P, s.h_prev + b * P, P);
        if (lstm) copy_n(s.c_new + b * H, s.c_prev + b * H, H);
        if (proj) zero_n(p.m + b * H, H);
        zero_n(s.gates + b * GH, GH);
        if (gru) zero_n(s.hn + b * H, H);
        if (gru_split) zero_n(p.rh + b * H, H);
        if (kClip) std::memset(s.mask + b * GH, 0, GH);
        return;
      }
      switch (a.cell) {
        case kRnnTanh: run_row<T, RnnFwdRow<T, false, kClip>>(s, b, n_first); break;
        case kRnnRelu: run_row<T, RnnFwdRow<T, true, kClip>>(s, b, n_first); break;
        case kLstm:
          if (a.w_peep) {
            if (a.input_forget) run_row<T, LstmFwdRow<T, true, kClip, true>>(s, b, H);
            else run_row<T, LstmFwdRow<T, true, kClip, false>>(s, b, H);
          } else {
            if (a.input_forget) run_row<T, LstmFwdRow<T, false, kClip, true>>(s, b, H);
            else run_row<T, LstmFwdRow<T, false, kClip, false>>(s, b, H);
          }
          break;
        default:
          if (gru_split) run_row<T, GruRzRow<T, kClip>>(s, b, H);
          else run_row<T, GruFwdRow<T, kClip>>(s, b, H);
      }
    });
    if (gru_split) {
      gemm_packed<T>(B, H, H, MatView<T>{p.rh, H, 1}, p.w_n, p.rec2, H, false, p.gemm, nth);
      for_rows(B, H, nth, [&](i64 b) {
        if (k < seq_len<T>(a.lengths, T_, b)) run_row<T, GruNRow<T, kClip>>(s, b, H);
      });
    }
    if (proj) {
      gemm_packed<T>(B, P, H, MatView<T>{p.m, H, 1}, p.w_proj, s.h_new, P, false, p.gemm, nth);
      for (i64 b = 0; b < B; ++b)
        if (k >= seq_len<T>(a.lengths, T_, b)) copy_n(s.h_new + b * P, s.h_prev + b * P, P);
    }
    for (i64 b = 0; b < B; ++b) {  // y stays aligned with x
      const i64 len = seq_len<T>(a.lengths, T_, b);
      if (k < len) copy_n(a.y + ((a.reverse ? len - 1 - k : k) * B + b) * P, s.h_new + b * P, P);
    }
  }
}

template <class T>
void forward(const FwdArgs<T>& a, T* ws) {
  if (a.clip > T(0))
    forward_impl<T, true>(a, ws);
  else
    forward_impl<T, false>(a, ws);
}

// ---------------------------------------------------------------------------------------------
// Backward

template <class T>
struct BwdPlan {
  i64 *fmap = nullptr, *imap = nullptr, *vmap = nullptr;
  T *dgx = nullptr, *dgh = nullptr, *dht = nullptr, *m_all = nullptr, *rh_all = nullptr;
  T *dh_cur = nullptr, *dh_next = nullptr, *dc = nullptr, *dm = nullptr, *drh = nullptr;
  T *w_hh = nullptr, *w_n = nullptr, *w_proj = nullptr;
  T* gemm = nullptr;
  i64 n_rec = 0;
};

template <class T>
BwdPlan<T> plan_backward(const BwdArgs<T>& a, Arena<T>& ar) {
  const Dims& d = a.d;
  const i64 TB = d.T * d.B, GH = d.G * d.H;
  const bool gru_split = a.cell == kGru && !a.linear_before_reset;
  const bool proj = a.cell == kLstm && a.w_proj;
  BwdPlan<T> p;
  if (a.lengths || a.reverse) {
    p.fmap = ar.take_i64(TB);
    p.imap = ar.take_i64(TB);
  }
  if (a.lengths) p.vmap = ar.take_i64(TB);
  p.dgx = ar.take(TB * GH);
  if (a.cell == kGru && a.linear_before_reset) p.dgh = ar.take(TB * GH);
  if (proj) {
    p.dht = ar.take(TB * d.P);
    p.m_all = ar.take(TB * d.H);
    p.dm = ar.take(d.B * d.H);
    p.w_proj = ar.take(gemm_packed_b_size<T>(d.P, d.H));
  }
  if (gru_split) {
    p.rh_all = ar.take(TB * d.H);
    p.drh = ar.take(d.B * d.H);
    p.w_n = ar.take(gemm_packed_b_size<T>(d.H, d.H));
  }
  p.dh_cur = ar.take(d.B * d.P);
  p.dh_next = ar.take(d.B * d.P);
  if (a.cell == kLstm) p.dc = ar.take(d.B * d.H);
  p.n_rec = gru_split ? 2 * d.H : GH;
  p.w_hh = ar.take(gemm_packed_b_size<T>(p.n_rec, d.P));
  const int nth = a.n_threads;
  i64 g = nth * gemm_a_scratch<T>();
  const i64 cands[4] = {gemm_scratch<T>(GH, d.I, nth), gemm_scratch<T>(TB, d.I, nth),
                        gemm_scratch<T>(TB, d.P, nth), gemm_scratch<T>(TB, d.H, nth)};
  for (i64 c : cands) g = c > g ? c : g;
  p.gemm = ar.take(g);
  return p;
}

template <class T>
i64 backward_workspace(const BwdArgs<T>& a) {
  Arena<T> ar{nullptr};
  plan_backward(a, ar);
  return ar.used;
}

// out[j] (+)= sum over rows r of A[r*lda + j] (* Bm[r*ldb + j] when Bm), rows in a fixed order.
template <class T>
void column_sums(T* RESTRICT out, const T* A, i64 lda, const T* Bm, i64 ldb, i64 rows, i64 cols) {
  using V = Vec<T>;
  i64 j = 0;
  for (; j + V::kLanes <= cols; j += V::kLanes) {
    V acc = V::zero();
    for (i64 r = 0; r < rows; ++r) {
      const V v = V::load(A + r * lda + j);
      acc = Bm ? fma(v, V::load(Bm + r * ldb + j), acc) : acc + v;
    }
    acc.store(out + j);
  }
  for (; j < cols; ++j) {
    T acc = T(0);
    for (i64 r = 0; r < rows; ++r) acc += Bm ? A[r * lda + j] * Bm[r * ldb + j] : A[r * lda + j];
    out[j] = acc;
  }
}

template <class T, bool kClip>
void backward_impl(const BwdArgs<T>& a, T* ws) {
  const Dims& d = a.d;
  const i64 T_ = d.T, B = d.B, I = d.I, H = d.H, P = d.P, GH = d.G * d.H, TB = T_ * B;
  const int nth = a.n_threads;
  Arena<T> ar{ws};
  const BwdPlan<T> p = plan_backward(a, ar);
  const bool lstm = a.cell == kLstm, gru = a.cell == kGru;
  const bool gru_split = gru && !a.linear_before_reset;
  const bool proj = lstm && a.w_proj;

  if (TB == 0 || GH == 0) {  // nothing ran: gradients are zero, states pass through
    copy_n(a.dh0, a.dh_n, B * P);
    if (lstm) copy_n(a.dc0, a.dc_n, B * H);
    zero_n(a.dx, TB * I);
    zero_n(a.dw_ih, GH * I);
    zero_n(a.dw_hh, GH * P);
    if (a.db_ih) zero_n(a.db_ih, GH);
    if (a.db_hh) zero_n(a.db_hh, GH);
    if (a.dw_peep) zero_n(a.dw_peep, 3 * H);
    if (a.dw_proj) zero_n(a.dw_proj, P * H);
    return;
  }
  if (p.fmap) fill_row_maps(T_, B, a.lengths, a.reverse, p.fmap, p.imap, p.vmap);
  else if (p.vmap) fill_row_maps(T_, B, a.lengths, a.reverse, nullptr, nullptr, p.vmap);

  // Weights as they are (dh_prev = dG w_hh), packed once.
  pack_b<T>(p.w_hh, MatView<T>{a.w_hh, P, 1}, p.n_rec, P, nth);
  if (gru_split) pack_b<T>(p.w_n, MatView<T>{a.w_hh + 2 * H * H, H, 1}, H, H, nth);
  if (proj) pack_b<T>(p.w_proj, MatView<T>{a.w_proj, H, 1}, P, H, nth);

  T* dh_cur = p.dh_cur;
  T* dh_next = p.dh_next;
  copy_n(dh_cur, a.dh_n, B * P);
  if (lstm) copy_n(p.dc, a.dc_n, B * H);

  Step<T> s{};
  s.H = H;
  s.P = P;
  s.GH = GH;
  s.peep = a.w_peep;
  s.clip = a.clip;
  s.dc = p.dc;
  s.drh = p.drh;
  const i64 n_first = gru_split ? 2 * H : GH;

  for (i64 k = T_ - 1; k >= 0; --k) {
    for (i64 b = 0; b < B; ++b) {  // dh_total = carried + this step's output gradient
      const i64 len = seq_len<T>(a.lengths, T_, b);
      if (k >= len) continue;
      const T* dyr = a.dy + ((a.reverse ? len - 1 - k : k) * B + b) * P;
      T* dh = dh_cur + b * P;
      for (i64 j = 0; j < P; ++j) dh[j] += dyr[j];
    }
    s.gates_in = a.gates + k * B * GH;
    s.h_prev = a.h + k * B * P;
    s.c_prev = lstm ? a.c + k * B * H : nullptr;
    s.c_new = lstm ? const_cast<T*>(a.c + (k + 1) * B * H) : nullptr;
    s.hn_in = gru ? a.hn + k * B * H : nullptr;
    s.mask_in = kClip ? a.clip_mask + k * B * GH : nullptr;
    s.dh = dh_cur;
    s.dgx = p.dgx + k * B * GH;
    s.dgh = p.dgh ? p.dgh + k * B * GH : nullptr;
    s.dh_direct = dh_next;
    s.rh = p.rh_all ? p.rh_all + k * B * H : nullptr;
    if (proj) {
      T* dht = p.dht + k * B * P;
      for (i64 b = 0; b < B; ++b) {
        if (k < seq_len<T>(a.lengths, T_, b)) copy_n(dht + b * P, dh_cur + b * P, P);
        else zero_n(dht + b * P, P);
      }
      gemm_packed<T>(B, H, P, MatView<T>{dht, P, 1}, p.w_proj, p.dm, H, false, p.gemm, nth);
      s.dm = p.dm;
    } else {
      s.dm = dh_cur;
    }
    for_rows(B, GH, nth, [&](i64 b) {
      if (k >= seq_len<T>(a.lengths, T_, b)) {  // past the end: the gradient passes through
        zero_n(s.dgx + b * GH, GH);
        if (s.dgh) zero_n(s.dgh + b * GH, GH);
        if (s.rh) zero_n(s.rh + b * H, H);
        copy_n(dh_next + b * P, dh_cur + b * P, P);
        return;
      }
      switch (a.cell) {
        case kRnnTanh: run_row<T, RnnBwdRow<T, false, kClip>>(s, b, n_first); break;
        case kRnnRelu: run_row<T, RnnBwdRow<T, true, kClip>>(s, b, n_first); break;
        case kLstm:
          if (a.w_peep) {
            if (a.input_forget) run_row<T, LstmBwdRow<T, true, kClip, true>>(s, b, H);
            else run_row<T, LstmBwdRow<T, true, kClip, false>>(s, b, H);
          } else {
            if (a.input_forget) run_row<T, LstmBwdRow<T, false, kClip, true>>(s, b, H);
            else run_row<T, LstmBwdRow<T, false, kClip, false>>(s, b, H);
          }
          break;
        default:
          if (gru_split) run_row<T, GruBwdZnRow<T, kClip>>(s, b, H);
          else run_row<T, GruBwdRow<T, kClip>>(s, b, H);
      }
      if (!gru) zero_n(dh_next + b * P, P);  // h_prev reaches h only through w_hh
    });
    if (gru_split) {
      gemm_packed<T>(B, H, H, MatView<T>{s.dgx + 2 * H, GH, 1}, p.w_n, p.drh, H, false, p.gemm,
                     nth);
      for_rows(B, H, nth, [&](i64 b) {
        if (k < seq_len<T>(a.lengths, T_, b)) run_row<T, GruBwdRRow<T, kClip>>(s, b, H);
      });
    }
    const T* dg_rec = s.dgh ? s.dgh : s.dgx;
    gemm_packed<T>(B, P, p.n_rec, MatView<T>{dg_rec, GH, 1}, p.w_hh, dh_next, P, true, p.gemm,
                   nth);
    T* tmp = dh_cur;
    dh_cur = dh_next;
    dh_next = tmp;
  }
  copy_n(a.dh0, dh_cur, B * P);
  if (lstm) copy_n(a.dc0, p.dc, B * H);

  // Weight and input gradients: large GEMMs over all steps.
  const T* dgh = p.dgh ? p.dgh : p.dgx;
  gemm<T>(TB, I, GH, MatView<T>{p.dgx, GH, 1, p.imap}, MatView<T>{a.w_ih, I, 1}, a.dx, I, false,
          p.gemm, nth);
  gemm<T>(GH, I, TB, MatView<T>{p.dgx, 1, GH}, MatView<T>{a.x, I, 1, p.fmap}, a.dw_ih, I, false,
          p.gemm, nth);
  if (gru_split) {
    gemm<T>(2 * H, H, TB, MatView<T>{p.dgx, 1, GH}, MatView<T>{a.h, H, 1, p.vmap}, a.dw_hh, H,
            false, p.gemm, nth);
    gemm<T>(H, H, TB, MatView<T>{p.dgx + 2 * H, 1, GH}, MatView<T>{p.rh_all, H, 1},
            a.dw_hh + 2 * H * H, H, false, p.gemm, nth);
  } else {
    gemm<T>(GH, P, TB, MatView<T>{dgh, 1, GH}, MatView<T>{a.h, P, 1, p.vmap}, a.dw_hh, P, false,
            p.gemm, nth);
  }
  if (a.db_ih) column_sums<T>(a.db_ih, p.dgx, GH, nullptr, 0, TB, GH);
  if (a.db_hh) {
    if (a.db_ih && dgh == p.dgx)  // same gradient on both sides: one pass is enough
      copy_n(a.db_hh, a.db_ih, GH);
    else
      column_sums<T>(a.db_hh, dgh, GH, nullptr, 0, TB, GH);
  }
  if (a.dw_peep) {
    column_sums<T>(a.dw_peep, p.dgx, GH, a.c, H, TB, H);                       // da_i c_prev
    column_sums<T>(a.dw_peep + H, p.dgx + H, GH, a.c, H, TB, H);               // da_f c_prev
    column_sums<T>(a.dw_peep + 2 * H, p.dgx + 3 * H, GH, a.c + B * H, H, TB, H);  // da_o c_t
  }
  if (proj) {
    for (i64 r = 0; r < TB; ++r) {  // m = o tanh(c_t), recomputed rather than stored
      const T* o = a.gates + r * GH + 3 * H;
      const T* c = a.c + B * H + r * H;
      T* m = p.m_all + r * H;
      math_apply<T>(2, c, m, H);
      for (i64 j = 0; j < H; ++j) m[j] *= o[j];
    }
    gemm<T>(P, H, TB, MatView<T>{p.dht, 1, P}, MatView<T>{p.m_all, H, 1}, a.dw_proj, H, false,
            p.gemm, nth);
  }
}

template <class T>
void backward(const BwdArgs<T>& a, T* ws) {
  if (a.clip > T(0))
    backward_impl<T, true>(a, ws);
  else
    backward_impl<T, false>(a, ws);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
