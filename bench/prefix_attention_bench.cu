// Micro-benchmark of the prefix cache's attention (src/backend/cuda/kernels/prefix_attention.cu) on
// the stream workload's shape: 64 new rows (a chain, tree mask) whose anchor is the last of 2,048
// cached keys (a chain), at the head shapes of Qwen3-0.6B (Hq 16, Hkv 8, 28 layers) and Qwen3-8B
// (Hq 32, Hkv 8, 36 layers), head_dim 128.
//
//   prefix_attention_bench [--rows N] [--prefix N] [--rounds N] [--model NAME] [--splits LIST]
//                          [--layout dense|strided] [--kernel mma|wmma]
//
// --model/--layout/--kernel keep one of each (default: all); --splits a comma list instead of
// "auto,1,2,4,6,8,12,16" (0 is auto). With them one configuration can be run under a profiler.
//
// The cached keys are read in place from a storage laid out as the cache's, and call i reads layer
// i % layers, as a forward does: the layers' keys together do not fit in L2, so the numbers include
// reading them from memory. Two layouts: "dense" (layer-major, as src/cache/device_prefix_cache.cc
// stores them: a layer's keys are consecutive rows of 2 * Hkv * d) and "strided" (slot-major, a
// row holding every layer's K/V, as it stored them before). For each layout, kernel (mma: the
// fast path, wmma: the older one) and split count (the chosen one, "auto", first) it prints the
// microseconds a call (a layer) takes, the mean over --rounds rounds of all layers timed with
// CUDA events after one warm-up round, and the largest difference of the outputs from the
// layout's auto-split mma run's.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels/prefix_attention.cuh"
#include "bench_fill.cuh"

namespace {

using radix::cuda::bf16;

__global__ void fill(bf16* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    p[i] = __float2bfloat16(radix::bench::hashed_uniform(i, seed) * 4.0f);
  }
}

struct Model {
  const char* name;
  int hq, hkv, d, layers;
};

template <typename T>
T* device_copy(const std::vector<T>& host) {
  T* p = nullptr;
  RADIX_CUDA_CHECK(cudaMalloc(&p, sizeof(T) * std::max<size_t>(1, host.size())));
  RADIX_CUDA_CHECK(cudaMemcpy(p, host.data(), sizeof(T) * host.size(), cudaMemcpyHostToDevice));
  return p;
}

