// The reference backend: fp32 storage and math on the host, OpenBLAS sgemm for linear, OpenMP
// across rows and heads.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace radix {

// threads <= 0: the OpenMP default.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace radix
