// What one op costs the host to enqueue on the CUDA backend, op by op, at a forward's shapes.
//
//   host_enqueue_bench [--model qwen3-0.6b|qwen3-8b] [--rows M] [--calls N] [--rounds R]
//
// A served batch's forward is hundreds of ops queued by one host thread; where the GPU work of a
// batch is short (a 64-row request against the prefix cache, a few reranking requests) the
// thread's queueing paces the GPU (bench/RESULTS.md, stop 19 calls P and U). For each op this
// queues N calls back to back on the same operands without synchronising (N well below the
// driver's queue depth, so the host never waits for the GPU), times the loop on the host clock,
// then synchronises; the median over R rounds divided by N is one JSON row. "gemm_raw" is
// radix::cuda::Gemm alone (cuBLASLt plus the plan lookup), "gemm_raw_no_workspace" the same with
// no cuBLASLt workspace, "cublas_gemmex" the same product through cuBLAS's cublasGemmEx (another
// front end to the same kernels), "linear" the backend op around Gemm (argument checks, device
// guard); "fill" is the smallest radix kernel through the backend; "upload_i32" copies `rows`
// int32 from ordinary host memory through the backend (as a forward uploads its plan arrays) and
// "upload_i32_pinned" the same bytes from page-locked memory with a bare cudaMemcpyAsync.
// RADIX_CUDA_PDL=0 in the environment compares the launches without PDL.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/gemm.h"

