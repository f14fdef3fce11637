// The forward's extension point for the prefix cache (src/cache, docs/prefix_cache.md): when a
// batch's rows continue prefixes computed by earlier batches, the hook runs each layer's
// attention in place of Backend::attention, adding the cached keys and storing the new ones.
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace radix {

class PrefixHook {
 public:
  virtual ~PrefixHook() = default;
  // Layer `layer`'s attention. `rows`: the plan's rows of this layer's projected and rotated
  // q/k/v (every row, padding included; the new K/V come from here). `qkv`, `mask`, `out`: what
  // Backend::attention would be given; its rows are the flat tokens when `flat` (scatter mode),
  // else the first rows of `rows`.
  virtual void attend(int32_t layer, const Tensor& rows, const Tensor& qkv,
                      const AttentionShape& shape, const AttentionMask& mask, const Tensor& out,
                      bool flat) = 0;
};

}  // namespace radix
