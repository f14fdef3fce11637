// The CUDA backend against the CPU backend through the Backend interface: the same host values in
// both, each in the dtype it asks for, compared with tolerances relative to each output's scale
// (docs/cuda.md). Shared by cuda_backend_test.cc, cuda_family_ops_test.cc and prefix_ops_test.cc;
// CudaBackendDtypeTest runs a test once per dtype (bf16 and e4m3) for the ops with an fp8 form.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/ragged_batch.h"
#include "gpu_test_util.h"

namespace radix {
// Test names and failure messages print a DType parameter by name, not as bytes.
inline void PrintTo(DType dtype, std::ostream* os) { *os << dtype_name(dtype); }
}  // namespace radix

namespace radix::cuda::testing {

// max |got - want| / max |want|: the error of a bf16 result against its fp32 reference.
inline double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff = std::max(diff, std::fabs(double(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return scale == 0 ? diff : diff / scale;
}

// Random values that bf16 holds exactly, so both backends start from the same numbers.
inline std::vector<float> bf16_values(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::vector<float> v(n);
  std::normal_distribution<float> dist(0.0f, scale);
  for (auto& x : v) x = round_bf16(dist(rng));
  return v;
}

class CudaBackendTest : public ::testing::Test {
 public:
  void SetUp() override {
    RADIX_REQUIRE_GPU();
    gpu_ = make_cuda_backend(BackendOptions{"cuda", 0});
    cpu_ = make_cpu_backend(2);
  }

  // The same host values in both backends, each in the dtype it asks for.
  struct Pair {
    Buffer cpu, gpu;
  };
  Pair make(const std::vector<float>& host, int64_t rows, int64_t cols, DType gpu_dtype) {
    Pair p{cpu_->alloc(DType::kF32, rows, cols), gpu_->alloc(gpu_dtype, rows, cols)};
    cpu_->upload(p.cpu, host.data(), DType::kF32);
    gpu_->upload(p.gpu, host.data(), DType::kF32);
    return p;
  }
  Pair make_index(const std::vector<int32_t>& host) {
    const auto n = static_cast<int64_t>(host.size());
    Pair p{cpu_->alloc(DType::kI32, n, 1), gpu_->alloc(DType::kI32, n, 1)};
    cpu_->upload(p.cpu, host.data(), DType::kI32);
    gpu_->upload(p.gpu, host.data(), DType::kI32);
    return p;
  }
  Pair make_out(int64_t rows, int64_t cols, DType gpu_dtype) {
    Pair p{cpu_->alloc(DType::kF32, rows, cols), gpu_->alloc(gpu_dtype, rows, cols)};
    gpu_->fill_constant(p.gpu, NAN);  // poison: an unwritten element fails every comparison
    return p;
  }
  std::vector<float> get(Backend& b, const Tensor& t) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    b.download(t, v.data());
    return v;
  }
  double err(const Pair& p) { return rel_err(get(*gpu_, p.gpu), get(*cpu_, p.cpu)); }

  std::unique_ptr<Backend> gpu_, cpu_;
};

// max over rows of max_c |got - want| / max_c |want|: the error of a result stored with one scale
// per row (e4m3), whose rounding is bounded relative to its own row, not to the whole tensor.
inline double row_rel_err(const std::vector<float>& got, const std::vector<float>& want,
                          int64_t rows, int64_t cols) {
  EXPECT_EQ(got.size(), want.size());
  EXPECT_EQ(got.size(), static_cast<size_t>(rows * cols));
  double worst = 0;
  for (int64_t r = 0; r < rows && static_cast<size_t>((r + 1) * cols) <= got.size(); ++r) {
    const std::vector<float> g(got.begin() + r * cols, got.begin() + (r + 1) * cols);
    const std::vector<float> w(want.begin() + r * cols, want.begin() + (r + 1) * cols);
    worst = std::max(worst, rel_err(g, w));
  }
  return worst;
}

// Root-mean-square error relative to the root-mean-square of the reference, sqrt(sum (got -
// want)^2 / sum want^2): over the whole tensor, and the worst single row and single column among
// those with at least `min_count` elements (fewer give too noisy an estimate to bound).
struct RmsErr {
  double all = 0, worst_row = 0, worst_col = 0;
};
inline RmsErr rms_rel_err(const std::vector<float>& got, const std::vector<float>& want,
                          int64_t rows, int64_t cols, int64_t min_count = 256) {
  EXPECT_EQ(got.size(), static_cast<size_t>(rows * cols));
  EXPECT_EQ(want.size(), static_cast<size_t>(rows * cols));
  RmsErr e;
  if (got.size() != static_cast<size_t>(rows * cols) || want.size() != got.size()) {
    e.all = INFINITY;
    return e;
  }
  std::vector<double> row_d(rows), row_w(rows), col_d(cols), col_w(cols);
  double d_all = 0, w_all = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const double g = got[r * cols + c], w = want[r * cols + c];
      // NaN (the poison of an unwritten element) or Inf fails every bound below.
      const double d = std::isfinite(g) ? (g - w) * (g - w) : INFINITY;
      row_d[r] += d, row_w[r] += w * w, col_d[c] += d, col_w[c] += w * w;
      d_all += d, w_all += w * w;
    }
  }
  const auto ratio = [](double d, double w) { return w > 0 ? std::sqrt(d / w) : std::sqrt(d); };
  e.all = ratio(d_all, w_all);
  if (cols >= min_count) {
    for (int64_t r = 0; r < rows; ++r)
      e.worst_row = std::max(e.worst_row, ratio(row_d[r], row_w[r]));
  }
  if (rows >= min_count) {
    for (int64_t c = 0; c < cols; ++c)
      e.worst_col = std::max(e.worst_col, ratio(col_d[c], col_w[c]));
  }
  return e;
}

