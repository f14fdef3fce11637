// Micro-benchmark of the attention kernels on the docs/benchmarks.md workloads at the head shapes of
// Qwen3-0.6B (Hq 16, Hkv 8) and Qwen3-8B (Hq 32, Hkv 8), and of the other families: Mistral-7B
// (32/8, sliding window 4096, and a 1024 window that trims the long workloads), Gemma2-9B (16/8,
// head_dim 256, soft-cap 50, window 4096), Gemma-2B (8/1, head_dim 256) and Qwen2-0.5B (14/2,
// head_dim 64): varlen causal over the flat batch (modes off and scatter) and the tree mask over
// the fold plan's compact rows (mode tree), each tile shape that has kernels for the head_dim.
//
//   attention_bench [--reps N] [--warmup N] [--tiles NAME,...] [--models NAME,...] [--json FILE]
//                   [--shapes FILE] [--check]
//
// Times each call with CUDA events (median of --reps after --warmup) and counts 4 * head_dim FLOP
// per visible (query, key) pair per query head: all causal pairs of each sequence within the
// window for varlen, the (row, ancestor-or-self) pairs within the window for the tree. --tiles
// and --models limit the tile shapes and head shapes (default all); --json appends JSON lines.
// --shapes writes the sequence lengths of each workload as JSON lines for bench/attention_sdpa.py
// (PyTorch's flash attention on the same batches). --check verifies instead, at full scale, that
// tree attention on the fold plan equals varlen attention on the flat batch made of the scattered
// rows.
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

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_tiles.cuh"
#include "core/fold_plan.h"
#include "workloads.h"

