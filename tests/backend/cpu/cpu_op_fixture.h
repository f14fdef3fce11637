// What the CPU op tests share: random inputs, the tolerance check against double references, and
// a fixture that moves host arrays in and out of a two-thread CPU backend.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "core/fold_plan.h"

namespace radix::testing {

inline std::vector<float> random_vector(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// |got - want| <= rel * max|want| elementwise: fp32 kernels against double references.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (float w : want) scale = std::max(scale, std::fabs(static_cast<double>(w)));
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], rel * std::max(scale, 1e-30)) << what << " at " << i;
  }
}

// The fold plan of 7 random sequences of 1-90 tokens over a 3-token alphabet: they share many
// prefixes, so the trie is deep and wide, and its rows are far from their positions (a branch's
// rows follow its siblings' whole subtrees).
inline FoldPlan random_trie_plan(std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> len(1, 90), tok(0, 2);
  std::vector<int32_t> ids, positions, cu = {0};
  for (int s = 0; s < 7; ++s) {
    const int32_t l = len(rng);
    for (int32_t i = 0; i < l; ++i) ids.push_back(tok(rng)), positions.push_back(i);
    cu.push_back(static_cast<int32_t>(ids.size()));
  }
  return build_fold_plan(ids, positions, cu);
}

class CpuOpFixture : public ::testing::Test {
 protected:
  explicit CpuOpFixture(uint32_t seed) : rng(seed) {}

  std::unique_ptr<Backend> be = make_cpu_backend(2);
  std::mt19937 rng;

  Buffer upload(const std::vector<float>& host, int64_t rows, int64_t cols) {
    Buffer b = be->alloc(DType::kF32, rows, cols);
    be->upload(b, host.data(), DType::kF32);
    return b;
  }
  Buffer upload_index(const std::vector<int32_t>& host) {
    Buffer b = be->alloc(DType::kI32, static_cast<int64_t>(host.size()), 1);
    be->upload(b, host.data(), DType::kI32);
    return b;
  }
  std::vector<float> download(const Tensor& t) {
    std::vector<float> v(static_cast<size_t>(t.rows * t.cols));
    be->download(t, v.data());
    return v;
  }

  // gated_activation(act) on random gate/up rows of several shapes against reference(gate_up, n,
  // inter), within rel of the largest output.
  template <typename Reference>
  void check_gated_activation(Activation act, Reference reference, double rel,
                              const std::string& what) {
    for (const int64_t n : {1, 129}) {
      for (const int64_t inter : {1, 33, 512}) {
        const auto gu = random_vector(n * 2 * inter, rng, 4.0f);
        Buffer b = upload(gu, n, 2 * inter);
        Buffer out = be->alloc(DType::kF32, n, inter);
        be->gated_activation(b, act, out);
        expect_close(download(out), reference(gu, n, inter), rel, what);
      }
    }
  }
};

// An attention test's head counts and head size, and its gtest name (hq4_hkv1_d256).
struct AttentionCase {
  int hq, hkv, d;
};
inline std::string attention_case_name(const ::testing::TestParamInfo<AttentionCase>& info) {
  const AttentionCase& c = info.param;
  return "hq" + std::to_string(c.hq) + "_hkv" + std::to_string(c.hkv) + "_d" + std::to_string(c.d);
}

}  // namespace radix::testing
