// Builds hot loops for several x86 feature levels and picks one at load time (GCC function
// multi-versioning), so a generic build still uses AVX-512 or AVX+FMA where the machine has them.
// Features, not "arch=" names: those dispatch on the CPU model and an AMD CPU matches none.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__)
#define RADIX_CPU_CLONES __attribute__((target_clones("default", "fma", "avx512f")))
#else
#define RADIX_CPU_CLONES
#endif
