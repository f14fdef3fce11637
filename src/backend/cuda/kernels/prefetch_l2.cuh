// Pulling a range of device memory into L2 ahead of its use. On a small batch a projection is a
// stream of its weights, while the attention before it (64 new rows against 2,048 cached keys,
// say) is bound by latency and leaves the memory system idle; asking for the next projection's
// weights then overlaps their transfer with that attention (docs/cuda.md, "Weights pulled into
// L2 on small batches").
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace radix::cuda {

// Asks the memory system to bring the 16-byte-aligned interior of [p, p + bytes) into L2 and
// returns once the requests are queued: a hint that changes no result (lines may be evicted
// before they are read). Any range may be named, also one that the kernel before this one in the
// stream is still writing: L2 is where device memory is kept coherent, so a line fetched early
// is updated by a later write like any other. bytes may be 0.
cudaError_t prefetch_l2(const void* p, size_t bytes, cudaStream_t stream);

}  // namespace radix::cuda
