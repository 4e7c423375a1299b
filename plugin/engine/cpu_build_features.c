/* Compiled with exactly ggml-cpu's instruction-set flags (cmake/cpu_target.cmake), so the
 * compiler's predefined macros below say which instruction sets the CPU kernels of this build
 * may execute. Data only: reading it runs on any CPU. Names follow __builtin_cpu_supports on
 * x86 and the kernel's hwcap names on arm. */
#include "cpu_build_features.h"

static const char * const kBuiltFeatures[] = {
#if defined(__x86_64__) || defined(__i386__)
#  if defined(__SSE3__)
    "sse3",
#  endif
#  if defined(__SSSE3__)
    "ssse3",
#  endif
#  if defined(__SSE4_1__)
    "sse4.1",
#  endif
#  if defined(__SSE4_2__)
    "sse4.2",
#  endif
#  if defined(__POPCNT__)
    "popcnt",
#  endif
#  if defined(__AVX__)
    "avx",
#  endif
#  if defined(__AVX2__)
    "avx2",
#  endif
#  if defined(__FMA__)
    "fma",
#  endif
#  if defined(__F16C__)
    "f16c",
#  endif
#  if defined(__BMI__)
    "bmi",
#  endif
#  if defined(__BMI2__)
    "bmi2",
#  endif
#  if defined(__AVXVNNI__)
    "avxvnni",
#  endif
#  if defined(__AVX512F__)
    "avx512f",
#  endif
#  if defined(__AVX512CD__)
    "avx512cd",
#  endif
#  if defined(__AVX512VL__)
    "avx512vl",
#  endif
#  if defined(__AVX512DQ__)
    "avx512dq",
#  endif
#  if defined(__AVX512BW__)
    "avx512bw",
#  endif
#  if defined(__AVX512VNNI__)
    "avx512vnni",
#  endif
#  if defined(__AVX512VBMI__)
    "avx512vbmi",
#  endif
#  if defined(__AVX512VBMI2__)
    "avx512vbmi2",
#  endif
#  if defined(__AVX512IFMA__)
    "avx512ifma",
#  endif
#  if defined(__AVX512BITALG__)
    "avx512bitalg",
#  endif
#  if defined(__AVX512VPOPCNTDQ__)
    "avx512vpopcntdq",
#  endif
#  if defined(__AVX512BF16__)
    "avx512bf16",
#  endif
#  if defined(__AVX512FP16__)
    "avx512fp16",
#  endif
#  if defined(__AMX_TILE__)
    "amx-tile",
#  endif
#  if defined(__AMX_INT8__)
    "amx-int8",
#  endif
#  if defined(__AMX_BF16__)
    "amx-bf16",
#  endif
#elif defined(__aarch64__) || defined(__arm__)
#  if defined(__ARM_NEON)
    "neon",
#  endif
#  if defined(__ARM_FEATURE_FMA) && defined(__arm__)
    "vfpv4",
#  endif
#  if defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
    "fp16",
#  endif
#  if defined(__ARM_FEATURE_DOTPROD)
    "dotprod",
#  endif
#  if defined(__ARM_FEATURE_MATMUL_INT8)
    "i8mm",
#  endif
#  if defined(__ARM_FEATURE_SVE)
    "sve",
#  endif
#  if defined(__ARM_FEATURE_SME)
    "sme",
#  endif
#endif
    0,
};

const char * const * ohai_cpu_build_features(void) { return kBuiltFeatures; }
