// The scheduler: a bounded request queue, a worker thread that owns the llama.cpp contexts, and
// `n_parallel` slots — one sequence of a unified KV cache each — that it decodes together
// (continuous batching, in the manner of llama.cpp's server: slots with explicit states, a task
// queue, and each step's batch made of every generating slot's next token first, then prompt
// chunks of newly admitted requests).
//
// KV cache policy (kv_blocks.h): capacity is accounted in blocks of `kv_block` cells per sequence.
// A request is admitted when a slot is free and its prompt plus one block fits; a sequence takes
// another block as it grows. When none is free, finished sequences kept as prefix cache are
// evicted, least recently used first; if that is not enough, the newest running request is
// preempted — its cells dropped, the request sent back to the head of the queue with what it
// generated so far, resumed later (never failed).
//
// Prefix cache: a finished sequence keeps its cells. A new request takes the free slot whose
// cached tokens share the longest prefix with its prompt, keeps those cells and decodes only the
// rest; when a running sequence shares a longer prefix, its cells are shared into the new slot
// (llama_memory_seq_cp) instead of being computed again.
//
// Cancellation is per sequence, between steps: one cancelled request never aborts the shared
// batch. Embeddings and logits run between steps on contexts of their own.
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

    // Queues a generation; throws Error(Overloaded) when `max_queued` requests already wait.
    void enqueue(std::shared_ptr<Generation> generation);
    // Runs `task` on the worker between decode steps and waits for it; rethrows its exception.
    // Closing the scheduler aborts a running task (Error Cancelled).
    void run(const std::function<void(WorkerContext &)> & task);
    // Ends the worker: queued and running generations finish as cancelled. Does nothing in a
    // forked child.
    void close();
    EngineStats stats() const;

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
        uint32_t waiting_in_worker = 0;   // taken from `queue` by the worker, not yet in a slot
        bool closing = false;
        std::atomic<bool> stop{false};   // closing, readable without the mutex: aborts decodes
        EngineStats stats;
    };
    class Worker;
    void push(Job job);
    bool forked() const;

    const uint64_t process_generation_;   // see fork_guard.h
    const uint32_t max_queued_;
    std::shared_ptr<State> state_ = std::make_shared<State>();
    std::mutex join_mutex_;
    std::thread worker_;
};

}  // namespace ohai
