// ohai — the ai_engine plugin host (see plugin_host.h for what it imitates and why).
#include "plugin_host.h"

#include "data_channel.h"   // first: see there

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#ifdef __GLIBCXX__
#include <cxxabi.h>
#endif

#include "aie/plugin.h"
#include "aie/retcode.h"

namespace ohai::aie {

using OHOS::AI::IPlugin;
using OHOS::AI::IPluginCallback;
using OHOS::AI::IRequest;
using OHOS::AI::IResponse;
using OHOS::AI::PluginEvent;

namespace {

// Mangled names of two data-channel functions every plugin needs; if the global scope has them,
// a plugin's undefined IRequest/IResponse symbols resolve.
constexpr const char * kRequestCreateSymbol = "_ZN4OHOS2AI8IRequest6CreateEv";
constexpr const char * kResponseCreateSymbol = "_ZN4OHOS2AI9IResponse6CreateEPNS0_8IRequestE";

// The violation list keeps this many descriptions; the count goes on.
constexpr std::size_t kMaxViolationsKept = 1000;

std::atomic<int> g_next_adapter_id{1};

// Plugins are dlopen()ed RTLD_LOCAL, so their undefined symbols resolve only through the global
// scope: the executable (when linked with -rdynamic) and libraries loaded RTLD_GLOBAL. Python
// loads extension modules RTLD_LOCAL, so the library holding this code re-opens itself with
// RTLD_NOLOAD|RTLD_GLOBAL, which changes the flags of the copy already loaded (no second copy).
// The handle is never closed: plugins depend on these symbols for as long as the process lives.
void promote_data_channel_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        Dl_info info{};
        void * anchor = reinterpret_cast<void *>(&IRequest::Create);
        if (dladdr(anchor, &info) != 0 && info.dli_fname != nullptr && info.dli_fname[0] != '\0') {
            // Fails harmlessly for the main executable, whose exported symbols are global anyway.
            (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
        }
    });
}

// Empty when plugins can resolve the data channel, else what to do about it.
std::string data_channel_problem() {
    promote_data_channel_once();
    if (dlsym(RTLD_DEFAULT, kRequestCreateSymbol) != nullptr && dlsym(RTLD_DEFAULT, kResponseCreateSymbol) != nullptr) {
        return {};
    }
    return "the ai_engine data channel (OHOS::AI::IRequest/IResponse) is not visible to plugins: "
           "an executable that links ohai_aie_host must export its symbols (CMake ENABLE_EXPORTS, -rdynamic)";
}

std::string oversized(const char * what, std::size_t bytes) {
    return std::string(what) + " of " + std::to_string(bytes) + " bytes exceeds ai_engine's message limit of " +
           std::to_string(kMaxMessageBytes) + " bytes";
}

// A malloc()ed copy of `bytes` (never a null pointer, even when empty), for a DataInfo the host
// hands to a plugin.
struct MallocBuffer {
    unsigned char * data = nullptr;
    int length = 0;

    explicit MallocBuffer(const std::string & bytes) {
        data = static_cast<unsigned char *>(std::malloc(bytes.empty() ? 1 : bytes.size()));
        if (data == nullptr) throw std::bad_alloc();
        if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
        length = static_cast<int>(bytes.size());
    }
    ~MallocBuffer() { std::free(data); }
    MallocBuffer(const MallocBuffer &) = delete;
    MallocBuffer & operator=(const MallocBuffer &) = delete;

    DataInfo info() const { return DataInfo{data, length}; }
    // Hands the buffer to a new owner (a request, which frees it when destroyed).
    DataInfo release() {
        DataInfo out{data, length};
        data = nullptr;
        return out;
    }
};

}  // namespace

namespace detail {

// Where the one reply of a call lands. Guarded by HostState::replies_mutex_.
struct ReplySlot {
    std::condition_variable arrived;
    bool done = false;
    bool abandoned = false;   // the caller stopped waiting (sync calls: the worker counts it late)
    long long transaction_id = 0;   // of the request, which the reply must carry back
    ProcessResult result;
};

// Everything a PluginHost is. Also the IPluginCallback the plugin calls back, which is why it is
// shared: sync worker threads keep it alive, and it is deliberately leaked when replies may still
// come after the host is gone (see PluginHost::~PluginHost).
class HostState final : public IPluginCallback, public std::enable_shared_from_this<HostState> {
public:
    std::string library_path;
    std::string name;
    std::string infer_mode;
    long long version = 0;
    bool sync_mode = false;
    int plugin_type = 0;
    int adapter_id = 0;
    std::atomic<int> next_session_id{0};

