// How far cuBLASLt's first heuristic choice is from the best of its candidates, on the projection
// shapes of the Qwen3 forward (y[M,N] = x[M,K] w[N,K]^T, bf16 in and out, fp32 accumulation, the
// layout of radix::cuda::Gemm).
//
//   gemm_bench [--model qwen3-0.6b|qwen3-8b] [--rows M,...] [--candidates N] [--reps N]
//              [--dtype bf16|fp8|fp8-rowwise] [--layers N] [--splitk K,...] [--skinny 0|1|sweep]
//              [--timing batch|single] [--fast-accum 0|1]
//
// --layers N: N copies of the weights, called in turn, so that a small matrix is read from DRAM
// as in a forward (one copy of Qwen3-8B's o projection, 32 MiB, stays in the H200's 50 MiB L2).
// --splitk: also time every candidate with each of these split-K factors set on its config
// (cuBLASLt's CUBLASLT_ALGO_CONFIG_SPLITK_NUM; a factor the candidate refuses is skipped); the
// row then names the best (candidate, split) and "weight_gbps", the weight bytes a second.
//
// --skinny (bf16 only, M <= 128; default 1): also time radix's small-M kernel
// (src/backend/cuda/kernels/skinny_gemm.cuh) with its own choice of tiling, on the same rotated
// weights, in a row "kernel":"skinny" with its weight bytes a second, the ratio to cuBLASLt's best
// and the largest difference from cuBLASLt's output; "sweep" adds every (tile width, split) it
// can run as "bn/splits:GB/s" to that row.
//
// --dtype fp8: e4m3 x and w, bf16 out, no scales (the product radix's own-epilogue path runs);
// fp8-rowwise: the same with one fp32 scale per row of x and per output channel of w applied by
// cuBLASLt (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F, radix's default fp8 path); a shape
// cuBLASLt has no kernel for prints a row with "error". --fast-accum 1 (fp8 only) sets
// CUBLASLT_MATMUL_DESC_FAST_ACCUM, as RADIX_CUDA_FP8_FAST_ACCUM=1 does in the forward.
//
// --timing batch (default): a call's time is the median over 5 batches of --reps calls queued back
// to back, divided by --reps, as the GPU sees them in a forward; single: the median of --reps
// calls each timed alone after a synchronisation, which adds the host's launch latency (several
// µs) to every call and so understates short GEMMs (the numbers of issue 14 were taken so).
//
// For each shape: TFLOP/s of every candidate the heuristic returns (after 3 warm-ups, CUDA
// events, inputs of random bf16 data), the heuristic's first and the best. The
// forward uses the first (src/backend/cuda/gemm.cc); this says what choosing better would gain.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels/skinny_gemm.cuh"
#include "bench_fill.cuh"

namespace {

struct Shape {
  const char* name;
  int64_t n, k;
};

__global__ void fill(__nv_bfloat16* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    p[i] = __float2bfloat16(radix::bench::hashed_uniform(i, seed) * 0.1f);
  }
}

// The same values as fill, as e4m3 (scaled into e4m3's range).
__global__ void fill_e4m3(__nv_fp8_storage_t* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = radix::bench::hashed_uniform(i, seed) * 800.0f;
    p[i] = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
  }
}

__global__ void fill_f32(float* p, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    p[i] = v;
  }
}

