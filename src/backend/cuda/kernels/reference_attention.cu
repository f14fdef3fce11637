#include <type_traits>

#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/launch.cuh"
#include "backend/cuda/kernels/reference_attention.cuh"

namespace radix::cuda {
namespace {

// Lane l holds elements l, l + 32, ... below head_dim: kPer = ceil(head_dim / 32) of them.
template <int kPer>
__global__ void reference_attention_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k,
                                           const bf16* __restrict__ v, bf16* __restrict__ out,
                                           int64_t q_stride, int64_t kv_stride, int64_t out_stride,
                                           const int32_t* __restrict__ subtree_end, int rows,
                                           int num_q_heads, int group, int head_dim, float scale,
                                           float softcap, int window,
                                           const int32_t* __restrict__ positions,
                                           bool bidirectional) {
  begin_kernel();
  const int lane = threadIdx.x & 31;
  const int64_t task = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (task >= static_cast<int64_t>(rows) * num_q_heads) return;
  const int row = static_cast<int>(task / num_q_heads);
  const int head = static_cast<int>(task - static_cast<int64_t>(row) * num_q_heads);
  const int kv_head = head / group;

  float qv[kPer], acc[kPer];
  const bf16* qr = q + row * q_stride + head * head_dim;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = lane + 32 * i;
    qv[i] = c < head_dim ? __bfloat162float(qr[c]) : 0.0f;
    acc[i] = 0.0f;
  }
  float running_max = -INFINITY, denom = 0.0f;
  const int64_t row_pos = window > 0 ? positions[row] : 0;
  // Causal: keys up to the row, filtered by the interval rule. Bidirectional: the row's whole
  // sequence, the rows around it that share its sequence end.
  int first = 0;
  int last = row;
  if (bidirectional) {
    const int32_t end = subtree_end[row];
    first = row;
    while (first > 0 && subtree_end[first - 1] == end) --first;
    last = min(end, rows) - 1;
  }
  for (int key = first; key <= last; ++key) {
    if (!bidirectional && row >= subtree_end[key]) continue;
    if (window > 0 && row_pos - positions[key] >= window) continue;
    const bf16* kr = k + key * kv_stride + kv_head * head_dim;
    const bf16* vr = v + key * kv_stride + kv_head * head_dim;
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int c = lane + 32 * i;
      if (c < head_dim) dot += qv[i] * __bfloat162float(kr[c]);
    }
    float logit = detail::warp_sum(dot) * scale;
    if (softcap > 0.0f) logit = softcap * tanhf(logit / softcap);
    const float new_max = fmaxf(running_max, logit);
    const float correction = expf(running_max - new_max);
    const float p = expf(logit - new_max);
    denom = denom * correction + p;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int c = lane + 32 * i;
      if (c < head_dim) acc[i] = acc[i] * correction + p * __bfloat162float(vr[c]);
    }
    running_max = new_max;
  }
  bf16* o = out + row * out_stride + head * head_dim;
  const float inv = denom > 0.0f ? 1.0f / denom : 0.0f;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = lane + 32 * i;
    if (c < head_dim) o[c] = __float2bfloat16(acc[i] * inv);
  }
}

__global__ void causal_subtree_end_kernel(const int32_t* __restrict__ cu_seqlens, int num_seqs,
                                          int32_t* __restrict__ subtree_end) {
  begin_kernel();
  const int s = blockIdx.x;
  if (s >= num_seqs) return;
  const int32_t begin = cu_seqlens[s], end = cu_seqlens[s + 1];
  for (int32_t t = begin + threadIdx.x; t < end; t += blockDim.x) subtree_end[t] = end;
}

template <int kPer>
cudaError_t launch(const bf16* q, const bf16* k, const bf16* v, bf16* out, int64_t q_stride,
                   int64_t kv_stride, int64_t out_stride, const int32_t* subtree_end, int rows,
                   int num_q_heads, int num_kv_heads, int head_dim, float scale,
                   const ReferenceAttentionOptions& o, cudaStream_t stream) {
  const int64_t tasks = static_cast<int64_t>(rows) * num_q_heads;
  constexpr int kWarps = 4;
  launch_kernel(reference_attention_kernel<kPer>,
                static_cast<unsigned>((tasks + kWarps - 1) / kWarps), kWarps * 32, 0, stream, q, k,
                v, out, q_stride, kv_stride, out_stride, subtree_end, rows, num_q_heads,
                num_q_heads / num_kv_heads, head_dim, scale, o.softcap, o.window, o.positions,
                o.bidirectional);
  return cudaGetLastError();
}

}  // namespace

cudaError_t reference_attention(const bf16* q, const bf16* k, const bf16* v, bf16* out,
                                int64_t q_row_stride, int64_t kv_row_stride, int64_t out_row_stride,
                                const int32_t* subtree_end, int rows, int num_q_heads,
                                int num_kv_heads, int head_dim, float scale, cudaStream_t stream,
                                const ReferenceAttentionOptions& options) {
  if (rows < 0 || num_q_heads <= 0 || num_kv_heads <= 0 || num_q_heads % num_kv_heads != 0) {
    return cudaErrorInvalidValue;
  }
  if (head_dim < 2 || head_dim > 256 || head_dim % 2 != 0) return cudaErrorInvalidValue;
  if (!(options.softcap >= 0.0f) || options.window < 0 ||
      (options.window > 0 && (options.positions == nullptr || options.bidirectional))) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  const int per_lane = (head_dim + 31) / 32;
  auto run = [&](auto per) {
    return launch<decltype(per)::value>(q, k, v, out, q_row_stride, kv_row_stride, out_row_stride,
                                        subtree_end, rows, num_q_heads, num_kv_heads, head_dim,
                                        scale, options, stream);
  };
  if (per_lane <= 1) return run(std::integral_constant<int, 1>{});
  if (per_lane <= 2) return run(std::integral_constant<int, 2>{});
  if (per_lane <= 4) return run(std::integral_constant<int, 4>{});
  return run(std::integral_constant<int, 8>{});
}

cudaError_t causal_subtree_end(const int32_t* cu_seqlens, int num_seqs, int32_t* subtree_end,
                               int total_rows, cudaStream_t stream) {
  if (num_seqs < 0 || total_rows < 0) return cudaErrorInvalidValue;
  if (num_seqs == 0) return cudaSuccess;
  launch_kernel(causal_subtree_end_kernel, num_seqs, 128, 0, stream, cu_seqlens, num_seqs,
                subtree_end);
  return cudaGetLastError();
}

}  // namespace radix::cuda