    void load();
    void close();
    bool closed() const { return closing_.load(); }

    int issue_request_id();
    bool was_issued(int request_id) const;
    std::string check_process(bool sync_call, const std::string & message, int & retcode) const;
    ProcessResult run_sync(long long transaction_id, const std::string & message, int operation_id, int request_id);
    PendingCall start_async(long long transaction_id, const std::string & message, int operation_id);
    PendingCall start_sync(long long transaction_id, const std::string & message, int operation_id);
    bool wait(PendingCall & call, std::chrono::milliseconds slice);
    ProcessResult finish(PendingCall & call);

    int OnEvent(PluginEvent event, IResponse * response) override;

    void violation(std::string description);
    std::vector<std::string> violations() const;
    std::size_t violation_count() const;
    std::size_t late_replies() const;
    bool may_still_be_called_back() const;

    // Runs `call(plugin)` holding the plugin shared (close() waits for it); false when there is
    // no plugin any more.
    template <typename Call>
    bool with_plugin(Call && call) {
        if (closing_.load()) return false;
        std::shared_lock<std::shared_mutex> lock(plugin_mutex_);
        if (plugin_ == nullptr) return false;
        call(*plugin_);
        return true;
    }

    // A plugin call whose exception (a broken contract: nothing may cross the plugin boundary)
    // becomes RETCODE_FAILURE and a violation instead of unwinding through the host.
    template <typename Call>
    int guarded(const char * what, Call && call) {
        try {
            return call();
#ifdef __GLIBCXX__
        } catch (abi::__forced_unwind &) {
            throw;   // the thread is being cancelled: let it end
#endif
        } catch (const std::exception & e) {
            violation(std::string(what) + " threw an exception: " + e.what());
        } catch (...) {
            violation(std::string(what) + " threw an exception");
        }
        return kRetcodeFailure;
    }

    // Prepare/Release/SetOption/GetOption: `call(plugin, input, output)` with the input in a
    // malloc()ed copy and the plugin's output (if the call has one) copied and freed.
    template <typename Call>
    CallResult call_plugin(const char * what, const std::string & input, bool has_output, Call && call) {
        CallResult result;
        if (input.size() > static_cast<std::size_t>(kMaxMessageBytes)) {
            result.retcode = kRetcodeMessageTooLarge;
            result.host_error = oversized((std::string(what) + " input").c_str(), input.size());
            return result;
        }
        MallocBuffer buffer(input);
        const DataInfo in = buffer.info();
        DataInfo output{nullptr, 0};
        const bool ran = with_plugin([&](IPlugin & plugin) {
            result.retcode = guarded(what, [&] { return call(plugin, in, output); });
        });
        if (!ran) {
            result.retcode = kRetcodeHostClosed;
            result.host_error = "the plugin host is closed";
            return result;
        }
        if (has_output) take_output(what, output, result);
        return result;
    }

private:
    ProcessResult closed_result(int request_id) const;
    void read_response(IResponse *& response, ProcessResult & into, const char * what);
    void take_output(const char * what, DataInfo & output, CallResult & into);
    IRequest * make_request(long long transaction_id, const std::string & message, int operation_id, int request_id);

    void * handle_ = nullptr;
    IPlugin * plugin_ = nullptr;
    std::shared_mutex plugin_mutex_;   // shared: a call inside the plugin; exclusive: close()
    std::atomic<bool> closing_{false};
    std::atomic<unsigned long long> requests_issued_{0};

    mutable std::mutex replies_mutex_;
    std::unordered_map<int, std::shared_ptr<ReplySlot>> awaiting_;   // async requests without their reply yet
    std::unordered_set<int> abandoned_;    // async requests nobody waits for any more
    bool replies_closed_ = false;          // close() is done: a reply now is a violation
    std::size_t unanswered_at_close_ = 0;
    std::size_t late_replies_ = 0;

