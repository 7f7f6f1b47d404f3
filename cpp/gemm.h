// The one GEMM of rnnkit: C[M,N] = A[M,K] B[K,N], or C += A B, on packed panels (BLIS layout).
//
// - B is packed once into panels of NR columns, K-blocked by KC, zero-padded to a multiple of
//   NR. The weights of a layer are packed once per call and reused for all T steps.
// - A is packed per (row block, K block) into micro-panels of MR rows in a per-thread scratch
//   slot. A last, partial micro-panel is not padded: the micro-kernel is instantiated for its
//   exact row count (1..MR) and never reads the rows it lacks, which matters at batch 1. The micro-kernel multiplies one MR x kc micro-panel of A by one
//   kc x NR panel of B with MR x NR accumulators held in registers.
// - Operands are strided views (transposes cost nothing) with an optional row gather, used to
//   read time steps in processing order (reverse, variable lengths) without copying.
// - Work is split into tasks by output tiles (row blocks x panel ranges). Every element of C is
//   summed by one task in a fixed K order, so results do not depend on the thread count.
// - accumulate == false never reads C. Scratch comes from the caller.
//
// Included inside a target namespace (see target_impl.h) after simd/vec.h.
#pragma once

#include "common.h"
#include "simd/vec.h"
#include "threads.h"

namespace rnnkit {
namespace RNNKIT_NS {

// A read-only strided matrix view. Element (r, c) is p[row(r) * rs + c * cs]; with `rows`,
// row r is stored at index rows[r] (a negative index is a row of zeros).
template <class T>
struct MatView {
  const T* p;
  i64 rs, cs;
  const i64* rows = nullptr;

