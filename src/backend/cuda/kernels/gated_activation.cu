#include <algorithm>
#include <cstdint>

#include "backend/cuda/kernels/device_math.cuh"
#include "backend/cuda/kernels/fp8_store.cuh"
#include "backend/cuda/kernels/gated_activation.cuh"
#include "backend/cuda/kernels/launch.cuh"

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
  begin_kernel();
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
      detail::unpack(detail::load_bf16x8(g + 8 * c), gv);
      detail::unpack(detail::load_bf16x8(u + 8 * c), uv);
#pragma unroll
      for (int i = 0; i < 8; ++i) r[i] = act_mul<kAct>(gv[i], uv[i]);
      detail::store_bf16x8(y + 8 * c, detail::pack(r));
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

// The e4m3 fallback (unaligned shapes, rows too long for the fast path, GPUs without the shared
// memory) and the reference the fast path is tested and benchmarked against: one block per row,
// in two passes over gate_up: the fp32 products' amax, then the products again, quantised
// (rounding as quantize_e4m3_rows, from the fp32 products, no bf16 rounding in between). ~1.8
// TB/s on the H200 (8B: 12.8 ms against 7.6 for the bf16 kernel): the products are computed
// twice, and a block's loads stop while it reduces.
template <GateActivation kAct, int kVec>
__global__ void gated_activation_e4m3_kernel(const bf16* __restrict__ gate_up, int64_t in_stride,
                                             uint8_t* __restrict__ out, int64_t out_stride,
                                             float* __restrict__ out_scale, int inter) {
  begin_kernel();
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
void launch_e4m3_fallback(bool vec, const bf16* gate_up, int64_t in_stride, uint8_t* out,
                          int64_t out_stride, float* out_scale, int64_t rows, int inter,
                          cudaStream_t stream) {
  const unsigned grid = static_cast<unsigned>(rows);
  const int chunks = vec ? inter / 8 : inter;
  const int threads = std::min(512, std::max(32, (chunks + 31) / 32 * 32));
  if (vec) {
    launch_kernel(gated_activation_e4m3_kernel<kAct, 8>, grid, threads, 0, stream, gate_up,
                  in_stride, out, out_stride, out_scale, inter);
  } else {
    launch_kernel(gated_activation_e4m3_kernel<kAct, 1>, grid, threads, 0, stream, gate_up,
                  in_stride, out, out_stride, out_scale, inter);
  }
}

// 16 bytes from global to shared memory without passing through registers (cp.async, sm_80+;
// a plain copy before). Completion: commit_copies() closes a group, wait_copies(n) waits until
// at most n of this thread's groups are pending, and makes its copies visible to the thread.
__device__ __forceinline__ void copy16_async(uint4* smem, const void* gmem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const auto s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
#else
  *smem = *static_cast<const uint4*>(gmem);
#endif
}

__device__ __forceinline__ void commit_copies() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// n in [0, 7] (wait_group takes an immediate; n is uniform, so the switch does not diverge).
__device__ __forceinline__ void wait_copies(int n) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  switch (n) {
    case 0:
      asm volatile("cp.async.wait_group 0;\n" ::: "memory");
      break;
    case 1:
      asm volatile("cp.async.wait_group 1;\n" ::: "memory");
      break;
    case 2:
      asm volatile("cp.async.wait_group 2;\n" ::: "memory");
      break;
    case 3:
      asm volatile("cp.async.wait_group 3;\n" ::: "memory");
      break;
    case 4:
      asm volatile("cp.async.wait_group 4;\n" ::: "memory");
      break;
    case 5:
      asm volatile("cp.async.wait_group 5;\n" ::: "memory");
      break;
    case 6:
      asm volatile("cp.async.wait_group 6;\n" ::: "memory");
      break;
    default:
      asm volatile("cp.async.wait_group 7;\n" ::: "memory");
      break;
  }
#endif
}

// The e4m3 fast path: the products are computed once and held in registers through the row's
// amax, and the memory traffic never waits for the arithmetic. A persistent block takes rows
// blockIdx.x, + gridDim.x, ... (one at a time, its threads splitting the row into 8-value chunks,
// kChunks a thread); each row's gate and up chunks are copied into shared memory with cp.async
// `stages - 1` rows ahead of the one being computed, so while a block computes, reduces and
// stores a row, its next rows are already in flight (up to 48 KB a block, kE4m3StageBudget).
// Each thread copies exactly the chunks it later reads (its own shared-memory slots), so only the
// amax needs the block: no barrier guards the stages. Same products, same amax (max does not
// depend on the order) and same cast as the fallback: bit-identical output.
constexpr int kPipeMaxThreads = 512;
constexpr int kPipeMaxStages = 8;

