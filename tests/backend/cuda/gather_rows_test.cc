#include "backend/cuda/kernels/gather_rows.cuh"

#include <cmath>

#include "gpu_test_util.h"

namespace radix::cuda::testing {
namespace {

template <typename T>
void check_gather(int src_rows, int n, int cols, int64_t src_stride, int64_t dst_stride,
                  int offset_elems) {
  std::mt19937 rng(src_rows * 13 + n + cols + offset_elems);
  std::vector<T> src(src_rows * src_stride + offset_elems);
  std::normal_distribution<float> dist;
  for (auto& v : src) v = T(dist(rng));
  std::vector<int32_t> idx(n);
  std::uniform_int_distribution<int> pick(-1, src_rows - 1);  // -1: a zero (padding) row
  for (auto& i : idx) i = pick(rng);
  DeviceBuffer<T> d_src(src), d_dst(n * dst_stride + offset_elems);
  DeviceBuffer<int32_t> d_idx(idx);
  d_dst.poison();
  // An element offset makes the buffers misaligned for 16-byte access when offset_elems > 0.
  cudaError_t err;
  if constexpr (sizeof(T) == 2) {
    err = gather_rows(d_src.get() + offset_elems, src_stride, d_idx.get(), n, cols,
                      d_dst.get() + offset_elems, dst_stride, nullptr);
  } else {
    err = gather_rows_f32(d_src.get() + offset_elems, src_stride, d_idx.get(), n, cols,
                          d_dst.get() + offset_elems, dst_stride, nullptr);
  }
  RADIX_CUDA_CHECK(err);
  const auto dst = d_dst.download();
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < cols; ++c) {
      const float got = static_cast<float>(dst[offset_elems + i * dst_stride + c]);
      const float want =
          idx[i] < 0 ? 0.0f : static_cast<float>(src[offset_elems + idx[i] * src_stride + c]);
      ASSERT_EQ(got, want) << "row " << i << " col " << c;
    }
    for (int64_t c = cols; c < dst_stride; ++c) {
      ASSERT_TRUE(is_poison(dst[offset_elems + i * dst_stride + c]));
    }
  }
}

TEST(GatherRows, Bf16AlignedAndMisaligned) {
  RADIX_REQUIRE_GPU();
  check_gather<bf16>(129, 127, 1024, 1024, 1024, 0);
  check_gather<bf16>(1, 1, 4096, 6144, 4096, 0);
  check_gather<bf16>(127, 129, 128, 3072, 136, 0);
  check_gather<bf16>(40, 77, 1001, 1003, 1001, 1);
  check_gather<bf16>(40, 77, 1024, 1024, 1024, 3);
}

TEST(GatherRows, Fp32) {
  RADIX_REQUIRE_GPU();
  check_gather<float>(129, 127, 1024, 1024, 1024, 0);
  check_gather<float>(5, 1, 1027, 1027, 1030, 1);
}

TEST(GatherRows, ZeroRowsIsANoOp) {
  EXPECT_EQ(gather_rows(nullptr, 8, nullptr, 0, 8, nullptr, 8, nullptr), cudaSuccess);
  EXPECT_EQ(gather_rows(nullptr, 4, nullptr, 3, 8, nullptr, 8, nullptr), cudaErrorInvalidValue);
}

template <typename TO>
void check_embedding(int hidden) {
  const int vocab = 300, rows = 129;
  std::mt19937 rng(hidden);
  auto table = random_bf16(vocab * hidden, rng);
  std::vector<int32_t> ids(rows);
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  for (auto& i : ids) i = pick(rng);
  ids[0] = 0, ids[1] = vocab - 1;
  DeviceBuffer<bf16> d_table(table);
  DeviceBuffer<int32_t> d_ids(ids), d_bad(std::vector<int32_t>{0});
  DeviceBuffer<TO> d_out(rows * hidden);
  d_out.poison();
  RADIX_CUDA_CHECK(embedding_gather(d_table.get(), hidden, vocab, d_ids.get(), rows, hidden,
                                    d_out.get(), hidden, d_bad.get(), nullptr));
  const auto out = d_out.download();
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < hidden; ++c) {
      ASSERT_EQ(static_cast<float>(out[r * hidden + c]), to_float(table[ids[r] * hidden + c]))
          << r << "," << c;
    }
  }
  EXPECT_EQ(d_bad.download()[0], 0);

  // Out-of-range ids raise the flag and read nothing out of bounds (their rows become zero).
  ids[5] = vocab, ids[7] = -3;
  d_ids.upload(ids);
  d_out.poison();
  RADIX_CUDA_CHECK(embedding_gather(d_table.get(), hidden, vocab, d_ids.get(), rows, hidden,
                                    d_out.get(), hidden, d_bad.get(), nullptr));
  const auto out2 = d_out.download();
  EXPECT_EQ(d_bad.download()[0], 1);
  for (int c = 0; c < hidden; ++c) {
    ASSERT_EQ(static_cast<float>(out2[5 * hidden + c]), 0.0f);
    ASSERT_EQ(static_cast<float>(out2[7 * hidden + c]), 0.0f);
    ASSERT_EQ(static_cast<float>(out2[6 * hidden + c]), to_float(table[ids[6] * hidden + c]));
  }
}

// Gemma's scaled embedding: bf16(e * bf16(sqrt(hidden))), exactly (one product, one rounding).
template <typename TO>
void check_scaled_embedding(int hidden) {
  const int vocab = 50, rows = 67;
  std::mt19937 rng(hidden + 1);
  auto table = random_bf16(vocab * hidden, rng);
  std::vector<int32_t> ids(rows);
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  for (auto& i : ids) i = pick(rng);
  const float scale = round_bf16(std::sqrt(static_cast<float>(hidden)));
  DeviceBuffer<bf16> d_table(table);
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<TO> d_out(rows * hidden);
  d_out.poison();
  RADIX_CUDA_CHECK(embedding_gather(d_table.get(), hidden, vocab, d_ids.get(), rows, hidden,
                                    d_out.get(), hidden, nullptr, nullptr, scale));
  const auto out = d_out.download();
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < hidden; ++c) {
      const float want = round_bf16(to_float(table[ids[r] * hidden + c]) * scale);
      ASSERT_EQ(static_cast<float>(out[r * hidden + c]), want) << r << "," << c;
    }
  }
}

TEST(EmbeddingGather, ScaledAsTransformersInBf16) {
  RADIX_REQUIRE_GPU();
  check_scaled_embedding<float>(2048);
  check_scaled_embedding<float>(1001);
  check_scaled_embedding<bf16>(3584);
  check_scaled_embedding<bf16>(13);
}

TEST(EmbeddingGather, CopiesTableRowsAndFlagsBadIds) {
  RADIX_REQUIRE_GPU();
  check_embedding<float>(1024);
  check_embedding<float>(1001);
  check_embedding<bf16>(1024);
  check_embedding<bf16>(1001);
}

}  // namespace
}  // namespace radix::cuda::testing
