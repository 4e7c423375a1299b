# zig cross toolchain (see zig.cmake) for 32-bit OpenHarmony userlands (stock DAYU200 images):
# the stand-in for ohos.toolchain.cmake with OHOS_ARCH=armeabi-v7a. ARMv7-A with NEON and VFPv4.
# One difference stays: OpenHarmony's 32-bit ABI passes floats in core registers (softfp), musleabihf
# in VFP registers; the instructions the code may use are the same.
set(OHAI_ZIG_TARGET arm-linux-musleabihf)
set(OHAI_ZIG_CPU generic+v7a+neon+vfp4)
set(CMAKE_SYSTEM_PROCESSOR arm)
include(${CMAKE_CURRENT_LIST_DIR}/zig.cmake)
