#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/swiglu.cuh"

namespace radix::cuda {
namespace {

using detail::Bf16x8;

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + __expf(-g)) * u; }

// A flat grid-stride loop over (row, chunk) with kVec elements per chunk.
template <int kVec>
__global__ void swiglu_kernel(const bf16* __restrict__ gate_up, int64_t in_stride,
                              bf16* __restrict__ out, int64_t out_stride, int64_t rows, int inter) {
  const int chunks = inter / kVec;
  const int64_t total = rows * chunks;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = t / chunks;
    const int c = static_cast<int>(t - row * chunks);
    const bf16* g = gate_up + row * in_stride;
    const bf16* u = g + inter;
    bf16* y = out + row * out_stride;
    if constexpr (kVec == 8) {
      float gv[8], uv[8], r[8];
      detail::unpack(reinterpret_cast<const Bf16x8*>(g)[c], gv);
      detail::unpack(reinterpret_cast<const Bf16x8*>(u)[c], uv);
#pragma unroll
      for (int i = 0; i < 8; ++i) r[i] = silu_mul(gv[i], uv[i]);
      reinterpret_cast<Bf16x8*>(y)[c] = detail::pack(r);
    } else {
      y[c] = __float2bfloat16(silu_mul(__bfloat162float(g[c]), __bfloat162float(u[c])));
    }
  }
}

template <int kVec>
cudaError_t launch(const bf16* gate_up, int64_t in_stride, bf16* out, int64_t out_stride,
                   int64_t rows, int inter, cudaStream_t stream) {
  const int64_t total = rows * (inter / kVec);
  constexpr int kThreads = 256;
  int64_t blocks = (total + kThreads - 1) / kThreads;
  // Enough blocks to fill any current GPU many times over; the loop strides past the rest.
  if (blocks > 65536) blocks = 65536;
  swiglu_kernel<kVec><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      gate_up, in_stride, out, out_stride, rows, inter);
  return cudaGetLastError();
}

}  // namespace

cudaError_t swiglu(const bf16* gate_up, int64_t in_stride, bf16* out, int64_t out_stride,
                   int64_t rows, int inter, cudaStream_t stream) {
  if (rows < 0 || inter <= 0 || in_stride < 2 * static_cast<int64_t>(inter) || out_stride < inter) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  const bool vec = inter % 8 == 0 && in_stride % 8 == 0 && out_stride % 8 == 0 &&
                   detail::aligned16(gate_up) && detail::aligned16(out);
  return vec ? launch<8>(gate_up, in_stride, out, out_stride, rows, inter, stream)
             : launch<1>(gate_up, in_stride, out, out_stride, rows, inter, stream);
}

}  // namespace radix::cuda
