// ohai — the engine as an ai_engine algorithm plugin (OHOS::AI::IPlugin): one instance serves
// every client of its AID; transactions that prepare the same model share one engine.
//
// Threads: ai_engine calls in from its IPC threads. Asynchronous replies are delivered by the
// plugin's reply thread (never by the engine's worker, which must not wait on IPC), blocking work
// (embeddings) runs on the plugin's job thread, and generation runs in the engine's scheduler.
// The wire protocol is in docs/aie-protocol.md.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aie/plugin.h"
#include "engine_pool.h"
#include "plugin_config.h"
#include "request_json.h"

namespace ohai::aie {

enum class InferMode { Sync, Async };

class LlmPlugin : public OHOS::AI::IPlugin {
public:
    explicit LlmPlugin(InferMode mode);
    // Cancels every request and stream, drops replies not yet delivered (nobody may be called
    // back after this), joins the plugin's threads and frees every engine.
    ~LlmPlugin() override;

    const long long GetVersion() const override;
    const char * GetName() const override;
    const char * GetInferMode() const override;
    int SyncProcess(OHOS::AI::IRequest * request, OHOS::AI::IResponse *& response) override;
    int AsyncProcess(OHOS::AI::IRequest * request, OHOS::AI::IPluginCallback * callback) override;
    int Prepare(long long transactionId, const DataInfo & inputInfo, DataInfo & outputInfo) override;
    int Release(bool isFullUnload, long long transactionId, const DataInfo & inputInfo) override;
    int SetOption(int optionType, const DataInfo & inputInfo) override;
    int GetOption(int optionType, const DataInfo & inputInfo, DataInfo & outputInfo) override;

private:
    using Clock = std::chrono::steady_clock;
    using Json = wire::Json;

    // What a request gets back: a return code (0 = success) and a JSON body.
    struct Reply {
        int retcode = 0;
        Json body;
    };

    // A prepared client session: the engine it uses and the work it has running.
    struct Transaction {
        std::shared_ptr<SharedEngine> engine;
        std::vector<std::weak_ptr<Generation>> generations;   // for Release to cancel
        // Remembers a running generation; finished ones are dropped as the list grows, so a
        // client that never releases does not accumulate them.
        void track(const std::shared_ptr<Generation> & g) {
            if (generations.size() >= 2 * pruned_size + 16) {
                std::vector<std::weak_ptr<Generation>> live;
                for (auto & w : generations)
                    if (!w.expired()) live.push_back(w);
                generations.swap(live);
                pruned_size = generations.size();
            }
            generations.push_back(g);
        }
        size_t pruned_size = 0;
    };

    // An asynchronous request that has not been answered yet. The response was created in
    // AsyncProcess (the request dies when it returns).
    struct PendingReply {
        long long transaction = 0;
        OHOS::AI::IResponse * response = nullptr;
        OHOS::AI::IPluginCallback * callback = nullptr;
    };
    struct Delivery {
        PendingReply pending;
        Reply reply;
    };

    // A generation read piece by piece with stream_next.
    struct Stream {
        long long transaction = 0;
        std::shared_ptr<Generation> generation;
        std::string unread;
        bool done = false;
        Reply final_reply;                 // set with done: the last stream_next's answer
        Clock::time_point last_poll;
        uint64_t waiting_reply = 0;        // async: the stream_next waiting for text (0 = none)
        Clock::time_point wait_deadline;
        bool sync_waiting = false;         // sync: a SyncProcess is blocked in stream_next
    };

    // Everything one request message asks for, after parsing.
    struct Call {
        long long transaction = 0;
        Json message;
        std::string op;
        std::shared_ptr<SharedEngine> engine;   // the transaction's
    };

    static Reply error_reply(wire::ErrorKind kind, const std::string & message);
    static int retcode_for(wire::ErrorKind kind);
    // Serialises `body` into a malloc()ed buffer; a reply over the size limit becomes an error
    // body and `retcode` says so.
    static bool write_output(const Json & body, DataInfo & out, int & retcode);

    // Parses the message and finds the transaction; throws WireError.
    Call parse_call(long long transaction, const DataInfo & msg);
    // Runs the ops that answer at once (both modes). Empty optional: the op needs more.
    bool run_immediate(const Call & call, Reply & reply);
    Reply generate_sync(const Call & call);
    Reply stream_start(const Call & call);
    Reply stream_cancel(const Call & call);
    Reply stream_next_sync(const Call & call);
    void stream_next_async(const Call & call, uint64_t reply_id);

    // Async replies: register, answer once (from any thread), deliver on the reply thread.
    uint64_t register_reply(const PendingReply & pending);
    void answer(uint64_t reply_id, Reply reply);
    void reply_loop();
    void job_loop();
    bool post_job(std::function<void()> job);
    // Answers a stream's waiting stream_next if it can be answered now (lock held).
    void answer_stream_poll_locked(uint64_t stream_id, Stream & stream, bool timed_out);
    Reply take_stream_text_locked(uint64_t stream_id, Stream & stream);
    void answer_locked(uint64_t reply_id, Reply reply);
    void deliver(Delivery & d);
    void deliver_safely(Delivery & d);   // deliver(); on an exception, an empty failure reply

    void on_stream_piece(uint64_t stream_id, const std::string & piece);
    void on_stream_done(uint64_t stream_id, const Completion * completion, const Error * error);

    const InferMode mode_;
    const LoadedConfig config_;
    EnginePool pool_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;        // the reply thread: something to deliver or a deadline moved
    std::condition_variable stream_cv_;   // sync stream_next waiters
    std::condition_variable delivered_;   // Release waits for an OnEvent in progress
    bool closing_ = false;
    wire::GenerateDefaults defaults_;
    std::map<long long, Transaction> transactions_;
    std::map<uint64_t, PendingReply> pending_;
    std::deque<Delivery> outbox_;
    std::multiset<long long> delivering_transactions_;   // replies the reply thread is delivering
    std::map<uint64_t, Stream> streams_;
    uint64_t next_reply_id_ = 1;
    uint64_t next_stream_id_ = 1;
    uint64_t requests_ = 0;
    uint64_t tokens_generated_ = 0;

    std::deque<std::function<void()>> jobs_;
    std::condition_variable jobs_cv_;

    std::thread reply_thread_;
    std::thread job_thread_;
};

}  // namespace ohai::aie
