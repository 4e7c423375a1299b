#include "scheduler.h"

#include <algorithm>
#include <climits>

#include "fork_guard.h"
#include "generation_session.h"
#include "kv_blocks.h"

namespace ohai {
namespace {

size_t common_prefix(const std::vector<Token> & a, size_t a_len, const std::vector<Token> & b) {
    const size_t n = std::min(a_len, b.size());
    size_t i = 0;
    while (i < n && a[i] == b[i]) ++i;
    return i;
}

}  // namespace

// Everything the worker thread owns: the contexts, the slots, the KV accounting, and the
// requests it has taken from the queue but not placed in a slot yet (preempted ones included).
class Scheduler::Worker {
public:
    Worker(std::shared_ptr<State> state, std::shared_ptr<Model> model, const EngineParams & params, uint32_t n_ctx)
        : state_(std::move(state)),
          wc_(std::move(model), params, n_ctx),
          // n_ctx cells rounded up to whole blocks: a lone request can always use the whole context.
          blocks_((n_ctx + params.kv_block - 1) / params.kv_block * params.kv_block, params.kv_block, params.n_parallel),
          batch_(llama_batch_init(static_cast<int32_t>(params.n_batch), 0, 1)) {
        for (uint32_t i = 0; i < params.n_parallel; ++i) slots_.push_back(Slot{static_cast<llama_seq_id>(i)});
        const llama_model * m = wc_.model->handle();
        reuse_cells_ = !llama_model_is_recurrent(m) && !llama_model_is_hybrid(m) && llama_model_n_swa(m) == 0;
        wc_.cancel_flag = &state_->stop;   // only closing aborts a decode; requests cancel between steps
        publish_stats();
    }
    ~Worker() { llama_batch_free(batch_); }

    void run();

private:
    struct Slot {
        llama_seq_id seq;
        std::unique_ptr<GenerationSession> session;   // the running request, or none
        std::vector<Token> cached;                    // idle: tokens whose cells this sequence keeps
        uint64_t last_used = 0;                       // idle caches are evicted least recently used first
        uint64_t order = 0;                           // arrival order of the running request
    };
    struct Waiting {
        uint64_t order;
        std::shared_ptr<Generation> generation;
        std::unique_ptr<GenerationSession> session;   // set when preempted: resumes where it was
    };
    struct Planned {
        Slot * slot;
        size_t n;
    };

    llama_memory_t memory() { return llama_get_memory(wc_.ctx.get()); }
    size_t busy() const;
    bool take_from_queue(std::vector<Job> & tasks);
    void run_tasks(std::vector<Job> & tasks);
    void admit_waiting();
    bool admit(Waiting & w);
    bool evict_cached(const Slot * keep);
    Slot * newest_running(const std::vector<Planned> & planned, const Slot * except);
    void preempt(Slot & slot);
    void settle(Slot & slot);
    void end_waiting(Waiting & w, const Error * error);
    void deliver_finished();
    void cancel_requested();
    void step();
    void publish_stats();