    mutable std::mutex violations_mutex_;
    std::vector<std::string> violations_;
    std::size_t violation_count_ = 0;
};

void HostState::violation(std::string description) {
    std::lock_guard<std::mutex> lock(violations_mutex_);
    ++violation_count_;
    if (violations_.size() < kMaxViolationsKept) violations_.push_back(std::move(description));
}

std::vector<std::string> HostState::violations() const {
    std::lock_guard<std::mutex> lock(violations_mutex_);
    return violations_;
}

std::size_t HostState::violation_count() const {
    std::lock_guard<std::mutex> lock(violations_mutex_);
    return violation_count_;
}

std::size_t HostState::late_replies() const {
    std::lock_guard<std::mutex> lock(replies_mutex_);
    return late_replies_;
}

bool HostState::may_still_be_called_back() const {
    std::lock_guard<std::mutex> lock(replies_mutex_);
    return unanswered_at_close_ > 0 || !abandoned_.empty();
}

void HostState::load() {
    const std::string problem = data_channel_problem();
    if (!problem.empty()) throw LoadError(OHOS::AI::RETCODE_PLUGIN_LOAD_FAILED, problem);

    (void)dlerror();   // clear a stale message
    void * handle = dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char * reason = dlerror();
        throw LoadError(OHOS::AI::RETCODE_OPEN_SO_FAILED,
                        "cannot load " + library_path + ": " + (reason ? reason : "dlopen failed"));
    }
    auto factory = reinterpret_cast<OHOS::AI::IPLUGIN_INTERFACE>(dlsym(handle, OHOS::AI::PLUGIN_INTERFACE_NAME));
    if (factory == nullptr) {
        dlclose(handle);
        throw LoadError(OHOS::AI::RETCODE_SO_LACK_SYMBOL,
                        library_path + " has no symbol " + OHOS::AI::PLUGIN_INTERFACE_NAME + ": not an ai_engine plugin");
    }
    IPlugin * plugin = nullptr;
    std::string factory_error;
    try {
        plugin = factory();
#ifdef __GLIBCXX__
    } catch (abi::__forced_unwind &) {
        throw;
#endif
    } catch (const std::exception & e) {
        factory_error = std::string(": it threw an exception: ") + e.what();
    } catch (...) {
        factory_error = ": it threw an exception";
    }
    if (plugin == nullptr) {
        dlclose(handle);
        throw LoadError(OHOS::AI::RETCODE_PLUGIN_LOAD_FAILED,
                        std::string(OHOS::AI::PLUGIN_INTERFACE_NAME) + " of " + library_path + " returned no plugin" +
                            factory_error);
    }
    handle_ = handle;
    plugin_ = plugin;

    // Read once, like the properties of a loaded plugin in the server; a null string is a broken
    // contract (the server would crash on it) and reads as empty here.
    const char * plugin_name = nullptr;
    const char * plugin_mode = nullptr;
    guarded("GetName", [&] { plugin_name = plugin->GetName(); return 0; });
    guarded("GetVersion", [&] { version = plugin->GetVersion(); return 0; });
    guarded("GetInferMode", [&] { plugin_mode = plugin->GetInferMode(); return 0; });
    if (plugin_name == nullptr) violation("GetName returned a null pointer");
    if (plugin_mode == nullptr) violation("GetInferMode returned a null pointer");
    name = plugin_name ? plugin_name : "";
    infer_mode = plugin_mode ? plugin_mode : "";
    sync_mode = infer_mode == "SYNC";   // the server: strcmp(mode, "SYNC") == 0, anything else is async
    adapter_id = g_next_adapter_id.fetch_add(1);
}

void HostState::close() {
    closing_.store(true);
    {
        // Waits for every call inside the plugin; replies the plugin's destructor delivers still
        // reach their callers, because the reply table is closed only afterwards.
        std::unique_lock<std::shared_mutex> lock(plugin_mutex_);
        if (plugin_ != nullptr) {
            delete plugin_;
            plugin_ = nullptr;
        }
        if (handle_ != nullptr) {
            dlclose(handle_);
            handle_ = nullptr;
        }
    }
    std::lock_guard<std::mutex> lock(replies_mutex_);
    if (replies_closed_) return;
    replies_closed_ = true;
    unanswered_at_close_ += awaiting_.size();
    for (auto & entry : awaiting_) {
        ReplySlot & slot = *entry.second;
        slot.result = closed_result(entry.first);
        slot.result.host_error = "the plugin host was closed before the reply arrived";
        slot.done = true;
        slot.arrived.notify_all();
    }
    awaiting_.clear();
}

ProcessResult HostState::closed_result(int request_id) const {
    ProcessResult result;
    result.retcode = kRetcodeHostClosed;
    result.request_id = request_id;
    result.host_error = "the plugin host is closed";
    return result;
}

