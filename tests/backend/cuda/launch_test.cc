#include "backend/cuda/kernels/launch.cuh"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/kernels/gather_rows.cuh"
#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

bool pdl_switched_off() {
  const char* v = std::getenv("RADIX_CUDA_PDL");
  return v != nullptr && std::strcmp(v, "0") == 0;
}

TEST(Launch, ProgrammaticLaunchIsOnFromHopperOn) {
  RADIX_REQUIRE_GPU();
  int device = 0, major = 0;
  RADIX_CUDA_CHECK(cudaGetDevice(&device));
  RADIX_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  // The CUDA build targets sm_90 (CMAKE_CUDA_ARCHITECTURES), so on a 9.x device the probe
  // kernel's code has griddepcontrol and PDL is on unless switched off.
  EXPECT_EQ(detail::pdl_enabled(), major >= 9 && !pdl_switched_off());
}

// Each kernel of a long chain reads what the one before it wrote: two buffers ping-pong through a
// row permutation. A kernel launched early that read before waiting for its predecessor would see
// rows of two steps back; pure copies, so the result is compared bit for bit.
TEST(Launch, EveryKernelOfAChainSeesItsPredecessorsWrites) {
  RADIX_REQUIRE_GPU();
  constexpr int kRows = 4096, kCols = 1024, kSteps = 200;
  std::mt19937 rng(7);
  std::vector<int32_t> perm(kRows);
  for (int i = 0; i < kRows; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<float> x0(static_cast<size_t>(kRows) * kCols);
  std::normal_distribution<float> dist;
  for (auto& v : x0) v = dist(rng);

  DeviceBuffer<float> a(x0), b(x0.size());
  DeviceBuffer<int32_t> idx(perm);
  cudaStream_t stream = nullptr;
  RADIX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (int s = 0; s < kSteps; ++s) {
    const float* src = s % 2 == 0 ? a.get() : b.get();
    float* dst = s % 2 == 0 ? b.get() : a.get();
    RADIX_CUDA_CHECK(gather_rows_f32(src, kCols, idx.get(), kRows, kCols, dst, kCols, stream));
  }
  RADIX_CUDA_CHECK(cudaStreamSynchronize(stream));
  RADIX_CUDA_CHECK(cudaStreamDestroy(stream));

  // After k steps row i holds x0's row q_k[i], with q_1 = perm and q_{k+1}[i] = q_k[perm[i]].
  std::vector<int32_t> q(perm), next(kRows);
  for (int s = 1; s < kSteps; ++s) {
    for (int i = 0; i < kRows; ++i) next[i] = q[perm[i]];
    q.swap(next);
  }
  const auto got = (kSteps % 2 == 0 ? a : b).download();
  for (int i = 0; i < kRows; ++i) {
    for (int c = 0; c < kCols; ++c) {
      ASSERT_EQ(got[static_cast<size_t>(i) * kCols + c], x0[static_cast<size_t>(q[i]) * kCols + c])
          << "row " << i << " col " << c;
    }
  }
}

}  // namespace
}  // namespace radix::cuda::testing
