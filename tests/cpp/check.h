// Minimal assertion helper for the C++ tests: report every failure, exit non-zero at the end.
#pragma once

#include <cstdio>

inline int g_failures = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            ++g_failures;                                                              \
        }                                                                              \
    } while (0)

inline int finish(const char * name) {
    std::printf("%s: %s\n", name, g_failures ? "FAILED" : "passed");
    return g_failures ? 1 : 0;
}
