#include "engine_pool.h"

namespace ohai::aie {

std::shared_ptr<SharedEngine> EnginePool::acquire(const EngineKey & key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = engines_.begin(); it != engines_.end();) {
        if (it->second.expired()) it = engines_.erase(it);
        else ++it;
    }
    if (auto existing = engines_[key].lock()) return existing;
    auto shared = std::make_shared<SharedEngine>();
    shared->key = key;
    ModelParams mp;
    mp.path = key.path;
    mp.device = key.device;
    shared->model = Model::load(mp);
    EngineParams ep;
    ep.n_ctx = key.n_ctx;
    ep.n_threads = key.threads;
    ep.n_parallel = key.parallel;
    shared->engine = std::make_unique<Engine>(shared->model, ep);
    engines_[key] = shared;
    return shared;
}

size_t EnginePool::loaded() const {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t n = 0;
    for (const auto & kv : engines_) n += kv.second.expired() ? 0 : 1;
    return n;
}

}  // namespace ohai::aie
