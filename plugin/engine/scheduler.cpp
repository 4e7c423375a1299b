#include "scheduler.h"

#include "fork_guard.h"
#include "generation_session.h"

namespace ohai {

Scheduler::Scheduler(std::shared_ptr<Model> model, const EngineParams & params, uint32_t n_ctx)
    : process_generation_(process_generation()) {
    std::promise<void> started;
    auto ready = started.get_future();
    worker_ = std::thread([state = state_, model, params, n_ctx, started = std::move(started)]() mutable {
        worker_main(state, model, params, n_ctx, started);
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

void Scheduler::worker_main(std::shared_ptr<State> state, std::shared_ptr<Model> model, EngineParams params,
                            uint32_t n_ctx, std::promise<void> & started) {
    std::unique_ptr<WorkerContext> wc;
    try {
        wc = std::make_unique<WorkerContext>(std::move(model), params, n_ctx);
    } catch (...) {
        started.set_exception(std::current_exception());
        return;
    }
    started.set_value();

    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(state->mutex);
            state->wake.wait(lock, [&] { return state->closing || !state->queue.empty(); });
            if (state->queue.empty()) break;   // closing and drained
            job = std::move(state->queue.front());
            state->queue.pop_front();
            state->running = job.generation;
        }
        if (job.generation) {
            run_one(*wc, job.generation);
        } else {
            // A task (embeddings, logits) has no cancel flag of its own: closing aborts its decodes.
            wc->cancel_flag = &state->stop;
            try {
                job.task(*wc);
                job.done->set_value();
            } catch (...) {
                if (state->stop)
                    job.done->set_exception(std::make_exception_ptr(
                        Error(ErrorCode::Cancelled, "the model was closed while the request ran")));
                else
                    job.done->set_exception(std::current_exception());
            }
            wc->cancel_flag = nullptr;
        }
        std::lock_guard<std::mutex> lock(state->mutex);
        state->running.reset();
    }
}

void Scheduler::run_one(WorkerContext & wc, const std::shared_ptr<Generation> & generation) {
    // One session at a time on sequence 0. Serving several at once means: more sessions, each
    // on its own sequence, all adding their inputs to this one batch before the decode.
    GenerationSession session(wc, generation, 0);
    const int32_t capacity = static_cast<int32_t>(llama_n_batch(wc.ctx.get()));
    struct BatchOwner {
        llama_batch batch;
        ~BatchOwner() { llama_batch_free(batch); }
    } owner{llama_batch_init(capacity, 0, 1)};
    struct CancelFlagScope {
        WorkerContext & wc;
        ~CancelFlagScope() { wc.cancel_flag = nullptr; }
    } scope{wc};
    wc.cancel_flag = &session.cancel_flag();
    try {
        while (!session.done()) {
            owner.batch.n_tokens = 0;
            session.add_inputs(owner.batch, capacity);
            session.after_decode(llama_decode(wc.ctx.get(), owner.batch));
        }
    } catch (const Error & e) {
        session.fail(e);   // nothing may escape the worker thread
    } catch (const std::exception & e) {
        session.fail(Error(ErrorCode::Internal, e.what()));
    }
}

void Scheduler::push(Job job) {
    require_same_process();
    {
        std::lock_guard<std::mutex> lock(state_->mutex);
        if (state_->closing) throw Error(ErrorCode::InvalidState, "the model is closed");
        state_->queue.push_back(std::move(job));
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

void Scheduler::close() {
    if (forked()) return;   // see ~Scheduler
    {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->closing = true;
        state_->stop = true;
        // Queued work still runs, but generations see the cancel flag at once and end as cancelled.
        for (auto & job : state_->queue)
            if (job.generation) job.generation->cancel();
        if (state_->running) state_->running->cancel();
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
