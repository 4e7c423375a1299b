# Cross toolchain that stands in for the OpenHarmony native SDK where the SDK is not installed:
# zig (PyPI `ziglang`, version pinned in the Makefile) is clang + musl + libc++, the same family as
# the SDK's toolchain. Not used directly: cmake/toolchains/zig-<triple>.cmake set
#   OHAI_ZIG_TARGET          zig target triple (aarch64-linux-musl, arm-linux-musleabi)
#   OHAI_ZIG_CPU             zig -mcpu value for all code, zig's spelling (generic, generic+v7a+neon+vfp4)
#   CMAKE_SYSTEM_PROCESSOR   aarch64 | arm, as ohos.toolchain.cmake sets it
# and include this file.
#
# The build then goes through the same CMake branches as an SDK build: CMAKE_SYSTEM_NAME is OHOS (CMake's
# Platform/OHOS.cmake is Linux's; older CMake without it gets Linux), and the compiler predefines what
# the SDK's clang does for *-linux-ohos (__OHOS__, __MUSL__ from the SDK's flags, no __gnu_linux__),
# so llama.cpp's sources take their OpenHarmony paths too. Compilers, ar and ranlib are
# scripts/zig-{cc,c++,ar,ranlib} (scripts/zig_cc.py: clang's -march/-mcpu/-mfpu turned into zig's -mcpu).
if (NOT OHAI_ZIG_TARGET OR NOT OHAI_ZIG_CPU OR NOT CMAKE_SYSTEM_PROCESSOR)
    message(FATAL_ERROR "cmake/toolchains/zig.cmake: use one of cmake/toolchains/zig-<triple>.cmake")
endif()

if (EXISTS "${CMAKE_ROOT}/Modules/Platform/OHOS.cmake")
    set(CMAKE_SYSTEM_NAME OHOS)
else()
    set(CMAKE_SYSTEM_NAME Linux)
endif()

get_filename_component(_ohai_zig_scripts "${CMAKE_CURRENT_LIST_DIR}/../../scripts" ABSOLUTE)
set(CMAKE_C_COMPILER   "${_ohai_zig_scripts}/zig-cc")
set(CMAKE_CXX_COMPILER "${_ohai_zig_scripts}/zig-c++")
set(CMAKE_AR           "${_ohai_zig_scripts}/zig-ar" CACHE FILEPATH "ar of the zig cross toolchain" FORCE)
set(CMAKE_RANLIB       "${_ohai_zig_scripts}/zig-ranlib" CACHE FILEPATH "ranlib of the zig cross toolchain" FORCE)
set(CMAKE_C_COMPILER_TARGET   ${OHAI_ZIG_TARGET})   # passed as --target=, which zig cc accepts
set(CMAKE_CXX_COMPILER_TARGET ${OHAI_ZIG_TARGET})

# The Python with the pinned ziglang, as the scripts find it; fail here rather than in the first compile.
if (DEFINED ENV{OHAI_ZIG_PYTHON})
    set(_ohai_zig_python "$ENV{OHAI_ZIG_PYTHON}")
else()
    get_filename_component(_ohai_zig_python "${_ohai_zig_scripts}/../.venv/bin/python" ABSOLUTE)
endif()
if (NOT DEFINED ENV{_OHAI_ZIG_VERSION})   # once per configure run: try_compile re-reads this file
    execute_process(COMMAND "${_ohai_zig_python}" -m ziglang version
        OUTPUT_VARIABLE _ohai_zig_version OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _ohai_zig_rc)
    if (NOT _ohai_zig_rc EQUAL 0)
        message(FATAL_ERROR "zig cross toolchain: '${_ohai_zig_python} -m ziglang' does not run; `make venv` "
                            "installs the pinned ziglang into .venv (or set OHAI_ZIG_PYTHON)")
    endif()
    set(ENV{_OHAI_ZIG_VERSION} "${_ohai_zig_version}")
endif()

# What the SDK's clang predefines for *-linux-ohos and zig's for *-linux-musl does not, and back.
# zig turns __DATE__/__TIME__ into errors (reproducible builds); the engine's probe cache key uses them.
set(_ohai_zig_flags "-mcpu=${OHAI_ZIG_CPU} -Wno-date-time")
if (CMAKE_SYSTEM_NAME STREQUAL "OHOS")
    string(APPEND _ohai_zig_flags " -D__OHOS__ -D__OHOS_FAMILY__ -D__MUSL__ -U__gnu_linux__")
endif()
set(CMAKE_C_FLAGS_INIT   "${_ohai_zig_flags}")
set(CMAKE_CXX_FLAGS_INIT "${_ohai_zig_flags}")

# ccache (the project's CMakeLists.txt adds it when no launcher is set) keys the compiler by the
# wrapper script's mtime, which says nothing about zig: key it by zig's version and the translation.
find_program(_ohai_zig_ccache ccache)
if (_ohai_zig_ccache)
    file(MD5 "${_ohai_zig_scripts}/zig_cc.py" _ohai_zig_cc_md5)
    set(CMAKE_C_COMPILER_LAUNCHER env
        "CCACHE_COMPILERCHECK=string:zig-$ENV{_OHAI_ZIG_VERSION}-${_ohai_zig_cc_md5}" ${_ohai_zig_ccache})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_C_COMPILER_LAUNCHER})
endif()

# Nothing of the build machine: no host headers or libraries (there is no sysroot: zig brings libc).
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
