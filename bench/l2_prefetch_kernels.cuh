// Helper kernels of bench/l2_prefetch_bench.cc (a C++20 host file, for radix::cuda::Gemm).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace radix::bench {

void fill_bf16(void* p, int64_t n, uint32_t seed, cudaStream_t s);
// Spins one block for about `cycles` SM clocks: the GPU busy, the memory system idle.
void wait_cycles(long long cycles, cudaStream_t s);
// cp.async.bulk.prefetch.L2 (sm_90) over [p, p + bytes) (p 16-byte aligned, bytes a multiple of
// 16): one thread a block, 256 KiB a block in requests of 32 KiB, which the SM's copy engine turns
// into L2 fetches on its own.
void bulk_prefetch(const void* p, int64_t bytes, cudaStream_t s);
// prefetch.global.L2 for every 128-byte line of [p, p + bytes).
void line_prefetch(const void* p, int64_t bytes, int blocks, cudaStream_t s);
// Loads every byte of [p, p + bytes) (a multiple of 16).
void touch(const void* p, int64_t bytes, unsigned* sink, int blocks, cudaStream_t s);

}  // namespace radix::bench