// Seconds a call of launch takes on the GPU. batch: the median over 5 batches of `reps` calls
// queued back to back, per call (as in a forward, where the host runs ahead of the GPU); single:
// the median of `reps` calls each between its own events after a synchronisation, which adds the
// host's launch latency to short kernels. < 0 when launch refuses.
template <typename Launch>
double time_calls(Launch&& launch, int reps, bool batch, cudaStream_t stream, cudaEvent_t start,
                  cudaEvent_t stop) {
  for (int r = 0; r < 3; ++r) {
    if (!launch()) return -1;
  }
  const int rounds = batch ? 5 : reps, per_round = batch ? reps : 1;
  std::vector<float> ms(rounds);
  for (int r = 0; r < rounds; ++r) {
    RADIX_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < per_round; ++i) {
      if (!launch()) throw std::runtime_error("a launch failed after its warm-up");
    }
    RADIX_CUDA_CHECK(cudaEventRecord(stop, stream));
    RADIX_CUDA_CHECK(cudaEventSynchronize(stop));
    RADIX_CUDA_CHECK(cudaEventElapsedTime(&ms[r], start, stop));
  }
  std::nth_element(ms.begin(), ms.begin() + rounds / 2, ms.end());
  return ms[rounds / 2] * 1e-3 / per_round;
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> out;
  for (const char* p = s; *p;) {
    out.push_back(std::strtoll(p, const_cast<char**>(&p), 10));
    if (*p == ',') ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string model = "qwen3-8b";
  std::vector<int64_t> rows = {10240};
  int candidates = 16, reps = 20, layers = 1;
  std::vector<int64_t> splitk;
  std::string dtype = "bf16";
  std::string skinny = "1";
  std::string timing = "batch";
  bool fast_accum = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model"))
      model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--rows"))
      rows = parse_list(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--candidates"))
      candidates = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps"))
      reps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--dtype"))
      dtype = argv[i + 1];
    else if (!std::strcmp(argv[i], "--layers"))
      layers = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--splitk"))
      splitk = parse_list(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--skinny"))
      skinny = argv[i + 1];
    else if (!std::strcmp(argv[i], "--timing"))
      timing = argv[i + 1];
    else if (!std::strcmp(argv[i], "--fast-accum"))
      fast_accum = std::strcmp(argv[i + 1], "0") != 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (dtype != "bf16" && dtype != "fp8" && dtype != "fp8-rowwise") {
    std::fprintf(stderr, "unknown dtype %s (bf16, fp8 or fp8-rowwise)\n", dtype.c_str());
    return 2;
  }
  if (timing != "batch" && timing != "single") {
    std::fprintf(stderr, "unknown timing %s (batch or single)\n", timing.c_str());
    return 2;
  }
  const bool batch = timing == "batch";
  const bool fp8 = dtype != "bf16", rowwise = dtype == "fp8-rowwise";
  const size_t in_bytes = fp8 ? 1 : 2;
  const cudaDataType_t in_type = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  std::vector<Shape> shapes;
  if (model == "qwen3-8b") {
    shapes = {
        {"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 24576, 4096}, {"down", 4096, 12288}};
  } else if (model == "qwen3-0.6b") {
    shapes = {
        {"qkv", 4096, 1024}, {"o", 1024, 2048}, {"gate_up", 6144, 1024}, {"down", 1024, 3072}};
  } else {
    std::fprintf(stderr, "unknown model %s\n", model.c_str());
    return 2;
  }

  cublasLtHandle_t lt;
  RADIX_CUBLAS_CHECK(cublasLtCreate(&lt));
  size_t workspace_bytes = size_t{32} << 20;
  void* workspace;
  RADIX_CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));
  cudaStream_t stream;
  RADIX_CUDA_CHECK(cudaStreamCreate(&stream));
  cudaEvent_t start, stop;
  RADIX_CUDA_CHECK(cudaEventCreate(&start));
  RADIX_CUDA_CHECK(cudaEventCreate(&stop));

  for (const int64_t m : rows) {
    for (const Shape& s : shapes) {
      void *x, *w, *y;
      float *x_scale = nullptr, *w_scale = nullptr;
      RADIX_CUDA_CHECK(cudaMalloc(&x, m * s.k * in_bytes));
      RADIX_CUDA_CHECK(cudaMalloc(&w, s.n * s.k * in_bytes * layers));
      RADIX_CUDA_CHECK(cudaMalloc(&y, m * s.n * 2));
      if (fp8) {
        fill_e4m3<<<1024, 256, 0, stream>>>(static_cast<__nv_fp8_storage_t*>(x), m * s.k, 1);
        fill_e4m3<<<1024, 256, 0, stream>>>(static_cast<__nv_fp8_storage_t*>(w), s.n * s.k * layers,
                                            2);
      } else {
        fill<<<1024, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(x), m * s.k, 1);
        fill<<<1024, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(w), s.n * s.k * layers, 2);
      }
      RADIX_CUDA_CHECK(cudaMalloc(&x_scale, m * sizeof(float)));
      RADIX_CUDA_CHECK(cudaMalloc(&w_scale, s.n * sizeof(float)));
      fill_f32<<<256, 256, 0, stream>>>(x_scale, m, 1.0f / 448);
      fill_f32<<<256, 256, 0, stream>>>(w_scale, s.n, 1.0f / 448);

      cublasLtMatmulDesc_t desc;
      RADIX_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
      RADIX_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
      RADIX_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
      if (rowwise) {
        const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
        RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                                          &mode, sizeof mode));
        RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                                          &mode, sizeof mode));
        RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
            desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof w_scale));
        RADIX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
            desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof x_scale));
      }
      if (fp8 && fast_accum) {
        const int8_t on = 1;
        RADIX_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &on, sizeof on));
      }
      cublasLtMatrixLayout_t a, b, c;
      RADIX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a, in_type, s.k, s.n, s.k));
      RADIX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b, in_type, s.k, m, s.k));
      RADIX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c, CUDA_R_16BF, s.n, m, s.n));
      cublasLtMatmulPreference_t pref;
      RADIX_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
      RADIX_CUBLAS_CHECK(
          cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                               &workspace_bytes, sizeof workspace_bytes));
      std::vector<cublasLtMatmulHeuristicResult_t> results(candidates);
      int found = 0;
      const cublasStatus_t heuristic = cublasLtMatmulAlgoGetHeuristic(
          lt, desc, a, b, c, c, pref, candidates, results.data(), &found);
      const bool failed = heuristic != CUBLAS_STATUS_SUCCESS || found == 0;
      if (failed) {
        std::printf(
            "{\"model\":\"%s\",\"dtype\":\"%s\",\"gemm\":\"%s\",\"m\":%lld,"
            "\"error\":\"cuBLASLt has no algorithm: %s\"}\n",
            model.c_str(), dtype.c_str(), s.name, static_cast<long long>(m),
            cublasLtGetStatusString(heuristic));
        found = 0;
      }
      const double flop = 2.0 * m * s.n * s.k;
      const size_t w_bytes = static_cast<size_t>(s.n) * s.k * in_bytes;
      // Median seconds of one call of algo, the weights rotating over the copies; < 0: refused.
      auto time_algo = [&](const cublasLtMatmulAlgo_t& algo) -> double {
        const float alpha = 1, beta = 0;
        int layer = 0;
        return time_calls(
            [&] {
              const void* wl = static_cast<const char*>(w) + w_bytes * layer;
              layer = (layer + 1) % layers;
              return cublasLtMatmul(lt, desc, &alpha, wl, a, x, b, &beta, y, c, y, c, &algo,
                                    workspace, workspace_bytes, stream) == CUBLAS_STATUS_SUCCESS;
            },
            reps, batch, stream, start, stop);
      };
      double first = 0, best = 0;
      int best_i = -1, best_split = 0;
      std::string line;
      for (int i = 0; i < found; ++i) {
        const double sec = time_algo(results[i].algo);
        if (sec < 0) continue;
        const double tflops = flop / sec / 1e12;
        if (i == 0) first = tflops;
        if (tflops > best) best = tflops, best_i = i, best_split = 0;
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.1f", line.empty() ? "" : ",", tflops);
        line += buf;
        for (const int64_t k : splitk) {
          cublasLtMatmulAlgo_t algo = results[i].algo;
          const int32_t split = static_cast<int32_t>(k);
          if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split,
                                                   sizeof split) != CUBLAS_STATUS_SUCCESS) {
            continue;
          }
          if (split > 1) {
            const uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
            cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                                 &scheme, sizeof scheme);
          }
          cublasLtMatmulHeuristicResult_t check{};
          if (cublasLtMatmulAlgoCheck(lt, desc, a, b, c, c, &algo, &check) !=
                  CUBLAS_STATUS_SUCCESS ||
              check.workspaceSize > workspace_bytes) {
            continue;
          }
          const double ssec = time_algo(algo);
          if (ssec < 0) continue;
          const double stf = flop / ssec / 1e12;
          std::snprintf(buf, sizeof buf, ",%d/%lld:%.1f", i, static_cast<long long>(k), stf);
          line += buf;
          if (stf > best) best = stf, best_i = i, best_split = split;
        }
      }
      const double best_gbps = best > 0 ? w_bytes / (flop / (best * 1e12)) / 1e9 : 0;
      const double first_gbps = first > 0 ? w_bytes / (flop / (first * 1e12)) / 1e9 : 0;
      if (!failed)
        std::printf(
            "{\"model\":\"%s\",\"dtype\":\"%s\",\"gemm\":\"%s\",\"m\":%lld,\"n\":%lld,\"k\":%lld,"
            "\"fast_accum\":%d,\"candidates\":%d,\"layers\":%d,\"timing\":\"%s\",\"best_us\":%.2f,"
            "\"first_tflops\":%."
            "1f,\"best_tflops\":%.1f,"
            "\"best_index\":%d,\"best_splitk\":%d,\"first_weight_gbps\":%.0f,"
            "\"best_weight_gbps\":%.0f,\"all\":\"%s\"}\n",
            model.c_str(), dtype.c_str(), s.name, static_cast<long long>(m),
            static_cast<long long>(s.n), static_cast<long long>(s.k), fp8 && fast_accum ? 1 : 0,
            found, layers, timing.c_str(), best > 0 ? flop / (best * 1e12) * 1e6 : 0, first, best,
            best_i, best_split, first_gbps, best_gbps, line.c_str());
      std::fflush(stdout);
      if (!fp8 && skinny != "0" && m <= radix::cuda::kSkinnyGemmMaxRows) {
        auto* xb = static_cast<const __nv_bfloat16*>(x);
        // cuBLASLt's first candidate on weight copy 0, the reference for the output check.
        std::vector<__nv_bfloat16> ref(m * s.n), got(m * s.n);
        if (found > 0) {
          const float alpha = 1, beta = 0;
          RADIX_CUBLAS_CHECK(cublasLtMatmul(lt, desc, &alpha, w, a, x, b, &beta, y, c, y, c,
                                            &results[0].algo, workspace, workspace_bytes, stream));
          RADIX_CUDA_CHECK(
              cudaMemcpyAsync(ref.data(), y, ref.size() * 2, cudaMemcpyDeviceToHost, stream));
        }
        // Median seconds of one call with this tiling (0, 0: the kernel's choice), weights
        // rotating; < 0 when it refuses.
        auto time_skinny = [&](int bn, int splits) -> double {
          int layer = 0;
          return time_calls(
              [&] {
                auto* wl = reinterpret_cast<const __nv_bfloat16*>(static_cast<const char*>(w) +
                                                                  w_bytes * layer);
                layer = (layer + 1) % layers;
                return radix::cuda::skinny_gemm<__nv_bfloat16>(
                           xb, s.k, wl, s.k, static_cast<__nv_bfloat16*>(y), s.n, m, s.n, s.k,
                           false, nullptr, stream, bn, splits) == cudaSuccess;
              },
              reps, batch, stream, start, stop);
        };
        // The output check: one call on weight copy 0 (the rotation ends wherever it ends).
        RADIX_CUDA_CHECK(radix::cuda::skinny_gemm<__nv_bfloat16>(
            xb, s.k, static_cast<const __nv_bfloat16*>(w), s.k, static_cast<__nv_bfloat16*>(y), s.n,
            m, s.n, s.k, false, nullptr, stream));
        RADIX_CUDA_CHECK(
            cudaMemcpyAsync(got.data(), y, got.size() * 2, cudaMemcpyDeviceToHost, stream));
        RADIX_CUDA_CHECK(cudaStreamSynchronize(stream));
        double max_diff = 0, max_ref = 0;
        for (size_t i = 0; found > 0 && i < ref.size(); ++i) {
          const double r = __bfloat162float(ref[i]), g = __bfloat162float(got[i]);
          max_diff = std::max(max_diff, std::fabs(r - g));
          max_ref = std::max(max_ref, std::fabs(r));
        }
        const double sec = time_skinny(0, 0);
        const double gbps = sec > 0 ? w_bytes / sec / 1e9 : 0;
        std::string sweep;
        if (skinny == "sweep") {
          for (const int bn : {64, 128}) {
            for (int splits = 1; splits <= radix::cuda::kSkinnyGemmMaxSplits; ++splits) {
              const double ssec = time_skinny(bn, splits);
              if (ssec < 0) continue;
              char buf[48];
              std::snprintf(buf, sizeof buf, "%s%d/%d:%.0f", sweep.empty() ? "" : ",", bn, splits,
                            w_bytes / ssec / 1e9);
              sweep += buf;
            }
          }
        }
        const radix::cuda::SkinnyGemmTiling tiling = radix::cuda::skinny_gemm_tiling(m, s.n, s.k);
        std::printf(
            "{\"model\":\"%s\",\"kernel\":\"skinny\",\"gemm\":\"%s\",\"m\":%lld,"
            "\"n\":%lld,\"k\":%lld,\"layers\":%d,\"timing\":\"%s\",\"tiling\":\"%d/%d\","
            "\"us\":%.2f,\"tflops\":%.1f,"
            "\"weight_gbps\":%.0f,\"vs_cublaslt_best\":%.2f,\"max_diff\":%.3g,"
            "\"max_ref\":%.3g,\"sweep\":\"%s\"}\n",
            model.c_str(), s.name, static_cast<long long>(m), static_cast<long long>(s.n),
            static_cast<long long>(s.k), layers, timing.c_str(), tiling.bn, tiling.splits,
            sec * 1e6, sec > 0 ? flop / sec / 1e12 : 0, gbps, best_gbps > 0 ? gbps / best_gbps : 0,
            max_diff, max_ref, sweep.c_str());
        std::fflush(stdout);
      }
      cublasLtMatmulPreferenceDestroy(pref);
      cublasLtMatrixLayoutDestroy(a);
      cublasLtMatrixLayoutDestroy(b);
      cublasLtMatrixLayoutDestroy(c);
      cublasLtMatmulDescDestroy(desc);
      RADIX_CUDA_CHECK(cudaFree(x));
      RADIX_CUDA_CHECK(cudaFree(w));
      RADIX_CUDA_CHECK(cudaFree(y));
      RADIX_CUDA_CHECK(cudaFree(x_scale));
      RADIX_CUDA_CHECK(cudaFree(w_scale));
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gemm_bench: %s\n", e.what());
  return 1;
}
