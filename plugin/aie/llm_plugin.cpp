#include "llm_plugin.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "aie/retcode.h"
#include "aie_ids.h"
#include "model_directory.h"
#include "text_stream.h"
#include "ohai/isolation.h"
#include "ohai/log.h"

namespace ohai::aie {

using OHOS::AI::IPluginCallback;
using OHOS::AI::IRequest;
using OHOS::AI::IResponse;
using wire::ErrorKind;
using wire::WireError;

namespace {

constexpr uint32_t kDefaultWaitMs = 1000;
constexpr size_t kMaxQueuedJobs = 64;
// Text per stream_next reply: well below the 1 MiB message limit even when every byte needs a
// six-byte JSON escape.
constexpr size_t kMaxStreamTextBytes = 128 * 1024;

const std::vector<const char *> kOps = {"generate", "tokenize", "detokenize", "embed", "info",
                                        "stream_start", "stream_next", "stream_cancel"};

std::vector<const char *> with_op(std::vector<const char *> fields) {
    fields.push_back("op");
    return fields;
}

std::string directory_of_this_library() {
    Dl_info info {};
    if (::dladdr(reinterpret_cast<void *>(&directory_of_this_library), &info) == 0 || !info.dli_fname) return {};
    const std::string path = info.dli_fname;
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// The probe of new model files needs ohai-isolate; in the wheel it sits one folder above the
// plugins (ohai/ohai-isolate, ohai/plugins/libohai_llm.so), on a device next to them.
void configure_isolation(const PluginConfig & config) {
    IsolationSettings settings = isolation_settings();
    if (!config.probe_cache_dir.empty()) settings.cache_dir = config.probe_cache_dir;
    if (!config.isolate.empty()) {
        settings.executable = config.isolate;
    } else if (std::getenv("OHAI_ISOLATE") == nullptr) {
        const std::string dir = directory_of_this_library();
        for (const std::string candidate : {dir + "/ohai-isolate", dir + "/../ohai-isolate"}) {
            if (::access(candidate.c_str(), X_OK) == 0) {
                settings.executable = candidate;
                break;
            }
        }
    }
    set_isolation_settings(settings);
}

void configure_logging(const std::string & level_name) {
    LogLevel level = LogLevel::None;
    if (level_name == "debug") level = LogLevel::Debug;
    else if (level_name == "info") level = LogLevel::Info;
    else if (level_name == "warn") level = LogLevel::Warn;
    else if (level_name == "error") level = LogLevel::Error;
    if (level == LogLevel::None) {
        set_log_handler({}, LogLevel::None);
        return;
    }
    // A system service's stderr goes to its log (hilog on OpenHarmony).
    set_log_handler([](LogLevel, const std::string & line) { std::fprintf(stderr, "ohai_llm: %s\n", line.c_str()); },
                    level);
}

bool to_data_info(const std::string & bytes, DataInfo & out) {
    out.data = nullptr;
    out.length = 0;
    if (bytes.empty()) return true;
    auto * buffer = static_cast<unsigned char *>(std::malloc(bytes.size()));
    if (!buffer) return false;
    std::memcpy(buffer, bytes.data(), bytes.size());
    out.data = buffer;
    out.length = static_cast<int>(bytes.size());
    return true;
}

template <class Rep, class Period>
std::chrono::steady_clock::duration to_clock(std::chrono::duration<Rep, Period> d) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Plugin identity and lifetime

LlmPlugin::LlmPlugin(InferMode mode) : mode_(mode), config_(load_plugin_config()) {
    configure_logging(config_.config.log_level);
    configure_isolation(config_.config);
    if (!config_.error.empty()) log_message(LogLevel::Error, config_.error);
    if (!config_.warning.empty()) log_message(LogLevel::Warn, config_.warning);
    reply_thread_ = std::thread([this] { reply_loop(); });
    try {
        job_thread_ = std::thread([this] { job_loop(); });
    } catch (...) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closing_ = true;
        }
        wake_.notify_all();
        reply_thread_.join();
        throw;
    }
}

LlmPlugin::~LlmPlugin() {
    std::map<long long, Transaction> transactions;
    std::map<uint64_t, PendingReply> pending;
    std::deque<Delivery> outbox;
    std::map<uint64_t, Stream> streams;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        closing_ = true;
        delivered_.wait(lock, [&] { return delivering_transactions_.empty(); });
        transactions.swap(transactions_);
        pending.swap(pending_);
        outbox.swap(outbox_);
        streams.swap(streams_);
    }
    wake_.notify_all();
    jobs_cv_.notify_all();
    stream_cv_.notify_all();
    for (auto & kv : streams)
        if (kv.second.generation) kv.second.generation->cancel();
    for (auto & kv : transactions) {
        for (auto & weak : kv.second.generations)
            if (auto g = weak.lock()) g->cancel();
        // Cancels a running embedding too, so the job thread can be joined at once.
        if (kv.second.engine) kv.second.engine->engine->close();
    }
    if (reply_thread_.joinable()) reply_thread_.join();
    if (job_thread_.joinable()) job_thread_.join();
    // Nobody may be called back once the plugin is gone: unanswered requests are dropped.
    for (auto & kv : pending) IResponse::Destroy(kv.second.response);
    for (auto & d : outbox) IResponse::Destroy(d.pending.response);
    streams.clear();
    // Frees the engines (joining their workers); their callbacks find closing_ set.
    transactions.clear();
}

