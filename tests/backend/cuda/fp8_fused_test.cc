// The fp8 outputs of the norms and the gated activation (the fp8 forward's GEMM inputs, written by
// the kernel that computes them instead of a separate quantisation pass). The norm's e4m3 rows must
// equal, bit for bit, quantize_fp8_rows of the same kernel's fp32 output (same arithmetic, same
// reduction order); the gated activation's against a host reference of the fp32 products.
// Tolerances and why: docs/numerics.md, "fp8".
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/kernels/fp8.cuh"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

std::unique_ptr<Backend> gpu_backend() {
  setenv("RADIX_CUDA_POISON", "1", 1);
  return make_cuda_backend(BackendOptions{"cuda", 0});
}

std::vector<float> download(Backend& b, const Tensor& t) {
  std::vector<float> host(static_cast<size_t>(t.numel()));
  b.download(t, host.data());
  return host;
}

// Rows of varied magnitude (std 10^(r % 5 - 2)), one zero row (r == 1) and one row with an outlier.
std::vector<float> rows_of(int64_t rows, int64_t cols, std::mt19937& rng, float base = 1.0f) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float s = base * std::pow(10.0f, static_cast<float>(r % 5) - 2.0f);
    for (int64_t c = 0; c < cols; ++c) {
      float x = round_bf16(dist(rng) * s);
      if (r == 1) x = 0.0f;
      if (r == 2 && c == 3) x = 500.0f;
      v[r * cols + c] = x;
    }
  }
  return v;
}

struct NormCase {
  int64_t hidden;  // 1001: the scalar path; 8200: too wide for registers (three passes)
  DType residual;  // f32 (the forward's stream) or bf16
  bool add;        // add_rms_norm (with a delta) or rms_norm
  bool plus_one;   // NormWeight::kPlusOne
};

class Fp8FusedNorm : public ::testing::TestWithParam<NormCase> {};

TEST_P(Fp8FusedNorm, EqualsQuantisedFp32Norm) {
  RADIX_REQUIRE_GPU();
  const NormCase tc = GetParam();
  auto gpu = gpu_backend();
  std::mt19937 rng(static_cast<uint32_t>(tc.hidden));
  const int64_t rows = 45, h = tc.hidden;
  const std::vector<float> xh = rows_of(rows, h, rng), dh = rows_of(rows, h, rng, 0.5f);
  std::vector<float> wh(h);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : wh) v = round_bf16(1.0f + 0.3f * dist(rng));
  const NormWeight mode = tc.plus_one ? NormWeight::kPlusOne : NormWeight::kPlain;
  Buffer w = gpu->alloc(DType::kBF16, 1, h), delta = gpu->alloc(DType::kBF16, rows, h);
  gpu->upload(w, wh.data(), DType::kF32);
  gpu->upload(delta, dh.data(), DType::kF32);
  // Two copies of the residual: one for the fp32 norm, one for the fused e4m3 norm.
  Buffer x1 = gpu->alloc(tc.residual, rows, h), x2 = gpu->alloc(tc.residual, rows, h);
  gpu->upload(x1, xh.data(), DType::kF32);
  gpu->upload(x2, xh.data(), DType::kF32);
  Buffer y32 = gpu->alloc(DType::kF32, rows, h);
  Buffer want = gpu->alloc(DType::kF8E4M3, rows, h), want_scale = gpu->alloc(DType::kF32, rows, 1);
  Buffer got = gpu->alloc(DType::kF8E4M3, rows, h), got_scale = gpu->alloc(DType::kF32, rows, 1);
  if (tc.add) {
    gpu->add_rms_norm(x1, delta, w, 1e-6f, y32, mode);
    gpu->add_rms_norm(x2, delta, w, 1e-6f, got, mode, got_scale);
  } else {
    gpu->rms_norm(x1, w, 1e-6f, y32, mode);
    gpu->rms_norm(x2, w, 1e-6f, got, mode, got_scale);
  }
  gpu->quantize_fp8_rows(y32, want, want_scale);
  EXPECT_EQ(download(*gpu, x2), download(*gpu, x1)) << "the residual update differs";
  const std::vector<float> gs = download(*gpu, got_scale), ws = download(*gpu, want_scale);
  const std::vector<float> gq = download(*gpu, got), wq = download(*gpu, want);
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_EQ(gs[r], ws[r]) << "scale of row " << r;
    for (int64_t c = 0; c < h; ++c) {
      ASSERT_EQ(gq[r * h + c], wq[r * h + c]) << "row " << r << " col " << c;
    }
  }
  EXPECT_EQ(gs[1], 0.0f);  // the zero row (without a delta it stays zero)
}

INSTANTIATE_TEST_SUITE_P(Shapes, Fp8FusedNorm,
                         ::testing::Values(NormCase{1024, DType::kF32, true, false},
                                           NormCase{4096, DType::kF32, true, false},
                                           NormCase{4096, DType::kF32, false, false},
                                           NormCase{2304, DType::kBF16, true, true},
                                           NormCase{8200, DType::kF32, true, false},
                                           NormCase{1001, DType::kF32, true, true}),
                         [](const auto& info) {
                           const NormCase& c = info.param;
                           return std::to_string(c.hidden) + "_" + dtype_name(c.residual) +
                                  (c.add ? "_add" : "") + (c.plus_one ? "_plus_one" : "");
                         });

