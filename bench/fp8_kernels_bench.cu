// Micro-benchmark of the fp8 forward's two memory-bound kernels at the syn B=32 P=2048 S=256
// tree shape (10,240 rows): the o projection's input quantisation (quantize_e4m3_rows, bf16
// [rows, Hq*d] -> e4m3 + a scale a row; 2,048 columns on Qwen3-0.6B, 4,096 on 8B) and the
// SwiGLU + e4m3 quantisation before the down projection (gated_activation_e4m3, bf16
// [rows, 2*inter] -> e4m3 [rows, inter] + scales; inter 3,072 and 12,288).
//
//   fp8_kernels_bench [--rows N] [--rounds N] [--only SUBSTRING]
//
// For each shape it times the fast path (what radix runs; for the gated activation also with two
// other shared-memory budgets for its prefetch stages), the fallback kernel (the kernel radix ran
// before, still used for unaligned shapes) and a bf16 yardstick of the same shape: a plain
// device-to-device copy of the input for the quantisation, the bf16 gated activation for the
// fp8 one. Call i uses buffer set i % sets, with enough sets that they do not fit in L2 (as a
// forward's layers do not), so the numbers include reading from and writing to memory. It prints
// microseconds a call (mean over --rounds rounds of all sets, CUDA events, after one warm-up
// round) and the effective bandwidth (bytes read + written by the kernel / time), then checks
// that the fast path's bytes and scales equal the fallback's bit for bit (exit status 1 if not).
// --only keeps the lines whose label contains SUBSTRING (one kernel under a profiler).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels/fp8.cuh"
#include "backend/cuda/kernels/gated_activation.cuh"
#include "bench_fill.cuh"

namespace {

using radix::cuda::bf16;

// Roughly uniform in [-scale, scale], varying per row so that the rows' scales differ.
__global__ void fill(bf16* p, int64_t n, int64_t cols, uint32_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float row_scale = 1.0f + static_cast<float>((i / cols) % 7);
    p[i] = __float2bfloat16(radix::bench::hashed_uniform(i, seed) * 2.0f * scale * row_scale);
  }
}

template <typename T>
T* device_alloc(size_t n) {
  T* p = nullptr;
  RADIX_CUDA_CHECK(cudaMalloc(&p, sizeof(T) * std::max<size_t>(1, n)));
  return p;
}

// Microseconds a call of launch(set) over rounds x sets calls, after one warm-up round.
double time_calls(int sets, int rounds, const std::function<cudaError_t(int)>& launch) {
  for (int s = 0; s < sets; ++s) RADIX_CUDA_CHECK(launch(s));
  cudaEvent_t start, stop;
  RADIX_CUDA_CHECK(cudaEventCreate(&start));
  RADIX_CUDA_CHECK(cudaEventCreate(&stop));
  RADIX_CUDA_CHECK(cudaEventRecord(start));
  for (int r = 0; r < rounds; ++r) {
    for (int s = 0; s < sets; ++s) RADIX_CUDA_CHECK(launch(s));
  }
  RADIX_CUDA_CHECK(cudaEventRecord(stop));
  RADIX_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  RADIX_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  RADIX_CUDA_CHECK(cudaEventDestroy(start));
  RADIX_CUDA_CHECK(cudaEventDestroy(stop));
  return 1000.0 * ms / (static_cast<double>(rounds) * sets);
}

struct Options {
  int64_t rows = 10240;
  int rounds = 20;
  std::string only;
};

void report(const Options& opt, const std::string& label, int sets, int rounds, double bytes,
            const std::function<cudaError_t(int)>& launch) {
  if (!opt.only.empty() && label.find(opt.only) == std::string::npos) return;
  const double us = time_calls(sets, rounds, launch);
  std::printf("%-58s %9.1f us/call %8.0f GB/s\n", label.c_str(), us, bytes / (us * 1e3));
  std::fflush(stdout);
}

// Enough sets of `bytes_per_set` (what a call reads and writes) to exceed three L2s (at least 2).
int sets_for(size_t bytes_per_set) {
  int device = 0, l2 = 0;
  RADIX_CUDA_CHECK(cudaGetDevice(&device));
  RADIX_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  const size_t want = 3 * static_cast<size_t>(l2);
  return static_cast<int>(std::max<size_t>(2, (want + bytes_per_set - 1) / bytes_per_set));
}