// Request ids are 1, 2, ... INT_MAX, then 1 again; replies are matched by id (see OnEvent).
int HostState::issue_request_id() {
    return static_cast<int>(requests_issued_.fetch_add(1) % INT_MAX) + 1;
}

bool HostState::was_issued(int request_id) const {
    const unsigned long long issued = requests_issued_.load();
    return request_id > 0 && (issued >= INT_MAX || static_cast<unsigned long long>(request_id) <= issued);
}

void HostState::take_output(const char * what, DataInfo & output, CallResult & into) {
    if (output.data == nullptr) {
        if (output.length != 0) violation(std::string(what) + " output has length " + std::to_string(output.length) +
                                          " but no data");
        return;
    }
    if (output.length < 0 || output.length > kMaxMessageBytes) {
        const std::string problem = output.length < 0
            ? std::string(what) + " output has a negative length (" + std::to_string(output.length) + ")"
            : oversized((std::string(what) + " output").c_str(), static_cast<std::size_t>(output.length));
        violation(problem);
        into.host_error = problem;
        if (into.retcode == 0) into.retcode = kRetcodeBadReply;
    } else {
        into.output.assign(reinterpret_cast<const char *>(output.data), static_cast<std::size_t>(output.length));
    }
    std::free(output.data);   // the plugin malloc()ed it for the host, which frees it (as the server)
    output = DataInfo{nullptr, 0};
}

std::string HostState::check_process(bool sync_call, const std::string & message, int & retcode) const {
    if (closing_.load()) {
        retcode = kRetcodeHostClosed;
        return "the plugin host is closed";
    }
    if (message.size() > static_cast<std::size_t>(kMaxMessageBytes)) {
        retcode = kRetcodeMessageTooLarge;
        return oversized("message", message.size());
    }
    if (sync_call != sync_mode) {
        // Checked before the plugin is called, as the server does.
        retcode = kRetcodeWrongInferMode;
        return std::string("the plugin's infer mode is \"") + infer_mode + "\": a " + (sync_call ? "synchronous" : "asynchronous") +
               " call is refused";
    }
    retcode = 0;
    return {};
}

IRequest * HostState::make_request(long long transaction_id, const std::string & message, int operation_id,
                                   int request_id) {
    MallocBuffer msg(message);
    IRequest * request = IRequest::Create();
    if (request == nullptr) throw std::bad_alloc();
    request->SetRequestId(request_id);
    request->SetOperationId(operation_id);
    request->SetClientUid(getuid());
    request->SetTransactionId(transaction_id);
    request->SetAlgoPluginType(plugin_type);
    request->SetMsg(msg.release());   // the request owns (and frees) the message
    return request;
}

void HostState::read_response(IResponse *& response, ProcessResult & into, const char * what) {
    into.response_retcode = response->GetRetCode();
    into.response_desc = response->GetRetDesc();
    const DataInfo & result = response->GetResult();
    if (result.data == nullptr) {
        if (result.length != 0) violation(std::string(what) + ": response result has length " +
                                          std::to_string(result.length) + " but no data");
    } else if (result.length < 0 || result.length > kMaxMessageBytes) {
        const std::string problem = result.length < 0
            ? std::string(what) + ": response result has a negative length (" + std::to_string(result.length) + ")"
            : oversized((std::string(what) + " result").c_str(), static_cast<std::size_t>(result.length));
        violation(problem);
        into.host_error = problem;
        if (into.retcode == 0) into.retcode = kRetcodeBadReply;
    } else {
        into.result.assign(reinterpret_cast<const char *>(result.data), static_cast<std::size_t>(result.length));
    }
    IResponse::Destroy(response);   // frees the result buffer unless the plugin detached it
}

