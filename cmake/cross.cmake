# Cross builds for OpenHarmony: the native SDK's toolchain
#     -DCMAKE_TOOLCHAIN_FILE=$OHOS_SDK/native/build/cmake/ohos.toolchain.cmake
#     -DOHOS_ARCH=arm64-v8a|armeabi-v7a -DOHOS_STL=c++_static
# (CMAKE_SYSTEM_NAME OHOS; clang + lld + musl + libc++), or cmake/toolchains/zig-*.cmake standing in for it.
# Everything OpenHarmony's C library needs is handled here, never by editing the llama.cpp tree:
#
# - _GNU_SOURCE: llama.cpp defines it only when CMAKE_SYSTEM_NAME is Linux or Android; musl hides
#   cpu_set_t, CPU_SET, pthread_*affinity_np and pipe2 without it, so OHOS gets it here.
# - pthread_setaffinity_np: missing from older OpenHarmony musl versions. ggml-cpu calls it (on the
#   calling thread only) whenever a CPU mask is set; OHAI_AFFINITY_SHIM puts our sched_setaffinity-based
#   replacement (cmake/compat/ohai_affinity.h/.c) under that name into ggml-cpu.
#   AUTO: on OHOS when the C library lacks the function; ON / OFF force it.
# - posix_spawn_file_actions_addchdir_np: only llama.cpp's common library and tools use it (the
#   vendored subprocess.h); ohai builds neither, and its own process code uses plain posix_spawn.
# - the plugin libraries: the SDK links shared libraries with --no-undefined, but the ai_engine
#   plugins leave OHOS::AI::IRequest/IResponse to the hosting process (ohai_cross_plugin_library).
# - executables are fully static (OHAI_STATIC_EXECUTABLES): one file to push to a board, no
#   dependency on the image's libc++ or musl version.
# - 32-bit arm: NEON/VFPv4 (OHAI_ARM_FPU) for all code, softfp calling convention; cmake/cpu_target.cmake.
# - no OpenMP (GGML_OPENMP OFF): ggml's own thread pool, whichever toolchain.

set(OHAI_AFFINITY_SHIM AUTO CACHE STRING
    "replace pthread_setaffinity_np in ggml-cpu: AUTO (OpenHarmony without it), ON, OFF")
set_property(CACHE OHAI_AFFINITY_SHIM PROPERTY STRINGS AUTO ON OFF)

if (CMAKE_SYSTEM_NAME STREQUAL "OHOS")
    set(OHAI_TARGET_OHOS ON)
else()
    set(OHAI_TARGET_OHOS OFF)
endif()

if (NOT CMAKE_CROSSCOMPILING)
    function(ohai_cross_finish_llama_cpp)
        if (OHAI_AFFINITY_SHIM STREQUAL "ON")
            _ohai_affinity_shim()
        endif()
    endfunction()
    function(ohai_cross_plugin_library target)
    endfunction()
else()
    message(STATUS "ohai: cross build for ${CMAKE_SYSTEM_NAME} ${CMAKE_SYSTEM_PROCESSOR} "
                   "(${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION})")
    if (OHAI_NATIVE)
        message(FATAL_ERROR "ohai: OHAI_NATIVE=ON tunes for the build machine; a cross build needs OHAI_NATIVE=OFF "
                            "and OHAI_CPU_LEVEL for the target (e.g. armv8.2-a+dotprod+fp16 for a Cortex-A55)")
    endif()
    if (OHAI_BUILD_PYTHON)
        message(FATAL_ERROR "ohai: the Python extension is not cross-built; set OHAI_BUILD_PYTHON=OFF")
    endif()
    if (OHAI_BUILD_TESTS)
        message(FATAL_ERROR "ohai: the C++ tests are not cross-built; set OHAI_BUILD_TESTS=OFF "
                            "(tests/test_cross.py runs the cross-built binaries under qemu)")
    endif()

    if (OHAI_TARGET_OHOS)
        add_compile_definitions(_GNU_SOURCE)
    endif()
    # ggml's own thread pool, as in the GN build: the SDK's LLVM ships an OpenMP runtime that zig
    # does not, and with it the SDK build would thread differently from the one tested here and
    # the plugin libraries would need libomp.so on the image.
    set(GGML_OPENMP OFF CACHE BOOL "ggml: use OpenMP (off for cross builds: ggml's thread pool)" FORCE)

    option(OHAI_STATIC_EXECUTABLES "link ohai-cli and ohai-isolate fully static" ON)
    if (OHAI_STATIC_EXECUTABLES)
        # Executables only: the plugin libraries are shared objects by nature (libc++ is static in
        # them through OHOS_STL=c++_static, and always with zig).
        add_link_options("$<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:-static>")
    endif()
    # What goes onto a board carries no symbol tables or debug information (zig's libc++ alone
    # brings 50 MB of it). Stripped when linked: dynamic symbols stay, so the plugins still export.
    if (CMAKE_BUILD_TYPE MATCHES "^(Debug|RelWithDebInfo)$")
        set(_ohai_strip_default OFF)
    else()
        set(_ohai_strip_default ON)
    endif()
    option(OHAI_STRIP "strip the cross-built executables and libraries at link time" ${_ohai_strip_default})
    if (OHAI_STRIP)
        add_link_options("LINKER:--strip-all")
    endif()

    function(ohai_cross_finish_llama_cpp)
        set(_shim "${OHAI_AFFINITY_SHIM}")
        if (_shim STREQUAL "AUTO")
            set(_shim OFF)
            if (OHAI_TARGET_OHOS)
                include(CheckSymbolExists)
                set(CMAKE_REQUIRED_DEFINITIONS -D_GNU_SOURCE)
                check_symbol_exists(pthread_setaffinity_np "pthread.h" OHAI_HAVE_PTHREAD_SETAFFINITY_NP)
                unset(CMAKE_REQUIRED_DEFINITIONS)
                if (NOT OHAI_HAVE_PTHREAD_SETAFFINITY_NP)
                    set(_shim ON)
                endif()
            endif()
        endif()
        if (_shim)
            _ohai_affinity_shim()
        endif()
    endfunction()

    # The ai_engine plugin libraries resolve IRequest/IResponse from the process that loads them.
    function(ohai_cross_plugin_library target)
        # lld and GNU ld: `-z undefs` undoes the toolchain's --no-undefined (-z defs) for this library.
        target_link_options(${target} PRIVATE "LINKER:-z,undefs")
    endfunction()
endif()

# ggml-cpu's calls of pthread_setaffinity_np go to ohai_pthread_setaffinity_np (force-included header).
function(_ohai_affinity_shim)
    set(_dir ${PROJECT_SOURCE_DIR}/cmake/compat)
    message(STATUS "ohai: ggml-cpu pins threads through sched_setaffinity (OHAI_AFFINITY_SHIM)")
    target_sources(ggml-cpu PRIVATE ${_dir}/ohai_affinity.c)
    target_compile_options(ggml-cpu PRIVATE "$<$<COMPILE_LANGUAGE:C>:SHELL:-include ${_dir}/ohai_affinity.h>")
    set_property(GLOBAL PROPERTY OHAI_AFFINITY_SHIM_BUILT ON)
endfunction()