namespace {

struct Shape {
  int hidden, q_heads, kv_heads, head_dim, inter;
};

Shape shape_of(const std::string& model) {
  if (model == "qwen3-0.6b") return {1024, 16, 8, 128, 3072};
  if (model == "qwen3-8b") return {4096, 32, 8, 128, 12288};
  std::fprintf(stderr, "host_enqueue_bench: unknown model %s\n", model.c_str());
  std::exit(2);
}

// The whole device, not only the backend's stream (gemm_raw queues on the default stream), and
// the backend's own synchronisation too: it empties the page-locked staging of its uploads, as
// the download at the end of every forward does.
void sync(radix::Backend& b) {
  b.synchronize();
  if (cudaDeviceSynchronize() != cudaSuccess) {
    std::fprintf(stderr, "host_enqueue_bench: %s\n", cudaGetErrorString(cudaGetLastError()));
    std::exit(1);
  }
}

double median_us_per_call(radix::Backend& b, int calls, int rounds,
                          const std::function<void()>& op) {
  op();  // first call: plans, kernel attributes
  sync(b);
  std::vector<double> us;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) op();
    const auto t1 = std::chrono::steady_clock::now();
    sync(b);
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / calls);
  }
  std::nth_element(us.begin(), us.begin() + rounds / 2, us.end());
  return us[rounds / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "qwen3-0.6b";
  int rows = 64, calls = 200, rounds = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") {
      model = v;
    } else if (k == "--rows") {
      rows = std::atoi(v.c_str());
    } else if (k == "--calls") {
      calls = std::atoi(v.c_str());
    } else if (k == "--rounds") {
      rounds = std::atoi(v.c_str());
    } else {
      std::fprintf(stderr, "host_enqueue_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  const Shape s = shape_of(model);
  radix::BackendOptions options;
  options.device = "cuda";
  auto backend = radix::create_backend(options);
  radix::Backend& b = *backend;
  using radix::DType;
  const int qkv_cols = (s.q_heads + 2 * s.kv_heads) * s.head_dim;
  auto x = b.alloc(DType::kBF16, rows, s.hidden);
  auto residual = b.alloc(DType::kF32, rows, s.hidden);
  auto norm_w = b.alloc(DType::kBF16, 1, s.hidden);
  auto w_qkv = b.alloc(DType::kBF16, qkv_cols, s.hidden);
  auto w_gate_up = b.alloc(DType::kBF16, 2 * s.inter, s.hidden);
  auto qkv = b.alloc(DType::kBF16, rows, qkv_cols);
  auto gate_up = b.alloc(DType::kBF16, rows, 2 * s.inter);
  auto act = b.alloc(DType::kBF16, rows, s.inter);
  auto qk_w = b.alloc(DType::kBF16, 1, s.head_dim);
  auto positions = b.alloc(DType::kI32, rows, 1);
  auto index = b.alloc(DType::kI32, rows, 1);
  auto one = b.alloc(DType::kF32, 1, 1);
  for (const radix::Tensor& t : {x.tensor(), residual.tensor(), norm_w.tensor(), w_qkv.tensor(),
                                 w_gate_up.tensor(), qk_w.tensor(), qkv.tensor()}) {
    b.fill_random_normal(t, 1, 0.02f);
  }
  std::vector<int32_t> ids(rows);
  for (int i = 0; i < rows; ++i) ids[i] = i;
  b.upload(positions, ids.data(), DType::kI32);
  b.upload(index, ids.data(), DType::kI32);
  radix::AttentionShape shape;
  shape.num_q_heads = s.q_heads;
  shape.num_kv_heads = s.kv_heads;
  shape.head_dim = s.head_dim;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));

  radix::cuda::Gemm gemm, gemm_no_workspace(false, 0);
  cublasHandle_t cublas = nullptr;
  if (cublasCreate(&cublas) != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "host_enqueue_bench: cublasCreate failed\n");
    return 1;
  }
  const float alpha = 1.0f, beta = 0.0f;
  const auto* xp = static_cast<const __nv_bfloat16*>(x.tensor().data);
  const auto* wp = static_cast<const __nv_bfloat16*>(w_gate_up.tensor().data);
  auto* yp = static_cast<__nv_bfloat16*>(gate_up.tensor().data);

  int32_t* pinned = nullptr;
  if (cudaMallocHost(&pinned, sizeof(int32_t) * rows) != cudaSuccess) {
    std::fprintf(stderr, "host_enqueue_bench: cudaMallocHost failed\n");
    return 1;
  }
  std::copy(ids.begin(), ids.end(), pinned);
  const char* pdl = std::getenv("RADIX_CUDA_PDL");
  const std::vector<std::pair<const char*, std::function<void()>>> ops = {
      {"fill", [&] { b.fill_constant(one, 1.0f); }},
      {"gemm_raw",
       [&] {
         gemm.bf16_out(xp, s.hidden, wp, s.hidden, yp, 2 * s.inter, rows, 2 * s.inter, s.hidden,
                       false, nullptr);
       }},
      {"gemm_raw_no_workspace",
       [&] {
         gemm_no_workspace.bf16_out(xp, s.hidden, wp, s.hidden, yp, 2 * s.inter, rows, 2 * s.inter,
                                    s.hidden, false, nullptr);
       }},
      {"cublas_gemmex",
       [&] {
         // Row-major y[M,N] = x[M,K] w[N,K]^T as column-major y^T = w x^T, as Gemm does.
         cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, 2 * s.inter, rows, s.hidden, &alpha, wp,
                      CUDA_R_16BF, s.hidden, xp, CUDA_R_16BF, s.hidden, &beta, yp, CUDA_R_16BF,
                      2 * s.inter, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
       }},
      {"linear", [&] { b.linear(x, w_gate_up, gate_up); }},
      {"upload_i32", [&] { b.upload(index, ids.data(), DType::kI32); }},
      {"upload_i32_pinned",
       [&] {
         cudaMemcpyAsync(index.tensor().data, pinned, sizeof(int32_t) * rows,
                         cudaMemcpyHostToDevice, nullptr);
       }},
      {"add_rms_norm", [&] { b.add_rms_norm(residual, x, norm_w, 1e-6f, x); }},
      {"qk_norm_rope", [&] { b.qk_norm_rope(qkv, shape, qk_w, qk_w, positions, 1e-6f, 1e6f); }},
      {"gated_activation", [&] { b.gated_activation(gate_up, radix::Activation::kSiLU, act); }},
      {"gather_rows", [&] { b.gather_rows(x, index, act.tensor().col_slice(0, s.hidden)); }},
  };
  for (const auto& [name, op] : ops) {
    const double us = median_us_per_call(b, calls, rounds, op);
    std::printf(
        "{\"model\":\"%s\",\"rows\":%d,\"op\":\"%s\",\"host_us_per_call\":%.2f,\"calls\":%d,"
        "\"rounds\":%d,\"pdl\":\"%s\"}\n",
        model.c_str(), rows, name, us, calls, rounds, pdl == nullptr ? "default" : pdl);
  }
  cublasDestroy(cublas);
  cudaFreeHost(pinned);
  return 0;
}