ProcessResult HostState::run_sync(long long transaction_id, const std::string & message, int operation_id,
                                  int request_id) {
    ProcessResult result;
    result.request_id = request_id;
    result.host_error = check_process(true, message, result.retcode);
    if (result.retcode != 0) return result;

    IRequest * request = make_request(transaction_id, message, operation_id, request_id);
    IResponse * response = nullptr;
    const bool ran = with_plugin([&](IPlugin & plugin) {
        result.retcode = guarded("SyncProcess", [&] { return plugin.SyncProcess(request, response); });
    });
    IRequest::Destroy(request);
    if (!ran) return closed_result(request_id);
    if (response == nullptr) {
        if (result.retcode == 0) {
            violation("SyncProcess succeeded without a response (request " + std::to_string(request_id) + ")");
            result.retcode = kRetcodeNoResponse;
            result.host_error = "SyncProcess returned success but no response";
        }
        return result;
    }
    if (response->GetRequestId() != request_id) {
        violation("SyncProcess response carries request id " + std::to_string(response->GetRequestId()) +
                  " for request " + std::to_string(request_id) + " (create it with IResponse::Create(request))");
    }
    if (response->GetTransactionId() != transaction_id) {
        violation("SyncProcess response carries transaction id " + std::to_string(response->GetTransactionId()) +
                  " for transaction " + std::to_string(transaction_id));
    }
    read_response(response, result, "SyncProcess");
    return result;
}

PendingCall HostState::start_sync(long long transaction_id, const std::string & message, int operation_id) {
    PendingCall call;
    call.request_id_ = issue_request_id();
    call.sync_ = true;
    call.slot_ = std::make_shared<ReplySlot>();
    int retcode = 0;
    std::string refusal = check_process(true, message, retcode);
    if (retcode != 0) {
        call.slot_->result.retcode = retcode;
        call.slot_->result.host_error = std::move(refusal);
        call.slot_->result.request_id = call.request_id_;
        call.slot_->done = true;
        return call;
    }
    // The worker holds the state, not the PluginHost: the host may be destroyed meanwhile (its
    // close() then waits for the plugin call to return).
    std::shared_ptr<HostState> self = shared_from_this();
    std::shared_ptr<ReplySlot> slot = call.slot_;
    const int request_id = call.request_id_;
    try {
        std::thread([self, slot, transaction_id, message, operation_id, request_id] {
            ProcessResult result;
            try {
                result = self->run_sync(transaction_id, message, operation_id, request_id);
            } catch (const std::exception & e) {   // out of memory copying buffers
                result.retcode = OHOS::AI::RETCODE_OUT_OF_MEMORY;
                result.request_id = request_id;
                result.host_error = e.what();
            }
            std::lock_guard<std::mutex> lock(self->replies_mutex_);
            if (slot->abandoned) {
                ++self->late_replies_;
                return;
            }
            slot->result = std::move(result);
            slot->done = true;
            slot->arrived.notify_all();
        }).detach();
    } catch (const std::system_error & e) {
        call.slot_->result.retcode = kRetcodeFailure;
        call.slot_->result.request_id = request_id;
        call.slot_->result.host_error = std::string("cannot start a thread for the call: ") + e.what();
        call.slot_->done = true;
    }
    return call;
}

PendingCall HostState::start_async(long long transaction_id, const std::string & message, int operation_id) {
    PendingCall call;
    call.request_id_ = issue_request_id();
    call.slot_ = std::make_shared<ReplySlot>();
    ReplySlot & slot = *call.slot_;
    const int request_id = call.request_id_;
    int retcode = 0;
    std::string refusal = check_process(false, message, retcode);
    if (retcode != 0) {
        slot.result.retcode = retcode;
        slot.result.host_error = std::move(refusal);
        slot.result.request_id = request_id;
        slot.done = true;
        return call;
    }
    // Registered before the call: a plugin may reply before AsyncProcess returns.
    slot.transaction_id = transaction_id;
    {
        std::lock_guard<std::mutex> lock(replies_mutex_);
        awaiting_[request_id] = call.slot_;
    }
    int async_retcode = 0;
    bool ran = false;
    try {
        IRequest * request = make_request(transaction_id, message, operation_id, request_id);
        ran = with_plugin([&](IPlugin & plugin) {
            async_retcode = guarded("AsyncProcess", [&] { return plugin.AsyncProcess(request, this); });
        });
        // As the server does: the request is gone as soon as AsyncProcess returns, so a plugin
        // that keeps it past that point reads freed memory (and a sanitizer build shows it).
        IRequest::Destroy(request);
    } catch (...) {   // out of memory building the request
        std::lock_guard<std::mutex> lock(replies_mutex_);
        awaiting_.erase(request_id);
        throw;
    }

    std::lock_guard<std::mutex> lock(replies_mutex_);
    if (slot.done) {
        // Answered already (during AsyncProcess, or close() ended the wait). Keep the reply; a
        // failing return value still says the call failed.
        if (async_retcode != 0 && slot.result.retcode == 0) slot.result.retcode = async_retcode;
        return call;
    }
    if (!ran) {
        awaiting_.erase(request_id);
        slot.result = closed_result(request_id);
        slot.done = true;
    } else if (async_retcode != 0) {
        // The server would only log a failing AsyncProcess and leave the client to time out; the
        // host reports the code at once. A reply that still comes is counted late.
        awaiting_.erase(request_id);
        abandoned_.insert(request_id);
        slot.result.retcode = async_retcode;
        slot.result.request_id = request_id;
        slot.result.host_error = "AsyncProcess returned " + std::to_string(async_retcode) + " without replying";
        slot.done = true;
    }
    return call;
}

