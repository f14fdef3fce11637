// The prefix-cache ops' defaults: a backend that does not implement them says so by name.
#include "backend/backend.h"

namespace radix {

void Backend::prefix_attention(const Tensor&, const AttentionShape&, const AttentionMask&,
                               const PrefixKeys&, const Tensor&) {
  throw BackendError(name() + ": prefix cache not supported yet (prefix_attention)");
}

void Backend::scatter_rows(const Tensor&, const Tensor&, const Tensor&) {
  throw BackendError(name() + ": prefix cache not supported yet (scatter_rows)");
}

}  // namespace radix
