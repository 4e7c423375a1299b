# Which instructions the CPU code of ggml may use.
#
# OHAI_NATIVE=ON (default): tuned for the build machine (-march=native), minus Intel AMX unless
#   OHAI_AMX=ON. Some hypervisors advertise AMX (amx_tile/amx_int8 in /proc/cpuinfo, and the
#   kernel grants the tile permission) yet fault as soon as two threads use tile registers:
#   ggml's AMX kernels then kill the process with SIGILL on the first prompt batch. AMX only
#   helps prompt processing of a few quantized types on real Sapphire Rapids (or newer) iron,
#   so it is an explicit opt-in (see DEVELOPERS.md for what it gains where it works).
# OHAI_NATIVE=OFF: portable. OHAI_CPU_LEVEL picks the instruction-set level:
#   x86-64-v2 (SSE4.2), x86-64-v3 (AVX2, FMA, F16C, BMI2; the default), x86-64-v4 (v3 + AVX-512
#   F/CD/VL/DQ/BW); on arm an -march value for GGML_CPU_ARM_ARCH, e.g. armv8-a (the default:
#   the compiler's baseline) or armv8.2-a+dotprod+fp16 (Cortex-A55); 32-bit arm adds
#   OHAI_ARM_FPU (neon-vfpv4) for all code. Cross builds (cmake/cross.cmake) are always portable.
# Whatever the choice, the engine refuses to start on a CPU that lacks an instruction set the
# build uses (cpu_features.cpp) instead of dying on the first illegal instruction.

option(OHAI_AMX "let native x86 builds use Intel AMX (faults on some virtual machines; see DEVELOPERS.md)" OFF)
set(OHAI_CPU_LEVEL "" CACHE STRING
    "portable builds (OHAI_NATIVE=OFF): x86-64-v2 | x86-64-v3 | x86-64-v4, or an arm -march value; empty = default")

if (CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86|x86)$")
    set(OHAI_CPU_FAMILY x86)
elseif (CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64|arm.*)$")
    set(OHAI_CPU_FAMILY arm)
else()
    set(OHAI_CPU_FAMILY other)
endif()

if (OHAI_NATIVE)
    if (OHAI_CPU_LEVEL)
        message(FATAL_ERROR "ohai: OHAI_CPU_LEVEL=${OHAI_CPU_LEVEL} is for portable builds; set OHAI_NATIVE=OFF too")
    endif()
    set(OHAI_CPU_TARGET native)
    set(GGML_NATIVE ON CACHE BOOL "" FORCE)