bool HostState::wait(PendingCall & call, std::chrono::milliseconds slice) {
    if (!call.slot_) return true;
    std::unique_lock<std::mutex> lock(replies_mutex_);
    ReplySlot & slot = *call.slot_;
    return slot.arrived.wait_for(lock, slice, [&] { return slot.done; });
}

ProcessResult HostState::finish(PendingCall & call) {
    if (!call.slot_) return closed_result(call.request_id_);
    std::lock_guard<std::mutex> lock(replies_mutex_);
    ReplySlot & slot = *call.slot_;
    if (slot.done) {
        ProcessResult result = std::move(slot.result);
        call.slot_.reset();
        return result;
    }
    slot.abandoned = true;
    if (!call.sync_ && awaiting_.erase(call.request_id_) > 0) abandoned_.insert(call.request_id_);
    ProcessResult result;
    result.request_id = call.request_id_;
    result.retcode = call.sync_ ? kRetcodeSyncTimeout : kRetcodeAsyncTimeout;
    result.host_error = call.sync_ ? "SyncProcess did not return in time" : "no reply (OnEvent) in time";
    call.slot_.reset();
    return result;
}

int HostState::OnEvent(PluginEvent event, IResponse * response) {
    if (response == nullptr) {
        violation("OnEvent with a null response (event " + std::to_string(static_cast<int>(event)) + ")");
        return OHOS::AI::RETCODE_NULL_PARAM;
    }
    const int request_id = response->GetRequestId();
    const long long transaction_id = response->GetTransactionId();
    ProcessResult reply;
    reply.request_id = request_id;
    reply.event = static_cast<int>(event);
    if (event != OHOS::AI::ON_PLUGIN_SUCCEED && event != OHOS::AI::ON_PLUGIN_FAIL) {
        violation("OnEvent with an unknown event " + std::to_string(static_cast<int>(event)) + " for request " +
                  std::to_string(request_id));
    }
    // The host takes the response whatever happens next: copy what it carries, then destroy it
    // (which frees its result unless the plugin detached it).
    try {
        read_response(response, reply, "OnEvent");
    } catch (...) {   // out of memory copying the result: the plugin must not see an exception
        IResponse::Destroy(response);
        reply.retcode = OHOS::AI::RETCODE_OUT_OF_MEMORY;
        reply.host_error = "out of memory copying the reply";
    }

    std::unique_lock<std::mutex> lock(replies_mutex_);
    if (replies_closed_) {
        lock.unlock();
        violation("OnEvent for request " + std::to_string(request_id) + " after the plugin was deleted (close())");
        return kRetcodeHostClosed;
    }
    auto waiting = awaiting_.find(request_id);
    if (waiting != awaiting_.end()) {
        std::shared_ptr<ReplySlot> slot = std::move(waiting->second);
        awaiting_.erase(waiting);
        const long long expected_transaction = slot->transaction_id;
        slot->result = std::move(reply);
        slot->done = true;
        slot->arrived.notify_all();
        lock.unlock();
        // The server routes a reply to its client by the transaction id: a changed one would
        // send it to another session.
        if (transaction_id != expected_transaction) {
            violation("OnEvent response for request " + std::to_string(request_id) + " carries transaction id " +
                      std::to_string(transaction_id) + " instead of " + std::to_string(expected_transaction));
        }
        return OHOS::AI::RETCODE_SUCCESS;
    }
    if (abandoned_.erase(request_id) > 0) {
        ++late_replies_;
        return OHOS::AI::RETCODE_SUCCESS;
    }
    const bool issued = was_issued(request_id);
    lock.unlock();
    violation(issued ? "a second OnEvent for request " + std::to_string(request_id) + " (each request gets exactly one reply)"
                     : "OnEvent for request " + std::to_string(request_id) + ", which the host never sent");
    return OHOS::AI::RETCODE_NULL_PARAM;
}

}  // namespace detail