// fp32 act(gate) * up as the kernel computes it, up to the device's exp / tanh.
float host_act(Activation act, float g, float u) {
  if (act == Activation::kSiLU) return g / (1.0f + std::exp(-g)) * u;
  const float inner = 0.7978845608028654f * (g + 0.044715f * g * g * g);
  return 0.5f * g * (1.0f + std::tanh(inner)) * u;
}

struct ActCase {
  int64_t inter;  // 3072, 12288, 17000, 33000 (blocks of 512 threads); 1001: the scalar path
  Activation act;
};

class Fp8FusedActivation : public ::testing::TestWithParam<ActCase> {};

// Against the host's fp32 products: the scale within fp32 noise of amax / 448 and every code the
// nearest e4m3 value of the scaled product, allowing a product that sits within fp32 noise of a
// rounding boundary (the device's __expf differs from std::exp in the last bits) to go either way.
TEST_P(Fp8FusedActivation, MatchesHostQuantisedProducts) {
  RADIX_REQUIRE_GPU();
  const ActCase tc = GetParam();
  auto gpu = gpu_backend();
  std::mt19937 rng(static_cast<uint32_t>(tc.inter));
  const int64_t rows = 37, inter = tc.inter;
  const std::vector<float> gu = rows_of(rows, 2 * inter, rng);
  Buffer gate_up = gpu->alloc(DType::kBF16, rows, 2 * inter);
  gpu->upload(gate_up, gu.data(), DType::kF32);
  Buffer q = gpu->alloc(DType::kF8E4M3, rows, inter), scale = gpu->alloc(DType::kF32, rows, 1);
  gpu->gated_activation(gate_up, tc.act, q, scale);
  const std::vector<float> gq = download(*gpu, q), gs = download(*gpu, scale);
  int64_t off_by_noise = 0;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> p(inter);
    float amax = 0.0f;
    for (int64_t c = 0; c < inter; ++c) {
      p[c] = host_act(tc.act, gu[r * 2 * inter + c], gu[r * 2 * inter + inter + c]);
      amax = std::max(amax, std::fabs(p[c]));
    }
    ASSERT_NEAR(gs[r], amax / 448.0f, 1e-5 * amax / 448.0f + 1e-30) << "row " << r;
    const float inv = gs[r] > 0 ? 1.0f / gs[r] : 0.0f;
    for (int64_t c = 0; c < inter; ++c) {
      const double v = double(p[c]) * inv, code = gq[r * inter + c];
      ASSERT_TRUE(std::isfinite(code)) << "row " << r << " col " << c;
      ASSERT_LE(std::fabs(code), 448.0);
      // One e4m3 step around v is at most 2^-3 |v| (normal) or 2^-9 (subnormal): the code is
      // within half a step, plus 1e-4 relative for the fp32 differences.
      const double half_step = std::max(std::fabs(v) / 16.0, 1.0 / 1024.0);
      ASSERT_LE(std::fabs(code - v), half_step * (1 + 1e-3) + 1e-4 * std::fabs(v))
          << "row " << r << " col " << c << " v " << v << " code " << code;
      if (std::fabs(code - v) > half_step * 0.999) ++off_by_noise;
    }
  }
  EXPECT_LE(off_by_noise, rows * inter / 1000) << "too many codes at a half-step distance";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Fp8FusedActivation,
    ::testing::Values(ActCase{3072, Activation::kSiLU}, ActCase{12288, Activation::kSiLU},
                      ActCase{17000, Activation::kSiLU}, ActCase{33000, Activation::kSiLU},
                      ActCase{1001, Activation::kGeluTanh}, ActCase{2048, Activation::kGeluTanh}),
    [](const auto& info) {
      return std::to_string(info.param.inter) + "_" + activation_name(info.param.act);
    });

TEST(Fp8Fused, BadScaleArgumentsAreErrors) {
  RADIX_REQUIRE_GPU();
  auto gpu = gpu_backend();
  Buffer x = gpu->alloc(DType::kF32, 4, 64), w = gpu->alloc(DType::kBF16, 1, 64);
  Buffer q = gpu->alloc(DType::kF8E4M3, 4, 64), s3 = gpu->alloc(DType::kF32, 3, 1);
  Buffer y = gpu->alloc(DType::kBF16, 4, 64), s4 = gpu->alloc(DType::kF32, 4, 1);
  EXPECT_THROW(gpu->rms_norm(x, w, 1e-6f, q), BackendError);                          // no scales
  EXPECT_THROW(gpu->rms_norm(x, w, 1e-6f, q, NormWeight::kPlain, s3), BackendError);  // 3 of 4
  EXPECT_THROW(gpu->rms_norm(x, w, 1e-6f, y, NormWeight::kPlain, s4), BackendError);  // bf16 out
  Buffer gu = gpu->alloc(DType::kBF16, 4, 128);
  EXPECT_THROW(gpu->gated_activation(gu, Activation::kSiLU, q), BackendError);
  EXPECT_THROW(gpu->gated_activation(gu, Activation::kSiLU, y, s4), BackendError);
}

}  // namespace
}  // namespace radix::cuda::testing
