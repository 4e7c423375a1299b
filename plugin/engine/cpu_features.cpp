// Runtime side of the instruction-set guard: what the CPU offers, compared with what the build
// uses (cpu_build_features.c). A binary copied to an older machine, or a wheel built with
// -march=native elsewhere, then fails with a message instead of SIGILL.
#include "ohai/system.h"

#include <fstream>

#include "cpu_build_features.h"
#include "llama.h"
#include "ohai/error.h"

#if defined(__aarch64__) || defined(__arm__)
#include <sys/auxv.h>
#endif

namespace ohai {
namespace {

struct Probe {
    const char * name;
    bool supported;
};

std::vector<Probe> runtime_features() {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
#define OHAI_X86(n) Probe{n, __builtin_cpu_supports(n) != 0}
    return {OHAI_X86("sse3"), OHAI_X86("ssse3"), OHAI_X86("sse4.1"), OHAI_X86("sse4.2"), OHAI_X86("popcnt"),
            OHAI_X86("avx"), OHAI_X86("avx2"), OHAI_X86("fma"), OHAI_X86("f16c"), OHAI_X86("bmi"),
            OHAI_X86("bmi2"), OHAI_X86("avxvnni"), OHAI_X86("avx512f"), OHAI_X86("avx512cd"),
            OHAI_X86("avx512vl"), OHAI_X86("avx512dq"), OHAI_X86("avx512bw"), OHAI_X86("avx512vnni"),
            OHAI_X86("avx512vbmi"), OHAI_X86("avx512vbmi2"), OHAI_X86("avx512ifma"), OHAI_X86("avx512bitalg"),
            OHAI_X86("avx512vpopcntdq"), OHAI_X86("avx512bf16"), OHAI_X86("avx512fp16"), OHAI_X86("amx-tile"),
            OHAI_X86("amx-int8"), OHAI_X86("amx-bf16")};
#undef OHAI_X86
#elif defined(__aarch64__)
    const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    // Bit numbers from the kernel's uapi hwcap.h (stable ABI).
    return {{"neon", (hw & (1UL << 1)) != 0},    {"fp16", (hw & (1UL << 10)) != 0},
            {"dotprod", (hw & (1UL << 20)) != 0}, {"sve", (hw & (1UL << 22)) != 0},
            {"i8mm", (hw2 & (1UL << 13)) != 0},  {"sme", (hw2 & (1UL << 23)) != 0}};
#elif defined(__arm__)
    const unsigned long hw = getauxval(AT_HWCAP);
    return {{"neon", (hw & (1UL << 12)) != 0}, {"vfpv4", (hw & (1UL << 16)) != 0}};
#else
    return {};
#endif
}

std::string read_cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        // x86 says "model name", arm kernels "Hardware" or nothing useful.
        if (line.rfind("model name", 0) == 0 || line.rfind("Hardware", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                const auto start = line.find_first_not_of(" \t", colon + 1);
                return start == std::string::npos ? std::string() : line.substr(start);
            }
        }
    }
    return {};
}

}  // namespace

SystemInfo system_info() {
    SystemInfo info;
    info.cpu_target = OHAI_BUILD_CPU_TARGET;
    info.amx_enabled = OHAI_BUILD_AMX != 0;
    info.cpu_model = read_cpu_model();
    const auto probes = runtime_features();
    auto supported = [&](const std::string & name, bool & known) {
        for (const auto & p : probes)
            if (name == p.name) return known = true, p.supported;
        return known = false, false;
    };
    std::vector<std::string> built;
    for (const char * const * f = ohai_cpu_build_features(); *f; ++f) built.emplace_back(*f);
    for (const auto & p : probes) {
        bool is_built = false;
        for (const auto & b : built) is_built = is_built || b == p.name;
        info.features.push_back({p.name, is_built, p.supported});
    }
    for (const auto & b : built) {
        bool known = false;
        const bool ok = supported(b, known);
        if (!known) info.features.push_back({b, true, true});   // no runtime probe for it: trust the build
        else if (!ok) info.missing.push_back(b);
    }
    // llama.cpp's summary initialises ggml's CPU backend: only where that is known to be safe.
    if (info.missing.empty()) info.llama_system_info = llama_print_system_info();
    return info;
}

void check_cpu_supported() {
    static const std::vector<std::string> missing = [] {
        std::vector<std::string> out;
        const auto probes = runtime_features();
        for (const char * const * f = ohai_cpu_build_features(); *f; ++f)
            for (const auto & p : probes)
                if (p.name == std::string(*f) && !p.supported) out.emplace_back(*f);
        return out;
    }();
    if (missing.empty()) return;
    std::string list;
    for (const auto & m : missing) list += (list.empty() ? "" : ", ") + m;
#if defined(__aarch64__)
    const char * older_level = "OHAI_NATIVE=OFF OHAI_CPU_LEVEL=armv8-a";
#elif defined(__arm__)
    // -march=armv7-a says nothing about the FPU: NEON/VFPv4 come from OHAI_ARM_FPU.
    const char * older_level = "OHAI_NATIVE=OFF OHAI_CPU_LEVEL=armv7-a OHAI_ARM_FPU=neon, or vfpv3-d16 without NEON";
#else
    const char * older_level = "OHAI_NATIVE=OFF OHAI_CPU_LEVEL=x86-64-v2";
#endif
    throw Error(ErrorCode::Unsupported,
                "this build of ohai uses CPU instructions this machine lacks (" + list + "); rebuild it here "
                "(OHAI_NATIVE=ON, the default) or as a portable build for an older level (" + older_level + ")");
}

}  // namespace ohai
