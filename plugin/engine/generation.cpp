#include "generation_impl.h"

#include "ohai/log.h"

namespace ohai {

const char * finish_reason_name(FinishReason reason) {
    switch (reason) {
        case FinishReason::Stop:      return "stop";
        case FinishReason::Length:    return "length";
        case FinishReason::Cancelled: return "cancelled";
    }
    return "unknown";
}

Generation::Generation(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Generation::~Generation() = default;

void Generation::Impl::push_piece(std::string piece) {
    if (piece.empty()) return;
    if (callbacks.on_piece) {
        try {
            callbacks.on_piece(piece);
        } catch (const std::exception & e) {
            // A throwing callback ends its own request, never the worker or the others.
            log_message(LogLevel::Error, std::string("ohai: a generation's on_piece callback threw: ") + e.what());
            cancel_requested = true;
        } catch (...) {
            log_message(LogLevel::Error, "ohai: a generation's on_piece callback threw");
            cancel_requested = true;
        }
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex);
        pieces.push_back(std::move(piece));
    }
    changed.notify_all();
}

void Generation::Impl::finish(Completion c) {
    {
        std::lock_guard<std::mutex> lock(mutex);
        completion = std::move(c);
        finished = true;
    }
    changed.notify_all();
    // The state is final and no lock is held: the callback may read it or drop the handle.
    call_on_done(&*completion, nullptr);
}

void Generation::Impl::fail(const Error & e) {
    {
        std::lock_guard<std::mutex> lock(mutex);
        error = e;
        finished = true;
    }
    changed.notify_all();
    call_on_done(nullptr, &*error);
}

void Generation::Impl::call_on_done(const Completion * c, const Error * e) {
    if (!callbacks.on_done) return;
    try {
        callbacks.on_done(c, e);
    } catch (...) {
        log_message(LogLevel::Error, "ohai: a generation's on_done callback threw; ignored");
    }
}

Generation::Poll Generation::next(std::string & piece, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(impl_->mutex);
    if (!impl_->changed.wait_for(lock, timeout, [&] { return !impl_->pieces.empty() || impl_->finished; }))
        return Poll::Timeout;
    if (!impl_->pieces.empty()) {
        piece = std::move(impl_->pieces.front());
        impl_->pieces.pop_front();
        return Poll::Piece;
    }
    return Poll::Done;
}

Completion Generation::wait() {
    std::unique_lock<std::mutex> lock(impl_->mutex);
    impl_->changed.wait(lock, [&] { return impl_->finished; });
    if (impl_->error) throw *impl_->error;
    return *impl_->completion;
}

bool Generation::wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(impl_->mutex);
    return impl_->changed.wait_for(lock, timeout, [&] { return impl_->finished; });
}

void Generation::cancel() {
    impl_->cancel_requested = true;
    impl_->changed.notify_all();
}

bool Generation::cancelled() const { return impl_->cancel_requested.load(); }

}  // namespace ohai
