// One core's read bandwidth over buffers of the sizes given in MiB (repeated passes of 512-bit
// loads, thread CPU time, best of 7): the limit of a per-step GEMV whose weights live in L2 or
// L3 (GRU B=1 H=512 reads 3 MB a step). Build: g++ -O2 -mavx512f bench/read_bandwidth.cpp
// -o /tmp/bw && /tmp/bw 0.75 3 64
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <time.h>
static double cpu_s() { timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  for (int a = 1; a < argc; ++a) {
    size_t bytes = size_t(atof(argv[a]) * 1024 * 1024);
    size_t n = bytes / 4;
    float* buf = (float*)aligned_alloc(64, n * 4);
    for (size_t i = 0; i < n; ++i) buf[i] = 1.0f;
    double best = 0;
    for (int rep = 0; rep < 7; ++rep) {
      int passes = int(4e9 / bytes) / 10 + 1;
      double t0 = cpu_s();
      __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      for (int p = 0; p < passes; ++p)
        for (size_t i = 0; i < n; i += 64) {
          s0 = _mm512_add_ps(s0, _mm512_load_ps(buf + i));
          s1 = _mm512_add_ps(s1, _mm512_load_ps(buf + i + 16));
          s2 = _mm512_add_ps(s2, _mm512_load_ps(buf + i + 32));
          s3 = _mm512_add_ps(s3, _mm512_load_ps(buf + i + 48));
        }
      double dt = cpu_s() - t0;
      volatile float sink = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
      (void)sink;
      double gbs = double(bytes) * passes / dt / 1e9;
      if (gbs > best) best = gbs;
    }
    printf("%8.2f MiB: %6.1f GB/s (best of 7, thread CPU time)\n", bytes / 1048576.0, best);
    free(buf);
  }
}
