// The one GEMM of rnnkit: C[M,N] = A[M,K] B[K,N], or C += A B, on packed panels (BLIS layout).
//
// - B is packed once into panels of NR columns, K-blocked by KC, zero-padded to a multiple of
//   NR. The weights of a layer are packed once per call and reused for all T steps.
// - The register tile (MR x NR) and the blocking (KC, MC, NC) are run-time parameters chosen
//   for the CPU (gemm_params.h): each target compiles a few tiles (kTiles), a table of CPU
//   families picks one, the cache sizes give the blocks. Every packing function and task is a
//   template on the tile; one table of function pointers per dtype selects the instantiation.
// - A is packed per (row block, K block) into micro-panels of MR rows in a per-thread scratch
//   slot. A last, partial micro-panel is not padded: the micro-kernel is instantiated for its
//   exact row count (1..MR) and never reads the rows it lacks, which matters at batch 1. The
//   micro-kernel multiplies one MR x kc micro-panel of A by one kc x NR panel of B with MR x NR
//   accumulators held in registers.
// - Operands are strided views (transposes cost nothing) with an optional row gather, used to
//   read time steps in processing order (reverse, variable lengths) without copying.
// - Work is split into tasks by output tiles (row blocks x panel ranges), each with an owner
//   thread (parallel_for_owned), the same every call. Every element of C is summed by one task
//   in a fixed K order, so results do not depend on the thread count.
// - accumulate == false never reads C. Scratch comes from the caller.
//
// Included inside a target namespace (see target_impl.h) after simd/vec.h.
#pragma once

#include <utility>

#include "common.h"
#include "cpu_features.h"
#include "gemm_params.h"
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

// The register tiles this target compiles, MR rows x NV vectors of columns; the family table
// (gemm_params.cpp) picks one by index. Every tile keeps MR x NV accumulators plus NV B vectors
// and a broadcast within the register file, and enough accumulators to cover FMA latency x
// ports at full height (edges use exact-height kernels, see micro_kernel).
#if defined(RNNKIT_TARGET_AVX512)
constexpr GemmTileShape kTiles[] = {{12, 2}, {8, 3}, {6, 4}};  // 24 accumulators of 32 zmm
constexpr int kTarget = kTargetAvx512;
#elif defined(RNNKIT_TARGET_AVX2)
constexpr GemmTileShape kTiles[] = {{6, 2}, {4, 3}};  // 12 accumulators of 16 ymm
constexpr int kTarget = kTargetAvx2;
#else
constexpr GemmTileShape kTiles[] = {{4, 4}, {2, 4}};  // scalar: 16 and 8 accumulators
constexpr int kTarget = kTargetScalar;
#endif
constexpr int kNumTiles = static_cast<int>(sizeof(kTiles) / sizeof(kTiles[0]));

// The parameters in use for T: chosen for this CPU at first use; tests may force others
// (gemm_tuning_*, between calls only: a call reads them several times).
template <class T>
GemmParams& gemm_params_slot() {
  static GemmParams p = choose_gemm_params(cpu_features(), kTarget, kTiles, kNumTiles,
                                           Vec<T>::kLanes, static_cast<int>(sizeof(T)));
  return p;
}
template <class T>
RNNKIT_INLINE const GemmParams& gemm_params() {
  return gemm_params_slot<T>();
}
template <class T>
RNNKIT_INLINE i64 gemm_nr() {
  return static_cast<i64>(kTiles[gemm_params<T>().tile].nv) * Vec<T>::kLanes;
}

// K blocks: as even as possible, none longer than kc, a multiple of 8 except the last (K=300
// with kc=256 runs 152 + 148, not 256 + 44). Packing and the GEMM agree on it.
inline i64 k_block(i64 K, i64 kc) {
  const i64 blocks = ceil_div(K, kc);
  const i64 even = round_up(ceil_div(K, blocks), 8);
  return even < kc ? even : kc;
}

template <class T>
inline i64 gemm_packed_b_size(i64 K, i64 N) {
  return K * round_up(N, gemm_nr<T>());
}

