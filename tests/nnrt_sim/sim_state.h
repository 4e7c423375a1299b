// ohai NNRt simulator — process-wide state of the core library: registered devices, live
// objects (so a stale or foreign handle is reported instead of crashing the test), counters,
// injected faults, and the error reporting every API function goes through.
#pragma once

#include <atomic>
#include <deque>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "nnrt_api.h"

namespace ohai_sim {

struct Device {
    uint64_t id;
    std::string name;
    OH_NN_DeviceType type;
};

struct Faults {
    bool no_devices = false;
    bool op_unsupported = false;
    bool build_fail = false;
    bool run_fail = false;
    bool wrong_output_size = false;
    long long fail_after = -1;   // < 0: off
    unsigned slow_us = 0;
    unsigned threads = 0;        // 0: hardware concurrency
    bool log = false;
    std::string text;            // OHAI_NNRT_SIM_FAULT as read
};

enum Counter {
    kModelsAlive,
    kCompilationsAlive,
    kExecutorsAlive,
    kTensorsAlive,
    kTensorDescsAlive,
    kBuilds,
    kBuildFailures,
    kRuns,
    kRunFailures,
    kCacheHits,
    kCacheWrites,
    kAvailableOpsQueries,
    kOpsExecuted,
    kMacs,
    kBadHandles,
    kCounterCount,
};

enum Kind { kModel, kCompilation, kExecutor, kTensor, kTensorDesc, kKindCount };

struct State {
    // One lock for all object state: the API is called from the adapter's threads, and nothing
    // here is hot except RunSync's arithmetic, which runs outside it.
    std::mutex mu;
    std::deque<Device> devices;           // a deque: names handed out by GetName stay put
    std::vector<size_t> device_ids;       // what GetAllDevicesID hands out (owned here)
    Faults faults;
    long long device_runs = 0;            // RunSync calls that reached the device since reload
    uint64_t next_serial = 1;
    std::unordered_set<const void *> live[kKindCount];
    std::map<std::string, long long> calls;
    std::atomic<long long> counters[kCounterCount] = {};
};

// Never destroyed: API calls may still arrive while the process exits.
State &state();

// With state().mu held.
const Device *find_device(size_t id);   // 0 = the first device; honours the no_devices fault
bool is_live(Kind kind, const void *p);
void add_live(Kind kind, const void *p);
void remove_live(Kind kind, const void *p);
void count_call(const char *function);

inline void bump(Counter c, long long by = 1) { state().counters[c].fetch_add(by, std::memory_order_relaxed); }

// Records why a call was rejected (ohai_nnrt_sim_last_error, OHAI_NNRT_SIM_LOG) and returns code.
OH_NN_ReturnCode fail(OH_NN_ReturnCode code, const char *function, const std::string &why);
void clear_error();
const char *last_error();

// A handle argument: NULL or not a live object of its kind is INVALID_PARAMETER (the latter
// also counts bad_handles). With state().mu held.
OH_NN_ReturnCode check_handle(Kind kind, const void *p, const char *function);

int reload_faults();
std::string stats_json();
long long stat(const std::string &key);
void reset_stats();

}  // namespace ohai_sim