const long long LlmPlugin::GetVersion() const { return mode_ == InferMode::Async ? kAsyncVersion : kSyncVersion; }
const char * LlmPlugin::GetName() const { return mode_ == InferMode::Async ? kAsyncAid : kSyncAid; }
const char * LlmPlugin::GetInferMode() const { return mode_ == InferMode::Async ? "ASYNC" : "SYNC"; }

// ---------------------------------------------------------------------------------------------
// Replies

LlmPlugin::Reply LlmPlugin::error_reply(ErrorKind kind, const std::string & message) {
    return Reply{retcode_for(kind), wire::error_body(kind, message)};
}

int LlmPlugin::retcode_for(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::TooManyStreams:
        case ErrorKind::Overloaded: return OHOS::AI::RETCODE_QUEUE_FULL;
        case ErrorKind::Internal:
        case ErrorKind::Cancelled: return OHOS::AI::RETCODE_ALGORITHM_PROCESS_ERROR;
        default: return OHOS::AI::RETCODE_INVALID_PARAM;
    }
}

namespace {

// The bytes of a reply; one that would exceed ai_engine's limit becomes a payload_too_large error.
std::string serialize(int & retcode, const wire::Json & body) {
    std::string bytes = wire::dump(body);
    if (bytes.size() > wire::kMaxMessageBytes) {
        const std::string message = "the reply would be " + std::to_string(bytes.size()) + " bytes; the limit is " +
                                    std::to_string(wire::kMaxMessageBytes) + " (ask for less per request)";
        retcode = OHOS::AI::RETCODE_INVALID_PARAM;
        bytes = wire::dump(wire::error_body(ErrorKind::PayloadTooLarge, message));
    }
    return bytes;
}

std::string error_message(const wire::Json & body) {
    auto it = body.find("error");
    if (it == body.end() || !it->is_object()) return {};
    auto m = it->find("message");
    return m != it->end() && m->is_string() ? m->get<std::string>() : std::string();
}

}  // namespace

bool LlmPlugin::write_output(const Json & body, DataInfo & out, int & retcode) {
    return to_data_info(serialize(retcode, body), out);
}

void LlmPlugin::deliver(Delivery & d) {
    IResponse * response = d.pending.response;
    int retcode = d.reply.retcode;
    const std::string bytes = serialize(retcode, d.reply.body);
    DataInfo result {};
    if (!to_data_info(bytes, result)) retcode = OHOS::AI::RETCODE_OUT_OF_MEMORY;
    response->SetRetCode(retcode);
    if (retcode != 0) response->SetRetDesc(retcode == d.reply.retcode ? error_message(d.reply.body) : "reply too large");
    response->SetResult(result);   // the response owns the buffer now
    d.pending.callback->OnEvent(retcode == 0 ? OHOS::AI::ON_PLUGIN_SUCCEED : OHOS::AI::ON_PLUGIN_FAIL, response);
}

void LlmPlugin::deliver_safely(Delivery & d) {
    try {
        deliver(d);
    } catch (...) {
        // Out of memory while serialising: the client still gets its one (empty) answer.
        try {
            d.pending.response->SetRetCode(OHOS::AI::RETCODE_OUT_OF_MEMORY);
            d.pending.callback->OnEvent(OHOS::AI::ON_PLUGIN_FAIL, d.pending.response);
        } catch (...) {
        }
    }
}

uint64_t LlmPlugin::register_reply(const PendingReply & pending) {
    std::lock_guard<std::mutex> lock(mutex_);
    const uint64_t id = next_reply_id_++;
    pending_[id] = pending;
    ++requests_;
    return id;
}

void LlmPlugin::answer(uint64_t reply_id, Reply reply) {
    std::lock_guard<std::mutex> lock(mutex_);
    answer_locked(reply_id, std::move(reply));
}

void LlmPlugin::answer_locked(uint64_t reply_id, Reply reply) {
    auto it = pending_.find(reply_id);
    if (it == pending_.end()) return;   // answered already, or dropped by Release/close
    outbox_.push_back(Delivery{it->second, std::move(reply)});
    pending_.erase(it);
    wake_.notify_all();
}