else()
    set(GGML_NATIVE OFF CACHE BOOL "" FORCE)
    set(_level "${OHAI_CPU_LEVEL}")
    if (OHAI_CPU_FAMILY STREQUAL "x86")
        if (_level STREQUAL "")
            set(_level x86-64-v3)
        endif()
        # ggml's per-extension switches, by level.
        set(_v2 OFF)
        set(_v3 OFF)
        set(_v4 OFF)
        if (_level STREQUAL "x86-64-v2")
            set(_v2 ON)
        elseif (_level STREQUAL "x86-64-v3")
            set(_v2 ON)
            set(_v3 ON)
        elseif (_level STREQUAL "x86-64-v4")
            set(_v2 ON)
            set(_v3 ON)
            set(_v4 ON)
        else()
            message(FATAL_ERROR "ohai: unknown x86 OHAI_CPU_LEVEL '${_level}' (x86-64-v2, x86-64-v3 or x86-64-v4)")
        endif()
        set(GGML_SSE42 ${_v2} CACHE BOOL "" FORCE)
        foreach(_ext AVX AVX2 FMA F16C BMI2)
            set(GGML_${_ext} ${_v3} CACHE BOOL "" FORCE)
        endforeach()
        set(GGML_AVX512 ${_v4} CACHE BOOL "" FORCE)
        set(_amx OFF)
        if (OHAI_AMX)
            if (NOT _v4)
                message(FATAL_ERROR "ohai: OHAI_AMX=ON in a portable build needs OHAI_CPU_LEVEL=x86-64-v4")
            endif()
            set(_amx ON)
        endif()
        # AMX kernels need AVX512-VNNI; neither is part of any x86-64 level.
        foreach(_ext AVX512_VNNI AMX_TILE AMX_INT8 AMX_BF16)
            set(GGML_${_ext} ${_amx} CACHE BOOL "" FORCE)
        endforeach()
        foreach(_ext AVX_VNNI AVX512_VBMI AVX512_BF16)
            set(GGML_${_ext} OFF CACHE BOOL "" FORCE)
        endforeach()
    elseif (OHAI_CPU_FAMILY STREQUAL "arm")
        # Empty: the compiler's own baseline for the target (armv8-a on aarch64).
        set(GGML_CPU_ARM_ARCH "${_level}" CACHE STRING "" FORCE)
        if (_level STREQUAL "")
            set(_level baseline)
        endif()
        if (CMAKE_SIZEOF_VOID_P EQUAL 4)
            # 32-bit arm: -march says nothing about the FPU, and compilers default to VFPv3 or no FPU
            # at all. NEON with VFPv4 (FMA) is what every Cortex-A7 and later offers, ARMv8 cores in
            # AArch32 state too (RK3568's Cortex-A55 under a 32-bit OpenHarmony image). For all code.
            set(OHAI_ARM_FPU "neon-vfpv4" CACHE STRING
                "32-bit arm portable builds: the -mfpu value for all code (empty: the compiler's default)")
            if (OHAI_ARM_FPU)
                # Linking with the same flags lets the compiler driver pick the matching libraries
                # (the SDK's clang has a multilib per float ABI and FPU).
                add_compile_options(-mfpu=${OHAI_ARM_FPU})
                add_link_options(-mfpu=${OHAI_ARM_FPU})
                # The soft-float ABI (clang's default for arm-linux-ohos) forbids FP instructions;
                # softfp keeps its calling convention (OpenHarmony's armeabi-v7a ABI) and allows them.
                include(CheckCSourceCompiles)
                check_c_source_compiles("#ifdef __SOFTFP__\n#error soft float\n#endif\nint main(void) { return 0; }"
                                        OHAI_ARM_FP_ABI_ALLOWS_FPU)
                if (NOT OHAI_ARM_FP_ABI_ALLOWS_FPU)
                    add_compile_options(-mfloat-abi=softfp)
                    add_link_options(-mfloat-abi=softfp)
                endif()
            endif()
        endif()
    elseif (NOT _level STREQUAL "")
        message(FATAL_ERROR "ohai: OHAI_CPU_LEVEL is not supported on ${CMAKE_SYSTEM_PROCESSOR}")
    endif()
    set(OHAI_CPU_TARGET "${_level}")
endif()

# Called once the ggml-cpu target exists.
function(ohai_finish_cpu_target)
    if (OHAI_NATIVE AND OHAI_CPU_FAMILY STREQUAL "x86" AND NOT OHAI_AMX)
        include(CheckCCompilerFlag)
        check_c_compiler_flag(-mno-amx-tile OHAI_HAS_NO_AMX_FLAG)
        if (OHAI_HAS_NO_AMX_FLAG)
            # An explicit -mno-* wins over -march=native whatever the order on the command line.
            target_compile_options(ggml-cpu PRIVATE -mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
        endif()
    endif()
    set(_amx_built OFF)
    if (OHAI_AMX AND OHAI_CPU_FAMILY STREQUAL "x86")
        set(_amx_built ON)
    endif()
    set_property(GLOBAL PROPERTY OHAI_AMX_BUILT ${_amx_built})
endfunction()

# Compiles `source` (a file of the engine target) with exactly ggml-cpu's instruction-set flags,
# so that its predefined macros (__AVX2__, __ARM_FEATURE_DOTPROD, ...) say what ggml may execute.
function(ohai_compile_like_ggml_cpu target source)
    get_target_property(_opts ggml-cpu COMPILE_OPTIONS)
    get_target_property(_defs ggml-cpu COMPILE_DEFINITIONS)
    set(_flags "")
    foreach(_o IN LISTS _opts)
        # -m selects instruction sets; on arm ggml also -U/-D's feature macros it turned off.
        if (_o MATCHES "^-[mUD]" AND NOT _o MATCHES "^\\$<")
            list(APPEND _flags "${_o}")
        endif()
    endforeach()
    set_source_files_properties(${source} PROPERTIES COMPILE_OPTIONS "${_flags}")
    get_property(_amx GLOBAL PROPERTY OHAI_AMX_BUILT)
    if (_amx)
        set(_amx 1)
    else()
        set(_amx 0)
    endif()
    set(_native 0)
    if (OHAI_NATIVE)
        set(_native 1)
    endif()
    target_compile_definitions(${target} PRIVATE
        OHAI_BUILD_NATIVE=${_native} OHAI_BUILD_AMX=${_amx} OHAI_BUILD_CPU_TARGET="${OHAI_CPU_TARGET}")
endfunction()
