// The request queue and the worker thread that owns the llama.cpp contexts.
// Generations run in arrival order, one at a time, driven step by step as
// GenerationSessions; batching several sessions into one decode changes this
// scheduler only (run_one becomes a loop over active sessions).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "generation_impl.h"
#include "worker_context.h"

namespace ohai {

class Scheduler {
public:
    // Starts the worker and creates the context on it; throws what context creation threw.
    Scheduler(std::shared_ptr<Model> model, const EngineParams & params, uint32_t n_ctx);
    // In a child forked after construction the worker does not exist: nothing is joined or
    // freed there (see fork_guard.h), the scheduler is leaked on purpose.
    ~Scheduler();

    // Throws InvalidState when called in a child forked after this scheduler was created.
    void require_same_process() const;

    void enqueue(std::shared_ptr<Generation> generation);
    // Runs `task` on the worker (in queue order) and waits for it; rethrows its exception.
    // Closing the scheduler aborts a running task (Error Cancelled).
    void run(const std::function<void(WorkerContext &)> & task);
    // Ends the worker: queued generations finish as cancelled, the running one is cancelled.
    // Does nothing in a forked child.
    void close();

private:
    struct Job {
        std::shared_ptr<Generation> generation;            // either a generation...
        std::function<void(WorkerContext &)> task;          // ...or a task
        std::shared_ptr<std::promise<void>> done;
    };
    // Shared by the Scheduler and its worker thread, so that a worker which had to be
    // detached (closed from its own thread) never touches freed memory.
    struct State {
        std::mutex mutex;
        std::condition_variable wake;
        std::deque<Job> queue;
        bool closing = false;
        std::atomic<bool> stop{false};   // closing, readable without the mutex: aborts a running task
        std::shared_ptr<Generation> running;
    };
    static void worker_main(std::shared_ptr<State> state, std::shared_ptr<Model> model, EngineParams params,
                            uint32_t n_ctx, std::promise<void> & started);
    static void run_one(WorkerContext & wc, const std::shared_ptr<Generation> & generation);
    void push(Job job);
    bool forked() const;

    const uint64_t process_generation_;   // see fork_guard.h
    std::shared_ptr<State> state_ = std::make_shared<State>();
    std::mutex join_mutex_;
    std::thread worker_;
};

}  // namespace ohai