    std::shared_ptr<State> state_;
    WorkerContext wc_;
    KvBlocks blocks_;
    llama_batch batch_;
    std::vector<Slot> slots_;
    std::deque<Waiting> waiting_;   // by arrival order
    // Done this round; their results go out after the statistics (see GenerationSession::deliver).
    std::vector<std::unique_ptr<GenerationSession>> finished_;
    // Whether a sequence's cells can be cut back to a prefix and shared. Not for recurrent or
    // hybrid models (their state cannot be partly erased) nor sliding-window caches (old cells are
    // overwritten): those start every request from an empty sequence.
    bool reuse_cells_ = true;
    uint64_t tick_ = 0;
    uint64_t arrivals_ = 0;
    EngineStats counters_;          // the cumulative counters; published into state_->stats
};

size_t Scheduler::Worker::busy() const {
    size_t n = 0;
    for (const auto & s : slots_) n += s.session != nullptr;
    return n;
}

// Takes the tasks and as many generations as there are free slots from the shared queue.
// Returns false when the worker should end (closing, nothing left).
bool Scheduler::Worker::take_from_queue(std::vector<Job> & tasks) {
    std::unique_lock<std::mutex> lock(state_->mutex);
    state_->wake.wait(lock, [&] { return state_->closing || !state_->queue.empty() || busy() > 0 || !waiting_.empty(); });
    if (state_->closing && state_->queue.empty() && busy() == 0 && waiting_.empty()) return false;
    size_t room = slots_.size() > busy() + waiting_.size() ? slots_.size() - busy() - waiting_.size() : 0;
    for (auto it = state_->queue.begin(); it != state_->queue.end();) {
        if (!it->generation) {
            tasks.push_back(std::move(*it));
            it = state_->queue.erase(it);
        } else if (room > 0 || it->generation->cancelled()) {
            if (room > 0 && !it->generation->cancelled()) --room;
            waiting_.push_back(Waiting{arrivals_++, std::move(it->generation), nullptr});
            it = state_->queue.erase(it);
        } else {
            ++it;
        }
    }
    state_->waiting_in_worker = static_cast<uint32_t>(waiting_.size());
    return true;
}

void Scheduler::Worker::run_tasks(std::vector<Job> & tasks) {
    for (auto & job : tasks) {
        try {
            if (state_->stop) throw Error(ErrorCode::Cancelled, "the model was closed while the request ran");
            job.task(wc_);
            job.done->set_value();
        } catch (...) {
            if (state_->stop)
                job.done->set_exception(std::make_exception_ptr(
                    Error(ErrorCode::Cancelled, "the model was closed while the request ran")));
            else
                job.done->set_exception(std::current_exception());
        }
    }
    tasks.clear();
}

bool Scheduler::Worker::evict_cached(const Slot * keep) {
    Slot * victim = nullptr;
    for (auto & s : slots_)
        if (&s != keep && !s.session && blocks_.held(s.seq) > 0 && (!victim || s.last_used < victim->last_used))
            victim = &s;
    if (!victim) return false;
    llama_memory_seq_rm(memory(), victim->seq, -1, -1);
    blocks_.release(victim->seq);
    victim->cached.clear();
    return true;
}

// Places a waiting request in a free slot, reusing the longest cached prefix; false when no slot
// is free or its prompt does not fit yet.
bool Scheduler::Worker::admit(Waiting & w) {
    const std::vector<Token> & tokens = w.session ? w.session->tokens() : w.generation->impl().prompt;
    Slot * slot = nullptr;
    size_t reuse = 0;
    for (auto & s : slots_) {
        if (s.session) continue;
        const size_t lcp = reuse_cells_ ? common_prefix(s.cached, s.cached.size(), tokens) : 0;
        // Longest shared prefix; among equals the least recently used (its cache matters least).
        if (!slot || lcp > reuse || (lcp == reuse && s.last_used < slot->last_used)) {
            slot = &s;
            reuse = lcp;
        }
    }
    if (!slot) return false;
    // A running sequence may share more (two requests with one system prompt arriving together).
    Slot * donor = nullptr;
    size_t donor_lcp = reuse;
    for (auto & s : slots_) {
        if (!s.session || !reuse_cells_) continue;
        const size_t lcp = common_prefix(s.session->tokens(), s.session->n_past(), tokens);
        if (lcp > donor_lcp) {
            donor = &s;
            donor_lcp = lcp;
        }
    }
    const size_t usable = tokens.size() - 1;   // the last token is decoded for its logits
    const uint64_t need = std::min<uint64_t>(tokens.size() + blocks_.block_size(), blocks_.total() * uint64_t(blocks_.block_size()));
    // Room first, without touching the cache, so that a request that must wait changes nothing.
    uint64_t kept = std::min(donor ? donor_lcp : reuse, usable);
    const uint32_t have = donor ? 0 : blocks_.blocks_for(kept);
    uint32_t evictable = 0;
    for (auto & s : slots_)
        if (&s != slot && !s.session) evictable += blocks_.held(s.seq);
    const uint32_t slot_extra = blocks_.held(slot->seq) > have ? blocks_.held(slot->seq) - have : 0;
    if (blocks_.blocks_for(need) > have + blocks_.free() + slot_extra + evictable) return false;

    if (donor) {
        llama_memory_seq_rm(memory(), slot->seq, -1, -1);
        llama_memory_seq_cp(memory(), donor->seq, slot->seq, 0, static_cast<llama_pos>(kept));
        blocks_.release(slot->seq);
    } else if (!llama_memory_seq_rm(memory(), slot->seq, static_cast<llama_pos>(kept), -1)) {
        // The cache cannot cut this sequence back to the prefix: start it empty.
        llama_memory_seq_rm(memory(), slot->seq, -1, -1);
        kept = 0;
    }
    blocks_.shrink(slot->seq, kept);
    while (!blocks_.grow(slot->seq, need))
        if (!evict_cached(slot)) break;   // cannot happen after the check above; the step copes if it does
    slot->cached.clear();
    slot->order = w.order;
    if (w.session) {
        w.session->move_to(slot->seq, kept);
        slot->session = std::move(w.session);
    } else {
        slot->session = std::make_unique<GenerationSession>(wc_, std::move(w.generation), slot->seq, kept);
        counters_.prompt_tokens_cached += slot->session->n_past();
        if (slot->session->done()) settle(*slot);   // refused at construction: nothing to run
    }
    return true;
}

void Scheduler::Worker::admit_waiting() {
    while (!waiting_.empty()) {
        Waiting & w = waiting_.front();
        if (!w.session && w.generation->cancelled()) {
            end_waiting(w, nullptr);   // never started: ends as cancelled without taking a slot
            waiting_.pop_front();
            continue;
        }
        if (!admit(w)) {
            if (busy() == 0) {
                // Nothing runs and the cache is empty, yet it does not fit: it never will.
                const Error e(ErrorCode::ContextOverflow, "the request does not fit the KV cache");
                end_waiting(w, &e);
                waiting_.pop_front();
                continue;
            }
            break;   // first come, first served: later requests wait too
        }
        waiting_.pop_front();
    }
}

Scheduler::Worker::Slot * Scheduler::Worker::newest_running(const std::vector<Planned> & planned, const Slot * except) {
    Slot * newest = nullptr;
    for (auto & s : slots_) {
        if (!s.session || &s == except) continue;
        bool in_plan = false;
        for (const auto & p : planned) in_plan = in_plan || p.slot == &s;
        if (!in_plan && (!newest || s.order > newest->order)) newest = &s;
    }
    return newest;
}

void Scheduler::Worker::preempt(Slot & slot) {
    llama_memory_seq_rm(memory(), slot.seq, -1, -1);
    blocks_.release(slot.seq);
    slot.cached.clear();
    slot.session->move_to(slot.seq, 0);
    Waiting w{slot.order, nullptr, std::move(slot.session)};
    auto pos = std::find_if(waiting_.begin(), waiting_.end(), [&](const Waiting & x) { return x.order > w.order; });
    waiting_.insert(pos, std::move(w));
    ++counters_.preemptions;
}

// A slot whose request ended: its cells stay as prefix cache (unless it failed).
void Scheduler::Worker::settle(Slot & slot) {
    if (!slot.session || !slot.session->done()) return;
    const bool failed = slot.session->failed();
    if (failed) ++counters_.requests_failed;
    else if (slot.session->finish_reason() == FinishReason::Cancelled) ++counters_.requests_cancelled;
    else ++counters_.requests_completed;
    if (failed || !reuse_cells_) {
        llama_memory_seq_rm(memory(), slot.seq, -1, -1);
        blocks_.release(slot.seq);
        slot.cached.clear();
    } else {
        const size_t n = slot.session->n_past();
        slot.cached.assign(slot.session->tokens().begin(), slot.session->tokens().begin() + static_cast<std::ptrdiff_t>(n));
        llama_memory_seq_rm(memory(), slot.seq, static_cast<llama_pos>(n), -1);
        blocks_.shrink(slot.seq, n);
    }
    slot.last_used = ++tick_;
    finished_.push_back(std::move(slot.session));
}

// Ends a request that holds no slot: cancelled (error == nullptr) or refused with `error`.
void Scheduler::Worker::end_waiting(Waiting & w, const Error * error) {
    std::unique_ptr<GenerationSession> session = std::move(w.session);
    if (!session) session = std::make_unique<GenerationSession>(wc_, std::move(w.generation), 0, 0);
    if (error) {
        session->fail(*error);
        ++counters_.requests_failed;
    } else {
        session->finish_cancelled();
        ++counters_.requests_cancelled;
    }
    finished_.push_back(std::move(session));
}

void Scheduler::Worker::deliver_finished() {
    for (auto & session : finished_) session->deliver();
    finished_.clear();
}

void Scheduler::Worker::cancel_requested() {
    for (auto & s : slots_) {
        if (s.session && (state_->stop || s.session->cancel_requested())) {
            s.session->finish_cancelled();
            settle(s);
        }
    }
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        const bool cancel = state_->stop || (it->session ? it->session->cancel_requested() : it->generation->cancelled());
        if (!cancel) {
            ++it;
            continue;
        }
        end_waiting(*it, nullptr);
        it = waiting_.erase(it);
    }
}