void LlmPlugin::reply_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto idle = to_clock(std::chrono::duration<double>(config_.config.stream_idle_timeout_s));
    while (!closing_) {
        const auto now = Clock::now();
        auto next_wake = now + std::chrono::seconds(1);
        std::vector<std::shared_ptr<Generation>> expired;
        for (auto it = streams_.begin(); it != streams_.end();) {
            auto current = it++;
            Stream & s = current->second;
            if (s.waiting_reply) {
                if (now >= s.wait_deadline) answer_stream_poll_locked(current->first, s, /*timed_out=*/true);
                else next_wake = std::min(next_wake, s.wait_deadline);
            } else if (!s.sync_waiting) {
                const auto idle_deadline = s.last_poll + idle;
                if (now >= idle_deadline) {
                    log_message(LogLevel::Info, "stream " + std::to_string(current->first) +
                                                    " was not polled for " +
                                                    std::to_string(config_.config.stream_idle_timeout_s) +
                                                    " s: cancelled");
                    if (s.generation) expired.push_back(s.generation);
                    streams_.erase(current);
                } else {
                    next_wake = std::min(next_wake, idle_deadline);
                }
            }
        }
        if (!outbox_.empty() || !expired.empty()) {
            std::deque<Delivery> batch;
            batch.swap(outbox_);
            for (auto & d : batch) delivering_transactions_.insert(d.pending.transaction);
            lock.unlock();
            for (auto & g : expired) g->cancel();
            expired.clear();
            for (auto & d : batch) deliver_safely(d);
            lock.lock();
            for (auto & d : batch) delivering_transactions_.erase(delivering_transactions_.find(d.pending.transaction));
            batch.clear();
            delivered_.notify_all();
            continue;
        }
        wake_.wait_until(lock, next_wake);
    }
}

void LlmPlugin::job_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        jobs_cv_.wait(lock, [&] { return closing_ || !jobs_.empty(); });
        if (closing_) {
            // Queued jobs hold engines; they are destroyed outside the lock (an engine's
            // callbacks take it).
            std::deque<std::function<void()>> dropped;
            dropped.swap(jobs_);
            lock.unlock();
            return;
        }
        std::function<void()> job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        try {
            job();
        } catch (...) {
            // Jobs answer their own errors; nothing may escape the thread.
        }
        job = nullptr;
        lock.lock();
    }
}

bool LlmPlugin::post_job(std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_ || jobs_.size() >= kMaxQueuedJobs) return false;
        jobs_.push_back(std::move(job));
    }
    jobs_cv_.notify_one();
    return true;
}

// ---------------------------------------------------------------------------------------------
// Requests

LlmPlugin::Call LlmPlugin::parse_call(long long transaction, const DataInfo & msg) {
    if (msg.length < 0) throw WireError(ErrorKind::InvalidJson, "the message has a negative length");
    Call call;
    call.transaction = transaction;
    call.message = wire::parse_object(msg.data, static_cast<size_t>(msg.length));
    call.op = wire::get_string(call.message, "op");
    if (std::none_of(kOps.begin(), kOps.end(), [&](const char * op) { return call.op == op; }))
        throw WireError(ErrorKind::UnknownOp, "unknown op \"" + call.op.substr(0, 64) +
                                                  "\" (generate, tokenize, detokenize, embed, info, stream_start, "
                                                  "stream_next, stream_cancel)");
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = transactions_.find(transaction);
    if (it == transactions_.end())
        throw WireError(ErrorKind::NotPrepared,
                        "transaction " + std::to_string(transaction) + " is not prepared (call Prepare first)");
    call.engine = it->second.engine;
    return call;
}

bool LlmPlugin::run_immediate(const Call & call, Reply & reply) {
    const Model & model = *call.engine->model;
    if (call.op == "info") {
        wire::check_fields(call.message, {"op"});
        Json body;
        body["model"] = wire::model_info_json(model.info(), call.engine->engine->n_ctx());
        reply = Reply{0, std::move(body)};
    } else if (call.op == "tokenize") {
        wire::check_fields(call.message, {"op", "text", "add_special", "parse_special"});
        reply = Reply{0, wire::tokenize(call.message, model)};
    } else if (call.op == "detokenize") {
        wire::check_fields(call.message, {"op", "tokens"});
        reply = Reply{0, wire::detokenize(call.message, model)};
    } else if (call.op == "stream_start") {
        reply = stream_start(call);
    } else if (call.op == "stream_cancel") {
        reply = stream_cancel(call);
    } else {
        return false;
    }
    return true;
}

namespace {

GenerateRequest parse_generate(const wire::Json & message, const Model & model, const wire::GenerateDefaults & defaults) {
    wire::check_fields(message, with_op(wire::kGenerateFields));
    return wire::generate_request(message, model, defaults);
}

}  // namespace

LlmPlugin::Reply LlmPlugin::generate_sync(const Call & call) {
    wire::GenerateDefaults defaults;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        defaults = defaults_;
    }
    const GenerateRequest request = parse_generate(call.message, *call.engine->model, defaults);
    GenerationCallbacks callbacks;
    callbacks.on_piece = [](const std::string &) {};   // the text comes with the Completion
    auto generation = call.engine->engine->submit(request, std::move(callbacks));
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = transactions_.find(call.transaction);
        if (it != transactions_.end()) it->second.track(generation);
        else generation->cancel();   // released while we submitted
    }
    const Completion completion = generation->wait();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        tokens_generated_ += static_cast<uint64_t>(completion.usage.completion_tokens);
    }
    if (completion.finish_reason == FinishReason::Cancelled)
        return error_reply(ErrorKind::Cancelled, "the transaction was released while the request ran");
    return Reply{0, wire::completion_json(completion)};
}

