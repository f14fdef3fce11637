#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/kernels/launch.cuh"

namespace radix::cuda {
namespace {

// Built like every other kernel of the backend: its compiled architecture is theirs.
__global__ void pdl_probe_kernel() { begin_kernel(); }

bool pdl_allowed_by_environment() {
  static const bool allowed = [] {
    const char* v = std::getenv("RADIX_CUDA_PDL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return allowed;
}

// Whether the current device (compute capability >= 9.0) runs code of this build that was compiled
// for 9.0 or newer: code JIT-compiled from an older PTX has no griddepcontrol.wait, so launching it
// early would let it read its predecessor's output before it is written.
bool device_supports_pdl(int device) {
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    return false;
  }
  if (major < 9) return false;
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, pdl_probe_kernel) != cudaSuccess) return false;
  return attributes.ptxVersion >= 90 && attributes.binaryVersion >= 90;
}

}  // namespace

namespace detail {

bool pdl_enabled() {
  if (!pdl_allowed_by_environment()) return false;
  // Per device: 0 not yet decided, 1 on, 2 off. Devices past 63 decide on every launch.
  static std::atomic<int> state[64] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  if (device < 64) {
    const int s = state[device].load(std::memory_order_relaxed);
    if (s != 0) return s == 1;
  }
  const bool on = device_supports_pdl(device);
  if (device < 64) state[device].store(on ? 1 : 2, std::memory_order_relaxed);
  return on;
}

}  // namespace detail
}  // namespace radix::cuda