// Bytes and scales of two runs equal bit for bit; prints how many differ.
bool identical(const uint8_t* a, const uint8_t* b, size_t n, const float* sa, const float* sb,
               size_t rows, const std::string& what) {
  std::vector<uint8_t> ha(n), hb(n);
  std::vector<float> fa(rows), fb(rows);
  RADIX_CUDA_CHECK(cudaMemcpy(ha.data(), a, n, cudaMemcpyDeviceToHost));
  RADIX_CUDA_CHECK(cudaMemcpy(hb.data(), b, n, cudaMemcpyDeviceToHost));
  RADIX_CUDA_CHECK(cudaMemcpy(fa.data(), sa, rows * 4, cudaMemcpyDeviceToHost));
  RADIX_CUDA_CHECK(cudaMemcpy(fb.data(), sb, rows * 4, cudaMemcpyDeviceToHost));
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad += ha[i] != hb[i];
  size_t bad_scales = 0;  // compared as bits: a NaN scale equals itself
  for (size_t r = 0; r < rows; ++r) bad_scales += std::memcmp(&fa[r], &fb[r], 4) != 0;
  std::printf("%-58s %s (%zu bytes, %zu scales differ)\n", (what + " fast == fallback").c_str(),
              bad == 0 && bad_scales == 0 ? "bit-identical" : "DIFFERENT", bad, bad_scales);
  return bad == 0 && bad_scales == 0;
}

bool bench_quantize(const Options& opt, int cols) {
  const int64_t rows = opt.rows, n = rows * cols;
  const int sets = sets_for(n * 3 + rows * 4);
  std::vector<bf16*> in(sets), copy(sets);
  std::vector<uint8_t*> out(sets);
  std::vector<float*> scale(sets);
  for (int s = 0; s < sets; ++s) {
    in[s] = device_alloc<bf16>(n);
    copy[s] = device_alloc<bf16>(n);
    out[s] = device_alloc<uint8_t>(n);
    scale[s] = device_alloc<float>(rows);
    fill<<<4096, 256>>>(in[s], n, cols, 17u + s, 3.0f);
  }
  RADIX_CUDA_CHECK(cudaGetLastError());
  const std::string shape = "rows " + std::to_string(rows) + " cols " + std::to_string(cols);
  const double bytes = n * 3.0 + rows * 4.0;  // bf16 in, e4m3 out, a scale a row
  report(opt, "quantize_e4m3_rows " + shape + " fast", sets, opt.rounds, bytes, [&](int s) {
    return radix::cuda::quantize_e4m3_rows(in[s], cols, rows, cols, out[s], cols, scale[s],
                                           nullptr);
  });
  report(opt, "quantize_e4m3_rows " + shape + " fallback", sets, opt.rounds, bytes, [&](int s) {
    return radix::cuda::quantize_e4m3_rows_fallback(in[s], cols, rows, cols, out[s], cols, scale[s],
                                                    nullptr);
  });
  report(opt, "bf16 copy (yardstick) " + shape, sets, opt.rounds, n * 4.0, [&](int s) {
    return cudaMemcpyAsync(copy[s], in[s], n * sizeof(bf16), cudaMemcpyDeviceToDevice, nullptr);
  });
  // Fast path into set 0's outputs, fallback into set 1's, from the same input.
  RADIX_CUDA_CHECK(
      radix::cuda::quantize_e4m3_rows(in[0], cols, rows, cols, out[0], cols, scale[0], nullptr));
  RADIX_CUDA_CHECK(radix::cuda::quantize_e4m3_rows_fallback(in[0], cols, rows, cols, out[1], cols,
                                                            scale[1], nullptr));
  RADIX_CUDA_CHECK(cudaDeviceSynchronize());
  const bool same =
      identical(out[0], out[1], n, scale[0], scale[1], rows, "quantize_e4m3_rows " + shape);
  for (int s = 0; s < sets; ++s) {
    RADIX_CUDA_CHECK(cudaFree(in[s]));
    RADIX_CUDA_CHECK(cudaFree(copy[s]));
    RADIX_CUDA_CHECK(cudaFree(out[s]));
    RADIX_CUDA_CHECK(cudaFree(scale[s]));
  }
  return same;
}

