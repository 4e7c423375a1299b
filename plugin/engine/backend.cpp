#include "backend.h"

#include <mutex>

#include "llama.h"
#include "ohai/log.h"
#include "ohai/system.h"

namespace ohai {

void init_backend() {
    check_cpu_supported();   // before any ggml code runs: an unsupported CPU gets a message, not SIGILL
    install_native_log_hook();
    static std::once_flag once;
    std::call_once(once, [] { llama_backend_init(); });
}

}  // namespace ohai