std::vector<float> download(const bf16* p, size_t n) {
  std::vector<bf16> h(n);
  RADIX_CUDA_CHECK(cudaMemcpy(h.data(), p, sizeof(bf16) * n, cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = __bfloat162float(h[i]);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int rows = 64, prefix = 2048, rounds = 20;
  std::string only_model, only_layout, only_kernel;
  std::vector<int> split_list = {0, 1, 2, 4, 6, 8, 12, 16};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows")) rows = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--prefix")) prefix = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--model")) only_model = argv[i + 1];
    if (!std::strcmp(argv[i], "--layout")) only_layout = argv[i + 1];
    if (!std::strcmp(argv[i], "--kernel")) only_kernel = argv[i + 1];
    if (!std::strcmp(argv[i], "--splits")) {
      split_list.clear();
      for (const char* p = argv[i + 1]; *p != '\0';) {
        split_list.push_back(std::atoi(p));
        while (*p != '\0' && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    }
  }
  int sm_count = 0;
  RADIX_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));
  const Model models[] = {{"qwen3-0.6b", 16, 8, 128, 28}, {"qwen3-8b", 32, 8, 128, 36}};
  for (const Model& m : models) {
    if (!only_model.empty() && only_model != m.name) continue;
    for (const bool dense : {true, false}) {
      if (!only_layout.empty() && only_layout != (dense ? "dense" : "strided")) continue;
      const int64_t kv_cols = 2LL * m.hkv * m.d;
      const int64_t qkv_cols = static_cast<int64_t>(m.hq + 2 * m.hkv) * m.d;
      const int64_t storage_stride = dense ? kv_cols : kv_cols * m.layers;
      // Where layer l's first cached key starts.
      const int64_t layer_offset = dense ? int64_t{prefix} * kv_cols : kv_cols;
      bf16 *storage = nullptr, *qkv = nullptr, *out = nullptr;
      const int64_t storage_elems = int64_t{prefix} * kv_cols * m.layers;
      RADIX_CUDA_CHECK(cudaMalloc(&storage, sizeof(bf16) * storage_elems));
      RADIX_CUDA_CHECK(cudaMalloc(&qkv, sizeof(bf16) * rows * qkv_cols * m.layers));
      RADIX_CUDA_CHECK(cudaMalloc(&out, sizeof(bf16) * rows * m.hq * m.d));
      fill<<<1024, 256>>>(storage, storage_elems, 1);
      fill<<<1024, 256>>>(qkv, int64_t{rows} * qkv_cols * m.layers, 2);
      std::vector<int32_t> prefix_end(prefix, prefix), visible_end(rows, rows),
          anchor(rows, prefix - 1);
      int32_t* d_prefix_end = device_copy(prefix_end);
      int32_t* d_visible_end = device_copy(visible_end);
      int32_t* d_anchor = device_copy(anchor);
      const size_t ws_bytes = radix::cuda::prefix_attention_workspace_bytes(rows, m.hq, m.d, 16);
      void* ws = nullptr;
      RADIX_CUDA_CHECK(cudaMalloc(&ws, std::max<size_t>(ws_bytes, 1)));
      auto args = [&](int layer, bool wmma) {
        radix::cuda::PrefixAttentionArgs a;
        a.q = qkv + layer * rows * qkv_cols;
        a.k = a.q + m.hq * m.d;
        a.v = a.k + m.hkv * m.d;
        a.qkv_stride = qkv_cols;
        a.out = out;
        a.out_stride = int64_t{m.hq} * m.d;
        a.visible_end = d_visible_end;
        a.rows = rows;
        a.prefix_k = storage + layer * layer_offset;
        a.prefix_v = a.prefix_k + m.hkv * m.d;
        a.prefix_stride = storage_stride;
        a.prefix_end = d_prefix_end;
        a.anchor = d_anchor;
        a.prefix_rows = prefix;
        a.num_q_heads = m.hq;
        a.num_kv_heads = m.hkv;
        a.head_dim = m.d;
        a.scale = 1.0f / std::sqrt(static_cast<float>(m.d));
        a.force_wmma = wmma;
        return a;
      };
      const int auto_splits =
          radix::cuda::prefix_attention_splits(rows, prefix, m.hq, m.hkv, sm_count);
      std::vector<float> reference;
      cudaEvent_t start, stop;
      RADIX_CUDA_CHECK(cudaEventCreate(&start));
      RADIX_CUDA_CHECK(cudaEventCreate(&stop));
      for (const bool wmma : {false, true}) {
        if (!only_kernel.empty() && only_kernel != (wmma ? "wmma" : "mma")) continue;
        for (int splits : split_list) {
          if (splits == 0) splits = auto_splits;
          auto round = [&] {
            for (int l = 0; l < m.layers; ++l) {
              RADIX_CUDA_CHECK(
                  radix::cuda::prefix_attention(args(l, wmma), splits, ws, ws_bytes, nullptr));
            }
          };
          round();
          RADIX_CUDA_CHECK(cudaEventRecord(start));
          for (int r = 0; r < rounds; ++r) round();
          RADIX_CUDA_CHECK(cudaEventRecord(stop));
          RADIX_CUDA_CHECK(cudaEventSynchronize(stop));
          float ms = 0;
          RADIX_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
          // The output of the last layer's call, against the first run's (auto-split mma).
          const std::vector<float> got = download(out, static_cast<size_t>(rows) * m.hq * m.d);
          if (reference.empty()) reference = got;
          double diff = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            diff = std::max(diff, static_cast<double>(std::fabs(got[i] - reference[i])));
          }
          std::printf(
              "%-11s %-7s rows %d prefix %d kernel %-4s splits %2d%s  %7.2f us/layer  max|diff| "
              "%.4f\n",
              m.name, dense ? "dense" : "strided", rows, prefix, wmma ? "wmma" : "mma", splits,
              splits == auto_splits ? " (auto)" : "       ", 1000.0 * ms / (rounds * m.layers),
              diff);
        }
      }
      RADIX_CUDA_CHECK(cudaEventDestroy(start));
      RADIX_CUDA_CHECK(cudaEventDestroy(stop));
      for (void* p : {static_cast<void*>(storage), static_cast<void*>(qkv), static_cast<void*>(out),
                      static_cast<void*>(d_prefix_end), static_cast<void*>(d_visible_end),
                      static_cast<void*>(d_anchor), ws}) {
        RADIX_CUDA_CHECK(cudaFree(p));
      }
    }
  }
  return 0;
}
