#include <stdexcept>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#if defined(RADIX_HAVE_CUDA)
#include "backend/cuda/cuda_backend.h"
#endif

namespace radix {

std::unique_ptr<Backend> create_backend(const BackendOptions& options) {
  const std::string& device = options.device;
  if (device == "cpu") return make_cpu_backend(options.threads);
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
#if defined(RADIX_HAVE_CUDA)
    return make_cuda_backend(options);
#else
    throw std::runtime_error("device '" + device +
                             "' needs a radix built with CUDA (configure with -DRADIX_CUDA=ON)");
#endif
  }
  throw std::invalid_argument("unknown device '" + device + "' (expected cpu, cuda or cuda:N)");
}

}  // namespace radix
