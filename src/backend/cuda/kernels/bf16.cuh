// The element type of device activations and weights. Host-includable: kernels' declarations use
// it, and so do the host-side backend and the tests.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace radix::cuda {

using bf16 = __nv_bfloat16;

}  // namespace radix::cuda