template <GateActivation kAct, int kChunks>
__global__ void __launch_bounds__(kPipeMaxThreads)
    gated_activation_e4m3_pipelined_kernel(const bf16* __restrict__ gate_up, int64_t in_stride,
                                           uint8_t* __restrict__ out, int64_t out_stride,
                                           float* __restrict__ out_scale, int64_t rows, int inter,
                                           int stages) {
  begin_kernel();
  extern __shared__ uint4 stage_mem[];  // [stages][kChunks][gate, up][blockDim.x]
  __shared__ float scratch[32];
  const int threads = blockDim.x, t = threadIdx.x;
  const int chunks = inter / 8;
  const int64_t step = gridDim.x;
  // The thread's slot of chunk k (gate h = 0, up h = 1) in stage s: consecutive threads at
  // consecutive 16 bytes, so the 16-byte shared accesses are free of bank conflicts.
  auto slot = [&](int s, int k, int h) {
    return stage_mem + ((s * kChunks + k) * 2 + h) * threads + t;
  };
  // Copies the row into stage s (nothing past the last row) and closes the group either way, so
  // that a thread always has one group per row issued.
  auto fetch = [&](int64_t row, int s) {
    if (row < rows) {
      const bf16* g = gate_up + row * in_stride;
#pragma unroll
      for (int k = 0; k < kChunks; ++k) {
        const int c = k * threads + t;
        if (c < chunks) {
          copy16_async(slot(s, k, 0), g + 8 * c);
          copy16_async(slot(s, k, 1), g + inter + 8 * c);
        }
      }
    }
    commit_copies();
  };
  int64_t row = blockIdx.x;
  for (int s = 0; s + 1 < stages; ++s) fetch(row + s * step, s);
  for (int s = 0; row < rows; row += step, s = s + 1 == stages ? 0 : s + 1) {
    // The stage consumed by the previous row (its reads ended before the barrier in its amax)
    // takes the row stages - 1 ahead; then the current row's group is the oldest pending one.
    fetch(row + (stages - 1) * step, s == 0 ? stages - 1 : s - 1);
    wait_copies(stages - 1);
    float p[kChunks][8];
    float amax = 0.0f;
#pragma unroll
    for (int k = 0; k < kChunks; ++k) {
      if (k * threads + t < chunks) {
        // Whole uint4 loads (a Bf16x8 read member by member would be four 4-byte loads with
        // 4-way bank conflicts), then the same conversions as the fallback's.
        const uint4 graw = *slot(s, k, 0), uraw = *slot(s, k, 1);
        float gv[8], uv[8];
        detail::unpack(reinterpret_cast<const Bf16x8&>(graw), gv);
        detail::unpack(reinterpret_cast<const Bf16x8&>(uraw), uv);
#pragma unroll
        for (int i = 0; i < 8; ++i) p[k][i] = act_mul<kAct>(gv[i], uv[i]);
        amax = detail::abs_max<8>(p[k], amax);
      }
    }
    amax = detail::block_max(amax, scratch);
    const float inv = detail::e4m3_inverse_scale(amax);
    if (t == 0) out_scale[row] = detail::e4m3_scale(amax);
    uint8_t* y = out + row * out_stride;
#pragma unroll
    for (int k = 0; k < kChunks; ++k) {
      const int c = k * threads + t;
      if (c < chunks) detail::store_e4m3<8>(y + 8 * c, p[k], inv);
    }
  }
}

// A launch of the fast path for one row length: threads a block, chunks a thread, stages, the
// dynamic shared memory they take and how many blocks fit on an SM.
struct PipeShape {
  int threads = 0, chunks_per_thread = 0, stages = 0, stage_bytes = 0, max_smem = 0;
  int smem() const { return stages * stage_bytes; }
};

// Stages take up to `budget` bytes a block (kE4m3StageBudget: 48 KB, so that several blocks share
// an SM and one computes while another waits), and at least two (one row in flight while
// another is computed).
PipeShape pipe_shape(int inter, int max_smem_per_block, int budget) {
  const int chunks = inter / 8;
  for (int k : {1, 2, 3, 4, 6, 8}) {
    const int threads = ((chunks + k - 1) / k + 31) / 32 * 32;
    if (threads > kPipeMaxThreads) continue;
    const int stage_bytes = k * 2 * threads * 16;
    const int stages = std::min(kPipeMaxStages, std::max(2, budget / stage_bytes));
    if (stages * stage_bytes > max_smem_per_block) return {};
    return {threads, k, stages, stage_bytes, max_smem_per_block};
  }
  return {};
}

