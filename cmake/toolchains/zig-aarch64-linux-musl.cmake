# zig cross toolchain (see zig.cmake) for 64-bit OpenHarmony boards, e.g. RK3568 (Cortex-A55):
# the stand-in for ohos.toolchain.cmake with OHOS_ARCH=arm64-v8a.
set(OHAI_ZIG_TARGET aarch64-linux-musl)
set(OHAI_ZIG_CPU cortex_a55)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/zig.cmake)
