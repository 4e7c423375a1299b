# zig cross toolchain (see zig.cmake) for 32-bit OpenHarmony userlands (stock DAYU200 images):
# the stand-in for ohos.toolchain.cmake with OHOS_ARCH=armeabi-v7a. ARMv7-A with NEON and VFPv4.
# The soft-float EABI target, as OpenHarmony's: floats are passed in core registers. Like an SDK
# build, cmake/cpu_target.cmake then adds -mfloat-abi=softfp, so the code uses the FPU and NEON but
# keeps that calling convention; the plugin libraries can call the image's libc. (A hard-float
# target, arm-linux-musleabihf, would build plugins that pass floats in VFP registers to a libc that
# expects them in core registers: wrong results, no error.)
set(OHAI_ZIG_TARGET arm-linux-musleabi)
set(OHAI_ZIG_CPU generic+v7a+neon+vfp4)
set(CMAKE_SYSTEM_PROCESSOR arm)
include(${CMAKE_CURRENT_LIST_DIR}/zig.cmake)
