// ohai — a host that loads an ai_engine plugin library and drives it the way ai_engine's server
// does, so that a plugin can be tested on a PC: the same dlopen flags, factory symbol, request and
// response objects, call-mode check, message limit, reply-once rule and unload sequence.
//
// Where the server would only log a plugin's mistake (a second reply, a reply for a request it
// does not know, an oversized or malformed buffer), the host also records it as a "contract
// violation" so that tests can assert there were none.
//
// Linking: the host provides the data channel (IRequest/IResponse) that plugins resolve at load
// time, so those symbols must be visible in the process's global scope. A shared library holding
// the host (a Python extension) is promoted to RTLD_GLOBAL automatically; an executable linking
// `ohai_aie_host` must export its symbols: set_target_properties(exe PROPERTIES ENABLE_EXPORTS ON)
// (-rdynamic). Without that, loading fails with RETCODE_PLUGIN_LOAD_FAILED and says so.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ohai::aie {

// ai_engine's receiver refuses any message larger than this, in either direction.
constexpr int kMaxMessageBytes = 1 << 20;

// Host-side failures reported with ai_engine's codes (aie/retcode.h), so that callers handle one
// set of numbers. The host's own explanation is in `host_error` of the result.
constexpr int kRetcodeMessageTooLarge = 1006;   // RETCODE_INVALID_PARAM: over kMaxMessageBytes
constexpr int kRetcodeBadReply = 1006;          // RETCODE_INVALID_PARAM: unusable plugin output
constexpr int kRetcodeHostClosed = 1201;        // RETCODE_PLUGIN_LOAD_FAILED: no plugin loaded (any more)
constexpr int kRetcodeNoResponse = 1002;        // RETCODE_NULL_PARAM: success without a response
constexpr int kRetcodeWrongInferMode = 1207;    // RETCODE_WRONG_INFER_MODE
constexpr int kRetcodeSyncTimeout = 1300;       // RETCODE_SYNC_MSG_TIMEOUT
constexpr int kRetcodeAsyncTimeout = 1301;      // RETCODE_ASYNC_MSG_TIMEOUT
constexpr int kRetcodeFailure = -1;             // RETCODE_FAILURE: the plugin threw

// ai_engine's transaction id: which adapter (client connection) and which session of it.
constexpr long long make_transaction_id(int adapter_id, int session_id) {
    return (static_cast<long long>(adapter_id) << 32) + session_id;
}

// Loading failed: retcode is SO_LACK_SYMBOL (1200), OPEN_SO_FAILED (1202, with dlerror's text)
// or PLUGIN_LOAD_FAILED (1201: the factory returned null or threw, or the data channel is not
// visible to plugins).
class LoadError : public std::runtime_error {
public:
    LoadError(int retcode, const std::string & message) : std::runtime_error(message), retcode_(retcode) {}
    int retcode() const { return retcode_; }

private:
    int retcode_;
};

// Prepare, Release, SetOption, GetOption.
struct CallResult {
    int retcode = 0;          // the plugin's return value, or a host code (kRetcode*)
    std::string output;       // Prepare/GetOption output, copied; the plugin's buffer is freed
    std::string host_error;   // why the host refused or failed the call; empty otherwise
};

// SyncProcess, AsyncProcess.
struct ProcessResult {
    int retcode = 0;            // SyncProcess/AsyncProcess's return value, or a host code (kRetcode*)
    int event = -1;             // asynchronous: the PluginEvent of the reply; -1 without one
    int response_retcode = 0;   // IResponse::GetRetCode()
    std::string response_desc;  // IResponse::GetRetDesc()
    std::string result;         // IResponse::GetResult(), copied
    std::string host_error;
    int request_id = 0;
};

namespace detail {
class HostState;
struct ReplySlot;
}  // namespace detail

// A call in flight, from start_sync/start_async until finish(); movable, not copyable.
class PendingCall {
public:
    PendingCall();
    PendingCall(PendingCall &&) noexcept;
    PendingCall & operator=(PendingCall &&) noexcept;
    ~PendingCall();
    int request_id() const;

private:
    friend class detail::HostState;   // fills and consumes it
    std::shared_ptr<detail::ReplySlot> slot_;
    int request_id_ = 0;
    bool sync_ = false;
};

// Thread-safe: any number of threads may call any method at once, as the server's threads do.
// The plugin itself sees concurrent calls and must cope with them.
class PluginHost {
public:
    // Loads the library like ai_engine's server (dlopen RTLD_NOW|RTLD_LOCAL, dlsym
    // "PLUGIN_INTERFACE", factory) and reads the plugin's name, version and infer mode.
    // `plugin_type` is what requests and responses carry as the algorithm plugin type.
    explicit PluginHost(const std::string & library_path, int plugin_type = 0);
    ~PluginHost();   // close()s
    PluginHost(const PluginHost &) = delete;
    PluginHost & operator=(const PluginHost &) = delete;

    const std::string & library_path() const;
    const std::string & name() const;
    long long version() const;
    const std::string & infer_mode() const;
    bool is_sync() const;   // the server's test: strcmp(infer mode, "SYNC") == 0

    // This host's adapter id (unique in the process) and a fresh transaction id with the next
    // session id.
    int adapter_id() const;
    long long new_transaction_id();

    CallResult prepare(long long transaction_id, const std::string & input);
    CallResult release(bool full_unload, long long transaction_id, const std::string & input);
    CallResult set_option(int option_type, const std::string & input);
    CallResult get_option(int option_type, const std::string & input);

    // SyncProcess on the calling thread; blocks until the plugin returns.
    ProcessResult process_sync(long long transaction_id, const std::string & message, int operation_id = 0);
    // AsyncProcess, then waits for the reply; kRetcodeAsyncTimeout after `timeout`.
    ProcessResult process_async(long long transaction_id, const std::string & message,
                                std::chrono::milliseconds timeout, int operation_id = 0);

    // The same calls in pieces, for a caller that waits in slices (to check for Ctrl-C): start,
    // wait() until it returns true or the caller gives up, then finish(). start_sync runs
    // SyncProcess on a thread of its own, so that a caller can stop waiting for a plugin that
    // hangs (the call itself still ends only when the plugin returns, as in the server).
    PendingCall start_sync(long long transaction_id, const std::string & message, int operation_id = 0);
    PendingCall start_async(long long transaction_id, const std::string & message, int operation_id = 0);
    // True once the result is there (at once for a call refused before reaching the plugin).
    bool wait(PendingCall & call, std::chrono::milliseconds slice);
    // The result; a call without one yet is abandoned and reported as timed out (1300 / 1301).
    // A reply arriving after that is counted in late_replies(), not as a violation.
    ProcessResult finish(PendingCall & call);

    // `delete`s the plugin (which must have joined its own threads: no reply may come later) and
    // dlclose()s the library. Waits for calls inside the plugin to return first; calls still
    // waiting for a reply afterwards end with kRetcodeHostClosed. Idempotent.
    void close();
    bool closed() const;

    // What the plugin did that the contract forbids, oldest first (the list is capped; the count
    // is not).
    std::vector<std::string> contract_violations() const;
    std::size_t contract_violation_count() const;
    // Replies that came after the host stopped waiting for them (timeout, interrupt).
    std::size_t late_replies() const;

private:
    std::shared_ptr<detail::HostState> state_;
};

}  // namespace ohai::aie