LlmPlugin::Reply LlmPlugin::stream_start(const Call & call) {
    wire::GenerateDefaults defaults;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        defaults = defaults_;
    }
    const GenerateRequest request = parse_generate(call.message, *call.engine->model, defaults);
    uint64_t id = 0;
    {
        // The slot is taken before submitting, so max_streams holds under concurrent starts.
        std::lock_guard<std::mutex> lock(mutex_);
        if (streams_.size() >= config_.config.max_streams)
            throw WireError(ErrorKind::TooManyStreams,
                            std::to_string(streams_.size()) + " streams are open (max_streams " +
                                std::to_string(config_.config.max_streams) +
                                "): read or cancel one first");
        id = next_stream_id_++;
        Stream & s = streams_[id];
        s.transaction = call.transaction;
        s.last_poll = Clock::now();
    }
    GenerationCallbacks callbacks;
    callbacks.on_piece = [this, id](const std::string & piece) { on_stream_piece(id, piece); };
    callbacks.on_done = [this, id](const Completion * c, const Error * e) { on_stream_done(id, c, e); };
    std::shared_ptr<Generation> generation;
    try {
        generation = call.engine->engine->submit(request, std::move(callbacks));
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        streams_.erase(id);
        throw;
    }
    bool released = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto t = transactions_.find(call.transaction);
        auto s = streams_.find(id);
        if (t == transactions_.end() || s == streams_.end()) {
            released = true;
            streams_.erase(id);
        } else {
            s->second.generation = generation;
            t->second.track(generation);
        }
    }
    if (released) {
        generation->cancel();
        throw WireError(ErrorKind::Cancelled, "the transaction was released while the stream started");
    }
    Json body;
    body["stream"] = id;
    return Reply{0, std::move(body)};
}

LlmPlugin::Reply LlmPlugin::stream_cancel(const Call & call) {
    wire::check_fields(call.message, {"op", "stream"});
    const uint64_t id = static_cast<uint64_t>(wire::get_int(call.message, "stream", 0, 1, INT64_MAX));
    if (id == 0) throw WireError(ErrorKind::InvalidRequest, "missing field \"stream\"");
    std::shared_ptr<Generation> generation;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = streams_.find(id);
        if (it == streams_.end() || it->second.transaction != call.transaction)
            throw WireError(ErrorKind::UnknownStream, "no stream " + std::to_string(id) + " in this transaction");
        Stream & s = it->second;
        generation = s.generation;
        Json end;
        end["finish_reason"] = "cancelled";
        if (s.waiting_reply) {
            Json last;
            last["text"] = s.unread;
            last["done"] = true;
            last["finish_reason"] = "cancelled";
            answer_locked(s.waiting_reply, Reply{0, std::move(last)});
            streams_.erase(it);
        } else if (s.sync_waiting) {
            // The blocked SyncProcess takes the end (and the unread text) and removes the stream.
            s.done = true;
            s.final_reply = Reply{0, std::move(end)};
            s.generation.reset();
        } else {
            streams_.erase(it);
        }
        stream_cv_.notify_all();
    }
    if (generation) generation->cancel();
    Json body;
    body["stream"] = id;
    body["cancelled"] = true;
    return Reply{0, std::move(body)};
}

void LlmPlugin::on_stream_piece(uint64_t stream_id, const std::string & piece) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    it->second.unread += piece;
    if (it->second.sync_waiting) stream_cv_.notify_all();
    // May erase the stream: nothing of it is touched afterwards.
    if (it->second.waiting_reply) answer_stream_poll_locked(stream_id, it->second, false);
}

void LlmPlugin::on_stream_done(uint64_t stream_id, const Completion * completion, const Error * error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (completion) tokens_generated_ += static_cast<uint64_t>(completion->usage.completion_tokens);
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    Stream & s = it->second;
    s.done = true;
    if (completion) {
        Json body;
        body["finish_reason"] = finish_reason_name(completion->finish_reason);
        body["usage"] = wire::usage_json(completion->usage);
        body["timings"] = wire::timings_json(completion->timings);
        s.final_reply = Reply{0, std::move(body)};
    } else {
        s.final_reply = error
            ? error_reply(wire::error_kind_for(error->code()), error->what())
            : error_reply(ErrorKind::Internal, "the generation ended without a result");
    }
    if (s.sync_waiting) stream_cv_.notify_all();
    // May erase the stream: nothing of it is touched afterwards.
    if (s.waiting_reply) answer_stream_poll_locked(stream_id, s, false);
}

