# zig cross toolchain (see zig.cmake) for 64-bit OpenHarmony boards, e.g. RK3568 (Cortex-A55):
# the stand-in for ohos.toolchain.cmake with OHOS_ARCH=arm64-v8a.
# All code is for the ARMv8.0 baseline, as the SDK's default: the startup CPU check must be able to
# run on any arm64 core and say what it lacks. The Cortex-A55's instruction sets (dotprod, fp16) go
# to ggml's CPU kernels only, through OHAI_CPU_LEVEL (the Makefile: armv8.2-a+dotprod+fp16). An
# -mcpu=cortex-a55 for all code would put ARMv8.1 atomics (LSE) into libc++, musl and the startup
# path, so an ARMv8.0 core (Cortex-A53) would die on an illegal instruction before the check.
set(OHAI_ZIG_TARGET aarch64-linux-musl)
set(OHAI_ZIG_CPU generic)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/zig.cmake)