void Scheduler::Worker::step() {
    // Generating slots first (one token each), then prompt chunks; older requests first.
    std::vector<Slot *> order;
    for (auto & s : slots_)
        if (s.session && !s.session->done()) order.push_back(&s);
    std::stable_sort(order.begin(), order.end(), [](const Slot * a, const Slot * b) {
        const bool ga = a->session->pending() == 1, gb = b->session->pending() == 1;
        return ga != gb ? ga : a->order < b->order;
    });
    std::vector<Planned> plan;
    size_t budget = wc_.params.n_batch;
    for (Slot * s : order) {
        if (!s->session || budget == 0) continue;
        size_t n = std::min(s->session->pending(), budget);
        // Room in the KV accounting: evict cached prefixes, then preempt the newest running request.
        while (!blocks_.grow(s->seq, s->session->n_past() + n)) {
            if (evict_cached(nullptr)) continue;
            if (Slot * victim = newest_running(plan, s); victim && victim->order > s->order) {
                preempt(*victim);
                continue;
            }
            // Older requests hold the rest: a prompt takes what fits; a generating request is at the end of its room.
            const uint64_t room = uint64_t(blocks_.held(s->seq)) * blocks_.block_size();
            n = room > s->session->n_past() ? static_cast<size_t>(std::min<uint64_t>(n, room - s->session->n_past())) : 0;
            if (n == 0 && busy() == 1) {
                s->session->finish_for_length();
                settle(*s);
            } else if (n == 0 && s->session->pending() > 1) {
                preempt(*s);   // wait for room with the others, instead of holding blocks it cannot use
            }
            break;
        }
        if (!s->session || n == 0) continue;
        plan.push_back({s, n});
        budget -= n;
    }
    if (plan.empty()) return;

    batch_.n_tokens = 0;
    for (auto & p : plan) p.slot->session->add_inputs(batch_, p.n);
    const int rc = llama_decode(wc_.ctx.get(), batch_);
    if (rc == 0) {
        for (auto & p : plan) {
            GenerationSession & session = *p.slot->session;
            const size_t before = session.tokens().size();
            const bool prompt = !session.sampled();
            session.after_decode();
            if (prompt) counters_.prompt_tokens_decoded += p.n;
            counters_.tokens_generated += session.tokens().size() - before;
            settle(*p.slot);
        }
        return;
    }
    for (auto & p : plan) p.slot->session->discard_inputs();
    if (rc == 1) {
        // No room in the cache after all (cells are placed by llama.cpp): make some.
        if (!evict_cached(nullptr)) {
            Slot * victim = newest_running({}, nullptr);
            if (victim && busy() > 1) preempt(*victim);
            else if (victim) {
                victim->session->finish_for_length();
                settle(*victim);
            }
        }
        return;
    }
    if (rc == 2 && state_->stop) return;   // closing: the sessions are cancelled next
    const Error error(ErrorCode::Internal, "llama_decode failed (code " + std::to_string(rc) + ")");
    for (auto & p : plan) {
        p.slot->session->fail(error);
        settle(*p.slot);
    }
}

