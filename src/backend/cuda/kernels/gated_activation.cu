#include <algorithm>

#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/fp8_store.cuh"
#include "backend/cuda/kernels/gated_activation.cuh"

namespace radix::cuda {
namespace {

using detail::Bf16x8;

template <GateActivation kAct>
__device__ __forceinline__ float act_mul(float g, float u) {
  if constexpr (kAct == GateActivation::kSilu) {
    return g / (1.0f + __expf(-g)) * u;
  } else {
    // transformers' gelu_pytorch_tanh; tanhf (not tanh.approx): the kernel is bandwidth-bound.
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    const float inner = kSqrt2OverPi * fmaf(0.044715f * g, g * g, g);
    return 0.5f * g * (1.0f + tanhf(inner)) * u;
  }
}

// A flat grid-stride loop over (row, chunk) with kVec elements per chunk.
template <GateActivation kAct, int kVec>
__global__ void gated_activation_kernel(const bf16* __restrict__ gate_up, int64_t in_stride,
                                        bf16* __restrict__ out, int64_t out_stride, int64_t rows,
                                        int inter) {
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
      for (int i = 0; i < 8; ++i) r[i] = act_mul<kAct>(gv[i], uv[i]);
      reinterpret_cast<Bf16x8*>(y)[c] = detail::pack(r);
    } else {
      y[c] = __float2bfloat16(act_mul<kAct>(__bfloat162float(g[c]), __bfloat162float(u[c])));
    }
  }
}

// Chunk c of act(gate) * up for the row at g (gate) / g + inter (up), as floats.
template <GateActivation kAct, int kVec>
__device__ __forceinline__ void act_chunk(const bf16* g, int inter, int c, float (&r)[kVec]) {
  float gv[kVec], uv[kVec];
  detail::load<kVec>(g + c * kVec, gv);
  detail::load<kVec>(g + inter + c * kVec, uv);
#pragma unroll
  for (int i = 0; i < kVec; ++i) r[i] = act_mul<kAct>(gv[i], uv[i]);
}

// The e4m3 form: one block per row (a row's amax needs the whole row), in two passes over
// gate_up: the fp32 products' amax, then the products again, quantised (rounding as
// quantize_e4m3_rows, from the fp32 products, no bf16 rounding in between). Holding the row in
// registers instead was measured slower on the H200 (8B: 13.3 ms against 7.6 for the bf16
// kernel, both with 768 threads a row or 256 threads of 8 chunks): it needs 48-80 registers a
// thread, which leaves one to three blocks, 768 threads, per SM and nothing to overlap a block's
// reductions with. Two passes need ~34 registers (three 512-thread blocks per SM), and the second
// pass reads a row the first has just brought into L2 (~20 MB of rows in flight on 132 SMs); even
// from DRAM it moves fewer bytes per SM-second than the measured variants. Not yet timed on the
// H200 (docs/cuda.md, "fp8").
template <GateActivation kAct, int kVec>
__global__ void gated_activation_e4m3_kernel(const bf16* __restrict__ gate_up, int64_t in_stride,
                                             uint8_t* __restrict__ out, int64_t out_stride,
                                             float* __restrict__ out_scale, int inter) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const bf16* g = gate_up + row * in_stride;
  uint8_t* y = out + row * out_stride;
  const int chunks = inter / kVec;
  float amax = 0.0f;
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    float r[kVec];
    act_chunk<kAct, kVec>(g, inter, c, r);
    amax = detail::abs_max<kVec>(r, amax);
  }
  amax = detail::block_max(amax, scratch);
  const float inv = detail::e4m3_inverse_scale(amax);
  if (threadIdx.x == 0) out_scale[row] = detail::e4m3_scale(amax);
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    float r[kVec];
    act_chunk<kAct, kVec>(g, inter, c, r);
    detail::store_e4m3<kVec>(y + c * kVec, r, inv);
  }
}

