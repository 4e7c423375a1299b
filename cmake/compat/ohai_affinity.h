/* Force-included into ggml-cpu's C sources when the C library has no pthread_setaffinity_np
 * (older OpenHarmony musl; see cmake/cross.cmake, OHAI_AFFINITY_SHIM). ggml-cpu only ever pins the
 * calling thread (pthread_setaffinity_np(pthread_self(), ...)), which sched_setaffinity does for
 * thread id 0. Needs _GNU_SOURCE on the command line for cpu_set_t, as ggml-cpu has it. */
#ifndef OHAI_AFFINITY_H
#define OHAI_AFFINITY_H

#include <pthread.h>
#include <sched.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 or an errno value, as pthread_setaffinity_np; ENOSYS for a thread other than the caller. */
int ohai_pthread_setaffinity_np(pthread_t thread, size_t size, const cpu_set_t * set);

#ifdef __cplusplus
}
#endif

#define pthread_setaffinity_np ohai_pthread_setaffinity_np

#endif
