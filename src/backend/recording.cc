// Recorded work's defaults: a backend that cannot record says so by name.
#include "backend/backend.h"

namespace radix {

void Backend::begin_recording() { throw BackendError(name() + ": cannot record ops"); }

std::unique_ptr<Backend::Recording> Backend::end_recording() {
  throw BackendError(name() + ": cannot record ops");
}

void Backend::replay(const Recording&) { throw BackendError(name() + ": cannot record ops"); }

}  // namespace radix
