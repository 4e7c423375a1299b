// ohai NNRt simulator — what every API function of the simulator does around its work: one lock
// for all object state, no C++ exception across the C ABI, and the shared body of the
// OH_NN*_Destroy functions.
#pragma once

#include <mutex>
#include <new>
#include <string>

#include "sim_state.h"

namespace ohai_sim {

using Lock = std::lock_guard<std::mutex>;

// An allocation failure becomes MEMORY_ERROR, anything else FAILED.
template <class F>
OH_NN_ReturnCode guarded(const char *fn, F &&f) {
    try {
        return f();
    } catch (const std::bad_alloc &) {
        return fail(OH_NN_MEMORY_ERROR, fn, "out of memory");
    } catch (...) {
        return fail(OH_NN_FAILED, fn, "internal error");
    }
}

// For functions that return a handle: NULL on any exception.
template <class T, class F>
T *guarded_ptr(const char *fn, F &&f) {
    try {
        return f();
    } catch (...) {
        fail(OH_NN_MEMORY_ERROR, fn, "out of memory");
        return nullptr;
    }
}

// `*handle` must be a live object of `kind` (`what` names the argument in errors). It is forgotten,
// `release` frees what the object owns besides itself, then it is deleted and *handle set to NULL.
template <class T, class Release>
OH_NN_ReturnCode destroy_handle(T **handle, Kind kind, Counter alive, const char *fn, const char *what,
                                Release &&release) {
    Lock lock(state().mu);
    count_call(fn);
    if (handle == nullptr) return fail(OH_NN_INVALID_PARAMETER, fn, std::string(what) + " is NULL");
    OH_NN_ReturnCode rc = check_handle(kind, *handle, fn);
    if (rc != OH_NN_SUCCESS) return rc;
    remove_live(kind, *handle);
    release(*handle);
    delete *handle;
    *handle = nullptr;
    bump(alive, -1);
    clear_error();
    return OH_NN_SUCCESS;
}

template <class T>
OH_NN_ReturnCode destroy_handle(T **handle, Kind kind, Counter alive, const char *fn, const char *what) {
    return destroy_handle(handle, kind, alive, fn, what, [](T *) {});
}

}  // namespace ohai_sim