namespace {

using radix::cuda::AttentionTiles;
using bf16 = __nv_bfloat16;

#define BENCH_CHECK(call)                                                                      \
  do {                                                                                         \
    const cudaError_t e_ = (call);                                                             \
    if (e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "attention_bench: %s failed: %s\n", #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

// Fills n bf16 values in [-2, 2) from a fixed generator: one 16 MiB block made on the host,
// repeated on the device. The kernels' speed does not depend on the values, only that they are
// finite.
void fill_device(bf16* data, int64_t n) {
  const int64_t block = std::min<int64_t>(n, int64_t{1} << 23);
  std::vector<bf16> host(block);
  uint32_t state = 12345u;
  for (auto& x : host) {
    state = state * 1664525u + 1013904223u;
    x = __float2bfloat16((state >> 16) * (4.0f / 65536.0f) - 2.0f);
  }
  for (int64_t at = 0; at < n; at += block) {
    BENCH_CHECK(cudaMemcpy(data + at, host.data(), std::min(block, n - at) * sizeof(bf16),
                           cudaMemcpyHostToDevice));
  }
}

template <typename T>
T* device_copy(const std::vector<T>& host) {
  T* p = nullptr;
  BENCH_CHECK(cudaMalloc(&p, std::max<size_t>(host.size(), 1) * sizeof(T)));
  if (!host.empty()) {
    BENCH_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  return p;
}

template <typename F>
double median_ms(F&& launch, int warmup, int reps) {
  cudaEvent_t start, stop;
  BENCH_CHECK(cudaEventCreate(&start));
  BENCH_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < warmup; ++i) BENCH_CHECK(launch());
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) {
    BENCH_CHECK(cudaEventRecord(start));
    BENCH_CHECK(launch());
    BENCH_CHECK(cudaEventRecord(stop));
    BENCH_CHECK(cudaEventSynchronize(stop));
    BENCH_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
  }
  BENCH_CHECK(cudaEventDestroy(start));
  BENCH_CHECK(cudaEventDestroy(stop));
  std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
  return ms[reps / 2];
}

struct Model {
  const char* name;
  int hq, hkv;
  int head_dim = 128;
  float softcap = 0;
  int window = 0;
};

// Query-key pairs within `window` positions (0: no window) of a causal sequence of len tokens.
double windowed_causal_pairs(int len, int window) {
  double pairs = 0;
  for (int q = 0; q < len; ++q) pairs += window > 0 ? std::min(q + 1, window) : q + 1;
  return pairs;
}

float to_float(bf16 x) { return __bfloat162float(x); }

// The dedup invariant at benchmark scale: with the flat batch's Q/K/V made by scattering the
// compact rows (qkv holds them), varlen causal attention over it must give, for every flat token
// t, the tree attention output of compact row scatter[t]. Checks every 13th token, all heads,
// with the tests' tolerance (relative L2 error per row and head <= 1e-2); prints the worst error.
void check_tree_equals_varlen(const std::string& workload, const Model& m,
                              const radix::RaggedBatch& b, const radix::FoldPlan& plan,
                              const std::vector<AttentionTiles>& tiles_to_run, const bf16* qkv,
                              int64_t stride, const int32_t* d_cu, const int32_t* d_end,
                              const int32_t* d_pos, void* d_ws, size_t ws_bytes, int max_len) {
  const int flat_rows = static_cast<int>(b.num_tokens());
  const int tree_rows = plan.num_rows;
  const int hd = m.head_dim;
  const int64_t cols = int64_t{m.hq} * hd;
  std::vector<bf16> compact(tree_rows * stride);
  BENCH_CHECK(
      cudaMemcpy(compact.data(), qkv, compact.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<bf16> flat(flat_rows * stride);
  for (int t = 0; t < flat_rows; ++t) {
    std::copy_n(compact.begin() + plan.scatter[t] * stride, stride, flat.begin() + t * stride);
  }
  bf16* d_flat = nullptr;
  bf16* d_out_flat = nullptr;
  bf16* d_out_tree = nullptr;
  BENCH_CHECK(cudaMalloc(&d_flat, flat.size() * sizeof(bf16)));
  BENCH_CHECK(cudaMalloc(&d_out_flat, flat_rows * cols * sizeof(bf16)));
  BENCH_CHECK(cudaMalloc(&d_out_tree, tree_rows * cols * sizeof(bf16)));
  BENCH_CHECK(cudaMemcpy(d_flat, flat.data(), flat.size() * sizeof(bf16), cudaMemcpyHostToDevice));
  const float scale = 1.0f / std::sqrt(float(hd));
  radix::cuda::AttentionOptions options;
  options.head_dim = hd;
  options.softcap = m.softcap;
  options.window = m.window;
  options.positions_dev = d_pos;
  std::vector<bf16> out_flat(flat_rows * cols);
  std::vector<bf16> out_tree(tree_rows * cols);
  for (AttentionTiles tiles : tiles_to_run) {
    if (!radix::cuda::attention_tiles_supported(tiles, hd)) continue;
    BENCH_CHECK(radix::cuda::attention_tree_tiles(
        tiles, qkv, qkv + m.hq * hd, qkv + (m.hq + m.hkv) * hd, d_out_tree, stride, stride, cols,
        d_end, tree_rows, m.hq, m.hkv, scale, d_ws, ws_bytes, nullptr, options));
    BENCH_CHECK(radix::cuda::attention_varlen_causal_tiles(
        tiles, d_flat, d_flat + m.hq * hd, d_flat + (m.hq + m.hkv) * hd, d_out_flat, stride, stride,
        cols, d_cu, b.num_sequences(), max_len, flat_rows, m.hq, m.hkv, scale, nullptr, options));
    BENCH_CHECK(cudaMemcpy(out_flat.data(), d_out_flat, out_flat.size() * sizeof(bf16),
                           cudaMemcpyDeviceToHost));
    BENCH_CHECK(cudaMemcpy(out_tree.data(), d_out_tree, out_tree.size() * sizeof(bf16),
                           cudaMemcpyDeviceToHost));
    double worst = 0;
    int64_t checked = 0;
    for (int t = 0; t < flat_rows; t += 13) {
      for (int h = 0; h < m.hq; ++h) {
        const bf16* a = out_flat.data() + t * cols + h * hd;
        const bf16* r = out_tree.data() + plan.scatter[t] * cols + h * hd;
        double err = 0;
        double norm = 0;
        for (int d = 0; d < hd; ++d) {
          const double diff = double(to_float(a[d])) - to_float(r[d]);
          err += diff * diff;
          norm += double(to_float(r[d])) * to_float(r[d]);
        }
        const double rel = std::sqrt(err) / std::max(std::sqrt(norm), 1e-3);
        worst = std::max(worst, std::isfinite(rel) ? rel : 1e30);
        ++checked;
      }
    }
    std::printf(
        "check %-24s %-11s %-18s tree == varlen on %lld (row, head) pairs: worst "
        "relative L2 %.2e %s\n",
        workload.c_str(), m.name, radix::cuda::attention_tiles_name(tiles),
        static_cast<long long>(checked), worst, worst <= 1e-2 ? "ok" : "FAILED");
    std::fflush(stdout);
  }
  BENCH_CHECK(cudaFree(d_flat));
  BENCH_CHECK(cudaFree(d_out_flat));
  BENCH_CHECK(cudaFree(d_out_tree));
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30, warmup = 5;
  const char* json_path = nullptr;
  const char* shapes_path = nullptr;
  std::string tiles_list;
  std::string models_list;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::max(0, std::atoi(argv[++i]));
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--shapes" && i + 1 < argc) {
      shapes_path = argv[++i];
    } else if (a == "--check") {
      check = true;
    } else if (a == "--tiles" && i + 1 < argc) {
      tiles_list = std::string(",") + argv[++i] + ",";
    } else if (a == "--models" && i + 1 < argc) {
      models_list = std::string(",") + argv[++i] + ",";
    } else {
      std::fprintf(stderr,
                   "usage: %s [--reps N] [--warmup N] [--tiles NAME,...] [--models NAME,...] "
                   "[--json FILE] [--shapes FILE] [--check]\n",
                   argv[0]);
      return 2;
    }
  }
  int device = 0;
  cudaDeviceProp prop{};
  BENCH_CHECK(cudaGetDevice(&device));
  BENCH_CHECK(cudaGetDeviceProperties(&prop, device));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  std::vector<AttentionTiles> tiles_to_run;
  for (AttentionTiles t : radix::cuda::kAttentionAllTiles) {
    const std::string name = radix::cuda::attention_tiles_name(t);
    if (!tiles_list.empty() && tiles_list.find("," + name + ",") == std::string::npos) continue;
    if (radix::cuda::attention_tiles_supported(t)) {
      tiles_to_run.push_back(t);
    } else {
      std::printf("%s: not in this build (attention.cu without sm_90a)\n", name.c_str());
    }
  }
  if (tiles_to_run.empty()) {
    std::fprintf(stderr, "attention_bench: no tile shape matches --tiles%s\n", tiles_list.c_str());
    return 2;
  }
  FILE* json = json_path ? std::fopen(json_path, "a") : nullptr;
  FILE* shapes = shapes_path ? std::fopen(shapes_path, "w") : nullptr;
  if ((json_path && !json) || (shapes_path && !shapes)) {
    std::fprintf(stderr, "attention_bench: cannot open the output file\n");
    return 1;
  }

  const char* specs[] = {"syn:B=32,P=2048,S=256", "syn:B=32,P=512,S=256", "rerank-like:G=40,D=10"};
  const Model all_models[] = {{"qwen3-0.6b", 16, 8},
                              {"qwen3-8b", 32, 8},
                              {"mistral-7b", 32, 8, 128, 0, 4096},
                              {"mistral-7b-w1k", 32, 8, 128, 0, 1024},
                              {"gemma2-9b", 16, 8, 256, 50, 4096},
                              {"gemma-2b", 8, 1, 256},
                              {"qwen2-0.5b", 14, 2, 64}};
  std::vector<Model> models;
  for (const Model& m : all_models) {
    if (models_list.empty() ||
        models_list.find(std::string(",") + m.name + ",") != std::string::npos) {
      models.push_back(m);
    }
  }
  std::printf("%-24s %-11s %-6s %-15s %8s %14s %9s %9s\n", "workload", "model", "mode", "tiles",
              "rows", "pairs", "ms", "TFLOP/s");

  for (const char* spec : specs) {
    const radix::bench::Workload w = radix::bench::parse_workload(spec);
    const radix::RaggedBatch& b = w.batch;
    const radix::FoldPlan plan = radix::build_fold_plan(b.ids, b.positions, b.cu_seqlens);
    const int flat_rows = static_cast<int>(b.num_tokens());
    const int tree_rows = plan.num_rows;
    int max_len = 0;
    double pairs_flat = 0;
    for (int s = 0; s < b.num_sequences(); ++s) {
      const int len = b.cu_seqlens[s + 1] - b.cu_seqlens[s];
      max_len = std::max(max_len, len);
      pairs_flat += 0.5 * len * (len + 1.0);
    }
    // Rows visible to row r in the tree: r and its ancestors (parent < r in pre-order).
    std::vector<int> depth(tree_rows, 1);
    double pairs_tree = 0;
    for (int r = 0; r < tree_rows; ++r) {
      if (plan.parent[r] >= 0) depth[r] = depth[plan.parent[r]] + 1;
      if (plan.gather[r] >= 0) pairs_tree += depth[r];
    }
    // The same within a window (the ancestors of a row are one per position before it).
    auto pairs_in_window = [&](int window, bool tree) {
      double pairs = 0;
      if (tree) {
        for (int r = 0; r < tree_rows; ++r) {
          if (plan.gather[r] >= 0) pairs += window > 0 ? std::min(depth[r], window) : depth[r];
        }
      } else {
        for (int s = 0; s < b.num_sequences(); ++s) {
          pairs += windowed_causal_pairs(b.cu_seqlens[s + 1] - b.cu_seqlens[s], window);
        }
      }
      return pairs;
    };
    if (shapes) {
      std::fprintf(shapes,
                   "{\"workload\": \"%s\", \"pairs_flat\": %.0f, \"pairs_tree\": %.0f, "
                   "\"lengths\": [",
                   w.name.c_str(), pairs_flat, pairs_tree);
      for (int s = 0; s < b.num_sequences(); ++s) {
        std::fprintf(shapes, "%s%d", s ? ", " : "", b.cu_seqlens[s + 1] - b.cu_seqlens[s]);
      }
      std::fprintf(shapes, "]}\n");
    }

    int32_t* d_cu = device_copy(b.cu_seqlens);
    int32_t* d_end = device_copy(plan.subtree_end);
    int32_t* d_pos = device_copy(plan.positions);
    void* d_ws = nullptr;
    const size_t ws_bytes = radix::cuda::attention_tree_workspace_bytes(tree_rows);
    BENCH_CHECK(cudaMalloc(&d_ws, std::max<size_t>(ws_bytes, 1)));

    for (const Model& m : models) {
      const int hd = m.head_dim;
      const int64_t stride = int64_t{m.hq + 2 * m.hkv} * hd;
      const int64_t out_stride = int64_t{m.hq} * hd;
      const int rows = std::max(flat_rows, tree_rows);
      bf16* qkv = nullptr;
      bf16* out = nullptr;
      BENCH_CHECK(cudaMalloc(&qkv, rows * stride * sizeof(bf16)));
      BENCH_CHECK(cudaMalloc(&out, rows * out_stride * sizeof(bf16)));
      fill_device(qkv, rows * stride);
      const bf16* q = qkv;
      const bf16* k = qkv + m.hq * hd;
      const bf16* v = qkv + (m.hq + m.hkv) * hd;
      const float scale = 1.0f / std::sqrt(float(hd));
      radix::cuda::AttentionOptions options;
      options.head_dim = hd;
      options.softcap = m.softcap;
      options.window = m.window;
      options.positions_dev = d_pos;

      for (AttentionTiles tiles : check ? std::vector<AttentionTiles>{} : tiles_to_run) {
        if (!radix::cuda::attention_tiles_supported(tiles, hd)) continue;
        for (const bool tree : {false, true}) {
          const double ms = median_ms(
              [&] {
                return tree ? radix::cuda::attention_tree_tiles(
                                  tiles, q, k, v, out, stride, stride, out_stride, d_end, tree_rows,
                                  m.hq, m.hkv, scale, d_ws, ws_bytes, nullptr, options)
                            : radix::cuda::attention_varlen_causal_tiles(
                                  tiles, q, k, v, out, stride, stride, out_stride, d_cu,
                                  b.num_sequences(), max_len, flat_rows, m.hq, m.hkv, scale,
                                  nullptr, options);
              },
              warmup, reps);
          const double pairs = m.window > 0 ? pairs_in_window(m.window, tree)
                               : tree       ? pairs_tree
                                            : pairs_flat;
          const double tflops = 4.0 * hd * pairs * m.hq / (ms * 1e9);
          const char* mode = tree ? "tree" : "varlen";
          const char* tiles_name = radix::cuda::attention_tiles_name(tiles);
          std::printf("%-24s %-11s %-6s %-15s %8d %14.0f %9.3f %9.1f\n", w.name.c_str(), m.name,
                      mode, tiles_name, tree ? tree_rows : flat_rows, pairs, ms, tflops);
          std::fflush(stdout);
          if (json) {
            std::fprintf(json,
                         "{\"bench\": \"attention\", \"device\": \"%s\", \"workload\": \"%s\", "
                         "\"model\": \"%s\", \"hq\": %d, \"hkv\": %d, \"head_dim\": %d, "
                         "\"softcap\": %g, \"window\": %d, \"mask\": \"%s\", "
                         "\"tiles\": \"%s\", \"rows\": %d, \"visible_pairs\": %.0f, "
                         "\"median_ms\": %.4f, \"tflops\": %.2f, \"reps\": %d}\n",
                         prop.name, w.name.c_str(), m.name, m.hq, m.hkv, hd, m.softcap, m.window,
                         mode, tiles_name, tree ? tree_rows : flat_rows, pairs, ms, tflops, reps);
          }
        }
      }
      if (check) {
        check_tree_equals_varlen(w.name, m, b, plan, tiles_to_run, qkv, stride, d_cu, d_end, d_pos,
                                 d_ws, ws_bytes, max_len);
      }
      BENCH_CHECK(cudaFree(qkv));
      BENCH_CHECK(cudaFree(out));
    }
    BENCH_CHECK(cudaFree(d_cu));
    BENCH_CHECK(cudaFree(d_end));
    BENCH_CHECK(cudaFree(d_pos));
    BENCH_CHECK(cudaFree(d_ws));
  }
  if (json) std::fclose(json);
  if (shapes) std::fclose(shapes);
  return 0;
}
