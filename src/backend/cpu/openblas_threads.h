// OpenBLAS runs single-threaded while radix calls it, and only then.
//
// radix splits each GEMM over its own OpenMP threads; OpenBLAS's own threads on top would spin
// against them. OpenBLAS's thread count is process-wide, though (openblas_set_num_threads has no
// per-thread form before OpenBLAS 0.3.27, and Debian 12 ships 0.3.21), and radix is a library:
// setting it once at startup would silently make numpy, or anything else in the process that
// shares this OpenBLAS, single-threaded for good. So the count is changed only while a radix op
// that calls BLAS runs, and restored after it. Guards nest across threads: the first one to start
// saves the caller's count and sets 1, the last one to end restores it. Another user of the same
// OpenBLAS that runs a GEMM at that very moment does get one thread for it; nothing worse.
#pragma once

namespace radix::cpu {

class OpenblasSingleThreaded {
 public:
  OpenblasSingleThreaded();
  ~OpenblasSingleThreaded();
  OpenblasSingleThreaded(const OpenblasSingleThreaded&) = delete;
  OpenblasSingleThreaded& operator=(const OpenblasSingleThreaded&) = delete;
};

// The thread count OpenBLAS reports now (tests: it is back to the caller's after an op).
int openblas_threads();

}  // namespace radix::cpu
