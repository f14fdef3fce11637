// How radix launches its kernels: with programmatic dependent launch (PDL) on Hopper and newer.
//
// A forward is hundreds of short kernels in one stream; between two of them the GPU idles while
// the second is set up (about a microsecond, measured as the gaps between the kernels of the
// 64-row stream forward, docs/cuda.md). Launched with PDL, a kernel's blocks may be put on the
// GPU before its predecessor has finished, so that set-up overlaps the predecessor's tail. The
// price is a contract every kernel launched through launch_kernel() keeps: it runs
// wait_for_predecessor() before it touches global memory (that waits until the previous kernel
// in the stream has finished and its writes are visible), and then calls allow_successor() to let
// the next kernel's blocks be placed early. Kernels of other libraries (cuBLASLt) are launched
// without PDL and wait for everything before them as usual.
#pragma once

#include <cuda_runtime.h>

#include <initializer_list>
#include <utility>

namespace radix::cuda {

// Blocks until the kernel before this one in the stream has completed and its memory is visible
// (a no-op when the kernel was launched without PDL). Every kernel launched through
// launch_kernel() calls it first.
__device__ __forceinline__ void wait_for_predecessor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel in the stream, if launched with PDL, place its blocks now: they wait in
// wait_for_predecessor() until this kernel has finished. Issued once every block of this kernel
// has started, so it never delays this kernel's own blocks.
__device__ __forceinline__ void allow_successor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Both, in order: the first statement of every kernel launched through launch_kernel().
__device__ __forceinline__ void begin_kernel() {
  wait_for_predecessor();
  allow_successor();
}

namespace detail {
// Whether launches on the current device use PDL: compute capability 9.0 or newer, radix's device
// code built for it (a build for an older architecture has no griddepcontrol and must not be
// launched early), and RADIX_CUDA_PDL not "0". Decided once per device.
bool pdl_enabled();
}  // namespace detail

// kernel<<<grid, block, shared_bytes, stream>>>(args...) with the launch attributes `extra` (a
// cluster shape, say) and PDL where detail::pdl_enabled(). Returns the launch's error.
template <typename... Params, typename... Args>
cudaError_t launch_kernel_with(std::initializer_list<cudaLaunchAttribute> extra,
                               void (*kernel)(Params...), dim3 grid, dim3 block,
                               size_t shared_bytes, cudaStream_t stream, Args&&... args) {
  constexpr size_t kMaxAttributes = 4;
  cudaLaunchAttribute attributes[kMaxAttributes];
  unsigned count = 0;
  for (const cudaLaunchAttribute& a : extra) {
    if (count + 1 >= kMaxAttributes) return cudaErrorInvalidValue;
    attributes[count++] = a;
  }
  if (detail::pdl_enabled()) {
    attributes[count] = cudaLaunchAttribute{};
    attributes[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[count].val.programmaticStreamSerializationAllowed = 1;
    ++count;
  }
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = count > 0 ? attributes : nullptr;
  config.numAttrs = count;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

// kernel<<<grid, block, shared_bytes, stream>>>(args...), with PDL where detail::pdl_enabled().
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                          cudaStream_t stream, Args&&... args) {
  return launch_kernel_with({}, kernel, grid, block, shared_bytes, stream,
                            std::forward<Args>(args)...);
}

}  // namespace radix::cuda