  RNNKIT_INLINE const T* row(i64 r) const {
    if (rows) {
      i64 q = rows[r];
      return q < 0 ? nullptr : p + q * rs;
    }
    return p + r * rs;
  }
};

// Register blocking per target: MR rows x NR = NV vectors of columns.
template <class T>
struct Tile {
  using V = Vec<T>;
#if defined(RNNKIT_TARGET_AVX512)
  static constexpr int MR = 12, NV = 2;  // 24 accumulators of 32 zmm registers
#elif defined(RNNKIT_TARGET_AVX2)
  static constexpr int MR = 6, NV = 2;  // 12 accumulators of 16 ymm registers
#else
  static constexpr int MR = 4, NV = 4;  // scalar: 16 accumulators
#endif
  static constexpr int L = V::kLanes;
  static constexpr int NR = NV * L;
  static constexpr i64 KC = 256;
  static constexpr i64 MC = 96;  // a multiple of every MR above
};

template <class T>
constexpr i64 gemm_packed_b_size(i64 K, i64 N) {
  return K * round_up(N, Tile<T>::NR);
}

// Per-thread scratch for packing A, in elements (rounded to a 64-byte multiple).
template <class T>
constexpr i64 gemm_a_scratch() {
  return round_up(Tile<T>::MC * Tile<T>::KC, 64);
}

// Packs B[K, N] (panels p0..p1) into dst: block pc, panel j starts at pc*Npad + j*kc*NR.
template <class T>
void pack_b_panels(T* RESTRICT dst, MatView<T> B, i64 K, i64 N, i64 p0, i64 p1) {
  constexpr int NR = Tile<T>::NR;
  constexpr i64 KC = Tile<T>::KC;
  const i64 Npad = round_up(N, NR);
  for (i64 pc = 0; pc < K; pc += KC) {
    const i64 kc = K - pc < KC ? K - pc : KC;
    for (i64 j = p0; j < p1; ++j) {
      T* out = dst + pc * Npad + j * kc * NR;
      const i64 n0 = j * NR;
      const i64 nn = N - n0 < NR ? N - n0 : NR;
      if (B.rows == nullptr && B.rs == 1 && B.cs != 1) {
        // B is a transposed row-major matrix (B[k, n] = W[n, k]): walk W's rows, S of them
        // at a time through S x S register transposes (an element-wise copy with a store
        // stride of NR was 11% of a B=1 H=256 LSTM forward, perf), the rest element-wise.
        constexpr int S = kTransposeSquare<T>;
        i64 c = 0;
        if constexpr (S > 0) {
          for (; c + S <= nn; c += S) {
            const T* src = B.p + pc + (n0 + c) * B.cs;
            i64 k = 0;
            for (; k + S <= kc; k += S) {
              // Weights often come from DRAM (a call reads them once), in rows too short (1 KB
              // at I = 256) for the hardware prefetchers to ramp up: fetch the rows 2S ahead
              // into L2, one line per row every 16 k (packing 1 MB from DRAM: 142 -> 97 us).
              if (k % 16 == 0)
                for (int q = 0; q < S; ++q) __builtin_prefetch(src + (2 * S + q) * B.cs + k, 0, 1);
              transpose_square(src + k, B.cs, out + k * NR + c, NR);
            }
            for (; k < kc; ++k)
              for (int q = 0; q < S; ++q) out[k * NR + c + q] = src[q * B.cs + k];
          }
        }
        for (; c < NR; ++c) {
          if (c < nn) {
            const T* src = B.p + (pc) + (n0 + c) * B.cs;
            for (i64 k = 0; k < kc; ++k) out[k * NR + c] = src[k];
          } else {
            for (i64 k = 0; k < kc; ++k) out[k * NR + c] = T(0);
          }
        }
      } else {
        for (i64 k = 0; k < kc; ++k) {
          const T* src = B.row(pc + k);
          T* o = out + k * NR;
          if (src == nullptr) {
            for (i64 c = 0; c < NR; ++c) o[c] = T(0);
            continue;
          }
          src += n0 * B.cs;
          i64 c = 0;
          if (B.cs == 1 && nn == NR) {  // full panel row: compile-time trip count
            for (int q = 0; q < NR; ++q) o[q] = src[q];
            continue;
          }
          if (B.cs == 1) {
            for (; c < nn; ++c) o[c] = src[c];
          } else {
            for (; c < nn; ++c) o[c] = src[c * B.cs];
          }
          for (; c < NR; ++c) o[c] = T(0);
        }
      }
    }
  }
}

// Packs rows [i0, i0+mc) x cols [pc, pc+kc) of A into MR-row micro-panels (a short last
// panel holds only its rows; gathered rows past a sequence's end are zeros).
template <class T>
void pack_a_block(T* RESTRICT dst, MatView<T> A, i64 i0, i64 mc, i64 pc, i64 kc) {
  constexpr int MR = Tile<T>::MR;
  if (A.rows == nullptr && A.rs == 1 && A.cs != 1) {
    // A is a transposed row-major matrix (A[m, k] = W[k, m], e.g. dG^T for the weight
    // gradients): each k gives MR contiguous elements, so read along W's rows.
    for (i64 ir = 0; ir < mc; ir += MR) {
      T* out = dst + (ir / MR) * kc * MR;
      const i64 mr = mc - ir < MR ? mc - ir : MR;
      for (i64 k = 0; k < kc; ++k) {
        const T* src = A.p + (pc + k) * A.cs + i0 + ir;
        T* o = out + k * MR;
        if (mr == MR) {  // a compile-time trip count: inline moves, not a memcpy call
          for (int r = 0; r < MR; ++r) o[r] = src[r];
        } else {
          for (int r = 0; r < mr; ++r) o[r] = src[r];
        }
      }
    }
    return;
  }
  constexpr int S = kTransposeSquare<T>;
  for (i64 ir = 0; ir < mc; ir += MR) {
    T* out = dst + (ir / MR) * kc * MR;
    const int mr = static_cast<int>(mc - ir < MR ? mc - ir : MR);
    int r0 = 0;
    if constexpr (S > 0) {
      // Evenly strided rows (no gather): S rows at a time through S x S register transposes,
      // as in pack_b_panels.
      if (A.rows == nullptr && A.cs == 1) {
        for (; r0 + S <= mr; r0 += S) {
          const T* src = A.p + (i0 + ir + r0) * A.rs + pc;
          i64 k = 0;
          for (; k + S <= kc; k += S) transpose_square(src + k, A.rs, out + k * MR + r0, MR);
          for (; k < kc; ++k)
            for (int q = 0; q < S; ++q) out[k * MR + r0 + q] = src[q * A.rs + k];
        }
      }
    }
    for (int r = r0; r < mr; ++r) {
      const T* src = A.row(i0 + ir + r);
      if (src == nullptr) {
        for (i64 k = 0; k < kc; ++k) out[k * MR + r] = T(0);
      } else if (A.cs == 1) {
        src += pc;
        for (i64 k = 0; k < kc; ++k) out[k * MR + r] = src[k];
      } else {
        src += pc * A.cs;
        for (i64 k = 0; k < kc; ++k) out[k * MR + r] = src[k * A.cs];
      }
    }
  }
}

// C[mr_eff x n_eff] (+)= a_panel (kc x MR) * b_panel (kc x NR); MRE rows are computed.
// With few rows (small batches) there are too few independent accumulators to hide the FMA
// latency, so k is split over KS interleaved accumulator sets, summed at the end in a fixed
// order (the result does not depend on the thread count). Row r of A at step k is
// a[k * AS + r]: AS = MR for a packed micro-panel, 1 for a single row read in place.
template <class T, int MRE, int AS = Tile<T>::MR>
RNNKIT_INLINE void micro_kernel(i64 kc, const T* RESTRICT a, const T* RESTRICT b, T* RESTRICT c,
                                i64 ldc, i64 n_eff, bool accumulate) {
  using V = Vec<T>;
  constexpr int NV = Tile<T>::NV, L = Tile<T>::L, NR = Tile<T>::NR;
  constexpr int KS = MRE * NV >= 8 ? 1 : (MRE * NV >= 4 ? 2 : 4);
  V acc[KS][MRE][NV];
#pragma GCC unroll 4
  for (int s = 0; s < KS; ++s)
#pragma GCC unroll 16
    for (int r = 0; r < MRE; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[s][r][v] = V::zero();
  i64 k = 0;
  for (; k + KS <= kc; k += KS) {
#pragma GCC unroll 4
    for (int s = 0; s < KS; ++s) {
      V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = V::load(b + (k + s) * NR + v * L);
#pragma GCC unroll 16
      for (int r = 0; r < MRE; ++r) {
        const V ar = V::set1(a[(k + s) * AS + r]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[s][r][v] = fma(ar, bv[v], acc[s][r][v]);
      }
    }
  }
  for (; k < kc; ++k) {
#pragma GCC unroll 16
    for (int r = 0; r < MRE; ++r) {
      const V ar = V::set1(a[k * AS + r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[0][r][v] = fma(ar, V::load(b + k * NR + v * L), acc[0][r][v]);
    }
  }
#pragma GCC unroll 4
  for (int s = 1; s < KS; ++s)
#pragma GCC unroll 16
    for (int r = 0; r < MRE; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[0][r][v] = acc[0][r][v] + acc[s][r][v];
  if (n_eff == NR) {
#pragma GCC unroll 16
    for (int r = 0; r < MRE; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        T* dst = c + r * ldc + v * L;
        if (accumulate)
          (V::load(dst) + acc[0][r][v]).store(dst);
        else
          acc[0][r][v].store(dst);
      }
  } else {
    T buf[MRE * NR];
    for (int r = 0; r < MRE; ++r)
      for (int v = 0; v < NV; ++v) acc[0][r][v].store(buf + r * NR + v * L);
    for (int r = 0; r < MRE; ++r)
      for (i64 j = 0; j < n_eff; ++j) {
        T* dst = c + r * ldc + j;
        *dst = accumulate ? *dst + buf[r * NR + j] : buf[r * NR + j];
      }
  }
}

template <class T, int MRE = Tile<T>::MR>
RNNKIT_INLINE void micro_kernel_rows(int mr_eff, i64 kc, const T* a, const T* b, T* c, i64 ldc,
                                     i64 n_eff, bool accumulate) {
  if constexpr (MRE == 1) {
    micro_kernel<T, 1>(kc, a, b, c, ldc, n_eff, accumulate);
  } else {
    if (mr_eff == MRE)
      micro_kernel<T, MRE>(kc, a, b, c, ldc, n_eff, accumulate);
    else
      micro_kernel_rows<T, MRE - 1>(mr_eff, kc, a, b, c, ldc, n_eff, accumulate);
  }
}

template <class T>
struct GemmJob {
  i64 M, N, K;
  MatView<T> A;
  const T* Bp;
  T* C;
  i64 ldc;
  bool accumulate;
  T* scratch;  // n_threads * gemm_a_scratch<T>()
  i64 n_chunks;  // panel ranges per row block
  bool backwards;  // walk each task's panels last to first
};

// One task: one MC row block x one range of NR panels, over all of K.
template <class T>
void gemm_task(void* vctx, i64 task, int tid) {
  const GemmJob<T>& g = *static_cast<const GemmJob<T>*>(vctx);
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  constexpr i64 KC = Tile<T>::KC, MC = Tile<T>::MC;
  const i64 n_panels = ceil_div(g.N, NR);
  const i64 Npad = n_panels * NR;
  const i64 ic = (task / g.n_chunks) * MC;
  const i64 chunk = task % g.n_chunks;
  const i64 j0 = n_panels * chunk / g.n_chunks, j1 = n_panels * (chunk + 1) / g.n_chunks;
  const i64 mc = g.M - ic < MC ? g.M - ic : MC;
  T* abuf = g.scratch + tid * gemm_a_scratch<T>();
  // A single contiguous row (batch 1, every step of a recurrence) is read in place: packing
  // it cost 10% of a small RNN's forward (perf), for no gain in locality.
  const T* row = mc == 1 && g.A.cs == 1 ? g.A.row(ic) : nullptr;
  for (i64 pc = 0; pc < g.K; pc += KC) {
    const i64 kc = g.K - pc < KC ? g.K - pc : KC;
    const bool acc = g.accumulate || pc > 0;
    if (row) {
      for (i64 q = j0; q < j1; ++q) {
        const i64 j = g.backwards ? j0 + j1 - 1 - q : q;
        const i64 n_eff = g.N - j * NR < NR ? g.N - j * NR : NR;
        micro_kernel<T, 1, 1>(kc, row + pc, g.Bp + pc * Npad + j * kc * NR, g.C + ic * g.ldc + j * NR,
                              g.ldc, n_eff, acc);
      }
      continue;
    }
    pack_a_block<T>(abuf, g.A, ic, mc, pc, kc);
    for (i64 q = j0; q < j1; ++q) {
      const i64 j = g.backwards ? j0 + j1 - 1 - q : q;
      const T* bpanel = g.Bp + pc * Npad + j * kc * NR;
      const i64 n_eff = g.N - j * NR < NR ? g.N - j * NR : NR;
      for (i64 ir = 0; ir < mc; ir += MR) {
        const int mr_eff = static_cast<int>(mc - ir < MR ? mc - ir : MR);
        micro_kernel_rows<T>(mr_eff, kc, abuf + (ir / MR) * kc * MR, bpanel,
                             g.C + (ic + ir) * g.ldc + j * NR, g.ldc, n_eff, acc);
      }
    }
  }
}

// Below this many multiply-adds a second thread costs more than it saves.
constexpr i64 kMinWorkPerThread = 1 << 16;

inline int gemm_threads(i64 M, i64 N, i64 K, int n_threads) {
  const i64 work = M * N * (K > 0 ? K : 1);
  i64 useful = work / kMinWorkPerThread;
  if (useful < 1) useful = 1;
  return static_cast<int>(useful < n_threads ? useful : n_threads);
}

// C[M,N] (+)= A B with B already packed by pack_b_panels. scratch: n_threads * gemm_a_scratch.
// backwards: the panels are visited last to first (same results). A recurrence reading the same
// B every step alternates the direction, so each step starts on the panels the previous one
// left in cache: a B the size of L2 (LSTM H=256: 1 MB) otherwise misses on every line.
template <class T>
void gemm_packed(i64 M, i64 N, i64 K, MatView<T> A, const T* Bp, T* C, i64 ldc, bool accumulate,
                 T* scratch, int n_threads, bool backwards = false) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (i64 i = 0; i < M; ++i)
        for (i64 j = 0; j < N; ++j) C[i * ldc + j] = T(0);
    return;
  }
  constexpr int NR = Tile<T>::NR;
  const i64 m_blocks = ceil_div(M, Tile<T>::MC);
  const i64 n_panels = ceil_div(N, NR);
  const int nth = gemm_threads(M, N, K, n_threads);
  i64 n_chunks = 1;
  if (m_blocks < nth) n_chunks = ceil_div(nth, m_blocks) * 2;
  if (n_chunks > n_panels) n_chunks = n_panels;
  GemmJob<T> job{M, N, K, A, Bp, C, ldc, accumulate, scratch, n_chunks, backwards};
  parallel_for(m_blocks * n_chunks, nth, &gemm_task<T>, &job);
}

template <class T>
struct PackJob {
  T* dst;
  MatView<T> B;
  i64 K, N, per_task;
};

template <class T>
void pack_b_task(void* vctx, i64 task, int) {
  const PackJob<T>& p = *static_cast<const PackJob<T>*>(vctx);
  const i64 n_panels = ceil_div(p.N, Tile<T>::NR);
  const i64 j0 = task * p.per_task;
  const i64 j1 = j0 + p.per_task < n_panels ? j0 + p.per_task : n_panels;
  pack_b_panels<T>(p.dst, p.B, p.K, p.N, j0, j1);
}

// Packs all of B[K, N] into dst (gemm_packed_b_size elements), split by panels over threads.
template <class T>
void pack_b(T* dst, MatView<T> B, i64 K, i64 N, int n_threads) {
  const i64 n_panels = ceil_div(N, Tile<T>::NR);
  if (K <= 0 || n_panels <= 0) return;
  int nth = gemm_threads(K, N, 1, n_threads);
  const i64 per_task = ceil_div(n_panels, nth * 4 > n_panels ? n_panels : nth * 4);
  PackJob<T> job{dst, B, K, N, per_task};
  parallel_for(ceil_div(n_panels, per_task), nth, &pack_b_task<T>, &job);
}

// Scratch for gemm(): packed B followed by the per-thread A slots.
template <class T>
constexpr i64 gemm_scratch(i64 K, i64 N, int n_threads) {
  return round_up(gemm_packed_b_size<T>(K, N), 64) + n_threads * gemm_a_scratch<T>();
}

// C[M,N] (+)= A B for unpacked B (a one-off product: packs B first).
template <class T>
void gemm(i64 M, i64 N, i64 K, MatView<T> A, MatView<T> B, T* C, i64 ldc, bool accumulate,
          T* scratch, int n_threads) {
  if (M <= 0 || N <= 0) return;
  T* Bp = scratch;
  if (K > 0) pack_b<T>(Bp, B, K, N, n_threads);
  gemm_packed<T>(M, N, K, A, Bp, C, ldc, accumulate,
                 scratch + round_up(gemm_packed_b_size<T>(K, N), 64), n_threads);
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
