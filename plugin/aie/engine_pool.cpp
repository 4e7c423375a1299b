#include "engine_pool.h"

#include "request_json.h"

namespace ohai::aie {

std::shared_ptr<SharedEngine> EnginePool::acquire(const EngineKey & key, size_t max_engines) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t live = 0;
    for (auto it = engines_.begin(); it != engines_.end();) {
        auto e = it->second.lock();
        if (!e || e->retired) {
            it = engines_.erase(it);
        } else {
            ++live;
            ++it;
        }
    }
    auto found = engines_.find(key);
    if (found != engines_.end())
        if (auto existing = found->second.lock()) return existing;
    if (live >= max_engines)
        throw wire::WireError(wire::ErrorKind::Overloaded,
                              "the plugin already holds " + std::to_string(live) + " engine(s) (max_engines " +
                                  std::to_string(max_engines) +
                                  "): prepare the same model and options as the other clients, or try later");
    auto shared = std::make_shared<SharedEngine>();
    shared->key = key;
    // Engines of one file (and device choice: it is fixed when the weights load) share the model.
    std::weak_ptr<Model> & cached = models_[key.path + '\n' + key.device];
    std::shared_ptr<Model> model = cached.lock();
    if (!model) {
        ModelParams mp;
        mp.path = key.path;
        mp.device = key.device;
        model = Model::load(mp);
        cached = model;
    }
    shared->model = model;
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
    for (const auto & kv : engines_) {
        auto e = kv.second.lock();
        n += e && !e->retired ? 1 : 0;
    }
    return n;
}

}  // namespace ohai::aie