LlmPlugin::Reply LlmPlugin::take_stream_text_locked(uint64_t stream_id, Stream & s) {
    Json body;
    if (s.unread.size() > kMaxStreamTextBytes) {
        // Far more text than one reply may carry (a long generation nobody polled): hand it out
        // in pieces that end on a character boundary; the rest waits for the next poll.
        const size_t cut = utf8_complete_prefix(s.unread.substr(0, kMaxStreamTextBytes));
        body["text"] = s.unread.substr(0, cut);
        s.unread.erase(0, cut);
        body["done"] = false;
        return Reply{0, std::move(body)};
    }
    if (s.done && (s.final_reply.retcode == 0 || s.unread.empty())) {
        Reply last = std::move(s.final_reply);
        if (last.retcode == 0) {
            body["text"] = std::move(s.unread);
            body["done"] = true;
            for (auto it = last.body.begin(); it != last.body.end(); ++it) body[it.key()] = it.value();
            last.body = std::move(body);
        }
        streams_.erase(stream_id);   // the stream is over once its end was read
        return last;
    }
    // A failed stream hands out the text it has first; the next poll gets the error.
    body["text"] = std::move(s.unread);
    s.unread.clear();
    body["done"] = false;
    return Reply{0, std::move(body)};
}

void LlmPlugin::answer_stream_poll_locked(uint64_t stream_id, Stream & s, bool timed_out) {
    if (!s.waiting_reply) return;
    if (!timed_out && s.unread.empty() && !s.done) return;
    const uint64_t reply_id = s.waiting_reply;
    s.waiting_reply = 0;
    s.last_poll = Clock::now();
    Reply reply = take_stream_text_locked(stream_id, s);   // may erase the stream
    answer_locked(reply_id, std::move(reply));
}

namespace {

struct StreamNextArgs {
    uint64_t stream = 0;
    uint32_t wait_ms = 0;
};

StreamNextArgs stream_next_args(const wire::Json & message, uint32_t max_wait_ms) {
    wire::check_fields(message, {"op", "stream", "wait_ms"});
    StreamNextArgs a;
    a.stream = static_cast<uint64_t>(wire::get_int(message, "stream", 0, 1, INT64_MAX));
    if (a.stream == 0) throw WireError(ErrorKind::InvalidRequest, "missing field \"stream\"");
    a.wait_ms = static_cast<uint32_t>(wire::get_int(message, "wait_ms", std::min(kDefaultWaitMs, max_wait_ms), 0,
                                                    max_wait_ms));
    return a;
}

}  // namespace

void LlmPlugin::stream_next_async(const Call & call, uint64_t reply_id) {
    const StreamNextArgs a = stream_next_args(call.message, config_.config.max_wait_ms);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(a.stream);
    if (it == streams_.end() || it->second.transaction != call.transaction)
        throw WireError(ErrorKind::UnknownStream, "no stream " + std::to_string(a.stream) + " in this transaction");
    Stream & s = it->second;
    if (s.waiting_reply)
        throw WireError(ErrorKind::InvalidRequest, "a stream_next for stream " + std::to_string(a.stream) +
                                                       " is already waiting");
    const auto now = Clock::now();
    s.last_poll = now;
    if (!s.unread.empty() || s.done || a.wait_ms == 0) {
        answer_locked(reply_id, take_stream_text_locked(a.stream, s));
        return;
    }
    s.waiting_reply = reply_id;
    s.wait_deadline = now + std::chrono::milliseconds(a.wait_ms);
    wake_.notify_all();
}

LlmPlugin::Reply LlmPlugin::stream_next_sync(const Call & call) {
    const StreamNextArgs a = stream_next_args(call.message, config_.config.max_wait_ms);
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = streams_.find(a.stream);
    if (it == streams_.end() || it->second.transaction != call.transaction)
        throw WireError(ErrorKind::UnknownStream, "no stream " + std::to_string(a.stream) + " in this transaction");
    if (it->second.sync_waiting)
        throw WireError(ErrorKind::InvalidRequest, "a stream_next for stream " + std::to_string(a.stream) +
                                                       " is already waiting");
    it->second.sync_waiting = true;
    const auto deadline = Clock::now() + std::chrono::milliseconds(a.wait_ms);
    stream_cv_.wait_until(lock, deadline, [&] {
        auto s = streams_.find(a.stream);
        return closing_ || s == streams_.end() || !s->second.unread.empty() || s->second.done;
    });
    it = streams_.find(a.stream);
    if (it == streams_.end()) {
        // The same answers the async plugin gives a waiting poll.
        if (!transactions_.count(call.transaction))
            throw WireError(ErrorKind::Cancelled, "the transaction was released");
        throw WireError(ErrorKind::UnknownStream, "stream " + std::to_string(a.stream) + " ended while waiting");
    }
    it->second.sync_waiting = false;
    it->second.last_poll = Clock::now();
    return take_stream_text_locked(a.stream, it->second);
}

