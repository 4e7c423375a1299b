// ohai — one loaded engine per (model file, context options), shared by every transaction that
// prepares it.
#pragma once

#include <cstdint>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "ohai/engine.h"
#include "ohai/model.h"

namespace ohai::aie {

struct EngineKey {
    std::string path;   // canonical
    uint32_t n_ctx = 0;
    int32_t threads = 0;
    uint32_t parallel = 0;
    std::string device = "auto";   // ModelParams::device
    bool operator<(const EngineKey & o) const {
        return std::tie(path, n_ctx, threads, parallel, device) < std::tie(o.path, o.n_ctx, o.threads, o.parallel, o.device);
    }
};

struct SharedEngine {
    EngineKey key;
    std::shared_ptr<Model> model;
    std::unique_ptr<Engine> engine;
    // Closed by Release (its last transaction went) while a queued job may still hold it: never
    // handed out again.
    std::atomic<bool> retired{false};
};

// Reference counting is the shared_ptr's: transactions (and requests in flight on the caller's
// thread) hold one; the engine is closed and freed when the last one goes. Whoever drops the
// last reference joins the engine's worker, so it must never be the worker itself (engine
// callbacks hold no reference).
class EnginePool {
public:
    // The engine for `key`, loading it when no transaction holds one. Loads are serialised, so
    // two transactions preparing the same model at once load it once; engines of one file share
    // the loaded weights. At most `max_engines` engines live at once (a client must not be able
    // to exhaust the device's memory): beyond that, WireError(Overloaded). Throws ohai::Error.
    std::shared_ptr<SharedEngine> acquire(const EngineKey & key, size_t max_engines);
    size_t loaded() const;

private:
    mutable std::mutex mutex_;
    std::map<EngineKey, std::weak_ptr<SharedEngine>> engines_;
    std::map<std::string, std::weak_ptr<Model>> models_;   // by canonical path and device
};

}  // namespace ohai::aie