template <GateActivation kAct>
void launch_e4m3(bool vec, const bf16* gate_up, int64_t in_stride, uint8_t* out, int64_t out_stride,
                 float* out_scale, int64_t rows, int inter, cudaStream_t stream) {
  const unsigned grid = static_cast<unsigned>(rows);
  const int chunks = vec ? inter / 8 : inter;
  const int threads = std::min(512, std::max(32, (chunks + 31) / 32 * 32));
  if (vec) {
    gated_activation_e4m3_kernel<kAct, 8>
        <<<grid, threads, 0, stream>>>(gate_up, in_stride, out, out_stride, out_scale, inter);
  } else {
    gated_activation_e4m3_kernel<kAct, 1>
        <<<grid, threads, 0, stream>>>(gate_up, in_stride, out, out_stride, out_scale, inter);
  }
}

template <GateActivation kAct, int kVec>
cudaError_t launch(const bf16* gate_up, int64_t in_stride, bf16* out, int64_t out_stride,
                   int64_t rows, int inter, cudaStream_t stream) {
  const int64_t total = rows * (inter / kVec);
  constexpr int kThreads = 256;
  int64_t blocks = (total + kThreads - 1) / kThreads;
  // Enough blocks to fill any current GPU many times over; the loop strides past the rest.
  if (blocks > 65536) blocks = 65536;
  gated_activation_kernel<kAct, kVec><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      gate_up, in_stride, out, out_stride, rows, inter);
  return cudaGetLastError();
}

template <GateActivation kAct>
cudaError_t launch_vec(bool vec, const bf16* gate_up, int64_t in_stride, bf16* out,
                       int64_t out_stride, int64_t rows, int inter, cudaStream_t stream) {
  return vec ? launch<kAct, 8>(gate_up, in_stride, out, out_stride, rows, inter, stream)
             : launch<kAct, 1>(gate_up, in_stride, out, out_stride, rows, inter, stream);
}

}  // namespace

cudaError_t gated_activation(GateActivation act, const bf16* gate_up, int64_t in_stride, bf16* out,
                             int64_t out_stride, int64_t rows, int inter, cudaStream_t stream) {
  if (rows < 0 || inter <= 0 || in_stride < 2 * static_cast<int64_t>(inter) || out_stride < inter) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  const bool vec = inter % 8 == 0 && in_stride % 8 == 0 && out_stride % 8 == 0 &&
                   detail::aligned16(gate_up) && detail::aligned16(out);
  switch (act) {
    case GateActivation::kSilu:
      return launch_vec<GateActivation::kSilu>(vec, gate_up, in_stride, out, out_stride, rows,
                                               inter, stream);
    case GateActivation::kGeluTanh:
      return launch_vec<GateActivation::kGeluTanh>(vec, gate_up, in_stride, out, out_stride, rows,
                                                   inter, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t gated_activation_e4m3(GateActivation act, const bf16* gate_up, int64_t in_stride,
                                  uint8_t* out, int64_t out_stride, float* out_scale, int64_t rows,
                                  int inter, cudaStream_t stream) {
  if (rows < 0 || inter <= 0 || rows > INT32_MAX || in_stride < 2 * static_cast<int64_t>(inter) ||
      out_stride < inter || out_scale == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  const bool vec = inter % 8 == 0 && in_stride % 8 == 0 && out_stride % 8 == 0 &&
                   detail::aligned16(gate_up) && detail::aligned8(out);
  switch (act) {
    case GateActivation::kSilu:
      launch_e4m3<GateActivation::kSilu>(vec, gate_up, in_stride, out, out_stride, out_scale, rows,
                                         inter, stream);
      return cudaGetLastError();
    case GateActivation::kGeluTanh:
      launch_e4m3<GateActivation::kGeluTanh>(vec, gate_up, in_stride, out, out_stride, out_scale,
                                             rows, inter, stream);
      return cudaGetLastError();
  }
  return cudaErrorInvalidValue;
}

}  // namespace radix::cuda