int LlmPlugin::SyncProcess(IRequest * request, IResponse *& response) {
    response = nullptr;
    if (request == nullptr) return OHOS::AI::RETCODE_NULL_PARAM;
    if (mode_ != InferMode::Sync) return OHOS::AI::RETCODE_WRONG_INFER_MODE;
    try {
        response = IResponse::Create(request);
        if (response == nullptr) return OHOS::AI::RETCODE_OUT_OF_MEMORY;
        Reply reply;
        try {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                ++requests_;
            }
            const Call call = parse_call(request->GetTransactionId(), request->GetMsg());
            if (!run_immediate(call, reply)) {
                if (call.op == "generate") {
                    reply = generate_sync(call);
                } else if (call.op == "embed") {
                    wire::check_fields(call.message, {"op", "input", "normalize"});
                    const auto texts = wire::embed_inputs(call.message);
                    const bool normalize = wire::get_bool(call.message, "normalize", true);
                    reply = Reply{0, wire::embeddings_json(call.engine->engine->embed(texts, normalize))};
                } else {
                    reply = stream_next_sync(call);
                }
            }
        } catch (const WireError & e) {
            reply = error_reply(e.kind(), e.what());
        } catch (const Error & e) {
            reply = error_reply(wire::error_kind_for(e.code()), e.what());
        } catch (const std::bad_alloc &) {
            reply = error_reply(ErrorKind::Internal, "out of memory");
        } catch (const std::exception & e) {
            reply = error_reply(ErrorKind::Internal, e.what());
        }
        int retcode = reply.retcode;
        const std::string bytes = serialize(retcode, reply.body);
        DataInfo result {};
        if (!to_data_info(bytes, result)) return OHOS::AI::RETCODE_OUT_OF_MEMORY;
        response->SetRetCode(retcode);
        if (retcode != 0) response->SetRetDesc(retcode == reply.retcode ? error_message(reply.body) : "reply too large");
        response->SetResult(result);
        return retcode;
    } catch (...) {
        return OHOS::AI::RETCODE_FAILURE;
    }
}

