/* pthread_setaffinity_np for C libraries without it (cmake/cross.cmake, OHAI_AFFINITY_SHIM). */
#include "ohai_affinity.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

int ohai_pthread_setaffinity_np(pthread_t thread, size_t size, const cpu_set_t * set) {
    if (!pthread_equal(thread, pthread_self())) return ENOSYS;
    /* The system call, not sched_setaffinity(): C libraries that lack one of the two may lack both. */
    return syscall(SYS_sched_setaffinity, 0, size, set) == 0 ? 0 : errno;
}