bool bench_gated(const Options& opt, int inter) {
  using radix::cuda::GateActivation;
  const int64_t rows = opt.rows, n = rows * inter;
  const int sets = sets_for(n * 5 + rows * 4);
  std::vector<bf16*> in(sets), out16(sets);
  std::vector<uint8_t*> out(sets);
  std::vector<float*> scale(sets);
  for (int s = 0; s < sets; ++s) {
    in[s] = device_alloc<bf16>(2 * n);
    out16[s] = device_alloc<bf16>(n);
    out[s] = device_alloc<uint8_t>(n);
    scale[s] = device_alloc<float>(rows);
    fill<<<4096, 256>>>(in[s], 2 * n, 2 * inter, 29u + s, 2.0f);
  }
  RADIX_CUDA_CHECK(cudaGetLastError());
  const std::string shape = "rows " + std::to_string(rows) + " inter " + std::to_string(inter);
  const double bytes = n * 5.0 + rows * 4.0;  // bf16 gate and up in, e4m3 out, scales
  const int64_t ld = 2 * inter;
  report(opt, "gated_activation_e4m3 silu " + shape + " fast", sets, opt.rounds, bytes, [&](int s) {
    return radix::cuda::gated_activation_e4m3(GateActivation::kSilu, in[s], ld, out[s], inter,
                                              scale[s], rows, inter, nullptr);
  });
  report(opt, "gated_activation_e4m3 silu " + shape + " fallback", sets, opt.rounds, bytes,
         [&](int s) {
           return radix::cuda::gated_activation_e4m3_fallback(
               GateActivation::kSilu, in[s], ld, out[s], inter, scale[s], rows, inter, nullptr);
         });
  // The fast path with other shared-memory budgets for its stages (the default is
  // kE4m3StageBudget): fewer rows in flight and more blocks an SM, or one block an SM with more.
  for (int kb : {48, 200}) {
    report(opt,
           "gated_activation_e4m3 silu " + shape + " fast, stages " + std::to_string(kb) + " KB",
           sets, opt.rounds, bytes, [&](int s) {
             return radix::cuda::gated_activation_e4m3_staged(GateActivation::kSilu, in[s], ld,
                                                              out[s], inter, scale[s], rows, inter,
                                                              kb * 1024, nullptr);
           });
  }
  report(opt, "gated_activation bf16 silu (yardstick) " + shape, sets, opt.rounds, n * 6.0,
         [&](int s) {
           return radix::cuda::gated_activation(GateActivation::kSilu, in[s], ld, out16[s], inter,
                                                rows, inter, nullptr);
         });
  bool same = true;
  for (GateActivation act : {GateActivation::kSilu, GateActivation::kGeluTanh}) {
    RADIX_CUDA_CHECK(radix::cuda::gated_activation_e4m3(act, in[0], ld, out[0], inter, scale[0],
                                                        rows, inter, nullptr));
    RADIX_CUDA_CHECK(radix::cuda::gated_activation_e4m3_fallback(act, in[0], ld, out[1], inter,
                                                                 scale[1], rows, inter, nullptr));
    RADIX_CUDA_CHECK(cudaDeviceSynchronize());
    same &= identical(out[0], out[1], n, scale[0], scale[1], rows,
                      std::string("gated_activation_e4m3 ") +
                          (act == GateActivation::kSilu ? "silu " : "gelu_tanh ") + shape);
  }
  for (int s = 0; s < sets; ++s) {
    RADIX_CUDA_CHECK(cudaFree(in[s]));
    RADIX_CUDA_CHECK(cudaFree(out16[s]));
    RADIX_CUDA_CHECK(cudaFree(out[s]));
    RADIX_CUDA_CHECK(cudaFree(scale[s]));
  }
  return same;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows")) opt.rows = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) opt.rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--only")) opt.only = argv[i + 1];
  }
  if (opt.rows < 1 || opt.rounds < 1) {
    std::fprintf(stderr, "usage: fp8_kernels_bench [--rows N] [--rounds N] [--only SUBSTRING]\n");
    return 2;
  }
  cudaDeviceProp prop{};
  RADIX_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs, L2 %d MB; %d rounds\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20, opt.rounds);
  bool same = true;
  for (int cols : {2048, 4096}) same &= bench_quantize(opt, cols);
  for (int inter : {3072, 12288}) same &= bench_gated(opt, inter);
  return same ? 0 : 1;
}