int LlmPlugin::AsyncProcess(IRequest * request, IPluginCallback * callback) {
    if (request == nullptr || callback == nullptr) return OHOS::AI::RETCODE_NULL_PARAM;
    if (mode_ != InferMode::Async) return OHOS::AI::RETCODE_WRONG_INFER_MODE;
    try {
        // The request is destroyed when we return: the response (which copies its ids) and the
        // parsed message are all that is kept.
        IResponse * response = IResponse::Create(request);
        if (response == nullptr) return OHOS::AI::RETCODE_OUT_OF_MEMORY;
        const long long transaction = request->GetTransactionId();
        uint64_t reply_id = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (closing_) {
                IResponse::Destroy(response);
                return OHOS::AI::RETCODE_FAILURE;
            }
        }
        try {
            reply_id = register_reply(PendingReply{transaction, response, callback});
        } catch (...) {
            IResponse::Destroy(response);
            throw;
        }
        try {
            const Call call = parse_call(transaction, request->GetMsg());
            Reply reply;
            if (run_immediate(call, reply)) {
                answer(reply_id, std::move(reply));
            } else if (call.op == "generate") {
                wire::GenerateDefaults defaults;
                {
                    std::lock_guard<std::mutex> lock(mutex_);
                    defaults = defaults_;
                }
                const GenerateRequest gr = parse_generate(call.message, *call.engine->model, defaults);
                GenerationCallbacks callbacks;
                callbacks.on_piece = [](const std::string &) {};   // the text comes with the Completion
                // Runs on the engine's worker: only hands the reply to the reply thread.
                callbacks.on_done = [this, reply_id](const Completion * c, const Error * e) {
                    Reply r;
                    if (c && c->finish_reason == FinishReason::Cancelled)
                        r = error_reply(ErrorKind::Cancelled, "the request was cancelled");
                    else if (c)
                        r = Reply{0, wire::completion_json(*c)};
                    else
                        r = error_reply(e ? wire::error_kind_for(e->code()) : ErrorKind::Internal,
                                        e ? e->what() : "the generation ended without a result");
                    std::lock_guard<std::mutex> lock(mutex_);
                    if (c) tokens_generated_ += static_cast<uint64_t>(c->usage.completion_tokens);
                    answer_locked(reply_id, std::move(r));
                };
                auto generation = call.engine->engine->submit(gr, std::move(callbacks));
                bool released = false;
                {
                    std::lock_guard<std::mutex> lock(mutex_);
                    auto it = transactions_.find(transaction);
                    if (it != transactions_.end()) it->second.track(generation);
                    else released = true;
                }
                if (released) generation->cancel();
            } else if (call.op == "embed") {
                wire::check_fields(call.message, {"op", "input", "normalize"});
                auto texts = wire::embed_inputs(call.message);
                const bool normalize = wire::get_bool(call.message, "normalize", true);
                auto engine = call.engine;
                const bool queued = post_job([this, reply_id, engine, texts = std::move(texts), normalize] {
                    {
                        std::lock_guard<std::mutex> lock(mutex_);
                        if (!pending_.count(reply_id)) return;   // released while it waited
                    }
                    Reply r;
                    try {
                        r = Reply{0, wire::embeddings_json(engine->engine->embed(texts, normalize))};
                    } catch (const Error & e) {
                        r = error_reply(wire::error_kind_for(e.code()), e.what());
                    } catch (const std::exception & e) {
                        r = error_reply(ErrorKind::Internal, e.what());
                    }
                    answer(reply_id, std::move(r));
                });
                if (!queued)
                    answer(reply_id, error_reply(ErrorKind::Overloaded, "too many embedding requests are queued"));
            } else {
                stream_next_async(call, reply_id);
            }
        } catch (const WireError & e) {
            answer(reply_id, error_reply(e.kind(), e.what()));
        } catch (const Error & e) {
            answer(reply_id, error_reply(wire::error_kind_for(e.code()), e.what()));
        } catch (const std::bad_alloc &) {
            answer(reply_id, error_reply(ErrorKind::Internal, "out of memory"));
        } catch (const std::exception & e) {
            answer(reply_id, error_reply(ErrorKind::Internal, e.what()));
        }
        return OHOS::AI::RETCODE_SUCCESS;
    } catch (...) {
        return OHOS::AI::RETCODE_FAILURE;
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions

int LlmPlugin::Prepare(long long transactionId, const DataInfo & inputInfo, DataInfo & outputInfo) {
    outputInfo.data = nullptr;
    outputInfo.length = 0;
    Reply reply;
    try {
        if (!config_.error.empty()) throw WireError(ErrorKind::Internal, config_.error);
        if (inputInfo.length < 0) throw WireError(ErrorKind::InvalidJson, "the message has a negative length");
        const Json in = wire::parse_object(inputInfo.data, static_cast<size_t>(inputInfo.length));
        wire::check_fields(in, {"model", "n_ctx", "threads", "parallel", "device"});
        const PluginConfig & c = config_.config;
        EngineKey key;
        key.path = resolve_model_path(c.model_dir, wire::get_string(in, "model"));
        const int64_t max_threads = c.max_threads > 0 ? c.max_threads
                                                      : std::max<int64_t>(1, std::thread::hardware_concurrency());
        key.n_ctx = static_cast<uint32_t>(wire::get_int(in, "n_ctx", std::min(c.n_ctx, c.max_n_ctx), 0, c.max_n_ctx));
        key.threads = static_cast<int32_t>(wire::get_int(in, "threads", std::min<int64_t>(c.threads, max_threads), 0,
                                                         max_threads));
        key.parallel = static_cast<uint32_t>(wire::get_int(in, "parallel", c.parallel, 0, 64));
        key.device = wire::get_string(in, "device", c.device);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (closing_) throw WireError(ErrorKind::Internal, "the plugin is shutting down");
            if (transactions_.count(transactionId))
                throw WireError(ErrorKind::InvalidRequest, "transaction " + std::to_string(transactionId) +
                                                               " is already prepared (Release it first)");
        }
        std::shared_ptr<SharedEngine> engine = pool_.acquire(key, c.max_engines);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (transactions_.count(transactionId))
                throw WireError(ErrorKind::InvalidRequest, "transaction " + std::to_string(transactionId) +
                                                               " is already prepared (Release it first)");
            transactions_[transactionId].engine = engine;
        }
        Json body;
        body["model"] = wire::model_info_json(engine->model->info(), engine->engine->n_ctx());
        reply = Reply{0, std::move(body)};
    } catch (const WireError & e) {
        reply = error_reply(e.kind(), e.what());
    } catch (const Error & e) {
        reply = error_reply(wire::error_kind_for(e.code()), e.what());
    } catch (const std::exception & e) {
        reply = error_reply(ErrorKind::Internal, e.what());
    } catch (...) {
        reply = error_reply(ErrorKind::Internal, "unknown error");
    }
    try {
        if (!write_output(reply.body, outputInfo, reply.retcode)) return OHOS::AI::RETCODE_OUT_OF_MEMORY;
    } catch (...) {
        return OHOS::AI::RETCODE_OUT_OF_MEMORY;
    }
    return reply.retcode;
}

