// The CUDA backend against the CPU backend through the Backend interface: the same host values in
// both, each in the dtype it asks for, compared with tolerances relative to each output's scale
// (docs/cuda.md). Shared by cuda_backend_test.cc and cuda_family_ops_test.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/ragged_batch.h"
#include "gpu_test_util.h"

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
