// Checked calls for the CUDA runtime and cuBLAS(Lt): a failure becomes a CudaError naming the
// call, the file and the line, so a bad launch in the middle of a forward is reported where it
// happened instead of as a sticky error three kernels later.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace radix::cuda {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_cuda_error(const char* call, const char* what, const char* file,
                                          int line) {
  throw CudaError(std::string("CUDA error: ") + what + " in `" + call + "` at " + file + ":" +
                  std::to_string(line));
}

}  // namespace radix::cuda

// RADIX_CUDA_CHECK(cudaMalloc(&p, n)); also for the cudaError_t our kernels return.
#define RADIX_CUDA_CHECK(call)                                                            \
  do {                                                                                    \
    const cudaError_t radix_status_ = (call);                                             \
    if (radix_status_ != cudaSuccess) {                                                   \
      ::radix::cuda::throw_cuda_error(#call, cudaGetErrorString(radix_status_), __FILE__, \
                                      __LINE__);                                          \
    }                                                                                     \
  } while (0)

#define RADIX_CUBLAS_CHECK(call)                                                               \
  do {                                                                                         \
    const cublasStatus_t radix_status_ = (call);                                               \
    if (radix_status_ != CUBLAS_STATUS_SUCCESS) {                                              \
      ::radix::cuda::throw_cuda_error(#call, cublasLtGetStatusString(radix_status_), __FILE__, \
                                      __LINE__);                                               \
    }                                                                                          \
  } while (0)
