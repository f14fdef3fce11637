// Builds hot loops for several x86 levels and picks one at load time (GCC function multi-
// versioning), so a generic build still uses AVX2/AVX-512 where the machine has them.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__)
#define RADIX_CPU_CLONES \
  __attribute__((target_clones("default", "arch=haswell", "arch=skylake-avx512")))
#else
#define RADIX_CPU_CLONES
#endif
