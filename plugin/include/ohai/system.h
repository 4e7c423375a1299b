// ohai — what this build of the engine runs on: the CPU instruction sets it was built to use,
// what the CPU in front of it supports, and llama.cpp's own summary.
#pragma once

#include <string>
#include <vector>

namespace ohai {

struct CpuFeature {
    std::string name;        // "avx2", "avx512f", "amx-int8", "dotprod", ...
    bool built = false;      // the CPU kernels of this build may execute it
    bool supported = false;  // this CPU (and OS) offers it
};

struct SystemInfo {
    std::string cpu_target;          // "native", or the portable level: "x86-64-v3", "armv8.2-a+dotprod", ...
    bool amx_enabled = false;        // built with Intel AMX kernels (OHAI_AMX=ON)
    std::string cpu_model;           // as the OS names it, empty when unknown
    std::vector<CpuFeature> features;
    std::vector<std::string> missing;   // built but not supported: the engine refuses to run
    std::string llama_system_info;   // llama_print_system_info(), e.g. "CPU : SSE3 = 1 | AVX = 1 | ..."
};

// Safe on any CPU: touches no kernel of the build.
SystemInfo system_info();

// Throws Error(Unsupported) naming the instruction sets this build uses that the CPU lacks.
// Every entry point that loads a model calls it before ggml runs a single kernel.
void check_cpu_supported();

}  // namespace ohai
