// Whether a projection of few rows runs faster when its weights were pulled into L2 while the
// GPU did something else (an idea for the prefix cache's 64-row forward, measured and dropped:
// docs/cuda.md, "Weights pulled into L2 ahead of a small batch's projections"). Per shape, M rows,
// bf16 y = x @ w^T through radix's cuda::Gemm, the GEMM alone between CUDA events after:
//   dram    L2 flushed (a 256 MiB memset), then a 40 µs wait kernel on one SM
//   bulk    flushed, bulk L2 prefetches of w (cp.async.bulk.prefetch.L2), then the wait
//   line    flushed, a grid issuing prefetch.global.L2 for every 128-byte line of w, the wait
//   touch   flushed, a grid loading every byte of w, the wait
//   warm    flushed, the GEMM once, then the wait (what L2 residency can give at most)
// Median of --reps trials each.
//
//   l2_prefetch_bench [--rows M] [--reps N]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm.h"
#include "l2_prefetch_kernels.cuh"

namespace {

struct Shape {
  const char* name;
  int64_t n, k;
};

}  // namespace

int main(int argc, char** argv) try {
  int64_t m = 64;
  int reps = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows")) m = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  }
  const Shape shapes[] = {{"8b.o", 4096, 4096},         {"8b.qkv", 6144, 4096},
                          {"8b.gate_up/4", 6144, 4096}, {"0.6b.o", 1024, 2048},
                          {"0.6b.gate_up", 6144, 1024}, {"0.6b.down", 1024, 3072}};
  int device = 0, sms = 0, clock_khz = 0;
  RADIX_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  RADIX_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device));
  const long long wait_cycles = static_cast<long long>(clock_khz) * 40 / 1000;  // ~40 µs
  cudaStream_t s;
  RADIX_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaEvent_t start, stop;
  RADIX_CUDA_CHECK(cudaEventCreate(&start));
  RADIX_CUDA_CHECK(cudaEventCreate(&stop));
  const size_t flush_bytes = size_t{256} << 20;
  void* flush = nullptr;
  unsigned* sink = nullptr;
  RADIX_CUDA_CHECK(cudaMalloc(&flush, flush_bytes));
  RADIX_CUDA_CHECK(cudaMalloc(&sink, sizeof(unsigned)));
  radix::cuda::Gemm gemm;
  std::printf("rows %lld, GEMM µs (median of %d), weight GB/s in brackets\n",
              static_cast<long long>(m), reps);
  std::printf("%-14s %9s %18s %18s %18s %18s %18s\n", "shape", "MiB", "dram", "bulk", "line",
              "touch", "warm");
  for (const Shape& sh : shapes) {
    radix::cuda::bf16 *x, *w, *y;
    RADIX_CUDA_CHECK(cudaMalloc(&x, m * sh.k * 2));
    RADIX_CUDA_CHECK(cudaMalloc(&w, sh.n * sh.k * 2));
    RADIX_CUDA_CHECK(cudaMalloc(&y, m * sh.n * 2));
    radix::bench::fill_bf16(x, m * sh.k, 1, s);
    radix::bench::fill_bf16(w, sh.n * sh.k, 2, s);
    const int64_t wbytes = sh.n * sh.k * 2;
    auto run_gemm = [&] { gemm.bf16_out(x, sh.k, w, sh.k, y, sh.n, m, sh.n, sh.k, false, s); };
    std::printf("%-14s %9.1f", sh.name, wbytes / 1048576.0);
    for (int variant = 0; variant < 5; ++variant) {
      std::vector<float> ms(reps);
      for (int r = 0; r < reps + 2; ++r) {
        RADIX_CUDA_CHECK(cudaMemsetAsync(flush, r & 0xff, flush_bytes, s));
        if (variant == 1) radix::bench::bulk_prefetch(w, wbytes, s);
        if (variant == 2) radix::bench::line_prefetch(w, wbytes, sms * 4, s);
        if (variant == 3) radix::bench::touch(w, wbytes, sink, sms * 4, s);
        if (variant == 4) run_gemm();
        radix::bench::wait_cycles(wait_cycles, s);
        RADIX_CUDA_CHECK(cudaEventRecord(start, s));
        run_gemm();
        RADIX_CUDA_CHECK(cudaEventRecord(stop, s));
        RADIX_CUDA_CHECK(cudaEventSynchronize(stop));
        if (r >= 2) RADIX_CUDA_CHECK(cudaEventElapsedTime(&ms[r - 2], start, stop));
      }
      std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
      const double us = ms[reps / 2] * 1e3;
      std::printf("   %7.2f [%6.0f]", us, wbytes / us * 1e-3);
    }
    std::printf("\n");
    RADIX_CUDA_CHECK(cudaFree(x));
    RADIX_CUDA_CHECK(cudaFree(w));
    RADIX_CUDA_CHECK(cudaFree(y));
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "l2_prefetch_bench: %s\n", e.what());
  return 1;
}
