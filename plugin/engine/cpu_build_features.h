/* The instruction sets the CPU kernels of this build may execute (see cpu_build_features.c). */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* A null-terminated list of feature names, e.g. "avx2", "avx512f", "dotprod". */
const char * const * ohai_cpu_build_features(void);

#ifdef __cplusplus
}
#endif