// Launches the fast path for one row length; false, with nothing launched and the runtime's
// last error cleared, where this GPU cannot take the shape (the caller runs the fallback).
template <GateActivation kAct, int kChunks>
bool launch_pipelined(PipeShape shape, const bf16* gate_up, int64_t in_stride, uint8_t* out,
                      int64_t out_stride, float* out_scale, int64_t rows, int inter, int sm_count,
                      cudaStream_t stream) {
  auto* kernel = gated_activation_e4m3_pipelined_kernel<kAct, kChunks>;
  // The dynamic shared memory a block may take: the device's opt-in limit less the kernel's
  // static shared memory (the runtime refuses more). Set to that same value on every call, so
  // that launches of other shapes from other threads never see a smaller one.
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  const int avail = shape.max_smem - static_cast<int>(attr.sharedSizeBytes);
  if (shape.smem() > avail) return false;
  auto fits = [&](int* per_sm) {
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(per_sm, kernel, shape.threads,
                                                         shape.smem()) == cudaSuccess &&
           *per_sm >= 1;
  };
  int per_sm = 0;
  // All of the SM's L1/shared split to shared memory: the copies bypass L1 (cp.async.cg).
  bool ok = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, avail) ==
                cudaSuccess &&
            cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 cudaSharedmemCarveoutMaxShared) == cudaSuccess &&
            fits(&per_sm);
  // Where registers leave room for one block an SM only, that block takes all the stages the
  // shared memory holds, to keep as many rows in flight.
  const int most = std::min(kPipeMaxStages, avail / shape.stage_bytes);
  if (ok && per_sm == 1 && most > shape.stages) {
    shape.stages = most;
    ok = fits(&per_sm);
  }
  if (!ok) {
    (void)cudaGetLastError();
    return false;
  }
  const int64_t grid = std::min<int64_t>(rows, int64_t{per_sm} * sm_count);
  launch_kernel(kernel, static_cast<unsigned>(grid), shape.threads, shape.smem(), stream, gate_up,
                in_stride, out, out_stride, out_scale, rows, inter, shape.stages);
  return true;
}

template <GateActivation kAct>
bool launch_e4m3_fast(const PipeShape& shape, const bf16* gate_up, int64_t in_stride, uint8_t* out,
                      int64_t out_stride, float* out_scale, int64_t rows, int inter, int sm_count,
                      cudaStream_t stream) {
  switch (shape.chunks_per_thread) {
#define RADIX_PIPE_CASE(K)                                                                        \
  case K:                                                                                         \
    return launch_pipelined<kAct, K>(shape, gate_up, in_stride, out, out_stride, out_scale, rows, \
                                     inter, sm_count, stream);
    RADIX_PIPE_CASE(1)
    RADIX_PIPE_CASE(2)
    RADIX_PIPE_CASE(3)
    RADIX_PIPE_CASE(4)
    RADIX_PIPE_CASE(6)
    RADIX_PIPE_CASE(8)
#undef RADIX_PIPE_CASE
  }
  return false;
}