// Per-thread scratch for packing A, in elements (rounded to a 64-byte multiple).
template <class T>
inline i64 gemm_a_scratch() {
  return round_up(gemm_params<T>().mc * gemm_params<T>().kc, 64);
}

// Packs B[K, N] (panels p0..p1) into dst: block pc, panel j starts at
// pc*Npad + (j + shift)*kc*NR, with NR = NV lanes and K blocks of k_block(K, kc_max). Npad is
// round_up(N, NR), or more with shift when B is the second of two packed side by side
// (gemm_pair).
template <class T, int NV>
void pack_b_panels(T* RESTRICT dst, MatView<T> B, i64 K, i64 N, i64 p0, i64 p1, i64 kc_max,
                   i64 Npad, i64 shift) {
  constexpr int NR = NV * Vec<T>::kLanes;
  const i64 KC = k_block(K, kc_max);
  for (i64 pc = 0; pc < K; pc += KC) {
    const i64 kc = K - pc < KC ? K - pc : KC;
    for (i64 j = p0; j < p1; ++j) {
      T* out = dst + pc * Npad + (j + shift) * kc * NR;
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
template <class T, int MR>
void pack_a_block(T* RESTRICT dst, MatView<T> A, i64 i0, i64 mc, i64 pc, i64 kc) {
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
      // as in pack_b_panels. A last group of fewer than S rows is transposed as the S rows
      // ending at the panel's last row, rewriting some rows with the same values: the 12-row
      // tile is 8 + 4 rows of float, and the 4 left over copied element-wise cost as much as
      // the 8 transposed (callgrind: pack_a_block was 6.4% of an LSTM B=64 fwd+bwd).
      if (A.rows == nullptr && A.cs == 1 && mr >= S) {
        for (int rr = 0; r0 < mr; rr += S) {
          if (rr + S > mr) rr = mr - S;
          const T* src = A.p + (i0 + ir + rr) * A.rs + pc;
          i64 k = 0;
          for (; k + S <= kc; k += S) transpose_square(src + k, A.rs, out + k * MR + rr, MR);
          for (; k < kc; ++k)
            for (int q = 0; q < S; ++q) out[k * MR + rr + q] = src[q * A.rs + k];
          r0 = rr + S;
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
template <class T, int MRE, int NV, int AS>
RNNKIT_INLINE void micro_kernel(i64 kc, const T* RESTRICT a, const T* RESTRICT b, T* RESTRICT c,
                                i64 ldc, i64 n_eff, bool accumulate) {
  using V = Vec<T>;
  constexpr int L = V::kLanes, NR = NV * L;
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
      for (int v = 0; v < NV; ++v)
        acc[0][r][v] = fma(ar, V::load(b + k * NR + v * L), acc[0][r][v]);
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

// The kernel for a micro-panel of mr_eff <= MRE rows packed with row stride MR.
template <class T, int MR, int NV, int MRE = MR>
RNNKIT_INLINE void micro_kernel_rows(int mr_eff, i64 kc, const T* a, const T* b, T* c, i64 ldc,
                                     i64 n_eff, bool accumulate) {
  if constexpr (MRE == 1) {
    micro_kernel<T, 1, NV, MR>(kc, a, b, c, ldc, n_eff, accumulate);
  } else {
    if (mr_eff == MRE)
      micro_kernel<T, MRE, NV, MR>(kc, a, b, c, ldc, n_eff, accumulate);
    else
      micro_kernel_rows<T, MR, NV, MRE - 1>(mr_eff, kc, a, b, c, ldc, n_eff, accumulate);
  }
}

// Where the columns of C go: one matrix of N1 columns, or two side by side that share A
// (gemm_pair): panels [0, split) are C1's N1 columns, the panels after them C2's N2 columns.
template <class T>
struct GemmOut {
  T* C1;
  i64 ldc1, N1;
  i64 split;  // ceil(N1 / NR)
  T* C2 = nullptr;
  i64 ldc2 = 0, N2 = 0;

  // Columns of the packed product (what gemm_task calls N): C2 starts on a whole panel.
  i64 cols(i64 NR) const { return C2 ? split * NR + N2 : N1; }
  // Row i's first element of panel j; sets the panel's columns in its matrix and that
  // matrix's row stride.
  RNNKIT_INLINE T* at(i64 i, i64 j, i64 NR, i64& n_eff, i64& ldc) const {
    if (j < split) {
      n_eff = N1 - j * NR < NR ? N1 - j * NR : NR;
      ldc = ldc1;
      return C1 + i * ldc1 + j * NR;
    }
    j -= split;
    n_eff = N2 - j * NR < NR ? N2 - j * NR : NR;
    ldc = ldc2;
    return C2 + i * ldc2 + j * NR;
  }
};

template <class T>
struct GemmJob {
  i64 M, N, K;  // N: columns of the packed product (GemmOut::cols)
  MatView<T> A;
  const T* Bp;
  GemmOut<T> out;
  bool accumulate;
  T* scratch;      // n_threads * gemm_a_scratch<T>()
  i64 kc, mc;      // K block (k_block of the packing), rows per A block (the most, with row0)
  i64 m_blocks;    // row blocks; tasks are panel chunk major: task = chunk * m_blocks + block
  const i64* row0; // [m_blocks + 1] first row of each block (threads: gemm_packed), or null:
                   // block b starts at b * mc
  i64 n_chunks;    // panel ranges (chunks of at most nc columns, or more for threads)
  bool backwards;  // walk each task's panels last to first
  // One row block whose packed A (all K blocks) fits a thread's slot: a thread packs it once
  // and reuses it for every task it runs (a recurrence's step split by panels over threads
  // would pack the same A once per task). a_packed[tid]: this thread's slot holds it.
  bool keep_a;
  bool* a_packed;  // [n_threads] or null when !keep_a
};

// One task: one MC row block x one range of NR panels, over all of K. Consecutive tasks share
// their range of B (still in L2 / L3) and differ in the rows of A.
template <class T, int MR, int NV>
void gemm_task(void* vctx, i64 task, int tid) {
  const GemmJob<T>& g = *static_cast<const GemmJob<T>*>(vctx);
  constexpr int NR = NV * Vec<T>::kLanes;
  const i64 KC = g.kc, MC = g.mc;
  const i64 n_panels = ceil_div(g.N, NR);
  const i64 Npad = n_panels * NR;
  const i64 block = task % g.m_blocks;
  const i64 ic = g.row0 ? g.row0[block] : block * MC;
  const i64 chunk = task / g.m_blocks;
  const i64 j0 = n_panels * chunk / g.n_chunks, j1 = n_panels * (chunk + 1) / g.n_chunks;
  const i64 mc = g.row0 ? g.row0[block + 1] - ic : (g.M - ic < MC ? g.M - ic : MC);
  if (mc <= 0) return;  // an empty block of a balanced split (fewer micro-panels than blocks)
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
        i64 n_eff, ldc;
        T* c = g.out.at(ic, j, NR, n_eff, ldc);
        micro_kernel<T, 1, NV, 1>(kc, row + pc, g.Bp + pc * Npad + j * kc * NR, c, ldc, n_eff, acc);
      }
      continue;
    }
    // K block pc of the kept A starts at pc * round_up(mc, MR), like packed B's blocks.
    T* ablock = g.keep_a ? abuf + pc * round_up(mc, MR) : abuf;
    if (!g.keep_a || !g.a_packed[tid]) pack_a_block<T, MR>(ablock, g.A, ic, mc, pc, kc);
    for (i64 q = j0; q < j1; ++q) {
      const i64 j = g.backwards ? j0 + j1 - 1 - q : q;
      const T* bpanel = g.Bp + pc * Npad + j * kc * NR;
      i64 n_eff, ldc;
      T* c = g.out.at(ic, j, NR, n_eff, ldc);
      for (i64 ir = 0; ir < mc; ir += MR) {
        const int mr_eff = static_cast<int>(mc - ir < MR ? mc - ir : MR);
        micro_kernel_rows<T, MR, NV>(mr_eff, kc, ablock + (ir / MR) * kc * MR, bpanel, c + ir * ldc,
                                     ldc, n_eff, acc);
      }
    }
  }
  if (g.keep_a && !row) g.a_packed[tid] = true;
}

template <class T>
struct PackJob {
  T* dst;
  MatView<T> B;
  i64 K, N, per_task, kc;
  i64 Npad, shift;  // pack_b_panels
};

template <class T, int NV>
void pack_b_task(void* vctx, i64 task, int) {
  const PackJob<T>& p = *static_cast<const PackJob<T>*>(vctx);
  const i64 n_panels = ceil_div(p.N, NV * Vec<T>::kLanes);
  const i64 j0 = task * p.per_task;
  const i64 j1 = j0 + p.per_task < n_panels ? j0 + p.per_task : n_panels;
  pack_b_panels<T, NV>(p.dst, p.B, p.K, p.N, j0, j1, p.kc, p.Npad, p.shift);
}

// The instantiations for each tile, indexed like kTiles.
template <class T>
struct TileFns {
  TaskFn task, pack_b;
  int mr, nr;
};
template <class T, std::size_t... I>
const TileFns<T>* tile_fns_table(std::index_sequence<I...>) {
  static const TileFns<T> fns[] = {{&gemm_task<T, kTiles[I].mr, kTiles[I].nv>,
                                    &pack_b_task<T, kTiles[I].nv>, kTiles[I].mr,
                                    kTiles[I].nv * Vec<T>::kLanes}...};
  return fns;
}
template <class T>
RNNKIT_INLINE const TileFns<T>& tile_fns() {
  return tile_fns_table<T>(std::make_index_sequence<kNumTiles>{})[gemm_params<T>().tile];
}

// Below this many multiply-adds a second thread costs more than it saves.
constexpr i64 kMinWorkPerThread = 1 << 16;

inline int gemm_threads(i64 M, i64 N, i64 K, int n_threads) {
  const i64 work = M * N * (K > 0 ? K : 1);
  i64 useful = work / kMinWorkPerThread;
  if (useful < 1) useful = 1;
  return static_cast<int>(useful < n_threads ? useful : n_threads);
}

// The product of gemm_packed and gemm_pair, into out (N1 > 0, and N2 > 0 with C2).
template <class T>
void gemm_packed_out(i64 M, i64 K, MatView<T> A, const T* Bp, const GemmOut<T>& out,
                     bool accumulate, T* scratch, int n_threads, bool backwards) {
  if (M <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (i64 i = 0; i < M; ++i) {
        for (i64 j = 0; j < out.N1; ++j) out.C1[i * out.ldc1 + j] = T(0);
        for (i64 j = 0; j < out.N2; ++j) out.C2[i * out.ldc2 + j] = T(0);
      }
    return;
  }
  const GemmParams& prm = gemm_params<T>();
  const TileFns<T>& fns = tile_fns<T>();
  const i64 NR = fns.nr;
  const i64 N = out.cols(NR);
  const int nth = gemm_threads(M, N, K, n_threads);
  // Row blocks as even as possible (M = 256 with MC 252 runs 132 + 124, not 252 + 4: a 4-row
  // block streams all of B for almost no work). Row blocks are whole micro-panels, so no result
  // depends on them. One block (a recurrence's step) stays whole and is split by panels below,
  // so each thread keeps its own columns of the weights.
  i64 mc = round_up(ceil_div(M, ceil_div(M, prm.mc)), fns.mr);
  i64 m_blocks = ceil_div(M, mc);
  // With threads and more rows than one block: each owner (threads.cpp runs owner s's tasks
  // [n s / nth, n (s+1) / nth) first) gets a share of the micro-panels within one of the
  // others', cut into q >= 2 blocks within MC. Equal-sized blocks could not do that: M = 256
  // on two threads in 36-row blocks (a 4-row last one) gave one thread 144 rows and the other
  // 112, and the input projection of every chunk of steps waited for the 144.
  constexpr int kMaxRowBlocks = 64;  // owned tasks are claimed in a 64-bit mask
  i64 row0[kMaxRowBlocks + 1];
  bool balanced = false;
  if (nth > 1 && M > mc) {
    const i64 panels = ceil_div(M, fns.mr);
    i64 q = ceil_div(ceil_div(panels, nth) * fns.mr, prm.mc);
    if (q < 2) q = 2;
    if (nth * q <= kMaxRowBlocks) {
      balanced = true;
      m_blocks = nth * q;
      mc = 0;
      for (i64 s = 0; s < nth; ++s) {
        const i64 p0 = panels * s / nth, p1 = panels * (s + 1) / nth;
        for (i64 i = 0; i < q; ++i) {
          const i64 r = (p0 + (p1 - p0) * i / q) * fns.mr;
          row0[s * q + i] = r < M ? r : M;
        }
      }
      row0[m_blocks] = M;
      for (i64 b = 0; b < m_blocks; ++b)
        mc = row0[b + 1] - row0[b] > mc ? row0[b + 1] - row0[b] : mc;
    } else {  // more blocks than owned tasks can be: equal blocks, claimed dynamically
      const i64 fair = round_up(ceil_div(M, 4 * nth), fns.mr);
      if (fair < mc) mc = fair;
      m_blocks = ceil_div(M, mc);
    }
  }
  const i64 n_panels = ceil_div(N, NR);
  i64 n_chunks = ceil_div(N, prm.nc);  // NC: a task's slice of B stays in its share of L3
  if (m_blocks * n_chunks < nth) n_chunks = ceil_div(nth, m_blocks) * 2;
  if (n_chunks > n_panels) n_chunks = n_panels;
  // Keep one row block's packed A when the tasks of several panel ranges share it.
  constexpr int kMaxKeep = 64;
  bool a_packed[kMaxKeep] = {};
  const bool keep_a = m_blocks == 1 && n_chunks > 1 && nth <= kMaxKeep &&
                      round_up(M, fns.mr) * K <= gemm_a_scratch<T>();
  GemmJob<T> job{M,
                 N,
                 K,
                 A,
                 Bp,
                 out,
                 accumulate,
                 scratch,
                 k_block(K, prm.kc),
                 mc,
                 m_blocks,
                 balanced ? row0 : nullptr,
                 n_chunks,
                 backwards,
                 keep_a,
                 keep_a ? a_packed : nullptr};
  // Owned tasks: a recurrence calls the same split every step, so each thread keeps reading the
  // same panels of B, which stay in its core's L2 (LSTM H=256: 1 MB of weights, 1 MB L2 each).
  parallel_for_owned(m_blocks * n_chunks, nth, fns.task, &job);
}

// C[M,N] (+)= A B with B already packed by pack_b_panels. scratch: n_threads * gemm_a_scratch.
// backwards: the panels are visited last to first (same results). A recurrence reading the same
// B every step alternates the direction, so each step starts on the panels the previous one
// left in cache: a B the size of L2 (LSTM H=256: 1 MB) otherwise misses on every line.
template <class T>
void gemm_packed(i64 M, i64 N, i64 K, MatView<T> A, const T* Bp, T* C, i64 ldc, bool accumulate,
                 T* scratch, int n_threads, bool backwards = false) {
  if (N <= 0) return;
  const GemmOut<T> out{C, ldc, N, ceil_div(N, tile_fns<T>().nr)};
  gemm_packed_out<T>(M, K, A, Bp, out, accumulate, scratch, n_threads, backwards);
}

// Packs B[K, N] into dst as the panels from `shift` on of a packed matrix of Npad columns,
// split by panels over threads.
template <class T>
void pack_b_at(T* dst, MatView<T> B, i64 K, i64 N, i64 Npad, i64 shift, int n_threads) {
  const TileFns<T>& fns = tile_fns<T>();
  const i64 n_panels = ceil_div(N, fns.nr);
  if (K <= 0 || n_panels <= 0) return;
  int nth = gemm_threads(K, N, 1, n_threads);
  const i64 per_task = ceil_div(n_panels, nth * 4 > n_panels ? n_panels : nth * 4);
  PackJob<T> job{dst, B, K, N, per_task, gemm_params<T>().kc, Npad, shift};
  parallel_for(ceil_div(n_panels, per_task), nth, fns.pack_b, &job);
}

// Packs all of B[K, N] into dst (gemm_packed_b_size elements).
template <class T>
void pack_b(T* dst, MatView<T> B, i64 K, i64 N, int n_threads) {
  pack_b_at<T>(dst, B, K, N, round_up(N, tile_fns<T>().nr), 0, n_threads);
}

// Scratch for gemm(): packed B followed by the per-thread A slots.
template <class T>
inline i64 gemm_scratch(i64 K, i64 N, int n_threads) {
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

// Scratch for gemm_pair(): both packed Bs, then the per-thread A slots.
template <class T>
inline i64 gemm_pair_scratch(i64 K, i64 N1, i64 N2, int n_threads) {
  return round_up(gemm_packed_b_size<T>(K, N1) + gemm_packed_b_size<T>(K, N2), 64) +
         n_threads * gemm_a_scratch<T>();
}

// C1[M,N1] = A B1 and C2[M,N2] = A B2 as one product of A by B1 and B2 packed side by side, so
// that A is packed once. The weight gradients of a step's two inputs, dw_ih = dG^T x and
// dw_hh = dG^T h, share dG^T, which is [T*B, G*H]: 26 MB at LSTM T=100 B=64 H=256, read from
// memory by every packing of it. Each element is summed exactly as by gemm() alone.
template <class T>
void gemm_pair(i64 M, i64 K, MatView<T> A, MatView<T> B1, i64 N1, T* C1, i64 ldc1, MatView<T> B2,
               i64 N2, T* C2, i64 ldc2, T* scratch, int n_threads) {
  if (N1 <= 0 || N2 <= 0) {  // one product, or none
    if (N1 > 0) gemm<T>(M, N1, K, A, B1, C1, ldc1, false, scratch, n_threads);
    if (N2 > 0) gemm<T>(M, N2, K, A, B2, C2, ldc2, false, scratch, n_threads);
    return;
  }
  const i64 NR = tile_fns<T>().nr;
  const i64 split = ceil_div(N1, NR);
  const i64 Npad = (split + ceil_div(N2, NR)) * NR;  // K * Npad: both packed sizes
  T* Bp = scratch;
  if (K > 0) {
    pack_b_at<T>(Bp, B1, K, N1, Npad, 0, n_threads);
    pack_b_at<T>(Bp, B2, K, N2, Npad, split, n_threads);
  }
  const GemmOut<T> out{C1, ldc1, N1, split, C2, ldc2, N2};
  gemm_packed_out<T>(M, K, A, Bp, out, false, scratch + round_up(K * Npad, 64), n_threads, false);
}

// The tuning entry points for this target (gemm_params.h), read by the test hook and info.
template <class T>
GemmParams gemm_params_get() {
  return gemm_params<T>();
}
inline GemmParams gemm_tuning_get(int elem) {
  return elem == 8 ? gemm_params_get<double>() : gemm_params_get<float>();
}
inline void gemm_tuning_set(int elem, const GemmParams* p) {
  if (elem == 8)
    gemm_params_slot<double>() = p ? *p
                                   : choose_gemm_params(cpu_features(), kTarget, kTiles, kNumTiles,
                                                        Vec<double>::kLanes, 8);
  else
    gemm_params_slot<float>() = p ? *p
                                  : choose_gemm_params(cpu_features(), kTarget, kTiles, kNumTiles,
                                                       Vec<float>::kLanes, 4);
}
inline const GemmTuning kGemmTuning = {
    kTiles, kNumTiles, Vec<float>::kLanes, Vec<double>::kLanes, &gemm_tuning_get, &gemm_tuning_set};

}  // namespace RNNKIT_NS
}  // namespace rnnkit
