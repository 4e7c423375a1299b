#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char ** environ;

namespace ohai {
namespace {

constexpr size_t kStderrTail = 8192;
constexpr auto kGrace = std::chrono::seconds(3);

struct Pipe {
    int fd[2] = {-1, -1};
    ~Pipe() { close_both(); }
    bool open() { return ::pipe2(fd, O_CLOEXEC) == 0; }
    void close_end(int i) {
        if (fd[i] >= 0) ::close(fd[i]);
        fd[i] = -1;
    }
    void close_both() { close_end(0); close_end(1); }
};

const char * signal_name(int sig) {
    switch (sig) {
        case SIGABRT: return "SIGABRT";
        case SIGSEGV: return "SIGSEGV";
        case SIGBUS:  return "SIGBUS";
        case SIGILL:  return "SIGILL";
        case SIGFPE:  return "SIGFPE";
        case SIGKILL: return "SIGKILL";
        case SIGTERM: return "SIGTERM";
        case SIGINT:  return "SIGINT";
        default:      return nullptr;
    }
}

}  // namespace

std::string ChildResult::describe() const {
    if (!started) return "could not start: " + error;
    if (timed_out) return "timed out";
    if (cancelled) return "cancelled";
    if (signal != 0) {
        const char * name = signal_name(signal);
        return name ? std::string(name) : "signal " + std::to_string(signal);
    }
    return "exit code " + std::to_string(exit_code);
}

std::string ChildResult::last_stderr_line() const {
    size_t end = stderr_tail.find_last_not_of(" \r\n\t");
    if (end == std::string::npos) return {};
    const size_t start = stderr_tail.rfind('\n', end);
    return stderr_tail.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

ChildResult run_child(const ChildParams & params) {
    ChildResult result;
    if (params.argv.empty()) {
        result.error = "no executable";
        return result;
    }
    Pipe out, err;
    if (!out.open() || !err.open()) {
        result.error = std::string("pipe: ") + std::strerror(errno);
        return result;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
    // The child starts with default signal handling whatever the caller installed (Python
    // ignores SIGPIPE, for one).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults, empty;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&defaults, sig);
    sigemptyset(&empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char *> argv;
    for (const auto & a : params.argv) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    out.close_end(1);
    err.close_end(1);
    if (rc != 0) {
        result.error = params.argv[0] + ": " + std::strerror(rc);
        return result;
    }
    result.started = true;

    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    Clock::time_point term_sent{};
    bool term = false, killed = false, reaped = false;
    int reaped_status = 0;
    Clock::time_point drain_until{};
    std::string line_buf;
    char buf[4096];
    while (out.fd[0] >= 0 || err.fd[0] >= 0) {
        pollfd fds[2];
        nfds_t n = 0;
        if (out.fd[0] >= 0) fds[n++] = {out.fd[0], POLLIN, 0};
        if (err.fd[0] >= 0) fds[n++] = {err.fd[0], POLLIN, 0};
        const int ready = ::poll(fds, n, 50);
        if (ready < 0 && errno != EINTR) break;
        for (nfds_t i = 0; ready > 0 && i < n; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const bool is_out = fds[i].fd == out.fd[0];
            const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got <= 0) {
                if (got < 0 && errno == EINTR) continue;
                (is_out ? out : err).close_end(0);
                continue;
            }
            if (is_out) {
                line_buf.append(buf, static_cast<size_t>(got));
                size_t nl;
                while ((nl = line_buf.find('\n')) != std::string::npos) {
                    const std::string line = line_buf.substr(0, nl);
                    line_buf.erase(0, nl + 1);
                    if (!params.on_stdout_line) continue;
                    try {
                        params.on_stdout_line(line);
                    } catch (...) {
                        // Never leave the child running unwatched: stop it, reap it, then report.
                        ::kill(pid, SIGKILL);
                        int ignored = 0;
                        while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {}
                        throw;
                    }
                }
            } else {
                result.stderr_tail.append(buf, static_cast<size_t>(got));
                if (result.stderr_tail.size() > kStderrTail)
                    result.stderr_tail.erase(0, result.stderr_tail.size() - kStderrTail);
            }
        }
        // The child may be gone while the pipes stay open (a process forked elsewhere inherited
        // them): its exit, not the pipes' end, ends the watch.
        int status_now = 0;
        if (!reaped && ::waitpid(pid, &status_now, WNOHANG) == pid) {
            reaped = true;
            reaped_status = status_now;
            drain_until = Clock::now() + std::chrono::milliseconds(200);
        }
        if (reaped && Clock::now() > drain_until) break;
        const auto now = Clock::now();
        if (reaped) continue;
        if (!term) {
            const bool cancel = params.cancel && params.cancel->load();
            const bool late = params.timeout.count() > 0 && now - start > params.timeout;
            if (cancel || late) {
                result.cancelled = cancel;
                result.timed_out = !cancel;
                ::kill(pid, SIGTERM);
                term = true;
                term_sent = now;
            }
        } else if (!killed && now - term_sent > kGrace) {
            ::kill(pid, SIGKILL);
            killed = true;
        }
    }
    // Both pipes closed (or the child reaped above); wait for it, still enforcing the limits.
    int status = reaped_status;
    for (; !reaped;) {
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) {
            result.error = std::string("waitpid: ") + std::strerror(errno);
            return result;
        }
        const auto now = Clock::now();
        if (!term && ((params.cancel && params.cancel->load()) ||
                      (params.timeout.count() > 0 && now - start > params.timeout))) {
            result.cancelled = params.cancel && params.cancel->load();
            result.timed_out = !result.cancelled;
            ::kill(pid, SIGTERM);
            term = true;
            term_sent = now;
        } else if (term && !killed && now - term_sent > kGrace) {
            ::kill(pid, SIGKILL);
            killed = true;
        }
        ::usleep(10000);
    }
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    return result;
}

}  // namespace ohai