int LlmPlugin::Release(bool isFullUnload, long long transactionId, const DataInfo & /*inputInfo*/) {
    try {
        std::vector<Delivery> to_deliver;
        std::vector<std::shared_ptr<Generation>> to_cancel;
        std::vector<Transaction> dropped;
        std::vector<std::shared_ptr<SharedEngine>> unused;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            auto it = transactions_.find(transactionId);
            if (it == transactions_.end() && !isFullUnload) return OHOS::AI::RETCODE_INVALID_PARAM;
            // isFullUnload: the last client is gone; whatever is left goes too.
            std::set<long long> released;
            for (auto & kv : transactions_)
                if (kv.first == transactionId || isFullUnload) released.insert(kv.first);
            // First take everything of the released transactions out (so nothing new of theirs
            // can be queued), then wait for an OnEvent of theirs that is under way: nothing for
            // them may follow Release.
            for (long long t : released) {
                auto ti = transactions_.find(t);
                for (auto & weak : ti->second.generations)
                    if (auto g = weak.lock()) to_cancel.push_back(g);
                dropped.push_back(std::move(ti->second));
                transactions_.erase(ti);
            }
            for (auto st = streams_.begin(); st != streams_.end();) {
                if (released.count(st->second.transaction)) {
                    if (st->second.generation) to_cancel.push_back(st->second.generation);
                    st = streams_.erase(st);
                } else {
                    ++st;
                }
            }
            stream_cv_.notify_all();
            for (auto d = outbox_.begin(); d != outbox_.end();) {
                if (released.count(d->pending.transaction)) {
                    to_deliver.push_back(std::move(*d));
                    d = outbox_.erase(d);
                } else {
                    ++d;
                }
            }
            for (auto p = pending_.begin(); p != pending_.end();) {
                if (released.count(p->second.transaction)) {
                    to_deliver.push_back(Delivery{p->second, error_reply(ErrorKind::Cancelled,
                                                                         "the transaction was released")});
                    p = pending_.erase(p);
                } else {
                    ++p;
                }
            }
            delivered_.wait(lock, [&] {
                for (long long t : delivering_transactions_)
                    if (released.count(t)) return false;
                return true;
            });
            // Engines no remaining transaction uses are closed now (a running embedding is
            // cancelled), not when the last queued job lets go of them.
            for (auto & d : dropped) {
                bool still_used = false;
                for (auto & kv : transactions_) still_used = still_used || kv.second.engine == d.engine;
                if (!still_used && d.engine) {
                    d.engine->retired = true;
                    unused.push_back(d.engine);
                }
            }
        }
        for (auto & g : to_cancel) g->cancel();
        // Answered here, before Release returns: never after it.
        for (auto & d : to_deliver) deliver_safely(d);
        for (auto & e : unused) e->engine->close();
        unused.clear();
        dropped.clear();   // frees the engines no other transaction uses
        return OHOS::AI::RETCODE_SUCCESS;
    } catch (...) {
        return OHOS::AI::RETCODE_FAILURE;
    }
}

// ---------------------------------------------------------------------------------------------
// Options

int LlmPlugin::SetOption(int optionType, const DataInfo & inputInfo) {
    try {
        if (optionType != kOptionDefaults) return OHOS::AI::RETCODE_INVALID_PARAM;
        if (inputInfo.length < 0) return OHOS::AI::RETCODE_INVALID_PARAM;
        const Json in = wire::parse_object(inputInfo.data, static_cast<size_t>(inputInfo.length));
        std::lock_guard<std::mutex> lock(mutex_);
        defaults_ = wire::update_defaults(in, defaults_);
        return OHOS::AI::RETCODE_SUCCESS;
    } catch (const std::exception & e) {
        log_message(LogLevel::Warn, std::string("SetOption refused: ") + e.what());
        return OHOS::AI::RETCODE_INVALID_PARAM;
    } catch (...) {
        return OHOS::AI::RETCODE_FAILURE;
    }
}

int LlmPlugin::GetOption(int optionType, const DataInfo & /*inputInfo*/, DataInfo & outputInfo) {
    outputInfo.data = nullptr;
    outputInfo.length = 0;
    try {
        Json body;
        int retcode = OHOS::AI::RETCODE_SUCCESS;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (optionType == kOptionDefaults) {
                body = wire::defaults_json(defaults_);
            } else if (optionType == kOptionModels) {
                Json models = Json::array();
                std::set<const SharedEngine *> seen;
                for (const auto & kv : transactions_) {
                    const SharedEngine * e = kv.second.engine.get();
                    if (!seen.insert(e).second) continue;
                    models.push_back(wire::model_info_json(e->model->info(), e->engine->n_ctx()));
                }
                body["models"] = std::move(models);
            } else if (optionType == kOptionStats) {
                std::set<const SharedEngine *> engines;
                for (const auto & kv : transactions_) engines.insert(kv.second.engine.get());
                body["transactions"] = transactions_.size();
                body["engines"] = engines.size();
                body["active_streams"] = streams_.size();
                body["requests"] = requests_;
                body["tokens_generated"] = tokens_generated_;
            } else {
                retcode = OHOS::AI::RETCODE_INVALID_PARAM;
                body = wire::error_body(ErrorKind::InvalidRequest,
                                        "unknown option type " + std::to_string(optionType) + " (1001, 1002, 2001)");
            }
        }
        if (!write_output(body, outputInfo, retcode)) return OHOS::AI::RETCODE_OUT_OF_MEMORY;
        return retcode;
    } catch (...) {
        return OHOS::AI::RETCODE_FAILURE;
    }
}

}  // namespace ohai::aie
