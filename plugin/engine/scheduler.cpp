#include "scheduler.h"

#include "generation_runner.h"

namespace ohai {

Scheduler::Scheduler(std::shared_ptr<Model> model, const EngineParams & params, uint32_t n_ctx) {
    std::promise<void> started;
    auto ready = started.get_future();
    worker_ = std::thread([this, model, params, n_ctx, started = std::move(started)]() mutable {
        worker_main(model, params, n_ctx, started);
    });
    try {
        ready.get();
    } catch (...) {
        worker_.join();
        throw;
    }
}

Scheduler::~Scheduler() { close(); }

void Scheduler::worker_main(std::shared_ptr<Model> model, EngineParams params, uint32_t n_ctx,
                            std::promise<void> & started) {
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
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return closing_ || !queue_.empty(); });
            if (queue_.empty()) break;   // closing and drained
            job = std::move(queue_.front());
            queue_.pop_front();
            running_ = job.generation;
        }
        if (job.generation) {
            run_generation(*wc, job.generation->impl());
        } else {
            try {
                job.task(*wc);
                job.done->set_value();
            } catch (...) {
                job.done->set_exception(std::current_exception());
            }
        }
        std::lock_guard<std::mutex> lock(mutex_);
        running_.reset();
    }
}

void Scheduler::push(Job job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) throw Error(ErrorCode::InvalidState, "the model is closed");
        queue_.push_back(std::move(job));
    }
    wake_.notify_one();
}

void Scheduler::enqueue(std::shared_ptr<Generation> generation) { push(Job{std::move(generation), {}, nullptr}); }

void Scheduler::run(const std::function<void(WorkerContext &)> & task) {
    auto done = std::make_shared<std::promise<void>>();
    auto result = done->get_future();
    push(Job{nullptr, task, done});
    result.get();
}

void Scheduler::close() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        closing_ = true;
        // Queued work still runs, but generations see the cancel flag at once and end as cancelled.
        for (auto & job : queue_)
            if (job.generation) job.generation->cancel();
        if (running_) running_->cancel();
    }
    wake_.notify_all();
    std::lock_guard<std::mutex> lock(join_mutex_);   // close() may race with itself (e.g. close + destructor)
    if (!worker_.joinable()) return;
    if (worker_.get_id() == std::this_thread::get_id()) {
        // Closed from inside a request (e.g. a log handler dropped the last reference): the
        // worker cannot join itself; it leaves its loop once the queue is drained.
        worker_.detach();
    } else {
        worker_.join();
    }
}

}  // namespace ohai