void Scheduler::Worker::publish_stats() {
    EngineStats s = counters_;
    s.n_parallel = static_cast<uint32_t>(slots_.size());
    s.running = static_cast<uint32_t>(busy());
    s.kv_block_size = blocks_.block_size();
    s.kv_blocks_total = blocks_.total();
    for (const auto & slot : slots_) {
        if (slot.session) s.kv_blocks_used += blocks_.held(slot.seq);
        else s.kv_blocks_cached += blocks_.held(slot.seq);
    }
    std::lock_guard<std::mutex> lock(state_->mutex);
    s.requests_rejected = state_->stats.requests_rejected;
    state_->waiting_in_worker = static_cast<uint32_t>(waiting_.size());
    s.queued = static_cast<uint32_t>(state_->queue.size() + waiting_.size());
    state_->stats = s;
}

void Scheduler::Worker::run() {
    std::vector<Job> tasks;
    while (take_from_queue(tasks)) {
        run_tasks(tasks);
        cancel_requested();
        admit_waiting();
        publish_stats();   // admissions show while the step runs
        try {
            step();
        } catch (const std::exception & e) {
            // Nothing may escape the worker thread: whatever ran ends with the error.
            const Error error(ErrorCode::Internal, e.what());
            for (auto & s : slots_) {
                if (!s.session) continue;
                s.session->fail(error);
                settle(s);
            }
        }
        publish_stats();
        deliver_finished();
    }
    cancel_requested();
    publish_stats();
    deliver_finished();
}