// ---- PendingCall -------------------------------------------------------------------------

PendingCall::PendingCall() = default;
PendingCall::PendingCall(PendingCall &&) noexcept = default;
PendingCall & PendingCall::operator=(PendingCall &&) noexcept = default;
PendingCall::~PendingCall() = default;
int PendingCall::request_id() const { return request_id_; }

// ---- PluginHost --------------------------------------------------------------------------

PluginHost::PluginHost(const std::string & library_path, int plugin_type)
    : state_(std::make_shared<detail::HostState>()) {
    state_->library_path = library_path;
    state_->plugin_type = plugin_type;
    try {
        state_->load();
    } catch (...) {
        state_->close();   // a plugin created before the failure is deleted, its library closed
        throw;
    }
}

PluginHost::~PluginHost() {
    close();
    // The plugin holds a raw pointer to the state as its IPluginCallback. A plugin that still
    // owed replies when it was deleted broke the contract, and if its library stays mapped
    // (another host loaded it too) a stray thread of it may still call back: keep the state
    // alive for good rather than let that call land in freed memory. It costs a few hundred bytes.
    if (state_->may_still_be_called_back()) new std::shared_ptr<detail::HostState>(state_);
}

const std::string & PluginHost::library_path() const { return state_->library_path; }
const std::string & PluginHost::name() const { return state_->name; }
long long PluginHost::version() const { return state_->version; }
const std::string & PluginHost::infer_mode() const { return state_->infer_mode; }
bool PluginHost::is_sync() const { return state_->sync_mode; }
int PluginHost::adapter_id() const { return state_->adapter_id; }

long long PluginHost::new_transaction_id() {
    return make_transaction_id(state_->adapter_id, state_->next_session_id.fetch_add(1) + 1);
}

CallResult PluginHost::prepare(long long transaction_id, const std::string & input) {
    return state_->call_plugin("Prepare", input, true, [&](IPlugin & plugin, const DataInfo & in, DataInfo & out) {
        return plugin.Prepare(transaction_id, in, out);
    });
}

CallResult PluginHost::release(bool full_unload, long long transaction_id, const std::string & input) {
    return state_->call_plugin("Release", input, false, [&](IPlugin & plugin, const DataInfo & in, DataInfo &) {
        return plugin.Release(full_unload, transaction_id, in);
    });
}

CallResult PluginHost::set_option(int option_type, const std::string & input) {
    return state_->call_plugin("SetOption", input, false, [&](IPlugin & plugin, const DataInfo & in, DataInfo &) {
        return plugin.SetOption(option_type, in);
    });
}

CallResult PluginHost::get_option(int option_type, const std::string & input) {
    return state_->call_plugin("GetOption", input, true, [&](IPlugin & plugin, const DataInfo & in, DataInfo & out) {
        return plugin.GetOption(option_type, in, out);
    });
}

ProcessResult PluginHost::process_sync(long long transaction_id, const std::string & message, int operation_id) {
    return state_->run_sync(transaction_id, message, operation_id, state_->issue_request_id());
}

ProcessResult PluginHost::process_async(long long transaction_id, const std::string & message,
                                        std::chrono::milliseconds timeout, int operation_id) {
    PendingCall call = start_async(transaction_id, message, operation_id);
    wait(call, timeout);
    return finish(call);
}

PendingCall PluginHost::start_sync(long long transaction_id, const std::string & message, int operation_id) {
    return state_->start_sync(transaction_id, message, operation_id);
}

PendingCall PluginHost::start_async(long long transaction_id, const std::string & message, int operation_id) {
    return state_->start_async(transaction_id, message, operation_id);
}

bool PluginHost::wait(PendingCall & call, std::chrono::milliseconds slice) { return state_->wait(call, slice); }
ProcessResult PluginHost::finish(PendingCall & call) { return state_->finish(call); }
void PluginHost::close() { state_->close(); }
bool PluginHost::closed() const { return state_->closed(); }
std::vector<std::string> PluginHost::contract_violations() const { return state_->violations(); }
std::size_t PluginHost::contract_violation_count() const { return state_->violation_count(); }
std::size_t PluginHost::late_replies() const { return state_->late_replies(); }

}  // namespace ohai::aie
