// The forward's extension point for the prefix cache (src/cache, docs/prefix_cache.md): when a
// batch's rows continue prefixes computed by earlier batches, the hook runs each layer's
// attention in place of Backend::attention, adding the cached keys and storing the new ones.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace radix {

class PrefixHook {
 public:
  virtual ~PrefixHook() = default;
  // Called once by the forward before anything else of the hook's: the forward runs `rows` rows,
  // its attention on the flat tokens when `flat` (the scatter mode) and on the rows otherwise,
  // the plan's and, when the forward is recorded (docs/cuda.md "Recorded forwards"), padding rows
  // after them, which see no cached key and store nothing. Returns the key of everything the
  // hook's ops will be given besides the contents of device memory (buffer addresses, row counts,
  // branches), so that a recording of a forward through this hook replays correctly for any
  // later hook with the same key; empty when the hook cannot be recorded, in which case the
  // forward runs op by op on the plan's rows alone.
  virtual std::vector<uint64_t> prepare(int64_t rows, bool flat) {
    (void)rows;
    (void)flat;
    return {};
  }
  // Whether prepare may be given more rows than the plan's (a hook that pads).
  virtual bool recordable() const { return false; }
  // Layer `layer`'s attention. `rows`: the plan's rows of this layer's projected and rotated
  // q/k/v (every row, padding included; the new K/V come from here). `qkv`, `mask`, `out`: what
  // Backend::attention would be given; its rows are the flat tokens when `flat` (scatter mode),
  // else the first rows of `rows`.
  virtual void attend(int32_t layer, const Tensor& rows, const Tensor& qkv,
                      const AttentionShape& shape, const AttentionMask& mask, const Tensor& out,
                      bool flat) = 0;
};

}  // namespace radix
