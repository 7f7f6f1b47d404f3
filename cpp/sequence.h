// The one sequence driver: forward and backward over T steps, for any cell (cells/step.h has
// the contract, cells/cells.h picks the cell and its options once per call).
//
// Forward (haste / oneDNN structure):
//   1. GEMMs project the inputs of chunks of ~256 rows (steps x batch) on w_ih packed once:
//      gates[k] = x[t(k)] w_ih^T, written in processing order straight into the gates output
//      (the cell's pointwise pass turns it into the post-activation gates in place). Chunked,
//      the projection is still in cache when its steps read it back (GRU B=64 H=256 forward
//      3.5% faster than one GEMM over all steps);
//   2. per step, one GEMM h[k] w_hh[0:R]^T on the weights packed once, into the buffer the cell
//      names (rec_out: added onto the step's gates for RNN and LSTM), then the cell's step:
//      its pointwise pass(es) on the live rows and its own GEMMs (GRU without
//      linear_before_reset: (r*h) w_hn^T; LSTM with projection: h = m w_proj^T).
//   A functional call of few steps and rows (T = 1, B = 1: a sampling loop) skips the packing:
//   both products read w_ih and w_hh as they are (gemv.h, direct_products).
// Backward: the reverse loop runs the cell's step (pointwise backward and its own GEMMs) and
// dh_prev += dG[:, 0:R] w_hh[0:R] per step, then the weight gradients are large GEMMs over
// all steps at once: dx = dG w_ih, dw_ih = dG^T x, dw_hh[0:R] = dG_hidden^T h[0:T], db = column
// sums; the cell adds its own (the rest of w_hh, peepholes, projection). Where dG_hidden is dG
// (LSTM, RNN), the two weight gradients are one product (gemm_pair), which packs dG^T once.
//
// Resets (forward runs only) zero the state before a step: the driver hands the cell and the
// recurrent GEMM h_prev with those rows zeroed (a copy of h[k], never of x), leaves those rows
// out of dw_hh (a row map, -1 there) and zeroes their dL/dh[k]; a cell with its own state
// (LSTM c) resets it itself from FwdStep/BwdStep::reset.
//
// Recurrent mask (the same [B, P] at every step): the driver hands the recurrent GEMM and the
// cell h_rec = h_prev * mask (after resets); in backward dL/dh_prev gets mask * (dG w_hh) and
// dw_hh = dG^T h_rec, from a masked copy of h[0:T] written step by step.
//
// Zoneout (of h, and the LSTM's c) is the cells' (step.h): the driver only adds dy to dL/dh_t
// and hands the masks on in FwdArgs/BwdArgs.
//
// Variable lengths and reverse are row maps: step k of sequence b reads x row t = k (or
// lengths[b]-1-k when reversed) and past the end (k >= lengths[b]) its state is frozen and
// its gates are zero. The GEMMs read x (and write dx) through these maps while packing, so no
// time-reversed copy of x is made.
#pragma once

#include "bf16.h"
#include "cells/cells.h"
#include "gemm.h"
#include "gemv.h"
#include "kernel_api.h"
#ifdef RNNKIT_PROFILE
#include <cstdlib>  // proj_chunk's override
#endif

