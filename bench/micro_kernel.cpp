// The GEMM micro-kernel's own ceiling on this core: a broadcast-and-FMA kernel shaped like
// gemm.h's (MR rows of packed A, NV zmm vectors of a packed B panel, MR x NV accumulators)
// run over packed operands that sit in L1, in L2, or stream like a whole product, with no
// packing, threads or edges. Set beside the FMA loop of `rnnkit bench`, it says how much of a
// sequence's gap to the FMA peak is the micro-kernel and how much the rest (packing, the
// pointwise passes). float32, one thread, wall clock, best of 20.
// Build: g++ -O3 -march=native bench/micro_kernel.cpp -o /tmp/mk && /tmp/mk
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

template <int MR, int NV>
__attribute__((noinline)) void kernel(long kc, const float* __restrict a, const float* __restrict b,
                                      float* __restrict c, long ldc) {
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (long k = 0; k < kc; ++k) {
    __m512 bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + k * NV * 16 + v * 16);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[k * MR + r]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      float* dst = c + r * ldc + v * 16;
      _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), acc[r][v]));
    }
}

// n_panels B panels (kc x NV*16) times n_micro A micro-panels (kc x MR), panel-major as in
// gemm_task: each B panel meets every micro-panel before the next panel.
template <int MR, int NV>
void run(const char* what, long kc, long n_panels, long n_micro) {
  const long NR = NV * 16, N = n_panels * NR, M = n_micro * MR;
  float* a = static_cast<float*>(aligned_alloc(64, sizeof(float) * kc * MR * n_micro));
  float* b = static_cast<float*>(aligned_alloc(64, sizeof(float) * kc * NR * n_panels));
  float* c = static_cast<float*>(aligned_alloc(64, sizeof(float) * M * N));
  for (long i = 0; i < kc * MR * n_micro; ++i) a[i] = 1e-3f;
  for (long i = 0; i < kc * NR * n_panels; ++i) b[i] = 1e-3f;
  memset(c, 0, sizeof(float) * M * N);
  double best = 1e9;
  for (int rep = 0; rep < 20; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < 20; ++it)
      for (long j = 0; j < n_panels; ++j)
        for (long i = 0; i < n_micro; ++i)
          kernel<MR, NV>(kc, a + i * kc * MR, b + j * kc * NR, c + i * MR * N + j * NR, N);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                     20;
    if (s < best) best = s;
  }
  std::printf("%-5s %-44s M %4ld N %5ld K %4ld: %6.1f GFLOP/s\n",
              MR == 12  ? "12x2"
              : MR == 8 ? "8x3"
                        : "6x4",
              what, M, N, kc, 2.0 * M * N * kc / best / 1e9);
  free(a);
  free(b);
  free(c);
}

int main() {
  run<12, 2>("A and B in L1", 256, 1, 1);
  run<8, 3>("A and B in L1", 256, 1, 1);
  run<6, 4>("A and B in L1", 256, 1, 1);
  run<12, 2>("A block in L2, one B panel", 256, 1, 21);
  run<12, 2>("a recurrent step's shape (B=64 H=256 LSTM)", 256, 32, 6);
  run<12, 2>("an A block by 1 MB of B (input projection)", 256, 32, 21);
  run<8, 3>("an A block by 1 MB of B (input projection)", 256, 22, 32);
}