template <GateActivation kAct, int kVec>
cudaError_t launch(const bf16* gate_up, int64_t in_stride, bf16* out, int64_t out_stride,
                   int64_t rows, int inter, cudaStream_t stream) {
  const int64_t total = rows * (inter / kVec);
  constexpr int kThreads = 256;
  int64_t blocks = (total + kThreads - 1) / kThreads;
  // Enough blocks to fill any current GPU many times over; the loop strides past the rest.
  if (blocks > 65536) blocks = 65536;
  launch_kernel(gated_activation_kernel<kAct, kVec>, static_cast<unsigned>(blocks), kThreads, 0,
                stream, gate_up, in_stride, out, out_stride, rows, inter);
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

namespace {

cudaError_t check_e4m3_args(int64_t in_stride, int64_t out_stride, const float* out_scale,
                            int64_t rows, int inter) {
  if (rows < 0 || inter <= 0 || rows > INT32_MAX || in_stride < 2 * static_cast<int64_t>(inter) ||
      out_stride < inter || out_scale == nullptr) {
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

bool e4m3_vec_ok(const bf16* gate_up, int64_t in_stride, const uint8_t* out, int64_t out_stride,
                 int inter) {
  return inter % 8 == 0 && in_stride % 8 == 0 && out_stride % 8 == 0 &&
         detail::aligned16(gate_up) && detail::aligned8(out);
}

cudaError_t e4m3_fallback(GateActivation act, const bf16* gate_up, int64_t in_stride, uint8_t* out,
                          int64_t out_stride, float* out_scale, int64_t rows, int inter,
                          cudaStream_t stream) {
  const bool vec = e4m3_vec_ok(gate_up, in_stride, out, out_stride, inter);
  switch (act) {
    case GateActivation::kSilu:
      launch_e4m3_fallback<GateActivation::kSilu>(vec, gate_up, in_stride, out, out_stride,
                                                  out_scale, rows, inter, stream);
      return cudaGetLastError();
    case GateActivation::kGeluTanh:
      launch_e4m3_fallback<GateActivation::kGeluTanh>(vec, gate_up, in_stride, out, out_stride,
                                                      out_scale, rows, inter, stream);
      return cudaGetLastError();
  }
  return cudaErrorInvalidValue;
}

// Launches the fast path where the shape and the GPU allow it; false (nothing launched) otherwise.
bool try_e4m3_fast(GateActivation act, const bf16* gate_up, int64_t in_stride, uint8_t* out,
                   int64_t out_stride, float* out_scale, int64_t rows, int inter, int budget,
                   cudaStream_t stream) {
  if (!e4m3_vec_ok(gate_up, in_stride, out, out_stride, inter)) return false;
  int device = 0, sm_count = 0, max_smem = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
          cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  const PipeShape shape = pipe_shape(inter, max_smem, budget);
  if (shape.threads == 0) return false;
  return act == GateActivation::kSilu
             ? launch_e4m3_fast<GateActivation::kSilu>(shape, gate_up, in_stride, out, out_stride,
                                                       out_scale, rows, inter, sm_count, stream)
             : launch_e4m3_fast<GateActivation::kGeluTanh>(shape, gate_up, in_stride, out,
                                                           out_stride, out_scale, rows, inter,
                                                           sm_count, stream);
}

}  // namespace

cudaError_t gated_activation_e4m3(GateActivation act, const bf16* gate_up, int64_t in_stride,
                                  uint8_t* out, int64_t out_stride, float* out_scale, int64_t rows,
                                  int inter, cudaStream_t stream) {
  if (cudaError_t err = check_e4m3_args(in_stride, out_stride, out_scale, rows, inter);
      err != cudaSuccess) {
    return err;
  }
  if (rows == 0) return cudaSuccess;
  if (act != GateActivation::kSilu && act != GateActivation::kGeluTanh) {
    return cudaErrorInvalidValue;
  }
  if (!try_e4m3_fast(act, gate_up, in_stride, out, out_stride, out_scale, rows, inter,
                     kE4m3StageBudget, stream)) {
    return e4m3_fallback(act, gate_up, in_stride, out, out_stride, out_scale, rows, inter, stream);
  }
  return cudaGetLastError();
}

cudaError_t gated_activation_e4m3_staged(GateActivation act, const bf16* gate_up, int64_t in_stride,
                                         uint8_t* out, int64_t out_stride, float* out_scale,
                                         int64_t rows, int inter, int stage_budget,
                                         cudaStream_t stream) {
  if (cudaError_t err = check_e4m3_args(in_stride, out_stride, out_scale, rows, inter);
      err != cudaSuccess) {
    return err;
  }
  if (rows == 0) return cudaSuccess;
  if ((act != GateActivation::kSilu && act != GateActivation::kGeluTanh) || stage_budget <= 0) {
    return cudaErrorInvalidValue;
  }
  if (!try_e4m3_fast(act, gate_up, in_stride, out, out_stride, out_scale, rows, inter, stage_budget,
                     stream)) {
    return cudaErrorNotSupported;
  }
  return cudaGetLastError();
}

cudaError_t gated_activation_e4m3_fallback(GateActivation act, const bf16* gate_up,
                                           int64_t in_stride, uint8_t* out, int64_t out_stride,
                                           float* out_scale, int64_t rows, int inter,
                                           cudaStream_t stream) {
  if (cudaError_t err = check_e4m3_args(in_stride, out_stride, out_scale, rows, inter);
      err != cudaSuccess) {
    return err;
  }
  if (rows == 0) return cudaSuccess;
  return e4m3_fallback(act, gate_up, in_stride, out, out_stride, out_scale, rows, inter, stream);
}

}  // namespace radix::cuda