namespace rnnkit {
namespace RNNKIT_NS {

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

// The row of x (and y) that step k of sequence b reads, for len = its length.
inline i64 x_row(i64 k, i64 b, i64 B, i64 len, bool reverse) {
  return (reverse ? len - 1 - k : k) * B + b;
}

// Steps per input-projection GEMM: about 256 rows each, so the projection of a chunk is still
// in cache when the recurrent GEMMs and the pointwise passes of its steps read it back.
inline i64 proj_chunk(i64 T_, i64 B) {
  i64 rows = 256;
#ifdef RNNKIT_PROFILE  // profiling builds only: RNNKIT_PROJ_ROWS overrides the rows per chunk
  if (const char* env = std::getenv("RNNKIT_PROJ_ROWS")) rows = std::atol(env);
#endif
  const i64 c = ceil_div(rows, B > 0 ? B : 1);
  return c < T_ ? c : (T_ > 0 ? T_ : 1);
}

// The call's two products read w_ih and w_hh unpacked (gemv.h): few steps and rows, allowed by
// the caller (FwdArgs::direct_ok; streams keep their panels), float32 panels.
template <class T>
bool direct_products(const FwdArgs<T>& a) {
  const Dims& d = a.d;
  return a.direct_ok && !a.packed && !a.w_ih16 && use_direct(d.T, d.B, d.G * d.H * (d.I + d.P));
}

template <class T>
Ctx<T> context(const Dims& d, int nth, T* gemm_scratch) {
  return Ctx<T>{d.T, d.B, d.I, d.H, d.P, d.G * d.H, nth, gemm_scratch};
}

// ---------------------------------------------------------------------------------------------
// Forward

template <class T>
struct FwdPlan {
  i64* fmap = nullptr;  // [T*B] x row of each processing row, -1 past the end (lengths/reverse)
  T* w_rec = nullptr;   // packed w_hh[0:R]^T: B[p, r] = w_hh[r, p], p < P, r < R
  T* w_in = nullptr;    // packed w_ih^T: B[i, n] = w_ih[n, i], i < I, n < GH
  T* gemm = nullptr;    // [nth * gemm_a_scratch] the GEMMs' A panels
  T* h_start = nullptr; // [B, P] h[k] with the reset rows zeroed (resets)
  T* h_rec = nullptr;   // [B, P] h_prev * recurrent_mask (recurrent_mask)
};

template <class T, class Cell>
FwdPlan<T> plan_forward(const FwdArgs<T>& a, Cell& cell, Arena<T>& ar) {
  const Dims& d = a.d;
  FwdPlan<T> p;
  if (a.lengths || a.reverse) p.fmap = ar.take_i64(d.T * d.B);
  const bool direct = direct_products(a);  // no panels then
  if (!direct) p.w_rec = ar.take(gemm_packed_b_size<T>(d.P, cell.rec_cols()));
  cell.plan(ar);
  if (!direct) p.w_in = ar.take(gemm_packed_b_size<T>(d.I, d.G * d.H));
  p.gemm = ar.take(a.n_threads * gemm_a_scratch<T>());
  if (a.resets) p.h_start = ar.take(d.B * d.P);
  if (a.recurrent_mask) p.h_rec = ar.take(d.B * d.P);
  return p;
}

// The driver's two products on bfloat16 panels (bf16.h) when the call has them (float32
// streams with weight_dtype="bfloat16"); false: use the float32 panels.
template <class T>
bool input_bf16(const FwdArgs<T>& a, i64 M, i64 N, i64 K, MatView<T> x, T* C) {
  if constexpr (std::is_same_v<T, float>) {
    if (!a.w_ih16) return false;
    bf16_matmul(M, N, K, x, a.w_ih16, C, N, false);
    return true;
  }
  return false;
}
template <class T>
bool recurrent_bf16(const FwdArgs<T>& a, i64 B, i64 R, i64 P, const T* h_prev,
                    const RecOut<T>& rec) {
  if constexpr (std::is_same_v<T, float>) {
    if (!a.w_hh16) return false;
    bf16_matmul(B, R, P, MatView<float>{h_prev, P, 1}, a.w_hh16, rec.C, rec.ldc, rec.accumulate);
    return true;
  }
  return false;
}

template <class T, class Cell>
void run_forward(Cell& cell, const FwdArgs<T>& a, T* ws) {
  const Dims& d = a.d;
  const i64 T_ = d.T, B = d.B, I = d.I, P = d.P, GH = d.G * d.H, R = cell.rec_cols();
  const int nth = a.n_threads;
  Arena<T> ar{ws};
  const FwdPlan<T> p = plan_forward(a, cell, ar);
  const Ctx<T> cx = context(d, nth, p.gemm);

  copy_n(a.h, a.h0, B * P);
  cell.init(cx);
  if (T_ == 0 || B == 0) return;
  if (p.fmap) fill_row_maps(T_, B, a.lengths, a.reverse, p.fmap, nullptr, nullptr);
  if (a.lengths) zero_n(a.y, T_ * B * P);

  // Weights packed once for all steps: B[k, n] = w[n, k] (or once per stream: a.packed), or
  // read as they are by a call of few rows (direct).
  const bool direct = direct_products(a);
  if (!a.packed) {
    if (I > 0 && !direct) pack_b<T>(p.w_in, MatView<T>{a.w_ih, 1, I}, I, GH, nth);
    if (!direct) pack_b<T>(p.w_rec, MatView<T>{a.w_hh, 1, P}, P, R, nth);
    cell.prepare(cx);
  }

  const i64 chunk = proj_chunk(T_, B);
  Interrupt interrupt = a.interrupt;
  for (i64 k = 0; k < T_; ++k) {
    if (interrupt.requested(B * GH * (I + P))) return;  // Ctrl-C: the caller drops the outputs
    if (k % chunk == 0) {  // 1. input projection of the next chunk of steps, into gates
      const i64 steps = T_ - k < chunk ? T_ - k : chunk;
      const MatView<T> xs = p.fmap ? MatView<T>{a.x, I, 1, p.fmap + k * B}
                                   : MatView<T>{a.x + k * B * I, I, 1};
      if (direct)
        gemv<T>(steps * B, GH, I, xs, a.w_ih, I, a.gates + k * B * GH, GH, false, nth);
      else if (!input_bf16(a, steps * B, GH, I, xs, a.gates + k * B * GH))
        gemm_packed<T>(steps * B, GH, I, xs, p.w_in, a.gates + k * B * GH, GH, false, p.gemm, nth);
    }
    const Rows rows{a.lengths, B, k, nth, T_, a.reverse};
    const std::uint8_t* reset = a.resets ? a.resets + k * B : nullptr;  // no reverse: t = k
    const T* h_prev = a.h + k * B * P;
    if (reset) h_prev = reset_state(p.h_start, h_prev, reset, rows, P);
    const T* h_rec = a.recurrent_mask ? mask_state(p.h_rec, h_prev, a.recurrent_mask, B, P)
                                      : h_prev;
    const FwdStep<T> s{k,
                       h_prev,
                       a.h + (k + 1) * B * P,
                       a.gates + k * B * GH,
                       a.clip_mask ? a.clip_mask + k * B * GH : nullptr,
                       rows,
                       reset,
                       h_rec};
    const RecOut<T> rec = cell.rec_out(s);  // 2. the recurrent product, then the cell's step
    if (direct)
      gemv<T>(B, R, P, MatView<T>{s.h_rec, P, 1}, a.w_hh, P, rec.C, rec.ldc, rec.accumulate, nth);
    else if (!recurrent_bf16(a, B, R, P, s.h_rec, rec))
      gemm_packed<T>(B, R, P, MatView<T>{s.h_rec, P, 1}, p.w_rec, rec.C, rec.ldc, rec.accumulate,
                     p.gemm, nth, k & 1);
    cell.step(s, cx);
    if (a.lengths)
      for (i64 b = 0; b < B; ++b) {
        if (s.rows.live(b)) continue;  // past the end: frozen state, zero gates
        copy_n(s.h_new + b * P, s.h_prev + b * P, P);
        zero_n(s.gates + b * GH, GH);
        if (s.mask) std::memset(s.mask + b * GH, 0, GH);
        cell.freeze(s, b);
      }
    for (i64 b = 0; b < B; ++b) {  // y stays aligned with x
      const i64 len = a.lengths ? a.lengths[b] : T_;
      if (k < len) copy_n(a.y + x_row(k, b, B, len, a.reverse) * P, s.h_new + b * P, P);
    }
  }
}

template <class T>
i64 forward_workspace(const FwdArgs<T>& a) {
  Arena<T> ar{nullptr};
  with_cell<true, T>(a, [&](auto cell) { plan_forward(a, cell, ar); });
  return ar.used;
}

template <class T>
void forward(const FwdArgs<T>& a, T* ws) {
  with_cell<true, T>(a, [&](auto cell) { run_forward(cell, a, ws); });
}

// ---------------------------------------------------------------------------------------------
// Backward

template <class T>
struct BwdPlan {
  i64* fmap = nullptr;  // [T*B] x row of each processing row, -1 past the end (lengths/reverse)
  i64* imap = nullptr;  // [T*B] processing row of each x row, -1 where none (lengths/reverse)
  i64* vmap = nullptr;  // [T*B] the row itself while live, -1 past the end (lengths)
  T* dgx = nullptr;     // [T, B, GH] dL/d(x w_ih^T + b_ih) per step; 0 on frozen rows
  T* dh_cur = nullptr;  // [B, P] dL/dh[k+1]
  T* dh_next = nullptr; // [B, P] dL/dh[k], built during step k; swapped with dh_cur
  T* w_hh = nullptr;    // packed w_hh[0:R] as it is: B[r, p] = w_hh[r, p], r < R, p < P
  T* gemm = nullptr;    // GEMM scratch for the per-step products and the large ones after
  T* h_start = nullptr; // [B, P] h[k] with the reset rows zeroed (resets)
  T* h_rec = nullptr;   // [T, B, P] h[0:T] * recurrent_mask after resets (recurrent_mask)
  T* dh_rec = nullptr;  // [B, P] dG w_hh of one step, before the mask (recurrent_mask)
};

template <class T, class Cell>
BwdPlan<T> plan_backward(const BwdArgs<T>& a, Cell& cell, Arena<T>& ar) {
  const Dims& d = a.d;
  const i64 TB = d.T * d.B, GH = d.G * d.H;
  BwdPlan<T> p;
  if (a.lengths || a.reverse) {
    p.fmap = ar.take_i64(TB);
    p.imap = ar.take_i64(TB);
  }
  if (a.lengths || a.resets) p.vmap = ar.take_i64(TB);
  p.dgx = ar.take(TB * GH);
  cell.plan(ar);
  p.dh_cur = ar.take(d.B * d.P);
  p.dh_next = ar.take(d.B * d.P);
  p.w_hh = ar.take(gemm_packed_b_size<T>(cell.rec_cols(), d.P));
  const int nth = a.n_threads;
  i64 g = nth * gemm_a_scratch<T>();  // and the large GEMMs: dx, dw_ih, dw_hh, the cell's (N = H)
  const i64 cands[5] = {gemm_scratch<T>(GH, d.I, nth), gemm_scratch<T>(TB, d.I, nth),
                        gemm_scratch<T>(TB, d.P, nth), gemm_scratch<T>(TB, d.H, nth),
                        gemm_pair_scratch<T>(TB, d.I, d.P, nth)};
  for (i64 c : cands) g = c > g ? c : g;
  p.gemm = ar.take(g);
  if (a.resets) p.h_start = ar.take(d.B * d.P);
  if (a.recurrent_mask) {
    p.h_rec = ar.take(TB * d.P);
    p.dh_rec = ar.take(d.B * d.P);
  }
  return p;
}

template <class T, class Cell>
void run_backward(Cell& cell, const BwdArgs<T>& a, T* ws) {
  const Dims& d = a.d;
  const i64 T_ = d.T, B = d.B, I = d.I, P = d.P, GH = d.G * d.H, TB = T_ * B;
  const i64 R = cell.rec_cols();
  const int nth = a.n_threads;
  Arena<T> ar{ws};
  const BwdPlan<T> p = plan_backward(a, cell, ar);
  const Ctx<T> cx = context(d, nth, p.gemm);

  if (TB == 0 || GH == 0) {  // nothing ran: gradients are zero, states pass through
    copy_n(a.dh0, a.dh_n, B * P);
    zero_n(a.dx, TB * I);
    zero_n(a.dw_ih, GH * I);
    zero_n(a.dw_hh, GH * P);
    if (a.db_ih) zero_n(a.db_ih, GH);
    if (a.db_hh) zero_n(a.db_hh, GH);
    cell.empty(cx);
    return;
  }
  if (p.fmap)
    fill_row_maps(T_, B, a.lengths, a.reverse, p.fmap, p.imap, p.vmap);
  else if (p.vmap)
    fill_row_maps(T_, B, a.lengths, a.reverse, nullptr, nullptr, p.vmap);
  if (a.resets)  // a reset row's h_prev is 0: it adds nothing to dw_hh
    for (i64 r = 0; r < TB; ++r)
      if (a.resets[r]) p.vmap[r] = -1;

  pack_b<T>(p.w_hh, MatView<T>{a.w_hh, P, 1}, R, P, nth);  // as it is: dh_prev = dG w_hh
  cell.prepare(cx);
  T* dh_cur = p.dh_cur;
  T* dh_next = p.dh_next;
  copy_n(dh_cur, a.dh_n, B * P);
  cell.init(cx);

  Interrupt interrupt = a.interrupt;
  for (i64 k = T_ - 1; k >= 0; --k) {
    if (interrupt.requested(B * GH * (I + 2 * P))) return;  // Ctrl-C: outputs dropped
    const Rows rows{a.lengths, B, k, nth, T_, a.reverse};
    const std::uint8_t* reset = a.resets ? a.resets + k * B : nullptr;  // no reverse: t = k
    const T* h_prev = a.h + k * B * P;
    if (reset) h_prev = reset_state(p.h_start, h_prev, reset, rows, P);
    const T* h_rec = a.recurrent_mask
                         ? mask_state(p.h_rec + k * B * P, h_prev, a.recurrent_mask, B, P)
                         : h_prev;
    const BwdStep<T> s{k,       a.gates + k * B * GH,
                       h_prev,  a.clip_mask ? a.clip_mask + k * B * GH : nullptr,
                       dh_cur,  p.dgx + k * B * GH,
                       dh_next, rows,
                       reset,   h_rec};
    for (i64 b = 0; b < B; ++b) {
      const i64 len = a.lengths ? a.lengths[b] : T_;
      if (k >= len) {  // past the end: the gradient passes through, nothing reaches the gates
        zero_n(s.dgx + b * GH, GH);
        copy_n(dh_next + b * P, dh_cur + b * P, P);
        cell.freeze(s, b);
        continue;
      }
      const T* dyr = a.dy + x_row(k, b, B, len, a.reverse) * P;  // dh += this step's dy
      T* dh = dh_cur + b * P;
      for (i64 j = 0; j < P; ++j) dh[j] += dyr[j];
    }
    cell.step(s, cx);
    if (a.recurrent_mask) {  // dh_prev += mask * (dG w_hh)
      gemm_packed<T>(B, P, R, MatView<T>{cell.dg_rec(s), GH, 1}, p.w_hh, p.dh_rec, P, false, p.gemm,
                     nth);
      for (i64 b = 0; b < B; ++b)
        if (rows.live(b))
          add_masked(dh_next + b * P, p.dh_rec + b * P, a.recurrent_mask + b * P, P);
    } else {
      gemm_packed<T>(B, P, R, MatView<T>{cell.dg_rec(s), GH, 1}, p.w_hh, dh_next, P, true, p.gemm,
                     nth);
    }
    if (reset)  // no gradient crosses a reset
      for (i64 b = 0; b < B; ++b)
        if (reset[b] && rows.live(b)) zero_n(dh_next + b * P, P);
    T* tmp = dh_cur;
    dh_cur = dh_next;
    dh_next = tmp;
  }
  copy_n(a.dh0, dh_cur, B * P);

  // Weight and input gradients: large GEMMs over all steps.
  const T* dgh = cell.dg_hidden(p.dgx);  // [T, B, GH] dL/d(h w_hh^T + b_hh)
  gemm<T>(TB, I, GH, MatView<T>{p.dgx, GH, 1, p.imap}, MatView<T>{a.w_ih, I, 1}, a.dx, I, false,
          p.gemm, nth);
  const MatView<T> xv{a.x, I, 1, p.fmap};
  const MatView<T> hv{p.h_rec ? p.h_rec : a.h, P, 1, p.vmap};
  if (dgh == p.dgx && R == GH) {  // dw_ih and dw_hh share dG^T: one product packs it once
    gemm_pair<T>(GH, TB, MatView<T>{p.dgx, 1, GH}, xv, I, a.dw_ih, I, hv, P, a.dw_hh, P, p.gemm,
                 nth);
  } else {
    gemm<T>(GH, I, TB, MatView<T>{p.dgx, 1, GH}, xv, a.dw_ih, I, false, p.gemm, nth);
    gemm<T>(R, P, TB, MatView<T>{dgh, 1, GH}, hv, a.dw_hh, P, false, p.gemm, nth);
  }
  const T* dbi = cell.dg_bias_ih(p.dgx);  // [T, B, GH] rows of db_ih, db_hh (step.h)
  const T* dbh = cell.dg_bias_hh(p.dgx);
  if (a.db_ih) column_sums_threaded<T>(a.db_ih, dbi, GH, TB, GH, nth);
  if (a.db_hh) {
    if (a.db_ih && dbh == dbi)  // same gradient on both sides: one pass is enough
      copy_n(a.db_hh, a.db_ih, GH);
    else
      column_sums_threaded<T>(a.db_hh, dbh, GH, TB, GH, nth);
  }
  cell.finish(cx, p.dgx);
}

template <class T>
i64 backward_workspace(const BwdArgs<T>& a) {
  Arena<T> ar{nullptr};
  with_cell<false, T>(a, [&](auto cell) { plan_backward(a, cell, ar); });
  return ar.used;
}

template <class T>
void backward(const BwdArgs<T>& a, T* ws) {
  with_cell<false, T>(a, [&](auto cell) { run_backward(cell, a, ws); });
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