Scheduler::Scheduler(std::shared_ptr<Model> model, const EngineParams & params, uint32_t n_ctx)
    : process_generation_(process_generation()), max_queued_(params.max_queued) {
    std::promise<void> started;
    auto ready = started.get_future();
    worker_ = std::thread([state = state_, model, params, n_ctx, started = std::move(started)]() mutable {
        std::unique_ptr<Worker> worker;
        try {
            worker = std::make_unique<Worker>(state, std::move(model), params, n_ctx);
        } catch (...) {
            started.set_exception(std::current_exception());
            return;
        }
        started.set_value();
        worker->run();
    });
    try {
        ready.get();
    } catch (...) {
        worker_.join();
        throw;
    }
}

Scheduler::~Scheduler() {
    if (forked()) {
        // The worker is not there to join, and a parent thread may have held the state's mutex
        // at the moment of the fork: touch neither, keep both (and what they own) forever.
        static_cast<void>(std::make_unique<std::thread>(std::move(worker_)).release());
        static_cast<void>(std::make_unique<std::shared_ptr<State>>(std::move(state_)).release());
        return;
    }
    close();
}

bool Scheduler::forked() const { return process_generation() != process_generation_; }

void Scheduler::require_same_process() const {
    if (forked())
        throw Error(ErrorCode::InvalidState,
                    "this model's engine was created in the parent process before fork(); create a new Model "
                    "in the child (or use the 'spawn' start method)");
}

void Scheduler::push(Job job) {
    require_same_process();
    {
        std::lock_guard<std::mutex> lock(state_->mutex);
        if (state_->closing) throw Error(ErrorCode::InvalidState, "the model is closed");
        if (job.generation) {
            size_t waiting = state_->waiting_in_worker;
            for (const auto & j : state_->queue) waiting += j.generation != nullptr;
            // Requests the worker can place in a free slot at once do not count as waiting.
            const size_t free_slots = state_->stats.n_parallel > state_->stats.running + waiting
                                          ? state_->stats.n_parallel - state_->stats.running - waiting : 0;
            if (free_slots == 0 && waiting >= max_queued_) {
                ++state_->stats.requests_rejected;
                throw Error(ErrorCode::Overloaded, "the engine is busy: all " + std::to_string(state_->stats.n_parallel) +
                                                   " sequences are in use and " + std::to_string(waiting) +
                                                   " requests wait (max_queued is " + std::to_string(max_queued_) +
                                                   "); try again later");
            }
        }
        state_->queue.push_back(std::move(job));
        ++state_->stats.queued;
    }
    state_->wake.notify_one();
}

void Scheduler::enqueue(std::shared_ptr<Generation> generation) { push(Job{std::move(generation), {}, nullptr}); }

void Scheduler::run(const std::function<void(WorkerContext &)> & task) {
    auto done = std::make_shared<std::promise<void>>();
    auto result = done->get_future();
    push(Job{nullptr, task, done});
    result.get();
}

EngineStats Scheduler::stats() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->stats;
}

void Scheduler::close() {
    if (forked()) return;   // see ~Scheduler
    {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->closing = true;
        state_->stop = true;
        // Queued work still runs, but generations see the cancel flag at once and end as cancelled.
        for (auto & job : state_->queue)
            if (job.generation) job.generation->cancel();
    }
    state_->wake.notify_all();
    std::lock_guard<std::mutex> lock(join_mutex_);   // close() may race with itself (e.g. close + destructor)
    if (!worker_.joinable()) return;
    if (worker_.get_id() == std::this_thread::get_id()) {
        // Closed from inside a request (e.g. a log handler dropped the last reference): the worker
        // cannot join itself. It owns the shared state and its context, and leaves its loop once
        // the queue is drained.
        worker_.detach();
    } else {
        worker_.join();
    }
}

}  // namespace ohai