// The ops that have an fp8 form, run once per dtype the CUDA backend offers for them (the test
// parameter): linear with bf16 or e4m3 weights (one fp32 scale per output channel, through
// Backend::linear_fp8 as the model's fp8 projections), and the norms and the gated activation
// writing bf16 or e4m3 (one fp32 scale per row: the fp8 linear's input, docs/numerics.md "fp8").
// The CPU backend has no fp8 (it refuses e4m3 requests), so its fp32 op is the reference on the
// values the GPU computes with: for e4m3 weights their dequantised values (code * scale), which
// makes the weight rounding no error of the op; for an e4m3 output the fp32 result that its codes
// times their row scale must round.
class CudaBackendDtypeTest : public CudaBackendTest, public ::testing::WithParamInterface<DType> {
 public:
  // A projection weight: on the GPU in `dtype` (bf16, or e4m3 quantised per row on the device
  // from a bf16 copy, as the loader makes it, with its scales), on the CPU the values the GPU
  // holds, in fp32.
  struct Weight {
    Buffer cpu, gpu, gpu_scale;
    std::vector<float> values;  // as the CPU holds them, [rows, cols]
  };
  Weight make_weight(const std::vector<float>& host, int64_t rows, int64_t cols, DType dtype) {
    Weight w;
    w.cpu = cpu_->alloc(DType::kF32, rows, cols);
    if (dtype != DType::kF8E4M3) {
      w.gpu = gpu_->alloc(dtype, rows, cols);
      gpu_->upload(w.gpu, host.data(), DType::kF32);
      w.values = get(*gpu_, w.gpu);
    } else {
      Buffer b16 = gpu_->alloc(DType::kBF16, rows, cols);
      gpu_->upload(b16, host.data(), DType::kF32);
      w.gpu = gpu_->alloc(DType::kF8E4M3, rows, cols);
      w.gpu_scale = gpu_->alloc(DType::kF32, 1, rows);
      gpu_->quantize_fp8_rows(b16, w.gpu, w.gpu_scale);
      w.values = dequantised(w.gpu, w.gpu_scale);
    }
    cpu_->upload(w.cpu, w.values.data(), DType::kF32);
    return w;
  }

  // out = x @ w^T + bias (+ out): Backend::linear, or Backend::linear_fp8 for an e4m3 weight (x
  // in bf16, quantised per row by the backend).
  void gpu_linear(const Tensor& x, const Weight& w, const Tensor& out, bool accumulate = false,
                  const Tensor& bias = Tensor{}) {
    if (w.gpu.tensor().dtype == DType::kF8E4M3) {
      gpu_->linear_fp8(x, Tensor{}, w.gpu, w.gpu_scale, out, accumulate, bias);
    } else {
      gpu_->linear(x, w.gpu, out, accumulate, bias);
    }
  }

  // An op's output: fp32 on the CPU; on the GPU in `dtype`, with one fp32 scale per row for e4m3.
  // Both poisoned on the GPU (NaN, e4m3's 0xFF included): an unwritten element fails every bound.
  struct Out {
    Pair p;
    Buffer scale;  // e4m3 only: [rows, 1]
  };
  Out make_typed_out(int64_t rows, int64_t cols, DType dtype) {
    if (dtype != DType::kF8E4M3) return Out{make_out(rows, cols, dtype), Buffer{}};
    Out o{Pair{cpu_->alloc(DType::kF32, rows, cols), gpu_->alloc(DType::kF8E4M3, rows, cols)},
          gpu_->alloc(DType::kF32, rows, 1)};
    const std::vector<uint8_t> nan_codes(static_cast<size_t>(rows * cols), 0xFF);
    gpu_->upload(o.p.gpu, nan_codes.data(), DType::kF8E4M3);
    gpu_->fill_constant(o.scale, NAN);
    return o;
  }
  // The GPU's output as values: e4m3 codes times their row's scale.
  std::vector<float> gpu_values(const Out& o) {
    return o.scale.empty() ? get(*gpu_, o.p.gpu) : dequantised(o.p.gpu, o.scale);
  }

  // codes[r, c] * scale[r] for e4m3 codes with one scale per row.
  std::vector<float> dequantised(const Tensor& codes, const Tensor& scale) {
    std::vector<float> v = get(*gpu_, codes);
    const std::vector<float> s = get(*gpu_, scale);
    EXPECT_EQ(s.size(), static_cast<size_t>(codes.rows));
    for (int64_t r = 0; r < codes.rows && static_cast<size_t>(r) < s.size(); ++r) {
      for (int64_t c = 0; c < codes.cols; ++c) v[r * codes.cols + c] *= s[r];
    }
    return v;
  }
};

// "bf16", "f8e4m3": the test-name suffix of a dtype parameter.
inline std::string dtype_param_name(const ::testing::TestParamInfo<DType>& info) {
  return dtype_name(info.param);
}

// A batch whose trie is deep (a long shared stem) and wide (many short branches), with
// single-token sequences and duplicates.
inline RaggedBatch random_batch(std::mt19937& rng, int num_seqs) {
  RaggedBatch b;
  std::vector<int32_t> stem(200);
  for (auto& t : stem) t = static_cast<int32_t>(rng() % 50);
  for (int s = 0; s < num_seqs; ++s) {
    std::vector<int32_t> seq(stem.begin(), stem.begin() + rng() % stem.size());
    const int tail = static_cast<int>(rng() % 40);
    for (int i = 0; i < tail; ++i) seq.push_back(static_cast<int32_t>(rng() % 3));
    if (seq.empty()) seq.push_back(1);
    b.add_sequence(seq);
  }
  return b;
}

}  // namespace radix::cuda::testing
